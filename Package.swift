// swift-tools-version: 6.1
import PackageDescription

// Pure cores (Model, Config, Membership, Scheduler, Wire, Controller) depend on no
// I/O package, so they cannot touch sockets, processes or clocks by accident.
// Shells (Transport, Executor, Control, Daemon) wrap them. `hactl` stays light:
// no crypto and no daemon internals.
let package = Package(
  name: "hactl",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "hactld", targets: ["hactld"]),
    .executable(name: "hactl", targets: ["hactl"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
  ],
  targets: [
    .target(name: "HactlModel"),
    .target(name: "HactlConfig", dependencies: ["HactlModel", "Yams"]),
    .target(name: "HactlMembership", dependencies: ["HactlModel"]),
    .target(name: "HactlScheduler", dependencies: ["HactlModel"]),
    // Scheduler scenarios and live snapshots in, transition summaries out:
    // `hactl simulate` and the scheduler's scenario tests.
    .target(
      name: "HactlScenario", dependencies: ["HactlModel", "HactlConfig", "HactlScheduler", "Yams"]),
    .target(name: "HactlWire", dependencies: ["HactlModel", "HactlMembership"]),
    .target(
      name: "HactlController",
      dependencies: ["HactlModel", "HactlConfig", "HactlMembership", "HactlScheduler", "HactlWire"]
    ),
    // Whole clusters of real controllers in one process, driven by a seed.
    .target(
      name: "HactlSimulation",
      dependencies: ["HactlModel", "HactlConfig", "HactlMembership", "HactlController", "HactlWire"]
    ),
    .target(
      name: "HactlTransport",
      dependencies: [
        "HactlModel", "HactlWire", "HactlConfig",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Crypto", package: "swift-crypto"),
      ]
    ),
    .target(
      name: "HactlExecutor",
      dependencies: ["HactlModel", .product(name: "Subprocess", package: "swift-subprocess")]
    ),
    // Installed agents and their meta-data, for operators (`hactl agent`,
    // `hactl config check`): light enough for the command-line tool.
    .target(name: "HactlAgents", dependencies: ["HactlModel", "HactlConfig", "HactlExecutor"]),
    .target(
      name: "HactlControl",
      dependencies: [
        "HactlModel",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    // Linux's timerfd, which Swift's Glibc module leaves out (WakeTimer).
    .target(name: "CHactlWakeTimer"),
    .target(
      name: "HactlDaemon",
      dependencies: [
        "CHactlWakeTimer", "HactlModel", "HactlConfig", "HactlMembership", "HactlController", "HactlTransport",
        "HactlExecutor", "HactlControl", "HactlAgents",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
      ]
    ),
    .executableTarget(
      name: "hactld",
      dependencies: [
        "HactlDaemon", "HactlControl", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // Runs real hactld processes on 127.0.0.1: for the demo, tests and benches.
    .target(name: "HactlLab", dependencies: ["HactlModel", "HactlConfig", "HactlControl"]),
    .executableTarget(
      name: "hactl",
      dependencies: [
        "HactlModel", "HactlConfig", "HactlControl", "HactlLab", "HactlScheduler", "HactlScenario", "HactlAgents",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    // Replays one simulation seed with its trace, or soaks thousands.
    .executableTarget(
      name: "hactl-sim",
      dependencies: ["HactlSimulation", .product(name: "ArgumentParser", package: "swift-argument-parser")]
    ),
    // Benchmarks print tables; they are not tests (bench/README.md).
    .executableTarget(
      name: "executor-bench",
      dependencies: ["HactlLab", "HactlModel", "HactlConfig"],
      path: "bench/executor",
      exclude: ["pacemaker.sh"]
    ),
    .executableTarget(
      name: "failover-bench",
      dependencies: ["HactlLab", "HactlModel", "HactlConfig", "HactlControl"],
      path: "bench/failover"
    ),
    .executableTarget(
      name: "scheduler-bench", dependencies: ["HactlLab", "HactlModel", "HactlScheduler"], path: "bench/scheduler"),
    .executableTarget(
      name: "membership-bench",
      dependencies: [
        "HactlLab", "HactlModel", "HactlConfig", "HactlControl", "HactlDaemon", "HactlTransport", "HactlWire",
        "HactlMembership",
      ],
      path: "bench/membership"
    ),
    .testTarget(name: "HactlConfigTests", dependencies: ["HactlConfig"]),
    .testTarget(name: "HactlMembershipTests", dependencies: ["HactlMembership"]),
    .testTarget(
      name: "HactlSchedulerTests", dependencies: ["HactlScheduler", "HactlScenario", "HactlConfig"],
      exclude: ["Scenarios"]),
    .testTarget(name: "HactlWireTests", dependencies: ["HactlWire", "HactlTransport"]),
    .testTarget(
      name: "HactlControllerTests",
      dependencies: ["HactlController", "HactlSimulation", "HactlConfig", "HactlMembership"]),
    .testTarget(name: "SimulationTests", dependencies: ["HactlSimulation"]),
    .testTarget(name: "HactlExecutorTests", dependencies: ["HactlExecutor", "HactlAgents", "HactlConfig"]),
    .testTarget(
      name: "IntegrationTests",
      dependencies: [
        "HactlControl", "HactlModel", "HactlLab", "HactlConfig", "HactlWire", "HactlTransport", "HactlMembership",
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
  ]
)

import Foundation
import HactlConfig
import HactlControl
import HactlLab
import HactlModel

/// Crashes the active node of a two-node cluster with a witness (SIGKILL),
/// times how long until the survivor runs the resource, restarts the crashed
/// node, and repeats. Prints the distribution next to the floor that the
/// dead time sets.
///
///     swift build -c release && .build/release/failover-bench [RUNS] [DEAD_TIME] [INTERVAL]
///     HACTL_BENCH_IPMI=1 .build/release/failover-bench    # each node fenced through a simulated BMC
@main
enum FailoverBench {
  static func main() async throws {
    let arguments = CommandLine.arguments.dropFirst().map { $0 }
    let runs = arguments.first.flatMap(Int.init) ?? 20
    let deadTime = arguments.count > 1 ? arguments[1] : "1s"
    let interval = arguments.count > 2 ? arguments[2] : "200ms"
    var options = LocalCluster.Options(
      resourcesYAML: """
          - id: marker
            agent: ocf:hactl:Marker
            monitor: { interval: 2s, timeout: 10s }
        """)
    options.deadTime = deadTime
    options.heartbeatInterval = interval
    // Packets only authenticated, to compare with the default encryption.
    if ProcessInfo.processInfo.environment["HACTL_BENCH_HMAC"] != nil {
      options.extraClusterYAML = "  encryption: false"
    }
    // Fenced: each node has a simulated BMC that fence_ipmilan powers off
    // (its "machine" is the node's hactld); the survivor fences the crashed
    // node before it takes over.
    var bmcs: [String: SimulatedBMC] = [:]
    let fenced = ProcessInfo.processInfo.environment["HACTL_BENCH_IPMI"] != nil
    let bmcFolder = NSTemporaryDirectory() + "hactl-bench-bmc-\(UUID().uuidString)"
    defer {
      for bmc in bmcs.values { bmc.stop() }
      try? FileManager.default.removeItem(atPath: bmcFolder)
    }
    if fenced {
      for node in options.nodes { bmcs[node] = try SimulatedBMC(folder: bmcFolder + "/" + node) }
      options.extraYAML =
        "fencing:\n  devices:\n" + options.nodes.map { bmcs[$0]!.deviceYAML(id: "bmc-\($0)", node: $0) }.joined()
    }
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    func machinesAreDaemons() throws {
      for (node, bmc) in bmcs { if let pid = cluster.pid(node) { try bmc.standFor(pid: pid) } }
    }
    print(
      "failover-bench: \(runs) crashes, dead_time \(deadTime), heartbeat_interval \(interval), "
        + "\(fenced ? "fenced by fence_ipmilan, " : "")hactld \(cluster.daemonPath)")
    try cluster.startAll()
    try machinesAreDaemons()

    var agentStarted: [Duration] = []
    var statusStarted: [Duration] = []
    // With fencing: how long each fence call took, from the survivor's history.
    var fenceCalls: [Double] = []
    for run in 1...runs {
      let before = try await cluster.waitFor(via: "arbiter", timeout: .seconds(30)) { status in
        status.nodes.allSatisfy { $0.state == .online && $0.member } && status.resource("marker")?.state == .started
          && status.resource("marker")?.activeOn.count == 1
      }
      let active = before.resource("marker")!.node!
      let survivor = active == "alpha" ? "beta" : "alpha"
      let marker = cluster.runtimeFolder(survivor) + "/Marker-marker@\(survivor)"
      // Not at the moment the cluster settles, when every state change has
      // just been sent (the survivor then heard the victim an instant
      // before the kill): a quiet second, then a random phase against the
      // heartbeat schedule, as a real crash comes.
      try await Task.sleep(for: .seconds(1) + .milliseconds(Int.random(in: 0..<200)))
      let killed = ContinuousClock.now
      cluster.crash(active)
      while !FileManager.default.fileExists(atPath: marker) {
        guard ContinuousClock.now - killed < .seconds(30) else {
          throw LocalCluster.LabError("no takeover in run \(run)")
        }
        try await Task.sleep(for: .milliseconds(1))
      }
      agentStarted.append(ContinuousClock.now - killed)
      _ = try await cluster.waitFor(via: survivor, timeout: .seconds(30), every: .milliseconds(2)) { status in
        status.resource("marker")?.state == .started && status.resource("marker")?.node == survivor
      }
      statusStarted.append(ContinuousClock.now - killed)
      if fenced {
        let answer = try await ControlClient.send(
          .history, socketPath: cluster.socketPath(survivor), timeout: .seconds(5))
        if let took = answer.history?.last(where: { $0.outcome == .fenced && $0.node == active })?.milliseconds {
          fenceCalls.append(Double(took))
        }
      }
      print(
        String(
          format: "run %2d: %@ crashed, %@ took over: agent start %.0f ms, status started %.0f ms", run, active,
          survivor, agentStarted.last!.seconds * 1000, statusStarted.last!.seconds * 1000))
      // The crashed machine's resource died with it: clear its marker, restart its daemon.
      try? FileManager.default.removeItem(atPath: cluster.runtimeFolder(active) + "/Marker-marker@\(active)")
      try cluster.start(active)
      try machinesAreDaemons()
    }

    // A crash comes at a random phase: the survivor last heard the victim
    // up to one interval before it, so silence is noticed from dead time
    // minus one interval on.
    let floor = Double(
      ((DurationParsing.parse(deadTime) ?? .seconds(1)) - (DurationParsing.parse(interval) ?? .milliseconds(200)))
        .milliseconds)
    print("")
    print(
      "| measure (ms, n=\(runs)) | median | p95 | p99 | max | floor (dead time − interval) | median / floor |")
    print("|---|---|---|---|---|---|---|")
    for (name, samples) in [
      ("kill → survivor's agent started", agentStarted), ("kill → status shows started", statusStarted),
    ] {
      let ms = samples.map { $0.seconds * 1000 }.sorted()
      print(
        String(
          format: "| %@ | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |", name, Statistics.percentile(ms, 50),
          Statistics.percentile(ms, 95),
          Statistics.percentile(ms, 99), ms.last!, floor, Statistics.percentile(ms, 50) / floor))
    }
    if !fenceCalls.isEmpty {
      let ms = fenceCalls.sorted()
      print(
        String(
          format: "| the fence call itself (fence_ipmilan, reboot), n=%d | %.0f | %.0f | %.0f | %.0f | | |", ms.count,
          Statistics.percentile(ms, 50), Statistics.percentile(ms, 95), Statistics.percentile(ms, 99), ms.last!))
    }
  }
}

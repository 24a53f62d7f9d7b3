import ArgumentParser
import Foundation
import HactlSimulation

@main
struct HactlSim: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hactl-sim",
    abstract: "Run the deterministic cluster simulation: replay one seed, or soak many.")

  @Option(help: "Replay exactly this seed.") var seed: UInt64?
  @Flag(help: "With --seed: print the whole trace.") var trace = false
  @Option(help: "How many seeds to run (soak).") var seeds = 1000
  @Option(help: "First seed of a soak.") var start: UInt64 = 1
  @Option(help: "Simulated seconds of faults per seed.") var seconds = 60
  @Flag(name: .customLong("single-link"), help: "One link in every run (as regression seeds use).")
  var singleLink = false
  @Flag(name: .customLong("no-config-changes"), help: "No operator configuration changes (as regression seeds use).")
  var noConfigChanges = false
  @Flag(name: .customLong("large-state"), help: "Half the runs carry state in parts, and lose parts.")
  var largeState = false
  @Flag(
    name: .customLong("resource-model"),
    help: "Add a promotable clone and a group colocated with its Promoted instance (the storage stack).")
  var resourceModel = false
  @Flag(
    name: .customLong("unique-clone"),
    help: "Add a globally-unique clone: three instances, up to two per node, each a resource of its own.")
  var uniqueClone = false
  @Flag(help: "Configure a fence device: lost nodes are fenced; devices fail and hang; some crashes are permanent.")
  var fencing = false
  @Flag(
    name: .customLong("probe-deadlines"),
    help: "Check at every early input that a tick before the node's deadline would do nothing.")
  var probeDeadlines = false

  func run() throws {
    var options = ChaosOptions()
    options.duration = .seconds(seconds)
    options.redundantLinks = !singleLink
    options.configChanges = !noConfigChanges
    options.largeState = largeState
    options.resourceModel = resourceModel
    options.uniqueClone = uniqueClone
    options.fencing = fencing
    options.probeDeadlines = probeDeadlines || seed != nil
    if let seed {
      let report = Chaos.run(seed: seed, options: options, keepTrace: trace ? .max : 150)
      if trace { print(report.traceTail.joined(separator: "\n")) }
      print(
        report.passed ? "seed \(seed) passed: \(report.description), \(report.faults) faults" : report.failureReport)
      if !report.passed { throw ExitCode(1) }
      return
    }
    let clock = ContinuousClock()
    let began = clock.now
    var failed: [UInt64] = []
    var simulated = Duration.zero
    var faults = 0
    var changes = 0
    for seed in start..<(start + UInt64(seeds)) {
      let report = Chaos.run(seed: seed, options: options)
      simulated += report.simulated
      faults += report.faults
      changes += report.acknowledgedChanges
      if !report.passed {
        failed.append(seed)
        print(report.failureReport)
      }
    }
    let hours = simulated.seconds / 3600
    print(
      String(
        format:
          "%d seeds (%llu...%llu), %.1f simulated hours, %d faults, %d acknowledged configuration changes, "
          + "%d failed, in %.0f s", seeds, start, start + UInt64(seeds) - 1, hours, faults, changes, failed.count,
        (clock.now - began).seconds))
    if !failed.isEmpty {
      print("failed seeds: \(failed.map(String.init).joined(separator: " "))")
      throw ExitCode(1)
    }
  }
}

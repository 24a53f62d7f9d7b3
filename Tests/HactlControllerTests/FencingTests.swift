import HactlController
import HactlModel
import HactlSimulation
import Testing

/// Fencing in the simulator: a lost node that may run resources is fenced
/// before anything it ran starts elsewhere; failing devices are retried,
/// then the next level, and meanwhile nothing is taken over and status
/// says why.
struct FencingTests {
  func fencedConfig(levels: [String: [[String]]] = [:], devices: [FenceDevice]? = nil, witness: Bool = true)
    -> ClusterConfig
  {
    var config = SimCluster.config(witness: witness, resources: [SimCluster.marker("vip")])
    config.fencing = FencingConfig(
      devices: devices ?? [
        FenceDevice(
          id: "power", program: .hook("/usr/local/sbin/power"), targets: .nodes(["alpha", "beta"]), retries: 1,
          delay: .zero)
      ], levels: levels)
    if !witness { config.cluster.quorum.twoNode = true }
    return config
  }

  func settled(_ config: ClusterConfig) -> SimCluster {
    var sim = SimCluster(config: config)
    let done = sim.run(until: { $0.runs("vip") == ["alpha"] && Chaos.isConverged($0) }, within: .seconds(10))
    #expect(done != nil, "\(sim.trace.suffix(20).joined(separator: "\n"))")
    return sim
  }

  /// A node that stops answering but still runs (stalled) is fenced, and
  /// only then does its resource start on the survivor.
  @Test func aStalledNodeIsFencedBeforeItsResourceStartsElsewhere() throws {
    var sim = settled(fencedConfig())
    let alpha = sim.id("alpha")
    sim.stalled.insert(alpha)
    let moved = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(10))
    #expect(moved != nil, "\(sim.trace.suffix(40).joined(separator: "\n"))")
    let fence = try #require(sim.fencedMachines.first)
    #expect(fence.target == alpha && fence.by == sim.id("beta"))
    let start = try #require(sim.started.last { $0.1 == sim.id("beta") && $0.2 == "vip" })
    #expect(start.0 > fence.at, "started on beta at \(start.0), before alpha was fenced at \(fence.at)")
    // The reboot brings alpha back as a new boot, which rejoins cleanly.
    let back = sim.run(
      until: { Chaos.isConverged($0) && $0.status(via: "beta").nodes.allSatisfy { $0.state == .online } },
      within: .seconds(15))
    #expect(back != nil)
    #expect(sim.runs("vip") == ["beta"] && sim.fencedMachines.count == 1, "one fence for one loss")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// A device that keeps failing: nothing is taken over, status says why;
  /// once it works again, the node is fenced and its resource recovered.
  @Test func whileFencingFailsNothingIsTakenOverAndStatusSaysWhy() throws {
    var sim = settled(fencedConfig())
    sim.fenceFaults["power"] = .fail(times: .max)
    sim.stalled.insert(sim.id("alpha"))
    sim.run(for: .seconds(8))
    #expect(sim.runs("vip") == ["alpha"], "only where it ran (stalled): not taken over")
    #expect(sim.fencedMachines.isEmpty)
    let note = sim.status(via: "beta").resource("vip")?.note ?? ""
    #expect(note == "may still run on alpha (lost): NOT TAKEN OVER, fencing failed: power: injected failure", "\(note)")
    sim.fenceFaults["power"] = nil
    let recovered = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(15))
    #expect(recovered != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// Levels in order: the first device is retried as it says, then the
  /// second level, whose two devices must both succeed.
  @Test func levelsAreTriedInOrderAndALevelNeedsAllItsDevices() throws {
    let devices = [
      FenceDevice(id: "ipmi", program: .hook("/x/ipmi"), targets: .nodes(["alpha", "beta"]), retries: 2),
      FenceDevice(id: "pdu-a", program: .hook("/x/pdu-a"), targets: .nodes(["alpha", "beta"]), retries: 0),
      FenceDevice(id: "pdu-b", program: .hook("/x/pdu-b"), targets: .nodes(["alpha", "beta"]), retries: 0),
    ]
    var sim = settled(fencedConfig(levels: ["alpha": [["ipmi"], ["pdu-a", "pdu-b"]]], devices: devices))
    sim.fenceFaults["ipmi"] = .fail(times: .max)
    sim.stalled.insert(sim.id("alpha"))
    let moved = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(15))
    #expect(moved != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    let tried = sim.trace.filter { $0.contains(" fences alpha with ") }.map {
      $0.components(separatedBy: " with ").last!
    }
    #expect(tried == ["ipmi", "ipmi", "ipmi", "pdu-a", "pdu-b"], "\(tried)")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// A pair without a witness, with fencing: the survivor of a crash fences
  /// its peer, then takes over, without unfenced_takeover.
  @Test func aPairWithFencingTakesOverAfterFencingItsPeer() throws {
    var sim = settled(fencedConfig(witness: false))
    sim.crash("alpha")
    let moved = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(10))
    #expect(moved != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.fencedMachines.map(\.target) == [sim.id("alpha")])
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }
}

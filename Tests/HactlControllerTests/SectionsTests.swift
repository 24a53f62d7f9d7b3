import HactlController
import HactlMembership
import HactlModel
import HactlSimulation
import HactlWire
import Testing

/// State larger than one datagram: sections in parts, lost parts, and the
/// rule that nothing is decided on a section older than its node announced.
struct SectionsTests {
  /// Enough resources that reports and directives need several parts each.
  static func bigCluster(_ count: Int = 120) -> SimCluster {
    let resources = (0..<count).map {
      SimCluster.marker(ResourceID("ip-\($0)"), prefer: $0 % 2 == 0 ? "alpha" : "beta")
    }
    return SimCluster(config: SimCluster.config(resources: resources))
  }

  static func allRunOnce(_ sim: SimCluster) -> Bool {
    sim.config.resources.allSatisfy { sim.runs($0.id).count == 1 }
  }

  @Test func aStateOfManyPartsConvergesDespiteLostPartsAndPackets() throws {
    var sim = Self.bigCluster()
    sim.partLoss = 0.3
    sim.loss = 0.05
    let ran = sim.run(until: Self.allRunOnce, within: .seconds(30))
    #expect(ran != nil, "not every resource ran once: \(sim.trace.suffix(10))")
    // The reports did travel in parts, and a move still goes through.
    let alpha = sim.controllers[sim.id("alpha")]!
    #expect(alpha.counters.partsReceived > 0)
    #expect(alpha.counters.partsMalformed == 0)
    _ = sim.migrate("ip-0", to: "beta", via: "alpha")
    let moved = sim.run(until: { $0.runs("ip-0") == ["beta"] }, within: .seconds(10))
    #expect(moved != nil)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// A report the leader cannot get (its parts are all lost) holds every
  /// decision back, as a missing probe does. Deciding on the older report
  /// instead would start a second copy: here the leader moves a resource
  /// away from a node whose newer report (never received) says it runs it.
  @Test func theLeaderDecidesNothingOnAReportOlderThanAnnounced() throws {
    let resources = (0..<120).map { SimCluster.marker(ResourceID("ip-\($0)"), prefer: nil) }
    var sim = SimCluster(config: SimCluster.config(nodes: 3, witness: false, resources: resources))
    #expect(sim.run(until: Self.allRunOnce, within: .seconds(30)) != nil)
    sim.run(for: .seconds(1))
    let leader = try #require(sim.config.nodes.first { sim.controllers[$0.id]!.membership.isLeader })
    let other = try #require(sim.config.nodes.first { $0.id != leader.id })
    let victim = try #require(sim.config.resources.map(\.id).first { sim.runs($0) == [leader.name] })
    sim.partsDroppedTo = [leader.id]
    _ = sim.migrate(victim.rawValue, to: other.name, via: leader.name)
    #expect(sim.run(until: { $0.runs(victim) == [other.name] }, within: .seconds(5)) != nil)
    // The leader never got the report that says it runs there.
    sim.stopLatency = .seconds(2)
    _ = sim.migrate(victim.rawValue, to: leader.name, via: leader.name)
    sim.run(for: .seconds(5))
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect(sim.runs(victim) == [other.name])
    #expect(!sim.trace.contains { $0.contains("lost:") })
    sim.partsDroppedTo = []
    let moved = sim.run(until: { $0.runs(victim) == [leader.name] }, within: .seconds(10))
    #expect(moved != nil)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// Idle, a heartbeat only names the versions: the state is not sent again.
  @Test func anIdleClusterDoesNotResendItsState() throws {
    var sim = Self.bigCluster()
    #expect(sim.run(until: Self.allRunOnce, within: .seconds(30)) != nil)
    sim.run(for: .seconds(3))
    let before = sim.controllers[sim.id("alpha")]!.counters.partsReceived
    let sentBefore = sim.sent[sim.id("beta")] ?? 0
    sim.run(for: .seconds(5))
    let parts = sim.controllers[sim.id("alpha")]!.counters.partsReceived - before
    let sent = (sim.sent[sim.id("beta")] ?? 0) - sentBefore
    #expect(parts == 0, "\(parts) parts in 5 idle seconds")
    #expect(sent > 0)
  }
}

/// A node with many resources runs a bounded number of agents at once.
struct AgentConcurrencyTests {
  /// A large section that keeps changing costs its node at most
  /// `SectionPacing.bytesPerSecond`, whatever the number of peers.
  @Test func aChangingLargeSectionIsPacedByItsSizeTimesItsPeers() {
    let quarter = Duration.milliseconds(50)
    #expect(SectionPacing.spacing(bytes: 20_000, fanOut: 1, atLeast: quarter) == quarter)
    let narrow = SectionPacing.spacing(bytes: 30_000, fanOut: 1, atLeast: quarter)
    #expect(narrow > .milliseconds(59) && narrow < .milliseconds(61), "\(narrow)")
    let wide = SectionPacing.spacing(bytes: 30_000, fanOut: 31, atLeast: quarter)
    #expect(wide > .milliseconds(1859) && wide < .milliseconds(1861), "\(wide)")
    #expect(Double(30_000 * 31) / (Double(wide.nanosecondsClamped) / 1e9) <= Double(SectionPacing.bytesPerSecond))
    #expect(SectionPacing.spacing(bytes: .max, fanOut: 64, atLeast: quarter) == SectionPacing.longest)
    #expect(SectionPacing.spacing(bytes: -1, fanOut: 0, atLeast: quarter) == quarter)
  }

  @Test func probesWaitForAFreeSlotAndEveryResourceIsProbed() {
    let config = SimCluster.config(resources: (0..<100).map { SimCluster.marker(ResourceID("r\($0)")) })
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    func calls(_ effects: [ControllerEffect]) -> [AgentCall] {
      effects.compactMap { if case .runAgent(let call) = $0 { call } else { nil } }
    }
    var running = calls(node.start(now: .zero))
    #expect(running.count == NodeController.agentCallsAtOnce)
    var probed = 0
    var now = Instant.zero
    while let call = running.first {
      running.removeFirst()
      now = now + .milliseconds(1)
      running += calls(node.agentFinished(call.id, outcome: .exited(7), now: now, wallTime: 0))
      probed += 1
      #expect(running.count <= NodeController.agentCallsAtOnce)
    }
    #expect(probed == 100)
  }
}

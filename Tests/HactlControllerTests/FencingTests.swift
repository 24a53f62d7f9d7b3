import HactlController
import HactlMembership
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
    if !witness {
      // As the loader sets it for two_node: a node that boots alone waits
      // to see its peer, or a rebooted node would fence its peer in turn.
      config.cluster.quorum.twoNode = true
      config.cluster.quorum.waitForAll = true
    }
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
    #expect(
      sim.status(via: "beta").fencing == [
        FencingStatus(node: "alpha", state: .failing, level: 1, reason: "power: injected failure")
      ])
    sim.fenceFaults["power"] = nil
    let recovered = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(15))
    #expect(recovered != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    let leaderView = sim.status(via: "beta").fencing?.first
    #expect(leaderView?.node == "alpha" && leaderView?.state == .fenced && leaderView?.device == "power")
    #expect(sim.status(via: "arbiter").fencing == [FencingStatus(node: "alpha", state: .fenced)], "announced")
    // Each attempt is in the leader's history, the announcement in the others'.
    let history = sim.history[sim.id("beta")] ?? []
    #expect(history.first?.outcome == .failed && history.first?.reason == "injected failure")
    #expect(history.first?.device == "power" && history.first?.why == "lost" && history.first?.by == "beta")
    #expect(history.last?.outcome == .fenced && history.filter { $0.outcome == .fenced }.count == 1)
    #expect(sim.history[sim.id("arbiter")]?.map(\.outcome) == [.announced])
    // The announcement says how: the device, its level, how long it took.
    let announced = sim.history[sim.id("arbiter")]?.first
    #expect(announced?.device == "power" && announced?.level == 1 && announced?.by == "beta")
    #expect(announced?.milliseconds == history.last?.milliseconds && announced?.milliseconds != nil)
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

  /// A fencing outlives its leader: the leader announces it, so the next
  /// leader neither fences the same loss again nor waits for it.
  @Test func aNewLeaderDoesNotFenceTheSameLossAgain() throws {
    // Five votes, so that two machines down still leave a quorum.
    var config = SimCluster.config(nodes: 4, witness: true, resources: [SimCluster.marker("vip")])
    let names = config.nodes.map(\.name)
    config.fencing = FencingConfig(devices: [
      FenceDevice(id: "power", program: .hook("/x/power"), targets: .nodes(names), action: .off)
    ])
    var sim = settled(config)
    let alpha = sim.id("alpha")
    sim.stalled.insert(alpha)
    #expect(sim.run(until: { $0.runs("vip").count == 1 && $0.runs("vip") != ["alpha"] }, within: .seconds(10)) != nil)
    #expect(sim.fencedMachines.map(\.target) == [alpha])
    sim.run(for: .seconds(1))
    let leader = try #require(sim.controllers[sim.id("beta")]?.membership.leader)
    sim.crashMachine(leader)
    let survivors = config.nodes.map(\.id).filter { $0 != alpha && $0 != leader }
    let taken = sim.run(
      until: { sim in
        survivors.contains { sim.controllers[$0]?.membership.isLeader == true } && sim.runs("vip").count == 1
          && !sim.runs("vip").contains(sim.name(leader))
      }, within: .seconds(10))
    #expect(taken != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    sim.run(for: .seconds(3))
    #expect(sim.fencedMachines.filter { $0.target == alpha }.count == 1, "alpha is fenced once for its one loss")
    #expect(sim.fencedMachines.filter { $0.target == leader }.count <= 1)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// A device that says it fenced a node it did not: when the node wakes
  /// and hears the leader say so, it stops everything itself.
  @Test func aNodeThatLearnsItWasFencedStopsEverything() throws {
    var sim = settled(fencedConfig())
    sim.fenceFaults["power"] = .lie
    let alpha = sim.id("alpha")
    sim.stalled.insert(alpha)
    #expect(sim.run(until: { $0.runs("vip").contains("beta") }, within: .seconds(10)) != nil)
    #expect(sim.confirmedFenced == [alpha] && sim.runs("vip") == ["alpha", "beta"])
    sim.stalled.remove(alpha)
    let stopped = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(5))
    #expect(stopped != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.controllers[alpha]?.fencedSelf == true)
    sim.run(for: .seconds(3))
    #expect(sim.runs("vip") == ["beta"], "it starts nothing again")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// A stop that fails leaves the resource running where it was: with
  /// fencing, that node is fenced (pacemaker's default for a stop), and the
  /// resource then starts where it was asked to go. (The leader, alpha,
  /// fences beta; a leader cannot fence itself.)
  @Test func aFailedStopFencesItsNode() throws {
    var config = fencedConfig()
    config.resources = [SimCluster.marker("vip", prefer: "beta")]
    var sim = SimCluster(config: config)
    #expect(sim.run(until: { $0.runs("vip") == ["beta"] && Chaos.isConverged($0) }, within: .seconds(10)) != nil)
    sim.fail("beta", "vip", .stop)
    #expect(sim.migrate("vip", to: "alpha", via: "alpha") != nil)
    let moved = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10))
    #expect(moved != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.fencedMachines.map(\.target) == [sim.id("beta")])
    sim.run(for: .seconds(5))
    #expect(sim.fencedMachines.count == 1, "its loss after the fence is not fenced again")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// The leader's own stop fails: a leader cannot fence itself, so it
  /// steps down and stands for no election; the node that leads next
  /// fences it, then runs the resource.
  @Test func aLeaderWhoseStopFailsStepsDownAndIsFenced() throws {
    var config = fencedConfig()
    config.resources = [SimCluster.marker("vip", prefer: "alpha")]
    var sim = SimCluster(config: config)
    #expect(sim.run(until: { $0.runs("vip") == ["alpha"] && Chaos.isConverged($0) }, within: .seconds(10)) != nil)
    let leader = try #require(sim.controllers.values.first { $0.membership.isLeader }?.local.id)
    let other = leader == sim.id("alpha") ? "beta" : "alpha"
    if sim.runs("vip") != [sim.name(leader)] {
      #expect(sim.migrate("vip", to: sim.name(leader), via: sim.name(leader)) != nil)
      #expect(sim.run(until: { $0.runs("vip") == [$0.name(leader)] }, within: .seconds(10)) != nil)
    }
    sim.fail(sim.name(leader), "vip", .stop)
    #expect(sim.migrate("vip", to: other, via: sim.name(leader)) != nil)
    let moved = sim.run(until: { $0.runs("vip") == [other] }, within: .seconds(15))
    #expect(moved != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.fencedMachines.map(\.target) == [leader])
    #expect(sim.trace.contains { $0.contains("stepping down for another node to fence it") })
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// A pair without a witness splits and each half fences the other: the
  /// priority delay holds back the shot at the node that runs the resource,
  /// so it survives; a configured winner survives whatever it runs.
  @Test(arguments: [nil, "beta"])
  func aSplitPairFencesExactlyOneNode(winner: String?) throws {
    var config = fencedConfig(witness: false)
    config.fencing.priorityDelay = .seconds(5)
    config.fencing.winner = winner
    var sim = settled(config)
    sim.partition([sim.id("alpha")])
    sim.run(for: .seconds(15))
    let survivor = winner ?? "alpha"
    let loser = survivor == "alpha" ? "beta" : "alpha"
    #expect(
      sim.fencedMachines.map(\.target).prefix(1) == [sim.id(loser)],
      "\(sim.trace.filter { $0.contains("fence") }.joined(separator: "\n"))")
    #expect(!sim.fencedMachines.contains { $0.target == sim.id(survivor) }, "both halves shot")
    #expect(sim.runs("vip") == [survivor])
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// `hactl fence --confirm`: while the device fails, an operator declares
  /// the node off and its resource moves; a member cannot be confirmed off.
  @Test func anOperatorConfirmsANodeOffWhileItsDeviceFails() throws {
    var sim = settled(fencedConfig())
    sim.fenceFaults["power"] = .fail(times: .max)
    let refusedID = sim.fence("alpha", confirm: true, via: "beta")
    let refused = try #require(refusedID)
    sim.run(for: .milliseconds(500))
    #expect(sim.answers[sim.id("beta")]?.last { $0.id == refused }?.accepted == false)
    sim.stalled.insert(sim.id("alpha"))
    sim.run(for: .seconds(4))
    #expect(sim.runs("vip") == ["alpha"])
    // The operator has turned alpha off by hand.
    sim.crashMachine(sim.id("alpha"))
    let askedID = sim.fence("alpha", confirm: true, via: "beta")
    let asked = try #require(askedID)
    #expect(sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(5)) != nil)
    let answer = sim.answers[sim.id("beta")]?.last { $0.id == asked }
    #expect(answer?.accepted == true && answer?.message.contains("confirmed off by an operator") == true)
    #expect(sim.fencedMachines.isEmpty)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// `hactl fence NODE --off` on a live node: it is fenced, and what it ran
  /// starts elsewhere; the leader refuses to fence itself.
  @Test func anOperatorFencesALiveNode() throws {
    var config = fencedConfig()
    config.resources = [SimCluster.marker("vip", prefer: "beta")]
    var sim = SimCluster(config: config)
    #expect(sim.run(until: { $0.runs("vip") == ["beta"] && Chaos.isConverged($0) }, within: .seconds(10)) != nil)
    let leader = try #require(sim.controllers[sim.id("alpha")]?.membership.leader)
    #expect(leader == sim.id("alpha"))
    let itselfID = sim.fence("alpha", via: "beta")
    let itself = try #require(itselfID)
    sim.run(for: .milliseconds(500))
    #expect(sim.answers[sim.id("beta")]?.last { $0.id == itself }?.accepted == false)
    #expect(sim.fence("beta", action: .off, via: "alpha") != nil)
    #expect(sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10)) != nil)
    #expect(sim.fencedMachines.map(\.target) == [sim.id("beta")])
    sim.run(for: .seconds(5))
    #expect(sim.crashed.contains(sim.id("beta")), "off: it stays off")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  func watchdogConfig() -> ClusterConfig {
    var config = SimCluster.config(resources: [SimCluster.marker("vip")])
    config.fencing = FencingConfig()
    config.fencing.watchdog = FencingConfig.Watchdog(device: "/dev/watchdog", timeout: .seconds(3))
    return config
  }

  /// A healthy cluster feeds its watchdogs: nothing resets, idle or not.
  @Test func healthyNodesFeedTheirWatchdogs() {
    var sim = settled(watchdogConfig())
    sim.run(for: .seconds(60))
    #expect(sim.watchdogResets.isEmpty, "\(sim.watchdogResets)")
    #expect(sim.runs("vip") == ["alpha"])
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// Self-fencing (sbd's diskless mode): a frozen node stops feeding and
  /// its watchdog resets it; an isolated one loses quorum and stops
  /// feeding too. The survivor counts it fenced after twice the timeout,
  /// never before, and only then starts what it ran.
  @Test(arguments: [false, true])
  func aLostNodeIsResetByItsWatchdogBeforeItsResourceMoves(isolated: Bool) throws {
    var sim = settled(watchdogConfig())
    sim.rebootTime = .seconds(60)  // down for the whole test once reset
    let alpha = sim.id("alpha")
    if isolated { sim.isolate("alpha") } else { sim.stalled.insert(alpha) }
    #expect(sim.run(until: { !$0.controllers[$0.id("beta")]!.membership.isAlive(alpha) }, within: .seconds(3)) != nil)
    sim.run(for: .milliseconds(100))
    #expect(
      sim.status(via: "beta").fencing == [FencingStatus(node: "alpha", state: .fencing, device: "its watchdog")])
    let moved = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(15))
    #expect(moved != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    let reset = try #require(sim.watchdogResets.first { $0.node == alpha })
    let start = try #require(sim.started.last { $0.1 == sim.id("beta") && $0.2 == "vip" })
    #expect(start.0 > reset.at, "started on beta at \(start.0), before alpha's watchdog reset it at \(reset.at)")
    #expect(sim.fencedMachines.isEmpty, "no device")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// The feeding decision: only while quorate, never after a leader said
  /// this boot was fenced, and without a leader's lease only while nothing
  /// but anonymous clone copies may be active here (seed 90620: a
  /// restarted daemon, cut off from its leader, kept what its probe found
  /// and fed its watchdog, so the leader's count of two timeouts ended
  /// with the resource still running there).
  @Test func theWatchdogIsFedOnlyWhileQuorateAndCovered() {
    var config = watchdogConfig()
    config.witness = nil
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    #expect(!node.watchdogShouldBeFed(now: .zero), "alone of two, without quorum")
    _ = node.tick(now: .zero + .milliseconds(10))
    var one = watchdogConfig()
    one.nodes = [one.nodes[0]]
    one.witness = nil
    func started() -> (NodeController, AgentCall) {
      var node = NodeController(config: one, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
      let probe = node.start(now: .zero).compactMap { effect -> AgentCall? in
        if case .runAgent(let call) = effect { return call } else { return nil }
      }[0]
      return (node, probe)
    }
    // Quorate, no leader yet, its probe still running: not fed.
    var (unprobed, probe) = started()
    #expect(!unprobed.watchdogShouldBeFed(now: .zero + .milliseconds(5)), "a resource not probed yet may be running")
    // The probe finds nothing: fed at once, leader or not.
    var effects = unprobed.agentsFinished(
      [NodeController.AgentResult(call: probe, outcome: .exited(7), wallTime: 0)], now: .zero + .milliseconds(5))
    #expect(unprobed.watchdogShouldBeFed(now: .zero + .milliseconds(5)))
    #expect(effects.contains(.feedWatchdog), "fed at once")
    effects = unprobed.tick(now: unprobed.wakeAt)
    #expect(unprobed.wakeAt <= .zero + .seconds(1), "and woken again within a third of the timeout")
    // The probe finds it running and no leader covers this node yet: not
    // fed, until it leads (a lone node's quorum is its own).
    var (found, foundProbe) = started()
    effects = found.agentsFinished(
      [NodeController.AgentResult(call: foundProbe, outcome: .exited(0), wallTime: 0)], now: .zero + .milliseconds(5))
    #expect(!found.watchdogShouldBeFed(now: .zero + .milliseconds(5)), "it keeps a resource no leader judged")
    #expect(!effects.contains(.feedWatchdog))
    var fed = false
    for _ in 0..<20 where !fed {
      fed = found.tick(now: found.wakeAt).contains(.feedWatchdog)
    }
    #expect(found.membership.isLeader && fed, "fed once it leads")
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

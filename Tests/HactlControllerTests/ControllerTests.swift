import HactlConfig
import HactlController
import HactlMembership
import HactlModel
import HactlSimulation
import HactlWire
import Testing

struct ControllerTests {
  func pair(_ resources: [ResourceSpec] = [SimCluster.marker("vip")], witness: Bool = true) -> SimCluster {
    SimCluster(config: SimCluster.config(witness: witness, resources: resources))
  }

  func settled(_ sim: inout SimCluster, _ resource: ResourceID = "vip", on node: String) {
    let took = sim.run(until: { $0.runs(resource) == [node] }, within: .seconds(10))
    #expect(
      took != nil,
      "\(resource) never ran only on \(node): \(sim.runs(resource))\n\(sim.trace.suffix(30).joined(separator: "\n"))")
  }

  @Test func nothingStartsAnywhereUntilEveryMemberHasProbed() {
    // vip prefers beta. alpha's probe hangs until its 5 s timeout; beta's is
    // quick. A leader that did not wait for alpha would start vip on beta
    // after ~1 s, while alpha might be running it.
    let config = SimCluster.config(resources: [SimCluster.marker("vip", prefer: "beta")])
    var sim = SimCluster(config: config, down: ["alpha", "beta", "arbiter"])
    let alpha = sim.id("alpha")
    sim.agentFaults[SimCluster.AgentKey(node: alpha, resource: "vip", action: .monitor)] = .hang(times: 1)
    for member in config.voters { sim.restart(member.id) }
    let leaderElected = sim.run(
      until: { sim in sim.controllers.values.contains { $0.membership.isLeader } }, within: .seconds(5))
    #expect(leaderElected.map { $0 < .seconds(5) } == true, "the leader exists while alpha still probes")
    settled(&sim, on: "beta")
    let firstStart = sim.started.first { $0.2 == "vip" }!.0
    #expect(firstStart >= .zero + .seconds(5), "vip started before alpha's probe had reported")
    #expect(sim.violations.isEmpty)
  }

  @Test func crashOfTheActiveNodeMovesTheResourceWithinTheDeadTimeAndABit() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.run(for: .seconds(1))
    sim.crash("alpha")
    let took = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(5))
    let elapsed = try! #require(took)
    #expect(elapsed <= sim.config.cluster.deadTime + .milliseconds(400))
    let status = sim.status(via: "beta")
    #expect(status.leader == "beta")
    #expect(status.resource("vip")?.node == "beta")
    #expect(status.node("alpha")?.state == .lost)
    #expect(sim.violations.isEmpty)
  }

  @Test func monitorFailureMovesTheResourceAndIsShownInStatus() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.fail("alpha", "vip", .monitor)
    settled(&sim, on: "beta")
    let status = sim.status(via: "arbiter")
    let vip = try! #require(status.resource("vip"))
    #expect(vip.failCounts == ["alpha": 1])
    #expect(vip.lastFailure?.node == "alpha")
    #expect(vip.lastFailure?.action == .monitor)
    #expect(vip.lastFailure?.code == 1)
    #expect(sim.violations.isEmpty)
  }

  @Test func belowTheThresholdAFailedResourceRestartsInPlace() {
    var sim = pair([SimCluster.marker("vip", threshold: 3)])
    settled(&sim, on: "alpha")
    sim.world[sim.id("alpha")]!.remove("vip")  // it died on its own
    sim.run(for: .seconds(2))
    #expect(sim.runs("vip") == ["alpha"])
    #expect(sim.status(via: "alpha").resource("vip")?.failCounts == ["alpha": 1])
    #expect(sim.started.filter { $0.2 == "vip" }.count == 2)
  }

  @Test func startFailureBansTheNodeAndTheOtherTakesOver() {
    var sim = pair()
    sim.fail("alpha", "vip", .start)
    settled(&sim, on: "beta")
    #expect(sim.status(via: "beta").resource("vip")?.lastFailure?.action == .start)
  }

  @Test func failedStopBlocksTheResourceEverywhere() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.fail("alpha", "vip", .monitor)
    sim.fail("alpha", "vip", .stop)
    sim.run(for: .seconds(5))
    // It may still run on alpha, so it must not start on beta.
    #expect(sim.runs("vip") == ["alpha"])
    let vip = sim.status(via: "beta").resource("vip")
    #expect(vip?.state == .blocked)
    #expect(vip?.node == "alpha")
  }

  @Test(arguments: [0, 40, 80, 120, 160, 199])
  func isolatedNodeStopsBeforeTheOthersStartItsResource(phase: Int) {
    var sim = pair()
    sim.stopLatency = .milliseconds(300)
    settled(&sim, on: "alpha")
    sim.run(for: .milliseconds(700 + phase))
    sim.isolate("alpha")
    // The lease makes alpha stop before beta may start: never two copies,
    // not even for an instant, when the stop is shorter than two intervals.
    var overlap: Instant?
    _ = sim.run(
      until: { sim in
        if sim.runs("vip").count > 1 { overlap = sim.now }
        return sim.runs("vip") == ["beta"]
      }, within: .seconds(5))
    #expect(overlap == nil)
    #expect(sim.runs("vip") == ["beta"])
    #expect(sim.violations.isEmpty, "\(sim.violations.first ?? "")")
    #expect(sim.status(via: "alpha").quorum.quorate == false)
    // Healing: alpha rejoins; stickiness keeps the resource on beta.
    sim.heal()
    sim.run(for: .seconds(3))
    #expect(sim.runs("vip") == ["beta"])
    #expect(sim.status(via: "alpha").leader == "beta")
  }

  @Test func stalledNodeStopsItsCopyAndTheLeaderKeepsTheSurvivorsCopy() {
    // Regression: after a stall, queued packets restored quorum before any
    // leader was heard, and an agent result could be the first input; the
    // stale copy was kept and reported, and the leader then stopped the
    // survivor's copy in its favour.
    var sim = pair([SimCluster.marker("vip"), SimCluster.marker("web")])
    settled(&sim, "vip", on: "alpha")
    settled(&sim, "web", on: "alpha")
    let alpha = sim.id("alpha")
    sim.stalled = [alpha]
    sim.run(for: .milliseconds(1500))
    #expect(sim.runs("vip") == ["alpha", "beta"], "beta took over while alpha was frozen")
    sim.stalled = []
    let took = sim.run(until: { $0.runs("vip") == ["beta"] && $0.runs("web") == ["beta"] }, within: .seconds(2))
    #expect(took != nil)
    #expect(took.map { $0 < .milliseconds(200) } == true, "alpha must stop at once, not after a dead time")
    sim.run(for: .seconds(3))
    #expect(sim.runs("vip") == ["beta"])
    #expect(sim.runs("web") == ["beta"])
    #expect(sim.violations.isEmpty)
    #expect(sim.trace.contains { $0.contains("alpha error: this node was stalled") })
  }

  @Test func lostPeerMustReportAfreshBeforeItCounts() {
    // Regression: the first packet after a stall may be a vote request; the
    // leader then used the report from before the stall.
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.run(for: .seconds(1))
    sim.crash("alpha")
    settled(&sim, on: "beta")
    let beta = sim.id("beta")
    let view = sim.status(via: "beta")
    #expect(view.resource("vip")?.activeOn == ["beta"])
    #expect(sim.controllers[beta]!.status(now: sim.now).node("alpha")?.state == .lost)
  }

  @Test func restartedDaemonReportsWhatStillRunsAndOnlyOneCopyRemains() {
    var sim = pair()
    settled(&sim, on: "alpha")
    // alpha's daemon dies but the resource keeps running on its machine.
    let alpha = sim.id("alpha")
    sim.crashDaemon(alpha)
    sim.run(for: .seconds(2))
    #expect(sim.runs("vip") == ["alpha", "beta"])
    sim.restartDaemon("alpha")
    // The probe finds it running; the leader keeps exactly one copy.
    let took = sim.run(until: { $0.runs("vip").count == 1 }, within: .seconds(3))
    #expect(took != nil)
    #expect(sim.trace.contains { $0.contains("restarted") || $0.contains("joined") })
  }

  @Test func migrateMovesItStopFirstAndItStays() {
    var sim = pair()
    settled(&sim, on: "alpha")
    let request = sim.migrate("vip", to: "beta", via: "beta")
    #expect(request != nil)
    settled(&sim, on: "beta")
    let answer = sim.answers[sim.id("beta")]?.first
    #expect(answer?.accepted == true)
    #expect(answer?.message == "moving vip from alpha to beta")
    sim.run(for: .seconds(5))
    #expect(sim.runs("vip") == ["beta"])
    #expect(sim.violations.isEmpty)
  }

  @Test func migrateWithoutANodePicksTheBestOtherNode() {
    var sim = pair()
    settled(&sim, on: "alpha")
    _ = sim.migrate("vip", to: nil, via: "alpha")
    settled(&sim, on: "beta")
  }

  @Test func invalidRequestsAreRefusedLocally() {
    var sim = pair()
    sim.run(for: .seconds(1))
    var alpha = sim.controllers[sim.id("alpha")]!
    let (unknown, _) = alpha.requestMove(resource: "nope", to: nil, now: sim.now)
    #expect(unknown == .failure(.unknownResource("nope")))
    let (witness, _) = alpha.requestMove(resource: "vip", to: "arbiter", now: sim.now)
    #expect(witness == .failure(.notANode("arbiter")))
    let (node, _) = alpha.requestMove(resource: "vip", to: "omega", now: sim.now)
    #expect(node == .failure(.unknownNode("omega")))
  }

  @Test func standbyNodeRunsNothing() {
    var config = SimCluster.config(resources: [SimCluster.marker("vip")])
    config.nodes[0].mode = .standby
    var sim = SimCluster(config: config)
    settled(&sim, on: "beta")
    #expect(sim.status(via: "alpha").node("alpha")?.state == .standby)
  }

  @Test func withoutQuorumNothingRunsAndWithFreezeItKeepsRunning() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.crash("arbiter")
    sim.crash("beta")
    sim.run(for: .seconds(3))
    #expect(sim.runs("vip").isEmpty)
    #expect(sim.status(via: "alpha").quorum.quorate == false)

    var frozen = SimCluster(config: SimCluster.config(resources: [SimCluster.marker("vip")], policy: .freeze))
    settled(&frozen, on: "alpha")
    frozen.crash("arbiter")
    frozen.crash("beta")
    frozen.run(for: .seconds(3))
    #expect(frozen.runs("vip") == ["alpha"])
  }

  /// A leader that steps down for a higher term no longer holds a lease:
  /// the others may elect a leader that cannot hear it, which would start
  /// its resources elsewhere. It applies the no-quorum policy at once
  /// instead of keeping what runs until a new leader speaks.
  @Test func aLeaderThatStepsDownForAHigherTermStopsWhatItRuns() throws {
    var sim = pair()
    settled(&sim, on: "alpha")
    let alphaID = sim.id("alpha")
    let witness = sim.id("arbiter")
    var alpha = try #require(sim.controllers[alphaID])
    try #require(alpha.membership.isLeader, "the test wants alpha to lead")
    let beat = MembershipBeat(term: alpha.membership.term + 1, leader: nil, heard: [alphaID], members: [])
    let header = PacketHeader(
      sender: witness, receiver: alphaID, incarnation: alpha.receiverIncarnation(for: witness),
      receiverIncarnation: alpha.incarnation, sequence: 1 << 40, sentAt: sim.now.nanoseconds)
    let effects = alpha.receive(Packet(header: header, message: .heartbeat(Heartbeat(membership: beat))), now: sim.now)
    #expect(!alpha.membership.isLeader && alpha.membership.quorate)
    let stops = effects.compactMap { effect -> AgentCall? in
      if case .runAgent(let call) = effect, call.action == .stop { return call } else { return nil }
    }
    #expect(stops.map(\.resource) == ["vip"], "\(effects)")
  }

  @Test func changesAreAnnouncedAtOnceNotAtTheNextInterval() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.run(for: .milliseconds(300))
    _ = sim.migrate("vip", to: "beta", via: "alpha")
    // stop + start with two 20 ms agent calls and 1 ms links: far below one
    // 200 ms heartbeat interval per hop.
    let took = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(2))
    #expect(took.map { $0 < .milliseconds(150) } == true, "\(String(describing: took))")
  }

  @Test func anIdleClusterSendsOneHeartbeatPerPeerPerInterval() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.run(for: .seconds(3))
    let before = sim.sent
    sim.run(for: .seconds(10))
    // 10 s at one heartbeat every 200 ms to each of 2 peers: 100 packets.
    for (node, count) in sim.sent {
      let idle = count - (before[node] ?? 0)
      #expect((95...105).contains(idle), "\(node) sent \(idle) packets in 10 idle seconds")
    }
  }

  func twoNode(accept: Bool = false, waitForAll: Bool = true) -> ClusterConfig {
    var config = SimCluster.config(
      witness: false, resources: [SimCluster.marker("vip"), SimCluster.marker("web", prefer: "beta")])
    config.cluster.quorum = QuorumOptions(twoNode: true, waitForAll: waitForAll, unfencedTakeover: accept)
    return config
  }

  @Test func twoNodeSurvivorKeepsQuorumButDoesNotTakeOverWithoutFencing() {
    var sim = SimCluster(config: twoNode())
    settled(&sim, "vip", on: "alpha")
    settled(&sim, "web", on: "beta")
    sim.crash("alpha")
    sim.run(for: .seconds(5))
    let status = sim.status(via: "beta")
    #expect(status.quorum.quorate)
    #expect(status.quorum.twoNode)
    #expect(status.leader == "beta")
    #expect(sim.runs("web") == ["beta"], "its own resource keeps running")
    #expect(sim.runs("vip").isEmpty, "alpha's is not taken over: alpha may still run it")
    #expect(status.resource("vip")?.note == "may still run on alpha (lost, not fenced): not taken over")
    // alpha comes back and reports it runs nothing: vip runs again, on its
    // preferred node (nothing holds it elsewhere).
    sim.restart(sim.id("alpha"))
    settled(&sim, "vip", on: "alpha")
    #expect(sim.violations.isEmpty)
  }

  @Test func twoNodeWithTheRiskAcceptedInWordsTakesOver() {
    var sim = SimCluster(config: twoNode(accept: true))
    settled(&sim, "vip", on: "alpha")
    sim.crash("alpha")
    settled(&sim, "vip", on: "beta")
  }

  @Test func twoNodeSplitLeavesEachSideWithItsOwnAndDistinctTerms() {
    var sim = SimCluster(config: twoNode())
    settled(&sim, "vip", on: "alpha")
    settled(&sim, "web", on: "beta")
    sim.partition([sim.id("alpha")])
    sim.run(for: .seconds(5))
    #expect(sim.runs("vip") == ["alpha"])
    #expect(sim.runs("web") == ["beta"])
    let alpha = sim.controllers[sim.id("alpha")]!.membership
    let beta = sim.controllers[sim.id("beta")]!.membership
    #expect(alpha.isLeader && beta.isLeader)
    #expect(alpha.term != beta.term, "two leaders of one term")
    sim.heal()
    sim.run(for: .seconds(5))
    #expect(sim.controllers.values.filter { $0.membership.isLeader }.count == 1)
    #expect(sim.runs("vip") == ["alpha"])
    #expect(sim.runs("web") == ["beta"])
    #expect(sim.violations.isEmpty)
  }

  @Test func waitForAllHoldsQuorumUntilEveryMemberWasSeenOnce() {
    var sim = SimCluster(config: twoNode(), down: ["beta"])
    sim.run(for: .seconds(5))
    let waiting = sim.status(via: "alpha")
    #expect(!waiting.quorum.quorate)
    #expect(waiting.quorum.waitingFor == ["beta"])
    #expect(sim.runs("vip").isEmpty)
    sim.restart(sim.id("beta"))
    settled(&sim, "vip", on: "alpha")
    #expect(sim.status(via: "alpha").quorum.waitingFor.isEmpty)
    // Once both were seen, losing one no longer costs quorum.
    sim.crash("beta")
    sim.run(for: .seconds(3))
    #expect(sim.status(via: "alpha").quorum.quorate)
    #expect(sim.runs("vip") == ["alpha"])
  }

  @Test func withoutWaitForAllALoneTwoNodeMemberStartsAtOnce() {
    var sim = SimCluster(config: twoNode(waitForAll: false), down: ["beta"])
    settled(&sim, "vip", on: "alpha")
  }

  @Test(arguments: [3, 8, 32])
  func largerClustersElectOneLeaderThatAllFollow(nodes: Int) {
    var sim = SimCluster(config: SimCluster.config(nodes: nodes, witness: false, resources: [SimCluster.marker("vip")]))
    let took = sim.run(
      until: { sim in
        let leaders = Set(sim.controllers.values.compactMap(\.membership.leader))
        return leaders.count == 1 && sim.controllers.values.allSatisfy { $0.membership.leader != nil }
      }, within: .seconds(10))
    #expect(took != nil, "\(sim.memberStates().joined(separator: "\n"))")
    settled(&sim, on: "alpha")
  }

  @Test func statusNamesLeaderQuorumAndPlacement() {
    var sim = pair()
    settled(&sim, on: "alpha")
    sim.run(for: .milliseconds(500))
    let status = sim.status(via: "beta")
    #expect(status.schema == "hactl.status/1")
    #expect(status.cluster == "sim")
    #expect(status.localNode == "beta")
    #expect(status.leader == "alpha")
    #expect(status.quorum == QuorumStatus(quorate: true, votes: 3, expectedVotes: 3, needed: 2))
    #expect(status.nodes.map(\.name) == ["alpha", "beta", "arbiter"])
    #expect(status.nodes.allSatisfy { $0.state == .online && $0.member })
    #expect(status.resources.map(\.state) == [.started])
  }
}

/// The agent results that say nothing about the resource never count as "stopped".
struct UnknownAgentOutcomeTests {
  func probeCall(_ node: inout NodeController) -> AgentCall {
    let calls = node.start(now: .zero).compactMap { effect -> AgentCall? in
      if case .runAgent(let call) = effect { return call } else { return nil }
    }
    return calls[0]
  }

  func calls(_ effects: [ControllerEffect]) -> [AgentCall] {
    effects.compactMap { effect -> AgentCall? in
      if case .runAgent(let call) = effect { return call } else { return nil }
    }
  }

  @Test func aProbeThatCouldNotBeSpawnedLeavesTheResourceUnknownAndIsRetried() {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    let probe = probeCall(&node)
    #expect(probe.isProbe)
    let effects = node.agentFinished(
      probe.id, outcome: .couldNotSpawn("Too many open files"), now: .zero + .milliseconds(5), wallTime: 0)
    #expect(node.localRole(of: "vip") == .unknown, "a probe that never ran must not say 'stopped'")
    #expect(calls(effects).isEmpty, "no retry before the back-off")
    let vip = node.status(now: .zero + .milliseconds(5)).resource("vip")
    #expect(vip?.failCounts.isEmpty == true, "no failure counted, no ban")
    #expect(vip?.lastFailure?.reason.contains("could not be started: Too many open files") == true)
    let retried = calls(node.tick(now: .zero + .milliseconds(5) + NodeController.agentSpawnRetryDelay))
    #expect(retried.map(\.action) == [.monitor] && retried.first?.isProbe == true)
  }

  /// An agent's last words reach `hactl status` on every node: what would
  /// drive an operator's terminal (escape sequences, a bell, a carriage
  /// return hiding the start of the line, a bidirectional override) is
  /// shown as U+FFFD, and the length is capped.
  @Test func anAgentsExitReasonCannotDriveAnOperatorsTerminal() {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    let probe = probeCall(&node)
    let words = "\u{1B}[2J\u{1B}]0;owned\u{07}disk\rfull\u{202E}txt.exe"
    let result = NodeController.AgentResult(call: probe, outcome: .exited(1), wallTime: 0, exitReason: words)
    #expect(result.exitReason == "\u{FFFD}[2J\u{FFFD}]0;owned\u{FFFD}disk\u{FFFD}full\u{FFFD}txt.exe")
    _ = node.agentsFinished([result], now: .zero + .milliseconds(5))
    let reason = node.status(now: .zero + .milliseconds(5)).resource("vip")?.lastFailure?.reason ?? ""
    #expect(reason.contains("disk\u{FFFD}full"), "\(reason)")
    #expect(!reason.unicodeScalars.contains { $0.properties.generalCategory == .control })
    let long = NodeController.AgentResult(
      call: probe, outcome: .exited(1), wallTime: 0, exitReason: String(repeating: "é", count: 10_000))
    #expect((long.exitReason?.utf8.count ?? 0) <= ClusterLimits.failureReasonBytes / 2)
  }

  /// A failed call's output stays with the resource on the node that ran
  /// it: its end, filtered, shown by that node's status; a call that
  /// records no failure does not replace it.
  @Test func aFailedCallsOutputIsKept() throws {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    let probe = probeCall(&node)
    let chatter = (1...2_000).map { "line \($0)" }.joined(separator: "\n")
    let output = chatter + "\nERROR: \u{1B}[31mdisk full\u{1B}[0m\n\n"
    let result = NodeController.AgentResult(call: probe, outcome: .exited(1), wallTime: 0, output: output)
    let effects = node.agentsFinished([result], now: .zero + .milliseconds(5))
    let kept = node.status(now: .zero + .milliseconds(5)).resource("vip")?.lastFailure?.output ?? ""
    #expect(kept.hasSuffix("line 2000\nERROR: \u{FFFD}[31mdisk full\u{FFFD}[0m"), "\(kept.suffix(80))")
    #expect(kept.utf8.count <= ClusterLimits.failureOutputBytes)
    #expect(kept.hasPrefix("line "), "the end starts on a line: \(kept.prefix(20))")
    #expect(!kept.unicodeScalars.contains { $0.properties.generalCategory == .control && $0 != "\n" })
    let stop = try #require(calls(effects).first { $0.action == .stop })
    _ = node.agentsFinished(
      [NodeController.AgentResult(call: stop, outcome: .exited(0), wallTime: 1, output: "stopped\n")],
      now: .zero + .milliseconds(10))
    #expect(node.localRole(of: "vip") == .stopped)
    #expect(node.status(now: .zero + .milliseconds(10)).resource("vip")?.lastFailure?.output == kept)
  }

  @Test func aSingleHugeLineKeepsItsEnd() {
    let line = String(repeating: "é", count: 5_000) + "the end"
    let tail = line.outputTail(100)
    #expect(tail.hasSuffix("the end") && tail.utf8.count <= 100)
    #expect("".outputTail(100).isEmpty && "\n\n".outputTail(100).isEmpty)
  }

  /// hactld hands over every result that came in while the node was busy
  /// in one input; each is recorded as if it came alone, and a result for
  /// a call no longer in flight is ignored.
  @Test func resultsThatArriveTogetherAreEachRecorded() {
    let config = SimCluster.config(resources: ["a", "b", "c"].map { SimCluster.marker(ResourceID($0)) })
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    let probes = calls(node.start(now: .zero))
    #expect(probes.count == 3 && probes.allSatisfy(\.isProbe))
    let outcomes: [ResourceID: AgentOutcome] = ["a": .exited(0), "b": .exited(7), "c": .signaled(9)]
    var results = probes.map { NodeController.AgentResult(call: $0, outcome: outcomes[$0.resource]!, wallTime: 0) }
    results.append(NodeController.AgentResult(call: probes[0], outcome: .exited(7), wallTime: 0))
    let effects = node.agentsFinished(results, now: .zero + .milliseconds(5))
    // Alone, without quorum, a node stops what runs; the repeat of a's
    // probe result came for a call no longer in flight and changed nothing.
    #expect(node.localRole(of: "a") == .stopping)
    #expect(node.localRole(of: "b") == .stopped)
    #expect(node.localRole(of: "c") == .failed)
    #expect(calls(effects).map(\.resource).contains("c"), "c may run: it is stopped")
  }

  @Test func aProbeKilledByASignalIsAFailureNotAStop() {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero)
    let probe = probeCall(&node)
    let effects = node.agentFinished(probe.id, outcome: .signaled(9), now: .zero + .milliseconds(5), wallTime: 0)
    #expect(node.localRole(of: "vip") != .stopped)
    #expect(calls(effects).map(\.action) == [.stop], "it may run: stop it before anyone starts it elsewhere")
  }
}

/// Operator input is bounded where it enters, so no heartbeat grows past
/// what peers accept.
struct RequestLimitTests {
  @Test func requestsBeyondTheLimitAreRefusedAndHeartbeatsStillEncode() {
    var sim = SimCluster(config: SimCluster.config(resources: [SimCluster.marker("vip")]))
    sim.run(until: { $0.runs("vip").count == 1 }, within: .seconds(10))
    // Alone, alpha has no leader to answer: every request stays pending.
    sim.crash("beta")
    sim.crash("arbiter")
    sim.run(for: .seconds(2))
    var accepted = 0
    for _ in 0..<(ClusterLimits.pendingRequests + 10) where sim.migrate("vip", to: nil, via: "alpha") != nil {
      accepted += 1
    }
    #expect(accepted == ClusterLimits.pendingRequests)
    sim.run(for: .seconds(1))
    #expect(sim.violations.isEmpty, "\(sim.violations)")
    #expect((sim.sent[sim.id("alpha")] ?? 0) > 0)
  }

  @Test func aChangeThatWouldLeaveANodeMoreToReportThanAHeartbeatCarriesIsRefused() throws {
    let count = ClusterLimits.reportedResources / 2 + 1
    let old = (0..<count).map { SimCluster.marker(ResourceID("old\($0)")) }
    var sim = SimCluster(config: SimCluster.config(resources: old))
    let ran = sim.run(until: { sim in old.allSatisfy { sim.runs($0.id).count == 1 } }, within: .seconds(30))
    #expect(ran != nil)
    // Renaming them all at once: the old ones still stop while the new run.
    var renamed = sim.runningConfig
    renamed.resources = (0..<count).map { SimCluster.marker(ResourceID("new\($0)")) }
    let refused = try sim.applyConfig(ConfigWriter.yaml(renamed), via: "alpha").get()
    sim.run(for: .seconds(1))
    let answer = sim.answers[sim.id("alpha")]?.first { $0.id == refused }
    #expect(answer?.accepted == false)
    #expect(answer?.message.contains("at once") == true, "\(String(describing: answer))")
    // In two steps it goes through.
    var half = sim.runningConfig
    half.resources = Array(renamed.resources.prefix(8))
    let first = try sim.applyConfig(ConfigWriter.yaml(half), via: "alpha").get()
    sim.run(for: .seconds(2))
    #expect(sim.answers[sim.id("alpha")]?.first { $0.id == first }?.accepted == true)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  @Test func aRemovedResourceWhoseStopFailedStaysVisibleInStatus() throws {
    var sim = SimCluster(config: SimCluster.config(resources: [SimCluster.marker("vip"), SimCluster.marker("db")]))
    let ran = sim.run(until: { $0.runs("db").count == 1 }, within: .seconds(10))
    #expect(ran != nil)
    let holder = try #require(sim.runs("db").first)
    sim.fail(holder, "db", .stop)
    var next = sim.runningConfig
    next.resources.removeAll { $0.id == "db" }
    _ = try sim.applyConfig(ConfigWriter.yaml(next), via: "alpha").get()
    let blocked = sim.run(
      until: { $0.controllers[$0.id(holder)]!.localRole(of: "db") == .blocked }, within: .seconds(5))
    #expect(blocked != nil)
    sim.run(for: .seconds(1))
    let db = try #require(sim.status(via: "arbiter").resource("db"), "a blocked, removed resource vanished from status")
    #expect(db.state == .blocked)
    #expect(db.note?.contains("stop failed on \(holder)") == true, "\(String(describing: db.note))")
  }
}

struct RestartedOriginTests {
  /// A restarted node numbers its requests from its new boot: the leader
  /// once dropped its first move as "already handled" (same origin, id 1).
  @Test func aRestartedNodesFirstMoveIsHandled() throws {
    var sim = SimCluster(config: SimCluster.config(resources: [SimCluster.marker("vip")]))
    sim.run(until: { $0.runs("vip").count == 1 }, within: .seconds(10))
    let leader = try #require(sim.config.nodes.first { sim.controllers[$0.id]!.membership.isLeader })
    let other = try #require(sim.config.nodes.first { $0.id != leader.id })
    let firstID = sim.migrate("vip", to: nil, via: other.name)
    let first = try #require(firstID)
    sim.run(until: { $0.answers[other.id]?.contains { $0.id == first } == true }, within: .seconds(3))
    sim.run(for: .seconds(1))
    sim.crashDaemon(other.id)
    sim.restartDaemon(other.name)
    sim.run(until: { $0.controllers[other.id]!.membership.leader == leader.id }, within: .seconds(5))
    sim.run(for: .seconds(2))
    let secondID = sim.migrate("vip", to: nil, via: other.name)
    let second = try #require(secondID)
    #expect(second != first)
    let answered = sim.run(
      until: { $0.answers[other.id]?.contains { $0.id == second } == true }, within: .seconds(3))
    #expect(answered != nil, "the restarted node's move was never answered")
  }
}

/// Time as an output, for whole nodes: an idle cluster is woken only for
/// what is due, and nothing that is due is slept through (every input
/// before a node's deadline checks that a tick then would do nothing).
struct WakeTests {
  @Test func anIdleClusterWakesOnlyForHeartbeatsAndMonitors() throws {
    var sim = SimCluster(config: SimCluster.config(resources: [SimCluster.marker("vip")]))
    #expect(sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10)) != nil)
    sim.run(for: .seconds(2))
    let leader = try #require(sim.controllers.values.first { $0.membership.isLeader }?.local.id)
    let before = sim.ticksByNode
    let seconds = 20
    sim.run(for: .seconds(seconds))
    let ticks = Dictionary(
      uniqueKeysWithValues: sim.ticksByNode.map { ($0.key, $0.value - before[$0.key, default: 0]) })
    let interval = sim.config.cluster.heartbeatInterval
    // The leader's timer sends its heartbeats, one per interval; the
    // followers send theirs as the leader's arrive, so their timers (a
    // little later than an interval) never fire while it is heard. And
    // vip's monitor once a second on alpha; nothing else wakes anyone.
    let heartbeats = seconds * Int(Duration.seconds(1) / interval)
    let monitors = seconds
    let total = ticks.values.reduce(0, +)
    #expect(total <= heartbeats + monitors + 3, "\(ticks)")
    #expect(ticks[leader, default: 0] >= heartbeats - 3, "\(ticks)")
    for (node, count) in ticks where node != leader {
      #expect(count <= (sim.name(node) == "alpha" ? monitors : 0) + 1, "\(sim.name(node)): \(count) wakes")
    }
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// Heartbeats that bring nothing new, and ticks between limits, do not
  /// decide again: the answer would be the same (SimCluster decides anyway
  /// on a copy each time and requires it to do nothing). What does change
  /// still decides at once.
  @Test func aSettledClusterDecidesOnlyWhenSomethingChanges() {
    var resources = [SimCluster.marker("vip")]
    resources[0].monitor.interval = .seconds(3600)
    var sim = SimCluster(config: SimCluster.config(resources: resources))
    #expect(sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10)) != nil)
    sim.run(for: .seconds(3))
    let before = sim.controllers.values.map(\.counters)
    sim.run(for: .seconds(20))
    let after = sim.controllers.values.map(\.counters)
    let decided = zip(before, after).map { $1.decisions - $0.decisions }
    let skipped = zip(before, after).map { $1.decisionsSkipped - $0.decisionsSkipped }
    // Each of the three members hears two peers five times a second, and
    // the leader ticks for its own heartbeat as often: 200 inputs in 20 s
    // for a follower, 300 for the leader.
    #expect(decided.allSatisfy { $0 <= 10 }, "decisions: \(decided)")
    #expect(skipped.allSatisfy { $0 >= 190 }, "skipped: \(skipped)")
    #expect(sim.migrate("vip", to: "beta", via: "arbiter") != nil)
    #expect(sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(3)) != nil)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }
}

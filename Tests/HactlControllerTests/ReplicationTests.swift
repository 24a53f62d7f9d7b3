import HactlConfig
import HactlController
import HactlMembership
import HactlModel
import HactlSimulation
import HactlWire
import Testing

/// `hactl config apply` through real controllers: quorum-acknowledged
/// storage, live resource changes, catch-up, and refusals.
struct ReplicationTests {
  func settledCluster(_ config: ClusterConfig) -> SimCluster {
    var sim = SimCluster(config: config)
    let settled = sim.run(
      until: { sim in config.resources.allSatisfy { sim.runs($0.id).count == 1 } && Chaos.isConverged(sim) },
      within: .seconds(10))
    #expect(settled != nil, "\(sim.trace.suffix(20).joined(separator: "\n"))")
    return sim
  }

  func answer(_ sim: SimCluster, on node: String) -> RequestAnswer? { sim.answers[sim.id(node)]?.last }

  func versions(_ sim: SimCluster) -> [String: String] {
    var result: [String: String] = [:]
    for member in sim.config.voters { result[member.name] = sim.controllers[member.id]?.document.version.description }
    return result
  }

  @Test func anAppliedConfigurationIsAnsweredOnlyOnceAQuorumStoredItThenReachesEveryone() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip")]))
    var next = sim.runningConfig
    next.resources.append(SimCluster.marker("db", prefer: "beta"))
    // Asked on a follower: it goes to the leader, which makes version 1.
    let request = try sim.applyConfig(ConfigWriter.yaml(next), via: "beta").get()
    var storedWhenAnswered = 0
    let answered = sim.run(
      until: { sim in
        guard let answer = sim.answers[sim.id("beta")]?.last, answer.id == request else { return false }
        return true
      }, within: .seconds(5))
    #expect(answered != nil)
    let reply = try #require(answer(sim, on: "beta"))
    storedWhenAnswered = sim.votesStoring(try #require(reply.configVersion))
    #expect(reply.accepted, "\(reply.message)")
    #expect(reply.configVersion?.version == 1)
    #expect(storedWhenAnswered >= 2, "answered before a quorum (2 of 3 votes) stored it")
    let everywhere = sim.run(
      until: { sim in Set(sim.config.voters.map { sim.controllers[$0.id]!.document.version }) == [reply.configVersion!]
      },
      within: .seconds(2))
    #expect(everywhere != nil, "\(versions(sim))")
    #expect(sim.run(until: { $0.runs("db") == ["beta"] }, within: .seconds(5)) != nil, "the new resource never started")
    #expect(sim.status(via: "arbiter").configuration?.version == reply.configVersion!.description)
    #expect(sim.violations.isEmpty)
  }

  @Test func resourcesChangeLiveRemovedStopChangedRestartUnchangedStay() throws {
    var sim = settledCluster(
      SimCluster.config(resources: [
        SimCluster.marker("vip"), SimCluster.marker("db", prefer: "beta"), SimCluster.marker("web", prefer: "beta"),
      ]))
    let startsBefore = sim.started.count
    var next = sim.runningConfig
    next.resources.removeAll { $0.id == "db" }
    next.resources[0].parameters = [("ip", "10.9.9.9")]  // vip: redefined, so restarted
    next.resources[1].stickiness = 500  // web: a placement change only
    _ = try sim.applyConfig(ConfigWriter.yaml(next), via: "alpha").get()
    let done = sim.run(
      until: { sim in
        sim.runs("db").isEmpty && sim.runs("vip") == ["alpha"] && sim.runs("web") == ["beta"]
          && sim.started.count > startsBefore
      }, within: .seconds(5))
    #expect(done != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    let restarted = sim.started[startsBefore...].map { "\($0.2)@\(sim.name($0.1))" }
    #expect(restarted == ["vip@alpha"], "only the redefined resource restarts, in place")
    let status = sim.status(via: "beta")
    #expect(status.resource("db") == nil)
    #expect(sim.controllers[sim.id("alpha")]!.definition(of: "vip")?.parameters.first?.value == "10.9.9.9")
    #expect(
      sim.controllers[sim.id("beta")]!.definition(of: "db") == nil, "a removed resource is forgotten once stopped")
    #expect(sim.violations.isEmpty)
  }

  /// A change of reloadable parameters only is applied by the agent's
  /// reload where the resource runs, with the new definition, and nothing
  /// stops; a change of any other parameter restarts it; a failed reload
  /// restarts it with the new definition.
  @Test func reloadableParametersReloadOthersRestart() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip"), SimCluster.marker("web")]))
    sim.agentReloads[AgentRef(provider: "hactl", type: "Marker")] = AgentReload(
      action: .reloadAgent, reloadable: ["weight", "log_level"])
    func change(_ edit: (inout ClusterConfig) -> Void) throws {
      var next = sim.runningConfig
      edit(&next)
      _ = try sim.applyConfig(ConfigWriter.yaml(next), via: "beta").get()
    }
    func value(_ sim: SimCluster, _ id: ResourceID, _ name: String) -> String? {
      sim.controllers[sim.id("alpha")]!.definition(of: id)?.parameters.first { $0.name == name }?.value
    }
    let startsBefore = sim.started.count
    let actionsBefore = sim.actions.count
    try change { $0.resources[0].parameters = [("weight", "2"), ("log_level", "debug")] }
    let reloaded = sim.run(until: { value($0, "vip", "weight") == "2" }, within: .seconds(5))
    #expect(reloaded != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.reloaded.map(\.definition.id) == ["vip"])
    #expect(sim.reloaded.first?.definition.parameters.first?.value == "2", "called with the new definition")
    _ = sim.run(until: { _ in false }, within: .seconds(2))
    #expect(sim.started.count == startsBefore, "a reload starts nothing")
    let calls = sim.actions[actionsBefore...].filter { $0.call.resource == "vip" }.map(\.call.action)
    #expect(calls == [.metaData, .reloadAgent], "asked, then reloaded, nothing stopped")

    // A parameter the agent cannot reload: a restart.
    try change { $0.resources[0].parameters = [("weight", "2"), ("log_level", "debug"), ("ip", "10.0.0.9")] }
    #expect(
      sim.run(until: { value($0, "vip", "ip") == "10.0.0.9" && $0.runs("vip") == ["alpha"] }, within: .seconds(5))
        != nil)
    #expect(sim.started.count == startsBefore + 1 && sim.reloaded.count == 1)

    // A reload that fails: restarted, with the new definition.
    sim.fail("alpha", "web", .reloadAgent, times: 1)
    try change { $0.resources[1].parameters = [("weight", "3")] }
    let restarted = sim.run(
      until: {
        value($0, "web", "weight") == "3" && $0.runs("web") == ["alpha"] && $0.started.count > startsBefore + 1
      },
      within: .seconds(5))
    #expect(restarted != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.status(via: "beta").resource("web")?.lastFailure?.action == .reloadAgent)
    #expect(sim.violations.isEmpty)
  }

  /// Without meta-data that says the agent reloads (the simulator's
  /// default), a changed parameter restarts the resource, as before.
  @Test func anAgentThatCannotReloadIsRestarted() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip")]))
    let startsBefore = sim.started.count
    var next = sim.runningConfig
    next.resources[0].parameters = [("weight", "2")]
    _ = try sim.applyConfig(ConfigWriter.yaml(next), via: "beta").get()
    #expect(
      sim.run(until: { $0.started.count > startsBefore && $0.runs("vip") == ["alpha"] }, within: .seconds(5)) != nil)
    #expect(sim.reloaded.isEmpty)
    #expect(sim.actions.contains { $0.2.action == .metaData }, "the agent was asked first")
    #expect(sim.violations.isEmpty)
  }

  @Test func aPartitionWithoutQuorumRefusesAtOnceAndBadTextChangesNothing() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip")]))
    let before = versions(sim)
    #expect(throws: NodeController.RequestError.self) {
      try sim.applyConfig("cluster: [", via: "alpha").get()
    }
    var membership = sim.runningConfig
    membership.cluster.heartbeatInterval = .milliseconds(100)
    let refusal = sim.applyConfig(ConfigWriter.yaml(membership), via: "alpha")
    #expect(refusal.isFailure)
    if case .failure(let error) = refusal { #expect("\(error)".contains("cluster.heartbeat_interval")) }
    sim.isolate("alpha")
    _ = sim.run(until: { !$0.controllers[$0.id("alpha")]!.membership.quorate }, within: .seconds(3))
    var next = sim.runningConfig
    next.resources[0].stickiness = 1
    let alone = sim.applyConfig(ConfigWriter.yaml(next), via: "alpha")
    guard case .failure(.noQuorum) = alone else {
      Issue.record("a node without quorum accepted a change: \(alone)")
      return
    }
    sim.run(for: .seconds(1))
    #expect(versions(sim) == before)
    #expect(sim.storedConfig.isEmpty, "nothing was stored anywhere")
  }

  @Test func bothSidesOfAHealedPartitionEndOnTheNewestAndAnUnacknowledgedChangeIsSuperseded() throws {
    var sim = settledCluster(SimCluster.config(nodes: 3, witness: false, resources: [SimCluster.marker("vip")]))
    let leader = try #require(sim.config.nodes.first { sim.controllers[$0.id]!.membership.isLeader })
    // The leader is cut off as it takes a change: only it stores it.
    sim.isolate(leader.name)
    var lost = sim.runningConfig
    lost.resources[0].stickiness = 11
    let lostRequest = try sim.applyConfig(ConfigWriter.yaml(lost), via: leader.name).get()
    let others = sim.config.nodes.filter { $0.id != leader.id }
    let newLeader = sim.run(
      until: { sim in others.contains { sim.controllers[$0.id]!.membership.isLeader } }, within: .seconds(5))
    #expect(newLeader != nil)
    var kept = sim.runningConfig
    kept = sim.controllers[others[0].id]!.config
    kept.resources[0].stickiness = 22
    let keptRequest = try sim.applyConfig(ConfigWriter.yaml(kept), via: others[0].name).get()
    let acknowledged = sim.run(
      until: { sim in sim.answers[others[0].id]?.contains { $0.id == keptRequest && $0.accepted } == true },
      within: .seconds(5))
    #expect(acknowledged != nil)
    // Its operator's command gave up (else alpha would send it to the new leader).
    sim.giveUp(lostRequest, via: leader.name)
    sim.heal()
    let converged = sim.run(until: { Chaos.isConverged($0) }, within: .seconds(10))
    #expect(converged != nil, "\(versions(sim))")
    let newest = sim.storedConfig.values.map(\.version).max()!
    #expect(Set(versions(sim).values) == [newest.description])
    #expect(sim.runningConfig.resources[0].stickiness == 22)
    #expect(
      sim.answers[leader.id]?.contains { $0.id == lostRequest && $0.accepted } != true,
      "the cut-off leader's change was never acknowledged")
    #expect(sim.violations.isEmpty)
  }

  @Test func aMemberThatWasDownGetsTheNewestWhenItReturns() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip")]))
    sim.crashDaemon(sim.id("beta"))
    var next = sim.runningConfig
    next.resources[0].monitor.interval = .milliseconds(700)
    let request = try sim.applyConfig(ConfigWriter.yaml(next), via: "alpha").get()
    #expect(
      sim.run(until: { $0.answers[$0.id("alpha")]?.contains { $0.id == request } == true }, within: .seconds(3)) != nil)
    #expect(sim.storedConfig[sim.id("beta")] == nil)
    sim.restart(sim.id("beta"))
    let caughtUp = sim.run(
      until: { $0.controllers[$0.id("beta")]!.config.resources[0].monitor.interval == .milliseconds(700) },
      within: .seconds(2))
    #expect(caughtUp != nil)
    #expect(sim.storedConfig[sim.id("beta")]?.version == sim.storedConfig[sim.id("alpha")]?.version)
  }

  @Test func inTwoNodeModeBothNodesMustStoreAChangeBeforeItIsAcknowledged() throws {
    var config = SimCluster.config(witness: false, resources: [SimCluster.marker("vip")])
    config.cluster.quorum = QuorumOptions(twoNode: true, waitForAll: true)
    var sim = settledCluster(config)
    sim.crashDaemon(sim.id("beta"))
    sim.run(for: .seconds(2))  // alpha alone is quorate in two-node mode
    var next = sim.runningConfig
    next.resources[0].stickiness = 3
    let request = try sim.applyConfig(ConfigWriter.yaml(next), via: "alpha").get()
    sim.run(for: .seconds(2))
    #expect(sim.answers[sim.id("alpha")]?.contains { $0.id == request } != true, "acknowledged by one node of two")
    sim.restart(sim.id("beta"))
    let answered = sim.run(
      until: { $0.answers[$0.id("alpha")]?.contains { $0.id == request && $0.accepted } == true }, within: .seconds(5))
    #expect(answered != nil)
    #expect(sim.votesStoring(sim.storedConfig[sim.id("alpha")]!.version) == 2)
  }

  @Test func offersAreTakenOnlyWhenNewerAndValid() throws {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    let text = ConfigWriter.yaml(config)
    let current = ConfigDocument(
      version: ConfigVersion(epoch: 4, version: 6), base: ConfigVersion(epoch: 4, version: 5), text: text)
    var node = NodeController(
      config: config, local: NodeID(2), incarnation: 1, election: ElectionRecord(term: 4), now: .zero,
      document: current)
    func offer(_ document: ConfigDocument, sequence: UInt64) -> [ControllerEffect] {
      let header = PacketHeader(
        sender: NodeID(1), receiver: NodeID(2), incarnation: 1, receiverIncarnation: node.incarnation,
        sequence: sequence, sentAt: 0)
      return node.receive(Packet(header: header, message: .configOffer(document)), now: .zero)
    }
    var changed = config
    changed.resources[0].stickiness = 9
    let older = ConfigDocument(
      version: ConfigVersion(epoch: 3, version: 9), base: .initial, text: ConfigWriter.yaml(changed))
    #expect(!offer(older, sequence: 1).contains { if case .persistConfig = $0 { true } else { false } })
    let invalid = ConfigDocument(version: ConfigVersion(epoch: 4, version: 7), base: current.version, text: "nodes: 3")
    let refused = offer(invalid, sequence: 2)
    #expect(!refused.contains { if case .persistConfig = $0 { true } else { false } })
    #expect(refused.contains { if case .log(.error, let line) = $0 { line.contains("invalid here") } else { false } })
    #expect(node.document == current)
    let newer = ConfigDocument(
      version: ConfigVersion(epoch: 4, version: 8), base: current.version, text: ConfigWriter.yaml(changed))
    let taken = offer(newer, sequence: 3)
    #expect(taken.contains(.persistConfig(newer)))
    #expect(node.document == newer)
    #expect(node.config.resources[0].stickiness == 9)
    #expect(node.membership.configVersion == newer.version)
  }
}

extension ReplicationTests {
  @Test func aMemberThatCannotTakeTheConfigurationRunsNothingAfterADeadTimeAndTheRestCarriesOn() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip", prefer: "beta")]))
    let holder = "beta"
    let other = "alpha"
    #expect(sim.runs("vip") == [holder])
    try #require(sim.controllers[sim.id(other)]!.membership.isLeader)
    // Its path drops parts: every offer (larger than a datagram) is lost.
    sim.partsDroppedTo = [sim.id(holder)]
    var next = sim.runningConfig
    next.resources.append(SimCluster.marker("db", prefer: holder))
    next.resources[1].parameters = [("comment", String(repeating: "padding ", count: 200))]  // over one datagram
    _ = try sim.applyConfig(ConfigWriter.yaml(next), via: other).get()
    // Within the dead time the leader waits for it; after, it moves on without it.
    sim.run(for: sim.config.cluster.deadTime / 2)
    #expect(sim.runs("db").isEmpty, "placed before the member behind had a dead time to catch up")
    let movedOn = sim.run(until: { $0.runs("db") == [other] && $0.runs("vip") == [other] }, within: .seconds(5))
    #expect(movedOn != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.status(via: other).configuration?.behind == [holder])
    // Once its path is fixed it catches up and may run resources again.
    sim.partsDroppedTo = []
    let caughtUp = sim.run(
      until: { $0.controllers[$0.id(holder)]!.document == $0.controllers[$0.id(other)]!.document }, within: .seconds(2))
    #expect(caughtUp != nil)
    #expect(sim.run(until: { $0.status(via: other).configuration?.behind == [] }, within: .seconds(1)) != nil)
    _ = sim.migrate("db", to: holder, via: other)
    #expect(sim.run(until: { $0.runs("db") == [holder] }, within: .seconds(5)) != nil, "it may not run resources again")
    #expect(sim.violations.isEmpty)
  }
}

extension ReplicationTests {
  /// Raft's election restriction, shown in a whole cluster: gamma never gets
  /// the change (its path drops parts), alpha and beta
  /// acknowledge it, alpha dies. Were gamma elected, its next change would be
  /// made from a configuration without the acknowledged one, losing it.
  @Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
  func aMemberWithoutAnAcknowledgedChangeIsNeverElected(seed: UInt64) throws {
    let config = SimCluster.config(nodes: 3, witness: false, resources: [SimCluster.marker("vip")])
    var sim = SimCluster(config: config, seed: seed)
    #expect(sim.run(until: { Chaos.isConverged($0) && $0.runs("vip").count == 1 }, within: .seconds(10)) != nil)
    let leader = try #require(config.nodes.first { sim.controllers[$0.id]!.membership.isLeader })
    let behind = config.nodes.first { $0.id != leader.id }!
    let holder = config.nodes.first { $0.id != leader.id && $0.id != behind.id }!
    sim.partsDroppedTo = [behind.id]
    var first = sim.runningConfig
    first.resources[0].stickiness = 123
    first.resources[0].parameters = [("comment", String(repeating: "padding ", count: 200))]  // over one datagram
    let request = try sim.applyConfig(ConfigWriter.yaml(first), via: leader.name).get()
    #expect(
      sim.run(
        until: { $0.answers[leader.id]?.contains { $0.id == request && $0.accepted } == true }, within: .seconds(2))
        != nil)
    sim.crash(leader.name)
    let elected = sim.run(
      until: { sim in [behind, holder].contains { sim.controllers[$0.id]!.membership.isLeader } }, within: .seconds(5))
    #expect(elected != nil)
    let holderLeads = sim.controllers[holder.id]!.membership.isLeader
    #expect(holderLeads, "\(behind.name) was elected without the acknowledged change")
    // A change asked on the member behind goes to the leader and keeps the first.
    var second = sim.controllers[behind.id]!.config
    second.resources[0].migrationThreshold = 4
    let asked = try sim.applyConfig(ConfigWriter.yaml(second), via: behind.name).get()
    _ = sim.run(until: { $0.answers[behind.id]?.contains { $0.id == asked } == true }, within: .seconds(3))
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }
}

extension ReplicationTests {
  /// Found by the simulator (seed 705327, before the fix): a daemon that
  /// crashed while stopping a removed resource came back with a configuration
  /// that no longer named it, so nobody ever stopped it.
  @Test func aRemovedResourceStillStoppingWhenTheDaemonCrashesIsStoppedAfterTheRestart() throws {
    var sim = settledCluster(
      SimCluster.config(resources: [SimCluster.marker("vip"), SimCluster.marker("db")]))
    #expect(sim.runs("db") == ["alpha"])
    sim.stopLatency = .seconds(2)
    var next = sim.runningConfig
    next.resources.removeAll { $0.id == "db" }
    _ = try sim.applyConfig(ConfigWriter.yaml(next), via: "alpha").get()
    let stopping = sim.run(
      until: { $0.controllers[$0.id("alpha")]!.localRole(of: "db") == .stopping }, within: .seconds(2))
    #expect(stopping != nil)
    #expect(sim.storedRetiring[sim.id("alpha")]?.map(\.id) == ["db"], "recorded before the configuration")
    sim.crashDaemon(sim.id("alpha"))  // db keeps running on the machine
    sim.restart(sim.id("alpha"))
    sim.stopLatency = .milliseconds(20)
    let stopped = sim.run(until: { $0.runs("db").isEmpty }, within: .seconds(5))
    #expect(stopped != nil, "the orphan of a removed resource still runs: \(sim.runs("db"))")
    let forgotten = sim.run(until: { $0.storedRetiring[$0.id("alpha")] == [] }, within: .seconds(1))
    #expect(forgotten != nil)
    #expect(sim.controllers[sim.id("alpha")]!.definition(of: "db") == nil)
    #expect(sim.runs("vip") == ["alpha"], "\(sim.trace.suffix(40).joined(separator: "\n"))")
    #expect(sim.violations.isEmpty)
  }

  @Test func aRestartedDaemonProbesAnOldDefinitionBeforeTheNewOne() throws {
    var config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var old = config.resources[0]
    old.parameters = [("ip", "10.0.0.1")]
    config.resources[0].parameters = [("ip", "10.0.0.2")]
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(), now: .zero, retiring: [old])
    #expect(node.definition(of: "vip") == old, "agent calls use the old definition until it is known stopped")
    let probe = node.start(now: .zero).compactMap { effect -> AgentCall? in
      if case .runAgent(let call) = effect { return call } else { return nil }
    }
    #expect(probe.map(\.action) == [.monitor])
    let effects = node.agentFinished(probe[0].id, outcome: .exited(7), now: .zero + .milliseconds(10), wallTime: 0)
    #expect(node.definition(of: "vip") == config.resources[0])
    #expect(effects.contains(.persistRetiring([])))
  }
}

extension ReplicationTests {
  @Test func manyChangesInARowNeverCostTheLeaderItsFollowers() throws {
    var sim = settledCluster(SimCluster.config(resources: [SimCluster.marker("vip")]))
    let leader = try #require(sim.config.voters.first { sim.controllers[$0.id]!.membership.isLeader })
    let follower = sim.config.nodes.first { $0.id != leader.id }!
    let base = sim.runningConfig
    for round in 0..<40 {
      var next = base
      next.resources[0].stickiness = Score(round + 1)
      let request = try sim.applyConfig(ConfigWriter.yaml(next), via: follower.name).get()
      let answered = sim.run(
        until: { $0.answers[follower.id]?.contains { $0.id == request } == true }, within: .seconds(3))
      #expect(answered.map { $0 < .milliseconds(100) } == true, "round \(round) took \(String(describing: answered))")
    }
    #expect(!sim.trace.contains { $0.contains("lost:") }, "\(sim.trace.filter { $0.contains("lost") })")
    #expect(sim.controllers[leader.id]!.membership.isLeader)
  }
}

/// Offers come from any member, the witness included: they get the checks
/// `config apply` gets.
struct OfferBoundsTests {
  func node() -> NodeController {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    return NodeController(
      config: config, local: NodeID(1), incarnation: 2, election: ElectionRecord(term: 4), now: .zero,
      document: ConfigDocument(version: .initial, base: .initial, text: ConfigWriter.yaml(config)))
  }

  func offer(_ document: ConfigDocument, to node: inout NodeController, sequence: UInt64 = 1) -> [ControllerEffect] {
    let packet = Packet(
      header: PacketHeader(
        sender: NodeID(3), receiver: NodeID(1), incarnation: 9, receiverIncarnation: node.incarnation,
        sequence: sequence, sentAt: 0),
      message: .configOffer(document))
    return node.receive(packet, now: .zero + .milliseconds(10))
  }

  @Test func anOfferThatNeedsARestartIsRefusedAndNotStored() {
    var node = node()
    var changed = node.config
    changed.cluster.keyFile = "/tmp/another-key"
    let document = ConfigDocument(
      version: ConfigVersion(epoch: 4, version: 1), base: .initial, text: ConfigWriter.yaml(changed))
    let effects = offer(document, to: &node)
    #expect(!effects.contains { if case .persistConfig = $0 { return true } else { return false } })
    #expect(node.document.version == .initial)
    #expect(
      effects.contains {
        if case .log(.error, let text) = $0 { return text.contains("key_file") } else { return false }
      })
  }

  @Test func anOfferFromATermNobodyReachedIsIgnored() {
    var node = node()
    var changed = node.config
    changed.resources[0].stickiness = Score(7)
    let beyond = ConfigDocument(
      version: ConfigVersion(epoch: 1_000, version: 1), base: .initial, text: ConfigWriter.yaml(changed))
    let ignored = offer(beyond, to: &node)
    #expect(!ignored.contains { if case .persistConfig = $0 { return true } else { return false } })
    let selfBased = ConfigDocument(
      version: ConfigVersion(epoch: 4, version: 2), base: ConfigVersion(epoch: 4, version: 2),
      text: ConfigWriter.yaml(changed))
    #expect(
      !offer(selfBased, to: &node, sequence: 2).contains {
        if case .persistConfig = $0 { return true } else { return false }
      })
    let fine = ConfigDocument(
      version: ConfigVersion(epoch: 4, version: 1), base: .initial, text: ConfigWriter.yaml(changed))
    #expect(
      offer(fine, to: &node, sequence: 3).contains { if case .persistConfig = $0 { return true } else { return false } }
    )
  }
}

/// Packets recorded before this daemon's boot never count after it.
struct BootHandshakeTests {
  func beat(_ term: UInt64) -> Message {
    .heartbeat(Heartbeat(membership: MembershipBeat(term: term, leader: NodeID(2), heard: [NodeID(1)], members: [])))
  }

  @Test func aPacketNamingAnEarlierBootIsOnlyAHandshake() {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 500, election: ElectionRecord(term: 3), now: .zero)
    // Recorded while this node ran as boot 400: it names boot 400.
    let replayed = Packet(
      header: PacketHeader(
        sender: NodeID(2), receiver: NodeID(1), incarnation: 77, receiverIncarnation: 400, sequence: 9, sentAt: 0),
      message: beat(9))
    let answer = node.receive(replayed, now: .zero + .milliseconds(10))
    #expect(!node.membership.isAlive(NodeID(2)), "a packet for another boot proved the peer alive")
    #expect(node.membership.term == 3, "a packet for another boot raised the term")
    #expect(node.counters.packetsBeforeHandshake == 1)
    // It did tell which boot the peer runs: the answer names it at once.
    #expect(node.receiverIncarnation(for: NodeID(2)) == 77)
    #expect(answer.contains { if case .send(to: NodeID(2), _) = $0 { return true } else { return false } })
    // The peer's next packet names this boot: now it counts.
    let fresh = Packet(
      header: PacketHeader(
        sender: NodeID(2), receiver: NodeID(1), incarnation: 77, receiverIncarnation: 500, sequence: 10, sentAt: 0),
      message: beat(9))
    _ = node.receive(fresh, now: .zero + .milliseconds(20))
    #expect(node.membership.isAlive(NodeID(2)))
    #expect(node.membership.term == 9)
  }

  @Test func aPacketMeantForAnotherMemberIsRefused() {
    let config = SimCluster.config(resources: [SimCluster.marker("vip")])
    var node = NodeController(
      config: config, local: NodeID(1), incarnation: 500, election: ElectionRecord(term: 3), now: .zero)
    let elsewhere = Packet(
      header: PacketHeader(
        sender: NodeID(2), receiver: NodeID(3), incarnation: 77, receiverIncarnation: 500, sequence: 1, sentAt: 0),
      message: beat(9))
    _ = node.receive(elsewhere, now: .zero + .milliseconds(10))
    #expect(!node.membership.isAlive(NodeID(2)))
    #expect(node.counters.packetsFromStrangers == 1)
  }
}

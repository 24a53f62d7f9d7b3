import HactlModel
import HactlScheduler
import Testing

/// The scheduler's contract at its smallest: one primitive on three nodes.
/// Everything larger is a scenario file (ScenarioTests).
struct SchedulerTests {
  let a = NodeID(1)
  let b = NodeID(2)
  let c = NodeID(3)

  func config(prefer: String? = "a", score: Score = 50, stickiness: Score = 100, threshold: Int = 1) -> ClusterConfig {
    let nodes = [(a, "a"), (b, "b"), (c, "c")].map {
      NodeSpec(name: $0.1, id: $0.0, endpoint: Endpoint(host: "127.0.0.1", port: UInt16(7000 + $0.0.rawValue)))
    }
    let vip = ResourceSpec(
      id: "vip", agent: AgentRef(provider: "hactl", type: "Marker"), preferredNode: prefer, preferenceScore: score,
      stickiness: stickiness, migrationThreshold: threshold)
    return ClusterConfig(
      cluster: ClusterSettings(name: "t", keyFile: "k"), nodes: nodes, witness: nil, resources: [vip])
  }

  func schedule(
    _ config: ClusterConfig, _ observed: [ObservedInstance] = [], online: Set<NodeID>? = nil,
    failures: [FailureRecord] = [], moves: [LocationConstraint] = []
  ) -> Transition {
    var nodes = SchedulerInput.allOnline(config)
    for index in nodes.indices { nodes[index].online = online?.contains(nodes[index].id) ?? true }
    return Scheduler.schedule(
      SchedulerInput(config: config, nodes: nodes, observed: observed, failures: failures, operatorConstraints: moves))
  }

  func running(_ node: NodeID) -> ObservedInstance {
    ObservedInstance(InstanceID("vip"), on: node, .running(.started, settled: true))
  }
  func target(_ transition: Transition) -> NodeID? { transition.placement(of: InstanceID("vip"))?.node }

  @Test func stoppedResourceStartsOnItsPreferredNode() {
    let transition = schedule(config())
    #expect(target(transition) == a)
    #expect(transition.actions.map(\.description) == ["start vip on node#1"])
    #expect(transition.summary == ["* Start vip ( a )"])
    #expect(transition.scores.first?.ledgers.mapValues(\.total) == [a: 50, b: 0, c: 0])
    #expect(transition.scores.first?.ledgers[a]?.description == "50 = prefer a +50")
  }

  @Test func stickinessKeepsAHealthyResourceWhereItRuns() {
    let transition = schedule(config(), [running(b)])
    #expect(target(transition) == b)
    #expect(transition.actions.isEmpty)
  }

  @Test func preferenceAboveStickinessMovesItBackStopFirst() {
    let transition = schedule(config(score: 200), [running(b)])
    #expect(target(transition) == a)
    #expect(transition.actions.map(\.description) == ["stop vip on node#2", "start vip on node#1"])
    #expect(transition.actions[1].after == [0])
    #expect(transition.actions[0].isReady && !transition.actions[1].isReady)
    #expect(transition.summary == ["* Move vip ( b -> a )"])
  }

  @Test func tieGoesToWhereItRunsThenToTheLowestID() {
    #expect(target(schedule(config(score: 100, stickiness: 100), [running(b)])) == b)
    #expect(target(schedule(config(prefer: nil))) == a)
  }

  @Test func nodesThatAreNotOnlineAreNeverChosen() {
    let transition = schedule(config(), online: [b, c])
    #expect(target(transition) == b)
    #expect(transition.scores.first?.ledgers[a]?.total == .minusInfinity)
    let nowhere = schedule(config(), online: [])
    #expect(target(nowhere) == nil)
    #expect(nowhere.actions.isEmpty)
  }

  @Test func reachingTheMigrationThresholdBansTheNode() {
    let once = schedule(config(threshold: 2), failures: [FailureRecord(resource: "vip", node: a, count: 1)])
    #expect(target(once) == a)
    let twice = schedule(config(threshold: 2), failures: [FailureRecord(resource: "vip", node: a, count: 2)])
    #expect(target(twice) == b)
    #expect(twice.scores.first?.ledgers[a]?.description.contains("fail count 2 >= migration-threshold 2") == true)
  }

  @Test func anOperatorMoveWinsOverPreferenceAndStickinessButNotOverABan() {
    let move = LocationConstraint(id: "cli-prefer-vip", resource: "vip", score: .infinity, node: "c")
    let moved = schedule(config(score: 500, stickiness: 1000), [running(a)], moves: [move])
    #expect(target(moved) == c)
    let banned = schedule(config(), failures: [FailureRecord(resource: "vip", node: c, count: 1)], moves: [move])
    #expect(target(banned) == a)
  }

  @Test func aCopyBeingStoppedElsewhereDoesNotStopTheOneThatRuns() {
    let transition = schedule(config(), [running(b), ObservedInstance(InstanceID("vip"), on: a, .stopping)])
    #expect(target(transition) == b)
    #expect(transition.actions.map(\.description) == ["stop vip on node#1"])
  }

  @Test func blockedResourceIsLeftAlone() {
    let transition = schedule(config(), [ObservedInstance(InstanceID("vip"), on: a, .blocked)])
    #expect(transition.placement(of: InstanceID("vip"))?.frozen == true)
    #expect(transition.placement(of: InstanceID("vip"))?.reason.contains("blocked") == true)
    #expect(transition.actions.isEmpty)
  }

  /// The scheduler places several instances of a globally-unique clone
  /// per node: with one node lost, two of four go to the survivor.
  @Test func cloneNodeMaxBoundsInstancesPerNode() {
    var config = config(prefer: nil)
    config.nodes.removeLast()
    config.clones = [CloneSpec(id: "vips", child: "vip", cloneMax: 4, cloneNodeMax: 2, globallyUnique: true)]
    var nodes = SchedulerInput.allOnline(config)
    nodes[1].online = false
    let transition = Scheduler.schedule(SchedulerInput(config: config, nodes: nodes))
    #expect(transition.summary == ["* Start vip:0 ( a )", "* Start vip:1 ( a )"])
    #expect(transition.placements.filter { $0.node == nil }.count == 2)
  }

  @Test func scoresSaturateLikePacemaker() {
    #expect(Score.infinity + Score.minusInfinity == .minusInfinity)
    #expect(Score(999_999) + Score(5) == .infinity)
    #expect(Score(-999_999) + Score(-5) == .minusInfinity)
    #expect(Score(parsing: "-inf") == .minusInfinity)
    #expect(Score(parsing: "12") == Score(12))
    #expect(Score(parsing: "x") == nil)
  }
}

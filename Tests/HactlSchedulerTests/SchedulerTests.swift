import HactlModel
import HactlScheduler
import Testing

struct SchedulerTests {
  let a = NodeID(1)
  let b = NodeID(2)
  let c = NodeID(3)

  func spec(
    _ id: ResourceID = "vip", prefer: String? = "a", score: Score = 50, stickiness: Score = 100, threshold: Int = 1
  )
    -> ResourceSpec
  {
    ResourceSpec(
      id: id, agent: AgentRef(provider: "hactl", type: "Marker"), preferredNode: prefer, preferenceScore: score,
      stickiness: stickiness, migrationThreshold: threshold)
  }

  func nodes(eligible: Set<NodeID>? = nil) -> [SchedulerNode] {
    [(a, "a"), (b, "b"), (c, "c")].map {
      SchedulerNode(id: $0.0, name: $0.1, eligible: eligible?.contains($0.0) ?? true)
    }
  }

  func plan(
    _ specs: [ResourceSpec], _ situations: [ResourceID: ResourceSituation] = [:], eligible: Set<NodeID>? = nil,
    moves: [ResourceID: NodeID] = [:]
  ) -> Transition {
    Scheduler.plan(
      SchedulerInput(resources: specs, nodes: nodes(eligible: eligible), situations: situations, moves: moves))
  }

  @Test func stoppedResourceStartsOnItsPreferredNode() {
    let transition = plan([spec()])
    #expect(transition.decision(for: "vip")?.target == a)
    #expect(transition.actions.map(\.description) == ["start vip on node#1"])
    #expect(transition.decision(for: "vip")?.scores == [a: 50, b: 0, c: 0])
  }

  @Test func stickinessKeepsAHealthyResourceWhereItRuns() {
    let transition = plan([spec()], ["vip": ResourceSituation(activeOn: [b])])
    #expect(transition.decision(for: "vip")?.target == b)
    #expect(transition.actions.isEmpty)
  }

  @Test func preferenceAboveStickinessMovesItBack() {
    let transition = plan([spec(score: 200)], ["vip": ResourceSituation(activeOn: [b])])
    #expect(transition.decision(for: "vip")?.target == a)
    #expect(transition.actions.map(\.description) == ["stop vip on node#2", "start vip on node#1"])
    #expect(transition.actions[1].after == [0])
    #expect(transition.startWaits(for: "vip"))
  }

  @Test func tieGoesToWhereItRunsThenToTheLowestID() {
    let equal = plan([spec(prefer: "a", score: 100, stickiness: 100)], ["vip": ResourceSituation(activeOn: [b])])
    #expect(equal.decision(for: "vip")?.target == b)
    let none = plan([spec(prefer: nil)])
    #expect(none.decision(for: "vip")?.target == a)
  }

  @Test func ineligibleNodesAreNeverChosen() {
    let transition = plan([spec()], eligible: [b, c])
    #expect(transition.decision(for: "vip")?.target == b)
    #expect(transition.decision(for: "vip")?.scores[a] == .minusInfinity)
    let nowhere = plan([spec()], eligible: [])
    #expect(nowhere.decision(for: "vip")?.target == nil)
    #expect(nowhere.actions.isEmpty)
  }

  @Test func reachingTheMigrationThresholdBansTheNode() {
    let once = plan([spec(threshold: 2)], ["vip": ResourceSituation(failCounts: [a: 1])])
    #expect(once.decision(for: "vip")?.target == a)
    let twice = plan([spec(threshold: 2)], ["vip": ResourceSituation(failCounts: [a: 2])])
    #expect(twice.decision(for: "vip")?.target == b)
  }

  @Test func anOperatorMoveWinsOverEverything() {
    let transition = plan(
      [spec(score: 500, stickiness: 1000)], ["vip": ResourceSituation(activeOn: [a])], moves: ["vip": c])
    #expect(transition.decision(for: "vip")?.target == c)
    #expect(transition.actions.map(\.description) == ["stop vip on node#1", "start vip on node#3"])
  }

  @Test func aBanBeatsAnOperatorMove() {
    let transition = plan([spec()], ["vip": ResourceSituation(failCounts: [c: 1])], moves: ["vip": c])
    #expect(transition.decision(for: "vip")?.scores[c] == .minusInfinity)
    #expect(transition.decision(for: "vip")?.target == a)
  }

  @Test func extraCopiesAreStoppedWhileTheChosenOneKeepsRunning() {
    let transition = plan([spec()], ["vip": ResourceSituation(activeOn: [b], mustStopOn: [a])])
    #expect(transition.decision(for: "vip")?.target == b)
    #expect(transition.actions.map(\.description) == ["stop vip on node#1"])
    // The node already running it must not be told to stop: no start waits.
    #expect(!transition.startWaits(for: "vip"))
  }

  @Test func blockedResourceIsLeftAlone() {
    let transition = plan([spec()], ["vip": ResourceSituation(blockedOn: [a])])
    #expect(transition.decision(for: "vip")?.target == nil)
    #expect(transition.decision(for: "vip")?.reason.contains("blocked") == true)
    #expect(transition.actions.isEmpty)
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

import HactlModel
import HactlScheduler
import Testing

/// Random configurations and states, from seeds: the scheduler never
/// crashes, keeps every invariant (SchedulerInvariants), and is stable:
/// once its transition has run, it wants nothing more.
struct SchedulerPropertyTests {
  static let seeds: ClosedRange<UInt64> = 1...3_000

  @Test func randomClustersKeepTheInvariantsAndSettle() {
    var unstable: [UInt64] = []
    for seed in Self.seeds {
      let input = RandomCluster.input(seed: seed)
      let transition = Scheduler.schedule(input)
      SchedulerInvariants.check(transition, input)
      let after = Scheduler.schedule(SchedulerInvariants.stateAfter(transition, input))
      if !after.actions.isEmpty { unstable.append(seed) }
    }
    #expect(unstable.isEmpty, "seeds whose transition does not settle: \(unstable.prefix(10))")
  }

  @Test func theSameInputGivesTheSameTransition() {
    for seed in Self.seeds.prefix(200) {
      let input = RandomCluster.input(seed: seed)
      #expect(Scheduler.schedule(input).summary == Scheduler.schedule(input).summary)
      #expect(Scheduler.schedule(input).actions == Scheduler.schedule(input).actions)
    }
  }
}

/// A random cluster: nodes, primitives, groups, clones (some promotable),
/// every kind of constraint, and a state with failures and attributes.
enum RandomCluster {
  static func input(seed: UInt64) -> SchedulerInput {
    var random = SeededRandom(seed: seed)
    let nodeCount = Int.random(in: 1...5, using: &random)
    let nodes = (1...nodeCount).map {
      NodeSpec(name: "n\($0)", id: NodeID(UInt32($0)), endpoint: Endpoint(host: "127.0.0.1", port: UInt16(7000 + $0)))
    }
    let scores: [Score] = [.minusInfinity, -100, 0, 10, 50, 200, .infinity]
    var resources: [ResourceSpec] = []
    for index in 0..<Int.random(in: 1...10, using: &random) {
      var spec = ResourceSpec(id: ResourceID("r\(index)"), agent: AgentRef(provider: "heartbeat", type: "Dummy"))
      if random.chance(0.3) {
        spec.preferredNode = random.pick(nodes).name
        spec.preferenceScore = random.pick(scores)
      }
      spec.stickiness = random.pick([0, 50, 100, 1000])
      spec.migrationThreshold = random.pick([1, 2, 3, 1_000_000])
      if random.chance(0.1) { spec.targetRole = random.pick([.stopped, .unpromoted]) }
      if random.chance(0.05) { spec.managed = false }
      resources.append(spec)
    }
    var free = resources.map(\.id)
    var groups: [GroupSpec] = []
    var clones: [CloneSpec] = []
    while free.count >= 2 && random.chance(0.4) {
      let count = Int.random(in: 2...min(3, free.count), using: &random)
      groups.append(GroupSpec(id: ResourceID("g\(groups.count)"), members: Array(free.prefix(count))))
      free.removeFirst(count)
    }
    var tops = free + groups.map(\.id)
    var cloneable = tops
    for _ in 0..<Int.random(in: 0...2, using: &random) where !cloneable.isEmpty {
      let child = cloneable.remove(at: Int.random(in: 0..<cloneable.count, using: &random))
      tops.removeAll { $0 == child }
      let isGroup = groups.contains { $0.id == child }
      var clone = CloneSpec(id: ResourceID("\(child)-clone"), child: child)
      if random.chance(0.5) { clone.cloneMax = Int.random(in: 1...nodeCount + 1, using: &random) }
      clone.interleave = random.chance(0.5)
      if !isGroup && random.chance(0.3) {
        // Several on a node: each instance a resource of its own.
        clone.globallyUnique = true
        clone.cloneNodeMax = random.pick([1, 2, 3])
      } else if !isGroup && random.chance(0.6) {
        clone.promotable = true
        clone.promotedMax = Int.random(in: 1...2, using: &random)
        clone.promotedNodeMax = 1
      }
      clones.append(clone)
      tops.append(clone.id)
    }
    // An unmanaged resource is left where it is: only a standalone one, so
    // that no group or clone is frozen half-way through a random state.
    for index in resources.indices where !tops.contains(resources[index].id) { resources[index].managed = true }
    let promotable = clones.filter(\.promotable).map(\.id)
    var constraints = Constraints()
    for index in 0..<Int.random(in: 0...4, using: &random) where !tops.isEmpty {
      constraints.locations.append(
        LocationConstraint(
          id: "l\(index)", resource: random.pick(tops), score: random.pick(scores), node: random.pick(nodes).name))
    }
    for index in 0..<Int.random(in: 0...3, using: &random) where tops.count >= 2 {
      let resource = random.pick(tops)
      let with = random.pick(tops.filter { $0 != resource })
      let withRole: ResourceRunRole? = promotable.contains(with) && random.chance(0.6) ? .promoted : nil
      constraints.colocations.append(
        ColocationConstraint(
          id: "c\(index)", resource: resource, with: with, score: random.pick([.minusInfinity, 100, .infinity]),
          withRole: withRole))
    }
    for index in 0..<Int.random(in: 0...3, using: &random) where tops.count >= 2 {
      let first = random.pick(tops)
      let then = random.pick(tops.filter { $0 != first })
      let firstAction: OrderAction = promotable.contains(first) && random.chance(0.5) ? .promote : .start
      constraints.orders.append(
        OrderConstraint(
          id: "o\(index)", first: first, firstAction: firstAction, then: then, thenAction: .start,
          kind: random.pick([.mandatory, .mandatory, .optional, .serialize])))
    }
    let config = ClusterConfig(
      cluster: ClusterSettings(name: "random", keyFile: "k"), nodes: nodes, witness: nil, resources: resources,
      groups: groups, clones: clones, constraints: constraints)
    var facts = SchedulerInput.allOnline(config)
    for index in facts.indices {
      facts[index].online = random.chance(0.85)
      facts[index].standby = random.chance(0.1)
      for clone in clones where clone.promotable && random.chance(0.7) {
        facts[index].attributes["master-\(clone.child)"] = String(random.pick([-5, 0, 5, 10, 100]))
      }
    }
    var observed: [ObservedInstance] = []
    var failures: [FailureRecord] = []
    let states: [ObservedState] = [
      .running(.started, settled: true), .running(.started, settled: false), .failed, .stopping,
    ]
    for spec in resources {
      let group = groups.first { $0.members.contains(spec.id) }?.id
      let clone = clones.first { $0.child == spec.id || $0.child == group }
      for node in nodes where random.chance(0.3) {
        var state = random.pick(states)
        if clone?.promotable == true, case .running = state {
          state = .running(random.pick([.unpromoted, .promoted]), settled: random.chance(0.8))
        }
        let index: Int? = clone == nil ? nil : Int.random(in: 0...3, using: &random)
        observed.append(ObservedInstance(InstanceID(spec.id, index), on: node.id, state))
      }
      if random.chance(0.2) {
        // A globally-unique clone's failures are its instances' own.
        let counted =
          clone?.globallyUnique == true ? clone!.instanceResource(Int.random(in: 0...3, using: &random)) : spec.id
        failures.append(
          FailureRecord(resource: counted, node: random.pick(nodes).id, count: Int.random(in: 1...3, using: &random)))
      }
    }
    return SchedulerInput(config: config, nodes: facts, observed: observed, failures: failures)
  }
}

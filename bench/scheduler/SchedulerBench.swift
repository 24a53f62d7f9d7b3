import Foundation
import HactlLab
import HactlModel
import HactlScheduler

/// Time to compute one transition: a cluster of N nodes running R resource
/// instances (a quarter of the primitives in groups of four, a promotable
/// clone with one instance per node, a location constraint for every tenth
/// resource, colocations and orders between groups) loses one node, and
/// the scheduler plans the recovery.
///
///     swift build -c release && .build/release/scheduler-bench [RUNS] [RESOURCES e.g. 10,100,1000] [NODES e.g. 2,16,32]
@main
enum SchedulerBench {
  static func main() {
    let arguments = CommandLine.arguments.dropFirst().map { $0 }
    let runs = arguments.first.flatMap(Int.init) ?? 50
    func list(_ index: Int, _ fallback: [Int]) -> [Int] {
      arguments.count > index ? arguments[index].split(separator: ",").compactMap { Int($0) } : fallback
    }
    print("| resources | nodes | actions | median ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for count in list(1, [10, 100, 1000]) {
      for nodes in list(2, [2, 16, 32]) {
        let input = cluster(resources: count, nodes: nodes)
        var times: [Double] = []
        var actions = 0
        for _ in 0..<runs {
          let started = ContinuousClock.now
          let transition = Scheduler.schedule(input)
          times.append((ContinuousClock.now - started).seconds * 1000)
          actions = transition.actions.count
        }
        times.sort()
        print(
          String(
            format: "| %d | %d | %d | %.2f | %.2f | %.2f |", input.config.instanceCount, nodes, actions,
            Statistics.percentile(times, 50), Statistics.percentile(times, 99), times.last ?? 0))
      }
    }
  }

  static func cluster(resources total: Int, nodes count: Int) -> SchedulerInput {
    let nodes = (1...count).map {
      NodeSpec(name: "n\($0)", id: NodeID(UInt32($0)), endpoint: Endpoint(host: "127.0.0.1", port: UInt16(7000 + $0)))
    }
    let primitives = max(1, total - count)
    var resources: [ResourceSpec] = []
    for index in 0..<primitives {
      var spec = ResourceSpec(id: ResourceID("r\(index)"), agent: AgentRef(provider: "heartbeat", type: "Dummy"))
      spec.preferredNode = nodes[index % count].name
      resources.append(spec)
    }
    let grouped = primitives / 4 / 4 * 4
    let groups = stride(from: 0, to: grouped, by: 4).map { start in
      GroupSpec(id: ResourceID("g\(start / 4)"), members: resources[start..<start + 4].map(\.id))
    }
    resources.append(ResourceSpec(id: "state", agent: AgentRef(provider: "heartbeat", type: "Stateful")))
    let clone = CloneSpec(id: "state-clone", child: "state", promotable: true)
    var constraints = Constraints()
    for index in stride(from: grouped, to: primitives, by: 10) {
      constraints.locations.append(
        LocationConstraint(id: "l\(index)", resource: ResourceID("r\(index)"), score: 100, node: nodes[0].name))
    }
    for (index, group) in groups.enumerated() where index > 0 && index % 3 == 0 {
      constraints.colocations.append(
        ColocationConstraint(id: "c\(index)", resource: group.id, with: groups[index - 1].id, score: 500))
      constraints.orders.append(OrderConstraint(id: "o\(index)", first: groups[index - 1].id, then: group.id))
    }
    let config = ClusterConfig(
      cluster: ClusterSettings(name: "bench", keyFile: "k"), nodes: nodes, witness: nil, resources: resources,
      groups: groups, clones: [clone], constraints: constraints)
    var facts = SchedulerInput.allOnline(config)
    for index in facts.indices { facts[index].attributes["master-state"] = String(index * 10) }
    // Everything runs where the scheduler put it; then the last node is lost.
    let steady = Scheduler.schedule(SchedulerInput(config: config, nodes: facts))
    var observed: [ObservedInstance] = []
    for placement in steady.placements {
      guard let node = placement.node else { continue }
      observed.append(ObservedInstance(placement.instance, on: node, .running(placement.role, settled: true)))
    }
    facts[count - 1].online = false
    observed.removeAll { $0.node == facts[count - 1].id }
    return SchedulerInput(config: config, nodes: facts, observed: observed)
  }
}

import Foundation
import HactlConfig
import HactlModel
import HactlScenario
import HactlScheduler
import Testing

/// Every file in Scenarios/: a configuration and a cluster state in, the
/// transition (summary, actions, placements, scores) out, compared with the
/// `.out` file beside it. After an intended change, regenerate them all
/// with `scripts/regenerate-scenarios` and read the diff.
struct ScenarioTests {
  static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scenarios")
  static let regenerate = ProcessInfo.processInfo.environment["HACTL_REGENERATE_SCENARIOS"] == "1"

  static var names: [String] {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
    return files.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
  }

  @Test func thereAreScenarios() {
    #expect(Self.names.count >= 40)
  }

  /// A globally-unique clone's primitive runs only as numbered instances:
  /// a state or an event that names it bare is refused, with the names to use.
  @Test func aUniqueClonesInstanceMustBeNamedByNumber() throws {
    let file = Self.folder.appendingPathComponent("clone-unique-active-on-two-nodes.yaml")
    let text = try String(contentsOf: file, encoding: .utf8)
    let config = try ConfigLoader.parse(text.components(separatedBy: "\n---\n")[0], file: "c.yaml")
    var snapshot = ClusterSnapshot()
    snapshot.apply(try SimulationEvent.fail(parsing: "ip:monitor:a"))
    #expect(throws: SnapshotError("'ip' runs as the instances of ip-clone: name one, ip:0 to ip:1")) {
      try snapshot.input(config)
    }
    var numbered = ClusterSnapshot()
    numbered.apply(try SimulationEvent.fail(parsing: "ip:1:monitor:a"))
    let input = try numbered.input(config)
    #expect(input.observed.map(\.instance) == [InstanceID("ip", 1)])
    #expect(input.failures.map(\.resource) == ["ip:1"])
  }

  @Test(arguments: names) func scenario(_ name: String) throws {
    let path = Self.folder.appendingPathComponent("\(name).yaml").path
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let scenario = try Scenario.parse(text, file: "\(name).yaml")
    let input = try scenario.input()
    let transition = Scheduler.schedule(input)
    let output = TransitionText.render(transition, actions: true, scores: true)
    let expectedPath = Self.folder.appendingPathComponent("\(name).out").path
    if Self.regenerate {
      try output.write(toFile: expectedPath, atomically: true, encoding: .utf8)
    } else {
      let expected = try String(contentsOfFile: expectedPath, encoding: .utf8)
      #expect(output == expected, "\(name): run scripts/regenerate-scenarios if the change is intended")
    }
    // Stable: once the transition has run, the scheduler wants nothing more.
    let after = Scheduler.schedule(SchedulerInvariants.stateAfter(transition, input))
    #expect(after.actions.isEmpty, "\(name): after the transition: \(after.summary)")
    SchedulerInvariants.check(transition, input)
  }
}

/// What every transition must respect, whatever the configuration.
enum SchedulerInvariants {
  /// The cluster once every action of `transition` has completed.
  static func stateAfter(_ transition: Transition, _ input: SchedulerInput) -> SchedulerInput {
    var next = input
    let frozen = Set(transition.placements.filter(\.frozen).map(\.instance))
    next.observed = input.observed.filter { frozen.contains($0.instance) }
    for placement in transition.placements where !placement.frozen {
      guard let node = placement.node else { continue }
      next.observed.append(ObservedInstance(placement.instance, on: node, .running(placement.role, settled: true)))
    }
    return next
  }

  static func check(_ transition: Transition, _ input: SchedulerInput) {
    let config = input.config
    let nodes = Dictionary(uniqueKeysWithValues: input.nodes.map { ($0.id, $0) })
    for placement in transition.placements where !placement.frozen {
      guard let node = placement.node else { continue }
      #expect(nodes[node]?.online == true, "\(placement.instance) placed on a node that is not online")
      #expect(nodes[node]?.standby == false, "\(placement.instance) placed on a standby node")
      for ledger in transition.scores where ledger.name == placement.unit.rawValue {
        #expect(ledger.ledgers[node]?.total != .minusInfinity, "\(placement.instance) placed on -INFINITY")
      }
    }
    for clone in config.clones {
      let instances = transition.placements.filter { $0.unit == clone.id && $0.node != nil }
      let first = config.group(clone.child)?.members.first ?? clone.child
      let perNode = Dictionary(grouping: instances.filter { $0.instance.resource == first }) { $0.node! }
      for (node, here) in perNode {
        #expect(here.count <= clone.cloneNodeMax, "\(clone.id): \(here.count) instances on \(node)")
      }
      let promoted = instances.filter { $0.role == .promoted }
      if clone.promotable {
        #expect(promoted.count <= clone.promotedMax, "\(clone.id): \(promoted.count) promoted")
        for (node, here) in Dictionary(grouping: promoted, by: { $0.node! }) {
          #expect(here.count <= clone.promotedNodeMax, "\(clone.id): \(here.count) promoted on \(node)")
        }
      } else {
        #expect(promoted.isEmpty)
      }
    }
    for group in config.groups where !config.clones.contains(where: { $0.child == group.id }) {
      if group.members.contains(where: { transition.placement(of: InstanceID($0))?.frozen == true }) { continue }
      let placed = group.members.map { transition.placement(of: InstanceID($0))?.node }
      let nodesUsed = Set(placed.compactMap { $0 })
      #expect(nodesUsed.count <= 1, "group \(group.id) split over \(nodesUsed)")
      // Members run as a prefix: none after one that cannot.
      if let gap = placed.firstIndex(where: { $0 == nil }) {
        #expect(placed[gap...].allSatisfy { $0 == nil }, "group \(group.id) runs a member after a stopped one")
      }
    }
    for colocation in config.constraints.colocations where colocation.score == .minusInfinity {
      let live = { (placement: InstancePlacement) in placement.frozen ? nil : placement.node }
      let mine = Set(transition.placements(of: colocation.resource).compactMap(live))
      let theirs = Set(transition.placements(of: colocation.with).compactMap(live))
      if colocation.role == nil && colocation.withRole == nil {
        #expect(mine.isDisjoint(with: theirs), "\(colocation.id): -INFINITY colocated resources together")
      }
    }
    for (index, action) in transition.actions.enumerated() {
      #expect(action.after.allSatisfy { $0 < transition.actions.count && $0 != index })
    }
    #expect(!hasCycle(transition.actions), "the actions' order has a cycle")
  }

  static func hasCycle(_ actions: [ScheduledAction]) -> Bool {
    var state = Array(repeating: 0, count: actions.count)
    func visit(_ index: Int) -> Bool {
      if state[index] == 1 { return true }
      if state[index] == 2 { return false }
      state[index] = 1
      for before in actions[index].after where visit(before) { return true }
      state[index] = 2
      return false
    }
    return actions.indices.contains { visit($0) }
  }
}

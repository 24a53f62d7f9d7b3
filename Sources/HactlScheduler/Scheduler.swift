import HactlModel

/// A node the scheduler may consider.
public struct SchedulerNode: Sendable, Hashable {
  public var id: NodeID
  public var name: String
  /// A member of the quorate partition, online (not standby), probed.
  public var eligible: Bool
  public init(id: NodeID, name: String, eligible: Bool) {
    self.id = id
    self.name = name
    self.eligible = eligible
  }
}

/// Where a resource is now, from the members' reports.
public struct ResourceSituation: Sendable, Hashable {
  /// Nodes on which it is started (or starting): stickiness applies there.
  public var activeOn: Set<NodeID>
  /// Nodes on which it may be active in any other way (stopping, failed):
  /// it must be stopped there before it starts anywhere else.
  public var mustStopOn: Set<NodeID>
  /// Nodes on which a stop failed: it may run there and nothing may touch it.
  public var blockedOn: Set<NodeID>
  /// Lost nodes that may still run it and cannot be fenced: it must not
  /// start elsewhere (two-node mode without the operator's acceptance).
  public var unfencedOn: Set<NodeID>
  public var failCounts: [NodeID: Int]

  public init(
    activeOn: Set<NodeID> = [], mustStopOn: Set<NodeID> = [], blockedOn: Set<NodeID> = [],
    unfencedOn: Set<NodeID> = [], failCounts: [NodeID: Int] = [:]
  ) {
    self.activeOn = activeOn
    self.mustStopOn = mustStopOn
    self.blockedOn = blockedOn
    self.unfencedOn = unfencedOn
    self.failCounts = failCounts
  }
}

public struct SchedulerInput: Sendable {
  public var resources: [ResourceSpec]
  public var nodes: [SchedulerNode]
  public var situations: [ResourceID: ResourceSituation]
  /// Operator moves in progress: the resource is wanted on that node now.
  public var moves: [ResourceID: NodeID]

  public init(
    resources: [ResourceSpec], nodes: [SchedulerNode], situations: [ResourceID: ResourceSituation],
    moves: [ResourceID: NodeID] = [:]
  ) {
    self.resources = resources
    self.nodes = nodes
    self.situations = situations
    self.moves = moves
  }
}

public struct PlannedAction: Sendable, Hashable, CustomStringConvertible {
  public enum Kind: String, Sendable, Hashable {
    case stop
    case start
  }
  public var kind: Kind
  public var resource: ResourceID
  public var node: NodeID
  /// Indexes of actions in the same transition that must complete first.
  public var after: [Int]

  public var description: String { "\(kind.rawValue) \(resource) on \(node)" }
}

/// Why a resource goes where it goes: the score of every node, and the choice.
public struct PlacementDecision: Sendable, Hashable {
  public var resource: ResourceID
  public var scores: [NodeID: Score]
  public var target: NodeID?
  public var reason: String
}

/// The actions that take the cluster from its state to the wanted one.
public struct Transition: Sendable, Hashable {
  public var actions: [PlannedAction]
  public var decisions: [PlacementDecision]

  public func decision(for resource: ResourceID) -> PlacementDecision? {
    decisions.first { $0.resource == resource }
  }

  /// Whether `resource` must wait for stops before it starts on its target.
  /// A resource already running on its target keeps running there while
  /// extra copies elsewhere are stopped.
  public func startWaits(for resource: ResourceID) -> Bool { startsWaiting.contains(resource) }

  /// Every resource whose start waits for stops: one pass, for a leader
  /// that asks about each of a thousand resources.
  public var startsWaiting: Set<ResourceID> {
    Set(actions.filter { $0.kind == .start && !$0.after.isEmpty }.map(\.resource))
  }
}

/// Placement: a pure function of configuration and state (pacemaker's
/// scheduler idea at our scale). Scores add with saturation; the highest
/// non-negative score wins; ties go to where the resource already runs, then
/// to the lowest node id, so the same input always gives the same answer.
public enum Scheduler {
  public static func plan(_ input: SchedulerInput) -> Transition {
    var actions: [PlannedAction] = []
    var decisions: [PlacementDecision] = []
    for spec in input.resources {
      let situation = input.situations[spec.id] ?? ResourceSituation()
      let decision = place(spec, situation: situation, input: input)
      decisions.append(decision)
      guard situation.blockedOn.isEmpty else { continue }
      var stops: [Int] = []
      let stopNodes = situation.activeOn.union(situation.mustStopOn).filter { node in
        node != decision.target || situation.mustStopOn.contains(node)
      }
      for node in stopNodes.sorted() {
        stops.append(actions.count)
        actions.append(PlannedAction(kind: .stop, resource: spec.id, node: node, after: []))
      }
      if let target = decision.target, !situation.activeOn.contains(target) || situation.mustStopOn.contains(target) {
        actions.append(PlannedAction(kind: .start, resource: spec.id, node: target, after: stops))
      }
    }
    return Transition(actions: actions, decisions: decisions)
  }

  static func place(_ spec: ResourceSpec, situation: ResourceSituation, input: SchedulerInput)
    -> PlacementDecision
  {
    var scores: [NodeID: Score] = [:]
    for node in input.nodes {
      var score = Score.zero
      if !node.eligible { score = score + .minusInfinity }
      if spec.preferredNode == node.name { score = score + spec.preferenceScore }
      if situation.activeOn.contains(node.id) { score = score + spec.stickiness }
      if input.moves[spec.id] == node.id { score = score + .infinity }
      if (situation.failCounts[node.id] ?? 0) >= spec.migrationThreshold { score = score + .minusInfinity }
      scores[node.id] = score
    }
    if !situation.blockedOn.isEmpty {
      let names = situation.blockedOn.sorted().map { name(of: $0, in: input) }.joined(separator: ", ")
      return PlacementDecision(
        resource: spec.id, scores: scores, target: nil,
        reason: "blocked: a stop failed on \(names); clean it up before it can run again")
    }
    if !situation.unfencedOn.isEmpty && situation.activeOn.isEmpty {
      let names = situation.unfencedOn.sorted().map { name(of: $0, in: input) }.joined(separator: ", ")
      return PlacementDecision(
        resource: spec.id, scores: scores, target: nil,
        reason: "may still run on \(names), which was lost and cannot be fenced; not taking it over")
    }
    let best = scores.filter { $0.value >= .zero }.max { lhs, rhs in
      if lhs.value != rhs.value { return lhs.value < rhs.value }
      let lhsActive = situation.activeOn.contains(lhs.key)
      let rhsActive = situation.activeOn.contains(rhs.key)
      if lhsActive != rhsActive { return !lhsActive }
      return lhs.key > rhs.key
    }
    guard let best else {
      return PlacementDecision(
        resource: spec.id, scores: scores, target: nil, reason: "no node can run it (every score is negative)")
    }
    return PlacementDecision(
      resource: spec.id, scores: scores, target: best.key,
      reason: "highest score \(best.value) on \(name(of: best.key, in: input))")
  }

  static func name(of node: NodeID, in input: SchedulerInput) -> String {
    input.nodes.first { $0.id == node }?.name ?? node.description
  }
}

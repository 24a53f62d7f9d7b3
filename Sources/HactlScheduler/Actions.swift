import HactlModel

public enum ActionKind: String, Sendable, Hashable, Codable, CaseIterable {
  case stop, start, promote, demote
}

/// One agent action of a transition, with the actions it must wait for.
public struct ScheduledAction: Sendable, Hashable, CustomStringConvertible {
  public var kind: ActionKind
  public var instance: InstanceID
  public var node: NodeID
  /// Indexes of actions of the same transition that must complete first.
  public var after: [Int] = []
  /// Instances whose own action is still in flight and that this one is
  /// ordered after: a start still running is not a started resource.
  public var waitsFor: [InstanceID] = []
  /// Why, when it is not the resource's own placement (a restart because
  /// what it is ordered after restarts).
  public var cause: String?
  /// Held until the clone's notifications before it have run everywhere
  /// (the leader's doing, not the scheduler's).
  public var heldForNotification = false

  public init(_ kind: ActionKind, _ instance: InstanceID, on node: NodeID, cause: String? = nil) {
    self.kind = kind
    self.instance = instance
    self.node = node
    self.cause = cause
  }

  /// May be carried out now: nothing before it is left.
  public var isReady: Bool { after.isEmpty && waitsFor.isEmpty && !heldForNotification }

  public var description: String { "\(kind.rawValue) \(instance) on \(node)" }
}

/// Stage 5, actions: from where each instance is to where it is wanted.
/// A failed instance is stopped and started again (recovered); one active
/// on several nodes is stopped everywhere and started once (pacemaker's
/// default multiple-active policy); what is ordered after an instance that
/// restarts restarts too.
struct ActionBuilder {
  let model: UnpackedModel
  let plan: Plan
  var actions: [ScheduledAction] = []
  /// Per instance, the indexes of its actions.
  var byInstance: [InstanceID: [Int]] = [:]

  init(_ model: UnpackedModel, _ plan: Plan) {
    self.model = model
    self.plan = plan
  }

  mutating func add(_ action: ScheduledAction) {
    byInstance[action.instance, default: []].append(actions.count)
    actions.append(action)
  }

  func has(_ kind: ActionKind, _ instance: InstanceID, on node: NodeID? = nil) -> Bool {
    (byInstance[instance] ?? []).contains { actions[$0].kind == kind && (node == nil || actions[$0].node == node) }
  }

  mutating func build(pairs: [OrderPair]) -> [ScheduledAction] {
    for (index, unit) in model.units.enumerated() {
      for slot in 0..<unit.slots where !plan.frozen[index][slot] {
        for member in unit.members.indices { instanceActions(index, slot: slot, member: member) }
      }
    }
    for orphan in model.orphans {
      if case .blocked = orphan.state { continue }
      if case .running(.promoted, _) = orphan.state { add(ScheduledAction(.demote, orphan.instance, on: orphan.node)) }
      let cause = model.unit(orphan.instance.resource) == nil ? "no longer configured" : "beyond clone_max"
      add(ScheduledAction(.stop, orphan.instance, on: orphan.node, cause: cause))
    }
    restartDependents(pairs)
    return actions
  }

  mutating func instanceActions(_ unit: Int, slot: Int, member: Int) {
    let instance = model.units[unit].instance(member: member, slot: slot)
    let current = model.states[unit].slots[slot][member]
    let target = plan.runs[unit][slot][member] ? plan.nodes[unit][slot] : nil
    let role = plan.roles[unit][slot]
    let severalActive = current.values.count { if case .running = $0 { return true } else { return false } } > 1
    var stopped: Set<NodeID> = []
    for (node, state) in current.sorted(by: { $0.key < $1.key }) {
      if case .blocked = state { continue }
      let mustStop = state == .failed || state == .stopping
      guard node != target || mustStop || severalActive else { continue }
      if case .running(.promoted, _) = state { add(ScheduledAction(.demote, instance, on: node)) }
      add(ScheduledAction(.stop, instance, on: node))
      stopped.insert(node)
    }
    guard let target else { return }
    if case .running(let now, _)? = current[target], !stopped.contains(target) {
      if now == .promoted && role != .promoted { add(ScheduledAction(.demote, instance, on: target)) }
      if now != .promoted && role == .promoted { add(ScheduledAction(.promote, instance, on: target)) }
      return
    }
    add(ScheduledAction(.start, instance, on: target))
    if role == .promoted { add(ScheduledAction(.promote, instance, on: target)) }
  }

  /// Whether `action` takes away what `pair`'s then depends on: a stop,
  /// or for an order after a promote, the end of the Promoted role.
  func takesDown(_ action: ScheduledAction, _ first: OrderPair.Instance, _ pair: OrderPair) -> Bool {
    guard pair.firstAction == .promote else { return action.kind == .stop }
    return action.kind == .demote || Ordering.endsPromotion(action, first, pair, model)
  }

  /// An instance that stops (to restart or to move) takes down what is
  /// ordered after it (mandatory and symmetrical, or a later member of its
  /// group) on the nodes the order concerns; those start again afterwards
  /// if they are still wanted where they were.
  mutating func restartDependents(_ pairs: [OrderPair]) {
    var changed = true
    var rounds = 0
    while changed && rounds <= model.units.count + 1 {
      changed = false
      rounds += 1
      for pair in pairs where pair.restartsThen {
        for first in pair.firstInstances(model) {
          let stops = (byInstance[first.instance] ?? []).filter { takesDown(actions[$0], first, pair) }.map {
            actions[$0].node
          }
          guard !stops.isEmpty else { continue }
          for then in pair.thenInstances(model, matching: first) {
            let current = model.states[then.unit].slots[then.slot][then.member]
            for (node, state) in current.sorted(by: { $0.key < $1.key }) {
              guard case .running(let role, _) = state, !has(.stop, then.instance, on: node) else { continue }
              guard !pair.sameNode || stops.contains(node) else { continue }
              let restarts = has(pair.firstAction == .promote ? .promote : .start, first.instance)
              let cause = "due to \(first.instance) \(restarts ? "restarting" : "stopping")"
              if role == .promoted { add(ScheduledAction(.demote, then.instance, on: node, cause: cause)) }
              add(ScheduledAction(.stop, then.instance, on: node, cause: cause))
              let target = plan.runs[then.unit][then.slot][then.member] ? plan.nodes[then.unit][then.slot] : nil
              if target == node && !has(.start, then.instance, on: node) {
                add(ScheduledAction(.start, then.instance, on: node, cause: cause))
                if plan.roles[then.unit][then.slot] == .promoted && !has(.promote, then.instance, on: node) {
                  add(ScheduledAction(.promote, then.instance, on: node, cause: cause))
                }
              }
              changed = true
            }
          }
        }
      }
    }
  }
}

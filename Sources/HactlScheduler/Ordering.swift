import HactlModel

/// One "first, then" rule between units: an order constraint, or the order
/// of two members inside a group.
struct OrderPair: Sendable {
  let name: String
  let first: Int
  let firstAction: OrderAction
  let then: Int
  let thenAction: OrderAction
  let mandatory: Bool
  let symmetrical: Bool
  /// Interleaved clones: an instance depends only on the instance on its node.
  let sameNode: Bool
  /// Inside a group: these two members, in the same slot.
  let members: (first: Int, then: Int)?

  /// What is started after the first is stopped before it stops (the
  /// inverse order), and starts again after it: after a start, or after a
  /// promote (then it goes down with the Promoted instance).
  var restartsThen: Bool {
    mandatory && symmetrical && (firstAction == .start || firstAction == .promote) && thenAction == .start
  }

  struct Instance {
    let instance: InstanceID
    let unit: Int
    let slot: Int
    let member: Int
  }

  func instances(of unit: Int, member: Int?, slot: Int?, _ model: UnpackedModel) -> [Instance] {
    let spec = model.units[unit]
    var result: [Instance] = []
    for s in 0..<spec.slots where slot == nil || slot == s {
      for m in spec.members.indices where member == nil || member == m {
        result.append(Instance(instance: spec.instance(member: m, slot: s), unit: unit, slot: s, member: m))
      }
    }
    return result
  }

  func firstInstances(_ model: UnpackedModel) -> [Instance] {
    instances(of: first, member: members?.first, slot: nil, model)
  }

  func thenInstances(_ model: UnpackedModel, matching first: Instance) -> [Instance] {
    instances(of: then, member: members?.then, slot: members == nil ? nil : first.slot, model)
  }

  /// Every order of the configuration, and each group's internal order.
  static func all(_ model: UnpackedModel, _ constraints: Constraints) -> [OrderPair] {
    var pairs: [OrderPair] = []
    for (index, unit) in model.units.enumerated() where unit.members.count > 1 {
      for member in 1..<unit.members.count {
        pairs.append(
          OrderPair(
            name: "group \(unit.id)", first: index, firstAction: .start, then: index, thenAction: .start,
            mandatory: true, symmetrical: true, sameNode: false, members: (member - 1, member)))
      }
    }
    for order in constraints.orders {
      guard let first = model.unit(order.first), let then = model.unit(order.then) else { continue }
      let interleaved = model.units[then].clone?.interleave == true && model.units[first].clone != nil
      pairs.append(
        OrderPair(
          name: "order \(order.id)", first: first, firstAction: order.firstAction, then: then,
          thenAction: order.thenAction, mandatory: order.kind == .mandatory, symmetrical: order.symmetrical,
          sameNode: interleaved, members: nil))
    }
    return pairs
  }
}

/// Stage 6, ordering: the edges between actions. Within an instance:
/// demote before stop, stops before its start, start before promote.
/// Within a promotable clone: every demote before any promote. Then the
/// orders (and their inverse when symmetrical) and the groups' own order.
enum Ordering {
  static func link(_ actions: inout [ScheduledAction], _ model: UnpackedModel, pairs: [OrderPair]) {
    var byInstance: [InstanceID: [Int]] = [:]
    for (index, action) in actions.enumerated() { byInstance[action.instance, default: []].append(index) }
    func edge(_ from: Int, _ to: Int) {
      guard from != to, !actions[to].after.contains(from) else { return }
      actions[to].after.append(from)
    }
    for indexes in byInstance.values {
      for a in indexes {
        for b in indexes where rank(actions[a], before: actions[b]) { edge(a, b) }
      }
    }
    for unit in model.units where unit.promotable {
      let instances = Set((0..<unit.slots).map { unit.instance(member: 0, slot: $0) })
      let own = actions.indices.filter { instances.contains(actions[$0].instance) }
      // A failed or stopping instance may still be promoted: it must be
      // known stopped, like any demote, before another is promoted.
      for a in own where actions[a].kind == .demote || actions[a].kind == .stop {
        for b in own where actions[b].kind == .promote && actions[b].instance != actions[a].instance {
          edge(a, b)
        }
      }
    }
    let states = currentStates(model)
    for pair in pairs {
      for first in pair.firstInstances(model) {
        for then in pair.thenInstances(model, matching: first) {
          let forward = (byInstance[then.instance] ?? []).filter {
            actions[$0].kind.rawValue == pair.thenAction.rawValue
          }
          for b in forward {
            for a in byInstance[first.instance] ?? []
            where actions[a].kind.rawValue == pair.firstAction.rawValue
              && (!pair.sameNode || actions[a].node == actions[b].node)
            {
              edge(a, b)
            }
            // A mandatory 'then' waits for a 'first' whose own action is
            // still in flight (the scheduler sees it running already).
            if pair.mandatory, let unsettled = states[first.instance], !unsettled.isEmpty,
              !pair.sameNode || unsettled.contains(actions[b].node),
              !actions[b].waitsFor.contains(first.instance)
            {
              actions[b].waitsFor.append(first.instance)
            }
          }
          guard pair.symmetrical else { continue }
          let inverseThen = pair.thenAction.inverse.rawValue
          let inverseFirst = pair.firstAction.inverse.rawValue
          for a in byInstance[then.instance] ?? [] where actions[a].kind.rawValue == inverseThen {
            for b in byInstance[first.instance] ?? []
            where (actions[b].kind.rawValue == inverseFirst || endsPromotion(actions[b], first, pair, model))
              && (!pair.sameNode || actions[a].node == actions[b].node)
            {
              edge(a, b)
            }
          }
        }
      }
    }
    // An instance whose own start or promote is in flight is acted on
    // again only once that finishes.
    for index in actions.indices {
      if let unsettled = states[actions[index].instance], unsettled.contains(actions[index].node),
        !actions[index].waitsFor.contains(actions[index].instance)
      {
        actions[index].waitsFor.append(actions[index].instance)
      }
    }
    breakCycles(&actions)
    for index in actions.indices { actions[index].after.sort() }
  }

  /// Orders that contradict each other (A before B and B before A, or
  /// through a chain) would leave actions waiting for each other forever:
  /// the edge that closes each loop is dropped, the first found walking
  /// the actions in order, so the same input always drops the same edge.
  static func breakCycles(_ actions: inout [ScheduledAction]) {
    var state = Array(repeating: 0, count: actions.count)
    for start in actions.indices where state[start] == 0 {
      var stack: [(node: Int, next: Int)] = [(start, 0)]
      state[start] = 1
      while let top = stack.last {
        let before = actions[top.node].after
        if top.next >= before.count {
          state[top.node] = 2
          stack.removeLast()
          continue
        }
        stack[stack.count - 1].next += 1
        let target = before[top.next]
        switch state[target] {
        case 1:
          actions[top.node].after.remove(at: top.next)
          stack[stack.count - 1].next -= 1
        case 0:
          state[target] = 1
          stack.append((target, 0))
        default: break
        }
      }
    }
  }

  /// The stop of an instance that may be Promoted (a failed one may be)
  /// ends its promotion like a demote: what runs after the promotion
  /// stops first.
  static func endsPromotion(
    _ action: ScheduledAction, _ first: OrderPair.Instance, _ pair: OrderPair, _ model: UnpackedModel
  ) -> Bool {
    guard pair.firstAction == .promote, action.kind == .stop else { return false }
    switch model.states[first.unit].slots[first.slot][first.member][action.node] {
    case .running(.unpromoted, _)?, .running(.started, _)?: return false
    default: return true
    }
  }

  /// Within one instance: demote, stop, start, promote; a stop anywhere
  /// comes before a start anywhere.
  static func rank(_ a: ScheduledAction, before b: ScheduledAction) -> Bool {
    switch (a.kind, b.kind) {
    case (.demote, .stop): return a.node == b.node
    case (.stop, .start), (.stop, .promote): return true
    case (.demote, .start): return true
    case (.start, .promote): return a.node == b.node
    default: return false
    }
  }

  /// Nodes where each instance's start or promote is still in flight.
  static func currentStates(_ model: UnpackedModel) -> [InstanceID: Set<NodeID>] {
    var result: [InstanceID: Set<NodeID>] = [:]
    for (index, unit) in model.units.enumerated() {
      for slot in 0..<unit.slots {
        for member in unit.members.indices {
          for (node, state) in model.states[index].slots[slot][member] {
            if case .running(_, settled: false) = state {
              result[unit.instance(member: member, slot: slot), default: []].insert(node)
            }
          }
        }
      }
    }
    return result
  }
}

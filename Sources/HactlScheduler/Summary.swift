import HactlModel

/// A transition as the "Transition Summary" lines that crm_simulate prints
/// and operators already read, one line per instance that changes:
///
///     * Start vip ( node1 )
///     * Move vip ( node1 -> node2 )
///     * Promote drbd0:0 ( Unpromoted -> Promoted node1 )
enum Summary {
  static func lines(_ model: UnpackedModel, _ actions: [ScheduledAction], names: [NodeID: String]) -> [String] {
    var current: [InstanceID: [NodeID: ObservedState]] = [:]
    for (index, unit) in model.units.enumerated() {
      for slot in 0..<unit.slots {
        for member in unit.members.indices {
          current[unit.instance(member: member, slot: slot)] = model.states[index].slots[slot][member]
        }
      }
    }
    for orphan in model.orphans { current[orphan.instance, default: [:]][orphan.node] = orphan.state }
    var order: [InstanceID] = []
    var byInstance: [InstanceID: [ScheduledAction]] = [:]
    for action in actions {
      if byInstance[action.instance] == nil { order.append(action.instance) }
      byInstance[action.instance, default: []].append(action)
    }
    func name(_ node: NodeID) -> String { names[node] ?? node.description }
    var lines: [String] = []
    for instance in order {
      let own = byInstance[instance]!
      let states = current[instance] ?? [:]
      func role(on node: NodeID) -> ResourceRunRole? {
        if case .running(let role, _)? = states[node] { return role }
        return nil
      }
      let stops = own.filter { $0.kind == .stop }.map(\.node)
      let start = own.first { $0.kind == .start }?.node
      let promote = own.first { $0.kind == .promote }?.node
      let demote = own.first { $0.kind == .demote }?.node
      let cause = own.compactMap(\.cause).first.map { "  \($0)" } ?? ""
      let failed = stops.contains { states[$0] == .failed }
      // Stops beyond the one the start pairs with: extra copies.
      var extra = stops
      if let start, let from = stops.first(where: { $0 == start }) ?? stops.first {
        extra.removeAll { $0 == from }
        let fromRole = role(on: from)
        let toRole: ResourceRunRole? = promote == start ? .promoted : nil
        let roles = fromRole == .promoted || toRole != nil
        if from == start {
          let verb = failed ? "Recover" : "Restart"
          lines.append(
            "* \(verb) \(instance) ( \(roles ? "\((toRole ?? .unpromoted).rawValue) " : "")\(name(start)) )\(cause)")
        } else {
          let verb = states[from] == .failed ? "Recover" : "Move"
          let left = roles ? "\((fromRole ?? .unpromoted).rawValue) \(name(from))" : name(from)
          let right = roles ? "\((toRole ?? .unpromoted).rawValue) \(name(start))" : name(start)
          lines.append("* \(verb) \(instance) ( \(left) -> \(right) )\(cause)")
        }
      } else if let start {
        if promote == start {
          lines.append("* Promote \(instance) ( Stopped -> Promoted \(name(start)) )\(cause)")
        } else {
          lines.append("* Start \(instance) ( \(name(start)) )\(cause)")
        }
      } else if let promote {
        lines.append("* Promote \(instance) ( Unpromoted -> Promoted \(name(promote)) )\(cause)")
      } else if let demote, !stops.contains(demote) {
        lines.append("* Demote \(instance) ( Promoted -> Unpromoted \(name(demote)) )\(cause)")
      }
      for node in extra {
        let shown = role(on: node) == .promoted ? "Promoted \(name(node))" : name(node)
        lines.append("* Stop \(instance) ( \(shown) )\(cause)")
      }
    }
    return lines
  }
}

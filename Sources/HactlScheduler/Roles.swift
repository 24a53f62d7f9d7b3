import HactlModel

/// Stage 4, roles: which placed instances of a promotable clone are
/// promoted. Each instance's promotion score is the one its agent set on its
/// node (the `master-RESOURCE` node attribute, from `crm_master`), plus
/// location constraints for the Promoted role, colocations of the Promoted
/// role, and what wants to be with the Promoted instance. An instance whose
/// agent set no score is never promoted; neither is one scored below zero.
enum Roles {
  static func promotionAttribute(_ resource: ResourceID) -> String { "master-\(resource)" }

  static func promote(_ index: Int, _ assignment: inout Assignment) {
    let unit = assignment.model.units[index]
    guard let clone = unit.clone else { return }
    let input = assignment.input
    let plan = assignment.plan
    let child = unit.members[0].id
    var candidates: [(slot: Int, node: NodeID, ledger: Ledger, wishes: Ledger, wasPromoted: Bool)] = []
    let mayPromote = unit.targetRoles[0] != .unpromoted
    let unfenced = input.unfenced.contains { _, resources in resources.contains(unit.id) || resources.contains(child) }
    for slot in plan.nodes[index].indices {
      guard let node = plan.nodes[index][slot], plan.runs[index][slot][0] else { continue }
      if plan.frozen[index][slot] { continue }
      assignment.plan.roles[index][slot] = .unpromoted
      guard let facts = input.nodes.first(where: { $0.id == node }) else { continue }
      var ledger = Ledger()
      guard let text = facts.attributes[promotionAttribute(child)] else {
        ledger.add(.minusInfinity, "no promotion score on \(facts.name)")
        assignment.plan.promotion[index][slot] = ledger
        continue
      }
      ledger.add(Score(parsing: text) ?? .minusInfinity, "promotion score (\(promotionAttribute(child)) = \(text))")
      ledger.add(assignment.scores[index].promoted[node] ?? Ledger(), prefix: "")
      if !mayPromote { ledger.add(.minusInfinity, "target-role Unpromoted") }
      if input.failures.contains(where: {
        $0.resource == child && $0.node == node && $0.operation == FailureRecord.promotionFailed
      }) {
        ledger.add(.minusInfinity, "its Promoted role failed on \(facts.name) (on_fail: demote)")
      }
      if unfenced { ledger.add(.minusInfinity, "may be promoted on a lost node that cannot be fenced") }
      for colocation in assignment.constraints.colocations
      where colocation.resource == unit.id && colocation.role == .promoted {
        guard let primary = assignment.model.unit(colocation.with), plan.placed.contains(primary) else { continue }
        var single: NodeLedgers = [node: Ledger()]
        let there = plan.nodes(of: primary, role: colocation.withRole)
        assignment.apply(colocation, there: there, to: &single)
        ledger.add(single[node] ?? Ledger(), prefix: "")
      }
      var wishes = Ledger()
      for colocation in assignment.constraints.colocations
      where colocation.with == unit.id && colocation.withRole == .promoted && colocation.score > .zero {
        guard let dependent = assignment.model.unit(colocation.resource), !plan.placed.contains(dependent) else {
          continue
        }
        let wish = assignment.influence(of: dependent, on: node, through: colocation.score)
        if wish != .zero { wishes.add(wish, "\(colocation.resource) (colocated with Promoted) wants") }
      }
      for order in assignment.constraints.orders
      where order.kind == .mandatory && order.then == unit.id && order.thenAction == .promote {
        guard let first = assignment.model.unit(order.first), plan.placed.contains(first) else { continue }
        let role: ResourceRunRole? = order.firstAction == .promote ? .promoted : nil
        if plan.nodes(of: first, role: role).isEmpty {
          ledger.add(.minusInfinity, "order \(order.id): \(order.first) cannot \(order.firstAction.rawValue)")
        }
      }
      let wasPromoted: Bool = {
        if case .running(.promoted, _)? = assignment.model.states[index].slots[slot][0][node] { return true }
        return false
      }()
      candidates.append((slot, node, ledger, wishes, wasPromoted))
    }
    // What wants to be with the Promoted instance weighs in, unless it would
    // leave no instance promotable (it then goes without, as placement does).
    let withWishes = candidates.map { candidate in
      var ledger = candidate.ledger
      ledger.add(candidate.wishes, prefix: "")
      return ledger
    }
    let keepWishes = withWishes.contains(where: \.allowed) || !candidates.contains(where: \.ledger.allowed)
    for position in candidates.indices where keepWishes { candidates[position].ledger = withWishes[position] }
    for candidate in candidates { assignment.plan.promotion[index][candidate.slot] = candidate.ledger }
    candidates.sort { lhs, rhs in
      if lhs.ledger.total != rhs.ledger.total { return lhs.ledger.total > rhs.ledger.total }
      if lhs.wasPromoted != rhs.wasPromoted { return lhs.wasPromoted }
      return lhs.node < rhs.node
    }
    // Frozen instances that are promoted count against promoted-max.
    var promoted = plan.roles[index].indices.filter { plan.frozen[index][$0] && plan.roles[index][$0] == .promoted }
      .count
    var perNode: [NodeID: Int] = [:]
    for candidate in candidates where candidate.ledger.allowed {
      guard promoted < clone.promotedMax, perNode[candidate.node, default: 0] < clone.promotedNodeMax else { continue }
      assignment.plan.roles[index][candidate.slot] = .promoted
      promoted += 1
      perNode[candidate.node, default: 0] += 1
    }
  }
}

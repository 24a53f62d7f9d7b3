import HactlModel

/// The wanted state being built, per unit and per slot.
struct Plan: Sendable {
  /// `[unit][slot]`: the node the slot goes to, nil when it stays stopped.
  var nodes: [[NodeID?]]
  /// `[unit][slot][member]`: whether that member runs there.
  var runs: [[[Bool]]]
  /// `[unit][slot]`: Started, Unpromoted or Promoted when placed.
  var roles: [[ResourceRunRole]]
  /// `[unit][slot]`: the scores the slot was placed on.
  var ledgers: [[NodeLedgers]]
  /// `[unit][slot]`: the promotion score on the slot's node.
  var promotion: [[Ledger?]]
  /// `[unit][slot]`: why it goes where it goes, or stays stopped.
  var reasons: [[String]]
  /// `[unit][slot]`: left exactly as it is (blocked, unmanaged, maintenance).
  var frozen: [[Bool]]
  var placed: Set<Int> = []
  /// Slots placed per node so far, to spread ties (pacemaker's default
  /// placement strategy).
  var load: [NodeID: Int] = [:]

  init(_ model: UnpackedModel) {
    let slots = model.units.map(\.slots)
    nodes = slots.map { Array(repeating: nil, count: $0) }
    runs = model.units.map { unit in
      Array(repeating: Array(repeating: false, count: unit.members.count), count: unit.slots)
    }
    roles = slots.map { Array(repeating: .stopped, count: $0) }
    ledgers = slots.map { Array(repeating: [:], count: $0) }
    promotion = slots.map { Array(repeating: nil, count: $0) }
    reasons = slots.map { Array(repeating: "", count: $0) }
    frozen = slots.map { Array(repeating: false, count: $0) }
  }

  /// Nodes where the unit runs (its first member), in a role at least `role`.
  func nodes(of unit: Int, role: ResourceRunRole?) -> Set<NodeID> {
    var result: Set<NodeID> = []
    for slot in nodes[unit].indices {
      guard let node = nodes[unit][slot], runs[unit][slot].first == true else { continue }
      if let role, role == .promoted && roles[unit][slot] != .promoted { continue }
      if let role, role == .unpromoted && roles[unit][slot] != .unpromoted { continue }
      result.insert(node)
    }
    return result
  }
}

/// Stage 3, assignment: each unit to nodes, primaries before what is
/// colocated with them and 'first' before 'then', so that a dependent sees
/// where its primary went; a primary weighs where its dependents would
/// rather be. Promotion (stage 4) runs as soon as a promotable clone is
/// placed, since what is colocated with its Promoted role depends on it.
struct Assignment {
  let input: SchedulerInput
  let model: UnpackedModel
  let scores: [UnitScores]
  var plan: Plan

  init(_ model: UnpackedModel, _ scores: [UnitScores], _ input: SchedulerInput) {
    self.input = input
    self.model = model
    self.scores = scores
    self.plan = Plan(model)
  }

  var constraints: Constraints { input.config.constraints }

  /// Units in the order they are placed: Kahn's order over "with before
  /// dependent" and "first before then"; what a cycle leaves is taken in
  /// configuration order.
  func order() -> [Int] {
    let count = model.units.count
    var edges = Array(repeating: Set<Int>(), count: count)
    var incoming = Array(repeating: 0, count: count)
    func edge(_ from: ResourceID, _ to: ResourceID) {
      guard let a = model.unit(from), let b = model.unit(to), a != b, edges[a].insert(b).inserted else { return }
      incoming[b] += 1
    }
    for colocation in constraints.colocations { edge(colocation.with, colocation.resource) }
    for order in constraints.orders where order.kind == .mandatory { edge(order.first, order.then) }
    var ready = (0..<count).filter { incoming[$0] == 0 }
    var result: [Int] = []
    var done = Array(repeating: false, count: count)
    while result.count < count {
      if ready.isEmpty, let next = (0..<count).first(where: { !done[$0] }) { ready = [next] }
      ready.sort()
      let next = ready.removeFirst()
      guard !done[next] else { continue }
      done[next] = true
      result.append(next)
      for target in edges[next] where !done[target] {
        incoming[target] -= 1
        if incoming[target] == 0 { ready.append(target) }
      }
    }
    return result
  }

  mutating func run() -> Plan {
    for unit in order() {
      assign(unit)
      if model.units[unit].promotable { Roles.promote(unit, &self) } else { setRunningRoles(unit) }
      plan.placed.insert(unit)
    }
    return plan
  }

  mutating func setRunningRoles(_ unit: Int) {
    for slot in plan.nodes[unit].indices where plan.nodes[unit][slot] != nil && !plan.frozen[unit][slot] {
      plan.roles[unit][slot] = model.units[unit].runningRole
    }
  }

  /// Terms for every node that do not depend on the slot: the unit's and
  /// its members' (or the longest run of leading members that can run
  /// somewhere), colocations with what is placed, what depends on it, and
  /// mandatory orders after what cannot run.
  func sharedLedgers(_ index: Int) -> (ledgers: NodeLedgers, note: String?) {
    let unit = model.units[index]
    let score = scores[index]
    var placed: NodeLedgers = [:]
    for colocation in constraints.colocations
    where colocation.resource == unit.id && colocation.role != .promoted && colocation.role != .unpromoted {
      guard let primary = model.unit(colocation.with), plan.placed.contains(primary) else { continue }
      let there = plan.nodes(of: primary, role: colocation.withRole)
      apply(colocation, there: there, to: &placed)
    }
    for order in constraints.orders
    where order.kind == .mandatory && order.then == unit.id && order.thenAction == .start {
      guard let first = model.unit(order.first), plan.placed.contains(first) else { continue }
      let role: ResourceRunRole? = order.firstAction == .promote ? .promoted : nil
      let there = plan.nodes(of: first, role: role)
      let interleaved = unit.clone?.interleave == true && model.units[first].clone != nil
      for node in input.nodes {
        if there.isEmpty {
          placed[node.id, default: Ledger()].add(
            .minusInfinity, "order \(order.id): \(order.first) cannot \(order.firstAction.rawValue)")
        } else if interleaved && !there.contains(node.id) {
          placed[node.id, default: Ledger()].add(.minusInfinity, "order \(order.id): no \(order.first) here")
        }
      }
    }
    // A colocation whose dependent was placed first (the two were in a
    // loop) binds the other way round: with it, or away from it.
    for colocation in constraints.colocations
    where colocation.with == unit.id && colocation.role == nil && colocation.withRole == nil {
      guard let dependent = model.unit(colocation.resource), plan.placed.contains(dependent) else { continue }
      let reversed = ColocationConstraint(
        id: colocation.id, resource: colocation.with, with: colocation.resource, score: colocation.score)
      apply(reversed, there: plan.nodes(of: dependent, role: nil), to: &placed)
    }
    // A group goes where all its members can run; where none can, where
    // the longest run of leading members can (the rest stay stopped).
    var ledgers: NodeLedgers = [:]
    var note: String?
    for count in stride(from: unit.members.count, through: 1, by: -1) {
      ledgers = [:]
      for node in input.nodes {
        var ledger = score.unit[node.id] ?? Ledger()
        for member in 0..<count { ledger.add(score.members[member][node.id] ?? Ledger(), prefix: score.prefix(member)) }
        ledger.add(placed[node.id] ?? Ledger(), prefix: "")
        ledgers[node.id] = ledger
      }
      if ledgers.values.contains(where: \.allowed) || count == 1 {
        if count < unit.members.count { note = "\(unit.members[count].id) and after it cannot run anywhere" }
        break
      }
    }
    let before = ledgers
    var influenced = false
    for colocation in constraints.colocations
    where colocation.with == unit.id && colocation.score > .zero
      && (colocation.withRole == nil || colocation.withRole == .started)
    {
      guard let dependent = model.unit(colocation.resource), !plan.placed.contains(dependent) else { continue }
      for node in input.nodes {
        let wish = influence(of: dependent, on: node.id, through: colocation.score)
        guard wish != .zero else { continue }
        ledgers[node.id, default: Ledger()].add(wish, "\(colocation.resource) (colocated) wants")
        influenced = true
      }
    }
    if influenced && !ledgers.values.contains(where: \.allowed) && before.values.contains(where: \.allowed) {
      ledgers = before
      note = "what is colocated with it cannot run anywhere it can: placed on its own scores"
    }
    return (ledgers, note)
  }

  /// A dependent's own preference for a node, weighed by the colocation:
  /// whole for INFINITY, scaled by score/INFINITY otherwise (pacemaker's
  /// factor), so a mandatory dependent keeps its primary off nodes where it
  /// cannot run.
  func influence(of dependent: Int, on node: NodeID, through score: Score) -> Score {
    let total = scores[dependent].total(node).total
    if score == .infinity { return total }
    if total == .minusInfinity || total == .infinity { return .zero }
    return Score(total.value * score.value / Score.infinityValue)
  }

  func apply(_ colocation: ColocationConstraint, there: Set<NodeID>, to ledgers: inout NodeLedgers) {
    let name = "colocation \(colocation.id)"
    for node in input.nodes {
      let here = there.contains(node.id)
      switch colocation.score {
      case .infinity where !here:
        ledgers[node.id, default: Ledger()].add(
          .minusInfinity,
          there.isEmpty ? "\(name): \(colocation.with) runs nowhere" : "\(name): \(colocation.with) is not here")
      case .minusInfinity where here:
        ledgers[node.id, default: Ledger()].add(.minusInfinity, "\(name): \(colocation.with) is here")
      case let score where score != .infinity && score != .minusInfinity && here:
        ledgers[node.id, default: Ledger()].add(score, name)
      default: break
      }
    }
  }

  mutating func assign(_ index: Int) {
    let unit = model.units[index]
    let state = model.states[index]
    let (shared, note) = sharedLedgers(index)
    var perNode: [NodeID: Int] = [:]
    let unfencedRuns = input.unfenced.contains { _, resources in
      resources.contains(unit.id) || unit.members.contains { resources.contains($0.id) }
    }
    var slotLedgers: [Int: NodeLedgers] = [:]
    var current: [Int: NodeID] = [:]
    for slot in 0..<unit.slots {
      if let reason = frozenReason(index, slot: slot) {
        freeze(index, slot: slot, reason: reason)
        if let node = plan.nodes[index][slot] { perNode[node, default: 0] += 1 }
        continue
      }
      let instanceRuns = unit.clone.map { clone in
        unit.globallyUnique && input.unfenced.values.contains { $0.contains(clone.instanceResource(slot)) }
      }
      if (instanceRuns ?? unfencedRuns) && state.node(of: slot) == nil {
        plan.reasons[index][slot] = "may still run on a lost node that cannot be fenced; not taking it over"
        continue
      }
      var ledgers = shared
      if let clone = unit.clone, unit.globallyUnique {
        addInstanceFailures(clone.instanceResource(slot), unit.members[0], to: &ledgers)
      }
      // A member that may not stay (banned there, or to be stopped) does
      // not hold the others where it is.
      for node in input.nodes {
        for member in unit.members.indices
        where isOn(index, slot: slot, member: member, node: node.id)
          && scores[index].members[member][node.id]?.total != .minusInfinity
        {
          ledgers[node.id, default: Ledger()].add(
            unit.stickiness[member], "\(scores[index].prefix(member))stickiness")
        }
      }
      slotLedgers[slot] = ledgers
      current[slot] = state.node(of: slot) ?? failedNode(index, slot: slot)
    }
    // Slots that may stay where they are choose first, best-placed first,
    // so that they keep their nodes; then those that must move or start.
    func stays(_ slot: Int) -> Score? {
      guard let node = current[slot], let ledger = slotLedgers[slot]?[node], ledger.allowed else { return nil }
      return ledger.total
    }
    let order = slotLedgers.keys.sorted { lhs, rhs in
      let (lhsStays, rhsStays) = (stays(lhs), stays(rhs))
      if (lhsStays == nil) != (rhsStays == nil) { return lhsStays != nil }
      if let lhsStays, let rhsStays, lhsStays != rhsStays { return lhsStays > rhsStays }
      if (current[lhs] == nil) != (current[rhs] == nil) { return current[lhs] != nil }
      return lhs < rhs
    }
    for slot in order {
      var ledgers = slotLedgers[slot]!
      let current = current[slot]
      if let clone = unit.clone {
        for node in input.nodes where perNode[node.id, default: 0] >= clone.cloneNodeMax {
          ledgers[node.id, default: Ledger()].add(.minusInfinity, "clone-node-max \(clone.cloneNodeMax) reached")
        }
      }
      plan.ledgers[index][slot] = ledgers
      let best = input.nodes.filter { ledgers[$0.id]?.allowed ?? true }.max { lhs, rhs in
        let lhsScore = ledgers[lhs.id]?.total ?? .zero
        let rhsScore = ledgers[rhs.id]?.total ?? .zero
        if lhsScore != rhsScore { return lhsScore < rhsScore }
        if (lhs.id == current) != (rhs.id == current) { return rhs.id == current }
        let lhsLoad = (perNode[lhs.id] ?? 0, plan.load[lhs.id] ?? 0)
        let rhsLoad = (perNode[rhs.id] ?? 0, plan.load[rhs.id] ?? 0)
        if lhsLoad != rhsLoad { return lhsLoad > rhsLoad }
        return lhs.id > rhs.id
      }
      guard let best else {
        plan.reasons[index][slot] = note ?? "no node can run it (every score is negative)"
        continue
      }
      plan.nodes[index][slot] = best.id
      perNode[best.id, default: 0] += 1
      plan.load[best.id, default: 0] += 1
      // Each member follows the group's choice unless it is banned there
      // (its own -INFINITY), as an INFINITY colocation with the member
      // before it would have it; the members after a banned one stop too.
      var runs = true
      for member in unit.members.indices {
        runs = runs && scores[index].member(member, on: best.id).total != .minusInfinity
        plan.runs[index][slot][member] = runs
      }
      let total = ledgers[best.id]?.total ?? .zero
      plan.reasons[index][slot] = "highest score \(total) on \(best.name)" + (note.map { "; \($0)" } ?? "")
    }
  }

  /// A globally-unique clone's failures count per instance, as its
  /// instances are resources of their own on the nodes.
  func addInstanceFailures(_ id: ResourceID, _ spec: ResourceSpec, to ledgers: inout NodeLedgers) {
    for node in input.nodes {
      let failures = NodeScores.failureCount(spec, id: id, on: node.id, input)
      guard failures > 0 && failures >= spec.migrationThreshold else { continue }
      ledgers[node.id, default: Ledger()].add(
        .minusInfinity, "\(id) fail count \(failures) >= migration-threshold \(spec.migrationThreshold)")
    }
  }

  /// Running, or failed there (it recovers in place unless its scores say
  /// otherwise, as pacemaker does): where stickiness applies.
  func isOn(_ unit: Int, slot: Int, member: Int, node: NodeID) -> Bool {
    switch model.states[unit].slots[slot][member][node] {
    case .running?, .failed?: return true
    default: return false
    }
  }

  func failedNode(_ unit: Int, slot: Int) -> NodeID? {
    model.states[unit].slots[slot].lazy.compactMap { $0.filter { $0.value == .failed }.keys.min() }.first
  }

  /// A slot the scheduler must not touch: a member's stop failed, or a
  /// member is unmanaged or on a node in maintenance, or the whole cluster
  /// is in maintenance.
  func frozenReason(_ unit: Int, slot: Int) -> String? {
    let spec = model.units[unit]
    let members = model.states[unit].slots[slot]
    if input.config.cluster.maintenance { return "the cluster is in maintenance: nothing is started or stopped" }
    for (member, nodes) in members.enumerated() {
      if let node = nodes.first(where: { $0.value == .blocked })?.key {
        return
          "blocked: the stop of \(spec.members[member].id) failed on \(name(node)); clean it up before it can run again"
      }
      if !spec.managed[member] && !nodes.isEmpty { return "\(spec.members[member].id) is not managed" }
      if let node = nodes.keys.first(where: { id in input.nodes.first { $0.id == id }?.maintenance == true }) {
        return "\(name(node)) is in maintenance"
      }
    }
    if spec.managed.allSatisfy({ !$0 }) { return "not managed" }
    return nil
  }

  /// Leaves the slot as reported: where it runs it stays, in its role.
  mutating func freeze(_ unit: Int, slot: Int, reason: String) {
    plan.frozen[unit][slot] = true
    plan.reasons[unit][slot] = reason
    let state = model.states[unit]
    for member in state.slots[slot].indices {
      let nodes = state.slots[slot][member]
      // Where it may still run: a failed stop's node first, then where it
      // runs; a copy that failed elsewhere (a probe) is no place to keep
      // it, or the frozen slot would start it there (seed 30018).
      let blocked = nodes.filter { $0.value == .blocked }.keys.min()
      let running = nodes.filter { if case .running = $0.value { return true } else { return false } }.keys.min()
      guard let node = blocked ?? running ?? nodes.keys.min() else { continue }
      plan.nodes[unit][slot] = plan.nodes[unit][slot] ?? node
      plan.runs[unit][slot][member] = true
      if case .running(let role, _)? = nodes[node] { plan.roles[unit][slot] = max(plan.roles[unit][slot], role) }
    }
    if plan.nodes[unit][slot] != nil && plan.roles[unit][slot] == .stopped {
      plan.roles[unit][slot] = model.units[unit].runningRole
    }
    // A promotable instance whose stop failed may still be Promoted: it
    // counts as such, so that no other is promoted meanwhile.
    if model.units[unit].promotable && state.slots[slot].contains(where: { $0.values.contains(.blocked) }) {
      plan.roles[unit][slot] = .promoted
    }
  }

  func name(_ node: NodeID) -> String { input.nodes.first { $0.id == node }?.name ?? node.description }
}

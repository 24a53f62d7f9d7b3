import HactlModel

/// Stage 2, constraints: every node's score for every unit and member, as
/// ledgers, before colocation (which needs placements, stage 3).
struct UnitScores: Sendable {
  /// Terms that hold for the whole unit: node availability, location
  /// constraints on the unit, operator moves and bans.
  var unit: NodeLedgers
  /// Per member: its own terms (its `prefer`, its failures).
  var members: [NodeLedgers]
  /// Per node, for a promotable clone: location constraints with role
  /// Promoted (added to promotion scores in stage 4).
  var promoted: NodeLedgers

  /// The unit's score on a node with every member's terms: a group goes
  /// where its members together do best (pacemaker sums them through the
  /// group's internal colocations).
  func total(_ node: NodeID) -> Ledger {
    var ledger = unit[node] ?? Ledger()
    for (index, member) in members.enumerated() { ledger.add(member[node] ?? Ledger(), prefix: prefix(index)) }
    return ledger
  }

  /// One member's own score on a node, the unit's terms included.
  func member(_ index: Int, on node: NodeID) -> Ledger {
    var ledger = unit[node] ?? Ledger()
    ledger.add(members[index][node] ?? Ledger(), prefix: "")
    return ledger
  }

  var memberNames: [String] = []
  func prefix(_ index: Int) -> String { memberNames.count > 1 ? "\(memberNames[index]): " : "" }
}

enum NodeScores {
  static func compute(_ model: UnpackedModel, _ input: SchedulerInput) -> [UnitScores] {
    let locations = Dictionary(grouping: input.locations) { $0.resource }
    return model.units.map { unit in
      var scores = UnitScores(
        unit: [:], members: Array(repeating: [:], count: unit.members.count), promoted: [:],
        memberNames: unit.members.map(\.id.rawValue))
      for node in input.nodes {
        var ledger = Ledger()
        if !node.online { ledger.add(.minusInfinity, "node \(node.name) is not an online member") }
        if node.standby { ledger.add(.minusInfinity, "node \(node.name) is in standby") }
        if node.maintenance { ledger.add(.minusInfinity, "node \(node.name) is in maintenance") }
        var promoted = Ledger()
        for constraint in locations[unit.id] ?? [] where applies(constraint, to: node) {
          if constraint.role == .promoted {
            promoted.add(constraint.score, "location \(constraint.id)")
          } else {
            ledger.add(constraint.score, "location \(constraint.id)")
          }
        }
        scores.unit[node.id] = ledger
        scores.promoted[node.id] = promoted
        for (index, spec) in unit.members.enumerated() {
          var own = Ledger()
          if spec.preferredNode == node.name { own.add(spec.preferenceScore, "prefer \(node.name)") }
          let failures = failureCount(spec, on: node.id, input)
          if failures > 0 && failures >= spec.migrationThreshold {
            own.add(
              .minusInfinity, "fail count \(failures) >= migration-threshold \(spec.migrationThreshold)")
          }
          if unit.targetRoles[index] == .stopped { own.add(.minusInfinity, "target-role Stopped") }
          scores.members[index][node.id] = own
        }
      }
      return scores
    }
  }

  static func applies(_ constraint: LocationConstraint, to node: NodeFacts) -> Bool {
    if let name = constraint.node { return name == node.name }
    return constraint.rule?.matches(node.ruleAttributes) ?? false
  }

  /// Failures of a primitive on a node that have not expired: each
  /// operation's count, unless its last failure is older than
  /// failure_timeout (the age is measured by the node that failed).
  /// `id`: the instance counted, when it is not the primitive itself (a
  /// globally-unique clone's `rsc:N`).
  static func failureCount(_ spec: ResourceSpec, id: ResourceID? = nil, on node: NodeID, _ input: SchedulerInput)
    -> Int
  {
    let id = id ?? spec.id
    return input.failures.filter {
      $0.resource == id && $0.node == node && $0.operation != FailureRecord.promotionFailed
    }.reduce(0) { total, record in
      if let timeout = spec.failureTimeout, record.age >= timeout { return total }
      return total + record.count
    }
  }
}

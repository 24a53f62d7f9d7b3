import HactlModel

/// Where one instance is wanted, and why.
public struct InstancePlacement: Sendable, Hashable {
  public var instance: InstanceID
  /// The group or clone it belongs to, or itself.
  public var unit: ResourceID
  public var node: NodeID?
  /// Stopped when it runs nowhere.
  public var role: ResourceRunRole
  public var reason: String
  /// Left exactly as it is: blocked, unmanaged or in maintenance.
  public var frozen: Bool
}

/// The actions that take the cluster from its state to the wanted one, and
/// the scores behind every choice.
public struct Transition: Sendable {
  public var placements: [InstancePlacement]
  public var actions: [ScheduledAction]
  /// Per unit (or clone instance, `clone:N`): every node's ledger.
  public var scores: [(name: String, ledgers: NodeLedgers)]
  /// Per promotable instance placed: its promotion ledger.
  public var promotion: [(instance: InstanceID, node: NodeID, ledger: Ledger)]
  public var nodeNames: [NodeID: String]
  /// crm_simulate's "Transition Summary" lines: `* Move vip ( a -> b )`.
  public var summary: [String]

  public func placement(of instance: InstanceID) -> InstancePlacement? {
    placements.first { $0.instance == instance }
  }

  /// The placements of a resource: its own, or every instance of a clone.
  public func placements(of resource: ResourceID) -> [InstancePlacement] {
    placements.filter { $0.instance.resource == resource || $0.unit == resource }
  }

  public var isEmpty: Bool { actions.isEmpty }
}

/// The scheduler: a pure function from configuration and cluster state to a
/// transition, in the stages pacemaker's scheduler has: unpack, constraints
/// (node scores), assignment, roles, actions, ordering. Scores add with
/// saturation; the highest score at or above zero wins; ties go to where the
/// instance already is, then to the node with fewer instances placed, then
/// to the lowest node id, so the same input always gives the same answer.
public enum Scheduler {
  public static func schedule(_ input: SchedulerInput) -> Transition {
    let model = Unpack.model(input)
    let scores = NodeScores.compute(model, input)
    var assignment = Assignment(model, scores, input)
    let plan = assignment.run()
    let pairs = OrderPair.all(model, input.config.constraints)
    var builder = ActionBuilder(model, plan)
    var actions = builder.build(pairs: pairs)
    Ordering.link(&actions, model, pairs: pairs)
    return transition(model, plan, actions, input)
  }

  static func transition(
    _ model: UnpackedModel, _ plan: Plan, _ actions: [ScheduledAction], _ input: SchedulerInput
  ) -> Transition {
    var placements: [InstancePlacement] = []
    var scores: [(String, NodeLedgers)] = []
    var promotion: [(InstanceID, NodeID, Ledger)] = []
    for (index, unit) in model.units.enumerated() {
      for slot in 0..<unit.slots {
        if unit.clone == nil || slot < unit.slots {
          scores.append((unit.clone == nil ? unit.id.rawValue : "\(unit.id):\(slot)", plan.ledgers[index][slot]))
        }
        for member in unit.members.indices {
          let runs = plan.runs[index][slot][member]
          let node = runs ? plan.nodes[index][slot] : nil
          var reason = plan.reasons[index][slot]
          if !runs && plan.nodes[index][slot] != nil && !plan.frozen[index][slot] {
            reason = "cannot run where \(unit.id) is placed"
          }
          placements.append(
            InstancePlacement(
              instance: unit.instance(member: member, slot: slot), unit: unit.id, node: node,
              role: node == nil ? .stopped : plan.roles[index][slot], reason: reason,
              frozen: plan.frozen[index][slot]))
        }
        if let ledger = plan.promotion[index][slot], let node = plan.nodes[index][slot] {
          promotion.append((unit.instance(member: 0, slot: slot), node, ledger))
        }
      }
    }
    let names = Dictionary(input.nodes.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
    return Transition(
      placements: placements, actions: actions, scores: scores, promotion: promotion, nodeNames: names,
      summary: Summary.lines(model, actions, names: names))
  }
}

import HactlModel
import HactlScheduler
import HactlWire

/// Clone notifications, as pacemaker sends them to clones with `notify`:
/// before each kind of action of a change (demote, stop, start, promote, in
/// that order) every active instance runs the agent's `notify` with type
/// `pre`; the actions of that kind follow; once they are done, every instance
/// active then runs it with type `post`. Agents such as mysql and DRBD learn
/// from them who their peers and their primary are.
///
/// The scheduler is stateless, and a transition spans several decisions of
/// the leader: this is the leader's memory of where each clone is in that
/// sequence. It only holds actions back (never adds any), so a lost
/// leader, a lost notification or a node that never answers costs time,
/// never safety: a target that leaves the partition or stops running the
/// clone no longer counts.
struct NotificationGate: Sendable {
  /// The phases of one change, in pacemaker's order.
  static let phases: [ActionKind] = [.demote, .stop, .start, .promote]

  enum Stage: Sendable {
    /// Waiting for every target to run the round announcing these actions.
    case pre(CloneNotification, Set<Placed>)
    /// The phase's own actions may run; the others of the clone wait.
    case executing(ActionKind, Set<Placed>)
    case post(CloneNotification)
  }

  /// An instance on a node. The same as another on the same node: a
  /// clone runs one instance per node (clone_node_max is 1), and the
  /// scheduler may number them differently from one decision to the next.
  struct Placed: Hashable, Sendable {
    var instance: Int
    var node: NodeID

    static func == (lhs: Placed, rhs: Placed) -> Bool { lhs.node == rhs.node }
    func hash(into hasher: inout Hasher) { hasher.combine(node) }
  }

  /// One change of one clone, from its first pre notification to its last
  /// post notification: the lists agents see are fixed at its start (active
  /// and Promoted as they were) and grow with each phase's actions.
  struct Cycle: Sendable {
    var active: Set<Placed>
    var promoted: Set<Placed>
    var actions: [ActionKind: Set<Placed>] = [:]
    /// Nil between phases.
    var stage: Stage?
    /// The position in `phases` of the latest phase carried out: a phase
    /// that comes earlier is a new change, with lists of its own.
    var phase = -1
  }

  var cycles: [ResourceID: Cycle] = [:]

  /// Holds back the actions of clones with `notify` until their
  /// notifications have run; returns the rounds to publish now.
  mutating func gate(
    _ transition: inout Transition, clones: [CloneSpec], reports: [NodeID: NodeReport], members: [NodeID],
    newID: () -> UInt64
  ) -> [CloneNotification] {
    var rounds: [CloneNotification] = []
    let notifying = Set(clones.filter(\.notify).map(\.child))
    cycles = cycles.filter { notifying.contains($0.key) }
    for resource in notifying.sorted() {
      let view = CloneView(resource: resource, transition: transition, reports: reports, members: members)
      var cycle = cycles[resource]
      var released: (ActionKind, Set<Placed>)?
      // A few steps at most: pre, executing, post per phase.
      for _ in 0..<(Self.phases.count * 3 + 1) {
        guard let stage = cycle?.stage else {
          guard let kind = Self.phases.first(where: { !view.pending(kind: $0).isEmpty }) else {
            cycle = nil
            break
          }
          let position = Self.phases.firstIndex(of: kind)!
          var next =
            cycle.flatMap { $0.phase < position ? $0 : nil } ?? Cycle(active: view.active, promoted: view.promotedNow)
          // Phases done keep what they did; the rest are what is planned now.
          for (index, phase) in Self.phases.enumerated() where index >= position {
            next.actions[phase] = view.pending(kind: phase)
          }
          next.stage = .pre(view.round(.pre, kind, next, id: newID()), view.pending(kind: kind))
          cycle = next
          continue
        }
        switch stage {
        case .pre(let round, let planned):
          let kind = ActionKind(round.operation)
          if Self.phases.first(where: { !view.pending(kind: $0).isEmpty }) != kind
            || view.pending(kind: kind) != planned
          {
            // Not the change announced: announce what is planned now.
            cycle?.stage = nil
            continue
          }
          if round.targets.allSatisfy({ view.hasRun(round, on: $0) }) {
            cycle?.stage = .executing(kind, planned)
            cycle?.phase = Self.phases.firstIndex(of: kind)!
            continue
          }
          rounds.append(round)
        case .executing(let kind, let placed):
          if placed.allSatisfy({ view.isDone(kind, $0) }) {
            let round = view.round(.post, kind, cycle!, id: newID())
            cycle?.stage = .post(round)
            continue
          }
          released = (kind, placed)
        case .post(let round):
          if round.targets.allSatisfy({ view.hasRun(round, on: $0) }) {
            cycle?.stage = nil
            continue
          }
          rounds.append(round)
        }
        break
      }
      cycles[resource] = cycle
      view.hold(&transition, except: released)
    }
    return rounds
  }
}

/// One clone's instances as the leader sees them now.
private struct CloneView {
  let resource: ResourceID
  let transition: Transition
  let reports: [NodeID: NodeReport]
  let members: Set<NodeID>
  let orderedMembers: [NodeID]
  /// The clone's actions, by index in the transition.
  let actionIndexes: [Int]

  init(resource: ResourceID, transition: Transition, reports: [NodeID: NodeReport], members: [NodeID]) {
    self.resource = resource
    self.transition = transition
    self.reports = reports
    self.members = Set(members)
    self.orderedMembers = members
    self.actionIndexes = transition.actions.indices.filter { transition.actions[$0].instance.resource == resource }
  }

  func report(on node: NodeID) -> ResourceReport? { reports[node]?.resource(resource) }

  /// The instance number on `node`: where the scheduler places or acts on
  /// it, else a number no placed instance uses.
  func instance(on node: NodeID) -> Int {
    if let action = actionIndexes.map({ transition.actions[$0] }).first(where: { $0.node == node }),
      let index = action.instance.index
    {
      return index
    }
    let placements = transition.placements.filter { $0.instance.resource == resource }
    if let index = placements.first(where: { $0.node == node })?.instance.index { return index }
    let highest = placements.compactMap(\.instance.index).max() ?? -1
    return highest + 1 + (orderedMembers.firstIndex(of: node) ?? 0)
  }

  func isActive(_ node: NodeID) -> Bool { members.contains(node) && report(on: node)?.role == .started }

  var activeNodes: [NodeID] { orderedMembers.filter(isActive) }

  var active: Set<NotificationGate.Placed> {
    Set(activeNodes.map { NotificationGate.Placed(instance: instance(on: $0), node: $0) })
  }

  var promotedNow: Set<NotificationGate.Placed> {
    Set(
      activeNodes.filter { report(on: $0)?.promoted == true }.map {
        NotificationGate.Placed(instance: instance(on: $0), node: $0)
      })
  }

  /// The clone's actions of `kind` still in the transition.
  func pending(kind: ActionKind) -> Set<NotificationGate.Placed> {
    Set(
      actionIndexes.map { transition.actions[$0] }.filter { $0.kind == kind }.map {
        NotificationGate.Placed(instance: $0.instance.index ?? instance(on: $0.node), node: $0.node)
      })
  }

  /// A target has run the round, or no longer counts: it left the
  /// partition or runs no instance now.
  func hasRun(_ round: CloneNotification, on node: NodeID) -> Bool {
    !isActive(node) || report(on: node)?.notified == round.id
  }

  /// The action is over (done or failed) and the node reports it.
  func isDone(_ kind: ActionKind, _ placed: NotificationGate.Placed) -> Bool {
    guard members.contains(placed.node) else { return true }
    let stillPlanned = actionIndexes.contains {
      transition.actions[$0].kind == kind && transition.actions[$0].node == placed.node
    }
    guard !stillPlanned, let report = report(on: placed.node) else { return !stillPlanned }
    return report.role != .starting && report.role != .stopping && !report.roleChanging
  }

  func round(
    _ timing: CloneNotification.Timing, _ kind: ActionKind, _ cycle: NotificationGate.Cycle, id: UInt64
  ) -> CloneNotification {
    var entries: [CloneNotification.Entry] = []
    func add(_ list: CloneNotification.List, _ placed: Set<NotificationGate.Placed>) {
      for item in placed.sorted(by: { ($0.instance, $0.node) < ($1.instance, $1.node) }) {
        entries.append(CloneNotification.Entry(list, instance: item.instance, node: item.node))
      }
    }
    for phase in NotificationGate.phases { add(CloneNotification.List(phase), cycle.actions[phase] ?? []) }
    add(.active, cycle.active)
    add(.promoted, cycle.promoted)
    return CloneNotification(
      resource: resource, id: id, timing: timing, operation: AgentAction(kind), targets: activeNodes,
      entries: Array(entries.prefix(CloneNotification.maximumEntries)))
  }

  /// Marks every action of the clone as held, but the released phase's.
  func hold(_ transition: inout Transition, except released: (ActionKind, Set<NotificationGate.Placed>)?) {
    for index in actionIndexes {
      let action = transition.actions[index]
      let placed = NotificationGate.Placed(
        instance: action.instance.index ?? instance(on: action.node), node: action.node)
      if let (kind, set) = released, action.kind == kind, set.contains(placed) { continue }
      transition.actions[index].heldForNotification = true
    }
  }
}

extension CloneNotification.List {
  init(_ kind: ActionKind) {
    self = [ActionKind.start: .start, .stop: .stop, .promote: .promote, .demote: .demote][kind]!
  }
}

/// The scheduler's actions and the agent's share their OCF names.
extension ActionKind {
  init(_ action: AgentAction) { self = ActionKind(rawValue: action.rawValue) ?? .start }
}

extension AgentAction {
  init(_ kind: ActionKind) { self = AgentAction(rawValue: kind.rawValue)! }
}

extension CloneNotification {
  /// What the agent's `notify` reads, as pacemaker names it (without the
  /// OCF_RESKEY_CRM_meta_ prefix): space-separated instance names (`rsc:N`)
  /// and node names per list, under both the old (master, slave) and the
  /// new (promoted, unpromoted) names.
  func agentMeta(nodeNames: [NodeID: String], instances: Int) -> [String: String] {
    func names(_ entries: [Entry]) -> (resource: String, uname: String) {
      (
        entries.map { "\(resource):\($0.instance)" }.joined(separator: " "),
        entries.map { nodeNames[$0.node] ?? "node\($0.node.rawValue)" }.joined(separator: " ")
      )
    }
    func entries(_ list: List) -> [Entry] { self.entries.filter { $0.list == list } }
    var meta = ["notify_type": timing == .pre ? "pre" : "post", "notify_operation": operation.rawValue]
    func set(_ name: String, _ list: [Entry]) {
      let (resources, unames) = names(list)
      meta["notify_\(name)_resource"] = resources
      meta["notify_\(name)_uname"] = unames
    }
    set("start", entries(.start))
    set("stop", entries(.stop))
    set("promote", entries(.promote))
    set("demote", entries(.demote))
    set("active", entries(.active))
    let promotedNow = Set(entries(.promoted).map(\.instance))
    for name in ["promoted", "master"] { set(name, entries(.promoted)) }
    for name in ["unpromoted", "slave"] { set(name, entries(.active).filter { !promotedNow.contains($0.instance) }) }
    let active = Set(entries(.active).map(\.instance))
    meta["notify_inactive_resource"] = (0..<instances).filter { !active.contains($0) }.map { "\(resource):\($0)" }
      .joined(separator: " ")
    let all = nodeNames.sorted { $0.key < $1.key }.map(\.value).joined(separator: " ")
    meta["notify_all_uname"] = all
    meta["notify_available_uname"] = all
    return meta
  }
}

import HactlModel
import HactlScheduler
import HactlWire

/// What only the leader keeps: its published decisions and operator moves.
struct LeaderState: Sendable {
  let term: UInt64
  var tokenCounter: UInt64 = 0
  /// Published in every heartbeat; nil until every member has probed.
  var directives: Directives?
  /// Assignments taken back, and when: the old node may still act on one
  /// (a directive in flight) until it echoes a stamp we sent after that, or
  /// until the lease has run out, since it acts only under a fresh lease.
  var withdrawn: [ResourceID: [NodeID: Instant]] = [:]
  var moves: [ResourceID: NodeID] = [:]
  var handled = HandledRequests()
  var answers: [RequestAnswer] = []
  var lastTransition: Transition?
  /// Configuration changes made in this term, until a quorum holds them.
  var configWaiters: [ConfigWaiter] = []
  /// Members on another configuration version than ours, and since when.
  var offVersionSince: [NodeID: Instant] = [:]

  init(term: UInt64) { self.term = term }

  mutating func newToken() -> UInt64 {
    tokenCounter += 1
    return (term << 24) | (tokenCounter & 0xFF_FFFF)
  }

  static let answersKept = ClusterLimits.answersKept
}

struct RequestKey: Hashable, Sendable {
  var origin: NodeID
  var id: UInt64
}

/// The requests a leader has handled, so that each is handled once while its
/// origin repeats it in every heartbeat. Request ids only grow per origin
/// (they start from the boot incarnation), so a bounded window per origin
/// suffices: anything at or below the window's floor is old.
struct HandledRequests: Sendable {
  var origins: [NodeID: Window] = [:]

  struct Window: Sendable {
    var floor: UInt64 = 0
    var ids: Set<UInt64> = []
  }

  static let remembered = 1024

  /// True the first time `key` is seen; records it.
  mutating func firstTime(_ key: RequestKey) -> Bool {
    var window = origins[key.origin] ?? Window()
    guard key.id > window.floor, window.ids.insert(key.id).inserted else { return false }
    if window.ids.count > Self.remembered, let oldest = window.ids.min() {
      window.ids.remove(oldest)
      window.floor = oldest
    }
    origins[key.origin] = window
    return true
  }
}

extension NodeController {
  /// Members that are nodes (not the witness), this one first if it is one.
  var memberNodes: [NodeID] {
    ([local.id] + membership.alivePeers).filter { config.member(id: $0)?.kind == .node }
  }

  func report(of node: NodeID) -> NodeReport? {
    node == local.id ? (local.kind == .node ? localReport : nil) : peerReports[node]
  }

  /// Every member's report, this node's worked out once: a leader looks
  /// them up for every resource, and a thousand resources make that count.
  var reports: [NodeID: NodeReport] {
    var reports = peerReports
    if local.kind == .node { reports[local.id] = localReport }
    return reports
  }

  func schedulerNodes(reports: [NodeID: NodeReport], now: Instant) -> [SchedulerNode] {
    let members = Set(memberNodes)
    return config.nodes.map { spec in
      let report = members.contains(spec.id) ? reports[spec.id] : nil
      // It must also hear us (echo our recent packets), or it would never
      // see the decision to start anything: a one-way cut towards it.
      let hearsUs =
        spec.id == local.id || membership.echo(from: spec.id).map { now - $0 <= membership.settings.lease } == true
      let eligible = report.map { $0.probed && $0.mode == .online } == true && hearsUs
      return SchedulerNode(id: spec.id, name: spec.name, eligible: eligible)
    }
  }

  /// Where each resource is, from the reports of the members. Nodes outside
  /// the partition are taken as running nothing: without fencing that is an
  /// assumption, and docs/ARCHITECTURE.md says so.
  func situations(reports: [NodeID: NodeReport], withdrawn: [ResourceID: [NodeID: Instant]])
    -> [ResourceID: ResourceSituation]
  {
    var result: [ResourceID: ResourceSituation] = [:]
    for spec in config.resources { result[spec.id] = ResourceSituation() }
    for node in memberNodes {
      guard let report = reports[node] else { continue }
      for resource in report.resources where result[resource.id] != nil {
        result[resource.id]!.failCounts[node] = resource.failCount
        switch resource.role {
        case .started, .starting: result[resource.id]!.activeOn.insert(node)
        case .stopping, .failed, .unknown: result[resource.id]!.mustStopOn.insert(node)
        case .blocked: result[resource.id]!.blockedOn.insert(node)
        case .stopped: break
        }
      }
    }
    for (node, resources) in unfenced {
      for resource in resources where result[resource] != nil { result[resource]!.unfencedOn.insert(node) }
    }
    for (resource, nodes) in withdrawn where result[resource] != nil {
      for node in nodes.keys where memberNodes.contains(node) && !result[resource]!.activeOn.contains(node) {
        result[resource]!.mustStopOn.insert(node)
      }
    }
    return result
  }

  mutating func scheduleIfLeader(now: Instant) -> [ControllerEffect] {
    guard membership.isLeader, var state = leading else { return [] }
    defer { leading = state }
    // A leader learns the real state of every member before it decides
    // anything new; meanwhile its earlier decisions stand unchanged (they are
    // also what it must withdraw carefully later).
    // Likewise, it decides only once every member runs its configuration (a
    // member behind gets it within an interval). One that still does not
    // after a dead time cannot take it (another release refusing it): it
    // runs nothing new rather than hold every decision back.
    let reports = self.reports
    let offVersion = Set(
      memberNodes.filter { $0 != local.id && replication.peers[$0]?.stamp.version != document.version })
    state.offVersionSince = state.offVersionSince.filter { offVersion.contains($0.key) }
    for node in offVersion where state.offVersionSince[node] == nil { state.offVersionSince[node] = now }
    let cannotTakeConfig = Set(
      offVersion.filter { now - state.offVersionSince[$0]! >= membership.settings.deadTime })
    // A report not held at the version its node last announced is waited
    // for like a probe: deciding on an older one could start a second copy.
    let unprobed = memberNodes.filter {
      reports[$0]?.probed != true || !reportIsCurrent($0)
        || (offVersion.contains($0) && !cannotTakeConfig.contains($0))
    }
    guard unprobed.isEmpty else { return [] }
    let nodes = schedulerNodes(reports: reports, now: now).map { node in
      cannotTakeConfig.contains(node.id) ? SchedulerNode(id: node.id, name: node.name, eligible: false) : node
    }
    for (resource, nodes) in state.withdrawn {
      for (node, since) in nodes {
        let seen = membership.echo(from: node).map { $0 >= since } ?? false
        if seen || now - since > membership.settings.lease { state.withdrawn[resource]?[node] = nil }
      }
      if state.withdrawn[resource]?.isEmpty == true { state.withdrawn[resource] = nil }
    }
    let situations = situations(reports: reports, withdrawn: state.withdrawn)
    var effects = handleRequests(&state, nodes: nodes, situations: situations)
    for (resource, target) in state.moves {
      let situation = situations[resource] ?? ResourceSituation()
      let eligible = nodes.first { $0.id == target }?.eligible ?? false
      if situation.activeOn == [target] && situation.mustStopOn.isEmpty || !eligible {
        state.moves[resource] = nil
      }
    }
    let transition = Scheduler.plan(
      SchedulerInput(resources: config.resources, nodes: nodes, situations: situations, moves: state.moves))
    var assignments: [Assignment] = []
    let startsWaiting = transition.startsWaiting
    for decision in transition.decisions {
      guard let target = decision.target, !startsWaiting.contains(decision.resource) else { continue }
      let previous = state.directives?.assignment(for: decision.resource)
      let isRunning = situations[decision.resource]?.activeOn.contains(target) ?? false
      let used = reports[target]?.resource(decision.resource)?.lastStartToken
      // Keep the decision while it runs or is yet to be acted on; once the
      // node used it and the resource stopped (failure, lost lease), decide
      // again: a node never starts twice on one decision.
      if let previous, previous.node == target, isRunning || used != previous.token {
        assignments.append(previous)
        continue
      }
      // Moving a decision from one live member to another goes through
      // "nobody" first: the old node may be acting on it as we speak, so it
      // counts as possibly active there until it echoes the withdrawal.
      if let previous, previous.node != target, previous.node != local.id, memberNodes.contains(previous.node) {
        continue
      }
      assignments.append(Assignment(resource: decision.resource, node: target, token: state.newToken()))
    }
    let directives = Directives(assignments: assignments)
    // The leader's own state is known at once: only peers need the echo.
    for old in state.directives?.assignments ?? []
    where old.node != local.id && directives.assignment(for: old.resource)?.node != old.node {
      state.withdrawn[old.resource, default: [:]][old.node] = now
    }
    if directives != state.directives {
      let text = assignments.map { "\($0.resource)→\(name(of: $0.node))" }.joined(separator: ", ")
      effects.append(.log(.info, "placement: \(text.isEmpty ? "nothing runs" : text)"))
    }
    state.directives = directives
    state.lastTransition = transition
    return effects
  }

  /// Answers operator requests from every node (this one included).
  mutating func handleRequests(
    _ state: inout LeaderState, nodes: [SchedulerNode], situations: [ResourceID: ResourceSituation]
  ) -> [ControllerEffect] {
    var effects: [ControllerEffect] = []
    var incoming = peerRequests.filter { membership.isAlive($0.key) }.map { ($0.key, $0.value) }
    incoming.append((local.id, pendingRequests))
    for (origin, requests) in incoming.sorted(by: { $0.0 < $1.0 }) {
      for request in requests {
        guard state.handled.firstTime(RequestKey(origin: origin, id: request.id)) else { continue }
        let (accepted, message) = decide(request, &state, nodes: nodes, situations: situations)
        let answer = RequestAnswer(origin: origin, id: request.id, accepted: accepted, message: message)
        effects += post(answer, in: &state)
      }
    }
    return effects
  }

  func decide(
    _ request: OperatorRequest, _ state: inout LeaderState, nodes: [SchedulerNode],
    situations: [ResourceID: ResourceSituation]
  ) -> (Bool, String) {
    switch request.kind {
    case .move(let resource, let requested):
      guard let spec = config.resource(resource) else { return (false, "no resource '\(resource)'") }
      let situation = situations[resource] ?? ResourceSituation()
      if !situation.blockedOn.isEmpty { return (false, "\(resource) is blocked after a failed stop") }
      let from = situation.activeOn.sorted().map { name(of: $0) }.joined(separator: ", ")
      let target: SchedulerNode
      if let requested {
        guard let node = nodes.first(where: { $0.id == requested }) else {
          return (false, "\(name(of: requested)) is not a node")
        }
        guard node.eligible else {
          return (false, "\(node.name) cannot run resources now (lost, standby or still probing)")
        }
        target = node
      } else {
        let others = nodes.filter { $0.eligible && !situation.activeOn.contains($0.id) }
        let best = others.max { lhs, rhs in
          let lhsScore = spec.preferredNode == lhs.name ? spec.preferenceScore : .zero
          let rhsScore = spec.preferredNode == rhs.name ? spec.preferenceScore : .zero
          return lhsScore != rhsScore ? lhsScore < rhsScore : lhs.id > rhs.id
        }
        guard let best else { return (false, "no other node can run \(resource) now") }
        target = best
      }
      if (situation.failCounts[target.id] ?? 0) >= spec.migrationThreshold {
        return (false, "\(resource) failed on \(target.name) and is banned there until cleaned up")
      }
      if situation.activeOn == [target.id] { return (true, "\(resource) already runs on \(target.name)") }
      state.moves[resource] = target.id
      return (
        true,
        from.isEmpty ? "starting \(resource) on \(target.name)" : "moving \(resource) from \(from) to \(target.name)"
      )
    }
  }
}

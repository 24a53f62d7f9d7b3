import HactlModel
import HactlScheduler
import HactlWire

/// What only the leader keeps: its published decisions and operator moves.
struct LeaderState: Sendable {
  let term: UInt64
  var tokenCounter: UInt64 = 0
  /// The scheduler's last input and what it answered.
  var lastSchedule: (input: SchedulerInput, transition: Transition)?
  /// Published in every heartbeat; nil until every member has probed.
  var directives: Directives?
  /// Assignments taken back, and when: the old node may still act on one
  /// (a directive in flight) until it echoes a stamp we sent after that, or
  /// until the lease has run out, since it acts only under a fresh lease.
  var withdrawn: [ResourceID: [NodeID: Instant]] = [:]
  /// Promotions taken back, until the node echoes (as `withdrawn`).
  var demoted: [ResourceID: [NodeID: Instant]] = [:]
  var moves: [ResourceID: NodeID] = [:]
  var handled = HandledRequests()
  var answers: [RequestAnswer] = []
  var lastTransition: Transition?
  /// Configuration changes made in this term, until a quorum holds them.
  var configWaiters: [ConfigWaiter] = []
  /// Members on another configuration version than ours, and since when.
  var offVersionSince: [NodeID: Instant] = [:]
  /// Where each clone with `notify` is in its notifications.
  var notifications = NotificationGate()
  /// Lost nodes being fenced (Fencing.swift), and the fencings that
  /// succeeded in this term, newest last (at most `fencedKept`).
  var fenceJobs: [NodeID: FenceJob] = [:]
  /// Nodes an operator asked to fence (`hactl fence`), until the job ends.
  var manualFences: Set<NodeID> = []
  var fenced: [FenceRecord] = [] {
    didSet { if fenced.count > Self.fencedKept { fenced.removeFirst(fenced.count - Self.fencedKept) } }
  }
  static let fencedKept = 16

  init(term: UInt64) { self.term = term }

  /// Moves what waits for time to pass on a peer (its lease running out,
  /// its watchdog resetting it) on by `gap`.
  mutating func postpone(by gap: Duration) {
    withdrawn = withdrawn.mapValues { $0.mapValues { $0 + gap } }
    demoted = demoted.mapValues { $0.mapValues { $0 + gap } }
    fenceJobs = fenceJobs.mapValues { job in
      var job = job
      job.startedAt = job.startedAt + gap
      job.notBefore = job.notBefore + gap
      return job
    }
  }

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

  /// Whether `key` was seen already (or is at or below its origin's floor).
  func contains(_ key: RequestKey) -> Bool {
    guard let window = origins[key.origin] else { return false }
    return key.id <= window.floor || window.ids.contains(key.id)
  }

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

  /// Every configured node as the scheduler sees it. A node can be given
  /// resources only as a member that has probed and hears us (echoes our
  /// recent packets), or it would never see the decision to start anything:
  /// a one-way cut towards it.
  func schedulerNodes(reports: [NodeID: NodeReport], now: Instant, excluded: Set<NodeID> = []) -> [NodeFacts] {
    let members = Set(memberNodes)
    return config.nodes.map { spec in
      let report = members.contains(spec.id) ? reports[spec.id] : nil
      let hearsUs =
        spec.id == local.id || membership.echo(from: spec.id).map { now - $0 <= membership.settings.lease } == true
      let online = report?.probed == true && hearsUs && !excluded.contains(spec.id)
      return NodeFacts(
        id: spec.id, name: spec.name, online: online, standby: (report?.mode ?? spec.mode) == .standby,
        maintenance: spec.maintenance, attributes: attributes(of: spec, report: report))
    }
  }

  /// Where each resource is, from the reports of the members. Nodes outside
  /// the partition are taken as running nothing: without fencing that is an
  /// assumption, and docs/ARCHITECTURE.md says so. A node a decision was
  /// taken back from counts as stopping it until it echoes the withdrawal.
  func observed(
    reports: [NodeID: NodeReport], withdrawn: [ResourceID: [NodeID: Instant]],
    demoted: [ResourceID: [NodeID: Instant]] = [:]
  ) -> (instances: [ObservedInstance], failures: [FailureRecord]) {
    let promotable = Set(config.clones.filter(\.promotable).map(\.child))
    var instances: [ObservedInstance] = []
    var failures: [FailureRecord] = []
    var seen: Set<ResourceKey> = []
    for node in memberNodes {
      guard let report = reports[node] else { continue }
      for resource in report.resources {
        if resource.failCount > 0 {
          failures.append(FailureRecord(resource: resource.id, node: node, count: resource.failCount))
        }
        // on_fail: demote keeps it from being promoted there.
        if resource.promotionFailed {
          failures.append(
            FailureRecord(resource: resource.id, node: node, operation: FailureRecord.promotionFailed, count: 1))
        }
        // on_fail: stop keeps it from starting anywhere until cleaned up.
        if resource.halted {
          for other in config.nodes where other.id != node {
            failures.append(
              FailureRecord(
                resource: resource.id, node: other.id, operation: "on-fail-stop", count: Score.infinityValue))
          }
        }
        let state: ObservedState
        // A promote in flight may already have promoted it; a node told to
        // demote may still be Promoted until it echoes: either counts as
        // Promoted, so nothing else is promoted meanwhile.
        let promoted = resource.promoted || resource.roleChanging || demoted[resource.id]?[node] != nil
        let running: ResourceRunRole =
          promoted ? .promoted : (promotable.contains(resource.id) ? .unpromoted : .started)
        let settled = !resource.roleChanging && demoted[resource.id]?[node] == nil
        switch resource.role {
        case .started: state = .running(running, settled: settled)
        case .starting: state = .running(running, settled: false)
        case .stopping: state = .stopping
        case .failed, .unknown: state = .failed
        case .blocked: state = .blocked
        case .stopped: continue
        }
        seen.insert(ResourceKey(resource: resource.id, node: node))
        instances.append(ObservedInstance(instance(executing: resource.id), on: node, state))
      }
    }
    let members = Set(memberNodes)
    for (resource, nodes) in withdrawn {
      for node in nodes.keys.sorted() where members.contains(node) {
        guard seen.insert(ResourceKey(resource: resource, node: node)).inserted else { continue }
        instances.append(ObservedInstance(instance(executing: resource), on: node, .stopping))
      }
    }
    return (instances, failures)
  }

  /// The scheduler's instance for what a node runs: `rsc:N` of a
  /// globally-unique clone is its instance N; anything else is unnumbered
  /// (an anonymous clone's copies are told apart by their node).
  func instance(executing id: ResourceID) -> InstanceID {
    config.uniqueInstance(id).map { InstanceID($0.child, $0.index) } ?? InstanceID(id)
  }

  /// What a node runs for a scheduler's instance, and whether copies of it
  /// may run on several nodes (an anonymous clone's).
  func executed(_ instance: InstanceID) -> (id: ResourceID, copies: Bool) {
    guard let index = instance.index else { return (instance.resource, false) }
    guard let clone = config.clones.first(where: { $0.child == instance.resource }), clone.globallyUnique else {
      return (instance.resource, true)
    }
    return (clone.instanceResource(index), false)
  }

  struct ResourceKey: Hashable {
    var resource: ResourceID
    var node: NodeID
  }

  /// Operator moves as pacemaker's crm_resource expresses them: a location
  /// constraint preferring the target with INFINITY.
  func moveConstraints(_ moves: [ResourceID: NodeID]) -> [LocationConstraint] {
    moves.sorted { $0.key < $1.key }.map { resource, node in
      LocationConstraint(id: "cli-move-\(resource)", resource: resource, score: .infinity, node: name(of: node))
    }
  }

  func schedulerInput(
    nodes: [NodeFacts], reports: [NodeID: NodeReport], withdrawn: [ResourceID: [NodeID: Instant]],
    demoted: [ResourceID: [NodeID: Instant]] = [:], moves: [ResourceID: NodeID], extra: [LocationConstraint] = [],
    now: Instant
  ) -> SchedulerInput {
    let (instances, failures) = observed(reports: reports, withdrawn: withdrawn, demoted: demoted)
    let operatorConstraints = moveConstraints(moves) + extra
    // The clock matters only to a lifetime: without one, inputs that differ
    // in nothing else are equal (`LeaderState.lastSchedule`).
    let ends = (config.constraints.locations + operatorConstraints).contains { $0.expires != nil }
    return SchedulerInput(
      config: config, nodes: nodes, observed: instances, failures: failures,
      operatorConstraints: operatorConstraints, unfenced: mayStillRun, wallTime: ends ? wallTime(at: now) : nil)
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
    let nodes = schedulerNodes(reports: reports, now: now, excluded: cannotTakeConfig)
    state.withdrawn = confirmed(state.withdrawn, now: now)
    state.demoted = confirmed(state.demoted, now: now)
    var effects = handleRequests(&state, nodes: nodes, reports: reports, now: now)
    let running = runningNodes(reports)
    for (resource, target) in state.moves {
      let eligible = nodes.first { $0.id == target }.map { $0.online && !$0.standby } ?? false
      let members = config.group(resource)?.members ?? [resource]
      let arrived = members.allSatisfy { running[$0] == [target] }
      if arrived || !eligible { state.moves[resource] = nil }
    }
    let input = schedulerInput(
      nodes: nodes, reports: reports, withdrawn: state.withdrawn, demoted: state.demoted, moves: state.moves, now: now)
    // The scheduler is a function of its input: the same input (a monitor
    // that found all well, a timer) gets the same transition without
    // placing a thousand resources again.
    let transition: Transition
    if let last = state.lastSchedule, last.input == input {
      transition = last.transition
    } else {
      transition = Scheduler.schedule(input)
      state.lastSchedule = (input, transition)
    }
    var gated = transition
    var gate = state.notifications
    let rounds = gate.gate(
      &gated, clones: config.clones, reports: reports, members: memberNodes, newID: { state.newToken() })
    state.notifications = gate
    var directives = publish(gated, previous: state.directives, running: running, reports: reports, &state)
    directives.notifications = rounds
    directives.fenced = announcedFencings(state)
    // The leader's own state is known at once: only peers need the echo.
    for old in state.directives?.assignments ?? [] where old.node != local.id {
      let current = directives.assignment(for: old.resource, on: old.node)
      if current == nil { state.withdrawn[old.resource, default: [:]][old.node] = now }
      // A node told to demote may still be Promoted until it echoes: no
      // other instance is promoted before that (two DRBD primaries).
      if old.promoted && current?.promoted != true { state.demoted[old.resource, default: [:]][old.node] = now }
    }
    if directives.assignments != state.directives?.assignments {
      let text = directives.assignments.map { "\($0.resource)→\(name(of: $0.node))" }.joined(separator: ", ")
      effects.append(.log(.info, "placement: \(text.isEmpty ? "nothing runs" : text)"))
    }
    state.directives = directives
    state.lastTransition = transition
    return effects
  }

  /// What is taken back stays counted until the node echoes a packet
  /// sent after it, or the lease has run out (it acts only under a fresh
  /// lease).
  func confirmed(_ taken: [ResourceID: [NodeID: Instant]], now: Instant) -> [ResourceID: [NodeID: Instant]] {
    var result = taken
    for (resource, nodes) in taken {
      for (node, since) in nodes {
        let seen = membership.echo(from: node).map { $0 >= since } ?? false
        if seen || now - since > membership.settings.lease { result[resource]?[node] = nil }
      }
      if result[resource]?.isEmpty == true { result[resource] = nil }
    }
    return result
  }

  /// Nodes on which each resource runs (started or starting), from the reports.
  func runningNodes(_ reports: [NodeID: NodeReport]) -> [ResourceID: Set<NodeID>] {
    var result: [ResourceID: Set<NodeID>] = [:]
    for node in memberNodes {
      for resource in reports[node]?.resources ?? [] where resource.role == .started || resource.role == .starting {
        result[resource.id, default: []].insert(node)
      }
    }
    return result
  }

  /// The next step of the transition as directives: an instance is given
  /// to its node once its start may run (nothing it waits for is left); it
  /// keeps its old node while its stop there must still wait for what is
  /// ordered before it.
  func publish(
    _ transition: Transition, previous: Directives?, running: [ResourceID: Set<NodeID>],
    reports: [NodeID: NodeReport], _ state: inout LeaderState
  ) -> Directives {
    var byInstance: [InstanceID: [ScheduledAction]] = [:]
    for action in transition.actions { byInstance[action.instance, default: []].append(action) }
    var assignments: [Assignment] = []
    var taken: Set<ResourceKey> = []
    func add(_ assignment: Assignment) {
      if taken.insert(ResourceKey(resource: assignment.resource, node: assignment.node)).inserted {
        assignments.append(assignment)
      }
    }
    for placement in transition.placements {
      let (id, isClone) = executed(placement.instance)
      let actions = byInstance[placement.instance] ?? []
      // A stop or demote that must still wait for what is ordered before
      // it leaves the node as it was told (Promoted included).
      var held = false
      for action in actions where (action.kind == .stop || action.kind == .demote) && !action.isReady {
        guard let old = previous?.assignment(for: id, on: action.node) else { continue }
        add(old)
        held = held || (!isClone && action.node != placement.node)
      }
      guard !held, let target = placement.node else { continue }
      if let start = actions.first(where: { $0.kind == .start && $0.node == target }) {
        guard start.isReady else { continue }
      } else if actions.contains(where: { $0.kind == .stop && $0.node == target }) {
        continue
      }
      // Promoted once its promote may run; still Promoted while its demote
      // must wait.
      var promoted = placement.role == .promoted
      if let promote = actions.first(where: { $0.kind == .promote && $0.node == target }), !promote.isReady {
        promoted = false
      }
      if let demote = actions.first(where: { $0.kind == .demote && $0.node == target }), !demote.isReady {
        promoted = true
      }
      let old = isClone ? previous?.assignment(for: id, on: target) : previous?.assignment(for: id)
      let isRunning = running[id]?.contains(target) ?? false
      let used = reports[target]?.resource(id)?.lastStartToken
      // Keep the decision while it runs or is yet to be acted on; once the
      // node used it and the resource stopped (failure, lost lease), decide
      // again: a node never starts twice on one decision.
      if let old, old.node == target, isRunning || used != old.token {
        add(
          Assignment(
            resource: id, node: target, token: old.token, promoted: promoted, instance: placement.instance.index))
        continue
      }
      // Moving a decision from one live member to another goes through
      // "nobody" first: the old node may be acting on it as we speak, so it
      // counts as possibly active there until it echoes the withdrawal.
      if !isClone, let old, old.node != target, old.node != local.id, memberNodes.contains(old.node) { continue }
      add(
        Assignment(
          resource: id, node: target, token: state.newToken(), promoted: promoted, instance: placement.instance.index))
    }
    let capped = capPromotions(assignments, previous: previous, demoted: state.demoted, reports: reports)
    // Unchanged (a monitor that found all well): keep the indexed copy.
    if let previous, previous.assignments == capped { return previous }
    return Directives(assignments: capped)
  }

  /// Never more nodes told Promoted than promoted_max: a node whose demote
  /// must wait keeps its word, so one that becomes Promoted (or was found
  /// Promoted, after a stall or a healed partition) waits for it.
  func capPromotions(
    _ assignments: [Assignment], previous: Directives?, demoted: [ResourceID: [NodeID: Instant]],
    reports: [NodeID: NodeReport]
  ) -> [Assignment] {
    var result = assignments
    for clone in config.clones where clone.promotable {
      let told = result.indices.filter { result[$0].resource == clone.child && result[$0].promoted }
      let toldNodes = Set(told.map { result[$0].node })
      // Nodes that may still be Promoted without being told so: told to
      // demote now or not yet confirmed, or reporting it.
      var mayBe = Set(demoted[clone.child]?.keys.map { $0 } ?? [])
      for old in previous?.assignments ?? [] where old.resource == clone.child && old.promoted {
        mayBe.insert(old.node)
      }
      for node in memberNodes {
        if let report = reports[node]?.resource(clone.child), report.promoted || report.roleChanging {
          mayBe.insert(node)
        }
      }
      let elsewhere = mayBe.subtracting(toldNodes).count
      guard told.count + elsewhere > clone.promotedMax else { continue }
      let held = told.filter { previous?.assignment(for: clone.child, on: result[$0].node)?.promoted == true }
      var allowed = max(0, clone.promotedMax - held.count - elsewhere)
      for index in told where !held.contains(index) {
        if allowed > 0 {
          allowed -= 1
        } else {
          result[index].promoted = false
        }
      }
    }
    return result
  }

  /// Answers operator requests from every node (this one included).
  mutating func handleRequests(
    _ state: inout LeaderState, nodes: [NodeFacts], reports: [NodeID: NodeReport], now: Instant
  )
    -> [ControllerEffect]
  {
    var effects: [ControllerEffect] = []
    var incoming = peerRequests.filter { membership.isAlive($0.key) }.map { ($0.key, $0.value) }
    incoming.append((local.id, pendingRequests))
    for (origin, requests) in incoming.sorted(by: { $0.0 < $1.0 }) {
      for request in requests {
        guard state.handled.firstTime(RequestKey(origin: origin, id: request.id)) else { continue }
        let (accepted, message) = decide(request, &state, nodes: nodes, reports: reports, now: now)
        let answer = RequestAnswer(origin: origin, id: request.id, accepted: accepted, message: message)
        effects += post(answer, in: &state)
      }
    }
    return effects
  }

  /// A move is checked with the scheduler itself: the target is where the
  /// resource would go with the move in place (or, without a target, with
  /// it banned from where it runs), so an answer never promises what the
  /// scheduler would not do.
  mutating func decide(
    _ request: OperatorRequest, _ state: inout LeaderState, nodes: [NodeFacts], reports: [NodeID: NodeReport],
    now: Instant
  ) -> (Bool, String) {
    switch request.kind {
    case .fence(let node, let action, let confirm):
      return confirm ? confirmFenced(node, &state) : fenceByHand(node, action: action, &state, now: now)
    case .cleanup(let resource, let node):
      return (true, "cleaning up \(resource) on \(node.map { name(of: $0) } ?? "every node")")
    case .attribute(let node, let attribute, let value):
      // The node applies it when it hears the asker; a node that is not a
      // member now would apply it whenever it comes back, long after.
      guard node == local.id || membership.isAlive(node) else {
        return (false, "\(name(of: node)) is not a member now: its transient attributes cannot be changed")
      }
      return (
        true,
        value.map { "setting \(attribute)=\($0) on \(name(of: node))" } ?? "deleting \(attribute) on \(name(of: node))"
      )
    case .move(let requestedID, let requested):
      var resource = requestedID
      var note = ""
      if let group = config.groups.first(where: { $0.members.contains(requestedID) }) {
        resource = group.id
        note = " (with its group \(group.id))"
      }
      if config.clones.contains(where: { $0.id == resource || $0.child == resource }) {
        return (false, "\(requestedID) is cloned: it runs on several nodes, and a move takes one resource or group")
      }
      guard let first = config.group(resource)?.members.first ?? config.resource(resource)?.id else {
        return (false, "no resource '\(requestedID)'")
      }
      let running = runningNodes(reports)
      let blocked = memberNodes.contains { reports[$0]?.resource(first)?.role == .blocked }
      if blocked { return (false, "\(resource) is blocked after a failed stop") }
      let current = running[first] ?? []
      let from = current.sorted().map { name(of: $0) }.joined(separator: ", ")
      var extra: [LocationConstraint] = []
      var moves = state.moves
      if let requested {
        guard let node = nodes.first(where: { $0.id == requested }) else {
          return (false, "\(name(of: requested)) is not a node")
        }
        guard node.online && !node.standby else {
          return (false, "\(node.name) cannot run resources now (lost, standby or still probing)")
        }
        if current == [requested] { return (true, "\(requestedID) already runs on \(node.name)\(note)") }
        moves[resource] = requested
      } else {
        moves[resource] = nil
        extra = current.sorted().map {
          LocationConstraint(
            id: "cli-ban-\(resource)-on-\(name(of: $0))", resource: resource, score: .minusInfinity, node: name(of: $0))
        }
      }
      let input = schedulerInput(
        nodes: nodes, reports: reports, withdrawn: state.withdrawn, moves: moves, extra: extra, now: now)
      let placement = Scheduler.schedule(input).placement(of: InstanceID(first))
      guard let target = placement?.node, requested == nil || target == requested else {
        let why = placement?.reason ?? "it cannot run there"
        if let requested {
          return (false, "\(requestedID) cannot run on \(name(of: requested)): \(why)")
        }
        return (false, "no other node can run \(requestedID) now: \(why)")
      }
      state.moves[resource] = target
      let to = name(of: target)
      return (
        true,
        from.isEmpty ? "starting \(requestedID) on \(to)\(note)" : "moving \(requestedID) from \(from) to \(to)\(note)"
      )
    }
  }
}

extension NodeController {
  /// `hactl why`: the scheduler run on what this node knows now (the
  /// leader's view when this node leads; a follower holds the same
  /// reports, without the leader's withdrawals in flight).
  public func explain(_ resource: String, now: Instant) -> Result<String, RequestError> {
    let id = ResourceID(resource)
    guard config.resource(id) != nil || config.group(id) != nil || config.clone(id) != nil else {
      return .failure(.unknownResource(resource))
    }
    let reports = self.reports
    let state = membership.isLeader ? leading : nil
    let input = schedulerInput(
      nodes: schedulerNodes(reports: reports, now: now), reports: reports, withdrawn: state?.withdrawn ?? [:],
      demoted: state?.demoted ?? [:], moves: state?.moves ?? [:], now: now)
    let seen = membership.isLeader ? "as the leader sees it" : "as \(local.name) sees it (not the leader)"
    let text = Scheduler.schedule(input).explanation(of: id) ?? "nothing is known of \(resource)"
    return .success("\(resource), \(seen):\n\(text)")
  }
}

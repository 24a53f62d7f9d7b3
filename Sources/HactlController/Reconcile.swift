import HactlModel
import HactlWire
import Synchronization

extension NodeController {
  /// What this node should do with one resource, from quorum and directives.
  enum Want: Equatable {
    /// Run it, Promoted when `promoted` (a promotable clone's instance).
    case run(token: UInt64, promoted: Bool = false)
    case stop
    /// No decision available (election or probes in progress): change nothing.
    case keep
    /// A clone's instance while no leader's lease covers this node but its
    /// partition is quorate (an election): it keeps running, since copies
    /// elsewhere do no harm, but not Promoted, since another instance may be
    /// promoted by the next leader.
    case keepUnpromoted
  }

  func want(_ id: ResourceID, now: Instant) -> Want { want(id, given: wanted(now: now)) }

  /// What every resource here wants, before looking at the resource: it
  /// depends on the node and the cluster only, so reconciling a thousand
  /// resources works it out once.
  func wanted(now: Instant) -> Want? {
    // A node leaving stops everything itself: it may not wait for a leader.
    // One put in standby is emptied by the leader, in order, with its
    // clones' notifications, like any other move.
    if leaving || membership.excluded || fencedSelf { return .stop }
    // Without quorum, or with the lease on it running out, the policy decides.
    let withoutQuorum: Want?
    switch config.cluster.quorum.noQuorumPolicy {
    case .stop: withoutQuorum = .stop
    case .freeze: withoutQuorum = .keep
    case .ignore: withoutQuorum = nil
    }
    if !membership.quorate, let withoutQuorum { return withoutQuorum }
    let directives: Directives?
    if membership.isLeader {
      if !membership.mayRunResources(now: now), let withoutQuorum { return withoutQuorum }
      directives = leading?.directives
    } else if membership.leader != nil {
      // The leader's partition must include us, or the others may already be
      // starting our resources elsewhere. (An empty list means the leader
      // lost its quorum lease: that is the no-quorum policy's case, below.)
      let granted = membership.grantedMembers
      if !granted.isEmpty && !granted.contains(local.id) { return .stop }
      if !membership.mayRunResources(now: now), let withoutQuorum { return withoutQuorum }
      directives = followedDirectives ?? lastFollowedDirectives
    } else {
      // Without a leader no lease covers this node: its peers may elect a
      // leader that cannot hear it and start its resources elsewhere (a
      // leader that steps down for a higher term, a follower that lost its
      // leader). Only a node that has not yet joined anyone since it
      // started keeps what its probes found, for the first leader to judge.
      if membership.hasHadLeader, let withoutQuorum { return withoutQuorum }
      directives = nil
    }
    guard directives == nil else { return nil }
    return rightLapsed && !membership.isLeader ? withoutQuorum ?? .keep : .keep
  }

  func want(_ id: ResourceID, given common: Want?) -> Want {
    if let common, common == .stop {
      let lostLeaseOnly = membership.quorate && !leaving && !membership.excluded
      return lostLeaseOnly && clonedPrimitives.contains(id) && resources[id]?.removed != true ? .keepUnpromoted : .stop
    }
    if let resource = resources[id], resource.removed || resource.restartsForReplacement { return .stop }
    if let common { return common }
    let directives = membership.isLeader ? leading?.directives : followedDirectives ?? lastFollowedDirectives
    guard let assignment = directives?.assignment(for: id, on: local.id) else { return .stop }
    // Directives a newer version has replaced may stop, never start.
    if !membership.isLeader && followedDirectives == nil { return assignment.promoted ? .keep : .keepUnpromoted }
    return .run(token: assignment.token, promoted: assignment.promoted)
  }

  /// Starts the agent calls that move this node's resources toward what is
  /// wanted. At most one call per resource is in flight. `changedRoles`:
  /// whether this node's report changed (a start, stop, promote or demote
  /// begun, a removed resource forgotten).
  mutating func reconcile(now: Instant) -> (effects: [ControllerEffect], changedRoles: Bool) {
    var (changedRoles, effects) = applyRequests()
    let common = wanted(now: now)
    if common == .stop && !membership.isLeader && membership.hasHadLeader { rightLapsed = true }
    var callsInFlight = resources.values.count { $0.inFlight != nil }
    let promotable = Set(config.clones.filter(\.promotable).map(\.child))
    let groups = groupNeighbours
    let directives = membership.isLeader ? leading?.directives : followedDirectives
    // In maintenance nothing is monitored (pacemaker's maintenance mode):
    // an operator is working on what runs there.
    let inMaintenance =
      config.cluster.maintenance || config.nodes.first { $0.id == local.id }?.maintenance == true
    let resourcesInMaintenance = Set(config.operatorState.maintenanceResources)
    var retiredOne = false
    for id in orderedResourceIDs() {
      guard var resource = resources[id] else { continue }
      resource.promotable = promotable.contains(id)
      if resource.expireFailures(now: now) {
        changedRoles = true
        resources[id] = resource
        effects.append(.log(.notice, "\(id): failures older than its failure_timeout forgotten"))
      }
      // A monitor must not delay a stop or a role change that is due (after
      // a stall, a lost lease): cancel it, as pacemaker cancels recurring
      // monitors first.
      if let call = resource.inFlight, (call.action == .monitor && !call.isProbe) || call.action == .metaData,
        resource.role == .started,
        want(id, given: common) != .keep, wantsChange(resource, want(id, given: common))
      {
        effects.append(.cancelAgent(call.id))
        resource.inFlight = nil
        // Kept even when what is wanted must still wait (a group member
        // after it still stopping): cancelled once, not at every decision.
        resources[id] = resource
      }
      guard resource.inFlight == nil else { continue }
      if let retry = resource.retryNotBefore, now < retry { continue }
      if resource.role == .stopped {
        // Known stopped as the old definition: forget it, or probe the new one.
        if resource.removed {
          changedRoles = true
          retiredOne = true
          resources[id] = nil
          effects.append(.log(.notice, "\(id): removed from the configuration and stopped here"))
          continue
        }
        if let replacement = resource.replacement {
          // A new definition starts with no fail count; what failed last
          // (a reload, a stop) is still worth showing.
          let (failure, output) = (resource.lastFailure, resource.lastFailureOutput)
          retiredOne = true
          resource = LocalResource(spec: replacement)
          (resource.lastFailure, resource.lastFailureOutput) = (failure, output)
          resources[id] = resource
        }
      }
      let spec = resource.spec
      let startTokenBefore = resource.lastStartToken
      var call: (AgentAction, Duration, Duration, Bool)?
      var notification: CloneNotification?
      switch resource.role {
      case .unknown:
        call = (.monitor, spec.monitor.timeout, .zero, true)
      case .blocked, .starting, .stopping:
        break
      case .failed:
        call = (.stop, spec.stop.timeout, .zero, false)
      case .started where resource.promoted && resource.promotionFailed:
        // on_fail: demote, whatever the leader said before it heard.
        call = (.demote, spec.demote.timeout, .zero, false)
      case .started:
        switch want(id, given: common) {
        // A Promoted instance is demoted before it stops, as pacemaker does.
        case .stop where resource.promoted:
          call = (.demote, spec.demote.timeout, .zero, false)
        case .stop:
          call = (.stop, spec.stop.timeout, .zero, false)
        case .run(_, let promoted) where promoted && !resource.promoted && !resource.promotionFailed:
          call = (.promote, spec.promote.timeout, .zero, false)
        case .run(_, let promoted) where !promoted && resource.promoted:
          call = (.demote, spec.demote.timeout, .zero, false)
        case .keepUnpromoted where resource.promoted:
          call = (.demote, spec.demote.timeout, .zero, false)
        case .run, .keep, .keepUnpromoted:
          if resource.replacement != nil {
            // Its parameters changed and it may reload them (it would be
            // stopping otherwise): ask the agent, then reload.
            call = (resource.reload?.action ?? .metaData, spec.start.timeout, .zero, false)
          } else if let round = directives?.notification(for: id, on: local.id), round.id != resource.lastNotified {
            notification = round
            call = (.notify, spec.notify.timeout, .zero, false)
          } else if let due = resource.nextMonitor, now >= due, !inMaintenance,
            !resourcesInMaintenance.contains(config.uniqueInstance(id)?.child ?? id)
          {
            call = (.monitor, resource.monitor.timeout, resource.monitor.interval, false)
          }
        }
      case .stopped:
        if case .run(let token, _) = want(id, given: common), resource.lastStartToken != token {
          if !resource.validated && spec.agent.hasRoles {
            // OCF agents check their parameters once before the first start here.
            call = (.validateAll, spec.start.timeout, .zero, false)
          } else {
            resource.lastStartToken = token
            call = (.start, spec.start.timeout, .zero, false)
          }
        }
      }
      guard let (action, timeout, interval, isProbe) = call else { continue }
      // A group's members start in order and stop in reverse on this node
      // whatever the leader's view: its reports may lag what happened here
      // (a lease lost, a member failed).
      if action == .start, let needed = groups.before[id] {
        let here = resources[needed.resource]
        let demoting = here?.inFlight?.action == .demote
        if here?.role != .started || (needed.promoted && (here?.promoted != true || demoting)) { continue }
      }
      if action == .stop || (action == .demote && groups.afterPromotion.contains(id)),
        groups.after[id, default: []].contains(where: { resources[$0].map { $0.role != .stopped } ?? false })
      {
        continue
      }
      // Probes, starts and monitors wait for a free slot (as pacemaker's
      // node-action-limit); a stop never waits, nor does the demote before
      // it: they are what safety needs.
      if action != .stop && action != .demote && callsInFlight >= Self.agentCallsAtOnce { continue }
      callsInFlight += 1
      let callID = nextCallID
      nextCallID += 1
      resource.inFlight = LocalResource.InFlight(
        id: callID, action: action, isProbe: isProbe, roleBefore: resource.role,
        startTokenBefore: startTokenBefore, notification: notification?.id)
      if action == .start { resource.role = .starting }
      if action == .stop && resource.role != .failed { resource.role = .stopping }
      // A promote or demote begun shows in the report too (roleChanging):
      // what the leader orders after it reads that.
      if action != .monitor && action != .notify { changedRoles = true }
      resources[id] = resource
      effects.append(
        .runAgent(
          AgentCall(
            id: callID, definition: action.isReload ? resource.replacement ?? spec : spec, action: action,
            timeout: timeout, interval: interval, isProbe: isProbe,
            meta: cloneMeta(of: id).merging(notificationMeta(notification)) { $1 })))
    }
    // A retired definition known stopped is forgotten: so is its record.
    if retiredOne { effects += storeRetiringIfChanged() }
    return (effects, changedRoles)
  }

  struct LocalOrder {
    /// What must run here before a resource starts (Promoted, when it is
    /// ordered after a promotion).
    var before: [ResourceID: (resource: ResourceID, promoted: Bool)] = [:]
    /// What must be stopped here before a resource stops (or demotes).
    var after: [ResourceID: [ResourceID]] = [:]
    /// Resources whose demote, not only their stop, waits for `after`.
    var afterPromotion: Set<ResourceID> = []
  }

  /// The orders that hold on one node whatever the leader's view: a
  /// group's members, and a mandatory order between what must run
  /// together (an INFINITY colocation, e.g. a filesystem with the
  /// Promoted DRBD instance it is ordered after).
  var groupNeighbours: LocalOrder {
    var order = LocalOrder()
    for group in config.groups {
      for (index, member) in group.members.enumerated() {
        if index > 0 { order.before[member] = (group.members[index - 1], false) }
        order.after[member, default: []] += group.members[(index + 1)...]
      }
    }
    for constraint in config.constraints.orders where constraint.kind == .mandatory && constraint.thenAction == .start {
      let promote = constraint.firstAction == .promote
      guard constraint.firstAction == .start || promote,
        config.constraints.colocations.contains(where: {
          $0.resource == constraint.then && $0.with == constraint.first && $0.score == .infinity
            && ($0.withRole == .promoted) == promote
        })
      else { continue }
      // A globally-unique clone's instances are resources of their own: a
      // then waits for whichever the leader counts, not one named here.
      if config.clone(constraint.first)?.globallyUnique == true { continue }
      let first = config.clone(constraint.first)?.child ?? constraint.first
      let firstPrimitive = config.group(first)?.members.last ?? first
      let thenMembers = config.group(constraint.then)?.members ?? [constraint.then]
      guard let head = thenMembers.first, config.resource(firstPrimitive) != nil else { continue }
      if order.before[head] == nil { order.before[head] = (firstPrimitive, promote) }
      order.after[firstPrimitive, default: []] += thenMembers
      if promote { order.afterPromotion.insert(firstPrimitive) }
    }
    return order
  }

  /// Every primitive that runs as a clone's instance (a cloned group's
  /// members included).
  var clonedPrimitives: Set<ResourceID> {
    Set(config.clones.flatMap { clone in config.group(clone.child)?.members ?? [clone.child] })
  }

  /// What pacemaker tells a clone's agents about the clone: promotable
  /// agents read promoted_max (or its old name master_max) to know they
  /// are promotable, and clone_max to know how many peers they have. An
  /// anonymous clone's instance number is the one the leader gave this
  /// node, 0 before it gave one; a globally-unique one's is in its name.
  func cloneMeta(of id: ResourceID) -> [String: String] {
    let group = config.groups.first { $0.members.contains(id) }?.id
    let unique = config.uniqueInstance(id)
    guard let clone = unique?.clone ?? config.clones.first(where: { $0.child == id || $0.child == group }) else {
      return [:]
    }
    let directives = membership.isLeader ? leading?.directives : followedDirectives
    let instance = unique?.index ?? directives?.assignment(for: id, on: local.id)?.instance ?? 0
    var meta = [
      "clone": String(instance), "clone_max": String(clone.maximumInstances(nodes: config.nodes.count)),
      "clone_node_max": String(clone.cloneNodeMax), "notify": String(clone.notify),
      "globally_unique": String(clone.globallyUnique), "interleave": String(clone.interleave),
    ]
    if clone.promotable {
      meta["promotable"] = "true"
      for prefix in ["promoted", "master"] {
        meta["\(prefix)_max"] = String(clone.promotedMax)
        meta["\(prefix)_node_max"] = String(clone.promotedNodeMax)
      }
    }
    return meta
  }

  func notificationMeta(_ round: CloneNotification?) -> [String: String] {
    guard let round, let clone = config.clones.first(where: { $0.child == round.resource }) else { return [:] }
    let names = Dictionary(config.nodes.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
    return round.agentMeta(nodeNames: names, instances: clone.maximumInstances(nodes: config.nodes.count))
  }

  /// Whether `want` asks a started resource for more than a monitor.
  func wantsChange(_ resource: LocalResource, _ want: Want) -> Bool {
    switch want {
    case .stop: return true
    case .run(_, let promoted): return promoted != resource.promoted
    case .keep: return false
    case .keepUnpromoted: return resource.promoted
    }
  }

  /// Agent calls running at once on a node, stops not counted: a thousand
  /// resources probed at once would take every process slot and core.
  public static let agentCallsAtOnce = 32

  /// Whether this node means to keep `id` running (it is not stopping it).
  public func wantsRunning(_ id: ResourceID, now: Instant) -> Bool { want(id, now: now) != .stop }

  /// What this node means to do with `id`, and on whose word (the simulator's reports).
  public func wantDescription(_ id: ResourceID, now: Instant) -> String {
    let source =
      membership.isLeader
      ? (leading?.directives == nil ? "no directives of its own" : "its own directives")
      : (followedDirectives == nil ? "no directives held" : "its leader's directives")
    return "wants \(want(id, now: now)) on \(source)"
  }

  /// Whether this node means to run `id` Promoted (it is not demoting it).
  public func wantsPromoted(_ id: ResourceID, now: Instant) -> Bool {
    if case .run(_, promoted: true) = want(id, now: now) { return true }
    return false
  }

  /// How the agent for `id` must be called here: the definition it was
  /// started with, until it has stopped (it may have left the configuration).
  public func definition(of id: ResourceID) -> ResourceSpec? { resources[id]?.spec }

  /// The longest stop timeout of the resources this node manages now.
  public var longestStopTimeout: Duration { resources.values.map(\.spec.stop.timeout).max() ?? .zero }

  /// The role of one resource here, as this node's executor knows it.
  public func localRole(of id: ResourceID) -> ResourceRole? { resources[id]?.role }

  /// This node's resources, as carried in its heartbeats.
  /// What it runs first, then what it still stops, within what a
  /// heartbeat may carry (the leader refuses changes that would leave more;
  /// this only guards against a configuration that got here another way).
  var localReport: NodeReport {
    if let cached = localReportCache.report.withLock({ $0 }) { return cached }
    let report = makeLocalReport()
    localReportCache.report.withLock { $0 = report }
    return report
  }

  func makeLocalReport() -> NodeReport {
    // Configured ones in the configuration's order (no sorting at every
    // heartbeat), then the removed ones still tracked; one pass, reading
    // each resource where it is stored.
    var entries: [ResourceReport] = []
    entries.reserveCapacity(min(resources.count, ClusterLimits.reportedResources))
    for spec in config.executedResources where entries.count < ClusterLimits.reportedResources {
      if resources[spec.id]?.removed == false, let entry = resources[spec.id]?.report { entries.append(entry) }
    }
    let removed = resources.keys.filter { resources[$0]?.removed == true }.sorted()
    for id in removed where entries.count < ClusterLimits.reportedResources {
      if let entry = resources[id]?.report { entries.append(entry) }
    }
    var probed = true
    var standbyOnFail = false
    for resource in resources.values {
      probed = probed && resource.role != .unknown
      standbyOnFail = standbyOnFail || resource.standbyOnFail
    }
    // on_fail: standby empties this node as an operator's standby would.
    var report = NodeReport(probed: probed, mode: standbyOnFail ? .standby : localMode, resources: entries)
    report.attributes = transientAttributes
    return report
  }
}

/// Where `localReport` keeps what it made (a class, so that a getter can
/// fill it; see `NodeController.localReportCache`). Locked: copies of a
/// controller that share it may be read on different threads.
final class LocalReportCache: Sendable {
  let report = Mutex<NodeReport?>(nil)
}

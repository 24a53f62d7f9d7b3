import HactlModel

extension NodeController {
  /// Why a resource a lost node may run is not taken over: no fencing,
  /// or fencing under way (and why it has not succeeded yet).
  func unfencedNote(_ nodes: [NodeID]) -> String {
    let names = nodes.map { name(of: $0) }.joined(separator: ", ")
    guard config.fencing.isEnabled else { return "may still run on \(names) (lost, not fenced): not taken over" }
    let failures = nodes.compactMap { leading?.fenceJobs[$0]?.lastFailure }
    if failures.isEmpty { return "may still run on \(names) (lost): waiting for it to be fenced" }
    return "may still run on \(names) (lost): NOT TAKEN OVER, fencing failed: \(failures.joined(separator: "; "))"
  }

  /// The cluster as this node sees it now.
  public func status(now: Instant) -> ClusterStatus {
    let granted = Set(membership.isLeader ? membership.members(now: now) : membership.grantedMembers)
    let reports = self.reports
    let nodes = config.voters.map { member -> NodeStatus in
      let alive = membership.isAlive(member.id)
      var state: NodeStatus.State = alive ? .online : .lost
      if alive, member.kind == .node, reports[member.id]?.mode == .standby { state = .standby }
      let up = membership.links(of: member.id)
      let links =
        member.id == local.id
        ? []
        : member.links.enumerated().map { index, endpoint in
          LinkStatus(link: index, address: endpoint.description, up: up[safe: index] ?? false)
        }
      var status = NodeStatus(
        name: member.name, id: member.id.rawValue, kind: member.kind, state: state,
        leader: membership.leader == member.id, member: granted.contains(member.id), links: links)
      if let spec = config.nodes.first(where: { $0.id == member.id }) {
        let attributes = attributes(of: spec, report: reports[member.id])
        status.attributes = attributes.isEmpty ? nil : attributes
      }
      return status
    }
    let liveNodes = config.nodes.map(\.id).filter { membership.isAlive($0) }
    // Resources gone from the configuration that some node still tracks (a
    // stop in progress, or blocked after a failed stop) stay visible.
    let executed = config.executedResources
    let configured = Set(executed.map(\.id))
    let leftovers = Set(config.nodes.flatMap { reports[$0.id]?.resources.map(\.id) ?? [] })
      .subtracting(configured).sorted()
    let shownResources: [(id: ResourceID, agent: String, removed: Bool)] =
      executed.map { ($0.id, $0.agent.description, false) }
      + leftovers.map { ($0, definition(of: $0)?.agent.description ?? "?", true) }
    let promotable = Set(config.clones.filter(\.promotable).map(\.child))
    // Worked out once: with fencing it holds every resource for each lost node.
    let waitingFor = mayStillRun
    let resources = shownResources.map { spec -> ResourceStatus in
      var roles: [(node: NodeID, role: ResourceRole)] = []
      var failCounts: [String: Int] = [:]
      var lastFailure: NodeFailure?
      for node in config.nodes.map(\.id) {
        guard let resource = reports[node]?.resource(spec.id) else { continue }
        if resource.failCount > 0 { failCounts[name(of: node)] = resource.failCount }
        if let failure = resource.lastFailure, failure.wallTime >= (lastFailure?.time ?? .min) {
          lastFailure = NodeFailure(node: name(of: node), failure: failure)
          if node == local.id, let mine = self.resources[spec.id], mine.lastFailure == failure {
            lastFailure?.output = mine.lastFailureOutput
          }
        }
        if liveNodes.contains(node) { roles.append((node, resource.role)) }
      }
      let missing = !spec.removed && liveNodes.contains { reports[$0]?.resource(spec.id) == nil }
      let state = Self.clusterRole(roles.map(\.role), missingReports: missing)
      let active = roles.filter { $0.role.mayBeActive && $0.role != .unknown }.map { name(of: $0.node) }
      let shown = roles.first { $0.role == state }.map { name(of: $0.node) }
      let waitingOn = waitingFor.filter { $0.value.contains(spec.id) }.map(\.key).sorted()
      var note = waitingOn.isEmpty ? nil : unfencedNote(waitingOn)
      if spec.removed {
        let blocked = roles.filter { $0.role == .blocked }.map { name(of: $0.node) }
        note =
          blocked.isEmpty
          ? "removed from the configuration: stopping"
          : "removed from the configuration, but its stop failed on \(blocked.joined(separator: ", ")): "
            + "it may still run there; stop it by hand, then restart hactld there to probe it"
      }
      var status = ResourceStatus(
        id: spec.id.rawValue, agent: spec.agent, state: state,
        node: state == .stopped || state == .unknown ? nil : shown, activeOn: active,
        failCounts: failCounts, lastFailure: lastFailure, note: state == .started && !spec.removed ? nil : note)
      let group = config.groups.first { $0.members.contains(spec.id) }?.id
      status.group = group?.rawValue
      status.clone =
        (config.uniqueInstance(spec.id)?.clone ?? config.clones.first { $0.child == spec.id || $0.child == group })?
        .id.rawValue
      if promotable.contains(spec.id) {
        status.promotedOn = liveNodes.filter { reports[$0]?.resource(spec.id)?.promoted == true }.map { name(of: $0) }
      }
      return status
    }
    var status = ClusterStatus(
      cluster: config.cluster.name, localNode: local.name, term: membership.term,
      leader: membership.leader.map { name(of: $0) },
      quorum: QuorumStatus(
        quorate: membership.quorate, votes: membership.partitionVotes,
        expectedVotes: membership.settings.expectedVotes, needed: membership.settings.votesNeeded,
        waitingFor: membership.waitingFor.map { name(of: $0) }, twoNode: membership.settings.twoNode),
      nodes: nodes, resources: resources)
    status.configuration = configurationStatus
    let fencing = fencingStatus
    status.fencing = fencing.isEmpty ? nil : fencing
    return status
  }

  /// What this node knows of fencing: the leader's jobs and what it fenced
  /// in its term, then any other boot a leader announced as fenced.
  var fencingStatus: [FencingStatus] {
    var entries: [FencingStatus] = []
    let state = membership.isLeader ? leading : nil
    for job in (state?.fenceJobs.values.map { $0 } ?? []).sorted(by: { $0.target < $1.target }) {
      // Without a device, waiting out its watchdog: no level to show.
      let byWatchdog = config.fencing.plan(for: name(of: job.target)).isEmpty && config.fencing.watchdog != nil
      entries.append(
        FencingStatus(
          node: name(of: job.target), state: job.lastFailure == nil ? .fencing : .failing,
          device: byWatchdog ? "its watchdog" : nil, level: byWatchdog ? nil : job.level + 1, reason: job.lastFailure))
    }
    var described: Set<NodeID> = []
    for record in (state?.fenced ?? []).reversed() where described.insert(record.target).inserted {
      entries.append(
        FencingStatus(
          node: name(of: record.target), state: .fenced, device: record.device, level: record.level,
          milliseconds: record.took.milliseconds))
    }
    for node in fencedBoots.keys.sorted() where !described.contains(node) {
      entries.append(FencingStatus(node: name(of: node), state: .fenced))
    }
    return entries
  }

  /// One state for the cluster from each live node's role, the most
  /// operator-relevant first.
  static func clusterRole(_ roles: [ResourceRole], missingReports: Bool) -> ResourceRole {
    let order: [ResourceRole] = [.blocked, .failed, .stopping, .starting, .started]
    for role in order where roles.contains(role) { return role }
    if missingReports || roles.contains(.unknown) { return .unknown }
    return .stopped
  }
}

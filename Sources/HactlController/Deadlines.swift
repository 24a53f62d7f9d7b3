import HactlModel

extension NodeController {
  /// When this node next needs to be woken if no packet, agent result or
  /// request comes first: the shell sleeps until then, never on a fixed
  /// period (docs/ARCHITECTURE.md, "Time as an output").
  ///
  /// Two kinds of moment make it up. Membership's own (`tickDue`) are
  /// cleared by the tick they call for. The others are limits that a
  /// decision compares with `now` (a lease, a monitor's interval, a retry,
  /// a withdrawal, a batch of sections): each counts only if it comes after
  /// the last decision, since a decision after it has already acted on it,
  /// and what else it waits for (a free agent slot, a leader) comes as an
  /// input, which decides again. A tick before this moment changes nothing;
  /// the simulator checks that at every input that comes before it.
  public var wakeAt: Instant {
    var wake = membership.tickDue
    func limit(_ moment: Instant?) {
      if let moment, moment > decidedAt, moment < wake { wake = moment }
    }
    for end in membership.leaseEnds { limit(end) }
    for resource in resources.values where resource.inFlight == nil {
      limit(resource.retryNotBefore)
      if resource.role == .started { limit(resource.nextMonitor) }
    }
    let settings = membership.settings
    if membership.isLeader, let state = leading {
      for since in state.offVersionSince.values { limit(since + settings.deadTime) }
      for nodes in state.withdrawn.values {
        for since in nodes.values { limit((since + settings.lease).justAfter) }
      }
    }
    if !replication.proposals.isEmpty, membership.leader.map({ $0 != local.id }) == true {
      limit(replication.lastForwarded.map { $0 + settings.heartbeatInterval })
    }
    limit(ownSections.nextWithheld(batchEvery: batchSectionsEvery))
    return wake
  }
}

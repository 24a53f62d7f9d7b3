import HactlMembership
import HactlModel

extension NodeController {
  /// When this node next needs to be woken if no packet, agent result or
  /// request comes first: the shell sleeps until then, never on a fixed
  /// period (docs/ARCHITECTURE.md, "Time as an output").
  ///
  /// Two kinds of moment make it up. Membership's own (`tickDue`) are
  /// cleared by the tick they call for. The others are limits that a
  /// decision compares with `now` (`decisionLimit`). A tick before this
  /// moment changes nothing; the simulator checks that at every input that
  /// comes before it.
  public var wakeAt: Instant { min(membership.tickDue, decisionLimit) }

  /// The first limit a decision compares with `now` (a lease, a monitor's
  /// interval, a retry, a withdrawal, a batch of sections) that comes after
  /// the last decision: a decision after a limit has already acted on it,
  /// and what else it waits for (a free agent slot, a leader) comes as an
  /// input, which decides again.
  var decisionLimit: Instant {
    var earliest = Instant.distantFuture
    func limit(_ moment: Instant?) {
      if let moment, moment > decidedAt, moment < earliest { earliest = moment }
    }
    for end in membership.leaseEnds { limit(end) }
    limit(resourcesLimit)
    let settings = membership.settings
    if membership.isLeader, let state = leading {
      for since in state.offVersionSince.values { limit(since + settings.deadTime) }
      // A location constraint's lifetime ends: the leader places again.
      for constraint in config.constraints.locations {
        if let expires = constraint.expires { limit(instant(atWallTime: expires)) }
      }
      for nodes in Array(state.withdrawn.values) + Array(state.demoted.values) {
        for since in nodes.values { limit((since + settings.lease).justAfter) }
      }
      for job in state.fenceJobs.values where job.running == nil { limit(job.notBefore) }
    }
    if !replication.proposals.isEmpty, membership.leader.map({ $0 != local.id }) == true {
      limit(replication.lastForwarded.map { $0 + settings.heartbeatInterval })
    }
    limit(ownSections.nextWithheld(batchEvery: batchSectionsEvery))
    if let watchdog = config.fencing.watchdog, watchdogShouldBeFed(now: decidedAt) {
      limit(lastWatchdogFeed.map { $0 + watchdog.feedEvery })
    }
    return earliest
  }

  /// The first monitor or retry due after `decidedAt`. Resources change
  /// only in a decision or just before one (an agent's result), so it is
  /// worked out at the end of each decision rather than at every wake-up.
  func earliestResourceLimit() -> Instant? {
    var earliest: Instant?
    func limit(_ moment: Instant?) {
      if let moment, moment > decidedAt, earliest.map({ moment < $0 }) ?? true { earliest = moment }
    }
    for resource in resources.values where resource.inFlight == nil {
      limit(resource.retryNotBefore)
      limit(resource.failuresExpire)
      if resource.role == .started { limit(resource.nextMonitor) }
    }
    return earliest
  }

  /// What a decision reads that a heartbeat, or time between limits, can
  /// change without a membership event: who leads, quorum, the lease, and
  /// which peers have echoed this node lately (eligibility, withdrawals).
  struct DecisionBasis: Equatable {
    var term: UInt64
    var role: MembershipRole
    var leader: NodeID?
    var quorate: Bool
    var mayRunResources: Bool
    var alive: [NodeID]
    var granted: [NodeID]
    var echoedWithinLease: [NodeID]
    var withdrawalsSeen: Int
  }

  func decisionBasis(now: Instant) -> DecisionBasis {
    let lease = membership.settings.lease
    let alive = membership.alivePeers
    var seen = 0
    if let state = leading {
      // A demote counts until its node echoes, like a withdrawal.
      for nodes in Array(state.withdrawn.values) + Array(state.demoted.values) {
        for (node, since) in nodes where membership.echo(from: node).map({ $0 >= since }) == true { seen += 1 }
      }
    }
    return DecisionBasis(
      term: membership.term, role: membership.role, leader: membership.leader, quorate: membership.quorate,
      mayRunResources: membership.mayRunResources(now: now), alive: alive, granted: membership.grantedMembers,
      echoedWithinLease: alive.filter { membership.echo(from: $0).map { now - $0 <= lease } == true },
      withdrawalsSeen: seen)
  }

  /// Whether deciding now would give the last decision's answer again:
  /// nothing that decisions read changed since (`undecided`, the basis) and
  /// no limit passed. With a thousand resources, deciding at every
  /// heartbeat that changed nothing was most of an idle node's cost. The
  /// simulator decides anyway on a copy each time this holds, and requires
  /// that copy to do nothing.
  func decisionWouldRepeat(now: Instant) -> Bool {
    guard !undecided, now < decisionLimit, let basis = lastBasis else { return false }
    return basis == decisionBasis(now: now)
  }
}

import HactlModel
import HactlWire

/// One attempt of one fence device on a node, as the controller asks the
/// executor to make it (FenceRunner in the shell).
public struct FenceCall: Sendable, Hashable {
  public var id: UInt64
  public var target: NodeID
  public var targetName: String
  public var device: FenceDevice
  public var action: FenceAction

  public init(id: UInt64, target: NodeID, targetName: String, device: FenceDevice, action: FenceAction) {
    self.id = id
    self.target = target
    self.targetName = targetName
    self.device = device
    self.action = action
  }
}

/// How a fence attempt ended, as the executor saw it.
public enum FenceResult: Sendable, Hashable {
  case succeeded
  case failed(String)
}

/// The leader's fencing of one lost node: its plan's levels tried in
/// order, each device of a level in turn (all must succeed), each attempt
/// retried as the device says, then the next level; when every level has
/// failed, the whole plan again after a pause. Nothing the node may run is
/// recovered elsewhere until it succeeds.
struct FenceJob: Sendable, Hashable {
  var target: NodeID
  var level = 0
  var device = 0
  var attempt = 0
  /// Not before this moment (a device's delay, the pause after a round).
  var notBefore: Instant
  var running: UInt64?
  var startedAt: Instant
  /// Why the last attempt failed, shown in status until one succeeds.
  var lastFailure: String?
  var rounds = 0
  /// Asked by an operator with this action, instead of the devices' own.
  var action: FenceAction?
  /// Why: lost, a failed stop, or an operator's request (for the history).
  var why = "lost"
}

extension NodeController {
  /// After every level has failed, the wait before the plan is tried again.
  public static let fenceRoundPause: Duration = .seconds(10)

  /// What each lost, unfenced peer may still run, which is started nowhere
  /// else meanwhile: with fencing, every resource, those added since
  /// included (it may have gone on deciding); without, what it last said.
  var mayStillRun: [NodeID: Set<ResourceID>] {
    guard config.fencing.isEnabled else { return unfenced }
    let all = Set(config.executedResources.map(\.id))
    return unfenced.mapValues { _ in all }
  }

  /// Lost peers whose resources wait for them to be fenced.
  var awaitingFence: [NodeID] {
    guard config.fencing.isEnabled else { return [] }
    return unfenced.keys.filter { !membership.isAlive($0) }.sorted()
  }

  /// Members whose report holds a resource left blocked for fencing (a
  /// failed stop, or on_fail: fence), other than this node: a leader
  /// cannot fence itself. Not this boot again once it was fenced.
  func membersToFence(_ reports: [NodeID: NodeReport]) -> [NodeID] {
    // A watchdog cannot take down a node that still feeds it: that needs a device.
    guard !config.fencing.devices.isEmpty else { return [] }
    return memberNodes.filter { node in
      guard node != local.id, !alreadyFenced(node), let report = reports[node] else { return false }
      return holdsResourceBlockedForFencing(report)
    }
  }

  /// A resource left blocked for fencing: its stop failed (or an operation
  /// with on_fail: fence did).
  func holdsResourceBlockedForFencing(_ report: NodeReport) -> Bool {
    report.resources.contains { entry in
      guard entry.role == .blocked, let failure = entry.lastFailure else { return false }
      // A resource removed from the configuration (its stop failed as it
      // left) has no on_fail any more here: a failed stop fences, the
      // default with fencing (seed 30241).
      guard let spec = definition(ofReported: entry.id) else { return failure.action == .stop }
      return spec.failurePolicy(for: failure.action, promoted: entry.promoted, fencing: true) == .fence
    }
  }

  /// A node that must be fenced does not lead while another node can: a
  /// leader cannot fence itself, so it steps down and the next leader
  /// fences it (pacemaker has another node's fencer do it). Alone among the
  /// candidates it keeps leading, and the resource stays blocked.
  mutating func leadOnlyIfNotToBeFenced(now: Instant) -> [ControllerEffect] {
    // Another node that can lead and fence this one: alive, and not itself
    // waiting to be fenced (two such nodes both stepping down left the
    // cluster without a leader for good: seed 32413).
    let others = membership.settings.candidates.contains { node in
      node != local.id && membership.isAlive(node) && !(peerReports[node].map(holdsResourceBlockedForFencing) ?? false)
    }
    let blocked = local.kind == .node && !config.fencing.devices.isEmpty && holdsResourceBlockedForFencing(localReport)
    let withdraw = blocked && others
    guard withdraw != membership.candidacyWithdrawn else { return [] }
    guard withdraw else {
      let outputs = membership.restoreCandidacy(now: now)
      let why =
        blocked
        ? "no other node can lead now: standing for leader again (what is blocked here stays blocked)"
        : "standing for leader again: nothing here waits to be fenced any more"
      return [.log(.notice, why)] + apply(outputs, now: now)
    }
    let leading = membership.isLeader
    let outputs = membership.withdrawCandidacy(now: now)
    let why = "a resource here is blocked until this node is fenced, and a leader cannot fence itself"
    return [
      .log(.warning, leading ? "\(why): stepping down for another node to fence it" : "\(why): not standing for leader")
    ]
      + apply(outputs, now: now)
  }

  /// The configured definition of a resource a node reports.
  func definition(ofReported id: ResourceID) -> ResourceSpec? { config.executedResource(id) ?? resources[id]?.spec }

  /// Whether the boot `node` runs now was already fenced.
  func alreadyFenced(_ node: NodeID) -> Bool {
    guard let fenced = fencedBoots[node] else { return false }
    return fenced >= (peerBoots[node] ?? 0)
  }

  /// What a node recorded when it lost a peer: the resources the peer may
  /// still run, which nobody starts elsewhere until it is fenced (or, with
  /// two_node and no fencing, until it comes back). With fencing that is
  /// every resource: what this node last heard of the peer may be stale (a
  /// partition in which the peer went on deciding), so only a peer that
  /// left in the open (standby, running nothing) is spared, as pacemaker
  /// spares a clean shutdown.
  mutating func recordUnfenced(_ peer: NodeID) {
    let fencing = config.fencing.isEnabled
    guard fencing || (config.cluster.quorum.twoNode && !config.cluster.quorum.unfencedTakeover) else { return }
    guard config.nodes.contains(where: { $0.id == peer }), !(fencing && alreadyFenced(peer)) else { return }
    let report = peerReports[peer]
    let active = Set(report?.resources.filter { $0.role.mayBeActive }.map(\.id) ?? [])
    guard fencing else {
      if report != nil { unfenced[peer] = active }
      return
    }
    if report?.mode == .standby && active.isEmpty { return }
    unfenced[peer] = Set(config.executedResources.map(\.id))
    activeWhenLost[peer] = active.count
  }

  /// Starts, advances and ends the leader's fencing jobs; the calls to make.
  mutating func driveFencing(_ state: inout LeaderState, reports: [NodeID: NodeReport], now: Instant)
    -> [ControllerEffect]
  {
    var effects: [ControllerEffect] = []
    let lost = Set(awaitingFence)
    let waiting = lost.union(membersToFence(reports)).union(state.manualFences)
    for target in state.fenceJobs.keys where !waiting.contains(target) && state.fenceJobs[target]?.running == nil {
      state.fenceJobs[target] = nil
    }
    for target in waiting.sorted() {
      var job =
        state.fenceJobs[target]
        ?? FenceJob(target: target, notBefore: now + firstDelay(for: target, term: state.term), startedAt: now)
      if state.fenceJobs[target] == nil {
        let why =
          lost.contains(target)
          ? "is lost and may run resources"
          : state.manualFences.contains(target) ? "is to be fenced by an operator" : "has a resource it could not stop"
        effects.append(.log(.warning, "\(name(of: target)) \(why): fencing it"))
        job.why = lost.contains(target) ? "lost" : "a resource it could not stop"
      }
      let plan = config.fencing.plan(for: name(of: target))
      if plan.isEmpty, let watchdog = config.fencing.watchdog, lost.contains(target) {
        // No device: its own watchdog has reset it once it has been lost
        // for twice the timeout (it stopped feeding when it lost quorum).
        guard now >= job.startedAt + watchdog.fencedAfter else {
          job.notBefore = job.startedAt + watchdog.fencedAfter
          state.fenceJobs[target] = job
          continue
        }
        state.fenceJobs[target] = nil
        effects += fenced(target, by: "its watchdog", level: 0, job: job, &state, now: now)
        continue
      }
      defer { state.fenceJobs[target] = job }
      guard job.running == nil, now >= job.notBefore else { continue }
      guard job.level < plan.count, job.device < plan[job.level].count else {
        job.lastFailure = job.lastFailure ?? "no fence device can fence \(name(of: target))"
        job.notBefore = now + Self.fenceRoundPause
        job.level = 0
        job.device = 0
        job.attempt = 0
        continue
      }
      let device = plan[job.level][job.device]
      let id = nextCallID
      nextCallID += 1
      job.running = id
      fenceCalls[id] = (target, peerBoots[target] ?? 0)
      effects.append(
        .runFence(
          FenceCall(
            id: id, target: target, targetName: name(of: target), device: device, action: job.action ?? device.action
          )))
    }
    return effects
  }

  /// A fencing that succeeded: kept, announced, and what the node may have
  /// run is free to recover.
  mutating func fenced(
    _ target: NodeID, by device: String, level: Int, job: FenceJob, _ state: inout LeaderState, now: Instant
  ) -> [ControllerEffect] {
    let boot = peerBoots[target] ?? 0
    state.fenced.append(
      FenceRecord(target: target, boot: boot, device: device, level: level, took: now - job.startedAt))
    fencedBoots[target] = max(fencedBoots[target] ?? 0, boot)
    unfenced[target] = nil
    guard level == 0 else { return [] }
    return [
      .log(.notice, "\(name(of: target)) counts as fenced by its watchdog: recovering what it ran"),
      .recordFencing(
        FencingEvent(
          time: wallTime(at: now), node: name(of: target), outcome: .fenced, why: job.why, by: local.name,
          device: device, milliseconds: (now - job.startedAt).milliseconds)),
    ]
  }

  /// Whether this node's watchdog is to be fed: it is quorate, no leader
  /// said it was fenced, and what may run here is covered: a leader's
  /// lease covers this node, or nothing but unpromoted copies of anonymous
  /// clones may be active here (a resource not probed yet counts as
  /// active). A leader counts a lost node fenced two timeouts after losing
  /// it; a node that holds a singleton without a lease (a restarted daemon
  /// keeping what its probes found, a stop still running, the freeze
  /// policy) lets its watchdog reset it instead (seed 90620).
  public func watchdogShouldBeFed(now: Instant) -> Bool {
    guard config.fencing.watchdog != nil, local.kind == .node, membership.quorate, !fencedSelf else { return false }
    if membership.mayRunResources(now: now) { return true }
    let copies = clonedPrimitives
    return resources.allSatisfy { id, resource in
      resource.role == .stopped || (copies.contains(id) && resource.role == .started && !resource.promoted)
    }
  }

  /// Feeds the watchdog when it is due and deserved.
  mutating func feedWatchdogIfDue(now: Instant) -> [ControllerEffect] {
    guard let watchdog = config.fencing.watchdog, watchdogShouldBeFed(now: now) else { return [] }
    if let last = lastWatchdogFeed, now < last + watchdog.feedEvery { return [] }
    lastWatchdogFeed = now
    return [.feedWatchdog]
  }

  /// `hactl fence --confirm`: the operator says the node is off. Only for a
  /// node that is not a member now (a member answers: it is on).
  mutating func confirmFenced(_ node: NodeID, _ state: inout LeaderState) -> (Bool, String) {
    guard node != local.id, !membership.isAlive(node) else {
      return (false, "\(name(of: node)) is a member now: it is not off (fence it instead)")
    }
    let boot = peerBoots[node] ?? 0
    fencedBoots[node] = max(fencedBoots[node] ?? 0, boot)
    unfenced[node] = nil
    if state.fenceJobs[node]?.running == nil { state.fenceJobs[node] = nil }
    state.manualFences.remove(node)
    state.fenced.append(FenceRecord(target: node, boot: boot, device: "operator's confirmation", level: 0, took: .zero))
    undecided = true
    pendingHistory.append(
      FencingEvent(
        time: wallTime(at: decidedAt), node: name(of: node), outcome: .confirmed, why: "operator", by: local.name))
    return (true, "\(name(of: node)) confirmed off by an operator: what it ran may start elsewhere")
  }

  /// `hactl fence NODE`: fence it now, with its devices' levels.
  func fenceByHand(_ node: NodeID, action: FenceAction?, _ state: inout LeaderState, now: Instant) -> (Bool, String) {
    guard !config.fencing.devices.isEmpty else {
      return (false, "no fence device is configured (the fencing: section); to declare a node off, use --confirm")
    }
    guard node != local.id else {
      return (false, "\(name(of: node)) leads the cluster and cannot fence itself; stop hactld there first")
    }
    guard !config.fencing.plan(for: name(of: node)).isEmpty else {
      return (false, "no fence device can fence \(name(of: node))")
    }
    if state.fenceJobs[node] == nil {
      var job = FenceJob(target: node, notBefore: now, startedAt: now, action: action)
      job.why = "operator"
      state.fenceJobs[node] = job
    }
    state.manualFences.insert(node)
    let how = action.map { " (\($0.rawValue))" } ?? ""
    return (true, "fencing \(name(of: node))\(how): 'hactl status' and the log say how it ends")
  }

  /// What the leader's directives say it fenced: each node stops waiting
  /// for that boot to be fenced; this node, if its own boot is there, runs
  /// nothing more.
  mutating func learnFenced(_ fenced: [FencedBoot]) -> [ControllerEffect] {
    var effects: [ControllerEffect] = []
    for entry in fenced {
      if entry.node == local.id {
        guard entry.boot == incarnation, !fencedSelf else { continue }
        fencedSelf = true
        undecided = true
        effects.append(
          .log(
            .error,
            "the leader fenced this node, but it still runs: stopping everything; restart hactld once the fence device is fixed"
          ))
      } else {
        if (fencedBoots[entry.node] ?? 0) < entry.boot || fencedBoots[entry.node] == nil,
          let leader = membership.leader
        {
          effects.append(
            .recordFencing(
              FencingEvent(
                time: wallTime(at: decidedAt), node: name(of: entry.node), outcome: .announced,
                by: name(of: leader), device: entry.device, level: entry.level, milliseconds: entry.milliseconds)))
        }
        fencedBoots[entry.node] = max(fencedBoots[entry.node] ?? 0, entry.boot)
        // Only for the boot it runs as far as this node knows: one it has
        // never heard since it started may run a later boot than the one
        // fenced (a new leader took an old boot's fencing for the current
        // one and started what the node still ran: seed 34333).
        if unfenced[entry.node] != nil, let known = peerBoots[entry.node], known <= entry.boot {
          unfenced[entry.node] = nil
          undecided = true
        }
      }
    }
    return effects
  }

  /// The fencings the leader announces: the newest boot of each node.
  func announcedFencings(_ state: LeaderState) -> [FencedBoot] {
    var newest: [NodeID: FenceRecord] = [:]
    for record in state.fenced where record.boot >= newest[record.target]?.boot ?? 0 { newest[record.target] = record }
    return newest.sorted { $0.key < $1.key }.map { node, record in
      FencedBoot(
        node: node, boot: record.boot, device: String(record.device.utf8.prefix(FencedBoot.deviceBytes)) ?? nil,
        level: record.level, milliseconds: record.took.milliseconds)
    }
  }

  /// A device's fixed delay and its random extra, drawn from the seeded
  /// source (the same inputs give the same delay: the simulator replays),
  /// and the priority delay when the target matters more than this node.
  func firstDelay(for target: NodeID, term: UInt64) -> Duration {
    guard let device = config.fencing.plan(for: name(of: target)).first?.first else { return .zero }
    var random = SeededRandom(seed: incarnation ^ (term << 16) ^ UInt64(target.rawValue))
    let extra =
      device.randomDelayMax > .zero
      ? Duration.milliseconds(Int64.random(in: 0...device.randomDelayMax.milliseconds, using: &random)) : .zero
    return device.delay + extra + (mattersMore(target) ? config.fencing.priorityDelay : .zero)
  }

  /// Whether `target` is the more important of it and this node: the
  /// configured winner, or else the one that ran more resources (the
  /// target as this node last heard it, when it lost it).
  func mattersMore(_ target: NodeID) -> Bool {
    guard config.fencing.priorityDelay > .zero else { return false }
    if let winner = config.fencing.winner { return winner == name(of: target) }
    let mine = resources.values.count { $0.role.mayBeActive && $0.role != .unknown }
    return (activeWhenLost[target] ?? 0) > mine
  }

  /// A fence attempt's result: the job advances; a whole level done means
  /// the node is fenced, and what it may have run is free to recover.
  public mutating func fenceFinished(_ id: UInt64, result: FenceResult, now: Instant) -> [ControllerEffect] {
    var effects = apply(membership.observe(now: now), now: now)
    let called = fenceCalls.removeValue(forKey: id)
    guard membership.isLeader, var state = leading,
      var job = state.fenceJobs.values.first(where: { $0.running == id })
    else {
      // Asked in an earlier term: a fence that took is still true.
      if let called, result == .succeeded {
        fencedBoots[called.target] = max(fencedBoots[called.target] ?? 0, called.boot)
        if (peerBoots[called.target] ?? 0) <= called.boot { unfenced[called.target] = nil }
        undecided = true
      }
      return effects + [.log(.notice, "a fence attempt asked in an earlier term ended: \(result)")]
    }
    job.running = nil
    let target = job.target
    let plan = config.fencing.plan(for: name(of: target))
    let device = job.level < plan.count && job.device < plan[job.level].count ? plan[job.level][job.device] : nil
    let deviceName = device?.id ?? "?"
    switch result {
    case .succeeded where job.level < plan.count && job.device + 1 < plan[job.level].count:
      job.device += 1
      job.attempt = 0
      effects.append(.log(.notice, "\(name(of: target)): fence device \(deviceName) succeeded; next in its level"))
      state.fenceJobs[target] = job
    case .succeeded:
      let took = DurationText.format(now - job.startedAt)
      effects.append(
        .log(
          .notice,
          "\(name(of: target)) fenced by \(deviceName) (level \(job.level + 1)) after \(took): recovering what it ran"))
      effects.append(
        .recordFencing(
          FencingEvent(
            time: wallTime(at: now), node: name(of: target), outcome: .fenced, why: job.why, by: local.name,
            device: deviceName, level: job.level + 1, milliseconds: (now - job.startedAt).milliseconds)))
      state.fenceJobs[target] = nil
      state.manualFences.remove(target)
      effects += fenced(target, by: deviceName, level: job.level + 1, job: job, &state, now: now)
    case .failed(let why):
      job.lastFailure = "\(deviceName): \(why)"
      effects.append(.log(.error, "fencing \(name(of: target)) with \(deviceName) failed: \(why)"))
      effects.append(
        .recordFencing(
          FencingEvent(
            time: wallTime(at: now), node: name(of: target), outcome: .failed, why: job.why, by: local.name,
            device: deviceName, level: job.level + 1, reason: String(why.utf8Prefix(ClusterLimits.failureReasonBytes))))
      )
      if job.attempt < (device?.retries ?? 0) {
        job.attempt += 1
      } else if job.level + 1 < plan.count {
        job.level += 1
        job.device = 0
        job.attempt = 0
      } else if state.manualFences.contains(target) && !awaitingFence.contains(target) {
        // Asked by hand: one round, then the operator decides again.
        state.manualFences.remove(target)
        state.fenceJobs[target] = nil
        leading = state
        effects.append(.log(.error, "every fence device for \(name(of: target)) failed; it was not fenced"))
        return effects + finish(now: now, forceBeat: false)
      } else {
        job.level = 0
        job.device = 0
        job.attempt = 0
        job.rounds += 1
        job.notBefore = now + Self.fenceRoundPause
        effects.append(
          .log(
            .error,
            "every fence device for \(name(of: target)) failed; what it ran stays stopped; trying again in \(DurationText.format(Self.fenceRoundPause))"
          ))
      }
      state.fenceJobs[target] = job
    }
    leading = state
    undecided = true
    return effects + finish(now: now, forceBeat: false)
  }
}

/// A fencing that succeeded, as the leader keeps it (newest last).
struct FenceRecord: Sendable, Hashable {
  var target: NodeID
  /// The boot it was fenced in, as the leader knew it.
  var boot: UInt64
  var device: String
  var level: Int
  var took: Duration
}

import HactlMembership
import HactlModel
import HactlScheduler
import HactlWire

/// Everything one node decides, as a pure state machine: membership, its own
/// resources (the local resource manager) and, while it leads, placement.
///
/// Every input carries the current time; every output is a `ControllerEffect`.
/// The daemon's shell performs the effects; the simulator can instead route
/// them through a simulated network and simulated agents.
public struct NodeController: Sendable {
  /// The running configuration: its membership part as the daemon started,
  /// the rest from `document`.
  public internal(set) var config: ClusterConfig {
    didSet { localReportCache = LocalReportCache() }
  }
  /// The durable, replicated configuration (docs/ARCHITECTURE.md).
  public internal(set) var document: ConfigDocument {
    didSet { documentStamp = document.stamp }
  }
  /// Computed once per document: it goes into every heartbeat.
  var documentStamp: ConfigStamp
  /// Relative paths in a configuration's text are taken from here.
  let configFolder: String
  var replication = ReplicationState()
  /// What was last stored with `.persistRetiring`.
  var persistedRetiring: [ResourceSpec] = []
  public let local: Member
  public let incarnation: UInt64
  public internal(set) var membership: Membership
  public private(set) var counters = Counters()

  var replay = ReplayFilter()
  /// Each peer's newest boot incarnation, from any authentic packet.
  var peerBoots: [NodeID: UInt64] = [:]
  var resources: [ResourceID: LocalResource] = [:] {
    didSet { localReportCache = LocalReportCache() }
  }
  /// `resources`' ids in order, as of the last time its set of ids was
  /// read (`orderedResourceIDs`): sorting a thousand names at every
  /// decision cost more than the rest of a quiet decision.
  var resourceOrder: [ResourceID] = []
  /// `localReport` as of the last change of what it is made of. Every such
  /// change puts a new, empty box here, so a copy of this controller never
  /// reads a report that another copy made after they diverged.
  var localReportCache = LocalReportCache()
  var peerReports: [NodeID: NodeReport] = [:]
  var peerSections: [NodeID: PeerSections] = [:]
  var ownSections = OwnSections()
  /// Whether the part just handled completed a whole.
  var partCompletedSomething = false
  var peerRequests: [NodeID: [OperatorRequest]] = [:]
  var followedDirectives: Directives? {
    didSet {
      guard let followedDirectives else { return }
      rightLapsed = false
      lastFollowedDirectives = followedDirectives
    }
  }
  /// The last directives this node followed from its leader, kept while a
  /// newer version is on its way (parts lost, say): they may still stop
  /// what they do not place here, never start anything. Without them, a
  /// node that was stopping what its leader moved away would keep it
  /// running as soon as the next version was announced.
  var lastFollowedDirectives: Directives?
  /// This node lost the right to run resources (quorum, its lease, a
  /// stall) after it had a leader, and has not held its leader's directives since: its peers may
  /// have started its resources elsewhere meanwhile, so what it still runs
  /// (a start that was in flight, say) is not kept on the word of a leader
  /// whose directives it has not read.
  var rightLapsed = false
  var leading: LeaderState?
  var pendingRequests: [OperatorRequest] = []
  /// Requests nodes apply themselves (cleanups, another node's attribute)
  /// that the leader has answered, still carried until every node they
  /// concern holds them, with the version of the requests section that
  /// first carried each.
  var answeredNodeRequests: [UInt64: UInt64?] = [:]
  /// Such requests this node has applied (Cleanup.swift).
  var appliedRequests = HandledRequests()
  /// This node's transient attributes (see Attributes.swift).
  var transientAttributes: [String: String] = [:] {
    didSet { localReportCache = LocalReportCache() }
  }
  var nextRequestID: UInt64 = 1
  var nextCallID: UInt64 = 1
  var lastSentBeat: Heartbeat?
  /// Two-node mode without acceptance: what a lost peer may still run.
  /// Cleared when it reports afresh.
  var unfenced: [NodeID: Set<ResourceID>] = [:]
  /// The newest boot of each node known fenced (by this node as leader, or
  /// announced by a leader): that boot's loss needs no fence again.
  var fencedBoots: [NodeID: UInt64] = [:]
  /// How many resources each peer ran as last heard when it was lost (its
  /// weight against this node's in a split pair's fencing race).
  var activeWhenLost: [NodeID: Int] = [:]
  /// Fence attempts under way, with the boot each was asked against: one
  /// that succeeds after its leader stepped down is still recorded.
  var fenceCalls: [UInt64: (target: NodeID, boot: UInt64)] = [:]
  /// History lines made where no effects can be returned (a request's
  /// answer), handed out with the next decision's effects.
  var pendingHistory: [FencingEvent] = []
  /// When the watchdog was last fed (Fencing.swift).
  var lastWatchdogFeed: Instant?
  /// Set by a graceful shutdown: run nothing, so the leader moves it all away.
  public private(set) var leaving = false {
    didSet { localReportCache = LocalReportCache() }
  }
  /// The leader says it fenced this very boot (the fence did not take it
  /// down): it runs nothing until its daemon starts again, as a new boot.
  public internal(set) var fencedSelf = false {
    didSet { localReportCache = LocalReportCache() }
  }
  /// The wall clock (Unix seconds) at `now` of the start: what a lifetime
  /// is measured on. Later moments are counted on the monotonic clock, so a
  /// stepped wall clock moves no lifetime.
  let wallClockAtStart: (at: Instant, seconds: Int64)
  /// When this node last decided (`finish`): a time limit crossed since
  /// then has not been acted on yet (see `wakeAt`).
  var decidedAt: Instant
  /// Set by an input that changed what decisions read (a section, a peer's
  /// configuration, a membership event) until the next decision; with
  /// `lastBasis`, it tells when deciding again would change nothing.
  var undecided = true
  var lastBasis: DecisionBasis?
  /// `earliestResourceLimit()` as of the last decision.
  var resourcesLimit: Instant?

  public struct Counters: Sendable, Hashable {
    public var packetsReceived = 0
    public var packetsReplayed = 0
    /// Sent too long before now to count (delayed, or queued in a stall).
    public var packetsStale = 0
    /// The same packet again over another link (normal with redundant links).
    public var packetsDuplicate = 0
    public var packetsFromStrangers = 0
    /// Authentic, but naming an earlier boot of this daemon (or none yet).
    public var packetsBeforeHandshake = 0
    /// Parts received, and wholes that did not decode once complete.
    public var partsReceived = 0
    public var partsMalformed = 0
    /// Peers declared lost since start.
    public var peersLost = 0
    /// Inputs after which this node decided, and those after which it did
    /// not need to (`decisionWouldRepeat`).
    public var decisions = 0
    public var decisionsSkipped = 0
  }

  /// `document` is the text `config` was read from, with its version; nil
  /// stands for an unversioned file nobody will replicate (tests).
  /// `retiring`: what the last daemon stored with `.persistRetiring`.
  public init(
    config: ClusterConfig, local: NodeID, incarnation: UInt64, election: ElectionRecord, now: Instant,
    document: ConfigDocument? = nil, configFolder: String = "/", retiring: [ResourceSpec] = [], wallTime: Int64 = 0
  ) {
    self.wallClockAtStart = (now, wallTime)
    guard let member = config.member(id: local) else {
      preconditionFailure("local node \(local) is not in the configuration; the shell checks this first")
    }
    self.config = config
    self.decidedAt = now
    let document = document ?? ConfigDocument(version: .initial, base: .initial, text: "")
    self.document = document
    self.documentStamp = document.stamp
    self.configFolder = configFolder
    self.local = member
    self.incarnation = incarnation
    // Request ids grow across restarts too, so that a leader never takes a
    // restarted node's new request for one it already handled, nor the node
    // an old answer for its new request.
    self.nextRequestID = max(1, incarnation)
    self.membership = Membership(
      settings: MembershipSettings(config: config, local: local), record: election, now: now)
    self.membership.configVersion = self.document.version
    self.ownSections.fanOut = max(1, membership.settings.peers.count)
    if member.kind == .node {
      for spec in config.executedResources { resources[spec.id] = LocalResource(spec: spec) }
      // Probe the old definitions first: stop them if they run, then forget them.
      for old in retiring {
        guard let current = resources[old.id]?.spec else {
          var resource = LocalResource(spec: old)
          resource.removed = true
          resources[old.id] = resource
          continue
        }
        if !old.hasSameDefinition(as: current) {
          var resource = LocalResource(spec: old)
          resource.replacement = current
          resources[old.id] = resource
        }
      }
    }
    persistedRetiring = retiringDefinitions
    if config.fencing.isEnabled {
      // Startup fencing (pacemaker's startup-fencing): a node not heard
      // since this daemon started may run anything; it reports before it
      // counts, or it is fenced before anything it may run starts elsewhere.
      for node in config.nodes where node.id != local { unfenced[node.id] = Set(config.executedResources.map(\.id)) }
    }
  }

  /// This node's wall clock at `now` (Unix seconds).
  func wallTime(at now: Instant) -> Int64 {
    wallClockAtStart.seconds + (now - wallClockAtStart.at).components.seconds
  }

  /// The monotonic moment this node's wall clock reaches `seconds`.
  func instant(atWallTime seconds: Int64) -> Instant {
    let offset = max(Int64.min / 2_000_000_000, min(Int64.max / 2_000_000_000, seconds - wallClockAtStart.seconds))
    return wallClockAtStart.at + .seconds(offset)
  }

  var localMode: NodeMode {
    leaving || fencedSelf ? .standby : config.nodes.first { $0.id == local.id }?.mode ?? .online
  }

  /// The ids of this node's resources, sorted (decisions go through them
  /// in one order, so that the simulator replays a seed exactly).
  mutating func orderedResourceIDs() -> [ResourceID] {
    if resourceOrder.count != resources.count || !resourceOrder.allSatisfy({ resources[$0] != nil }) {
      resourceOrder = resources.keys.sorted()
    }
    return resourceOrder
  }

  /// Begins a graceful shutdown: stop every resource here, in the open, so
  /// the leader can restart them elsewhere at once instead of after the dead time.
  public mutating func leave(now: Instant) -> [ControllerEffect] {
    leaving = true
    var effects = apply(membership.observe(now: now), now: now)
    let note = local.kind == .node ? "leaving the cluster: stopping every resource here" : "leaving the cluster"
    effects.append(.log(.notice, note))
    // A start still running would finish after the daemon is gone and
    // leave its resource running with nobody watching: kill it and stop
    // what it may have begun.
    for id in resources.keys.sorted() {
      guard var resource = resources[id], let call = resource.inFlight, call.action == .start else { continue }
      effects.append(.cancelAgent(call.id))
      effects.append(.log(.notice, "\(id): start cancelled by the shutdown; stopping what it may have begun"))
      resource.inFlight = nil
      resource.role = .failed
      resources[id] = resource
    }
    return effects + finish(now: now, forceBeat: true)
  }

  /// What may still be active here while the daemon goes away.
  public var possiblyActive: [ResourceID] {
    resources.keys.sorted().filter { id in
      guard let resource = resources[id] else { return false }
      return !(resource.role == .stopped && resource.inFlight == nil)
    }
  }

  /// Nothing may be active here any more, and no agent call is in flight.
  public var isQuiescent: Bool {
    resources.values.allSatisfy { ($0.role == .stopped || $0.role == .blocked) && $0.inFlight == nil }
  }

  // MARK: Inputs

  /// First input after the daemon starts: probe every resource.
  public mutating func start(now: Instant) -> [ControllerEffect] {
    var effects: [ControllerEffect] = [
      .log(.notice, "\(local.name) starting, incarnation \(incarnation), term \(membership.term)")
    ]
    effects += finish(now: now, forceBeat: false)
    return effects
  }

  /// `decidingAnyway`: decide even if it would repeat the last decision
  /// (the simulator's probes, which check that it would then do nothing).
  public mutating func tick(now: Instant, decidingAnyway: Bool = false) -> [ControllerEffect] {
    let outputs = membership.tick(now: now)
    var effects = apply(outputs, now: now)
    let forceBeat = outputs.contains(.heartbeatDue) || pendingDecision.forceBeat
    let mayRepeat = !pendingDecision.needed || pendingDecision.onlyHeartbeats
    if !decidingAnyway && mayRepeat && decisionWouldRepeat(now: now) {
      pendingDecision = PendingDecision()
      counters.decisionsSkipped += 1
      return effects + heartbeatIfNeeded(force: forceBeat, now: now, decided: false)
    }
    effects += finish(now: now, forceBeat: forceBeat)
    return effects
  }

  public mutating func receive(_ packet: Packet, link: Int = 0, now: Instant) -> [ControllerEffect] {
    receiveDeferringDecision(packet, link: link, now: now) + decidePending(now: now)
  }

  /// What the packets read since the last decision ask of the next one.
  struct PendingDecision: Equatable {
    var needed = false
    var forceBeat = false
    /// Only heartbeats came: the decision may be skipped when it would
    /// repeat the last one (`decisionWouldRepeat`).
    var onlyHeartbeats = true
  }
  var pendingDecision = PendingDecision()

  /// Whether packets were handled whose decision has not run yet.
  public var decisionPending: Bool { pendingDecision.needed }

  /// Handles a packet but leaves the decision it calls for to
  /// `decidePending`: a daemon that reads a burst of packets (31 peers'
  /// heartbeats, the queue after a stall) decides once for all of them.
  /// Under load the bursts grow and the decisions do not, so the daemon
  /// keeps up with its peers instead of falling behind them.
  public mutating func receiveDeferringDecision(_ packet: Packet, link: Int = 0, now: Instant)
    -> [ControllerEffect]
  {
    let sender = packet.header.sender
    guard sender != local.id, let member = config.member(id: sender),
      packet.header.receiver.map({ $0 == local.id }) ?? true
    else {
      counters.packetsFromStrangers += 1
      return []
    }
    // Only a packet naming this boot counts: one recorded before this
    // daemon restarted (or sent before the peer heard of this boot) proves
    // nothing now. It still tells which boot the peer runs, so that the
    // answer names it: the handshake takes one packet each way.
    let learned = learnBoot(of: sender, packet.header.incarnation)
    if learned { ownSections.forget(sender) }
    guard packet.header.receiverIncarnation == incarnation else {
      counters.packetsBeforeHandshake += 1
      return learned ? heartbeatIfNeeded(force: true, now: now) : []
    }
    let linkOutputs = membership.heard(
      from: sender, onLink: link, incarnation: packet.header.incarnation, sequence: packet.header.sequence, now: now)
    switch replay.check(packet.header) {
    case .accept:
      break
    case .duplicate where config.linkCount > 1:
      counters.packetsDuplicate += 1
      return apply(linkOutputs, now: now)
    case .duplicate:
      // With one link, no second copy should ever come: it is a replay.
      counters.packetsReplayed += 1
      return apply(linkOutputs, now: now)
    case .replayed, .staleIncarnation:
      counters.packetsReplayed += 1
      return apply(linkOutputs, now: now)
    }
    let (heardOutputs, accepted) = membership.heard(
      from: sender, incarnation: packet.header.incarnation, sentAt: packet.header.sentAt, now: now)
    var effects: [ControllerEffect] = apply(linkOutputs, now: now)
    guard accepted else {
      counters.packetsStale += 1
      pendingDecision.needed = true
      pendingDecision.onlyHeartbeats = false
      effects += apply(heardOutputs, now: now)
      return effects + (heardOutputs.isEmpty ? [] : decidePending(now: now))
    }
    counters.packetsReceived += 1
    let standing = (membership.term, membership.role, membership.leader, membership.quorate)
    effects += handle(
      packet.message, from: member, incarnation: packet.header.incarnation, outputs: heardOutputs, now: now)
    // A part that completes nothing changes no decision: with a thousand
    // resources, deciding again at every part would cost more than the rest.
    // (Unless it is the first word from a peer: a peer joining is news.)
    if case .part = packet.message, !partCompletedSomething, heardOutputs.isEmpty, linkOutputs.isEmpty {
      return effects
    }
    // The peer's heartbeat may carry this node's own with it.
    pendingDecision.needed = true
    if heardOutputs.contains(.heartbeatDue) { pendingDecision.forceBeat = true }
    if case .heartbeat = packet.message {} else { pendingDecision.onlyHeartbeats = false }
    // A membership event (a peer lost or back, quorum, a new leader or
    // term, a stall found) is acted on before the next packet is read,
    // as each packet was before bursts were batched: a burst must not
    // hide the quorum lost at its first packet behind the quorum regained
    // at its last, leaving the stop that the loss called for undone.
    let event =
      linkOutputs.contains { $0 != .heartbeatDue } || heardOutputs.contains { $0 != .heartbeatDue }
      || standing != (membership.term, membership.role, membership.leader, membership.quorate)
    return effects + (event ? decidePending(now: now) : [])
  }

  /// The decision the packets handled since the last one call for, once.
  public mutating func decidePending(now: Instant) -> [ControllerEffect] {
    let pending = pendingDecision
    guard pending.needed else { return [] }
    pendingDecision = PendingDecision()
    if pending.onlyHeartbeats, decisionWouldRepeat(now: now) {
      counters.decisionsSkipped += 1
      return heartbeatIfNeeded(force: pending.forceBeat, now: now, decided: false)
    }
    return finish(now: now, forceBeat: pending.forceBeat)
  }

  /// One authentic, fresh message (or a whole reassembled from parts).
  mutating func handle(
    _ message: Message, from member: Member, incarnation: UInt64, outputs heardOutputs: [MembershipOutput],
    now: Instant
  ) -> [ControllerEffect] {
    let sender = member.id
    var effects: [ControllerEffect] = []
    var outputs = heardOutputs
    switch message {
    case .heartbeat(let beat):
      let before = (sectionsHeld(from: sender), replication.peers[sender])
      takeSections(of: beat, from: sender, incarnation: incarnation)
      effects += heardConfig(beat.config, from: sender, beat: beat.membership, now: now)
      // A follower decides on its leader's sections only: another member's
      // report, changing at each of its probes, is the leader's business.
      let read = membership.isLeader || membership.leader == nil || membership.leader == sender
      if before.1 != replication.peers[sender] || (read && before.0 != sectionsHeld(from: sender)) {
        undecided = true
      }
      outputs += membership.receive(beat.membership, from: sender, now: now)
      effects += apply(outputs, now: now)
      outputs = []
      effects += useSections(of: sender, kind: member.kind)
    case .voteRequest(let request):
      outputs += membership.receive(request, from: sender, now: now)
    case .voteReply(let reply):
      outputs += membership.receive(reply, from: sender, now: now)
    case .configOffer(let offered):
      effects += receiveConfig(offered, from: sender, now: now)
    case .configProposal(let proposal):
      effects += apply(outputs, now: now)
      outputs = []
      effects += handleProposal(proposal, from: sender, now: now)
    case .part(let part):
      counters.partsReceived += 1
      effects += apply(outputs, now: now)
      outputs = []
      partCompletedSomething = false
      do {
        if let whole = try takePart(part, from: sender, incarnation: incarnation) {
          partCompletedSomething = true
          guard case .part = whole else {
            return effects + handle(whole, from: member, incarnation: incarnation, outputs: [], now: now)
          }
        }
      } catch {
        counters.partsMalformed += 1
        return effects + [.log(.warning, "\(member.name) sent parts of \(part.stream) that do not decode: \(error)")]
      }
      effects += useSections(of: sender, kind: member.kind)
    }
    effects += apply(outputs, now: now)
    return effects
  }

  /// After an agent could not even be spawned, the wait before trying again.
  public static let agentSpawnRetryDelay: Duration = .seconds(1)

  /// One agent call's result, as the executor returns it.
  public struct AgentResult: Sendable {
    public var callID: UInt64
    public var resource: ResourceID
    public var outcome: AgentOutcome
    public var wallTime: Int64
    /// The agent's own words for a failure (its `ocf-exit-reason:` line).
    public var exitReason: String?
    /// What it printed (stdout, then stderr), as the executor kept it: its
    /// end stays with the resource if the call is recorded as a failure.
    public var output: String?
    /// A meta-data call's answer about reloading, as the executor read it.
    public var reload: AgentReload?
    public init(
      call: AgentCall, outcome: AgentOutcome, wallTime: Int64, exitReason: String? = nil, output: String? = nil,
      reload: AgentReload? = nil
    ) {
      self.init(callID: call.id, resource: call.resource, outcome: outcome, wallTime: wallTime)
      self.exitReason = exitReason.map {
        String($0.withoutControlCharacters.utf8Prefix(ClusterLimits.failureReasonBytes / 2))
      }
      self.output = output
      self.reload = reload
    }
    init(callID: UInt64, resource: ResourceID, outcome: AgentOutcome, wallTime: Int64) {
      self.callID = callID
      self.resource = resource
      self.outcome = outcome
      self.wallTime = wallTime
    }
  }

  public mutating func agentFinished(
    _ callID: UInt64, outcome: AgentOutcome, now: Instant, wallTime: Int64
  ) -> [ControllerEffect] {
    let resource = resources.first(where: { $0.value.inFlight?.id == callID })?.key
    let results = resource.map { [AgentResult(callID: callID, resource: $0, outcome: outcome, wallTime: wallTime)] }
    return agentsFinished(results ?? [], now: now)
  }

  /// Results that arrived together are recorded together and decided on
  /// once: when a thousand probes or starts finish within a decision's
  /// time, deciding after each one would keep the node from reading its
  /// peers' heartbeats for seconds.
  public mutating func agentsFinished(_ results: [AgentResult], now: Instant) -> [ControllerEffect] {
    var effects = apply(membership.observe(now: now), now: now)
    for result in results { effects += record(result, now: now) }
    effects += finish(now: now, forceBeat: false)
    return effects
  }

  mutating func record(_ result: AgentResult, now: Instant) -> [ControllerEffect] {
    let id = result.resource
    guard var resource = resources[id], let call = resource.inFlight, call.id == result.callID else { return [] }
    resource.inFlight = nil
    if case .couldNotSpawn(let why) = result.outcome {
      // The agent never ran: the resource is exactly as it was. Try again
      // shortly; never read this as a result (a probe that could not run
      // says nothing about whether the resource is stopped).
      resource.role = call.roleBefore
      resource.lastStartToken = call.startTokenBefore
      resource.retryNotBefore = now + NodeController.agentSpawnRetryDelay
      // Shown in status (no fail count: the resource did nothing wrong).
      resource.lastFailure = ResourceFailure(
        action: call.action, code: OCFResult.genericError.code, reason: "the agent could not be started: \(why)",
        wallTime: result.wallTime)
      resources[id] = resource
      let retry = DurationText.format(NodeController.agentSpawnRetryDelay)
      return [.log(.error, "\(id): \(call.action.rawValue) could not be started (\(why)); retrying in \(retry)")]
    }
    resource.retryNotBefore = nil
    let ocf = OCFResult(outcome: result.outcome)
    resource.fencing = config.fencing.isEnabled
    let failureBefore = resource.lastFailure
    let log = resource.record(
      call: call, result: ocf, outcome: result.outcome, now: now, wallTime: result.wallTime,
      exitReason: result.exitReason, reload: result.reload)
    if resource.lastFailure != failureBefore {
      // Cut only for a failure: a monitor's output every ten seconds is not kept.
      resource.lastFailureOutput = result.output.map { $0.outputTail(ClusterLimits.failureOutputBytes) }
    }
    resources[id] = resource
    return log.map { [.log($0.level, "\(id): \($0.message)")] } ?? []
  }

  public enum RequestError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownResource(String)
    case unknownNode(String)
    case notANode(String)
    case witnessCannotRequest
    case noQuorum(votes: Int, needed: Int)
    case invalidConfiguration(String)
    case needsRestart([String])
    case tooManyPending(Int)
    case invalidAttribute(String)

    public var description: String {
      switch self {
      case .noQuorum(let votes, let needed):
        return
          "this node's partition has no quorum (\(votes) votes, \(needed) needed): configuration changes are refused"
      case .invalidConfiguration(let errors): return "the configuration is invalid; nothing changed:\n\(errors)"
      case .needsRestart(let fields):
        return "these changes need a restart of every daemon, not `config apply`: \(fields.joined(separator: ", "))"
          + " (see hactl.yaml(5), CHANGING THE CONFIGURATION)"
      case .tooManyPending(let limit):
        return
          "\(limit) requests made on this node still wait for the leader's answer: try again once they are answered"
      case .unknownResource(let id): return "no resource '\(id)' in the configuration"
      case .unknownNode(let name): return "no node '\(name)' in the configuration"
      case .notANode(let name): return "'\(name)' is the witness: it runs no resources"
      case .witnessCannotRequest: return "requests go through a node, not the witness"
      case .invalidAttribute(let why): return why
      }
    }
  }

  /// An operator's `migrate`: queued here, carried in heartbeats until the
  /// leader answers (`.requestAnswered` with the returned id).
  public mutating func requestMove(resource: String, to target: String?, now: Instant)
    -> (Result<UInt64, RequestError>, [ControllerEffect])
  {
    guard config.resource(ResourceID(resource)) != nil || config.group(ResourceID(resource)) != nil else {
      return (.failure(.unknownResource(resource)), [])
    }
    return queueRequest(naming: target, now: now) { .move(ResourceID(resource), target: $0) }
  }

  /// `hactl fence`: asks the leader to fence a node, or (confirm) to take
  /// the operator's word that it is off.
  public mutating func requestFence(node: String, action: FenceAction?, confirm: Bool, now: Instant)
    -> (Result<UInt64, RequestError>, [ControllerEffect])
  {
    queueRequest(naming: node, now: now) { .fence(node: $0!, action: action, confirm: confirm) }
  }

  /// Queues a request that names a node (or none), once the node is known
  /// to be a node and the queue has room.
  mutating func queueRequest(
    naming node: String?, now: Instant, _ kind: (NodeID?) -> OperatorRequest.Kind
  ) -> (Result<UInt64, RequestError>, [ControllerEffect]) {
    var nodeID: NodeID?
    if let node {
      guard let member = config.member(named: node) else { return (.failure(.unknownNode(node)), []) }
      guard member.kind == .node else { return (.failure(.notANode(node)), []) }
      nodeID = member.id
    }
    guard pendingRequests.count < ClusterLimits.pendingRequests else {
      return (.failure(.tooManyPending(ClusterLimits.pendingRequests)), [])
    }
    let id = nextRequestID
    nextRequestID += 1
    pendingRequests.append(OperatorRequest(id: id, kind: kind(nodeID)))
    let effects = apply(membership.observe(now: now), now: now)
    return (.success(id), effects + finish(now: now, forceBeat: false))
  }

  /// Gives up on a request the leader did not answer in time.
  public mutating func cancelRequest(_ id: UInt64) {
    undecided = true
    pendingRequests.removeAll { $0.id == id }
    replication.proposals[id] = nil
  }

  // MARK: Membership outputs

  mutating func apply(_ outputs: [MembershipOutput], now: Instant) -> [ControllerEffect] {
    var effects: [ControllerEffect] = []
    for output in outputs {
      switch output {
      case .persist(let record):
        effects.append(.persistElection(record))
      case .sendVoteRequest(let peer, let request):
        effects.append(.send(to: peer, .voteRequest(request)))
      case .sendVoteReply(let peer, let reply):
        effects.append(.send(to: peer, .voteReply(reply)))
      case .heartbeatDue:
        break
      case .event(let event):
        undecided = true
        effects += handle(event, now: now)
      }
    }
    return effects
  }

  mutating func handle(_ event: MembershipEvent, now: Instant) -> [ControllerEffect] {
    switch event {
    case .peerJoined(let peer, let incarnation):
      return [.log(.notice, "\(name(of: peer)) joined (incarnation \(incarnation))")]
    case .peerRestarted(let peer, let incarnation):
      // Whatever it ran before is unknown until its probes report again.
      peerReports[peer] = nil
      return [.log(.notice, "\(name(of: peer)) restarted (incarnation \(incarnation)); waiting for its probes")]
    case .linkDown(let peer, let link):
      let address = config.member(id: peer)?.links[safe: link]?.description ?? "?"
      return [.log(.warning, "link \(link) to \(name(of: peer)) (\(address)) is down; still reachable on another link")]
    case .linkUp(let peer, let link):
      let address = config.member(id: peer)?.links[safe: link]?.description ?? "?"
      return [.log(.notice, "link \(link) to \(name(of: peer)) (\(address)) is up again")]
    case .peerLost(let peer):
      counters.peersLost += 1
      // What it last said is stale: it must report afresh when it returns,
      // before the leader counts it (its first packet may not be a heartbeat).
      recordUnfenced(peer)
      peerReports[peer] = nil
      replication.peers[peer] = nil
      return [.log(.warning, "\(name(of: peer)) lost: silent for \(DurationText.format(config.cluster.deadTime))")]
    case .quorumChanged(let quorate, let votes):
      if !quorate && membership.hasHadLeader { rightLapsed = true }
      let needed = membership.settings.votesNeeded
      return [
        .log(
          quorate ? .notice : .warning,
          "quorum \(quorate ? "gained" : "lost") (\(votes) votes, \(needed) needed)")
      ]
    case .leaderChanged(let term, let leader):
      followedDirectives = nil
      lastFollowedDirectives = nil
      if leader == local.id {
        leading = LeaderState(term: term)
        return [.log(.notice, "elected leader for term \(term)")]
      }
      leading = nil
      guard let leader else { return [.log(.info, "no leader in term \(term)")] }
      return [.log(.notice, "following \(name(of: leader)) in term \(term)")]
    case .hiccup(let gap):
      // A withdrawal counts as done once the lease it was sent under has
      // run out: after a clock jump (seed 70153) the leader's clock says so
      // before the node's lease has.
      leading?.postpone(by: gap)
      return []
    case .stalled(let gap):
      if membership.hasHadLeader { rightLapsed = true }
      return [
        .log(
          .error,
          "this node was stalled for \(DurationText.format(gap)) (longer than the dead time): "
            + "treating every peer as lost and stopping resources")
      ]
    }
  }

  // MARK: After every input

  mutating func finish(now: Instant, forceBeat: Bool) -> [ControllerEffect] {
    // Any decision is the one packets handled before it were waiting for.
    let forceBeat = forceBeat || pendingDecision.forceBeat
    pendingDecision = PendingDecision()
    decidedAt = now
    var effects = forwardProposals(now: now)
    effects += leadOnlyIfNotToBeFenced(now: now)
    // A leader's own resources are part of what it decides on: when acting
    // on its decision changes them (a stop or a start begun), it decides
    // again at once rather than at its next input. Each round begins calls
    // only for resources with none in flight, so a few rounds settle it.
    counters.decisions += 1
    var settled = false
    for _ in 0..<Self.decisionRounds {
      let before = leaderOutcome
      // Fencing first: a node found fenced frees its resources for the
      // scheduler; a job the scheduler's requests began (`hactl fence`)
      // changes the outcome, so the next round starts it.
      if membership.isLeader, var state = leading {
        effects += driveFencing(&state, reports: reports, now: now)
        leading = state
      }
      effects += scheduleIfLeader(now: now)
      let (calls, changedRoles) = reconcile(now: now)
      effects += calls
      settled = !changedRoles && leaderOutcome == before
      guard !settled && membership.isLeader else { break }
    }
    // A decision that changed what it decides on may decide otherwise
    // when asked again: the next input decides, whatever it brings.
    undecided = !settled
    effects += feedWatchdogIfDue(now: now)
    effects += pendingHistory.map { .recordFencing($0) }
    pendingHistory = []
    effects += answerAcknowledgedConfigs(now: now)
    effects += heartbeatIfNeeded(force: forceBeat, now: now)
    lastBasis = decisionBasis(now: now)
    resourcesLimit = earliestResourceLimit()
    return effects
  }

  static let decisionRounds = 4

  /// What a leader's decision changes that its next decision reads.
  var leaderOutcome: LeaderOutcome? {
    leading.map {
      LeaderOutcome(
        directives: $0.directives, withdrawn: $0.withdrawn, tokens: $0.tokenCounter, fenceJobs: $0.fenceJobs)
    }
  }

  struct LeaderOutcome: Equatable {
    var directives: Directives?
    var withdrawn: [ResourceID: [NodeID: Instant]]
    var tokens: UInt64
    var fenceJobs: [NodeID: FenceJob]
  }

  /// `decided`: false when no decision ran since the last heartbeat was
  /// worked out, so that its report, directives and answers still hold
  /// (with a thousand resources, building the report is the cost).
  mutating func heartbeatIfNeeded(force: Bool, now: Instant, decided: Bool = true) -> [ControllerEffect] {
    dropDeliveredNodeRequests()
    var beat: Heartbeat
    if !decided, let last = lastSentBeat {
      beat = last
      beat.membership = membership.beat(now: now)
      beat.requests = pendingRequests
      beat.config = documentStamp
    } else {
      beat = Heartbeat(
        membership: membership.beat(now: now),
        report: local.kind == .node ? localReport : nil,
        directives: membership.isLeader ? leading?.directives : nil,
        requests: pendingRequests,
        answers: membership.isLeader ? leading?.answers ?? [] : [],
        config: documentStamp)
    }
    // Only a change of content sends at once; clocks and echoes ride along.
    var content = beat
    content.membership = beat.membership.content
    // The sections' versions follow their values at every heartbeat sent.
    if content != lastSentBeat { ownSections.update(from: beat) }
    guard force || content != lastSentBeat || ownSections.withheldIsDue(now: now, batchEvery: batchSectionsEvery)
    else { return [] }
    lastSentBeat = content
    var effects: [ControllerEffect] = []
    for peer in membership.settings.peers {
      effects.append(.send(to: peer, .heartbeat(self.beat(beat, for: peer, now: now))))
    }
    return effects
  }

  /// Forgets answered requests that nodes apply once every node they
  /// concern that is alive holds a version of this node's requests that
  /// carries them (this node itself once it applied them): they leave the
  /// next heartbeat.
  mutating func dropDeliveredNodeRequests() {
    for (id, carriedFrom) in answeredNodeRequests {
      guard let request = pendingRequests.first(where: { $0.id == id }), request.kind.isAppliedByNodes else {
        answeredNodeRequests[id] = nil
        continue
      }
      var version = carriedFrom ?? nil
      if version == nil, ownSections.values?.requests.contains(request) == true {
        version = ownSections.versions[.requests]
        answeredNodeRequests[id] = .some(version)
      }
      guard let version else { continue }
      let targets = request.kind.appliedOn.map { [$0] } ?? config.nodes.map(\.id)
      let delivered = targets.allSatisfy { target in
        if target == local.id { return appliedRequests.contains(RequestKey(origin: local.id, id: id)) }
        return !membership.isAlive(target) || (ownSections.acknowledged[target]?[.requests] ?? 0) >= version
      }
      if delivered {
        pendingRequests.removeAll { $0.id == id }
        answeredNodeRequests[id] = nil
      }
    }
  }

  mutating func takeAnswers(_ answers: [RequestAnswer]) -> [ControllerEffect] {
    var effects: [ControllerEffect] = []
    for answer in answers where answer.origin == local.id {
      if replication.proposals.removeValue(forKey: answer.id) != nil {
        effects.append(.requestAnswered(answer))
        continue
      }
      guard let request = pendingRequests.first(where: { $0.id == answer.id }) else { continue }
      if request.kind.isAppliedByNodes, answer.accepted, answeredNodeRequests[answer.id] == nil {
        answeredNodeRequests[answer.id] = .some(nil)
        effects.append(.requestAnswered(answer))
        continue
      }
      guard answeredNodeRequests[answer.id] == nil else { continue }
      pendingRequests.removeAll { $0.id == answer.id }
      effects.append(.requestAnswered(answer))
    }
    return effects
  }

  func name(of node: NodeID) -> String { config.member(id: node)?.name ?? node.description }

  /// The boot of `peer` that packets to it must name (0 until heard).
  public func receiverIncarnation(for peer: NodeID) -> UInt64 { peerBoots[peer] ?? 0 }

  /// Records the newest boot heard from `peer`; true when it is new.
  mutating func learnBoot(of peer: NodeID, _ boot: UInt64) -> Bool {
    guard boot > peerBoots[peer] ?? 0 else { return false }
    peerBoots[peer] = boot
    // What its earlier boot reported is not what this one runs: a fenced
    // node's new boot was fenced again for its old boot's failed stop
    // (seed 30241). It reports afresh, as after `peerRestarted`.
    peerReports[peer] = nil
    // Nor does an assignment made to its earlier boot hold for this one: a
    // fenced and rebooted node started what its leader had kept on it while
    // its stop was failing, beside an unfenced copy (seed 34545). The
    // leader learns the boot before it can send the new one anything; it
    // assigns again once the node has probed.
    if membership.isLeader, var state = leading, let directives = state.directives,
      directives.assignments.contains(where: { $0.node == peer })
    {
      state.directives?.assignments.removeAll { $0.node == peer }
      leading = state
      undecided = true
    }
    return true
  }
}

enum DurationText {
  static func format(_ duration: Duration) -> String {
    let millis = duration.milliseconds
    return millis < 10_000 ? "\(millis) ms" : "\(millis / 1000) s"
  }
}

extension Array {
  subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

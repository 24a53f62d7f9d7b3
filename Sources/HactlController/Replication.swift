import HactlConfig
import HactlMembership
import HactlModel
import HactlWire

/// What a node keeps to replicate configurations (docs/ARCHITECTURE.md,
/// "Configuration replication").
struct ReplicationState: Sendable {
  /// Each live peer's configuration as its latest heartbeat gave it, with the
  /// term and leader it followed then: only those count as acknowledgements.
  var peers: [NodeID: PeerConfig] = [:]
  /// When each peer was last sent our configuration.
  var offered: [NodeID: Instant] = [:]
  /// Operator changes asked on this node, until the leader answers: id → text.
  var proposals: [UInt64: ConfigProposal] = [:]
  var lastForwarded: Instant?
  /// Versions found invalid here, so each is refused (and logged) once.
  var refused: Set<ConfigVersion> = []
  /// Peers seen running another text at our version, and that version.
  var mismatched: [NodeID: ConfigVersion] = [:]
  /// Membership settings of `document` that the running daemon cannot take.
  var restartNeeded: [String] = []
}

struct PeerConfig: Sendable, Hashable {
  var stamp: ConfigStamp
  var term: UInt64
  var leader: NodeID?
}

/// A configuration change the leader made, waiting for a quorum to hold it.
struct ConfigWaiter: Sendable, Hashable {
  var request: RequestKey
  var version: ConfigVersion
}

extension NodeController {
  /// An operator's `config apply`: checked here first (quorum, validity,
  /// membership untouched), then sent to the leader until it answers.
  public mutating func requestConfigChange(text: String, now: Instant)
    -> (Result<UInt64, RequestError>, [ControllerEffect])
  {
    let effects = apply(membership.observe(now: now), now: now)
    guard membership.quorate else {
      let refusal = RequestError.noQuorum(votes: membership.partitionVotes, needed: membership.settings.votesNeeded)
      return (.failure(refusal), effects)
    }
    switch parseConfiguration(text) {
    case .failure(let errors):
      return (.failure(.invalidConfiguration(errors.description)), effects)
    case .success(let parsed):
      let restart = parsed.changesNeedingRestart(from: config)
      guard restart.isEmpty else { return (.failure(.needsRestart(restart)), effects) }
    }
    guard replication.proposals.count < ClusterLimits.pendingProposals else {
      return (.failure(.tooManyPending(ClusterLimits.pendingProposals)), effects)
    }
    let id = nextRequestID
    nextRequestID += 1
    replication.proposals[id] = ConfigProposal(id: id, text: text)
    replication.lastForwarded = nil
    return (.success(id), effects + finish(now: now, forceBeat: false))
  }

  /// An operator's change (hactl ban, standby...): queued like a new
  /// configuration, but the leader applies it to its own text.
  public mutating func requestOperatorEdit(_ edit: OperatorEdit, now: Instant)
    -> (Result<UInt64, RequestError>, [ControllerEffect])
  {
    let effects = apply(membership.observe(now: now), now: now)
    if let refusal = checkEdit(edit) { return (.failure(.invalidConfiguration(refusal)), effects) }
    guard membership.quorate else {
      let refusal = RequestError.noQuorum(votes: membership.partitionVotes, needed: membership.settings.votesNeeded)
      return (.failure(refusal), effects)
    }
    guard replication.proposals.count < ClusterLimits.pendingProposals else {
      return (.failure(.tooManyPending(ClusterLimits.pendingProposals)), effects)
    }
    let id = nextRequestID
    nextRequestID += 1
    replication.proposals[id] = ConfigProposal(id: id, text: "", edit: edit)
    replication.lastForwarded = nil
    return (.success(id), effects + finish(now: now, forceBeat: false))
  }

  /// What an edit names must exist: a node, or a resource, group or clone
  /// (bans and pins name what constraints may name).
  func checkEdit(_ edit: OperatorEdit) -> String? {
    func node(_ name: String) -> String? {
      config.nodes.contains { $0.name == name } ? nil : "no node '\(name)' in the configuration"
    }
    func top(_ id: ResourceID) -> String? {
      if let group = config.groups.first(where: { $0.members.contains(id) }) {
        return "\(id) is in group \(group.id): name the group"
      }
      if let clone = config.clones.first(where: { $0.child == id }) { return "\(id) is cloned: name \(clone.id)" }
      let known = config.resource(id) != nil || config.group(id) != nil || config.clone(id) != nil
      return known ? nil : "no resource, group or clone '\(id)'"
    }
    switch edit {
    case .ban(let resource, let name, _), .pin(let resource, let name, _): return top(resource) ?? node(name)
    case .clear(let resource): return top(resource)
    case .standby(let name), .online(let name): return node(name)
    case .maintenance(_, let name, let resource):
      if let name { return node(name) }
      if let resource { return config.resource(resource) == nil ? "no resource '\(resource)'" : nil }
      return nil
    case .nodeAttribute(let name, let attribute, let value):
      if let refusal = node(name)
        ?? OperatorBlock.settingRefusal(attribute, value, limit: ClusterLimits.attributeValueBytes)
      {
        return refusal
      }
      let set = config.operatorState.nodeAttributes[name] ?? [:]
      if value == nil, set[attribute] == nil,
        config.nodes.first(where: { $0.name == name })?.attributes[attribute] != nil
      {
        return
          "\(name)'s attribute \(attribute) is written in the configuration file (nodes[].attributes): change it there"
      }
      if value != nil, set[attribute] == nil,
        (config.nodes.first { $0.name == name }?.attributes.count ?? 0) >= ClusterLimits.nodeAttributes
      {
        return "\(name) already has \(ClusterLimits.nodeAttributes) permanent attributes"
      }
      return nil
    case .property(let name, let value):
      if let refusal = OperatorBlock.settingRefusal(name, value, limit: ClusterLimits.propertyValueBytes) {
        return refusal
      }
      if value != nil, config.operatorState.properties[name] == nil,
        config.operatorState.properties.count >= ClusterLimits.clusterProperties
      {
        return "the cluster already has \(ClusterLimits.clusterProperties) properties"
      }
      return nil
    }
  }

  func parseConfiguration(_ text: String) -> Result<ClusterConfig, ConfigErrors> {
    Result { () throws(ConfigErrors) in try ConfigLoader.parse(text, file: "configuration", relativeTo: configFolder) }
  }

  /// Sends this node's pending changes to the leader, once per interval
  /// (the leader handles each once); the leader handles its own at once.
  mutating func forwardProposals(now: Instant) -> [ControllerEffect] {
    guard !replication.proposals.isEmpty, let leader = membership.leader else { return [] }
    let proposals = replication.proposals.sorted { $0.key < $1.key }.map(\.value)
    if leader == local.id {
      return proposals.flatMap { handleProposal($0, from: local.id, now: now) }
    }
    if let last = replication.lastForwarded, now - last < membership.settings.heartbeatInterval { return [] }
    replication.lastForwarded = now
    return proposals.map { .send(to: leader, .configProposal($0)) }
  }

  /// The leader makes the next version from a proposal, or refuses it.
  mutating func handleProposal(_ proposal: ConfigProposal, from origin: NodeID, now: Instant) -> [ControllerEffect] {
    guard membership.isLeader, var state = leading else { return [] }
    let key = RequestKey(origin: origin, id: proposal.id)
    guard state.handled.firstTime(key) else { return [] }
    var effects: [ControllerEffect] = []
    func refuse(_ message: String) -> [ControllerEffect] {
      effects + post(RequestAnswer(origin: origin, id: proposal.id, accepted: false, message: message), in: &state)
    }
    defer { leading = state }
    guard membership.quorate, membership.mayRunResources(now: now) else {
      return refuse("the leader has no quorum lease now: configuration changes are refused")
    }
    var proposal = proposal
    if let edit = proposal.edit {
      if let refusal = checkEdit(edit) { return refuse(refusal) }
      proposal.text = OperatorBlock.rewrite(document.text, with: edit.applied(to: config.operatorState))
    }
    let parsed: ClusterConfig
    switch parseConfiguration(proposal.text) {
    case .failure(let errors): return refuse("the configuration is invalid; nothing changed:\n\(errors.description)")
    case .success(let config): parsed = config
    }
    let restart = parsed.changesNeedingRestart(from: config)
    guard restart.isEmpty else { return refuse(RequestError.needsRestart(restart).description) }
    if let crowded = nodeRetiringTooMany(after: parsed) { return refuse(crowded) }
    if proposal.text != document.text {
      let next = ConfigDocument(
        version: document.version.next(term: membership.term), base: document.version, text: proposal.text)
      effects.append(
        .log(.notice, "configuration \(next.version) made from \(next.base), asked on \(name(of: origin)); replicating")
      )
      // Our own acknowledgement counts only once this is durable; effects run in order.
      effects += adopt(next, parsed: parsed, now: now)
      // Push it now rather than wait for heartbeats to show who is behind.
      for peer in membership.alivePeers {
        replication.offered[peer] = now
        effects.append(.send(to: peer, .configOffer(next)))
      }
    }
    state.configWaiters.append(ConfigWaiter(request: key, version: document.version))
    return effects
  }

  /// A node reports what it runs and what it still stops: a change that
  /// would leave it more than a heartbeat carries is refused (renaming every
  /// resource at once, or while old stops hang), and can be made in steps.
  func nodeRetiringTooMany(after parsed: ClusterConfig) -> String? {
    let next = Set(parsed.resources.map(\.id))
    for node in config.nodes {
      guard let report = report(of: node.id) else { continue }
      let leftover = report.resources.filter { !next.contains($0.id) && $0.role != .stopped }.count
      guard parsed.resources.count + leftover > ClusterLimits.reportedResources else { continue }
      return "\(node.name) would track \(parsed.resources.count) configured resources and \(leftover) still "
        + "stopping, more than the \(ClusterLimits.reportedResources) a node reports: remove or rename fewer "
        + "at once (or wait for hanging stops), then apply again"
    }
    return nil
  }

  /// Posts a leader's answer: in its heartbeats, and at once if asked here.
  mutating func post(_ answer: RequestAnswer, in state: inout LeaderState) -> [ControllerEffect] {
    state.answers.append(answer)
    if state.answers.count > LeaderState.answersKept { state.answers.removeFirst() }
    let level: LogLevel = answer.accepted ? .notice : .warning
    var effects: [ControllerEffect] = [.log(level, "request from \(name(of: answer.origin)): \(answer.message)")]
    if answer.origin == local.id { effects += takeAnswers([answer]) }
    return effects
  }

  /// The votes that need to hold a configuration before it is acknowledged:
  /// a quorum, so that every later leader has it (it needs their votes); in
  /// two-node mode a lone node is a quorum, so both.
  var acknowledgementVotes: Int {
    membership.settings.twoNode
      ? membership.settings.votes.values.reduce(0, +) : membership.settings.votesNeeded
  }

  /// Votes of the members known to hold `version` durably: this leader, and
  /// peers that said so in a heartbeat while following it in this term.
  func votesHolding(_ version: ConfigVersion) -> Int {
    var votes = document.version >= version ? membership.settings.votes[local.id] ?? 0 : 0
    for (peer, seen) in replication.peers
    where membership.isAlive(peer) && seen.term == membership.term && seen.leader == local.id
      && seen.stamp.version >= version
    {
      votes += membership.settings.votes[peer] ?? 0
    }
    return votes
  }

  mutating func answerAcknowledgedConfigs(now: Instant) -> [ControllerEffect] {
    guard membership.isLeader, var state = leading, !state.configWaiters.isEmpty else { return [] }
    var effects: [ControllerEffect] = []
    var waiting: [ConfigWaiter] = []
    for waiter in state.configWaiters {
      let votes = votesHolding(waiter.version)
      guard votes >= acknowledgementVotes else {
        waiting.append(waiter)
        continue
      }
      let total = membership.settings.votes.values.reduce(0, +)
      let answer = RequestAnswer(
        origin: waiter.request.origin, id: waiter.request.id, accepted: true,
        message: "configuration \(waiter.version) is stored on members holding \(votes) of \(total) votes",
        configVersion: waiter.version)
      effects += post(answer, in: &state)
    }
    state.configWaiters = waiting
    leading = state
    return effects
  }

  /// A peer's heartbeat told its configuration: note it, and send ours if
  /// it is behind (once per interval until it catches up).
  mutating func heardConfig(_ stamp: ConfigStamp, from peer: NodeID, beat: MembershipBeat, now: Instant)
    -> [ControllerEffect]
  {
    replication.peers[peer] = PeerConfig(stamp: stamp, term: beat.term, leader: beat.leader)
    var effects: [ControllerEffect] = []
    if stamp.version == document.version && stamp.digest != documentStamp.digest {
      if replication.mismatched[peer] != stamp.version {
        replication.mismatched[peer] = stamp.version
        effects.append(
          .log(
            .warning,
            "\(name(of: peer)) runs another configuration at version \(stamp.version): the daemons started "
              + "from different files; `hactl config apply` one of them to make them agree"))
      }
    } else {
      replication.mismatched[peer] = nil
    }
    guard stamp.version < document.version else { return effects }
    if let last = replication.offered[peer], now - last < membership.settings.heartbeatInterval { return effects }
    replication.offered[peer] = now
    return effects + [.send(to: peer, .configOffer(document))]
  }

  /// A peer sent a configuration: take it if it is newer and valid here.
  mutating func receiveConfig(_ offered: ConfigDocument, from peer: NodeID, now: Instant) -> [ControllerEffect] {
    guard offered.version > document.version, !replication.refused.contains(offered.version) else { return [] }
    // A version is made by the leader of its epoch: one from a term nobody
    // has reached, or not above its own base, was not made by any leader.
    let knownTerm = max(membership.term, replication.peers[peer]?.term ?? 0)
    guard offered.version.epoch <= knownTerm, offered.base < offered.version else {
      return [
        .log(
          .debug,
          "ignoring configuration \(offered.version) (base \(offered.base)) from \(name(of: peer)): "
            + "no leader of term \(offered.version.epoch) is known here (term \(knownTerm))")
      ]
    }
    switch parseConfiguration(offered.text) {
    case .failure(let errors):
      replication.refused.insert(offered.version)
      return [
        .log(
          .error,
          "configuration \(offered.version) from \(name(of: peer)) is invalid here; keeping \(document.version):\n\(errors.description)"
        )
      ]
    case .success(let parsed):
      // What `config apply` refuses, an offer may not bring in either: it
      // would be stored now and stop the daemon from starting later.
      let restart = parsed.changesNeedingRestart(from: config)
      guard restart.isEmpty else {
        replication.refused.insert(offered.version)
        return [
          .log(
            .error,
            "configuration \(offered.version) from \(name(of: peer)) changes \(restart.joined(separator: ", ")), "
              + "which needs a restart of every daemon: refused; keeping \(document.version)")
        ]
      }
      let note = LogLevel.notice
      return [.log(note, "configuration \(offered.version) received from \(name(of: peer))")]
        + adopt(offered, parsed: parsed, now: now)
    }
  }

  /// Makes `newDocument` this node's configuration: durable first, then live.
  mutating func adopt(_ newDocument: ConfigDocument, parsed: ClusterConfig, now: Instant) -> [ControllerEffect] {
    replication.restartNeeded = parsed.changesNeedingRestart(from: config)
    let running = parsed.liveParts(over: config)
    // What it drops is recorded before the configuration that drops it.
    var effects = changeResources(to: running, now: now)
    effects += storeRetiringIfChanged()
    effects.append(.persistConfig(newDocument))
    document = newDocument
    membership.configVersion = newDocument.version
    config = running
    if !replication.restartNeeded.isEmpty {
      effects.append(
        .log(
          .warning,
          "configuration \(newDocument.version) changes \(replication.restartNeeded.joined(separator: ", ")): "
            + "kept as it started until the daemons restart"))
    }
    return effects
  }

  /// Old definitions this node may still run: removed, or replaced.
  var retiringDefinitions: [ResourceSpec] {
    resources.values.filter { $0.removed || $0.replacement != nil }.map(\.spec).sorted { $0.id < $1.id }
  }

  mutating func storeRetiringIfChanged() -> [ControllerEffect] {
    let current = retiringDefinitions
    guard current != persistedRetiring else { return [] }
    persistedRetiring = current
    return [.persistRetiring(current)]
  }

  /// Brings the local resource manager to a new resource list: new ones are
  /// probed, removed ones stopped then forgotten, redefined ones stopped then
  /// probed anew; timings and placement change in place.
  mutating func changeResources(to running: ClusterConfig, now: Instant) -> [ControllerEffect] {
    guard local.kind == .node else { return [] }
    var effects: [ControllerEffect] = []
    let executed = running.executedResources
    let kept = Set(executed.map(\.id))
    for spec in executed {
      guard var resource = resources[spec.id] else {
        resources[spec.id] = LocalResource(spec: spec)
        effects.append(.log(.info, "\(spec.id): added to the configuration; probing it"))
        continue
      }
      resource.removed = false
      if spec.hasSameDefinition(as: resource.spec) {
        resource.replacement = nil
        resource.reload = nil
        if spec.monitor.interval != resource.spec.monitor.interval, resource.nextMonitor != nil {
          resource.spec = spec
          resource.scheduleMonitor(now: now)
        }
        resource.spec = spec
      } else if resource.replacement != spec {
        resource.replacement = spec
        resource.reload = nil
        let mayReload = resource.role == .started && !resource.restartsForReplacement
        effects.append(
          .log(
            .info,
            "\(spec.id): agent or parameters changed; "
              + (mayReload ? "asking its agent whether it reloads them" : "restarting it")))
      }
      resources[spec.id] = resource
    }
    for id in resources.keys.sorted() where !kept.contains(id) && resources[id]?.removed == false {
      resources[id]?.removed = true
      effects.append(.log(.info, "\(id): removed from the configuration; stopping it"))
    }
    return effects
  }

  /// What `hactl status` shows of the configuration.
  var configurationStatus: ConfigurationStatus {
    let behind = replication.peers.filter { membership.isAlive($0.key) && $0.value.stamp.version < document.version }
    return ConfigurationStatus(
      version: document.version.description,
      behind: behind.keys.sorted().map { name(of: $0) },
      differs: replication.mismatched.keys.sorted().map { name(of: $0) },
      restartNeeded: replication.restartNeeded)
  }
}

extension ClusterConfig {
  /// What differs from `running` that a running cluster cannot take: who the
  /// members are and how they talk. Changing those one daemon at a time could
  /// let two halves count quorum differently, so they wait for a restart.
  public func changesNeedingRestart(from running: ClusterConfig) -> [String] {
    var changes: [String] = []
    let cluster = self.cluster
    let old = running.cluster
    if cluster.name != old.name { changes.append("cluster.name") }
    if cluster.keyFile != old.keyFile { changes.append("cluster.key_file") }
    if cluster.port != old.port { changes.append("cluster.port") }
    if cluster.heartbeatInterval != old.heartbeatInterval { changes.append("cluster.heartbeat_interval") }
    if cluster.deadTime != old.deadTime { changes.append("cluster.dead_time") }
    if cluster.quorum != old.quorum { changes.append("cluster.quorum") }
    if cluster.ocfRoot != old.ocfRoot { changes.append("cluster.ocf_root") }
    if cluster.encryption != old.encryption { changes.append("cluster.encryption") }
    if cluster.realtime != old.realtime { changes.append("cluster.realtime") }
    if cluster.lockMemory != old.lockMemory { changes.append("cluster.lock_memory") }
    let members = voters.map { MemberIdentity($0) }
    let oldMembers = running.voters.map { MemberIdentity($0) }
    if members != oldMembers {
      let names = Set(members.map(\.name)).symmetricDifference(oldMembers.map(\.name))
      changes.append(
        names.isEmpty ? "nodes (ids, addresses or votes)" : "nodes (\(names.sorted().joined(separator: ", ")))")
    }
    return changes
  }

  /// `running` with what a running cluster can take from `self`: resources,
  /// groups, clones, constraints, maintenance, node modes and attributes.
  /// Membership stays as it started.
  public func liveParts(over running: ClusterConfig) -> ClusterConfig {
    var merged = running
    merged.resources = resources
    merged.groups = groups
    merged.clones = clones
    merged.constraints = constraints
    merged.operatorState = operatorState
    merged.cluster.maintenance = cluster.maintenance
    for index in merged.nodes.indices {
      guard let node = nodes.first(where: { $0.id == merged.nodes[index].id }) else { continue }
      merged.nodes[index].mode = node.mode
      merged.nodes[index].maintenance = node.maintenance
      merged.nodes[index].attributes = node.attributes
    }
    return merged
  }
}

private struct MemberIdentity: Equatable {
  var id: NodeID
  var name: String
  var links: [Endpoint]
  var votes: Int
  var kind: Member.Kind
  init(_ member: Member) {
    id = member.id
    name = member.name
    links = member.links
    votes = member.votes
    kind = member.kind
  }
}

extension ResourceSpec {
  /// What a failed operation's on_fail asks for, with pacemaker's
  /// defaults: restart; for a stop, fence the node when fencing is
  /// configured, or else block. `promoted`: the instance runs Promoted (its
  /// own monitor then applies).
  public func failurePolicy(for action: AgentAction, promoted: Bool, fencing: Bool) -> FailurePolicy {
    let operation: OperationSpec
    switch action {
    case .start: operation = start
    case .stop:
      switch stop.onFail {
      case .ignore?: return .ignore
      case .block?: return .block
      case .fence?: return .fence
      default: return fencing ? .fence : .block
      }
    case .promote: operation = promote
    case .demote: operation = demote
    case .monitor: operation = promoted ? monitorPromoted ?? monitor : monitor
    case .metaData, .validateAll, .notify: return .ignore
    // A failed reload may have half applied the change: restart it.
    case .reloadAgent, .reload: return .restart
    }
    return operation.onFail ?? .restart
  }

  /// Same agent with the same parameters: what the agent was started with.
  /// Anything else (timings, placement) can change while it runs.
  public func hasSameDefinition(as other: ResourceSpec) -> Bool {
    agent == other.agent && parameters.map(\.name) == other.parameters.map(\.name)
      && parameters.map(\.value) == other.parameters.map(\.value)
  }

  /// The parameters whose values differ from `other`'s (set in one and not
  /// the other included); nil when the agent itself differs.
  public func changedParameters(from other: ResourceSpec) -> Set<String>? {
    guard agent == other.agent else { return nil }
    let mine = Dictionary(parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    let theirs = Dictionary(other.parameters.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    return Set(mine.keys).union(theirs.keys).filter { mine[$0] != theirs[$0] }
  }
}

/// What an agent's meta-data says about changing its parameters while it
/// runs, as pacemaker reads it: OCF 1.1's `reload-agent` action with the
/// parameters marked `reloadable`; or, for an agent of the OCF 1.0 API,
/// its legacy `reload` action with every parameter not marked `unique`.
/// Read where the agent runs, when a running resource's parameters change.
public struct AgentReload: Sendable, Hashable {
  /// `reload-agent` or `reload`; nil when it cannot reload.
  public var action: AgentAction?
  public var reloadable: Set<String>

  public init(action: AgentAction?, reloadable: Set<String>) {
    self.action = action
    self.reloadable = reloadable
  }

  /// An agent that cannot reload (no meta-data, or none that says so).
  public static let none = AgentReload(action: nil, reloadable: [])

  /// Whether going from `old` to `new` is a reload rather than a restart:
  /// the same agent, and every parameter that changed is reloadable (a
  /// change of any other parameter restarts).
  public func reloads(from old: ResourceSpec, to new: ResourceSpec) -> Bool {
    guard action != nil, let changed = new.changedParameters(from: old), !changed.isEmpty else { return false }
    return changed.isSubset(of: reloadable)
  }
}

/// Stored so that a restarted daemon can still stop what an older
/// definition started (a resource removed, or redefined, while it stopped).
extension ResourceSpec: Codable {
  private struct Stored: Codable {
    var id: ResourceID
    var agent: String
    var parameters: [[String]]
    var startTimeoutMs: Int64
    var stopTimeoutMs: Int64
    var monitorIntervalMs: Int64
    var monitorTimeoutMs: Int64
    var preferredNode: String?
    var preferenceScore: Score
    var stickiness: Score
    var migrationThreshold: Int
    // Absent in state written before groups and clones existed.
    var promoteTimeoutMs: Int64?
    var demoteTimeoutMs: Int64?
    var failureTimeoutMs: Int64?
    var targetRole: ResourceRunRole?
    var managed: Bool?
  }

  public func encode(to encoder: any Encoder) throws {
    try Stored(
      id: id, agent: agent.description, parameters: parameters.map { [$0.name, $0.value] },
      startTimeoutMs: start.timeout.milliseconds, stopTimeoutMs: stop.timeout.milliseconds,
      monitorIntervalMs: monitor.interval.milliseconds, monitorTimeoutMs: monitor.timeout.milliseconds,
      preferredNode: preferredNode, preferenceScore: preferenceScore, stickiness: stickiness,
      migrationThreshold: migrationThreshold, promoteTimeoutMs: promote.timeout.milliseconds,
      demoteTimeoutMs: demote.timeout.milliseconds, failureTimeoutMs: failureTimeout?.milliseconds,
      targetRole: targetRole, managed: managed
    ).encode(to: encoder)
  }

  public init(from decoder: any Decoder) throws {
    let stored = try Stored(from: decoder)
    let agent: AgentRef
    switch AgentRef.parse(stored.agent) {
    case .success(let parsed): agent = parsed
    case .failure(let error):
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.reason))
    }
    guard stored.parameters.allSatisfy({ $0.count == 2 }) else {
      throw DecodingError.dataCorrupted(
        .init(codingPath: decoder.codingPath, debugDescription: "a parameter is not a [name, value] pair"))
    }
    self.init(
      id: stored.id, agent: agent, parameters: stored.parameters.map { ($0[0], $0[1]) },
      start: OperationSpec(timeout: .milliseconds(stored.startTimeoutMs)),
      stop: OperationSpec(timeout: .milliseconds(stored.stopTimeoutMs)),
      monitor: OperationSpec(
        interval: .milliseconds(stored.monitorIntervalMs), timeout: .milliseconds(stored.monitorTimeoutMs)),
      preferredNode: stored.preferredNode, preferenceScore: stored.preferenceScore, stickiness: stored.stickiness,
      migrationThreshold: stored.migrationThreshold)
    if let value = stored.promoteTimeoutMs { promote.timeout = .milliseconds(value) }
    if let value = stored.demoteTimeoutMs { demote.timeout = .milliseconds(value) }
    failureTimeout = stored.failureTimeoutMs.map { .milliseconds($0) }
    targetRole = stored.targetRole ?? .started
    managed = stored.managed ?? true
  }
}

extension ResourceSpec: Hashable {
  /// A subset of what `==` compares: equal specs hash equally.
  public func hash(into hasher: inout Hasher) {
    hasher.combine(id)
    hasher.combine(agent)
    for parameter in parameters {
      hasher.combine(parameter.name)
      hasher.combine(parameter.value)
    }
  }
}

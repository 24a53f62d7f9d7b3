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
    let members = voters.map { MemberIdentity($0) }
    let oldMembers = running.voters.map { MemberIdentity($0) }
    if members != oldMembers {
      let names = Set(members.map(\.name)).symmetricDifference(oldMembers.map(\.name))
      changes.append(
        names.isEmpty ? "nodes (ids, addresses or votes)" : "nodes (\(names.sorted().joined(separator: ", ")))")
    }
    return changes
  }

  /// `running` with what a running cluster can take from `self`: resources
  /// and node modes. Membership stays as it started.
  public func liveParts(over running: ClusterConfig) -> ClusterConfig {
    var merged = running
    merged.resources = resources
    for index in merged.nodes.indices {
      if let mode = nodes.first(where: { $0.id == merged.nodes[index].id })?.mode { merged.nodes[index].mode = mode }
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
  /// Same agent with the same parameters: what the agent was started with.
  /// Anything else (timings, placement) can change while it runs.
  public func hasSameDefinition(as other: ResourceSpec) -> Bool {
    agent == other.agent && parameters.map(\.name) == other.parameters.map(\.name)
      && parameters.map(\.value) == other.parameters.map(\.value)
  }
}

import HactlModel

/// Writes a `ClusterConfig` back as configuration text that `ConfigLoader`
/// reads to the same value. Programs that build configurations (the
/// simulator, tests) use it to produce what an operator would write.
public enum ConfigWriter {
  public static func yaml(_ config: ClusterConfig) -> String {
    let cluster = config.cluster
    var lines = [
      "cluster:",
      "  name: \(quoted(cluster.name))",
      "  key_file: \(quoted(cluster.keyFile))",
      "  port: \(cluster.port)",
      "  heartbeat_interval: \(duration(cluster.heartbeatInterval))",
      "  dead_time: \(duration(cluster.deadTime))",
      "  ocf_root: \(quoted(cluster.ocfRoot))",
      "  encryption: \(cluster.encryption)",
      "  realtime: \(cluster.realtime)",
      "  lock_memory: \(cluster.lockMemory)",
      "  maintenance: \(cluster.maintenance)",
      "  quorum:",
      "    no_quorum_policy: \(cluster.quorum.noQuorumPolicy.rawValue)",
      "    two_node: \(cluster.quorum.twoNode)",
      "    wait_for_all: \(cluster.quorum.waitForAll)",
    ]
    if let votes = cluster.quorum.expectedVotes { lines.append("    expected_votes: \(votes)") }
    if cluster.quorum.unfencedTakeover {
      lines.append("    unfenced_takeover: \(quoted(QuorumOptions.unfencedTakeoverPhrase))")
    }
    lines.append("nodes:")
    for node in config.nodes {
      lines.append(
        "  - { name: \(quoted(node.name)), id: \(node.id.rawValue), \(addresses(node.links)), votes: \(node.votes), "
          + "mode: \(node.mode.rawValue), maintenance: \(node.maintenance)\(attributes(node.attributes)) }")
    }
    if let witness = config.witness {
      lines.append(
        "witness: { name: \(quoted(witness.name)), id: \(witness.id.rawValue), \(addresses(witness.links)), "
          + "votes: \(witness.votes) }")
    }
    lines.append(config.resources.isEmpty ? "resources: []" : "resources:")
    for spec in config.resources {
      lines.append("  - id: \(quoted(spec.id.rawValue))")
      lines.append("    agent: \(quoted(spec.agent.description))")
      if !spec.parameters.isEmpty {
        lines.append("    params:")
        for parameter in spec.parameters { lines.append("      \(parameter.name): \(quoted(parameter.value))") }
      }
      lines.append("    start: \(operation(spec.start, interval: false))")
      lines.append("    stop: \(operation(spec.stop, interval: false))")
      lines.append("    monitor: \(operation(spec.monitor, interval: true))")
      if let promoted = spec.monitorPromoted {
        lines.append("    monitor_promoted: \(operation(promoted, interval: true))")
      }
      lines.append("    promote: \(operation(spec.promote, interval: false))")
      lines.append("    demote: \(operation(spec.demote, interval: false))")
      lines.append("    notify: \(operation(spec.notify, interval: false))")
      if let node = spec.preferredNode {
        lines.append("    prefer: { node: \(quoted(node)), score: \(quoted(spec.preferenceScore.description)) }")
      }
      lines.append("    stickiness: \(quoted(spec.stickiness.description))")
      lines.append("    migration_threshold: \(spec.migrationThreshold)")
      if let timeout = spec.failureTimeout { lines.append("    failure_timeout: \(duration(timeout))") }
      lines.append("    target_role: \(spec.targetRole.rawValue)")
      lines.append("    managed: \(spec.managed)")
    }
    var own = config.constraints
    let operatorIDs = Set(config.operatorState.constraints.map(\.id))
    own.locations.removeAll { operatorIDs.contains($0.id) }
    lines += groups(config.groups) + clones(config.clones) + constraints(own) + fencing(config.fencing)
    let text = lines.joined(separator: "\n") + "\n"
    return config.operatorState.isEmpty ? text : text + OperatorBlock.render(config.operatorState)
  }

  static func operation(_ spec: OperationSpec, interval: Bool) -> String {
    var fields = interval ? ["interval: \(duration(spec.interval))"] : []
    fields.append("timeout: \(duration(spec.timeout))")
    if let policy = spec.onFail { fields.append("on_fail: \(policy.rawValue)") }
    if let depth = spec.depth { fields.append("depth: \(depth)") }
    return "{ \(fields.joined(separator: ", ")) }"
  }

  static func attributes(_ attributes: [String: String]) -> String {
    guard !attributes.isEmpty else { return "" }
    let pairs = attributes.sorted { $0.key < $1.key }.map { "\(quoted($0.key)): \(quoted($0.value))" }
    return ", attributes: { \(pairs.joined(separator: ", ")) }"
  }

  static func meta(_ meta: ResourceMeta) -> String {
    var fields: [String] = []
    if let role = meta.targetRole { fields.append("target_role: \(role.rawValue)") }
    if let managed = meta.managed { fields.append("managed: \(managed)") }
    if let stickiness = meta.stickiness { fields.append("stickiness: \(quoted(stickiness.description))") }
    return fields.map { ", " + $0 }.joined()
  }

  static func groups(_ groups: [GroupSpec]) -> [String] {
    guard !groups.isEmpty else { return [] }
    return ["groups:"]
      + groups.map { group in
        let members = group.members.map { quoted($0.rawValue) }.joined(separator: ", ")
        return "  - { id: \(quoted(group.id.rawValue)), members: [\(members)]\(meta(group.meta)) }"
      }
  }

  static func clones(_ clones: [CloneSpec]) -> [String] {
    guard !clones.isEmpty else { return [] }
    return ["clones:"]
      + clones.map { clone in
        var fields = [
          "id: \(quoted(clone.id.rawValue))", "resource: \(quoted(clone.child.rawValue))",
          "clone_node_max: \(clone.cloneNodeMax)", "interleave: \(clone.interleave)", "notify: \(clone.notify)",
          "promotable: \(clone.promotable)",
        ]
        if let most = clone.cloneMax { fields.append("clone_max: \(most)") }
        if clone.globallyUnique { fields.append("globally_unique: true") }
        if clone.promotable {
          fields += ["promoted_max: \(clone.promotedMax)", "promoted_node_max: \(clone.promotedNodeMax)"]
        }
        return "  - { \(fields.joined(separator: ", "))\(meta(clone.meta)) }"
      }
  }

  static func constraints(_ constraints: Constraints) -> [String] {
    guard !constraints.isEmpty else { return [] }
    var lines = ["constraints:"]
    if !constraints.locations.isEmpty { lines.append("  location:") }
    for location in constraints.locations {
      var fields = [
        "id: \(quoted(location.id))", "resource: \(quoted(location.resource.rawValue))",
        "score: \(quoted(location.score.description))",
      ]
      if let node = location.node { fields.append("node: \(quoted(node))") }
      if let rule = location.rule { fields.append("rule: \(quoted(rule.description))") }
      if let role = location.role { fields.append("role: \(role.rawValue)") }
      if let expires = location.expires { fields.append("expires: \(quoted(WallClockText.format(expires)))") }
      lines.append("    - { \(fields.joined(separator: ", ")) }")
    }
    if !constraints.colocations.isEmpty { lines.append("  colocation:") }
    for colocation in constraints.colocations {
      var fields = [
        "id: \(quoted(colocation.id))", "resource: \(quoted(colocation.resource.rawValue))",
        "with: \(quoted(colocation.with.rawValue))", "score: \(quoted(colocation.score.description))",
      ]
      if let role = colocation.role { fields.append("role: \(role.rawValue)") }
      if let role = colocation.withRole { fields.append("with_role: \(role.rawValue)") }
      lines.append("    - { \(fields.joined(separator: ", ")) }")
    }
    if !constraints.orders.isEmpty { lines.append("  order:") }
    for order in constraints.orders {
      let fields = [
        "id: \(quoted(order.id))", "first: \(quoted(order.first.rawValue))",
        "first_action: \(order.firstAction.rawValue)", "then: \(quoted(order.then.rawValue))",
        "then_action: \(order.thenAction.rawValue)", "kind: \(order.kind.rawValue)",
        "symmetrical: \(order.symmetrical)",
      ]
      lines.append("    - { \(fields.joined(separator: ", ")) }")
    }
    return lines
  }

  static func fencing(_ fencing: FencingConfig) -> [String] {
    guard fencing.isEnabled else { return [] }
    var lines = ["fencing:", "  priority_delay: \(duration(fencing.priorityDelay))"]
    if let winner = fencing.winner { lines.append("  winner: \(quoted(winner))") }
    if let watchdog = fencing.watchdog {
      lines.append("  watchdog: { device: \(quoted(watchdog.device)), timeout: \(duration(watchdog.timeout)) }")
    }
    lines.append(fencing.devices.isEmpty ? "  devices: []" : "  devices:")
    for device in fencing.devices {
      lines.append("    - id: \(quoted(device.id))")
      switch device.program {
      case .agent(let path): lines.append("      agent: \(quoted(path))")
      case .hook(let path): lines.append("      hook: \(quoted(path))")
      }
      if !device.options.isEmpty {
        lines.append("      params:")
        for option in device.options { lines.append("        \(option.name): \(quoted(option.value))") }
      }
      if !device.secrets.isEmpty {
        lines.append("      secrets:")
        for secret in device.secrets {
          switch secret.source {
          case .file(let path): lines.append("        \(secret.name): { file: \(quoted(path)) }")
          case .command(let command): lines.append("        \(secret.name): { command: \(quoted(command)) }")
          }
        }
      }
      switch device.targets {
      case .nodes(let names): lines.append("      hosts: [\(names.map(quoted).joined(separator: ", "))]")
      case .hostMap(let map):
        let text = map.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ";")
        lines.append("      host_map: \(quoted(text))")
      }
      lines.append("      action: \(device.action.rawValue)")
      lines.append("      timeout: \(duration(device.timeout))")
      lines.append("      retries: \(device.retries)")
      lines.append("      delay: \(duration(device.delay))")
      lines.append("      random_delay_max: \(duration(device.randomDelayMax))")
    }
    if !fencing.levels.isEmpty {
      lines.append("  levels:")
      for (node, levels) in fencing.levels.sorted(by: { $0.key < $1.key }) {
        let text = levels.map { "[\($0.map(quoted).joined(separator: ", "))]" }.joined(separator: ", ")
        lines.append("    \(quoted(node)): [\(text)]")
      }
    }
    return lines
  }

  /// Every link of a member shares one port (the loader's model).
  static func addresses(_ links: [Endpoint]) -> String {
    let port = links.first?.port ?? ClusterSettings.defaultPort
    return "addresses: [\(links.map { quoted($0.host) }.joined(separator: ", "))], port: \(port)"
  }

  static func duration(_ value: Duration) -> String { "\(value.milliseconds)ms" }

  /// A YAML double-quoted scalar: safe for any text.
  static func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default:
        // Controls, and what YAML reads as a line break (NEL, LS, PS) or a BOM.
        if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
          || [0x2028, 0x2029, 0xFEFF].contains(scalar.value)
        {
          out += "\\u" + String(scalar.value, radix: 16).leftPadded(to: 4)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    String(repeating: "0", count: max(0, width - count)) + self
  }
}

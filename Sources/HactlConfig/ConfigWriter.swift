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
          + "mode: \(node.mode.rawValue) }")
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
      lines.append("    start: { timeout: \(duration(spec.start.timeout)) }")
      lines.append("    stop: { timeout: \(duration(spec.stop.timeout)) }")
      lines.append(
        "    monitor: { interval: \(duration(spec.monitor.interval)), timeout: \(duration(spec.monitor.timeout)) }")
      if let node = spec.preferredNode {
        lines.append("    prefer: { node: \(quoted(node)), score: \(quoted(spec.preferenceScore.description)) }")
      }
      lines.append("    stickiness: \(quoted(spec.stickiness.description))")
      lines.append("    migration_threshold: \(spec.migrationThreshold)")
    }
    return lines.joined(separator: "\n") + "\n"
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

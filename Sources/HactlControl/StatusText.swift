import Foundation
import HactlModel

/// `hactl status` for people: where everything runs, what fails and why.
public enum StatusText {
  /// Lines of a failed call's output shown under it (the JSON has all that
  /// the daemon kept).
  static let failureOutputLines = 12

  public static func render(_ status: ClusterStatus) -> String {
    var lines: [String] = []
    let leader = status.leader.map { "leader \($0)" } ?? "NO LEADER"
    lines.append("Cluster \(status.cluster), seen from \(status.localNode): term \(status.term), \(leader)")
    let quorum = status.quorum
    var quorumLine =
      "Quorum: \(quorum.quorate ? "yes" : "NO") (\(quorum.votes) of \(quorum.expectedVotes) votes, \(quorum.needed) needed"
      + (quorum.twoNode ? ", two-node mode)" : ")")
    if !quorum.waitingFor.isEmpty {
      quorumLine += ": wait_for_all: waiting to see \(quorum.waitingFor.joined(separator: ", ")) once"
    }
    lines.append(quorumLine)
    if let configuration = status.configuration {
      var line = "Configuration: version \(configuration.version)"
      if configuration.version == "0.0" { line += " (the file this daemon started from)" }
      if !configuration.behind.isEmpty { line += "; not yet on \(configuration.behind.joined(separator: ", "))" }
      if !configuration.differs.isEmpty {
        line += "; DIFFERENT TEXT on \(configuration.differs.joined(separator: ", ")) (started from other files)"
      }
      if !configuration.restartNeeded.isEmpty {
        line += "; takes effect at restart: \(configuration.restartNeeded.joined(separator: ", "))"
      }
      lines.append(line)
    }
    lines.append("")
    lines.append("Nodes:")
    lines += table(
      status.nodes.map { node in
        var notes: [String] = []
        if node.leader { notes.append("leader") }
        if node.state != .lost && !node.member && status.leader != nil { notes.append("not a member") }
        let down = node.links.filter { !$0.up }
        if node.state != .lost && !down.isEmpty {
          notes.append(down.map { "link \($0.link) (\($0.address)) down" }.joined(separator: ", "))
        }
        return [node.name, "id \(node.id)", node.kind.rawValue, node.state.rawValue, notes.joined(separator: ", ")]
      })
    let attributed = status.nodes.filter { !($0.attributes ?? [:]).isEmpty }
    if !attributed.isEmpty {
      lines += ["", "Node attributes:"]
      for node in attributed {
        let pairs = node.attributes!.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines.append("  \(node.name): \(pairs.joined(separator: " "))")
      }
    }
    lines.append("")
    if status.resources.isEmpty {
      lines.append("Resources: none configured")
    } else {
      lines.append("Resources:")
      lines += table(
        status.resources.map { resource in
          var state = resource.state.rawValue
          if let node = resource.node { state += " on \(node)" }
          if let promoted = resource.promotedOn {
            // A promotable clone: where it runs, and in which role.
            let unpromoted = resource.activeOn.filter { !promoted.contains($0) }
            state = resource.state.rawValue
            if !promoted.isEmpty { state += " Promoted on \(promoted.joined(separator: ", "))" }
            if !unpromoted.isEmpty {
              state += (promoted.isEmpty ? " " : ", ") + "Unpromoted on \(unpromoted.joined(separator: ", "))"
            }
          } else if resource.activeOn.count > 1 {
            state += " (active on \(resource.activeOn.joined(separator: ", ")))"
          }
          var notes: [String] = []
          if let note = resource.note { notes.append(note) }
          if !resource.failCounts.isEmpty {
            let counts = resource.failCounts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            notes.append("failures: " + counts.joined(separator: " "))
          }
          // Groups and clones at a glance: what each resource belongs to.
          var name = resource.id
          if let clone = resource.clone { name += " [\(clone)]" }
          if let group = resource.group { name += " (\(group))" }
          return [name, resource.agent, state, notes.joined(separator: "; ")]
        })
      let failures = status.resources.compactMap { resource in
        resource.lastFailure.map { (resource.id, $0) }
      }
      if !failures.isEmpty {
        lines.append("")
        lines.append("Last failures:")
        for (id, failure) in failures {
          lines.append(
            "  \(id): \(failure.action.rawValue) on \(failure.node) failed: \(failure.reason) at \(timestamp(failure.time))"
          )
          // The node that ran the call keeps what it printed; the daemon
          // filtered its control characters, this filters them again
          // because the answer may come from anything on the socket.
          let output = (failure.output ?? "").split(whereSeparator: \.isNewline).suffix(Self.failureOutputLines)
          if !output.isEmpty {
            lines.append("    its output (the end):")
            for line in output { lines.append("    | " + String(line).withoutControlCharacters) }
          }
        }
      }
    }
    if let fencing = status.fencing, !fencing.isEmpty {
      lines.append("")
      lines.append("Fencing:")
      for entry in fencing {
        var line = "  \(entry.node): \(entry.state.rawValue)"
        if let device = entry.device { line += " by \(device)" }
        if let level = entry.level, level > 0 { line += " (level \(level))" }
        if let milliseconds = entry.milliseconds, entry.state == .fenced { line += " in \(milliseconds) ms" }
        if let reason = entry.reason { line += ": " + reason.withoutControlCharacters }
        lines.append(line)
      }
    }
    if let traffic = status.traffic {
      let dropped =
        traffic.failedAuthentication + traffic.malformed + traffic.replayed + traffic.unknownSender
        + traffic.unsupported
      var line = "Packets at \(status.localNode): \(traffic.sent) sent, \(traffic.received) received"
      if dropped > 0 {
        line +=
          ", dropped: \(traffic.failedAuthentication) failed authentication, \(traffic.malformed) malformed, "
          + "\(traffic.replayed) replayed, \(traffic.unknownSender) from unknown senders"
        if traffic.unsupported > 0 { line += ", \(traffic.unsupported) from a newer version" }
      }
      if traffic.earlierBoot > 0 { line += "; \(traffic.earlierBoot) named an earlier boot of this node" }
      lines.append("")
      lines.append(line)
      if let key = traffic.key {
        lines.append(
          "Key \(key)" + (traffic.nextKey.map { ", next key \($0) loaded (rotation in progress)" } ?? ""))
      }
    }
    if let timing = status.timing {
      let lost = timing.peersLost == 1 ? "1 peer lost" : "\(timing.peersLost) peers lost"
      lines.append(
        "Timing at \(status.localNode): \(timing.wakeups) wake-ups, longest silence from a peer "
          + "\(timing.longestSilenceMilliseconds) ms, \(lost), \(timing.decisions) decisions "
          + "(\(timing.decisionsSkipped) inputs changed nothing); real-time: \(timing.realtime); memory: \(timing.memory)"
      )
    }
    return lines.joined(separator: "\n")
  }

  static func table(_ rows: [[String]]) -> [String] {
    guard let columns = rows.map(\.count).max() else { return [] }
    var widths = Array(repeating: 0, count: columns)
    for row in rows {
      for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    return rows.map { row in
      let cells = row.enumerated().map { index, cell in
        cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
      }
      let line = "  " + cells.joined(separator: "  ")
      return String(line.reversed().drop(while: { $0 == " " }).reversed())
    }
  }

  /// `hactl history`: one line per fencing, oldest first.
  public static func history(_ events: [FencingEvent]) -> String {
    guard !events.isEmpty else { return "No fencing in this node's history." }
    return events.map { event in
      var line = "\(timestamp(event.time))  \(event.node): \(event.outcome.rawValue)"
      if let device = event.device { line += " by \(device)" }
      if let level = event.level, level > 0 { line += " (level \(level))" }
      if let milliseconds = event.milliseconds { line += " in \(milliseconds) ms" }
      if let why = event.why { line += "; asked: \(why)" }
      line += "; leader \(event.by)"
      if let reason = event.reason { line += ": " + reason }
      return line.withoutControlCharacters
    }.joined(separator: "\n")
  }

  static func timestamp(_ seconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
  }

  /// The stable JSON form (`hactl status --json`).
  public static func json(_ status: ClusterStatus) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    guard let data = try? encoder.encode(status) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
  }
}

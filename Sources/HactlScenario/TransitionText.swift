import HactlModel
import HactlScheduler

/// A transition as operators read it: crm_simulate's summary lines, then,
/// when asked, the actions in order, where each instance goes and why, and
/// every score as its ledger.
public enum TransitionText {
  public static func render(_ transition: Transition, actions: Bool = false, scores: Bool = false) -> String {
    func name(_ node: NodeID?) -> String { node.map { transition.nodeNames[$0] ?? $0.description } ?? "nowhere" }
    var lines = ["Transition Summary:"]
    lines += transition.summary.isEmpty ? ["  (nothing to do)"] : transition.summary.map { "  \($0)" }
    if actions {
      lines += ["", "Actions:"]
      if transition.actions.isEmpty { lines.append("  (none)") }
      for (index, action) in transition.actions.enumerated() {
        var line = "  \(index + 1). \(action.kind.rawValue) \(action.instance) on \(name(action.node))"
        if !action.after.isEmpty { line += " after \(action.after.map { String($0 + 1) }.joined(separator: ", "))" }
        if !action.waitsFor.isEmpty {
          line += " (waits for \(action.waitsFor.map(\.description).joined(separator: ", ")) in flight)"
        }
        if let cause = action.cause { line += " \(cause)" }
        lines.append(line)
      }
    }
    if scores {
      lines += ["", "Placements:"]
      for placement in transition.placements {
        let location = placement.node == nil ? "stopped" : "\(name(placement.node)) (\(placement.role.rawValue))"
        lines.append("  \(placement.instance): \(location): \(placement.reason)")
      }
      lines += ["", "Scores:"]
      for (unit, ledgers) in transition.scores where !ledgers.isEmpty {
        for node in ledgers.keys.sorted() {
          lines.append("  \(unit) on \(name(node)): \(ledgers[node]!)")
        }
      }
      if !transition.promotion.isEmpty {
        lines += ["", "Promotion scores:"]
        for entry in transition.promotion {
          lines.append("  \(entry.instance) on \(name(entry.node)): \(entry.ledger)")
        }
      }
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

/// The same as JSON (`hactl simulate --json`), for scripts.
public struct TransitionReport: Codable, Sendable, Equatable {
  public struct Action: Codable, Sendable, Equatable {
    public var kind: String
    public var instance: String
    public var node: String
    public var after: [Int]
    public var waitsFor: [String]
    public var cause: String?
    enum CodingKeys: String, CodingKey {
      case kind, instance, node, after, cause
      case waitsFor = "waits_for"
    }
  }
  public struct Placement: Codable, Sendable, Equatable {
    public var instance: String
    public var node: String?
    public var role: String
    public var reason: String
  }
  public struct Term: Codable, Sendable, Equatable {
    public var reason: String
    public var score: String
  }
  public struct NodeScore: Codable, Sendable, Equatable {
    public var resource: String
    public var node: String
    public var score: String
    public var terms: [Term]
  }
  public var summary: [String]
  public var actions: [Action]
  public var placements: [Placement]
  public var scores: [NodeScore]
  public var promotion: [NodeScore]

  public init(_ transition: Transition) {
    func name(_ node: NodeID) -> String { transition.nodeNames[node] ?? node.description }
    func score(_ resource: String, _ node: NodeID, _ ledger: Ledger) -> NodeScore {
      NodeScore(
        resource: resource, node: name(node), score: ledger.total.description,
        terms: ledger.terms.map { Term(reason: $0.reason, score: $0.score.description) })
    }
    summary = transition.summary
    actions = transition.actions.map {
      Action(
        kind: $0.kind.rawValue, instance: $0.instance.description, node: name($0.node), after: $0.after,
        waitsFor: $0.waitsFor.map(\.description), cause: $0.cause)
    }
    placements = transition.placements.map {
      Placement(instance: $0.instance.description, node: $0.node.map(name), role: $0.role.rawValue, reason: $0.reason)
    }
    scores = transition.scores.flatMap { unit, ledgers in
      ledgers.keys.sorted().map { score(unit, $0, ledgers[$0]!) }
    }
    promotion = transition.promotion.map { score($0.instance.description, $0.node, $0.ledger) }
  }
}

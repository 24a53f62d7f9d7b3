import HactlModel

/// A score as the sum of named terms, so that every number the scheduler
/// acts on can be explained: "stickiness +100", "location prefer-db1 +50".
public struct Ledger: Sendable, Hashable, CustomStringConvertible {
  public struct Term: Sendable, Hashable {
    public var reason: String
    public var score: Score
  }
  public private(set) var terms: [Term] = []
  public private(set) var total: Score = .zero

  public init() {}

  public mutating func add(_ score: Score, _ reason: String) {
    terms.append(Term(reason: reason, score: score))
    total = total + score
  }

  public mutating func add(_ other: Ledger, prefix: String) {
    for term in other.terms { add(term.score, "\(prefix)\(term.reason)") }
  }

  public var allowed: Bool { total >= .zero }

  /// `150 = stickiness +100, location prefer-db1 +50`.
  public var description: String {
    guard !terms.isEmpty else { return "0" }
    let parts = terms.map { "\($0.reason) \(Self.signed($0.score))" }
    return "\(total) = \(parts.joined(separator: ", "))"
  }

  static func signed(_ score: Score) -> String {
    score >= .zero && score != .infinity ? "+\(score)" : (score == .infinity ? "+INFINITY" : score.description)
  }
}

/// A ledger per node.
public typealias NodeLedgers = [NodeID: Ledger]

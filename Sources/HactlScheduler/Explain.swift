import HactlModel

extension Transition {
  /// Why a resource (a primitive, group or clone) runs where it does or is
  /// stopped: where each of its instances goes and why, what is still to be
  /// done to it, and every node's score as the sum of its named terms
  /// (`hactl why`).
  public func explanation(of resource: ResourceID) -> String? {
    let mine = placements(of: resource)
    guard !mine.isEmpty else { return nil }
    func name(_ node: NodeID?) -> String { node.map { nodeNames[$0] ?? $0.description } ?? "no node" }
    var lines: [String] = []
    for placement in mine {
      if let node = placement.node {
        lines.append(
          "\(placement.instance) should run on \(name(node)) (\(placement.role.rawValue)): \(placement.reason).")
      } else {
        lines.append("\(placement.instance) should be stopped: \(placement.reason).")
      }
    }
    let instances = Set(mine.map(\.instance))
    let pending = summary.filter { line in instances.contains { line.contains(" \($0) ") } }
    lines.append(pending.isEmpty ? "Nothing is left to do for it." : "Still to do: " + pending.joined(separator: "; "))
    let units = Set(mine.map(\.unit.rawValue))
    for (unit, ledgers) in scores where units.contains(unit) || units.contains(where: { unit.hasPrefix($0 + ":") }) {
      guard !ledgers.isEmpty else { continue }
      lines.append("Scores of \(unit):")
      for node in ledgers.keys.sorted() { lines.append("  on \(name(node)): \(ledgers[node]!)") }
    }
    for entry in promotion where instances.contains(entry.instance) {
      lines.append("Promotion of \(entry.instance) on \(name(entry.node)): \(entry.ledger)")
    }
    return lines.joined(separator: "\n")
  }
}

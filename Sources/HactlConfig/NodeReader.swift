import HactlModel
import Yams

/// Walks a composed YAML tree, reading typed fields and collecting every error
/// with its location, so one `config check` run lists all problems at once.
package struct NodeReader {
  package let file: String
  /// Added to every line: a second YAML document in the same file.
  package var lineOffset = 0
  package private(set) var errors: [ConfigError] = []

  package init(file: String, lineOffset: Int = 0) {
    self.file = file
    self.lineOffset = lineOffset
  }

  package mutating func fail(at node: Node?, _ field: String, _ message: String) {
    let mark = node?.mark
    errors.append(
      ConfigError(
        file: file, line: (mark?.line ?? 1) + lineOffset, column: mark?.column ?? 1, field: field, message: message))
  }

  /// The fields of a mapping, keyed by name. Unknown and repeated keys are
  /// errors: a typo must never be silently ignored.
  package mutating func fields(of node: Node, at field: String, allowed: [String]) -> Fields? {
    guard let mapping = node.mapping else {
      fail(at: node, field, "expected a mapping (key: value lines), found \(node.kindName)")
      return nil
    }
    var values: [String: Node] = [:]
    for (keyNode, value) in mapping {
      guard let key = keyNode.scalar?.string else {
        fail(at: keyNode, field, "keys must be plain names")
        continue
      }
      let path = field.isEmpty ? key : "\(field).\(key)"
      if !allowed.contains(key) {
        let hint = Self.closest(to: key, in: allowed).map { " (did you mean '\($0)'?)" } ?? ""
        fail(at: keyNode, path, "unknown key '\(key)'\(hint)")
        continue
      }
      if values[key] != nil {
        fail(at: keyNode, path, "'\(key)' appears more than once")
        continue
      }
      values[key] = value
    }
    return Fields(node: node, path: field, values: values)
  }

  package mutating func list(_ node: Node, at field: String) -> [Node]? {
    guard let sequence = node.sequence else {
      fail(at: node, field, "expected a list (lines starting with '-'), found \(node.kindName)")
      return nil
    }
    return Array(sequence)
  }

  package mutating func string(_ node: Node, at field: String) -> String? {
    guard let scalar = node.scalar else {
      fail(at: node, field, "expected a single value, found \(node.kindName)")
      return nil
    }
    guard !scalar.string.isEmpty else {
      fail(at: node, field, "must not be empty")
      return nil
    }
    return scalar.string
  }

  package mutating func integer(_ node: Node, at field: String, in range: ClosedRange<Int>) -> Int? {
    guard let text = string(node, at: field) else { return nil }
    guard let value = Int(text) else {
      fail(at: node, field, "'\(text)' is not a whole number")
      return nil
    }
    guard range.contains(value) else {
      fail(at: node, field, "\(value) is out of range (\(range.lowerBound)...\(range.upperBound))")
      return nil
    }
    return value
  }

  package mutating func duration(_ node: Node, at field: String, allowZero: Bool) -> Duration? {
    guard let text = string(node, at: field) else { return nil }
    guard let value = DurationParsing.parse(text) else {
      fail(at: node, field, "'\(text)' is not a duration (examples: 200ms, 5s, 1.5s, 2m)")
      return nil
    }
    if !allowZero && value <= .zero {
      fail(at: node, field, "must be longer than zero")
      return nil
    }
    // Deadlines are instants plus durations: a longer one would wrap the
    // daemon's clock after years of uptime and fire at once, every time.
    if value > DurationParsing.longest {
      fail(at: node, field, "'\(text)' is longer than \(DurationParsing.format(DurationParsing.longest)) (365 days)")
      return nil
    }
    return value
  }

  package mutating func score(_ node: Node, at field: String) -> Score? {
    guard let text = string(node, at: field) else { return nil }
    guard let value = Score(parsing: text) else {
      fail(at: node, field, "'\(text)' is not a score (a whole number, INFINITY or -INFINITY)")
      return nil
    }
    return value
  }

  package mutating func boolean(_ node: Node, at field: String) -> Bool? {
    guard let text = string(node, at: field) else { return nil }
    switch text.lowercased() {
    case "true", "yes", "on": return true
    case "false", "no", "off": return false
    default:
      fail(at: node, field, "'\(text)' is not true or false")
      return nil
    }
  }

  package mutating func choice<T: RawRepresentable & CaseIterable>(
    _ node: Node, at field: String, as type: T.Type
  ) -> T? where T.RawValue == String {
    guard let text = string(node, at: field) else { return nil }
    guard let value = T(rawValue: text) else {
      let options = T.allCases.map(\.rawValue).joined(separator: ", ")
      fail(at: node, field, "'\(text)' is not one of: \(options)")
      return nil
    }
    return value
  }

  /// The allowed key nearest to a typo, when it is near enough to be a typo.
  package static func closest(to key: String, in allowed: [String]) -> String? {
    let scored = allowed.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
    guard let (best, distance) = scored, distance <= max(2, key.count / 3) else { return nil }
    return best
  }

  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
      var current = [i] + Array(repeating: 0, count: b.count)
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      }
      previous = current
    }
    return previous[b.count]
  }
}

/// A mapping's fields after key validation; `path` names it in errors.
package struct Fields {
  package let node: Node
  package let path: String
  package let values: [String: Node]

  package subscript(key: String) -> Node? { values[key] }
  package func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

  // Optional fields, read only when present: nil when absent or invalid
  // (the reader then holds the error).

  package func string(_ key: String, _ reader: inout NodeReader) -> String? {
    values[key].flatMap { reader.string($0, at: path(key)) }
  }

  package func integer(_ key: String, _ reader: inout NodeReader, in range: ClosedRange<Int>) -> Int? {
    values[key].flatMap { reader.integer($0, at: path(key), in: range) }
  }

  package func duration(_ key: String, _ reader: inout NodeReader, allowZero: Bool) -> Duration? {
    values[key].flatMap { reader.duration($0, at: path(key), allowZero: allowZero) }
  }

  package func boolean(_ key: String, _ reader: inout NodeReader) -> Bool? {
    values[key].flatMap { reader.boolean($0, at: path(key)) }
  }

  package func score(_ key: String, _ reader: inout NodeReader) -> Score? {
    values[key].flatMap { reader.score($0, at: path(key)) }
  }

  package func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ reader: inout NodeReader, as type: T.Type)
    -> T?
  where T.RawValue == String {
    values[key].flatMap { reader.choice($0, at: path(key), as: type) }
  }

  package func required(_ key: String, _ reader: inout NodeReader) -> Node? {
    if let value = values[key] { return value }
    reader.fail(at: node, path(key), "missing required key '\(key)'")
    return nil
  }
}

extension Node {
  package var kindName: String {
    switch self {
    case .scalar: return "a single value"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
  }
}

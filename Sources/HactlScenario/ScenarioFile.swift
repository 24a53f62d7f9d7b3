import HactlConfig
import HactlModel
import HactlScheduler
import Yams

/// A scheduler scenario: a configuration as hactl.yaml takes it, then,
/// after a line `---`, the cluster's state and events:
///
///     description: the active node fails
///     time: 2026-11-29T10:00:00Z
///     nodes: { b: { attributes: { master-drbd0: "10" } } }
///     state:
///       vip: { a: Started }
///       drbd0:0: { a: Promoted }
///     failures:
///       - { resource: vip, node: a, operation: monitor, count: 1, age: 10s }
///     events:
///       - node_down: a
///       - fail: vip:monitor:b
///       - attr: b:master-drbd0=100
///     operator:
///       - { id: cli-ban-vip-on-b, resource: vip, node: b, score: -INFINITY }
///
/// The same file runs under `hactl simulate`, so an operator can replay it.
public struct Scenario: Sendable {
  public var description: String?
  public var config: ClusterConfig
  public var snapshot: ClusterSnapshot
  public var events: [SimulationEvent]

  static let keys = ["description", "time", "nodes", "state", "failures", "events", "operator"]
  static let nodeKeys = ["online", "standby", "maintenance", "attributes"]
  static let failureKeys = ["resource", "node", "operation", "count", "age"]
  static let eventKeys = ["node_down", "node_up", "fail", "attr"]
  static let operatorKeys = ["id", "resource", "node", "score"]

  /// The state words: a role, or what the node reported.
  public static let states: [String: ObservedState] = [
    "Started": .running(.started, settled: true), "Starting": .running(.started, settled: false),
    "Unpromoted": .running(.unpromoted, settled: true), "Promoted": .running(.promoted, settled: true),
    "Promoting": .running(.promoted, settled: false), "Failed": .failed, "Stopping": .stopping, "Blocked": .blocked,
  ]

  /// The snapshot with the events applied: what the scheduler sees.
  public func input() throws(SnapshotError) -> SchedulerInput {
    var snapshot = snapshot
    for event in events { snapshot.apply(event) }
    return try snapshot.input(config)
  }

  public static func parse(_ text: String, file: String, relativeTo folder: String = "/") throws(ConfigErrors)
    -> Scenario
  {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let separator = lines.indices.dropFirst().first { lines[$0].trimmingTrailingSpaces == "---" }
    let configText = separator.map { lines[..<$0].joined(separator: "\n") + "\n" } ?? text
    let config = try ConfigLoader.parse(configText, file: file, relativeTo: folder)
    var scenario = Scenario(description: nil, config: config, snapshot: ClusterSnapshot(), events: [])
    guard let separator else { return scenario }
    let stateText = lines[(separator + 1)...].joined(separator: "\n")
    guard let root = try ConfigLoader.compose(stateText, file: file, lineOffset: separator + 1) else {
      return scenario
    }
    var reader = NodeReader(file: file, lineOffset: separator + 1)
    if let fields = reader.fields(of: root, at: "", allowed: keys) {
      scenario.read(fields, &reader)
    }
    guard reader.errors.isEmpty else { throw ConfigErrors(reader.errors) }
    return scenario
  }

  mutating func read(_ fields: Fields, _ reader: inout NodeReader) {
    description = fields.string("description", &reader)
    if let node = fields["time"], let text = reader.string(node, at: "time") {
      if let moment = WallClockText.parse(text) {
        snapshot.wallTime = moment
      } else {
        reader.fail(at: node, "time", "'\(text)' is not a moment in UTC such as 2026-11-29T10:00:00Z")
      }
    }
    let nodeNames = Set(config.nodes.map(\.name))
    func knownNode(_ node: Node, at path: String, _ reader: inout NodeReader) -> String? {
      guard let name = reader.string(node, at: path) else { return nil }
      guard nodeNames.contains(name) else {
        reader.fail(at: node, path, "'\(name)' is not a node of the configuration above")
        return nil
      }
      return name
    }
    if let nodes = fields["nodes"]?.mapping {
      for (key, value) in nodes {
        guard let name = knownNode(key, at: "nodes", &reader),
          let entry = reader.fields(of: value, at: "nodes.\(name)", allowed: Self.nodeKeys)
        else { continue }
        var state = ClusterSnapshot.NodeState()
        state.online = entry.boolean("online", &reader) ?? true
        state.standby = entry.boolean("standby", &reader)
        state.maintenance = entry.boolean("maintenance", &reader)
        for (name, text) in entry["attributes"]?.mapping ?? [:] {
          if let name = name.scalar?.string, let text = reader.string(text, at: "nodes.\(name).attributes") {
            state.attributes[name] = text
          }
        }
        snapshot.nodes[name] = state
      }
    }
    if let state = fields["state"]?.mapping {
      for (key, value) in state {
        guard let text = reader.string(key, at: "state"), let instance = InstanceID(parsing: text) else { continue }
        for (nodeKey, word) in value.mapping ?? [:] {
          guard let node = knownNode(nodeKey, at: "state.\(text)", &reader),
            let name = reader.string(word, at: "state.\(text).\(node)")
          else { continue }
          guard let observed = Self.states[name] else {
            let known = Self.states.keys.sorted().joined(separator: ", ")
            reader.fail(at: word, "state.\(text).\(node)", "'\(name)' is not a state (one of: \(known))")
            continue
          }
          snapshot.instances.append(.init(instance: instance, node: node, state: observed))
        }
      }
    }
    for (index, item) in (fields["failures"]?.sequence.map(Array.init) ?? []).enumerated() {
      let path = "failures[\(index)]"
      guard let entry = reader.fields(of: item, at: path, allowed: Self.failureKeys),
        let resource = entry.required("resource", &reader).flatMap({ reader.string($0, at: entry.path("resource")) }),
        let node = entry.required("node", &reader).flatMap({ knownNode($0, at: entry.path("node"), &reader) })
      else { continue }
      snapshot.failures.append(
        .init(
          resource: ResourceID(resource), node: node, operation: entry.string("operation", &reader) ?? "monitor",
          count: entry.integer("count", &reader, in: 1...Score.infinityValue) ?? 1,
          age: entry.duration("age", &reader, allowZero: true) ?? .zero))
    }
    for (index, item) in (fields["events"]?.sequence.map(Array.init) ?? []).enumerated() {
      let path = "events[\(index)]"
      guard let entry = reader.fields(of: item, at: path, allowed: Self.eventKeys),
        let (key, value) = entry.values.first
      else { continue }
      guard let text = reader.string(value, at: entry.path(key)) else { continue }
      do {
        switch key {
        case "node_down": events.append(.nodeDown(text))
        case "node_up": events.append(.nodeUp(text))
        case "fail": events.append(try SimulationEvent.fail(parsing: text))
        default: events.append(try SimulationEvent.attribute(parsing: text))
        }
      } catch {
        reader.fail(at: value, entry.path(key), error.message)
      }
    }
    for (index, item) in (fields["operator"]?.sequence.map(Array.init) ?? []).enumerated() {
      let path = "operator[\(index)]"
      guard let entry = reader.fields(of: item, at: path, allowed: Self.operatorKeys),
        let id = entry.required("id", &reader).flatMap({ reader.string($0, at: entry.path("id")) }),
        let resource = entry.required("resource", &reader).flatMap({ reader.string($0, at: entry.path("resource")) }),
        let node = entry.required("node", &reader).flatMap({ knownNode($0, at: entry.path("node"), &reader) }),
        let score = entry.required("score", &reader).flatMap({ reader.score($0, at: entry.path("score")) })
      else { continue }
      snapshot.operatorConstraints.append(
        LocationConstraint(id: id, resource: ResourceID(resource), score: score, node: node))
    }
  }
}

extension Substring {
  fileprivate var trimmingTrailingSpaces: Substring {
    var text = self
    while text.last == " " || text.last == "\t" || text.last == "\r" { text = text.dropLast() }
    return text
  }
}

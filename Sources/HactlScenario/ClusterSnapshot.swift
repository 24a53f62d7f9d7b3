import HactlModel
import HactlScheduler

/// A cluster's state as the scheduler needs it, by node name: from a
/// scenario file, or from what `hactl status --json` printed on a live
/// cluster. Events (a node going down, an operation failing, an attribute
/// set) change it before the scheduler runs, as crm_simulate's do.
public struct ClusterSnapshot: Sendable {
  public struct NodeState: Sendable, Equatable {
    public var online = true
    /// Nil: as configured.
    public var standby: Bool?
    public var maintenance: Bool?
    /// Transient attributes, over the configured ones.
    public var attributes: [String: String] = [:]
    public init() {}
  }

  public struct Instance: Sendable, Equatable {
    public var instance: InstanceID
    public var node: String
    public var state: ObservedState
  }

  public struct Failure: Sendable, Equatable {
    public var resource: ResourceID
    public var node: String
    public var operation: String
    public var count: Int
    public var age: Duration
  }

  public var nodes: [String: NodeState] = [:]
  public var instances: [Instance] = []
  public var failures: [Failure] = []
  public var operatorConstraints: [LocationConstraint] = []
  /// When the snapshot was taken (Unix seconds): constraints whose
  /// lifetime ended by then no longer apply. Nil: none has ended.
  public var wallTime: Int64?

  public init() {}

  public mutating func apply(_ event: SimulationEvent) {
    switch event {
    case .nodeDown(let node):
      nodes[node, default: NodeState()].online = false
      // Outside the partition a node is taken to run nothing (it was fenced
      // or the operator accepted the risk): what it ran is recovered.
      instances.removeAll { $0.node == node }
    case .nodeUp(let node):
      nodes[node, default: NodeState()].online = true
    case .attribute(let node, let name, let value):
      nodes[node, default: NodeState()].attributes[name] = value
    case .fail(let instance, let operation, let node):
      instances.removeAll { $0.instance == instance && $0.node == node }
      // Without fencing a failed stop may leave it running: it is blocked,
      // as pacemaker's on-fail=block. A failed start bans the node
      // (start-failure-is-fatal).
      instances.append(Instance(instance: instance, node: node, state: operation == "stop" ? .blocked : .failed))
      let count = operation == "start" ? Score.infinityValue : 1
      // Numbered as given: `input` keeps the number only for a
      // globally-unique clone, whose instances count failures of their own.
      let resource = ResourceID(instance.description)
      if let index = failures.firstIndex(where: {
        $0.resource == resource && $0.node == node && $0.operation == operation
      }) {
        failures[index].count = min(Score.infinityValue, failures[index].count + count)
        failures[index].age = .zero
      } else {
        failures.append(Failure(resource: resource, node: node, operation: operation, count: count, age: .zero))
      }
    }
  }

  /// The scheduler's input: every configured node, with this snapshot's
  /// state over the configuration's. Names that are not configured nodes
  /// are refused.
  public func input(_ config: ClusterConfig) throws(SnapshotError) -> SchedulerInput {
    let byName = Dictionary(config.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    func node(_ name: String) throws(SnapshotError) -> NodeSpec {
      guard let spec = byName[name] else {
        let known = config.nodes.map(\.name).joined(separator: ", ")
        throw SnapshotError("'\(name)' is not a node of this configuration (nodes: \(known))")
      }
      return spec
    }
    for name in nodes.keys.sorted() { _ = try node(name) }
    let facts = config.nodes.map { spec in
      let state = nodes[spec.name] ?? NodeState()
      return NodeFacts(
        id: spec.id, name: spec.name, online: state.online, standby: state.standby ?? (spec.mode == .standby),
        maintenance: state.maintenance ?? spec.maintenance,
        attributes: spec.attributes.merging(state.attributes) { _, transient in transient })
    }
    // `rsc:N` names a globally-unique clone's instance N, as its nodes
    // report it; an anonymous clone's failures count per primitive.
    func instance(_ given: InstanceID) throws(SnapshotError) -> InstanceID {
      if given.index == nil, let clone = config.clones.first(where: { $0.globallyUnique && $0.child == given.resource })
      {
        let last = clone.maximumInstances(nodes: config.nodes.count) - 1
        throw SnapshotError(
          "'\(given.resource)' runs as the instances of \(clone.id): name one, \(given.resource):0 to \(given.resource):\(last)"
        )
      }
      guard given.index == nil, let unique = config.uniqueInstance(given.resource) else { return given }
      return InstanceID(unique.child, unique.index)
    }
    func counted(_ id: ResourceID) -> ResourceID {
      guard config.uniqueInstance(id) == nil, let parsed = InstanceID(parsing: id.rawValue) else { return id }
      return parsed.resource
    }
    var observed: [ObservedInstance] = []
    for entry in instances {
      observed.append(ObservedInstance(try instance(entry.instance), on: try node(entry.node).id, entry.state))
    }
    var records: [FailureRecord] = []
    for failure in failures {
      records.append(
        FailureRecord(
          resource: counted(failure.resource), node: try node(failure.node).id, operation: failure.operation,
          count: failure.count, age: failure.age))
    }
    return SchedulerInput(
      config: config, nodes: facts, observed: observed, failures: records, operatorConstraints: operatorConstraints,
      wallTime: wallTime)
  }
}

public struct SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// crm_simulate's events, with its spellings on the command line.
public enum SimulationEvent: Sendable, Equatable {
  case nodeDown(String)
  case nodeUp(String)
  /// `RESOURCE:OPERATION:NODE`, e.g. `vip:monitor:db1`.
  case fail(InstanceID, operation: String, node: String)
  /// `NODE:NAME=VALUE`; an empty value removes the attribute.
  case attribute(node: String, name: String, value: String?)

  public static let operations = ["start", "stop", "monitor", "promote", "demote"]

  public static func fail(parsing text: String) throws(SnapshotError) -> SimulationEvent {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    // A clone instance has a colon of its own: drbd0:1:monitor:b.
    guard parts.count == 3 || parts.count == 4, let node = parts.last, !node.isEmpty else {
      throw SnapshotError("'\(text)' is not RESOURCE:OPERATION:NODE (e.g. vip:monitor:db1)")
    }
    let operation = parts[parts.count - 2]
    guard operations.contains(operation) else {
      throw SnapshotError("'\(operation)' in '\(text)' is not an operation (\(operations.joined(separator: ", ")))")
    }
    guard let instance = InstanceID(parsing: parts.dropLast(2).joined(separator: ":")) else {
      throw SnapshotError("'\(text)' does not start with a resource or RESOURCE:N")
    }
    return .fail(instance, operation: operation, node: node)
  }

  public static func attribute(parsing text: String) throws(SnapshotError) -> SimulationEvent {
    guard let colon = text.firstIndex(of: ":"), let equals = text[colon...].firstIndex(of: "="),
      colon != text.startIndex, text.index(after: colon) != equals
    else {
      throw SnapshotError("'\(text)' is not NODE:NAME=VALUE (e.g. db1:master-drbd0=100)")
    }
    let value = String(text[text.index(after: equals)...])
    return .attribute(
      node: String(text[..<colon]), name: String(text[text.index(after: colon)..<equals]),
      value: value.isEmpty ? nil : value)
  }
}

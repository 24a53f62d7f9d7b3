import HactlModel

/// One primitive's instance: the primitive itself, or its copy number
/// `index` inside a clone (pacemaker's `drbd0:1`).
public struct InstanceID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
  public var resource: ResourceID
  public var index: Int?

  public init(_ resource: ResourceID, _ index: Int? = nil) {
    self.resource = resource
    self.index = index
  }

  public var description: String { index.map { "\(resource):\($0)" } ?? resource.rawValue }

  /// `rsc` or `rsc:N`.
  public init?(parsing text: String) {
    if let colon = text.lastIndex(of: ":"), let number = Int(text[text.index(after: colon)...]), number >= 0 {
      self.init(ResourceID(String(text[..<colon])), number)
    } else if !text.isEmpty, !text.contains(":") {
      self.init(ResourceID(text))
    } else {
      return nil
    }
  }

  public static func < (lhs: InstanceID, rhs: InstanceID) -> Bool {
    lhs.resource != rhs.resource ? lhs.resource < rhs.resource : (lhs.index ?? -1) < (rhs.index ?? -1)
  }
}

/// What the scheduler knows of a configured node.
public struct NodeFacts: Sendable, Hashable {
  public var id: NodeID
  public var name: String
  /// A member of the quorate partition that hears the leader and has probed:
  /// it can be given resources.
  public var online: Bool
  public var standby: Bool
  /// Nothing is started or stopped there; what runs there stays.
  public var maintenance: Bool
  /// Permanent and transient attributes merged (transient wins); the
  /// scheduler adds `#uname` and `#id`.
  public var attributes: [String: String]

  public init(
    id: NodeID, name: String, online: Bool = true, standby: Bool = false, maintenance: Bool = false,
    attributes: [String: String] = [:]
  ) {
    self.id = id
    self.name = name
    self.online = online
    self.standby = standby
    self.maintenance = maintenance
    self.attributes = attributes
  }

  /// What rules see: the attributes with the node's name and id.
  public var ruleAttributes: [String: String] {
    var all = attributes
    all["#uname"] = name
    all["#id"] = String(id.rawValue)
    return all
  }
}

/// How an instance is found on a node, from that node's report.
public enum ObservedState: Sendable, Hashable {
  /// Running in this role (Started, or Unpromoted/Promoted for a promotable
  /// clone). `settled` false: the action that got it there is still in
  /// flight, so what is ordered after it must wait.
  case running(ResourceRunRole, settled: Bool)
  /// Failed, or in an unknown state: it must be stopped before it runs
  /// anywhere (a recovery if it is to run here again).
  case failed
  /// Being stopped, or taken away and not yet confirmed: it must be known
  /// stopped before it runs anywhere else.
  case stopping
  /// A stop failed: it may still run, and nothing may touch it until an
  /// operator cleans it up.
  case blocked
}

public struct ObservedInstance: Sendable, Hashable {
  public var instance: InstanceID
  public var node: NodeID
  public var state: ObservedState

  public init(_ instance: InstanceID, on node: NodeID, _ state: ObservedState) {
    self.instance = instance
    self.node = node
    self.state = state
  }
}

/// Failures of one primitive on one node for one operation; `age` is how
/// long ago the last one was, on the clock of the node that counted them.
public struct FailureRecord: Sendable, Hashable {
  public var resource: ResourceID
  public var node: NodeID
  public var operation: String
  public var count: Int
  public var age: Duration

  /// Its Promoted role failed there with on_fail: demote: it may run there,
  /// not be promoted there.
  public static let promotionFailed = "on-fail-demote"

  public init(resource: ResourceID, node: NodeID, operation: String = "monitor", count: Int, age: Duration = .zero) {
    self.resource = resource
    self.node = node
    self.operation = operation
    self.count = count
    self.age = age
  }
}

/// Everything the scheduler decides from: a pure value.
public struct SchedulerInput: Sendable, Equatable {
  public var config: ClusterConfig
  public var nodes: [NodeFacts]
  public var observed: [ObservedInstance]
  public var failures: [FailureRecord]
  /// Operator moves and bans, as location constraints (`cli-prefer-RES`,
  /// `cli-ban-RES-on-NODE`), in addition to the configuration's own.
  public var operatorConstraints: [LocationConstraint]
  /// Lost nodes that may still run what they ran and cannot be fenced:
  /// nothing they ran is started elsewhere.
  public var unfenced: [NodeID: Set<ResourceID>]
  /// The deciding node's wall clock (Unix seconds): location constraints
  /// with a lifetime no longer apply from their end. Nil: none ends.
  public var wallTime: Int64?

  public init(
    config: ClusterConfig, nodes: [NodeFacts], observed: [ObservedInstance] = [], failures: [FailureRecord] = [],
    operatorConstraints: [LocationConstraint] = [], unfenced: [NodeID: Set<ResourceID>] = [:], wallTime: Int64? = nil
  ) {
    self.wallTime = wallTime
    self.config = config
    self.nodes = nodes
    self.observed = observed
    self.failures = failures
    self.operatorConstraints = operatorConstraints
    self.unfenced = unfenced
  }

  /// The location constraints in force: the configuration's and the
  /// operator's, but those whose lifetime has ended.
  public var locations: [LocationConstraint] {
    (config.constraints.locations + operatorConstraints).filter { !$0.hasExpired(at: wallTime) }
  }

  /// Every configured node online, with its configured mode and attributes.
  public static func allOnline(_ config: ClusterConfig) -> [NodeFacts] {
    config.nodes.map {
      NodeFacts(
        id: $0.id, name: $0.name, standby: $0.mode == .standby, maintenance: $0.maintenance,
        attributes: $0.attributes)
    }
  }
}

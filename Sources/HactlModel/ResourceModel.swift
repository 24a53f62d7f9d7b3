/// The role a resource instance has or is wanted in, pacemaker's names.
/// A promotable instance that runs but is not promoted is Unpromoted; any
/// other running instance is Started. Ordered: Stopped < Started/Unpromoted
/// < Promoted.
public enum ResourceRunRole: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
  case stopped = "Stopped"
  case started = "Started"
  case unpromoted = "Unpromoted"
  case promoted = "Promoted"

  var rank: Int {
    switch self {
    case .stopped: return 0
    case .started, .unpromoted: return 1
    case .promoted: return 2
    }
  }

  public static func < (lhs: ResourceRunRole, rhs: ResourceRunRole) -> Bool { lhs.rank < rhs.rank }

  /// Pacemaker's older spellings (Master, Slave) are accepted as input.
  public init?(parsing text: String) {
    switch text.lowercased() {
    case "stopped": self = .stopped
    case "started": self = .started
    case "unpromoted", "slave": self = .unpromoted
    case "promoted", "master": self = .promoted
    default: return nil
    }
  }

  public var isActive: Bool { self != .stopped }
}

/// What an operation does when it fails (pacemaker's `on-fail`).
public enum FailurePolicy: String, Sendable, Hashable, Codable, CaseIterable {
  /// Pretend it succeeded.
  case ignore
  /// Stop the resource and start it again (on this node unless the
  /// migration threshold is reached).
  case restart
  /// Leave the resource as it is and touch it no more until cleaned up.
  case block
  /// Stop it and do not start it anywhere until cleaned up.
  case stop
  /// Demote a promoted instance and leave it unpromoted.
  case demote
  /// Move every resource off the node where it failed.
  case standby
  /// Power the node off before recovering (needs fencing).
  case fence
}

/// One operation's settings (OCF's `op` lines).
public struct OperationSpec: Sendable, Equatable {
  public var interval: Duration
  public var timeout: Duration
  /// Nil: the operation's default (pacemaker's: block for stop without
  /// fencing, restart otherwise).
  public var onFail: FailurePolicy?
  /// A monitor's depth (OCF_CHECK_LEVEL: 0, 10, 20... how thoroughly the
  /// agent looks); nil: the agent's default.
  public var depth: Int?
  public init(interval: Duration = .zero, timeout: Duration, onFail: FailurePolicy? = nil, depth: Int? = nil) {
    self.interval = interval
    self.timeout = timeout
    self.onFail = onFail
    self.depth = depth
  }
}

/// A group: members kept on one node, started in order, stopped in reverse.
public struct GroupSpec: Sendable, Equatable {
  public var id: ResourceID
  public var members: [ResourceID]
  public var meta: ResourceMeta

  public init(id: ResourceID, members: [ResourceID], meta: ResourceMeta = ResourceMeta()) {
    self.id = id
    self.members = members
    self.meta = meta
  }
}

/// A clone: one resource (a primitive or a group) run as several instances.
public struct CloneSpec: Sendable, Equatable {
  public var id: ResourceID
  /// The primitive or group cloned.
  public var child: ResourceID
  /// Nil: one instance per node.
  public var cloneMax: Int?
  public var cloneNodeMax: Int
  /// Ordered or colocated with another clone, an instance depends only on
  /// the instance of that clone on its own node, not on all of them.
  public var interleave: Bool
  /// Agents are told before and after instances start, stop, promote, demote.
  public var notify: Bool
  /// Each instance is a resource of its own (`rsc:N`, pacemaker's
  /// globally-unique): its own agent instance name, probe, fail counts and
  /// state on a node, so that several may run on one node; and, like a
  /// primitive, never on two nodes at once. False (anonymous): instances
  /// are interchangeable copies, one per node.
  public var globallyUnique: Bool
  public var promotable: Bool
  public var promotedMax: Int
  public var promotedNodeMax: Int
  public var meta: ResourceMeta

  public init(
    id: ResourceID, child: ResourceID, cloneMax: Int? = nil, cloneNodeMax: Int = 1, interleave: Bool = false,
    notify: Bool = false, globallyUnique: Bool = false, promotable: Bool = false, promotedMax: Int = 1,
    promotedNodeMax: Int = 1, meta: ResourceMeta = ResourceMeta()
  ) {
    self.id = id
    self.child = child
    self.cloneMax = cloneMax
    self.cloneNodeMax = cloneNodeMax
    self.interleave = interleave
    self.notify = notify
    self.globallyUnique = globallyUnique
    self.promotable = promotable
    self.promotedMax = promotedMax
    self.promotedNodeMax = promotedNodeMax
    self.meta = meta
  }
}

/// Meta attributes a group or clone sets for what it contains; nil leaves
/// each member's own.
public struct ResourceMeta: Sendable, Equatable {
  public var targetRole: ResourceRunRole?
  public var managed: Bool?
  public var stickiness: Score?

  public init(targetRole: ResourceRunRole? = nil, managed: Bool? = nil, stickiness: Score? = nil) {
    self.targetRole = targetRole
    self.managed = managed
    self.stickiness = stickiness
  }
}

/// A rule over node attributes (pacemaker's `rule` with expressions);
/// `#uname` is the node's name, `#id` its id.
public struct NodeRule: Sendable, Equatable {
  public enum Combination: String, Sendable, Equatable, CaseIterable {
    case and
    case or
  }
  public var combination: Combination
  public var expressions: [AttributeExpression]

  public init(combination: Combination = .and, expressions: [AttributeExpression]) {
    self.combination = combination
    self.expressions = expressions
  }

  public func matches(_ attributes: [String: String]) -> Bool {
    switch combination {
    case .and: return expressions.allSatisfy { $0.matches(attributes) }
    case .or: return expressions.contains { $0.matches(attributes) }
    }
  }

  public var description: String {
    expressions.map(\.description).joined(separator: " \(combination.rawValue) ")
  }
}

public struct AttributeExpression: Sendable, Equatable, CustomStringConvertible {
  public enum Operation: String, Sendable, Equatable, CaseIterable {
    case eq, ne, lt, gt, lte, gte, defined
    case notDefined = "not_defined"
  }
  public var attribute: String
  public var operation: Operation
  public var value: String?

  public init(attribute: String, operation: Operation, value: String? = nil) {
    self.attribute = attribute
    self.operation = operation
    self.value = value
  }

  /// Values that both read as numbers compare as numbers (pacemaker's
  /// `number` type), others as text.
  public func matches(_ attributes: [String: String]) -> Bool {
    let actual = attributes[attribute]
    switch operation {
    case .defined: return actual != nil
    case .notDefined: return actual == nil
    default: break
    }
    guard let actual, let value else { return false }
    let order: Int
    if let left = Double(actual), let right = Double(value) {
      order = left < right ? -1 : (left > right ? 1 : 0)
    } else {
      order = actual < value ? -1 : (actual > value ? 1 : 0)
    }
    switch operation {
    case .eq: return order == 0
    case .ne: return order != 0
    case .lt: return order < 0
    case .gt: return order > 0
    case .lte: return order <= 0
    case .gte: return order >= 0
    case .defined, .notDefined: return false
    }
  }

  public var description: String {
    value.map { "\(attribute) \(operation.rawValue) \($0)" } ?? "\(operation.rawValue) \(attribute)"
  }
}

/// Where a resource may or should run: a score on one node, or on every
/// node whose attributes match a rule.
public struct LocationConstraint: Sendable, Equatable {
  public var id: String
  public var resource: ResourceID
  public var score: Score
  public var node: String?
  public var rule: NodeRule?
  /// Only for the instances in this role (Promoted: where to promote).
  public var role: ResourceRunRole?
  /// No longer applies from this moment (Unix seconds, UTC): pacemaker's
  /// `crm_resource --lifetime`, a rule `date lt`.
  public var expires: Int64?

  public init(
    id: String, resource: ResourceID, score: Score, node: String? = nil, rule: NodeRule? = nil,
    role: ResourceRunRole? = nil, expires: Int64? = nil
  ) {
    self.id = id
    self.resource = resource
    self.score = score
    self.node = node
    self.rule = rule
    self.role = role
    self.expires = expires
  }

  /// Whether it has expired at `wallTime` (Unix seconds); with no clock
  /// (a scenario without a time), nothing expires.
  public func hasExpired(at wallTime: Int64?) -> Bool {
    guard let expires, let wallTime else { return false }
    return wallTime >= expires
  }
}

/// `resource` runs where `with` runs (positive score) or never there
/// (-INFINITY); `with` is placed first.
public struct ColocationConstraint: Sendable, Equatable {
  public var id: String
  public var resource: ResourceID
  public var with: ResourceID
  public var score: Score
  public var role: ResourceRunRole?
  public var withRole: ResourceRunRole?

  public init(
    id: String, resource: ResourceID, with: ResourceID, score: Score, role: ResourceRunRole? = nil,
    withRole: ResourceRunRole? = nil
  ) {
    self.id = id
    self.resource = resource
    self.with = with
    self.score = score
    self.role = role
    self.withRole = withRole
  }
}

public enum OrderAction: String, Sendable, Hashable, Codable, CaseIterable {
  case start, stop, promote, demote

  /// The action undone in reverse by a symmetrical order.
  public var inverse: OrderAction {
    switch self {
    case .start: return .stop
    case .stop: return .start
    case .promote: return .demote
    case .demote: return .promote
    }
  }
}

public enum OrderKind: String, Sendable, Hashable, Codable, CaseIterable {
  /// `then` waits for `first`, and cannot run while `first` cannot.
  case mandatory = "Mandatory"
  /// Ordered only when both happen in the same transition.
  case optional = "Optional"
  /// Never at the same time, in either order.
  case serialize = "Serialize"

  public init?(parsing text: String) {
    guard let kind = OrderKind.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) else {
      return nil
    }
    self = kind
  }
}

public struct OrderConstraint: Sendable, Equatable {
  public var id: String
  public var first: ResourceID
  public var firstAction: OrderAction
  public var then: ResourceID
  public var thenAction: OrderAction
  public var kind: OrderKind
  /// The inverse actions run in the reverse order (stop `then` before
  /// stopping `first`).
  public var symmetrical: Bool

  public init(
    id: String, first: ResourceID, firstAction: OrderAction = .start, then: ResourceID,
    thenAction: OrderAction? = nil, kind: OrderKind = .mandatory, symmetrical: Bool? = nil
  ) {
    self.id = id
    self.first = first
    self.firstAction = firstAction
    self.then = then
    self.thenAction = thenAction ?? firstAction
    self.kind = kind
    self.symmetrical = symmetrical ?? (kind != .serialize)
  }
}

/// Every constraint of the configuration, by kind.
public struct Constraints: Sendable, Equatable {
  public var locations: [LocationConstraint]
  public var colocations: [ColocationConstraint]
  public var orders: [OrderConstraint]

  public init(
    locations: [LocationConstraint] = [], colocations: [ColocationConstraint] = [], orders: [OrderConstraint] = []
  ) {
    self.locations = locations
    self.colocations = colocations
    self.orders = orders
  }

  public var isEmpty: Bool { locations.isEmpty && colocations.isEmpty && orders.isEmpty }
  public var count: Int { locations.count + colocations.count + orders.count }
}

extension ClusterConfig {
  public func group(_ id: ResourceID) -> GroupSpec? { groups.first { $0.id == id } }
  public func clone(_ id: ResourceID) -> CloneSpec? { clones.first { $0.id == id } }

  public func isPromotable(_ id: ResourceID) -> Bool { clone(id)?.promotable == true }

  /// Resources with clone instances counted: what the scheduler, the wire
  /// and status must carry.
  public var instanceCount: Int {
    var count = resources.count
    for clone in clones {
      let members = group(clone.child)?.members.count ?? 1
      count += members * (clone.maximumInstances(nodes: nodes.count) - 1)
    }
    return count
  }
}

extension CloneSpec {
  /// clone-max, or one per node (pacemaker's default).
  public func maximumInstances(nodes: Int) -> Int { cloneMax ?? max(1, nodes) }

  /// The resource that instance `index` of a globally-unique clone is on
  /// the nodes (pacemaker's `rsc:N`).
  public func instanceResource(_ index: Int) -> ResourceID { ResourceID("\(child.rawValue):\(index)") }
}

/// What nodes run: a primitive, or one instance of a globally-unique clone.
extension ClusterConfig {
  /// The definitions a node's executor holds, probes and reports: every
  /// primitive, but a globally-unique clone's primitive as one definition
  /// per instance, `rsc:0` to `rsc:N-1` (so `OCF_RESOURCE_INSTANCE` and
  /// an agent's state files differ between instances on one node).
  public var executedResources: [ResourceSpec] {
    let unique = clones.filter(\.globallyUnique)
    guard !unique.isEmpty else { return resources }
    let children = Set(unique.map(\.child))
    var result: [ResourceSpec] = []
    result.reserveCapacity(instanceCount)
    for spec in resources {
      guard children.contains(spec.id), let clone = unique.first(where: { $0.child == spec.id }) else {
        result.append(spec)
        continue
      }
      for index in 0..<clone.maximumInstances(nodes: nodes.count) {
        var instance = spec
        instance.id = clone.instanceResource(index)
        result.append(instance)
      }
    }
    return result
  }

  /// One of `executedResources` by its id.
  public func executedResource(_ id: ResourceID) -> ResourceSpec? {
    if let unique = uniqueInstance(id), var spec = resource(unique.child) {
      spec.id = id
      return spec
    }
    guard let spec = resource(id), !clones.contains(where: { $0.globallyUnique && $0.child == id }) else { return nil }
    return spec
  }

  /// The clone and instance number an id such as `rsc:2` names, when `rsc`
  /// is a globally-unique clone's primitive and 2 is below its clone_max.
  public func uniqueInstance(_ id: ResourceID) -> (clone: CloneSpec, child: ResourceID, index: Int)? {
    let text = id.rawValue
    guard let colon = text.lastIndex(of: ":"), let index = Int(text[text.index(after: colon)...]), index >= 0,
      String(index) == text[text.index(after: colon)...]
    else { return nil }
    let child = ResourceID(String(text[..<colon]))
    guard let clone = clones.first(where: { $0.globallyUnique && $0.child == child }),
      index < clone.maximumInstances(nodes: nodes.count)
    else { return nil }
    return (clone, child, index)
  }
}

/// What operators set with hactl ban, clear, migrate --pin, standby, online
/// and maintenance: kept in the configuration's `operator:` block, which
/// hactl writes (the rest of the file is the operator's own text), so that
/// it outlives any leader with the configuration's quorum guarantee.
public struct OperatorState: Sendable, Equatable {
  /// Location constraints named `cli-ban-RESOURCE-on-NODE` and
  /// `cli-prefer-RESOURCE`, as crm_resource names them.
  public var constraints: [LocationConstraint] = []
  public var standby: [String] = []
  public var maintenance = false
  public var maintenanceNodes: [String] = []
  /// Resources left unmanaged (maintenance of one resource).
  public var maintenanceResources: [ResourceID] = []
  /// Permanent node attributes agents set (`crm_attribute -l forever`),
  /// by node name, over the file's own `nodes[].attributes`.
  public var nodeAttributes: [String: [String: String]] = [:]
  /// Cluster properties agents keep (`crm_attribute --type crm_config`),
  /// such as the mysql agent's replication position.
  public var properties: [String: String] = [:]

  public init() {}

  public var isEmpty: Bool { self == OperatorState() }

  public static func banID(_ resource: ResourceID, _ node: String) -> String { "cli-ban-\(resource)-on-\(node)" }
  public static func preferID(_ resource: ResourceID) -> String { "cli-prefer-\(resource)" }
}

/// One change an operator asks for; the leader applies it to its own
/// configuration text, so two operators never undo each other's change.
public enum OperatorEdit: Sendable, Hashable, CustomStringConvertible {
  /// Until cleared, or until `until` (Unix seconds, UTC) when given.
  case ban(ResourceID, node: String, until: Int64? = nil)
  /// Prefer the node with INFINITY until cleared (`migrate --pin`), or
  /// until `until` (`migrate --lifetime`).
  case pin(ResourceID, node: String, until: Int64? = nil)
  /// Remove the bans and the pin of a resource (`hactl clear`).
  case clear(ResourceID)
  case standby(node: String)
  case online(node: String)
  /// Cluster-wide (no target), one node, or one resource.
  case maintenance(on: Bool, node: String?, resource: ResourceID?)
  /// Sets (or, with no value, removes) a permanent node attribute.
  case nodeAttribute(node: String, name: String, value: String?)
  /// Sets (or, with no value, removes) a cluster property.
  case property(name: String, value: String?)

  public func applied(to state: OperatorState) -> OperatorState {
    var state = state
    switch self {
    case .ban(let resource, let node, let until):
      let id = OperatorState.banID(resource, node)
      state.constraints.removeAll { $0.id == id }
      state.constraints.append(
        LocationConstraint(id: id, resource: resource, score: .minusInfinity, node: node, expires: until))
    case .pin(let resource, let node, let until):
      let id = OperatorState.preferID(resource)
      state.constraints.removeAll { $0.id == id }
      state.constraints.append(
        LocationConstraint(id: id, resource: resource, score: .infinity, node: node, expires: until))
    case .clear(let resource):
      state.constraints.removeAll { $0.resource == resource }
    case .standby(let node):
      if !state.standby.contains(node) { state.standby.append(node) }
    case .online(let node):
      state.standby.removeAll { $0 == node }
    case .maintenance(let on, let node, let resource):
      if let node {
        state.maintenanceNodes.removeAll { $0 == node }
        if on { state.maintenanceNodes.append(node) }
      } else if let resource {
        state.maintenanceResources.removeAll { $0 == resource }
        if on { state.maintenanceResources.append(resource) }
      } else {
        state.maintenance = on
      }
    case .nodeAttribute(let node, let name, let value):
      state.nodeAttributes[node, default: [:]][name] = value
      if state.nodeAttributes[node]?.isEmpty == true { state.nodeAttributes[node] = nil }
    case .property(let name, let value):
      state.properties[name] = value
    }
    return state
  }

  public var description: String {
    switch self {
    case .ban(let resource, let node, let until):
      return "ban \(resource) from \(node)" + (until.map { " until \(WallClockText.format($0))" } ?? "")
    case .pin(let resource, let node, let until):
      return "pin \(resource) to \(node)" + (until.map { " until \(WallClockText.format($0))" } ?? "")
    case .clear(let resource): return "clear the bans and pin of \(resource)"
    case .standby(let node): return "put \(node) in standby"
    case .online(let node): return "bring \(node) online"
    case .maintenance(let on, let node, let resource):
      let scope = node.map { "node \($0)" } ?? resource.map { "resource \($0)" } ?? "the cluster"
      return "turn maintenance \(on ? "on" : "off") for \(scope)"
    case .nodeAttribute(let node, let name, let value):
      return value.map { "set \(node)'s attribute \(name)=\($0)" } ?? "remove \(node)'s attribute \(name)"
    case .property(let name, let value):
      return value.map { "set the cluster property \(name)=\($0)" } ?? "remove the cluster property \(name)"
    }
  }
}

/// The whole cluster configuration, as validated from the configuration file.
public struct ClusterConfig: Sendable, Equatable {
  public var cluster: ClusterSettings
  public var nodes: [NodeSpec]
  public var witness: WitnessSpec?
  /// The primitives: every resource an agent runs, grouped or cloned or not.
  public var resources: [ResourceSpec]
  public var groups: [GroupSpec]
  public var clones: [CloneSpec]
  /// Constraints from the file and from the operator block.
  public var constraints: Constraints
  /// The `operator:` block as written (already applied to the fields above).
  public var operatorState = OperatorState()
  /// Fence devices and levels; none: no fencing.
  public var fencing = FencingConfig()

  public init(
    cluster: ClusterSettings, nodes: [NodeSpec], witness: WitnessSpec?, resources: [ResourceSpec],
    groups: [GroupSpec] = [], clones: [CloneSpec] = [], constraints: Constraints = Constraints()
  ) {
    self.cluster = cluster
    self.nodes = nodes
    self.witness = witness
    self.resources = resources
    self.groups = groups
    self.clones = clones
    self.constraints = constraints
  }

  /// Every member that votes: the nodes, then the witness.
  public var voters: [Member] { nodes.map(Member.init) + (witness.map { [Member($0)] } ?? []) }

  /// Links per member: every member has the same number (link i talks to link i).
  public var linkCount: Int { nodes.first?.links.count ?? witness?.links.count ?? 1 }

  public func member(named name: String) -> Member? { member { $0.name == name } }
  public func member(id: NodeID) -> Member? { member { $0.id == id } }

  /// Asked for every packet: found without building `voters`.
  func member(where matches: (Member) -> Bool) -> Member? {
    if let node = nodes.lazy.map(Member.init).first(where: matches) { return node }
    return witness.map(Member.init).flatMap { matches($0) ? $0 : nil }
  }
  public func resource(_ id: ResourceID) -> ResourceSpec? { resources.first { $0.id == id } }

  /// The votes expected: the sum of all votes unless configured.
  public var expectedVotes: Int {
    cluster.quorum.expectedVotes ?? voters.reduce(0) { $0 + $1.votes }
  }
}

public struct ClusterSettings: Sendable, Equatable {
  public var name: String
  public var keyFile: String
  public var port: UInt16
  public var heartbeatInterval: Duration
  public var deadTime: Duration
  public var quorum: QuorumOptions
  /// Where OCF agents are looked up (`resource.d/PROVIDER/TYPE` below it).
  public var ocfRoot: String
  /// Packets are encrypted (ChaCha20-Poly1305) unless an operator turns it
  /// off for a packet capture: then they are only authenticated (HMAC).
  public var encryption: Bool = true
  /// Real-time scheduling for hactld, so that busy processes never delay
  /// a heartbeat (corosync does the same); refused by the system, it is
  /// logged and the daemon runs on.
  public var realtime: Bool = true
  /// Lock hactld's memory, so that memory pressure never pages it out.
  public var lockMemory: Bool = true
  /// Cluster-wide maintenance mode: nothing is started, stopped or
  /// monitored anywhere; resources are left as they are.
  public var maintenance: Bool = false

  public init(
    name: String, keyFile: String, port: UInt16 = ClusterSettings.defaultPort,
    heartbeatInterval: Duration = ClusterSettings.defaultHeartbeatInterval,
    deadTime: Duration = ClusterSettings.defaultDeadTime,
    quorum: QuorumOptions = QuorumOptions(),
    ocfRoot: String = ClusterSettings.defaultOCFRoot
  ) {
    self.name = name
    self.keyFile = keyFile
    self.port = port
    self.heartbeatInterval = heartbeatInterval
    self.deadTime = deadTime
    self.quorum = quorum
    self.ocfRoot = ocfRoot
  }

  public static let defaultPort: UInt16 = 5405
  public static let defaultHeartbeatInterval: Duration = .milliseconds(200)
  public static let defaultDeadTime: Duration = .milliseconds(1000)
  public static let defaultOCFRoot = "/usr/lib/ocf"
}

public struct QuorumOptions: Sendable, Equatable {
  /// Overrides the sum of configured votes (corosync's `expected_votes`).
  public var expectedVotes: Int?
  public var noQuorumPolicy: NoQuorumPolicy
  /// A pair without a witness: each node alone keeps quorum (corosync's
  /// `two_node`). A survivor then takes over the lost node's resources only
  /// if that node is fenced, or the operator accepted the risk in words.
  public var twoNode: Bool
  /// After a start, no quorum until every member has been seen once.
  public var waitForAll: Bool
  /// The operator's written acceptance that, without fencing, both nodes of
  /// a two-node cluster may run the same resource at once.
  public var unfencedTakeover: Bool

  public init(
    expectedVotes: Int? = nil, noQuorumPolicy: NoQuorumPolicy = .stop, twoNode: Bool = false,
    waitForAll: Bool = false, unfencedTakeover: Bool = false
  ) {
    self.expectedVotes = expectedVotes
    self.noQuorumPolicy = noQuorumPolicy
    self.twoNode = twoNode
    self.waitForAll = waitForAll
    self.unfencedTakeover = unfencedTakeover
  }

  /// The sentence `unfenced_takeover` must hold, word for word.
  public static let unfencedTakeoverPhrase = "I accept that both nodes may run the same resource at once"
}

/// What a node does with its resources while its partition has no quorum.
public enum NoQuorumPolicy: String, Sendable, Equatable, CaseIterable, Codable {
  /// Stop every resource (the safe default).
  case stop
  /// Keep running what runs, start nothing.
  case freeze
  /// Behave as if quorate (only for clusters that fence).
  case ignore
}

/// A UDP endpoint: one link of a node.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
  public var host: String
  public var port: UInt16
  public init(host: String, port: UInt16) {
    self.host = host
    self.port = port
  }
  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public enum NodeMode: String, Sendable, Equatable, CaseIterable, Codable {
  case online
  /// Runs nothing; resources move away.
  case standby
}

public struct NodeSpec: Sendable, Equatable {
  public var name: String
  public var id: NodeID
  /// One endpoint per link (redundant rings), in link order.
  public var links: [Endpoint]
  public var votes: Int
  public var mode: NodeMode
  /// Nothing is started, stopped or monitored on it; its resources stay.
  public var maintenance: Bool
  /// Permanent node attributes, for rules.
  public var attributes: [String: String]

  public init(
    name: String, id: NodeID, links: [Endpoint], votes: Int = 1, mode: NodeMode = .online, maintenance: Bool = false,
    attributes: [String: String] = [:]
  ) {
    self.name = name
    self.id = id
    self.links = links
    self.votes = votes
    self.mode = mode
    self.maintenance = maintenance
    self.attributes = attributes
  }

  public init(name: String, id: NodeID, endpoint: Endpoint, votes: Int = 1, mode: NodeMode = .online) {
    self.init(name: name, id: id, links: [endpoint], votes: votes, mode: mode)
  }

  public var endpoint: Endpoint { links[0] }
}

public struct WitnessSpec: Sendable, Equatable {
  public var name: String
  public var id: NodeID
  public var links: [Endpoint]
  public var votes: Int

  public init(name: String, id: NodeID, links: [Endpoint], votes: Int = 1) {
    self.name = name
    self.id = id
    self.links = links
    self.votes = votes
  }

  public init(name: String, id: NodeID, endpoint: Endpoint, votes: Int = 1) {
    self.init(name: name, id: id, links: [endpoint], votes: votes)
  }

  public var endpoint: Endpoint { links[0] }
}

/// A voting member, node or witness, as membership sees it.
public struct Member: Sendable, Equatable {
  public enum Kind: String, Sendable, Equatable, Codable {
    case node
    case witness
  }
  public var id: NodeID
  public var name: String
  public var links: [Endpoint]
  public var votes: Int
  public var kind: Kind

  public var endpoint: Endpoint { links[0] }

  public init(id: NodeID, name: String, links: [Endpoint], votes: Int, kind: Kind) {
    self.id = id
    self.name = name
    self.links = links
    self.votes = votes
    self.kind = kind
  }

  public init(_ node: NodeSpec) {
    self.init(id: node.id, name: node.name, links: node.links, votes: node.votes, kind: .node)
  }
  public init(_ witness: WitnessSpec) {
    self.init(id: witness.id, name: witness.name, links: witness.links, votes: witness.votes, kind: .witness)
  }
}

/// Which program implements a resource, and by which convention it is
/// called: `ocf:PROVIDER:TYPE` (OCF resource agents), `lsb:NAME` (an init
/// script in /etc/init.d), `heartbeat:NAME` (a heartbeat v1 resource
/// script) or `script:PATH` (an admin's own script with OCF exit codes).
public struct AgentRef: Hashable, Sendable, CustomStringConvertible {
  public enum Standard: String, Sendable, Hashable {
    case ocf, lsb, heartbeat, script
  }
  public var standard: Standard
  /// OCF only; empty for the other classes.
  public var provider: String
  /// The agent's name, or for `script` its absolute path.
  public var type: String

  public init(standard: Standard = .ocf, provider: String, type: String) {
    self.standard = standard
    self.provider = provider
    self.type = type
  }

  public var description: String {
    standard == .ocf ? "ocf:\(provider):\(type)" : "\(standard.rawValue):\(type)"
  }

  /// Promote, demote and notify exist in the OCF convention only.
  public var hasRoles: Bool { standard == .ocf }

  /// Where init scripts are (`lsb:`), and heartbeat v1 scripts in the
  /// order they are looked up (`heartbeat:`).
  public static let initScripts = "/etc/init.d"
  public static let heartbeatScripts = ["/etc/ha.d/resource.d", "/etc/init.d"]

  /// The programs that may implement it, in the order they are looked up.
  public func programs(
    ocfRoot: String, initScripts: String = AgentRef.initScripts, heartbeatScripts: [String] = AgentRef.heartbeatScripts
  ) -> [String] {
    switch standard {
    case .ocf: return ["\(ocfRoot)/resource.d/\(provider)/\(type)"]
    case .lsb: return [initScripts + "/" + type]
    case .heartbeat: return heartbeatScripts.map { $0 + "/" + type }
    case .script: return [type]
    }
  }

  /// Parses an agent reference; returns a reason when it cannot.
  public static func parse(_ text: String) -> Result<AgentRef, AgentRefError> {
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    guard parts.count == 2, let standard = Standard(rawValue: parts[0]) else {
      return .failure(
        AgentRefError(
          reason: "unknown agent class in '\(text)' (ocf:PROVIDER:TYPE, lsb:NAME, heartbeat:NAME or script:PATH)"))
    }
    let rest = parts[1]
    switch standard {
    case .ocf:
      let names = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
      guard names.count == 2 else {
        return .failure(AgentRefError(reason: "'\(text)' must be ocf:PROVIDER:TYPE"))
      }
      for part in names where !isSafePathComponent(part) {
        return .failure(
          AgentRefError(reason: "'\(part)' in '\(text)' is not a valid provider or type name"))
      }
      return .success(AgentRef(standard: .ocf, provider: names[0], type: names[1]))
    case .lsb, .heartbeat:
      guard isSafePathComponent(rest) else {
        return .failure(AgentRefError(reason: "'\(rest)' in '\(text)' is not a valid script name"))
      }
      return .success(AgentRef(standard: standard, provider: "", type: rest))
    case .script:
      let components = rest.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
      guard rest.hasPrefix("/"), !components.isEmpty, components.allSatisfy({ isSafePathComponent(String($0)) })
      else {
        return .failure(
          AgentRefError(reason: "'\(rest)' in '\(text)' must be an absolute path without '..' or odd characters"))
      }
      return .success(AgentRef(standard: .script, provider: "", type: rest))
    }
  }

  /// Names that cannot escape the agent folder: letters, digits, `-`, `_`, `.`, not `.`/`..`.
  static func isSafePathComponent(_ text: String) -> Bool {
    guard !text.isEmpty, text != ".", text != ".." else { return false }
    return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
  }
}

public struct AgentRefError: Error, Equatable, Sendable {
  public var reason: String
}

public struct ResourceSpec: Sendable, Equatable {
  public var id: ResourceID
  public var agent: AgentRef
  /// Agent parameters in file order; passed as `OCF_RESKEY_name`.
  public var parameters: [(name: String, value: String)]
  public var start: OperationSpec
  public var stop: OperationSpec
  public var monitor: OperationSpec
  /// Promotable clones only; a promoted instance may have its own monitor.
  public var promote = OperationSpec(timeout: ResourceSpec.defaultOperationTimeout)
  public var demote = OperationSpec(timeout: ResourceSpec.defaultOperationTimeout)
  public var monitorPromoted: OperationSpec?
  /// A clone's notifications (pre and post notify), when it asks for them.
  public var notify = OperationSpec(timeout: ResourceSpec.defaultOperationTimeout)
  public var preferredNode: String?
  public var preferenceScore: Score
  public var stickiness: Score
  /// Failures on a node after which the resource is banned from it.
  public var migrationThreshold: Int
  /// Failures older than this are forgotten; nil: never.
  public var failureTimeout: Duration?
  /// The highest role the operator allows (Stopped keeps it stopped).
  public var targetRole: ResourceRunRole = .started
  /// False: the cluster neither starts nor stops it (is-managed=false).
  public var managed = true

  public init(
    id: ResourceID, agent: AgentRef, parameters: [(name: String, value: String)] = [],
    start: OperationSpec = OperationSpec(timeout: ResourceSpec.defaultOperationTimeout),
    stop: OperationSpec = OperationSpec(timeout: ResourceSpec.defaultOperationTimeout),
    monitor: OperationSpec = OperationSpec(
      interval: ResourceSpec.defaultMonitorInterval, timeout: ResourceSpec.defaultOperationTimeout),
    preferredNode: String? = nil, preferenceScore: Score = ResourceSpec.defaultPreferenceScore,
    stickiness: Score = ResourceSpec.defaultStickiness,
    migrationThreshold: Int = ResourceSpec.defaultMigrationThreshold
  ) {
    self.id = id
    self.agent = agent
    self.parameters = parameters
    self.start = start
    self.stop = stop
    self.monitor = monitor
    self.preferredNode = preferredNode
    self.preferenceScore = preferenceScore
    self.stickiness = stickiness
    self.migrationThreshold = migrationThreshold
  }

  public static let defaultOperationTimeout: Duration = .seconds(20)
  public static let defaultMonitorInterval: Duration = .seconds(10)
  public static let defaultPreferenceScore: Score = 50
  public static let defaultStickiness: Score = 100
  public static let defaultMigrationThreshold = 1

  public static func == (lhs: ResourceSpec, rhs: ResourceSpec) -> Bool {
    lhs.id == rhs.id && lhs.agent == rhs.agent
      && lhs.parameters.map(\.name) == rhs.parameters.map(\.name)
      && lhs.parameters.map(\.value) == rhs.parameters.map(\.value)
      && lhs.start == rhs.start && lhs.stop == rhs.stop && lhs.monitor == rhs.monitor
      && lhs.preferredNode == rhs.preferredNode && lhs.preferenceScore == rhs.preferenceScore
      && lhs.stickiness == rhs.stickiness && lhs.migrationThreshold == rhs.migrationThreshold
      && lhs.promote == rhs.promote && lhs.demote == rhs.demote && lhs.monitorPromoted == rhs.monitorPromoted
      && lhs.notify == rhs.notify
      && lhs.failureTimeout == rhs.failureTimeout && lhs.targetRole == rhs.targetRole && lhs.managed == rhs.managed
  }
}

import HactlMembership
import HactlModel

/// Who sent a packet, to whom, and where it sits in both boots' histories.
/// Authenticated with the payload, so a replayed or forged header is caught.
public struct PacketHeader: Sendable, Hashable {
  public var sender: NodeID
  /// The member it is meant for: a packet sent to one peer and replayed to
  /// another is refused there. Nil only in tests of the codec.
  public var receiver: NodeID?
  /// Changes on every daemon start: tells a restart from a late packet.
  public var incarnation: UInt64
  /// The receiver's boot incarnation as the sender last heard it (0: not
  /// heard yet). A receiver gives full weight only to packets naming its
  /// own current boot, so nothing recorded before it restarted counts after.
  public var receiverIncarnation: UInt64
  /// Strictly increasing within one incarnation.
  public var sequence: UInt64
  /// The sender's monotonic clock at sending (ns): echoed back for the lease,
  /// and used to recognise packets too old to prove the sender alive.
  public var sentAt: Int64

  public init(
    sender: NodeID, receiver: NodeID? = nil, incarnation: UInt64, receiverIncarnation: UInt64 = 0,
    sequence: UInt64, sentAt: Int64 = 0
  ) {
    self.sender = sender
    self.receiver = receiver
    self.incarnation = incarnation
    self.receiverIncarnation = receiverIncarnation
    self.sequence = sequence
    self.sentAt = sentAt
  }
}

public struct Packet: Sendable, Hashable {
  public var header: PacketHeader
  public var message: Message
  public init(header: PacketHeader, message: Message) {
    self.header = header
    self.message = message
  }
}

public enum Message: Sendable, Hashable {
  case heartbeat(Heartbeat)
  case voteRequest(VoteRequest)
  case voteReply(VoteReply)
  /// A configuration for a peer whose heartbeat showed an older one.
  case configOffer(ConfigDocument)
  /// An operator's new configuration, from the node it was asked on to the
  /// leader; sent again each interval until the leader answers.
  case configProposal(ConfigProposal)
  /// One datagram's share of something larger than a datagram: a heartbeat
  /// section, a configuration offer or proposal (`MessageParts`).
  case part(MessagePart)
}

/// The parts of a heartbeat that can grow with the cluster. Each travels
/// with a version of its own: a receiver that holds it says so in its
/// heartbeats, and the sender stops carrying it until it changes.
public enum Section: UInt8, Sendable, Hashable, CaseIterable, Comparable {
  case report = 1
  case directives = 2
  case requests = 3
  case answers = 4

  public static func < (lhs: Section, rhs: Section) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A version per section; a section absent is at version 0 (never sent).
/// Kept in place, one number per section, not in a dictionary: every
/// heartbeat sent and read carries two of these.
public struct SectionVersions: Sendable, Hashable {
  var numbers: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

  public init(_ versions: [Section: UInt64] = [:]) {
    for (section, number) in versions { self[section] = number }
  }

  public subscript(section: Section) -> UInt64 {
    get {
      switch section {
      case .report: return numbers.0
      case .directives: return numbers.1
      case .requests: return numbers.2
      case .answers: return numbers.3
      }
    }
    set {
      switch section {
      case .report: numbers.0 = newValue
      case .directives: numbers.1 = newValue
      case .requests: numbers.2 = newValue
      case .answers: numbers.3 = newValue
      }
    }
  }

  /// The sections at a version above 0, in section order.
  public var versions: [(section: Section, number: UInt64)] {
    Section.allCases.compactMap { self[$0] == 0 ? nil : ($0, self[$0]) }
  }

  public static func == (lhs: SectionVersions, rhs: SectionVersions) -> Bool { lhs.numbers == rhs.numbers }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(numbers.0)
    hasher.combine(numbers.1)
    hasher.combine(numbers.2)
    hasher.combine(numbers.3)
  }
}

/// What a part belongs to. Sections are numbered as `Section`.
public enum PartStream: UInt8, Sendable, Hashable {
  case report = 1
  case directives = 2
  case requests = 3
  case answers = 4
  case configOffer = 5
  case configProposal = 6

  public init(_ section: Section) { self = PartStream(rawValue: section.rawValue)! }
  public var section: Section? { Section(rawValue: rawValue) }
}

/// `count` parts with the same stream and id make one whole: the bytes of
/// a section (its heartbeat fields) or of a message's payload.
public struct MessagePart: Sendable, Hashable {
  public var stream: PartStream
  /// A section's version, or a digest of a message's payload: parts sent
  /// again for the same content combine with those that came before.
  public var id: UInt64
  public var index: Int
  public var count: Int
  public var bytes: [UInt8]

  public init(stream: PartStream, id: UInt64, index: Int, count: Int, bytes: [UInt8]) {
    self.stream = stream
    self.id = id
    self.index = index
    self.count = count
    self.bytes = bytes
  }
}

public struct ConfigProposal: Sendable, Hashable {
  /// The request's id at its origin (the sender), as for operator requests.
  public var id: UInt64
  /// A whole new configuration text, unless `edit` is set.
  public var text: String
  /// An operator's change (ban, standby...), applied by the leader to its
  /// own configuration text, never to an older copy.
  public var edit: OperatorEdit?
  public init(id: UInt64, text: String, edit: OperatorEdit? = nil) {
    self.id = id
    self.text = text
    self.edit = edit
  }
}

/// Sent by every member to every peer each interval, and at once when
/// something changes. Everything in it is a whole state, never a delta, so a
/// lost heartbeat is repaired by the next one. The sections (report,
/// directives, requests, answers) are whole states too, each with its own
/// version: a heartbeat carries only those its receiver does not hold yet,
/// and those too large for its datagram travel as parts just before it.
public struct Heartbeat: Sendable, Hashable {
  public var membership: MembershipBeat
  /// The sender's own resources; nil from a witness.
  public var report: NodeReport?
  /// Only from the leader: which node runs what.
  public var directives: Directives?
  /// Operator requests made on the sender, until the leader answers them.
  public var requests: [OperatorRequest]
  /// Only from the leader: answers to requests it has handled.
  public var answers: [RequestAnswer]
  /// The sender's durable configuration.
  public var config: ConfigStamp
  /// The version of each of the sender's sections as of this heartbeat.
  public var sections = SectionVersions()
  /// The sections whose values this packet carries; the others stand as the
  /// receiver last got them at `sections`' versions (by parts, or earlier).
  public var carried: Set<Section> = Set(Section.allCases)
  /// The versions of the receiver's sections the sender holds: the
  /// receiver stops carrying those to it.
  public var held = SectionVersions()

  public init(
    membership: MembershipBeat, report: NodeReport? = nil, directives: Directives? = nil,
    requests: [OperatorRequest] = [], answers: [RequestAnswer] = [],
    config: ConfigStamp = ConfigStamp(version: .initial, digest: 0)
  ) {
    self.membership = membership
    self.config = config
    self.report = report
    self.directives = directives
    self.requests = requests
    self.answers = answers
  }
}

extension Heartbeat {
  /// A section's value as a packet that does not carry it decodes.
  public mutating func clear(_ section: Section) {
    switch section {
    case .report: report = nil
    case .directives: directives = nil
    case .requests: requests = []
    case .answers: answers = []
    }
  }
}

/// The leader's decision: each resource instance that should run, where,
/// and in which role. A resource absent from the list must run nowhere; a
/// clone has one assignment per node it runs on.
public struct Directives: Sendable, Hashable {
  public var assignments: [Assignment] {
    didSet { index() }
  }
  /// Where each resource's first assignment is, and each (resource, node)'s
  /// (derived, so equality is unaffected).
  private var positions: [ResourceID: Int] = [:]
  private var placed: [PlacedKey: Int] = [:]

  private struct PlacedKey: Hashable {
    var resource: ResourceID
    var node: NodeID
  }

  /// Clone notifications to run now (pacemaker's pre and post notify),
  /// at most one per clone.
  public var notifications: [CloneNotification] = []

  public init(assignments: [Assignment], notifications: [CloneNotification] = []) {
    self.assignments = assignments
    self.notifications = notifications
    index()
  }

  private mutating func index() {
    positions = assignments.firstPositions(by: \.resource)
    placed = assignments.firstPositions { PlacedKey(resource: $0.resource, node: $0.node) }
  }

  public func assignment(for resource: ResourceID) -> Assignment? { positions[resource].map { assignments[$0] } }

  /// What `node` is told about `resource`: a clone is assigned to several.
  public func assignment(for resource: ResourceID, on node: NodeID) -> Assignment? {
    placed[PlacedKey(resource: resource, node: node)].map { assignments[$0] }
  }

  /// The notification `node` is to run for `resource` now, if any.
  public func notification(for resource: ResourceID, on node: NodeID) -> CloneNotification? {
    notifications.first { $0.resource == resource && $0.targets.contains(node) }
  }

  /// Nodes this leader has fenced, each with the boot it fenced: every
  /// member stops waiting for them, a new leader does not fence them again
  /// for the same loss, and a node that finds its own boot here learns it
  /// was fenced (at most one entry per member).
  public var fenced: [FencedBoot] = []

  public static func == (lhs: Directives, rhs: Directives) -> Bool {
    lhs.assignments == rhs.assignments && lhs.notifications == rhs.notifications && lhs.fenced == rhs.fenced
  }
  public func hash(into hasher: inout Hasher) {
    hasher.combine(assignments)
    hasher.combine(notifications)
    hasher.combine(fenced)
  }
}

/// A node's boot that a leader fenced.
public struct FencedBoot: Sendable, Hashable {
  public var node: NodeID
  public var boot: UInt64
  /// How the leader fenced it, for every node's history: the device (at
  /// most `deviceBytes`), its level, and how long it took.
  public var device: String?
  public var level: Int?
  public var milliseconds: Int64?

  public static let deviceBytes = 64

  public init(node: NodeID, boot: UInt64, device: String? = nil, level: Int? = nil, milliseconds: Int64? = nil) {
    self.node = node
    self.boot = boot
    self.device = device
    self.level = level
    self.milliseconds = milliseconds
  }
}

/// One round of a clone's notifications: every target runs the agent's
/// `notify` action once with these lists (OCF_RESKEY_CRM_meta_notify_*)
/// and reports the round's id back.
public struct CloneNotification: Sendable, Hashable {
  public enum Timing: UInt8, Sendable, Hashable {
    case pre = 0
    case post = 1
  }

  /// Which list of the notification an instance is in.
  public enum List: UInt8, Sendable, Hashable, CaseIterable {
    case start = 0
    case stop, promote, demote
    /// Active when the notifications of this change began.
    case active
    /// Promoted when the notifications of this change began.
    case promoted
  }

  public struct Entry: Sendable, Hashable {
    public var list: List
    public var instance: Int
    public var node: NodeID

    public init(_ list: List, instance: Int, node: NodeID) {
      self.list = list
      self.instance = instance
      self.node = node
    }
  }

  /// The clone's primitive, as nodes report it.
  public var resource: ResourceID
  /// Unique per leader (a token): a target runs each round once.
  public var id: UInt64
  public var timing: Timing
  /// start, stop, promote or demote.
  public var operation: AgentAction
  public var targets: [NodeID]
  public var entries: [Entry]

  public init(
    resource: ResourceID, id: UInt64, timing: Timing, operation: AgentAction, targets: [NodeID], entries: [Entry]
  ) {
    self.resource = resource
    self.id = id
    self.timing = timing
    self.operation = operation
    self.targets = targets
    self.entries = entries
  }

  /// Most entries a round carries: six lists of at most one instance per member.
  public static let maximumEntries = 6 * ClusterLimits.members
}

public struct Assignment: Sendable, Hashable {
  public var resource: ResourceID
  public var node: NodeID
  /// Identifies this decision: a node starts a resource at most once per
  /// token, so a failed start is retried only when the leader decides again.
  public var token: UInt64
  /// A promotable clone's instance to run Promoted there.
  public var promoted: Bool
  /// A clone's instance number (OCF_RESOURCE_INSTANCE `rsc:N`).
  public var instance: Int?

  public init(resource: ResourceID, node: NodeID, token: UInt64, promoted: Bool = false, instance: Int? = nil) {
    self.resource = resource
    self.node = node
    self.token = token
    self.promoted = promoted
    self.instance = instance
  }
}

public struct OperatorRequest: Sendable, Hashable {
  public enum Kind: Sendable, Hashable {
    /// Move now; `target` nil means "the best node other than the current one".
    case move(ResourceID, target: NodeID?)
    /// Forget a resource's failures and probe it again, on one node or
    /// (nil) on every node. Each node applies it when it sees it.
    case cleanup(ResourceID, node: NodeID?)
    /// Set (or, without a value, delete) a transient attribute of another
    /// node (`attrd_updater -N NODE`): that node applies it when it sees it.
    case attribute(node: NodeID, name: String, value: String?)
    /// `hactl fence`: fence a node now (with this action, or the devices'
    /// own); or, with `confirm`, take the operator's word that it is off
    /// (`stonith_admin --confirm`). The leader acts on it.
    case fence(node: NodeID, action: FenceAction?, confirm: Bool)

    /// Whether nodes apply it themselves (the leader only answers it).
    public var isAppliedByNodes: Bool {
      switch self {
      case .move, .fence: return false
      case .cleanup, .attribute: return true
      }
    }

    /// The node that applies it: nil for every node (and for a move).
    public var appliedOn: NodeID? {
      switch self {
      case .move, .fence: return nil
      case .cleanup(_, let node): return node
      case .attribute(let node, _, _): return node
      }
    }
  }
  /// Unique per origin node and incarnation.
  public var id: UInt64
  public var kind: Kind

  public init(id: UInt64, kind: Kind) {
    self.id = id
    self.kind = kind
  }
}

public struct RequestAnswer: Sendable, Hashable {
  public var origin: NodeID
  public var id: UInt64
  public var accepted: Bool
  public var message: String
  /// For a configuration change: the version a quorum now holds.
  public var configVersion: ConfigVersion?

  public init(origin: NodeID, id: UInt64, accepted: Bool, message: String, configVersion: ConfigVersion? = nil) {
    self.origin = origin
    self.id = id
    self.accepted = accepted
    self.message = String(message.utf8Prefix(ClusterLimits.answerBytes))
    self.configVersion = configVersion
  }
}

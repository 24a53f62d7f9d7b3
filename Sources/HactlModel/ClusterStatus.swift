/// The cluster as one node sees it: what `hactl status` prints and
/// `hactl status --json` emits. The JSON field names are the stable schema
/// documented in hactl(8); add fields, never rename or remove them.
public struct ClusterStatus: Sendable, Codable, Equatable {
  public static let schemaName = "hactl.status/1"

  public var schema: String
  public var cluster: String
  public var localNode: String
  public var term: UInt64
  public var leader: String?
  public var quorum: QuorumStatus
  public var nodes: [NodeStatus]
  public var resources: [ResourceStatus]
  /// Packet counters of the answering node; filled in by the daemon.
  public var traffic: TrafficStatus?
  /// The answering node's replicated configuration.
  public var configuration: ConfigurationStatus?
  /// How the answering daemon keeps time; filled in by the daemon.
  public var timing: TimingStatus?
  /// Fencing under way (known to the leader) and fencings done, as this
  /// node knows them; absent when there are none.
  public var fencing: [FencingStatus]?

  public init(
    cluster: String, localNode: String, term: UInt64, leader: String?, quorum: QuorumStatus,
    nodes: [NodeStatus], resources: [ResourceStatus]
  ) {
    self.schema = ClusterStatus.schemaName
    self.cluster = cluster
    self.localNode = localNode
    self.term = term
    self.leader = leader
    self.quorum = quorum
    self.nodes = nodes
    self.resources = resources
  }

  enum CodingKeys: String, CodingKey {
    case schema, cluster, term, leader, quorum, nodes, resources, traffic, configuration, timing, fencing
    case localNode = "local_node"
  }

  public func resource(_ id: String) -> ResourceStatus? { resources.first { $0.id == id } }
  public func node(_ name: String) -> NodeStatus? { nodes.first { $0.name == name } }
}

/// One node's fencing: under way (`fencing`), failing so far (`failing`,
/// with why), or done (`fenced`, with the device, level and time when the
/// answering node fenced it itself as leader).
public struct FencingStatus: Sendable, Codable, Equatable {
  public enum State: String, Sendable, Codable {
    case fencing, failing, fenced
  }
  public var node: String
  public var state: State
  public var device: String?
  public var level: Int?
  public var milliseconds: Int64?
  public var reason: String?

  public init(
    node: String, state: State, device: String? = nil, level: Int? = nil, milliseconds: Int64? = nil,
    reason: String? = nil
  ) {
    self.node = node
    self.state = state
    self.device = device
    self.level = level
    self.milliseconds = milliseconds
    self.reason = reason
  }
}

/// How the answering daemon keeps time since it started: how often it
/// woke by itself, what it heard, and what protects its timing.
public struct TimingStatus: Sendable, Codable, Equatable {
  /// Timer firings: an idle daemon wakes about once per heartbeat interval.
  public var wakeups: Int
  /// Peers declared lost (silent for the dead time).
  public var peersLost: Int
  /// The longest silence between two packets from a live peer: how close
  /// the dead time came to declaring it lost.
  public var longestSilenceMilliseconds: Int64
  /// "SCHED_RR priority N", "off", or "refused: why".
  public var realtime: String
  /// "locked", "off", or "refused: why".
  public var memory: String
  /// Inputs after which the node decided again, and those after which it
  /// did not need to (nothing a decision reads had changed).
  public var decisions: Int
  public var decisionsSkipped: Int

  public init(
    wakeups: Int, peersLost: Int, longestSilenceMilliseconds: Int64, realtime: String, memory: String,
    decisions: Int = 0, decisionsSkipped: Int = 0
  ) {
    self.wakeups = wakeups
    self.peersLost = peersLost
    self.longestSilenceMilliseconds = longestSilenceMilliseconds
    self.realtime = realtime
    self.memory = memory
    self.decisions = decisions
    self.decisionsSkipped = decisionsSkipped
  }

  enum CodingKeys: String, CodingKey {
    case wakeups, realtime, memory, decisions
    case decisionsSkipped = "decisions_skipped"
    case peersLost = "peers_lost"
    case longestSilenceMilliseconds = "longest_silence_ms"
  }
}

/// Which configuration the answering node runs, and who is not on it yet.
public struct ConfigurationStatus: Sendable, Codable, Equatable {
  /// `EPOCH.VERSION`: `0.0` is the file the daemon started from.
  public var version: String
  /// Live members whose last heartbeat showed an older version.
  public var behind: [String]
  /// Live members at the same version with a different text (they started
  /// from different files).
  public var differs: [String]
  /// Settings of the running configuration that take effect only when the
  /// daemons restart (membership, timings, quorum).
  public var restartNeeded: [String]

  public init(version: String, behind: [String] = [], differs: [String] = [], restartNeeded: [String] = []) {
    self.version = version
    self.behind = behind
    self.differs = differs
    self.restartNeeded = restartNeeded
  }

  enum CodingKeys: String, CodingKey {
    case version, behind, differs
    case restartNeeded = "restart_needed"
  }
}

/// What the answering node's transport saw since it started. Bad packets are
/// dropped and counted here, never passed on.
public struct TrafficStatus: Sendable, Codable, Equatable {
  public var sent: Int
  public var bytesSent: Int
  public var received: Int
  public var failedAuthentication: Int
  public var malformed: Int
  public var replayed: Int
  /// From no configured member, or meant for another one.
  public var unknownSender: Int
  /// Another format version, or a message kind this version does not know:
  /// a newer peer during an upgrade.
  public var unsupported: Int
  /// Authentic, but naming an earlier boot of this daemon: sent before the
  /// peer heard it restart (a few after each restart), or recorded and
  /// replayed. They count for nothing.
  public var earlierBoot: Int
  /// The key this node seals with, and the next one of a rotation (hex ids).
  public var key: String?
  public var nextKey: String?

  public init(
    sent: Int, bytesSent: Int = 0, received: Int, failedAuthentication: Int, malformed: Int, replayed: Int,
    unknownSender: Int, unsupported: Int = 0, earlierBoot: Int = 0, key: String? = nil, nextKey: String? = nil
  ) {
    self.sent = sent
    self.bytesSent = bytesSent
    self.received = received
    self.failedAuthentication = failedAuthentication
    self.malformed = malformed
    self.replayed = replayed
    self.unknownSender = unknownSender
    self.unsupported = unsupported
    self.earlierBoot = earlierBoot
    self.key = key
    self.nextKey = nextKey
  }

  enum CodingKeys: String, CodingKey {
    case sent, received, malformed, replayed, unsupported, key
    case failedAuthentication = "failed_authentication"
    case bytesSent = "bytes_sent"
    case unknownSender = "unknown_sender"
    case nextKey = "next_key"
    case earlierBoot = "earlier_boot"
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    sent = try container.decode(Int.self, forKey: .sent)
    bytesSent = try container.decodeIfPresent(Int.self, forKey: .bytesSent) ?? 0
    received = try container.decode(Int.self, forKey: .received)
    failedAuthentication = try container.decode(Int.self, forKey: .failedAuthentication)
    malformed = try container.decode(Int.self, forKey: .malformed)
    replayed = try container.decode(Int.self, forKey: .replayed)
    unknownSender = try container.decode(Int.self, forKey: .unknownSender)
    unsupported = try container.decodeIfPresent(Int.self, forKey: .unsupported) ?? 0
    earlierBoot = try container.decodeIfPresent(Int.self, forKey: .earlierBoot) ?? 0
    key = try container.decodeIfPresent(String.self, forKey: .key)
    nextKey = try container.decodeIfPresent(String.self, forKey: .nextKey)
  }
}

public struct QuorumStatus: Sendable, Codable, Equatable {
  public var quorate: Bool
  public var votes: Int
  public var expectedVotes: Int
  public var needed: Int
  /// wait_for_all: members not seen since start, holding quorum back.
  public var waitingFor: [String]
  public var twoNode: Bool

  public init(
    quorate: Bool, votes: Int, expectedVotes: Int, needed: Int, waitingFor: [String] = [], twoNode: Bool = false
  ) {
    self.quorate = quorate
    self.votes = votes
    self.expectedVotes = expectedVotes
    self.needed = needed
    self.waitingFor = waitingFor
    self.twoNode = twoNode
  }

  enum CodingKeys: String, CodingKey {
    case quorate, votes, needed
    case expectedVotes = "expected_votes"
    case waitingFor = "waiting_for"
    case twoNode = "two_node"
  }
}

public struct NodeStatus: Sendable, Codable, Equatable {
  /// `online`, `standby`, `lost` (not heard within the dead time) or `local`-only `unknown`.
  public enum State: String, Sendable, Codable, Equatable {
    case online
    case standby
    case lost
    case unknown
  }
  public var name: String
  public var id: UInt32
  public var kind: Member.Kind
  public var state: State
  public var leader: Bool
  public var member: Bool
  /// Each link to this member, as the answering node sees it (empty for
  /// the answering node itself).
  public var links: [LinkStatus]
  /// Its node attributes, permanent and transient (absent when none).
  public var attributes: [String: String]?

  public init(
    name: String, id: UInt32, kind: Member.Kind, state: State, leader: Bool, member: Bool, links: [LinkStatus] = []
  ) {
    self.name = name
    self.id = id
    self.kind = kind
    self.state = state
    self.leader = leader
    self.member = member
    self.links = links
  }
}

public struct LinkStatus: Sendable, Codable, Equatable {
  public var link: Int
  public var address: String
  public var up: Bool

  public init(link: Int, address: String, up: Bool) {
    self.link = link
    self.address = address
    self.up = up
  }
}

public struct ResourceStatus: Sendable, Codable, Equatable {
  /// Cluster-wide state: `started` (on `node`), `starting`, `stopping`,
  /// `stopped`, `failed`, `blocked`, or `unknown` before probes report.
  public var id: String
  public var agent: String
  public var state: ResourceRole
  public var node: String?
  /// Every node where it may be active: more than one only while a move or a
  /// recovery is under way.
  public var activeOn: [String]
  public var failCounts: [String: Int]
  public var lastFailure: NodeFailure?
  /// Why it does not run where it could, when the leader knows a reason.
  public var note: String?
  /// A promotable clone's instances: the nodes where it runs Promoted.
  public var promotedOn: [String]?
  /// The group it belongs to, and the clone that runs it (absent: none).
  public var group: String?
  public var clone: String?

  public init(
    id: String, agent: String, state: ResourceRole, node: String?, activeOn: [String],
    failCounts: [String: Int], lastFailure: NodeFailure?, note: String? = nil
  ) {
    self.note = note
    self.id = id
    self.agent = agent
    self.state = state
    self.node = node
    self.activeOn = activeOn
    self.failCounts = failCounts
    self.lastFailure = lastFailure
  }

  enum CodingKeys: String, CodingKey {
    case id, agent, state, node, note
    case activeOn = "active_on"
    case promotedOn = "promoted_on"
    case group, clone
    case failCounts = "fail_counts"
    case lastFailure = "last_failure"
  }
}

public struct NodeFailure: Sendable, Codable, Equatable {
  public var node: String
  public var action: AgentAction
  public var code: Int32
  public var reason: String
  public var time: Int64
  /// The end of what the failed call printed, when asked of the node that
  /// ran it (it stays there: heartbeats carry only the reason).
  public var output: String?

  public init(node: String, failure: ResourceFailure) {
    self.node = node
    self.action = failure.action
    self.code = failure.code
    self.reason = failure.reason
    self.time = failure.wallTime
  }
}

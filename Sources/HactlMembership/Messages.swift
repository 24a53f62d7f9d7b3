import HactlModel

/// The membership part of every heartbeat.
public struct MembershipBeat: Sendable, Hashable {
  public var term: UInt64
  /// Who the sender follows in `term` (itself when it leads).
  public var leader: NodeID?
  /// Peers the sender heard within the dead time.
  public var heard: [NodeID]
  /// Only from a leader: the members of its partition, to whom it grants the
  /// right to run resources. A node missing from this list must stop.
  public var members: [NodeID]

  public init(term: UInt64, leader: NodeID?, heard: [NodeID], members: [NodeID]) {
    self.term = term
    self.leader = leader
    self.heard = heard
    self.members = members
  }
}

public struct VoteRequest: Sendable, Hashable {
  public var term: UInt64
  public init(term: UInt64) { self.term = term }
}

public struct VoteReply: Sendable, Hashable {
  public var term: UInt64
  public var granted: Bool
  public init(term: UInt64, granted: Bool) {
    self.term = term
    self.granted = granted
  }
}

/// What must survive a restart so that a node never votes twice in one term.
public struct ElectionRecord: Sendable, Hashable, Codable {
  public var term: UInt64
  public var votedFor: NodeID?
  public init(term: UInt64 = 0, votedFor: NodeID? = nil) {
    self.term = term
    self.votedFor = votedFor
  }
}

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
  /// For each peer the sender hears, the latest send time (the peer's own
  /// clock, from the packet header) it received from it: proof to that peer
  /// that its packets get through (the lease).
  public var echoes: [Echo]

  public init(term: UInt64, leader: NodeID?, heard: [NodeID], members: [NodeID], echoes: [Echo] = []) {
    self.term = term
    self.leader = leader
    self.heard = heard
    self.members = members
    self.echoes = echoes
  }

  public struct Echo: Sendable, Hashable {
    public var node: NodeID
    public var stamp: Int64
    public init(node: NodeID, stamp: Int64) {
      self.node = node
      self.stamp = stamp
    }
  }

  /// The beat without its echoes: what a change is judged on.
  public var content: MembershipBeat {
    MembershipBeat(term: term, leader: leader, heard: heard, members: members)
  }
}

/// A vote request. A pre-vote asks "would you vote for me in `term`?"
/// without changing anything, so a node that cannot win (cut off, or
/// flapping) never raises the cluster's term.
public struct VoteRequest: Sendable, Hashable {
  public var term: UInt64
  public var preVote: Bool
  /// The candidate's configuration: a voter holding a newer one refuses, so a
  /// leader always has every configuration a quorum acknowledged (Raft's
  /// election restriction).
  public var configVersion: ConfigVersion
  public init(term: UInt64, preVote: Bool = false, configVersion: ConfigVersion = .initial) {
    self.term = term
    self.preVote = preVote
    self.configVersion = configVersion
  }
}

public struct VoteReply: Sendable, Hashable {
  public var term: UInt64
  public var granted: Bool
  public var preVote: Bool
  public init(term: UInt64, granted: Bool, preVote: Bool = false) {
    self.term = term
    self.granted = granted
    self.preVote = preVote
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

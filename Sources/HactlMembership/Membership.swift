import HactlModel

/// Who votes, who may lead, and the timings: membership's view of the config.
public struct MembershipSettings: Sendable, Equatable {
  public var local: NodeID
  public var votes: [NodeID: Int]
  /// Members that may lead: nodes, never the witness.
  public var candidates: Set<NodeID>
  public var expectedVotes: Int
  public var heartbeatInterval: Duration
  public var deadTime: Duration
  /// A pair without witness: one node alone is quorate (see `QuorumOptions`).
  public var twoNode: Bool
  /// After a start, no quorum until every member has been seen once.
  public var waitForAll: Bool
  /// Redundant links per member; a peer is lost only when all are silent.
  public var linkCount: Int

  public init(
    local: NodeID, votes: [NodeID: Int], candidates: Set<NodeID>, expectedVotes: Int,
    heartbeatInterval: Duration, deadTime: Duration, twoNode: Bool = false, waitForAll: Bool = false,
    linkCount: Int = 1
  ) {
    self.linkCount = linkCount
    self.local = local
    self.votes = votes
    self.candidates = candidates
    self.expectedVotes = expectedVotes
    self.heartbeatInterval = heartbeatInterval
    self.deadTime = deadTime
    self.twoNode = twoNode
    self.waitForAll = waitForAll
  }

  public init(config: ClusterConfig, local: NodeID) {
    var votes: [NodeID: Int] = [:]
    for member in config.voters { votes[member.id] = member.votes }
    self.init(
      local: local, votes: votes, candidates: Set(config.nodes.map(\.id)),
      expectedVotes: config.expectedVotes, heartbeatInterval: config.cluster.heartbeatInterval,
      deadTime: config.cluster.deadTime, twoNode: config.cluster.quorum.twoNode,
      waitForAll: config.cluster.quorum.waitForAll, linkCount: config.linkCount)
  }

  public var peers: [NodeID] { votes.keys.filter { $0 != local }.sorted() }

  /// A strict majority of the expected votes; one vote in two-node mode.
  public var votesNeeded: Int { twoNode ? 1 : expectedVotes / 2 + 1 }

  /// A vote request is refused while the voter heard a leader this recently.
  /// One interval shorter than the dead time, so that the voters of a crashed
  /// leader grant the survivor's request as soon as it can ask, while a live
  /// leader (heard every interval) is never deposed by a flapping node.
  var leaderStickiness: Duration { deadTime - heartbeatInterval }

  /// How long a node may keep running resources without fresh word from its
  /// leader (or, when it leads, from a quorum). Shorter than the dead time
  /// by two intervals, so that a node cut off from the others has begun
  /// stopping before they declare it lost and start its resources.
  public var lease: Duration { max(deadTime - heartbeatInterval * 2, deadTime / 2) }
}

public enum MembershipEvent: Sendable, Hashable {
  case peerJoined(NodeID, incarnation: UInt64)
  /// A peer came back with a new boot incarnation: what it ran is unknown.
  case peerRestarted(NodeID, incarnation: UInt64)
  case peerLost(NodeID)
  /// One link to a live peer went silent for the dead time, or came back.
  /// Nothing fails over for a link: the peer is lost only when all are.
  case linkDown(NodeID, link: Int)
  case linkUp(NodeID, link: Int)
  case quorumChanged(quorate: Bool, votes: Int)
  case leaderChanged(term: UInt64, leader: NodeID?)
  /// This node itself was silent longer than the dead time (stopped, starved):
  /// the others have declared it lost, so it treats everyone as lost too.
  case stalled(Duration)
  /// This node could not listen for a while, shorter than the dead time (a
  /// pause, a starved process, its clock jumping ahead): nothing proves that
  /// time passed for the others, so what waits for their leases to run out
  /// must wait that much longer.
  case hiccup(Duration)
}

public enum MembershipOutput: Sendable, Hashable {
  /// Must be durable before any output after it is performed.
  case persist(ElectionRecord)
  case sendVoteRequest(to: NodeID, VoteRequest)
  case sendVoteReply(to: NodeID, VoteReply)
  /// Time for the periodic heartbeat to every peer.
  case heartbeatDue
  case event(MembershipEvent)
}

public enum MembershipRole: String, Sendable, Hashable, Codable {
  case follower
  /// Asking for pre-votes: the term is unchanged until a majority agrees.
  case preCandidate
  case candidate
  case leader
}

/// Failure detection, quorum and leader election for one node: a pure state
/// machine. Inputs are messages and ticks, each with the current time; outputs
/// are messages to send, records to persist and events.
///
/// Guarantees (see docs/ARCHITECTURE.md): at most one leader per term, because
/// a vote is given once per term and persisted before it is sent; a leader
/// acts only while it hears a quorum; a node runs resources only while the
/// leader of its term lists it as a member.
public struct Membership: Sendable {
  public let settings: MembershipSettings
  public private(set) var record: ElectionRecord
  public private(set) var role: MembershipRole = .follower
  public private(set) var leader: NodeID?
  /// The members the current leader last granted (from its heartbeat).
  public private(set) var grantedMembers: [NodeID] = []
  public private(set) var quorate = false
  /// Set when this node knows the others have declared it lost (it stalled):
  /// it must run nothing until a leader lists it as a member again, even if
  /// it regains quorum before it hears that leader.
  public private(set) var excluded = false
  /// The longest silence between two packets from a peer that was alive:
  /// how near the dead time came to declaring a live peer lost.
  public private(set) var longestSilence: Duration = .zero
  /// This node's durable configuration version, kept up to date by its owner:
  /// candidates with an older one get no vote.
  public var configVersion: ConfigVersion = .initial

  var peers: [NodeID: PeerLiveness] = [:]
  var leaderContact: Instant?
  /// Whether this node has followed or led anyone since it started: once
  /// it has, being without a leader means its lease is gone.
  public private(set) var hasHadLeader = false
  var votesGranted: Set<NodeID> = []
  var lastVoteRequest: Instant?
  var electionNotBefore: Instant
  var lastHeartbeat: Instant?
  var lastInput: Instant?
  /// Peers heard at least once since this daemon started (wait_for_all).
  var seenSinceStart: Set<NodeID> = []

  struct PeerLiveness: Sendable {
    var lastHeard: Instant?
    var incarnation: UInt64?
    var alive = false
    /// The send time (peer's clock) of its latest accepted packet, echoed back.
    var stamp: Int64?
    /// The latest of our own stamps this peer echoed: when we last sent
    /// something it received. Our clock, so comparable with `now`.
    var echoOfOurs: Instant?
    /// Per link: when we last heard a new packet on it, whether it is up,
    /// and the newest (incarnation, sequence) seen there, so that a replayed
    /// packet cannot keep a dead link looking alive.
    var linkHeard: [Instant?] = []
    var linkUp: [Bool] = []
    var linkNewest: [(UInt64, UInt64)] = []
  }

  public init(settings: MembershipSettings, record: ElectionRecord, now: Instant) {
    self.settings = settings
    self.record = record
    // Give running peers two intervals to announce their leader before we
    // stand for election ourselves.
    self.electionNotBefore = now + settings.heartbeatInterval * 2
    for peer in settings.peers {
      var state = PeerLiveness()
      state.linkHeard = Array(repeating: nil, count: settings.linkCount)
      state.linkUp = Array(repeating: false, count: settings.linkCount)
      state.linkNewest = Array(repeating: (0, 0), count: settings.linkCount)
      peers[peer] = state
    }
  }

  // MARK: Queries

  public var term: UInt64 { record.term }
  public var isLeader: Bool { role == .leader }
  public var isCandidateEligible: Bool { settings.candidates.contains(settings.local) && !candidacyWithdrawn }

  /// Set while this node must not lead: it must be fenced itself, and a
  /// leader cannot fence itself. It stands for no election, and a leader
  /// steps down, so that another node leads and fences it.
  public private(set) var candidacyWithdrawn = false

  public mutating func withdrawCandidacy(now: Instant) -> [MembershipOutput] {
    guard !candidacyWithdrawn else { return [] }
    candidacyWithdrawn = true
    switch role {
    case .leader: return stepDown(now: now)
    case .preCandidate, .candidate:
      role = .follower
      return []
    case .follower: return []
    }
  }

  /// Stands again, at once if an election is due (so that no tick is
  /// needed at a moment already past).
  public mutating func restoreCandidacy(now: Instant) -> [MembershipOutput] {
    guard candidacyWithdrawn else { return [] }
    candidacyWithdrawn = false
    return electionStep(now: now)
  }

  public func isAlive(_ peer: NodeID) -> Bool {
    peer == settings.local || peers[peer]?.alive == true
  }

  public func incarnation(of peer: NodeID) -> UInt64? { peers[peer]?.incarnation }

  /// Whether each link to `peer` is up (heard within the dead time).
  public func links(of peer: NodeID) -> [Bool] { peers[peer]?.linkUp ?? [] }

  /// A packet arrived on `link`; call before replay filtering, since the
  /// same packet arrives once per link and each copy proves its link.
  public mutating func heard(
    from peer: NodeID, onLink link: Int, incarnation: UInt64, sequence: UInt64, now: Instant
  ) -> [MembershipOutput] {
    guard var state = peers[peer], link >= 0, link < state.linkHeard.count else { return [] }
    guard (incarnation, sequence) > state.linkNewest[link] else { return [] }
    state.linkNewest[link] = (incarnation, sequence)
    state.linkHeard[link] = now
    var outputs: [MembershipOutput] = []
    if !state.linkUp[link] {
      state.linkUp[link] = true
      if state.alive && settings.linkCount > 1 { outputs.append(.event(.linkUp(peer, link: link))) }
    }
    peers[peer] = state
    return outputs
  }

  /// The latest moment (our clock) at which we sent something `peer` has
  /// received and told us about: everything we sent before it, it has seen
  /// or will never accept (the replay filter drops older packets).
  public func echo(from peer: NodeID) -> Instant? { peers[peer]?.echoOfOurs }

  /// Peers heard within the dead time.
  public var alivePeers: [NodeID] { peers.compactMap { $0.value.alive ? $0.key : nil }.sorted() }

  /// Members not seen once since start, while wait_for_all holds quorum back.
  public var waitingFor: [NodeID] {
    guard settings.waitForAll else { return [] }
    return settings.peers.filter { !seenSinceStart.contains($0) }
  }

  /// Votes of this node and every live peer.
  public var partitionVotes: Int {
    ([settings.local] + alivePeers).reduce(0) { $0 + (settings.votes[$1] ?? 0) }
  }

  /// Whether this node may run resources now: it leads a quorate partition, or
  /// it follows a leader of its term that heard from it and lists it.
  ///
  /// The lease is a round trip: a follower counts only from its own packet
  /// that the leader echoed back, and a leader only from its own packets that
  /// a quorum echoed. So the right ends, on this node's own clock, at least
  /// `deadTime - lease` before the others may act on its silence, whichever
  /// direction of the network failed.
  public func mayRunResources(now: Instant) -> Bool {
    guard quorate, !excluded else { return false }
    if role == .leader {
      // Asked at every decision: count without building sets.
      var votes = settings.votes[settings.local] ?? 0
      for (peer, state) in peers where state.echoOfOurs.map({ now - $0 <= settings.lease }) == true {
        votes += settings.votes[peer] ?? 0
      }
      return votes >= settings.votesNeeded
    }
    guard role == .follower, let leader, let contact = leaderContact, now - contact <= settings.lease,
      let echo = peers[leader]?.echoOfOurs, now - echo <= settings.lease
    else { return false }
    return grantedMembers.contains(settings.local)
  }

  /// The members this node grants the right to run resources: only while it
  /// leads and holds its own quorum lease. Followers read an empty list as
  /// "the leader may have lost quorum" and apply the no-quorum policy.
  public func members(now: Instant) -> [NodeID] {
    role == .leader && mayRunResources(now: now) ? [settings.local] + alivePeers : []
  }

  /// The membership part of this node's next heartbeat.
  public func beat(now: Instant) -> MembershipBeat {
    let echoes = alivePeers.compactMap { peer in
      peers[peer]?.stamp.map { MembershipBeat.Echo(node: peer, stamp: $0) }
    }
    return MembershipBeat(
      term: record.term, leader: leader, heard: alivePeers, members: members(now: now), echoes: echoes)
  }

  // MARK: Inputs

  /// Periodic input: failure detection, heartbeats, elections, step-down.
  public mutating func tick(now: Instant) -> [MembershipOutput] {
    var outputs = noteInput(now: now)
    for id in peers.keys.sorted() {
      guard let peer = peers[id], peer.alive else { continue }
      if let heard = peer.lastHeard, now - heard > settings.deadTime {
        peers[id]?.alive = false
        outputs.append(.event(.peerLost(id)))
      }
    }
    outputs += updateQuorum()
    for id in peers.keys.sorted() {
      guard var state = peers[id] else { continue }
      for link in state.linkUp.indices where state.linkUp[link] {
        if let heard = state.linkHeard[link], now - heard > settings.deadTime {
          state.linkUp[link] = false
          if state.alive && settings.linkCount > 1 { outputs.append(.event(.linkDown(id, link: link))) }
        }
      }
      peers[id] = state
    }
    if role == .leader && !quorate {
      outputs += stepDown(now: now)
    }
    if let contact = leaderContact, role == .follower, leader != nil,
      now - contact > settings.deadTime
    {
      leader = nil
      grantedMembers = []
      outputs.append(.event(.leaderChanged(term: record.term, leader: nil)))
    }
    outputs += electionStep(now: now)
    if nextHeartbeat.map({ now >= $0 }) ?? true {
      lastHeartbeat = now
      outputs.append(.heartbeatDue)
    }
    return outputs
  }

  /// Any authenticated packet from a peer proves it alive; call this first.
  /// `accepted` is false for a packet too old to count (see `isStale`): the
  /// caller must then drop it.
  public mutating func heard(from peer: NodeID, incarnation: UInt64, sentAt: Int64, now: Instant)
    -> (outputs: [MembershipOutput], accepted: Bool)
  {
    var outputs = noteInput(now: now)
    guard var state = peers[peer] else { return (outputs, false) }
    if state.incarnation == incarnation, isStale(sentAt, from: state) { return (outputs, false) }
    if let known = state.incarnation, known != incarnation {
      outputs.append(.event(.peerRestarted(peer, incarnation: incarnation)))
    } else if !state.alive {
      outputs.append(.event(.peerJoined(peer, incarnation: incarnation)))
    }
    if state.incarnation != incarnation {
      state.stamp = nil
      state.echoOfOurs = nil
    } else if state.alive, let last = state.lastHeard, now - last > longestSilence {
      longestSilence = now - last
    }
    state.incarnation = incarnation
    state.lastHeard = now
    state.alive = true
    state.stamp = max(state.stamp ?? .min, sentAt)
    peers[peer] = state
    seenSinceStart.insert(peer)
    outputs += updateQuorum()
    outputs += answerPeerHeartbeat(now: now)
    return (outputs, true)
  }

  /// A packet from a lost peer revives it only if it was sent at least a
  /// dead time after the last one we accepted, by the peer's own clock: that
  /// is, after we could have declared it lost. An older packet (delayed in
  /// the network, or queued while we were stalled) proves nothing about now.
  func isStale(_ sentAt: Int64, from state: PeerLiveness) -> Bool {
    guard !state.alive, let last = state.stamp else { return false }
    return sentAt &- last < settings.deadTime.nanosecondsClamped
  }

  public mutating func receive(_ beat: MembershipBeat, from peer: NodeID, now: Instant)
    -> [MembershipOutput]
  {
    guard var state = peers[peer] else { return [] }
    if let echo = beat.echoes.first(where: { $0.node == settings.local }) {
      let ours = Instant(nanoseconds: echo.stamp)
      // An echo from the future (a clock that jumped back) proves nothing.
      if ours <= now { state.echoOfOurs = max(state.echoOfOurs ?? ours, ours) }
    }
    peers[peer] = state
    var outputs: [MembershipOutput] = []
    // A higher term is adopted (and a leader steps down): with pre-votes,
    // terms rise only through elections a majority agreed to, so this
    // cannot be abused by a flapping node, and it frees a node that raised
    // its term while cut off from a leader it cannot depose. But a follower
    // that hears its leader takes a higher term only from that term's
    // leader, as it refuses vote requests (leader stickiness): a
    // candidate's heartbeat took followers away from a leader whose lease
    // they were still renewing, and the candidate won with their votes and
    // started a resource the old leader still ran (chaos seed 1840222).
    if beat.term > record.term && (beat.leader == peer || !followsLiveLeader(now: now)) {
      outputs += adopt(term: beat.term)
    }
    guard beat.leader == peer, settings.candidates.contains(peer), beat.term == record.term else { return outputs }
    if role == .leader {
      // Two leaders in one term cannot happen (one vote per term); if a bug
      // ever made it so, both step down rather than both acting.
      outputs += stepDown(now: now)
      return outputs
    }
    if leader != peer {
      leader = peer
      outputs.append(.event(.leaderChanged(term: record.term, leader: peer)))
    }
    role = .follower
    votesGranted = []
    leaderContact = now
    hasHadLeader = true
    grantedMembers = beat.members
    if beat.members.contains(settings.local) { excluded = false }
    return outputs
  }

  /// Whether this node follows another node as leader and heard it within
  /// the stickiness.
  func followsLiveLeader(now: Instant) -> Bool {
    leader != nil && leader != settings.local && leaderContact.map { now - $0 < settings.leaderStickiness } == true
  }

  public mutating func receive(_ request: VoteRequest, from candidate: NodeID, now: Instant)
    -> [MembershipOutput]
  {
    guard peers[candidate] != nil, settings.candidates.contains(candidate) else { return [] }
    let deny = [
      MembershipOutput.sendVoteReply(
        to: candidate, VoteReply(term: record.term, granted: false, preVote: request.preVote))
    ]
    if request.term < record.term || (request.preVote && request.term == record.term) { return deny }
    // It lacks a configuration we hold, which a quorum may have acknowledged.
    if request.configVersion < configVersion { return deny }
    // Leader stickiness (etcd's check-quorum): while we hear a live leader,
    // refuse, and do not even raise our term.
    let hearsLeader = (role == .leader && quorate) || (leader != candidate && followsLiveLeader(now: now))
    if hearsLeader { return deny }
    if request.preVote {
      // A pre-vote changes nothing here: it only says we would vote.
      return [.sendVoteReply(to: candidate, VoteReply(term: request.term, granted: true, preVote: true))]
    }
    var outputs: [MembershipOutput] = []
    if request.term > record.term {
      outputs += adopt(term: request.term)
    }
    guard record.votedFor == nil || record.votedFor == candidate else {
      return outputs + [.sendVoteReply(to: candidate, VoteReply(term: record.term, granted: false))]
    }
    record.votedFor = candidate
    electionNotBefore = now + settings.deadTime
    outputs.append(.persist(record))
    outputs.append(.sendVoteReply(to: candidate, VoteReply(term: record.term, granted: true)))
    return outputs
  }

  public mutating func receive(_ reply: VoteReply, from voter: NodeID, now: Instant)
    -> [MembershipOutput]
  {
    guard peers[voter] != nil else { return [] }
    if reply.preVote {
      guard role == .preCandidate, reply.granted, reply.term == record.term + 1 else { return [] }
      votesGranted.insert(voter)
      return hasMajority(votesGranted) ? startElection(now: now) : []
    }
    if reply.term > record.term { return adopt(term: reply.term) }
    guard role == .candidate, reply.term == record.term, reply.granted else { return [] }
    votesGranted.insert(voter)
    return becomeLeaderIfElected(now: now)
  }

  /// Call at the start of every input that has no membership meaning of its
  /// own (an agent result, an operator request): a stall must be noticed
  /// before this node acts on anything.
  public mutating func observe(now: Instant) -> [MembershipOutput] {
    var outputs = noteInput(now: now)
    outputs += updateQuorum()
    return outputs
  }

  // MARK: Deadlines

  /// The earliest moment at which `tick` would change anything, if no other
  /// input comes: the next heartbeat, a peer's or a link's dead time, the
  /// leader's silence, an election step. It may already have passed (a
  /// heartbeat fell due while packets kept the node busy): tick at once.
  /// A tick at that moment always moves it on, so ticking there never spins.
  public var tickDue: Instant {
    var due = nextHeartbeat ?? .zero
    func consider(_ moment: Instant?) {
      if let moment, moment < due { due = moment }
    }
    for state in peers.values {
      if state.alive { consider(state.lastHeard.map { ($0 + settings.deadTime).justAfter }) }
      for link in state.linkUp.indices where state.linkUp[link] {
        consider(state.linkHeard[link].map { ($0 + settings.deadTime).justAfter })
      }
    }
    if role == .follower, leader != nil { consider(leaderContact.map { ($0 + settings.deadTime).justAfter }) }
    let mayStand = isCandidateEligible && quorate
    switch role {
    case .leader where !quorate, .preCandidate where !mayStand, .candidate where !mayStand:
      // Stepping down or giving up a campaign waits for no one.
      consider(lastInput ?? .zero)
    case .preCandidate, .candidate:
      consider(electionNotBefore)
      consider((lastVoteRequest ?? .zero) + settings.heartbeatInterval / 2)
    case .follower where mayStand:
      consider(standsForElectionAt)
    case .follower, .leader:
      break
    }
    return due
  }

  /// The moments at which this node's right to run resources may run out
  /// (`mayRunResources` turns false only at one of them, between inputs),
  /// and at which a peer stops counting as hearing this node. Past ones
  /// are listed too: the caller knows which it has acted on.
  public var leaseEnds: [Instant] {
    var ends: [Instant] = []
    for state in peers.values {
      if let echo = state.echoOfOurs { ends.append((echo + settings.lease).justAfter) }
    }
    if role == .follower, leader != nil, let contact = leaderContact {
      ends.append((contact + settings.lease).justAfter)
    }
    return ends
  }

  /// When the timer sends the next heartbeat (nil: at once).
  ///
  /// The leader's heartbeats set the rhythm: a follower sends its own as
  /// the leader's wakes it (`answerPeerHeartbeat`), and its timer only
  /// backs that up, a little later than an interval, so that the leader's
  /// next packet comes first. Each interval then costs the leader one
  /// wake-up for its timer and the replies, and a follower one, where
  /// every node used to wake for its own timer and again for each peer.
  var nextHeartbeat: Instant? {
    guard let last = lastHeartbeat else { return nil }
    let followsLeader = role == .follower && leader != nil && leader != settings.local
    return last + settings.heartbeatInterval + (followsLeader ? Self.followerHeartbeatSlack(settings) : .zero)
  }

  /// How much later than an interval a follower's timer backs up the
  /// leader's rhythm: enough that the leader's packet, sent on time, wins
  /// the race with it; little enough that a lost packet is hardly noticed.
  static func followerHeartbeatSlack(_ settings: MembershipSettings) -> Duration {
    settings.heartbeatInterval / 8
  }

  /// A heartbeat goes out now, with the peer's that woke this node, when at
  /// least half an interval has passed since the last one: sending a
  /// little early costs nothing, and a wake-up saved is most of an idle
  /// node's cost.
  mutating func answerPeerHeartbeat(now: Instant) -> [MembershipOutput] {
    guard let last = lastHeartbeat, now - last >= settings.heartbeatInterval / 2 else { return [] }
    lastHeartbeat = now
    return [.heartbeatDue]
  }

  // MARK: Steps

  mutating func noteInput(now: Instant) -> [MembershipOutput] {
    defer { lastInput = now }
    guard let last = lastInput else { return [] }
    // The node sleeps until its next deadline: only time past that moment
    // is a gap in its listening (a stall, a starved process), not time it
    // chose to sleep. Packets would have woken it before.
    let gap = now - max(last, tickDue)
    // The peers judge by what they heard: a node whose last heartbeat is
    // more than a dead time old has been declared lost by them, however
    // long it slept on purpose before the stall began.
    let unheard = lastHeartbeat.map { now - $0 } ?? .zero
    let stalled = unheard > settings.deadTime || gap > settings.deadTime
    if gap > settings.heartbeatInterval / 2 && !stalled {
      // A hiccup (a pause, a starved process): packets may be waiting unread.
      // Time in which we could not listen is not the peers' silence, or we
      // would declare live members lost and hand their resources on while
      // they still hold a lease (found by the simulator, seed 260).
      for id in peers.keys.sorted() {
        guard var state = peers[id], state.alive else { continue }
        state.lastHeard = state.lastHeard.map { $0 + gap }
        peers[id] = state
      }
      leaderContact = leaderContact.map { $0 + gap }
      return [.event(.hiccup(gap))]
    }
    guard stalled else { return [] }
    excluded = true
    // Judged once: the next tick sends a heartbeat at once.
    lastHeartbeat = nil
    var outputs: [MembershipOutput] = [.event(.stalled(now - last))]
    for id in peers.keys.sorted() where peers[id]?.alive == true {
      peers[id]?.alive = false
      outputs.append(.event(.peerLost(id)))
    }
    outputs += updateQuorum()
    if role == .leader {
      outputs += stepDown(now: now)
    } else if leader != nil {
      leader = nil
      grantedMembers = []
      outputs.append(.event(.leaderChanged(term: record.term, leader: nil)))
    }
    role = .follower
    leaderContact = nil
    electionNotBefore = now + settings.heartbeatInterval * 2
    return outputs
  }

  mutating func updateQuorum() -> [MembershipOutput] {
    let votes = partitionVotes
    let now = votes >= settings.votesNeeded && waitingFor.isEmpty
    guard now != quorate else { return [] }
    quorate = now
    return [.event(.quorumChanged(quorate: now, votes: votes))]
  }

  mutating func adopt(term: UInt64) -> [MembershipOutput] {
    var outputs: [MembershipOutput] = []
    let hadLeader = leader != nil
    record = ElectionRecord(term: term, votedFor: nil)
    role = .follower
    leader = nil
    grantedMembers = []
    votesGranted = []
    outputs.append(.persist(record))
    if hadLeader { outputs.append(.event(.leaderChanged(term: term, leader: nil))) }
    return outputs
  }

  mutating func stepDown(now: Instant) -> [MembershipOutput] {
    role = .follower
    leader = nil
    grantedMembers = []
    leaderContact = nil
    electionNotBefore = now + settings.deadTime
    return [.event(.leaderChanged(term: record.term, leader: nil))]
  }

  /// Position among live candidates, lowest id first: staggers elections so
  /// that normally exactly one node stands.
  var electionRank: Int { settings.candidates.count { $0 < settings.local && isAlive($0) } }

  mutating func electionStep(now: Instant) -> [MembershipOutput] {
    guard isCandidateEligible, role != .leader, quorate else {
      if role == .preCandidate || role == .candidate { role = .follower }
      return []
    }
    if role == .preCandidate || role == .candidate {
      // A candidate that did not win in time goes back to asking first.
      if now >= electionNotBefore { return startPreVote(now: now) }
      // Voters refuse while they still hear the old leader: ask again.
      if lastVoteRequest.map({ now - $0 >= settings.heartbeatInterval / 2 }) ?? true {
        lastVoteRequest = now
        let term = role == .preCandidate ? record.term + 1 : record.term
        return settings.peers.filter { !votesGranted.contains($0) && isAlive($0) }.map {
          .sendVoteRequest(
            to: $0, VoteRequest(term: term, preVote: role == .preCandidate, configVersion: configVersion))
        }
      }
      return []
    }
    guard now >= standsForElectionAt else { return [] }
    return startPreVote(now: now)
  }

  /// When a quorate follower that hears no leader stands for election: a
  /// dead time after the leader was last heard, later by one interval per
  /// live candidate ranked before it.
  var standsForElectionAt: Instant {
    let leaderSilent = (leaderContact ?? .zero) + settings.deadTime
    let due = max(electionNotBefore, leaderSilent) + settings.heartbeatInterval * electionRank
    return leaderContact == nil ? due : max(due, leaderSilent.justAfter)
  }

  /// Starts asking for votes (pre-votes or real ones) with only our own.
  mutating func campaign(as role: MembershipRole, now: Instant) {
    self.role = role
    leader = nil
    grantedMembers = []
    votesGranted = [settings.local]
    lastVoteRequest = now
    electionNotBefore = now + settings.deadTime + settings.heartbeatInterval * electionRank
  }

  mutating func startPreVote(now: Instant) -> [MembershipOutput] {
    campaign(as: .preCandidate, now: now)
    if hasMajority(votesGranted) { return startElection(now: now) }
    return settings.peers.filter { isAlive($0) }.map {
      .sendVoteRequest(to: $0, VoteRequest(term: record.term + 1, preVote: true, configVersion: configVersion))
    }
  }

  func hasQuorum(_ voters: Set<NodeID>) -> Bool {
    voters.reduce(0) { $0 + (settings.votes[$1] ?? 0) } >= settings.votesNeeded
  }

  /// Enough votes to win an election. In two-node mode a node wins alone
  /// only while its peer is silent; otherwise it needs the peer too.
  func hasMajority(_ voters: Set<NodeID>) -> Bool {
    guard settings.twoNode, !alivePeers.isEmpty else { return hasQuorum(voters) }
    return voters.count == 1 + alivePeers.count
  }

  /// The next term this node may use: in two-node mode, a node electing
  /// itself alone takes only terms of its own parity, so the two halves of a
  /// split pair never lead the same term.
  func nextTerm() -> UInt64 {
    var term = record.term + 1
    if settings.twoNode && alivePeers.isEmpty {
      let rank = UInt64(settings.candidates.sorted().firstIndex(of: settings.local) ?? 0)
      while term % 2 != rank % 2 { term += 1 }
    }
    return term
  }

  mutating func startElection(now: Instant) -> [MembershipOutput] {
    record = ElectionRecord(term: nextTerm(), votedFor: settings.local)
    campaign(as: .candidate, now: now)
    var outputs: [MembershipOutput] = [.persist(record)]
    outputs += becomeLeaderIfElected(now: now)
    if role == .candidate {
      outputs += settings.peers.filter { isAlive($0) }.map {
        .sendVoteRequest(to: $0, VoteRequest(term: record.term, configVersion: configVersion))
      }
    }
    return outputs
  }

  mutating func becomeLeaderIfElected(now: Instant) -> [MembershipOutput] {
    guard hasMajority(votesGranted) else { return [] }
    role = .leader
    hasHadLeader = true
    excluded = false
    leader = settings.local
    leaderContact = now
    votesGranted = []
    lastHeartbeat = now
    return [.event(.leaderChanged(term: record.term, leader: settings.local)), .heartbeatDue]
  }
}

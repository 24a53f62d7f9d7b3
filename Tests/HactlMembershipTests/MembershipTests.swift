import HactlMembership
import HactlModel
import Testing

/// Nodes 1 and 2 may lead; 3 is the witness. Messages are delivered at once
/// unless a link is cut; time only moves when the test says so.
struct Trio {
  var members: [NodeID: Membership] = [:]
  var now = Instant.zero
  var cut: Set<NodeID> = []
  var persisted: [NodeID: [ElectionRecord]] = [:]
  var events: [(NodeID, MembershipEvent)] = []
  static let interval: Duration = .milliseconds(200)
  static let dead: Duration = .seconds(1)

  init(ids: [UInt32] = [1, 2, 3], witness: UInt32? = 3) {
    var votes: [NodeID: Int] = [:]
    for id in ids { votes[NodeID(id)] = 1 }
    let candidates = Set(ids.filter { $0 != witness }.map { NodeID($0) })
    for id in ids {
      let settings = MembershipSettings(
        local: NodeID(id), votes: votes, candidates: candidates, expectedVotes: ids.count,
        heartbeatInterval: Self.interval, deadTime: Self.dead)
      members[NodeID(id)] = Membership(settings: settings, record: ElectionRecord(), now: now)
    }
  }

  func canTalk(_ a: NodeID, _ b: NodeID) -> Bool { !cut.contains(a) && !cut.contains(b) }

  mutating func deliver(_ outputs: [MembershipOutput], from sender: NodeID) {
    var queue = outputs.map { (sender, $0) }
    while !queue.isEmpty {
      let (from, output) = queue.removeFirst()
      switch output {
      case .persist(let record):
        persisted[from, default: []].append(record)
      case .event(let event):
        events.append((from, event))
      case .heartbeatDue:
        let beat = members[from]!.beat(now: now)
        for peer in members.keys.sorted() where peer != from && canTalk(from, peer) {
          let (heard, accepted) = members[peer]!.heard(from: from, incarnation: 1, sentAt: now.nanoseconds, now: now)
          queue += heard.map { (peer, $0) }
          if accepted { queue += members[peer]!.receive(beat, from: from, now: now).map { (peer, $0) } }
        }
      case .sendVoteRequest(let peer, let request):
        guard canTalk(from, peer) else { continue }
        let (heard, accepted) = members[peer]!.heard(from: from, incarnation: 1, sentAt: now.nanoseconds, now: now)
        queue += heard.map { (peer, $0) }
        if accepted { queue += members[peer]!.receive(request, from: from, now: now).map { (peer, $0) } }
      case .sendVoteReply(let peer, let reply):
        guard canTalk(from, peer) else { continue }
        let (heard, accepted) = members[peer]!.heard(from: from, incarnation: 1, sentAt: now.nanoseconds, now: now)
        queue += heard.map { (peer, $0) }
        if accepted { queue += members[peer]!.receive(reply, from: from, now: now).map { (peer, $0) } }
      }
    }
  }

  /// Advances time in 50 ms ticks (as hactld does), ticking every live node.
  mutating func run(for duration: Duration, skip: Set<NodeID> = []) {
    let end = now + duration
    while now < end {
      now = now + .milliseconds(50)
      for id in members.keys.sorted() where !skip.contains(id) {
        let outputs = members[id]!.tick(now: now)
        deliver(outputs, from: id)
      }
    }
  }

  var leaders: [NodeID] { members.filter { $0.value.isLeader }.map(\.key).sorted() }
}

struct MembershipTests {
  @Test func threeMembersElectExactlyOneLeaderThatAllFollow() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    #expect(trio.leaders == [NodeID(1)])
    let term = trio.members[NodeID(1)]!.term
    for (id, member) in trio.members {
      #expect(member.leader == NodeID(1), "\(id)")
      #expect(member.term == term)
      #expect(member.quorate)
    }
    #expect(trio.members[NodeID(2)]!.mayRunResources(now: trio.now))
    #expect(trio.members[NodeID(1)]!.members(now: trio.now) == [NodeID(1), NodeID(2), NodeID(3)])
  }

  @Test func witnessVotesButNeverLeads() {
    var trio = Trio()
    trio.cut = [NodeID(1)]
    trio.run(for: .seconds(3))
    #expect(trio.leaders == [NodeID(2)])
    trio.cut = [NodeID(1), NodeID(2)]
    trio.run(for: .seconds(5))
    #expect(trio.leaders.isEmpty)
    #expect(trio.members[NodeID(3)]!.role != .leader)
  }

  @Test func survivorLeadsWithinTheDeadTimeAfterTheLeaderDies() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let oldTerm = trio.members[NodeID(2)]!.term
    trio.cut = [NodeID(1)]
    let crashed = trio.now
    var elected: Instant?
    for _ in 0..<100 {
      trio.run(for: .milliseconds(50), skip: [NodeID(1)])
      if trio.members[NodeID(2)]!.isLeader {
        elected = trio.now
        break
      }
    }
    let at = try! #require(elected)
    #expect(at - crashed <= Trio.dead + Trio.interval * 2)
    #expect(trio.members[NodeID(2)]!.term == oldTerm + 1)
    #expect(trio.members[NodeID(3)]!.leader == NodeID(2))
  }

  @Test func leaderWithoutQuorumStepsDownWithinTheDeadTime() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    #expect(trio.leaders == [NodeID(1)])
    trio.cut = [NodeID(1)]
    let isolated = trio.now
    while trio.members[NodeID(1)]!.isLeader && trio.now - isolated < .seconds(5) {
      trio.run(for: .milliseconds(50))
    }
    #expect(!trio.members[NodeID(1)]!.isLeader)
    #expect(!trio.members[NodeID(1)]!.mayRunResources(now: trio.now))
    #expect(trio.now - isolated <= Trio.dead + .milliseconds(100))
    // Meanwhile the other side elected 2: never two leaders in one term.
    trio.run(for: .seconds(2))
    #expect(trio.leaders == [NodeID(2)])
  }

  @Test func oneVotePerTermPersistedBeforeTheReply() {
    let settings = MembershipSettings(
      local: NodeID(3), votes: [NodeID(1): 1, NodeID(2): 1, NodeID(3): 1], candidates: [NodeID(1), NodeID(2)],
      expectedVotes: 3, heartbeatInterval: Trio.interval, deadTime: Trio.dead)
    var voter = Membership(settings: settings, record: ElectionRecord(), now: .zero)
    let now = Instant.zero + .seconds(5)
    let first = voter.receive(VoteRequest(term: 4), from: NodeID(1), now: now)
    #expect(
      first == [
        .persist(ElectionRecord(term: 4, votedFor: nil)),
        .persist(ElectionRecord(term: 4, votedFor: NodeID(1))),
        .sendVoteReply(to: NodeID(1), VoteReply(term: 4, granted: true)),
      ])
    let second = voter.receive(VoteRequest(term: 4), from: NodeID(2), now: now)
    #expect(second == [.sendVoteReply(to: NodeID(2), VoteReply(term: 4, granted: false))])
    // After a restart the record keeps the promise.
    var restarted = Membership(settings: settings, record: voter.record, now: now)
    #expect(
      restarted.receive(VoteRequest(term: 4), from: NodeID(2), now: now)
        == [.sendVoteReply(to: NodeID(2), VoteReply(term: 4, granted: false))])
    let stale = restarted.receive(VoteRequest(term: 3), from: NodeID(2), now: now)
    #expect(stale == [.sendVoteReply(to: NodeID(2), VoteReply(term: 4, granted: false))])
  }

  @Test func aCandidateLackingANewerConfigurationGetsNoVote() {
    let settings = MembershipSettings(
      local: NodeID(3), votes: [NodeID(1): 1, NodeID(2): 1, NodeID(3): 1], candidates: [NodeID(1), NodeID(2)],
      expectedVotes: 3, heartbeatInterval: Trio.interval, deadTime: Trio.dead)
    var voter = Membership(settings: settings, record: ElectionRecord(), now: .zero)
    voter.configVersion = ConfigVersion(epoch: 2, version: 5)
    let now = Instant.zero + .seconds(5)
    let older = ConfigVersion(epoch: 2, version: 4)
    #expect(
      voter.receive(VoteRequest(term: 4, preVote: true, configVersion: older), from: NodeID(1), now: now)
        == [.sendVoteReply(to: NodeID(1), VoteReply(term: 0, granted: false, preVote: true))])
    #expect(
      voter.receive(VoteRequest(term: 4, configVersion: older), from: NodeID(1), now: now)
        == [.sendVoteReply(to: NodeID(1), VoteReply(term: 0, granted: false))])
    #expect(voter.record == ElectionRecord(), "a refused candidate changes nothing here")
    // Equal or newer is fine: the candidate has everything this voter has.
    let granted = voter.receive(
      VoteRequest(term: 4, configVersion: ConfigVersion(epoch: 3, version: 1)), from: NodeID(2), now: now)
    #expect(granted.last == .sendVoteReply(to: NodeID(2), VoteReply(term: 4, granted: true)))
  }

  @Test func aLiveLeaderIsNotDeposedByAFlappingNode() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let term = trio.members[NodeID(1)]!.term
    // Node 2 cannot hear the leader, but the leader and the witness are fine.
    var voter = trio.members[NodeID(3)]!
    let replies = voter.receive(VoteRequest(term: term + 1), from: NodeID(2), now: trio.now)
    #expect(replies == [.sendVoteReply(to: NodeID(2), VoteReply(term: term, granted: false))])
    #expect(voter.term == term, "a refused candidate must not raise the voter's term")
  }

  /// A candidate's heartbeat is no back door around leader stickiness: a
  /// follower that hears its leader keeps it (and keeps renewing its lease)
  /// until that term's leader itself speaks, while the leader adopts the
  /// higher term and steps down (chaos seed 1840222: followers taken away
  /// by a candidate's heartbeat elected it while the old leader still ran
  /// a resource the new one started elsewhere).
  @Test func aFollowerHearingItsLeaderTakesAHigherTermOnlyFromThatTermsLeader() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let leader = trio.leaders[0]
    let other = leader == NodeID(1) ? NodeID(2) : NodeID(1)
    let term = trio.members[leader]!.term
    let candidateBeat = MembershipBeat(term: term + 1, leader: nil, heard: [], members: [])
    var witness = trio.members[NodeID(3)]!
    _ = witness.receive(candidateBeat, from: other, now: trio.now)
    #expect(witness.term == term && witness.leader == leader)
    let newLeaderBeat = MembershipBeat(term: term + 1, leader: other, heard: [], members: [])
    _ = witness.receive(newLeaderBeat, from: other, now: trio.now)
    #expect(witness.term == term + 1 && witness.leader == other)
    var old = trio.members[leader]!
    _ = old.receive(candidateBeat, from: other, now: trio.now)
    #expect(old.term == term + 1 && !old.isLeader, "the leader steps down, freeing a node stuck in a higher term")
    // Once the leader has been silent for the stickiness, anyone's word goes.
    witness = trio.members[NodeID(3)]!
    _ = witness.receive(candidateBeat, from: other, now: trio.now + Trio.dead)
    #expect(witness.term == term + 1)
  }

  @Test func aStallLongerThanTheDeadTimeExcludesTheNodeUntilALeaderListsIt() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    #expect(trio.members[NodeID(2)]!.mayRunResources(now: trio.now))
    // Node 2 is frozen for 1.5 s: the others declare it lost.
    trio.cut = [NodeID(2)]
    trio.run(for: .milliseconds(1500), skip: [NodeID(2)])
    trio.cut = []
    var node2 = trio.members[NodeID(2)]!
    let (outputs, _) = node2.heard(from: NodeID(1), incarnation: 1, sentAt: trio.now.nanoseconds, now: trio.now)
    #expect(outputs.first == .event(.stalled(.milliseconds(1500))))
    #expect(node2.excluded)
    // Hearing the others restores quorum, but not the right to run anything.
    _ = node2.heard(from: NodeID(3), incarnation: 1, sentAt: trio.now.nanoseconds, now: trio.now)
    #expect(node2.quorate)
    #expect(!node2.mayRunResources(now: trio.now))
    trio.members[NodeID(2)] = node2
    trio.run(for: .seconds(1))
    #expect(!trio.members[NodeID(2)]!.excluded)
    #expect(trio.members[NodeID(2)]!.mayRunResources(now: trio.now))
  }

  @Test func restartIsSeenAsANewIncarnation() {
    var trio = Trio()
    trio.run(for: .seconds(1))
    var node1 = trio.members[NodeID(1)]!
    let (outputs, _) = node1.heard(from: NodeID(2), incarnation: 2, sentAt: trio.now.nanoseconds, now: trio.now)
    #expect(outputs.contains(.event(.peerRestarted(NodeID(2), incarnation: 2))))
    #expect(node1.incarnation(of: NodeID(2)) == 2)
  }

  @Test func aDelayedPacketFromALostPeerDoesNotResurrectIt() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let sentBeforeDeath = trio.now
    // Node 2 dies; its last packet is delayed in the network for 3 s.
    trio.cut = [NodeID(2)]
    trio.run(for: .seconds(3), skip: [NodeID(2)])
    var node1 = trio.members[NodeID(1)]!
    #expect(!node1.isAlive(NodeID(2)))
    let late = node1.heard(from: NodeID(2), incarnation: 1, sentAt: sentBeforeDeath.nanoseconds + 1, now: trio.now)
    #expect(late.accepted == false)
    #expect(!node1.isAlive(NodeID(2)))
    // A packet sent now (after it could have been declared lost) does revive it.
    let fresh = node1.heard(from: NodeID(2), incarnation: 1, sentAt: trio.now.nanoseconds, now: trio.now)
    #expect(fresh.accepted)
    #expect(node1.isAlive(NodeID(2)))
    // And a restart (new incarnation) always counts.
    var node3 = trio.members[NodeID(3)]!
    #expect(node3.heard(from: NodeID(2), incarnation: 2, sentAt: 5, now: trio.now).accepted)
  }

  @Test func aSilentLinkIsReportedWithoutLosingThePeer() {
    let settings = MembershipSettings(
      local: NodeID(1), votes: [NodeID(1): 1, NodeID(2): 1], candidates: [NodeID(1), NodeID(2)], expectedVotes: 2,
      heartbeatInterval: Trio.interval, deadTime: Trio.dead, linkCount: 2)
    var node = Membership(settings: settings, record: ElectionRecord(), now: .zero)
    var now = Instant.zero
    var sequence: UInt64 = 0
    var events: [MembershipEvent] = []
    func packet(on links: [Int]) {
      sequence += 1
      for link in links {
        for output in node.heard(from: NodeID(2), onLink: link, incarnation: 1, sequence: sequence, now: now) {
          if case .event(let event) = output { events.append(event) }
        }
      }
      _ = node.heard(from: NodeID(2), incarnation: 1, sentAt: now.nanoseconds, now: now)
    }
    for _ in 0..<10 {
      now = now + .milliseconds(100)
      packet(on: [0, 1])
      _ = node.tick(now: now)
    }
    #expect(node.links(of: NodeID(2)) == [true, true])
    // Link 1 fails: only link 0 carries packets for two seconds.
    for _ in 0..<20 {
      now = now + .milliseconds(100)
      packet(on: [0])
      for output in node.tick(now: now) { if case .event(let event) = output { events.append(event) } }
    }
    #expect(node.links(of: NodeID(2)) == [true, false])
    #expect(events.contains(.linkDown(NodeID(2), link: 1)))
    #expect(node.isAlive(NodeID(2)), "a peer is lost only when every link is silent")
    #expect(!events.contains(.peerLost(NodeID(2))))
    // A replay of an old packet on link 1 does not bring it back.
    _ = node.heard(from: NodeID(2), onLink: 1, incarnation: 1, sequence: 3, now: now)
    #expect(node.links(of: NodeID(2)) == [true, false])
    now = now + .milliseconds(100)
    packet(on: [0, 1])
    #expect(node.links(of: NodeID(2)) == [true, true])
    #expect(events.contains(.linkUp(NodeID(2), link: 1)))
  }

  @Test(arguments: [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (32, 17)])
  func quorumIsAStrictMajority(expected: Int, needed: Int) {
    let settings = MembershipSettings(
      local: NodeID(1), votes: [NodeID(1): 1], candidates: [NodeID(1)], expectedVotes: expected,
      heartbeatInterval: Trio.interval, deadTime: Trio.dead)
    #expect(settings.votesNeeded == needed)
  }

  @Test func singleNodeClusterLeadsItself() {
    var solo = Trio(ids: [1], witness: nil)
    solo.run(for: .seconds(1))
    #expect(solo.leaders == [NodeID(1)])
  }
}

/// Time as an output: a node says when it next needs a tick, and ticking
/// only then loses nothing.
struct DeadlineTests {
  @Test func aFollowersDeadlineIsItsNextHeartbeatOrTheLeadersDeadTimeWhicheverComesFirst() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let leader = trio.leaders.first!
    let followerID = leader == NodeID(1) ? NodeID(2) : NodeID(1)
    var follower = trio.members[followerID]!
    let heardLeaderAt = trio.now
    // While the leader is heard, the next heartbeat comes first: a
    // follower's timer backs up the leader's rhythm, an eighth of an
    // interval late (its heartbeats go out as the leader's arrive).
    let due = follower.tickDue
    #expect(due > trio.now && due <= trio.now + Trio.interval + Trio.interval / 8)
    #expect(follower.tick(now: Instant(nanoseconds: due.nanoseconds - 1)).isEmpty, "nothing is due before it")
    #expect(follower.tick(now: due) == [.heartbeatDue])
    // The leader (and the witness) fall silent: ticking only at the
    // deadlines, the follower sends its heartbeats on time and declares
    // the leader lost exactly a dead time after it last heard it.
    var wakes = 0
    var lostAt: Instant?
    while lostAt == nil, wakes < 50 {
      let now = follower.tickDue
      wakes += 1
      let outputs = follower.tick(now: now)
      // No wake is wasted: each sends a heartbeat or notices a silence.
      #expect(
        outputs.contains(.heartbeatDue) || outputs.contains { if case .event = $0 { true } else { false } },
        "woken at \(now) for nothing")
      if outputs.contains(.event(.peerLost(leader))) { lostAt = now }
    }
    #expect(lostAt == (heardLeaderAt + Trio.dead).justAfter)
    // One wake per heartbeat in the dead time, and one for the witness's silence.
    #expect(wakes <= Int(Trio.dead / Trio.interval) + 2)
  }

  @Test func aLeadersDeadlineIsItsNextHeartbeatAndAQuorumLossStepsItDownAtOnce() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let leaderID = trio.leaders.first!
    var leader = trio.members[leaderID]!
    #expect(leader.tickDue <= trio.now + Trio.interval)
    // Nobody answers any more: the leader loses its peers at their dead
    // time, and at that same tick its quorum and its leadership.
    var steppedDown = false
    for _ in 0..<20 where !steppedDown {
      let outputs = leader.tick(now: leader.tickDue)
      steppedDown = outputs.contains(.event(.leaderChanged(term: leader.term, leader: nil)))
    }
    #expect(steppedDown)
    #expect(!leader.isLeader)
    #expect(leader.tickDue > Instant.zero, "nothing left that is due at once")
  }

  @Test func sleepingUntilTheDeadlineIsNotAStallButWakingLateIs() {
    var trio = Trio()
    trio.run(for: .seconds(2))
    let followerID = trio.leaders.first == NodeID(1) ? NodeID(2) : NodeID(1)
    var follower = trio.members[followerID]!
    // It slept until its deadline, as the daemon does: no hiccup, no stall.
    let due = follower.tickDue
    let onTime = follower.tick(now: due)
    #expect(!onTime.contains { if case .event(.stalled) = $0 { return true } else { return false } })
    #expect(!onTime.contains { if case .event(.hiccup) = $0 { return true } else { return false } })
    // Woken 300 ms late (a pause, a clock that jumped): a hiccup of that
    // length, which the controller adds to what waits for peers' leases.
    let hiccup = follower.tick(now: follower.tickDue + .milliseconds(300))
    #expect(hiccup.contains(.event(.hiccup(.milliseconds(300)))), "\(hiccup)")
    #expect(!follower.excluded)
    // Woken 1.5 s after its deadline (a stopped process): a stall.
    let late = follower.tickDue + .milliseconds(1500)
    let outputs = follower.tick(now: late)
    #expect(outputs.contains { if case .event(.stalled) = $0 { return true } else { return false } })
    #expect(follower.excluded)
  }
}

import HactlMembership
import HactlModel
import HactlWire

/// What this node holds of one peer's heartbeat sections, for the peer's
/// current boot.
///
/// A peer's sections count only when current: held at the version its
/// latest heartbeat announced. Until then the leader decides nothing from
/// that peer's report, and a follower starts nothing from the leader's
/// directives, exactly as if that heartbeat had been lost; so a heartbeat
/// whose sections arrive late never makes a decision on older state than a
/// single-datagram heartbeat would have (docs/wire-format.md, "Sections").
struct PeerSections: Sendable {
  let incarnation: UInt64
  /// As of the peer's latest heartbeat.
  var announced = SectionVersions()
  var held = SectionVersions()
  /// The values held (at `held`'s versions).
  var values = Heartbeat(membership: MembershipBeat(term: 0, leader: nil, heard: [], members: []))
  /// The term of the peer's latest heartbeat: its directives and answers
  /// count only in the term it leads.
  var term: UInt64 = 0
  var assembler = PartAssembler()

  init(incarnation: UInt64) { self.incarnation = incarnation }

  func isCurrent(_ section: Section) -> Bool { held[section] == announced[section] }

  mutating func take(_ section: Section, version: UInt64, from beat: Heartbeat) {
    guard version >= held[section] else { return }
    switch section {
    case .report: values.report = beat.report
    case .directives: values.directives = beat.directives
    case .requests: values.requests = beat.requests
    case .answers: values.answers = beat.answers
    }
    held[section] = version
  }
}

/// How long a changing large section waits between the versions it sends:
/// at least the batching period, and long enough that sending it to every
/// peer stays within `bytesPerSecond`. With 32 nodes and a thousand
/// resources, a report went to 31 peers four times an interval while a
/// thousand probes ran, 18 MB/s per node: the cluster spent its CPU on that
/// and flapped. At 2 MB/s it still did on one machine: each node then
/// decoded 2 MB/s of its peers' reports (a sender's budget is also about
/// what each receiver decodes, since every peer sends to every other).
public enum SectionPacing {
  public static let bytesPerSecond = 500_000
  public static let longest: Duration = .seconds(60)

  public static func spacing(bytes: Int, fanOut: Int, atLeast shortest: Duration) -> Duration {
    let total = max(0, bytes).multipliedReportingOverflow(by: max(1, fanOut))
    guard !total.overflow else { return longest }
    let spread = Duration.seconds(Double(total.partialValue) / Double(bytesPerSecond))
    return max(shortest, min(spread, longest))
  }
}

/// This node's own sections: their versions (one more at each change of
/// value, from 1 at every boot) and what each peer has said it holds.
struct OwnSections: Sendable {
  var versions = SectionVersions(Dictionary(uniqueKeysWithValues: Section.allCases.map { ($0, 1) }))
  var values: Heartbeat?
  /// Encoded size of each section at its current version.
  var sizes: [Section: Int] = [:]
  var acknowledged: [NodeID: SectionVersions] = [:]
  var carried: [NodeID: [Section: (version: UInt64, at: Instant)]] = [:]
  /// How many peers each version goes to.
  var fanOut = 1

  /// A section this small rides every heartbeat until the peer holds it:
  /// a lost heartbeat is then repaired by the next one, as before sections.
  static let smallSection = 1_000

  /// Bumps the version of each section whose value changed.
  mutating func update(from beat: Heartbeat) {
    for section in Section.allCases {
      let changed = values.map { !Self.same(section, $0, beat) } ?? true
      guard changed else { continue }
      if values != nil { versions[section] += 1 }
      sizes[section] = (try? PacketCodec.sectionBytes(section, of: beat).count) ?? Int.max
    }
    values = beat
  }

  static func same(_ section: Section, _ a: Heartbeat, _ b: Heartbeat) -> Bool {
    switch section {
    case .report: return a.report == b.report
    case .directives: return a.directives == b.directives
    case .requests: return a.requests == b.requests
    case .answers: return a.answers == b.answers
    }
  }

  /// The sections to carry to `peer` now: those it does not hold, each at
  /// once when new (a large one at most every `batchEvery`), then again
  /// only after `resendAfter` without the peer saying it holds them.
  mutating func toCarry(to peer: NodeID, now: Instant, resendAfter: Duration, batchEvery: Duration) -> Set<Section> {
    var result: Set<Section> = []
    for section in Section.allCases where acknowledged[peer]?[section] != versions[section] {
      let last = carried[peer]?[section]
      let due =
        last == nil || !isBatched(section) || now - last!.at >= resendAfter
        || (last!.version != versions[section] && now - last!.at >= spacing(of: section, batchEvery: batchEvery))
      guard due else { continue }
      result.insert(section)
      carried[peer, default: [:]][section] = (versions[section], now)
    }
    return result
  }

  /// Whether a large section held back by batching is now due for a peer:
  /// the heartbeat that carries it goes out without waiting for the next
  /// interval.
  func withheldIsDue(now: Instant, batchEvery: Duration) -> Bool {
    nextWithheld(batchEvery: batchEvery).map { now >= $0 } ?? false
  }

  /// When the first section held back by batching falls due (see
  /// `withheldIsDue`).
  func nextWithheld(batchEvery: Duration) -> Instant? {
    var next: Instant?
    for (peer, sections) in carried {
      for (section, last) in sections
      where isBatched(section) && last.version != versions[section]
        && acknowledged[peer]?[section] != versions[section]
      {
        let due = last.at + spacing(of: section, batchEvery: batchEvery)
        if next.map({ due < $0 }) ?? true { next = due }
      }
    }
    return next
  }

  func spacing(of section: Section, batchEvery: Duration) -> Duration {
    SectionPacing.spacing(bytes: sizes[section] ?? 0, fanOut: fanOut, atLeast: batchEvery)
  }

  /// A large report or directives section, changing at every agent result
  /// (a thousand resources starting), goes out at most every `spacing(of:batchEvery:)`:
  /// each version costs many datagrams, and the next heartbeat brings the
  /// newest anyway. Requests and answers change at an operator's pace, who
  /// waits for them: they are never held back.
  func isBatched(_ section: Section) -> Bool {
    (section == .report || section == .directives) && sizes[section] ?? 0 > Self.smallSection
  }

  /// A peer that restarted holds nothing of ours.
  mutating func forget(_ peer: NodeID) {
    acknowledged[peer] = nil
    carried[peer] = nil
  }
}

extension NodeController {
  /// The heartbeat for one peer: the sections it lacks, the versions it
  /// must hold, what we hold of its own, and only its echo.
  mutating func beat(_ beat: Heartbeat, for peer: NodeID, now: Instant) -> Heartbeat {
    var beat = beat
    beat.sections = ownSections.versions
    beat.held = peerSections[peer]?.held ?? SectionVersions()
    beat.carried = ownSections.toCarry(
      to: peer, now: now, resendAfter: resendSectionsAfter, batchEvery: batchSectionsEvery)
    beat.membership.echoes = beat.membership.echoes.filter { $0.node == peer }
    return beat
  }

  var resendSectionsAfter: Duration { membership.settings.heartbeatInterval * 2 }
  var batchSectionsEvery: Duration { membership.settings.heartbeatInterval / 4 }

  /// The sections of `sender`'s boot `incarnation`, fresh if it is a new boot.
  func sections(of sender: NodeID, incarnation: UInt64) -> PeerSections {
    guard let known = peerSections[sender], known.incarnation == incarnation else {
      return PeerSections(incarnation: incarnation)
    }
    return known
  }

  /// A heartbeat's versions and carried sections.
  mutating func takeSections(of beat: Heartbeat, from sender: NodeID, incarnation: UInt64) {
    var sections = sections(of: sender, incarnation: incarnation)
    for section in beat.carried { sections.take(section, version: beat.sections[section], from: beat) }
    sections.announced = beat.sections
    sections.term = beat.membership.term
    peerSections[sender] = sections
    ownSections.acknowledged[sender] = beat.held
  }

  /// What of `sender`'s sections decisions depend on: which boot, which
  /// versions are held and announced, in which term. The same versions
  /// mean the same values.
  func sectionsHeld(from sender: NodeID) -> SectionsHeld? {
    peerSections[sender].map {
      SectionsHeld(incarnation: $0.incarnation, announced: $0.announced, held: $0.held, term: $0.term)
    }
  }

  struct SectionsHeld: Equatable {
    var incarnation: UInt64
    var announced: SectionVersions
    var held: SectionVersions
    var term: UInt64
  }

  /// One part; a whole once its last part is in: a section is kept, a
  /// message is returned for handling as if it had come in one datagram.
  mutating func takePart(_ part: MessagePart, from sender: NodeID, incarnation: UInt64) throws(WireError)
    -> Message?
  {
    var sections = sections(of: sender, incarnation: incarnation)
    defer { peerSections[sender] = sections }
    guard let bytes = sections.assembler.add(part) else { return nil }
    guard let section = part.stream.section else { return try MessageParts.message(of: part.stream, bytes) }
    var values = sections.values
    try PacketCodec.decodeSection(section, bytes, into: &values)
    sections.take(section, version: part.id, from: values)
    partCompletedSomething = true
    return nil
  }

  /// What the rest of the controller reads of a peer's sections, after
  /// anything about them changed.
  mutating func useSections(of sender: NodeID, kind: Member.Kind) -> [ControllerEffect] {
    guard let sections = peerSections[sender] else { return [] }
    if kind == .node {
      peerReports[sender] = sections.values.report
      if sections.values.report != nil && sections.isCurrent(.report) { unfenced[sender] = nil }
    }
    peerRequests[sender] = sections.values.requests
    // A cleanup asked of this node is acted on at once, even by a follower
    // that decides only on its leader's sections.
    if !requestsDue.isEmpty { undecided = true }
    guard membership.leader == sender && sections.term == membership.term else { return [] }
    followedDirectives = sections.isCurrent(.directives) ? sections.values.directives : nil
    return learnFenced(followedDirectives?.fenced ?? []) + takeAnswers(sections.values.answers)
  }

  /// The leader's view of a node's report: its own, or a peer's held at
  /// the version its latest heartbeat announced.
  func reportIsCurrent(_ node: NodeID) -> Bool {
    node == local.id || peerSections[node]?.isCurrent(.report) == true
  }
}

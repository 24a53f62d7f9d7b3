import Foundation
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire
import Testing

struct WireTests {
  static let header = PacketHeader(sender: NodeID(2), incarnation: 1_795_000_000_000_000, sequence: 42)

  static let fullHeartbeat = Heartbeat(
    membership: MembershipBeat(
      term: 7, leader: NodeID(1), heard: [NodeID(1), NodeID(3)], members: [NodeID(1), NodeID(2)]),
    report: {
      var report = NodeReport(
        probed: true, mode: .standby,
        resources: [
          ResourceReport(id: "vip", role: .started),
          ResourceReport(
            id: "db", role: .blocked, failCount: 3,
            lastFailure: ResourceFailure(action: .stop, code: 198, reason: "timed out ✗", wallTime: 1_700_000_000)),
          ResourceReport(
            id: "drbd0", role: .started,
            lastFailure: ResourceFailure(action: .demote, code: 1, reason: "", wallTime: 0),
            promoted: true, roleChanging: true, halted: true, notified: 41),
        ])
      report.attributes = ["master-drbd0": "10000", "site": "east ✓"]
      return report
    }(),
    directives: {
      var directives = Directives(
        assignments: [
          Assignment(resource: "vip", node: NodeID(2), token: 99),
          Assignment(resource: "drbd0", node: NodeID(1), token: 100, promoted: true, instance: 1),
        ],
        notifications: [
          CloneNotification(
            resource: "drbd0", id: 101, timing: .pre, operation: .promote, targets: [NodeID(1), NodeID(2)],
            entries: [
              CloneNotification.Entry(.promote, instance: 1, node: NodeID(1)),
              CloneNotification.Entry(.active, instance: 0, node: NodeID(2)),
              CloneNotification.Entry(.active, instance: 1, node: NodeID(1)),
            ])
        ])
      directives.fenced = [
        FencedBoot(node: NodeID(3), boot: 1_795_955_832_038_147),
        FencedBoot(node: NodeID(4), boot: 17, device: "ipmi-db2", level: 2, milliseconds: 4_120),
      ]
      return directives
    }(),
    requests: [
      OperatorRequest(id: 5, kind: .move("vip", target: NodeID(1))),
      OperatorRequest(id: 6, kind: .move("db", target: nil)),
      OperatorRequest(id: 7, kind: .cleanup("db", node: NodeID(2))),
      OperatorRequest(id: 8, kind: .cleanup("vip", node: nil)),
      OperatorRequest(id: 9, kind: .attribute(node: NodeID(2), name: "db-gtid", value: "0-1-42")),
      OperatorRequest(id: 10, kind: .attribute(node: NodeID(2), name: "db-gtid", value: nil)),
      OperatorRequest(id: 11, kind: .fence(node: NodeID(2), action: .off, confirm: false)),
      OperatorRequest(id: 12, kind: .fence(node: NodeID(1), action: nil, confirm: true)),
    ],
    answers: [
      RequestAnswer(origin: NodeID(3), id: 4, accepted: false, message: "no"),
      RequestAnswer(
        origin: NodeID(1), id: 5, accepted: true, message: "stored", configVersion: ConfigVersion(epoch: 7, version: 3)),
    ],
    config: ConfigStamp(version: ConfigVersion(epoch: 7, version: 3), digest: 0xDEAD_BEEF_0123_4567))

  /// As peers send once sections are in play: some carried, some only named.
  static let sectionedHeartbeat: Heartbeat = {
    var beat = fullHeartbeat
    beat.sections = SectionVersions([.report: 4, .directives: 9, .requests: 1, .answers: 2])
    beat.held = SectionVersions([.report: 3, .answers: 1])
    beat.carried = [.report, .answers]
    beat.clear(.directives)
    beat.clear(.requests)
    return beat
  }()

  static let messages: [Message] = [
    .heartbeat(fullHeartbeat),
    .heartbeat(sectionedHeartbeat),
    .part(MessagePart(stream: .directives, id: 9, index: 1, count: 3, bytes: Array("a part ✓".utf8))),
    .part(MessagePart(stream: .configOffer, id: .max, index: 0, count: 1, bytes: [])),
    .heartbeat(Heartbeat(membership: MembershipBeat(term: 0, leader: nil, heard: [], members: []))),
    .voteRequest(VoteRequest(term: 12)),
    .voteRequest(VoteRequest(term: 13, preVote: true, configVersion: ConfigVersion(epoch: 9, version: 41))),
    .voteReply(VoteReply(term: 12, granted: true)),
    .configOffer(
      ConfigDocument(
        version: ConfigVersion(epoch: 3, version: 8), base: ConfigVersion(epoch: 2, version: 7),
        text: "cluster:\n  name: ✓ x\n")),
    .configProposal(ConfigProposal(id: 77, text: "nodes: []\n")),
    .configProposal(ConfigProposal(id: 78, text: "", edit: .ban("vip", node: "beta"))),
    .configProposal(ConfigProposal(id: 79, text: "", edit: .pin("vip", node: "alpha"))),
    .configProposal(ConfigProposal(id: 80, text: "", edit: .clear("vip"))),
    .configProposal(ConfigProposal(id: 81, text: "", edit: .standby(node: "beta"))),
    .configProposal(ConfigProposal(id: 82, text: "", edit: .online(node: "beta"))),
    .configProposal(ConfigProposal(id: 83, text: "", edit: .maintenance(on: true, node: nil, resource: "db"))),
    .configProposal(ConfigProposal(id: 84, text: "", edit: .maintenance(on: false, node: "alpha", resource: nil))),
    .configProposal(
      ConfigProposal(id: 85, text: "", edit: .nodeAttribute(node: "beta", name: "master-drbd0", value: "10000"))),
    .configProposal(ConfigProposal(id: 86, text: "", edit: .nodeAttribute(node: "beta", name: "x", value: nil))),
    .configProposal(ConfigProposal(id: 87, text: "", edit: .property(name: "REPL_INFO", value: "a|bin.3|154"))),
    .configProposal(ConfigProposal(id: 88, text: "", edit: .property(name: "REPL_INFO", value: nil))),
  ]

  @Test(arguments: messages)
  func everyMessageSurvivesARoundTrip(message: Message) throws {
    let packet = Packet(header: Self.header, message: message)
    let bytes = try PacketCodec.encode(packet)
    #expect(Array(bytes.prefix(4)) == Array("HACT".utf8))
    #expect(bytes[4] == PacketCodec.version)
    #expect(try PacketCodec.decode(bytes) == packet)
    #expect(PacketCodec.peekSender(bytes) == NodeID(2))
  }

  /// The largest state the limits allow: every member, every resource
  /// failed with the longest id and reason, every request and answer.
  static var largestHeartbeat: Heartbeat {
    let nodes = (1...UInt32(ClusterLimits.members)).map { NodeID(UInt32.max - $0) }
    let failure = ResourceFailure(
      action: .monitor, code: 1, reason: String(repeating: "é", count: 500), wallTime: 1_700_000_000)
    let ids = (0..<ClusterLimits.reportedResources).map {
      ResourceID(String(repeating: "r", count: 56) + String(format: "%08d", $0))
    }
    let largest = ClusterLimits.largestCounter
    var beat = Heartbeat(
      membership: MembershipBeat(
        term: largest, leader: nodes[0], heard: nodes, members: nodes,
        echoes: [MembershipBeat.Echo(node: nodes[1], stamp: .max)]),
      report: NodeReport(
        probed: true, mode: .online,
        resources: ids.map {
          ResourceReport(id: $0, role: .failed, failCount: 99, lastFailure: failure, lastStartToken: .max)
        }),
      directives: Directives(
        assignments: ids.prefix(ClusterLimits.resources).map { Assignment(resource: $0, node: nodes[1], token: .max) }),
      requests: (0..<ClusterLimits.pendingRequests).map {
        OperatorRequest(id: UInt64($0), kind: .move(ids[$0], target: nodes[2]))
      },
      answers: (0..<ClusterLimits.answersKept).map {
        RequestAnswer(
          origin: nodes[3], id: UInt64($0), accepted: false, message: String(repeating: "x", count: 5000),
          configVersion: ConfigVersion(epoch: largest, version: largest))
      },
      config: ConfigStamp(version: ConfigVersion(epoch: largest, version: largest), digest: .max))
    for section in Section.allCases {
      beat.sections[section] = largest - UInt64(section.rawValue)
      beat.held[section] = largest - 10 - UInt64(section.rawValue)
    }
    return beat
  }

  /// Parts reassembled the way a receiver does, into the heartbeat they
  /// came with.
  static func reassemble(_ datagrams: [Message]) throws -> Heartbeat? {
    var assembler = PartAssembler()
    var sections: [Section: [UInt8]] = [:]
    var core: Heartbeat?
    for datagram in datagrams {
      let bytes = try PacketCodec.encode(Packet(header: header, message: datagram))
      #expect(bytes.count + PacketCodec.longestTag <= PacketCodec.maximumDatagram)
      switch try PacketCodec.decode(bytes).message {
      case .part(let part):
        if let whole = assembler.add(part), let section = part.stream.section { sections[section] = whole }
      case .heartbeat(let beat): core = beat
      default: Issue.record("unexpected \(datagram)")
      }
    }
    guard var beat = core else { return nil }
    for (section, bytes) in sections {
      try PacketCodec.decodeSection(section, bytes, into: &beat)
      beat.carried.insert(section)
    }
    return beat
  }

  @Test func theLargestStateTravelsInDatagramsThatFitTheLimit() throws {
    let beat = Self.largestHeartbeat
    #expect(beat.report?.resources.first?.lastFailure?.reason.utf8.count == ClusterLimits.failureReasonBytes)
    #expect(beat.answers[0].message.utf8.count == ClusterLimits.answerBytes)
    let datagrams = try MessageParts.fit(.heartbeat(beat))
    #expect(datagrams.count > 1)
    let parts = datagrams.filter { if case .part = $0 { true } else { false } }
    #expect(parts.count < MessageParts.maximumParts)
    #expect(try Self.reassemble(datagrams) == beat)
    // Without its sections the heartbeat itself fits one datagram.
    var core = beat
    core.carried = []
    #expect(try MessageParts.fit(.heartbeat(core)) == [.heartbeat(core)])
    #expect(try PacketCodec.encodePayload(.heartbeat(core)).1.count < 1_000, "docs/wire-format.md says so")
  }

  /// Parts arrive in any order, some twice, some only in a second round:
  /// the whole completes once each index has come once.
  @Test func partsCombineAcrossRoundsAndOrders() throws {
    let beat = Self.largestHeartbeat
    let parts = try MessageParts.fit(.heartbeat(beat)).compactMap { message -> MessagePart? in
      if case .part(let part) = message { part } else { nil }
    }
    var random = SeededRandom(seed: 11)
    var assembler = PartAssembler()
    var completed: Set<PartStream> = []
    let firstRound = parts.filter { _ in !random.chance(0.3) }.shuffled(using: &random)
    for part in firstRound where assembler.add(part) != nil { completed.insert(part.stream) }
    #expect(completed.count < Set(parts.map(\.stream)).count, "the first round was meant to lose parts")
    for part in parts.shuffled(using: &random) where assembler.add(part) != nil { completed.insert(part.stream) }
    #expect(completed == Set(parts.map(\.stream)))
    // A part of a newer version drops the older one in progress.
    var fresh = PartAssembler()
    let report = parts.filter { $0.stream == .report }
    _ = fresh.add(report[0])
    var newer = report[1]
    newer.id += 1
    _ = fresh.add(newer)
    for part in report.dropFirst(2) { #expect(fresh.add(part) == nil) }
    // A part out of its own range is ignored, never counted towards a whole.
    var strict = PartAssembler()
    #expect(strict.add(MessagePart(stream: .answers, id: 1, index: 5, count: 1, bytes: [])) == nil)
    #expect(strict.add(MessagePart(stream: .answers, id: 1, index: 0, count: 1, bytes: [7])) == [7])
  }

  /// Every list one past its limit: the encoder refuses it, as the decoder
  /// would, instead of producing a heartbeat every peer drops.
  /// A fencing's device, level and duration beyond what the reader takes:
  /// a device name too long is refused, numbers are clamped, and what is
  /// written always reads back.
  @Test func aFencedEntryIsWrittenOnlyAsTheReaderTakesIt() throws {
    func encoded(_ fenced: FencedBoot) throws -> [FencedBoot]? {
      var beat = Heartbeat(membership: MembershipBeat(term: 1, leader: NodeID(1), heard: [], members: []))
      beat.directives = Directives(assignments: [])
      beat.directives?.fenced = [fenced]
      let bytes = try PacketCodec.encode(Packet(header: Self.header, message: .heartbeat(beat)))
      guard case .heartbeat(let read) = try PacketCodec.decode(bytes).message else { return nil }
      return read.directives?.fenced
    }
    let huge = FencedBoot(node: NodeID(3), boot: 9, device: "power", level: 1_000, milliseconds: .max)
    #expect(
      try encoded(huge) == [
        FencedBoot(node: NodeID(3), boot: 9, device: "power", level: 255, milliseconds: 4_294_967_295)
      ])
    let long = String(repeating: "d", count: FencedBoot.deviceBytes + 1)
    #expect(throws: WireError.self) { try encoded(FencedBoot(node: NodeID(3), boot: 9, device: long)) }
  }

  @Test func theEncoderRefusesWhatTheDecoderRefuses() throws {
    let nodes = (1...UInt32(ClusterLimits.members + 1)).map { NodeID($0) }
    let ids = (0...ClusterLimits.reportedResources).map { ResourceID("r\($0)") }
    func refused(_ change: (inout Heartbeat) -> Void) -> Bool {
      var beat = Self.fullHeartbeat
      change(&beat)
      do {
        _ = try PacketCodec.encode(Packet(header: Self.header, message: .heartbeat(beat)))
        return false
      } catch { return true }
    }
    #expect(refused { $0.membership.heard = nodes })
    #expect(refused { $0.membership.members = nodes })
    #expect(refused { $0.membership.echoes = nodes.map { MembershipBeat.Echo(node: $0, stamp: 1) } })
    #expect(
      refused {
        $0.report = NodeReport(
          probed: true, mode: .online, resources: ids.map { ResourceReport(id: $0, role: .started) })
      })
    #expect(
      refused {
        $0.directives = Directives(
          assignments: ids.prefix(ClusterLimits.resources + 1).map {
            Assignment(resource: $0, node: nodes[0], token: 1)
          })
      })
    #expect(
      refused {
        $0.requests = (0...ClusterLimits.pendingRequests).map {
          OperatorRequest(id: UInt64($0), kind: .move("r", target: nil))
        }
      })
    #expect(
      refused {
        $0.answers = (0...ClusterLimits.answersKept).map {
          RequestAnswer(origin: nodes[0], id: UInt64($0), accepted: true, message: "")
        }
      })
    #expect(
      refused {
        let entries = (0...CloneNotification.maximumEntries).map {
          CloneNotification.Entry(.active, instance: $0, node: nodes[0])
        }
        $0.directives = Directives(
          assignments: [],
          notifications: [
            CloneNotification(resource: "r", id: 1, timing: .post, operation: .start, targets: [], entries: entries)
          ])
      })
    #expect(refused { $0.membership.term = ClusterLimits.largestCounter + 1 })
    #expect(refused { $0.config.version = ConfigVersion(epoch: 1, version: .max) })
  }

  /// A term or version near the top of its range would make `+ 1` trap at
  /// the next election or change, on every member that adopted it.
  @Test func termsAndVersionsBeyondAnyRealClusterAreRefused() throws {
    var writer = RecordWriter()
    writer.unsigned(1, .max)
    writer.bool(2, false)
    var header = PacketCodec.encodeHeader(
      Self.header, kind: .voteRequest, seal: .plain, payloadLength: writer.bytes.count)
    #expect(throws: WireError.self) { try PacketCodec.decode(header + writer.bytes) }
    var fine = RecordWriter()
    fine.unsigned(1, ClusterLimits.largestCounter)
    header = PacketCodec.encodeHeader(Self.header, kind: .voteRequest, seal: .plain, payloadLength: fine.bytes.count)
    #expect(
      try PacketCodec.decode(header + fine.bytes).message
        == .voteRequest(VoteRequest(term: ClusterLimits.largestCounter)))
  }

  @Test func theLargestConfigurationTravelsInParts() throws {
    let text = String(repeating: "#", count: ClusterLimits.configurationBytes)
    let offer = Message.configOffer(
      ConfigDocument(
        version: ConfigVersion(epoch: 7, version: 9), base: ConfigVersion(epoch: 7, version: 8), text: text)
    )
    let proposal = Message.configProposal(ConfigProposal(id: .max, text: text))
    for message in [offer, proposal] {
      let datagrams = try MessageParts.fit(message)
      var assembler = PartAssembler()
      var whole: Message?
      for datagram in datagrams {
        let bytes = try PacketCodec.encode(Packet(header: Self.header, message: datagram))
        #expect(bytes.count + PacketCodec.longestTag <= PacketCodec.maximumDatagram)
        guard case .part(let part) = try PacketCodec.decode(bytes).message else {
          Issue.record("not a part")
          continue
        }
        if let bytes = assembler.add(part) { whole = try MessageParts.message(of: part.stream, bytes) }
      }
      #expect(whole == message)
    }
    // A small one still goes whole.
    let small = Message.configProposal(ConfigProposal(id: 1, text: "nodes: []\n"))
    #expect(try MessageParts.fit(small) == [small])
  }

  /// What no receiver would take is never sent: a datagram over the
  /// limit, a part out of range, more parts than a whole may have.
  @Test func datagramsAndPartsOutOfBoundsAreRefusedBothWays() throws {
    let tooMany = [UInt8](repeating: 1, count: MessageParts.maximumWholeBytes + 1)
    #expect(throws: WireError.self) { try MessageParts.split(tooMany, stream: .configOffer, id: 1) }
    for part in [
      MessagePart(stream: .report, id: 1, index: 2, count: 2, bytes: []),
      MessagePart(stream: .report, id: 1, index: 0, count: MessageParts.maximumParts + 1, bytes: []),
      MessagePart(stream: .report, id: 1, index: 0, count: 1, bytes: .init(repeating: 0, count: 1_201)),
    ] {
      #expect(throws: WireError.self) { try PacketCodec.encode(Packet(header: Self.header, message: .part(part))) }
      var writer = RecordWriter()
      writer.unsigned(1, UInt64(part.stream.rawValue))
      writer.unsigned(2, part.id)
      writer.unsigned(3, UInt64(part.index))
      writer.unsigned(4, UInt64(part.count))
      writer.data(5, part.bytes)
      let header = PacketCodec.encodeHeader(Self.header, kind: .part, seal: .plain, payloadLength: writer.bytes.count)
      #expect(throws: WireError.self) { try PacketCodec.decode(header + writer.bytes) }
    }
    let big = [UInt8](repeating: 0, count: PacketCodec.maximumDatagram + 1)
    #expect(throws: WireError.self) { try PacketCodec.readHeader(big, tagLength: 0) }
  }

  /// Version 3's promise: a field or a message kind added by a newer
  /// daemon is skipped by this one, not refused, so a cluster upgrades one
  /// node at a time (docs/wire-format.md, "Compatibility").
  @Test func fieldsAndKindsFromANewerVersionAreSkippedNotRefused() throws {
    let packet = Packet(header: Self.header, message: .heartbeat(Self.fullHeartbeat))
    let (kind, payload) = try PacketCodec.encodePayload(packet.message)
    // The "next" version: unknown fields at the top, inside the report and
    // inside each resource entry, wherever a newer writer may put them.
    var next = RecordWriter()
    next.unsigned(200, 12345)
    try next.string(201, "a field from the future")
    try next.record(202) { (inner: inout RecordWriter) throws(WireError) in inner.unsigned(1, 7) }
    var withReport = RecordReader(payload)
    while let field = try withReport.next() {
      guard field.tag == 6 else {
        next.appendRaw(field)
        continue
      }
      try next.record(6) { (report: inout RecordWriter) throws(WireError) in
        report.unsigned(250, 1)
        var inner = field.record()
        while let part = try inner.next() {
          guard part.tag == 3 else {
            report.appendRaw(part)
            continue
          }
          try report.record(3) { (entry: inout RecordWriter) throws(WireError) in
            try entry.string(99, "per-resource news")
            var values = part.record()
            while let value = try values.next() { entry.appendRaw(value) }
          }
        }
      }
    }
    let bytes =
      PacketCodec.encodeHeader(packet.header, kind: kind, seal: .plain, payloadLength: next.bytes.count)
      + next.bytes
    #expect(try PacketCodec.decode(bytes) == packet)
    // A message kind this version does not know is told apart from damage.
    var unknown = bytes
    unknown[5] = 42
    #expect(throws: WireError.unknownKind(42)) { try PacketCodec.decode(unknown) }
    // A format this version cannot read at all is refused loudly.
    var future = bytes
    future[4] = PacketCodec.version + 1
    #expect(throws: WireError.unsupportedVersion(PacketCodec.version + 1)) { try PacketCodec.decode(future) }
  }

  @Test func malformedPacketsAreRejectedWithAReason() throws {
    let bytes = try PacketCodec.encode(Packet(header: Self.header, message: .heartbeat(Self.fullHeartbeat)))
    #expect(throws: WireError.badMagic) { try PacketCodec.decode([0x48, 0x41, 0x43, 0x55] + bytes.dropFirst(4)) }
    var version = bytes
    version[4] = 9
    #expect(throws: WireError.unsupportedVersion(9)) { try PacketCodec.decode(version) }
    var kind = bytes
    kind[5] = 77
    #expect(throws: WireError.unknownKind(77)) { try PacketCodec.decode(kind) }
    #expect(throws: WireError.self) { try PacketCodec.decode(Array(bytes.dropLast())) }
    #expect(throws: WireError.self) { try PacketCodec.decode(bytes + [0]) }
    #expect(throws: WireError.self) { try PacketCodec.decode([]) }
  }

  @Test func everyTruncationIsAnErrorNotACrash() throws {
    let bytes = try PacketCodec.encode(Packet(header: Self.header, message: .heartbeat(Self.fullHeartbeat)))
    for length in 0..<bytes.count {
      #expect(throws: WireError.self) { try PacketCodec.decode(Array(bytes.prefix(length))) }
    }
  }

  @Test func randomAndMutatedBytesNeverCrashTheDecoder() throws {
    var random = SeededRandom(seed: 0x4841_4354)
    let valid = try Self.messages.map { try PacketCodec.encode(Packet(header: Self.header, message: $0)) }
    var decodedMutants = 0
    // Parts that survive mutation go on to reassembly and decoding, as a
    // receiver's would.
    var assembler = PartAssembler()
    for round in 0..<20_000 {
      var bytes: [UInt8]
      if round % 4 == 0 {
        bytes = (0..<Int.random(in: 0..<400, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
      } else {
        bytes = valid[round % valid.count]
        for _ in 0..<Int.random(in: 1...4, using: &random) {
          bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        }
      }
      guard let packet = try? PacketCodec.decode(bytes) else { continue }
      decodedMutants += 1
      if case .part(let part) = packet.message, let whole = assembler.add(part) {
        if let section = part.stream.section {
          var beat = Self.fullHeartbeat
          _ = try? PacketCodec.decodeSection(section, whole, into: &beat)
        } else {
          _ = try? MessageParts.message(of: part.stream, whole)
        }
      }
    }
    // Some mutations land in harmless places (a reason string's letters);
    // the decoder must simply survive every one.
    #expect(decodedMutants < 20_000)
  }

  static let secret = Array(repeating: UInt8(7), count: 32)

  static func sealer(
    _ local: UInt32, _ protection: WireProtection = .encrypted, secret: [UInt8] = WireTests.secret,
    cluster: String = "web", next: [UInt8]? = nil
  ) -> PacketSealer {
    PacketSealer(
      protection: protection, local: NodeID(local), current: ClusterKey(secret: secret, clusterName: cluster),
      next: next.map { ClusterKey(secret: $0, clusterName: cluster) })
  }

  static func packet(from sender: UInt32 = 2, to receiver: UInt32 = 1, sequence: UInt64 = 42, _ message: Message)
    -> Packet
  {
    Packet(
      header: PacketHeader(
        sender: NodeID(sender), receiver: NodeID(receiver), incarnation: 1_795_000_000_000_000,
        receiverIncarnation: 1_795_000_000_000_123, sequence: sequence, sentAt: 99),
      message: message)
  }

  static let peers: Set<NodeID> = [NodeID(1), NodeID(2), NodeID(3)]

  @Test(arguments: [WireProtection.encrypted, .authenticated])
  func sealingRejectsEveryChangeOtherClustersAndOtherKeys(protection: WireProtection) throws {
    let packet = Self.packet(.heartbeat(Self.fullHeartbeat))
    let sealed = try Self.sealer(2, protection).seal(packet)
    let receiver = Self.sealer(1, protection)
    #expect(try receiver.open(sealed, peers: Self.peers).get() == packet)
    for index in 0..<sealed.count {
      var tampered = sealed
      tampered[index] ^= 0x01
      if case .success = receiver.open(tampered, peers: Self.peers) {
        Issue.record("flipping byte \(index) went unnoticed")
      }
    }
    #expect(
      Self.sealer(1, protection, cluster: "db").open(sealed, peers: Self.peers) == .failure(.failedAuthentication))
    let otherKey = Self.sealer(1, protection, secret: Array(repeating: 8, count: 32))
    #expect(otherKey.open(sealed, peers: Self.peers) == .failure(.failedAuthentication))
    // Meant for member 1: member 3 refuses it before any cryptography.
    #expect(Self.sealer(3, protection).open(sealed, peers: Self.peers) == .failure(.misdirected))
    #expect(receiver.open(sealed, peers: [NodeID(1), NodeID(3)]) == .failure(.misdirected))
    #expect(receiver.open(Array(sealed.prefix(PacketCodec.headerSize)), peers: Self.peers) == .failure(.malformed))
    #expect(receiver.open([], peers: Self.peers) == .failure(.malformed))
    let other: WireProtection = protection == .encrypted ? .authenticated : .encrypted
    #expect(Self.sealer(1, other).open(sealed, peers: Self.peers) == .failure(.malformed))
  }

  /// Configuration texts hold resource parameters, database passwords
  /// among them: encrypted, none of it is on the wire in clear.
  @Test func encryptionHidesThePayload() throws {
    let secretText = "password: correct-horse-battery-staple"
    let offer = Self.packet(
      .configOffer(
        ConfigDocument(version: ConfigVersion(epoch: 1, version: 1), base: .initial, text: secretText)))
    func contains(_ bytes: [UInt8]) -> Bool {
      String(decoding: bytes, as: UTF8.self).contains("correct-horse-battery-staple")
    }
    #expect(!contains(try Self.sealer(2, .encrypted).seal(offer)))
    #expect(contains(try Self.sealer(2, .authenticated).seal(offer)), "authenticated-only is readable, as documented")
  }

  @Test func randomBytesAreNeverOpened() {
    var random = SeededRandom(seed: 99)
    for protection in [WireProtection.encrypted, .authenticated] {
      let receiver = Self.sealer(1, protection)
      for round in 0..<5000 {
        var bytes = (0..<Int.random(in: 0..<300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        if round % 2 == 0 && bytes.count >= PacketCodec.headerSize + protection.tagLength {
          // A plausible header, so that the cryptography itself is what refuses.
          let header = PacketCodec.encodeHeader(
            Self.packet(.voteReply(VoteReply(term: 1, granted: true))).header, kind: .voteReply,
            seal: PacketCodec.Seal(protection: protection.rawValue, keyID: receiver.keyIDs.current),
            payloadLength: bytes.count - PacketCodec.headerSize - protection.tagLength)
          bytes.replaceSubrange(0..<PacketCodec.headerSize, with: header)
        }
        if case .success = receiver.open(bytes, peers: Self.peers) { Issue.record("random bytes opened") }
      }
    }
  }

  /// A key rotation: each side moves to the next key once the other shows
  /// it holds it; old-key packets stop working once the old key is gone.
  @Test func keysRotateWithoutASingleRefusedPacket() throws {
    let old = Array(repeating: UInt8(1), count: 32)
    let new = Array(repeating: UInt8(2), count: 32)
    let alpha = Self.sealer(1, secret: old)
    let beta = Self.sealer(2, secret: old)
    var sequence: UInt64 = 0
    func exchange(_ from: PacketSealer, _ to: PacketSealer) throws -> UInt32 {
      sequence += 1
      let packet = Self.packet(
        from: from.local.rawValue, to: to.local.rawValue, sequence: sequence,
        .voteReply(VoteReply(term: 1, granted: true)))
      let sealed = try from.seal(packet)
      #expect(try to.open(sealed, peers: Self.peers).get() == packet)
      return try PacketCodec.readHeader(sealed, tagLength: 16).seal.keyID
    }
    let oldID = ClusterKey(secret: old, clusterName: "web").id
    let newID = ClusterKey(secret: new, clusterName: "web").id
    #expect(try exchange(alpha, beta) == oldID)
    // Step 1: the next key on alpha only: nothing changes yet.
    alpha.reload(
      current: ClusterKey(secret: old, clusterName: "web"), next: ClusterKey(secret: new, clusterName: "web"))
    #expect(try exchange(alpha, beta) == oldID)
    #expect(try exchange(beta, alpha) == oldID)
    // ... and on beta: beta hears alpha holds it, alpha hears beta holds it.
    beta.reload(current: ClusterKey(secret: old, clusterName: "web"), next: ClusterKey(secret: new, clusterName: "web"))
    _ = try exchange(alpha, beta)
    #expect(try exchange(beta, alpha) == newID)
    #expect(try exchange(alpha, beta) == newID)
    // Step 2: the next key becomes the key; the old one is gone.
    alpha.reload(current: ClusterKey(secret: new, clusterName: "web"), next: nil)
    #expect(try exchange(alpha, beta) == newID)
    #expect(try exchange(beta, alpha) == newID)
    beta.reload(current: ClusterKey(secret: new, clusterName: "web"), next: nil)
    #expect(try exchange(beta, alpha) == newID)
    let stale = try Self.sealer(2, secret: old).seal(Self.packet(.voteReply(VoteReply(term: 1, granted: true))))
    #expect(alpha.open(stale, peers: Self.peers) == .failure(.failedAuthentication))
  }

  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
  func authenticationMatchesAnIndependentHKDFAndHMAC() throws {
    // Python's hmac module: HKDF-SHA256 (RFC 5869) from the key file's bytes,
    // then HMAC-SHA256 over header and payload.
    let secret = (0..<32).map { UInt8($0) }
    let sealer = Self.sealer(2, .authenticated, secret: secret)
    let sealed = try sealer.seal(Self.packet(.voteReply(VoteReply(term: 3, granted: true))))
    let signed = sealed.dropLast(32).map { String(format: "%02x", $0) }.joined()
    let script = """
      import hmac,hashlib
      def hkdf(ikm, salt, info):
          prk = hmac.new(salt, ikm, hashlib.sha256).digest()
          return hmac.new(prk, info + b'\\x01', hashlib.sha256).digest()
      key = hkdf(bytes(range(32)), b'hactl/3 web', b'authentication')
      print(hmac.new(key, bytes.fromhex('\(signed)'), hashlib.sha256).hexdigest())
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", script]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    process.waitUntilExit()
    let expected = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(sealed.suffix(32).map { String(format: "%02x", $0) }.joined() == expected)
  }

  @Test func replayedStaleAndDuplicatePacketsAreDropped() {
    var filter = ReplayFilter()
    let node = NodeID(2)
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 1)) == .accept)
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 2)) == .accept)
    // A recent packet again: the same packet over another link, or a replay.
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 2)) == .duplicate)
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 1)) == .duplicate)
    // Older than anything remembered: only a replay can bring it.
    for sequence in 3...100 {
      _ = filter.check(PacketHeader(sender: node, incarnation: 10, sequence: UInt64(sequence)))
    }
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 5)) == .replayed)
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 50)) == .duplicate)
    #expect(filter.check(PacketHeader(sender: node, incarnation: 11, sequence: 1)) == .accept)
    #expect(filter.check(PacketHeader(sender: node, incarnation: 10, sequence: 99)) == .staleIncarnation)
    #expect(filter.check(PacketHeader(sender: NodeID(3), incarnation: 1, sequence: 1)) == .accept)
  }
}

@Suite(.serialized)
struct KeyFileTests {
  func temporaryPath() -> String {
    NSTemporaryDirectory() + "hactl-key-\(UInt64.random(in: 0 ... .max))"
  }

  func refusal(_ path: String) -> String? {
    do {
      _ = try ClusterKey.load(path: path, clusterName: "c")
      return nil
    } catch { return error.description }
  }

  @Test func keyFilesMustBePrivateAndLongEnough() throws {
    let path = temporaryPath()
    defer { unlink(path) }
    try Data(repeating: 1, count: 64).write(to: URL(fileURLWithPath: path))
    chmod(path, 0o640)
    #expect(refusal(path)?.contains("mode 640: it must not be readable or writable by group or others") == true)
    chmod(path, 0o604)
    #expect(refusal(path)?.contains("mode 604") == true)
    chmod(path, 0o600)
    #expect(refusal(path) == nil)
    try Data(repeating: 1, count: 16).write(to: URL(fileURLWithPath: path))
    chmod(path, 0o600)
    #expect(throws: ClusterKey.LoadError.tooShort(path, 16)) { try ClusterKey.load(path: path, clusterName: "c") }
    #expect(refusal("/nonexistent/key") == "key file: cannot read /nonexistent/key: No such file or directory")
  }

  /// A key reached through a link, owned by someone else, or not a file at
  /// all could be swapped by whoever controls it.
  @Test func keyFilesMustBeRegularFilesOfTheDaemonsUserNotLinks() throws {
    let path = temporaryPath()
    let link = path + ".link"
    defer {
      unlink(path)
      unlink(link)
    }
    try Data(repeating: 1, count: 64).write(to: URL(fileURLWithPath: path))
    chmod(path, 0o600)
    symlink(path, link)
    #expect(refusal(link)?.contains("symbolic link") == true)
    #expect(refusal(NSTemporaryDirectory())?.contains("not a regular file") == true)
    if geteuid() == 0 {
      chown(path, 65534, 65534)
      #expect(refusal(path)?.contains("owned by uid 65534") == true)
    }
    let huge = temporaryPath()
    defer { unlink(huge) }
    try Data(repeating: 1, count: ClusterKey.maximumLength + 1).write(to: URL(fileURLWithPath: huge))
    chmod(huge, 0o600)
    #expect(refusal(huge)?.contains("larger than") == true)
  }
}

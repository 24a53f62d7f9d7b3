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
    report: NodeReport(
      probed: true, mode: .standby,
      resources: [
        ResourceReport(id: "vip", role: .started),
        ResourceReport(
          id: "db", role: .blocked, failCount: 3,
          lastFailure: ResourceFailure(action: .stop, code: 198, reason: "timed out ✗", wallTime: 1_700_000_000)),
      ]),
    directives: Directives(assignments: [Assignment(resource: "vip", node: NodeID(2), token: 99)]),
    requests: [
      OperatorRequest(id: 5, kind: .move("vip", target: NodeID(1))),
      OperatorRequest(id: 6, kind: .move("db", target: nil)),
    ],
    answers: [
      RequestAnswer(origin: NodeID(3), id: 4, accepted: false, message: "no"),
      RequestAnswer(
        origin: NodeID(1), id: 5, accepted: true, message: "stored", configVersion: ConfigVersion(epoch: 7, version: 3)),
    ],
    config: ConfigStamp(version: ConfigVersion(epoch: 7, version: 3), digest: 0xDEAD_BEEF_0123_4567))

  static let messages: [Message] = [
    .heartbeat(fullHeartbeat),
    .heartbeat(Heartbeat(membership: MembershipBeat(term: 0, leader: nil, heard: [], members: []))),
    .voteRequest(VoteRequest(term: 12)),
    .voteRequest(VoteRequest(term: 13, preVote: true, configVersion: ConfigVersion(epoch: 9, version: 41))),
    .voteReply(VoteReply(term: 12, granted: true)),
    .configOffer(
      ConfigDocument(
        version: ConfigVersion(epoch: 3, version: 8), base: ConfigVersion(epoch: 2, version: 7),
        text: "cluster:\n  name: ✓ x\n")),
    .configProposal(ConfigProposal(id: 77, text: "nodes: []\n")),
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

  @Test func theLargestHeartbeatALeaderCanSendFitsOneDatagram() throws {
    let nodes = (1...UInt32(ClusterLimits.members)).map { NodeID($0) }
    let failure = ResourceFailure(
      action: .monitor, code: 1, reason: String(repeating: "é", count: 500), wallTime: 1_700_000_000)
    #expect(failure.reason.utf8.count <= ClusterLimits.failureReasonBytes)
    let ids = (0..<ClusterLimits.reportedResources).map {
      ResourceID(String(repeating: "r", count: 56) + String(format: "%08d", $0))
    }
    let largest = ClusterLimits.largestCounter
    let beat = Heartbeat(
      membership: MembershipBeat(
        term: largest, leader: nodes[0], heard: nodes, members: nodes,
        echoes: nodes.map { MembershipBeat.Echo(node: $0, stamp: .max) }),
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
    #expect(beat.answers[0].message.utf8.count == ClusterLimits.answerBytes)
    let bytes = try PacketCodec.encode(Packet(header: Self.header, message: .heartbeat(beat)))
    #expect(bytes.count <= PacketCodec.headerSize + PacketCodec.maximumPayload)
    #expect(try PacketCodec.decode(bytes) == Packet(header: Self.header, message: .heartbeat(beat)))
  }

  /// Every list one past its limit: the encoder refuses it, as the decoder
  /// would, instead of producing a heartbeat every peer drops.
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
    #expect(refused { $0.membership.term = ClusterLimits.largestCounter + 1 })
    #expect(refused { $0.config.version = ConfigVersion(epoch: 1, version: .max) })
  }

  /// A term or version near the top of its range would make `+ 1` trap at
  /// the next election or change, on every member that adopted it.
  @Test func termsAndVersionsBeyondAnyRealClusterAreRefused() throws {
    var writer = WireWriter()
    writer.u64(.max)
    var reader = WireReader(writer.bytes)
    #expect(throws: WireError.self) { try reader.counter(of: "term") }
    let request = Message.voteRequest(VoteRequest(term: 5, preVote: false, configVersion: .initial))
    var bytes = try PacketCodec.encode(Packet(header: Self.header, message: request))
    for index in PacketCodec.headerSize..<(PacketCodec.headerSize + 8) { bytes[index] = 0xff }
    #expect(throws: WireError.self) { try PacketCodec.decode(bytes) }
  }

  @Test func theLargestConfigurationFitsOneDatagram() throws {
    let text = String(repeating: "#", count: ClusterLimits.configurationBytes)
    let offer = Message.configOffer(
      ConfigDocument(
        version: ConfigVersion(epoch: 7, version: 9), base: ConfigVersion(epoch: 7, version: 8), text: text)
    )
    let proposal = Message.configProposal(ConfigProposal(id: .max, text: text))
    for message in [offer, proposal] {
      let bytes = try PacketCodec.encode(Packet(header: Self.header, message: message))
      #expect(bytes.count <= PacketCodec.headerSize + PacketCodec.maximumPayload)
      #expect(try PacketCodec.decode(bytes) == Packet(header: Self.header, message: message))
    }
  }

  @Test func longStringsAreCutOnACharacterBoundary() throws {
    var writer = WireWriter()
    writer.string(String(repeating: "é", count: 40_000))
    var reader = WireReader(writer.bytes)
    let text = try reader.string()
    #expect(text.utf8.count == 65_534)
    #expect(text.allSatisfy { $0 == "é" })
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
    let valid = try PacketCodec.encode(Packet(header: Self.header, message: .heartbeat(Self.fullHeartbeat)))
    var decodedMutants = 0
    for round in 0..<20_000 {
      var bytes: [UInt8]
      if round % 4 == 0 {
        bytes = (0..<Int.random(in: 0..<400, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
      } else {
        bytes = valid
        for _ in 0..<Int.random(in: 1...4, using: &random) {
          bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
        }
      }
      if (try? PacketCodec.decode(bytes)) != nil { decodedMutants += 1 }
    }
    // Some mutations land in harmless places (a reason string's letters);
    // the decoder must simply survive every one.
    #expect(decodedMutants < 20_000)
  }

  @Test func authenticationRejectsEveryChangeAndOtherClusters() throws {
    let secret = Array(repeating: UInt8(7), count: 32)
    let key = ClusterKey(secret: secret, clusterName: "web")
    let body = try PacketCodec.encode(Packet(header: Self.header, message: .voteRequest(VoteRequest(term: 3))))
    let sealed = key.seal(body)
    #expect(sealed.count == body.count + ClusterKey.tagLength)
    #expect(key.open(sealed) == body)
    for index in 0..<sealed.count {
      var tampered = sealed
      tampered[index] ^= 0x01
      #expect(key.open(tampered) == nil, "flipping byte \(index) went unnoticed")
    }
    #expect(ClusterKey(secret: secret, clusterName: "db").open(sealed) == nil)
    #expect(ClusterKey(secret: Array(repeating: 8, count: 32), clusterName: "web").open(sealed) == nil)
    #expect(key.open(Array(sealed.prefix(ClusterKey.tagLength))) == nil)
    #expect(key.open([]) == nil)
  }

  @Test func randomBytesAreNeverAuthenticated() {
    var random = SeededRandom(seed: 99)
    let key = ClusterKey(secret: Array(repeating: 1, count: 32), clusterName: "web")
    for _ in 0..<5000 {
      let bytes = (0..<Int.random(in: 0..<200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
      #expect(key.open(bytes) == nil)
    }
  }

  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")))
  func tagMatchesAnIndependentHMACSHA256() throws {
    // Python's hmac module computes HMAC-SHA256(key, context || packet).
    let secret = (0..<32).map { UInt8($0) }
    let key = ClusterKey(secret: secret, clusterName: "web")
    let body: [UInt8] = Array("hello hactl".utf8)
    let tag = Array(key.seal(body).suffix(ClusterKey.tagLength))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = [
      "-c",
      "import hmac,hashlib;print(hmac.new(bytes(range(32)), b'hactl/1 web\\0hello hactl', hashlib.sha256).hexdigest())",
    ]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    process.waitUntilExit()
    let expected = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(tag.map { String(format: "%02x", $0) }.joined() == expected)
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

import HactlMembership
import HactlModel

/// The versioned binary packet format (docs/wire-format.md):
///
///     magic "HACT" | version u8 | kind u8 | flags u16 | sender u32
///     | incarnation u64 | sequence u64 | sent at i64 | payload length u32 | payload
///
/// followed on the wire by an HMAC-SHA256 tag that the transport adds and checks.
public enum PacketCodec {
  public static let magic: [UInt8] = Array("HACT".utf8)
  public static let version: UInt8 = 2
  public static let headerSize = 40
  /// Comfortably under the IPv4 UDP limit; a heartbeat near it is refused at
  /// encoding rather than silently truncated.
  public static let maximumPayload = 60_000

  static let maxNodes = ClusterLimits.members
  static let maxResources = ClusterLimits.resources
  static let maxReported = ClusterLimits.reportedResources
  static let maxRequests = ClusterLimits.pendingRequests
  static let maxAnswers = ClusterLimits.answersKept

  enum Kind: UInt8 {
    case heartbeat = 1
    case voteRequest = 2
    case voteReply = 3
    case configOffer = 4
    case configProposal = 5
  }

  public static func encode(_ packet: Packet) throws(WireError) -> [UInt8] {
    var payload = WireWriter()
    let kind: Kind
    switch packet.message {
    case .heartbeat(let beat):
      kind = .heartbeat
      try encode(beat, into: &payload)
    case .voteRequest(let request):
      kind = .voteRequest
      try payload.counter(request.term, of: "term")
      payload.bool(request.preVote)
      try encode(request.configVersion, into: &payload)
    case .voteReply(let reply):
      kind = .voteReply
      try payload.counter(reply.term, of: "term")
      payload.bool(reply.granted)
      payload.bool(reply.preVote)
    case .configOffer(let document):
      kind = .configOffer
      try encode(document.version, into: &payload)
      try encode(document.base, into: &payload)
      payload.string(document.text)
    case .configProposal(let proposal):
      kind = .configProposal
      payload.u64(proposal.id)
      payload.string(proposal.text)
    }
    guard payload.bytes.count <= maximumPayload else { throw .tooLarge("payload", payload.bytes.count) }
    var out = WireWriter()
    for byte in magic { out.u8(byte) }
    out.u8(version)
    out.u8(kind.rawValue)
    out.u16(0)
    out.u32(packet.header.sender.rawValue)
    out.u64(packet.header.incarnation)
    out.u64(packet.header.sequence)
    out.i64(packet.header.sentAt)
    out.u32(UInt32(payload.bytes.count))
    return out.bytes + payload.bytes
  }

  public static func decode(_ bytes: [UInt8]) throws(WireError) -> Packet {
    var reader = WireReader(bytes)
    guard Array(try reader.take(4)) == magic else { throw .badMagic }
    let version = try reader.u8()
    guard version == Self.version else { throw .unsupportedVersion(version) }
    let rawKind = try reader.u8()
    guard let kind = Kind(rawValue: rawKind) else { throw .unknownKind(rawKind) }
    _ = try reader.u16()
    let sender = NodeID(try reader.u32())
    guard sender.rawValue != 0 else { throw .invalid("sender id 0") }
    let header = PacketHeader(
      sender: sender, incarnation: try reader.u64(), sequence: try reader.u64(), sentAt: try reader.i64())
    let length = Int(try reader.u32())
    guard length == reader.remaining else { throw .lengthMismatch(declared: length, actual: reader.remaining) }
    let message: Message
    switch kind {
    case .heartbeat: message = .heartbeat(try decodeHeartbeat(&reader))
    case .voteRequest:
      message = .voteRequest(
        VoteRequest(
          term: try reader.counter(of: "term"), preVote: try reader.bool(), configVersion: try decodeVersion(&reader)))
    case .voteReply:
      message = .voteReply(
        VoteReply(term: try reader.counter(of: "term"), granted: try reader.bool(), preVote: try reader.bool()))
    case .configOffer:
      message = .configOffer(
        ConfigDocument(
          version: try decodeVersion(&reader), base: try decodeVersion(&reader), text: try reader.string()))
    case .configProposal:
      message = .configProposal(ConfigProposal(id: try reader.u64(), text: try reader.string()))
    }
    guard reader.remaining == 0 else { throw .invalid("\(reader.remaining) trailing bytes") }
    return Packet(header: header, message: message)
  }

  /// The header fields alone, for the transport to look up the sender before
  /// checking the tag.
  public static func peekSender(_ bytes: [UInt8]) -> NodeID? {
    guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else { return nil }
    var reader = WireReader(bytes, offset: 8)
    guard let raw = try? reader.u32() else { return nil }
    return NodeID(raw)
  }

  // MARK: Heartbeat

  static func encode(_ beat: Heartbeat, into out: inout WireWriter) throws(WireError) {
    try out.counter(beat.membership.term, of: "term")
    out.optionalNode(beat.membership.leader)
    try encodeNodes(beat.membership.heard, into: &out)
    try encodeNodes(beat.membership.members, into: &out)
    try out.count(beat.membership.echoes.count, limit: maxNodes, of: "echo list")
    for echo in beat.membership.echoes {
      out.u32(echo.node.rawValue)
      out.i64(echo.stamp)
    }
    out.bool(beat.report != nil)
    if let report = beat.report {
      out.bool(report.probed)
      out.u8(report.mode == .standby ? 1 : 0)
      try out.count(report.resources.count, limit: maxReported, of: "resource list")
      for resource in report.resources {
        out.string(resource.id.rawValue)
        out.u8(roleCode(resource.role))
        out.u32(UInt32(clamping: resource.failCount))
        out.u64(resource.lastStartToken ?? 0)
        out.bool(resource.lastFailure != nil)
        if let failure = resource.lastFailure {
          out.u8(actionCode(failure.action))
          out.i32(failure.code)
          out.string(failure.reason)
          out.i64(failure.wallTime)
        }
      }
    }
    out.bool(beat.directives != nil)
    if let directives = beat.directives {
      try out.count(directives.assignments.count, limit: maxResources, of: "assignment list")
      for assignment in directives.assignments {
        out.string(assignment.resource.rawValue)
        out.u32(assignment.node.rawValue)
        out.u64(assignment.token)
      }
    }
    try out.count(beat.requests.count, limit: maxRequests, of: "request list")
    for request in beat.requests {
      out.u64(request.id)
      switch request.kind {
      case .move(let resource, let target):
        out.u8(1)
        out.string(resource.rawValue)
        out.optionalNode(target)
      }
    }
    try out.count(beat.answers.count, limit: maxAnswers, of: "answer list")
    for answer in beat.answers {
      out.u32(answer.origin.rawValue)
      out.u64(answer.id)
      out.bool(answer.accepted)
      out.string(answer.message)
      out.bool(answer.configVersion != nil)
      if let version = answer.configVersion { try encode(version, into: &out) }
    }
    try encode(beat.config.version, into: &out)
    out.u64(beat.config.digest)
  }

  static func encode(_ version: ConfigVersion, into out: inout WireWriter) throws(WireError) {
    try out.counter(version.epoch, of: "configuration epoch")
    try out.counter(version.version, of: "configuration version")
  }

  static func decodeVersion(_ reader: inout WireReader) throws(WireError) -> ConfigVersion {
    ConfigVersion(
      epoch: try reader.counter(of: "configuration epoch"), version: try reader.counter(of: "configuration version"))
  }

  static func decodeHeartbeat(_ reader: inout WireReader) throws(WireError) -> Heartbeat {
    let term = try reader.counter(of: "term")
    let leader = try reader.optionalNode()
    let heard = try decodeNodes(&reader)
    let members = try decodeNodes(&reader)
    var echoes: [MembershipBeat.Echo] = []
    for _ in 0..<(try reader.count(limit: maxNodes, of: "echo list")) {
      echoes.append(MembershipBeat.Echo(node: NodeID(try reader.u32()), stamp: try reader.i64()))
    }
    var beat = Heartbeat(
      membership: MembershipBeat(
        term: term, leader: leader, heard: heard, members: members, echoes: echoes))
    if try reader.bool() {
      let probed = try reader.bool()
      let mode: NodeMode
      switch try reader.u8() {
      case 0: mode = .online
      case 1: mode = .standby
      case let other: throw .invalid("node mode \(other)")
      }
      var resources: [ResourceReport] = []
      for _ in 0..<(try reader.count(limit: maxReported, of: "resource list")) {
        let id = ResourceID(try reader.string())
        let role = try role(from: try reader.u8())
        let failCount = Int(try reader.u32())
        let token = try reader.u64()
        var failure: ResourceFailure?
        if try reader.bool() {
          failure = ResourceFailure(
            action: try action(from: try reader.u8()), code: try reader.i32(), reason: try reader.string(),
            wallTime: try reader.i64())
        }
        resources.append(
          ResourceReport(
            id: id, role: role, failCount: failCount, lastFailure: failure, lastStartToken: token == 0 ? nil : token))
      }
      beat.report = NodeReport(probed: probed, mode: mode, resources: resources)
    }
    if try reader.bool() {
      var assignments: [Assignment] = []
      for _ in 0..<(try reader.count(limit: maxResources, of: "assignment list")) {
        assignments.append(
          Assignment(
            resource: ResourceID(try reader.string()), node: NodeID(try reader.u32()), token: try reader.u64()))
      }
      beat.directives = Directives(assignments: assignments)
    }
    for _ in 0..<(try reader.count(limit: maxRequests, of: "request list")) {
      let id = try reader.u64()
      switch try reader.u8() {
      case 1:
        beat.requests.append(
          OperatorRequest(id: id, kind: .move(ResourceID(try reader.string()), target: try reader.optionalNode())))
      case let other: throw .invalid("request kind \(other)")
      }
    }
    for _ in 0..<(try reader.count(limit: maxAnswers, of: "answer list")) {
      var answer = RequestAnswer(
        origin: NodeID(try reader.u32()), id: try reader.u64(), accepted: try reader.bool(),
        message: try reader.string())
      if try reader.bool() { answer.configVersion = try decodeVersion(&reader) }
      beat.answers.append(answer)
    }
    beat.config = ConfigStamp(version: try decodeVersion(&reader), digest: try reader.u64())
    return beat
  }

  static func encodeNodes(_ nodes: [NodeID], into out: inout WireWriter) throws(WireError) {
    try out.count(nodes.count, limit: maxNodes, of: "node list")
    for node in nodes { out.u32(node.rawValue) }
  }

  static func decodeNodes(_ reader: inout WireReader) throws(WireError) -> [NodeID] {
    var nodes: [NodeID] = []
    for _ in 0..<(try reader.count(limit: maxNodes, of: "node list")) {
      nodes.append(NodeID(try reader.u32()))
    }
    return nodes
  }

  static let roles: [ResourceRole] = [.unknown, .stopped, .starting, .started, .stopping, .failed, .blocked]
  static let actions: [AgentAction] = [.start, .stop, .monitor, .metaData, .validateAll]

  static func roleCode(_ role: ResourceRole) -> UInt8 { UInt8(roles.firstIndex(of: role)!) }
  static func role(from code: UInt8) throws(WireError) -> ResourceRole {
    guard Int(code) < roles.count else { throw .invalid("resource role \(code)") }
    return roles[Int(code)]
  }
  static func actionCode(_ action: AgentAction) -> UInt8 { UInt8(actions.firstIndex(of: action)!) }
  static func action(from code: UInt8) throws(WireError) -> AgentAction {
    guard Int(code) < actions.count else { throw .invalid("agent action \(code)") }
    return actions[Int(code)]
  }
}

import HactlMembership
import HactlModel

/// The versioned packet format (docs/wire-format.md, version 3): a clear
/// header that the transport authenticates as associated data, then a
/// payload of records (`RecordWriter`) that it encrypts, then the tag.
///
///     magic "HACT" | format u8 | kind u8 | protection u8 | reserved u8
///     | key id u32 | next key id u32 | sender u32 | receiver u32 | sender incarnation u64
///     | receiver incarnation u64 | sequence u64 | sent at i64
///     | payload length u32 | payload | tag
///
/// Everything a receiver checks before any cryptography is in the header:
/// size, magic, format, protection, key id, sender and receiver.
public enum PacketCodec {
  public static let magic: [UInt8] = Array("HACT".utf8)
  /// The format's major version: a receiver drops (and counts) any other.
  /// Fields and message kinds are added without changing it.
  public static let version: UInt8 = 3
  public static let headerSize = 60
  /// Every datagram, header and tag included, is at most this size: it
  /// fits a 1,500-byte Ethernet frame under IPv6 and UDP headers with room
  /// for a tunnel's, so no packet is ever fragmented by IP (fragments are
  /// lost on real networks). What is larger travels as parts.
  public static let maximumDatagram = 1_400
  /// The longest tag (HMAC-SHA256).
  public static let longestTag = 32
  public static let maximumPayload = maximumDatagram - headerSize - longestTag

  static let maxNodes = ClusterLimits.members
  static let maxResources = ClusterLimits.resources
  static let maxReported = ClusterLimits.reportedResources
  static let maxRequests = ClusterLimits.pendingRequests
  static let maxAnswers = ClusterLimits.answersKept

  /// Message kinds. A kind a receiver does not know is dropped and counted
  /// as unsupported, never as malformed: a newer daemon may add kinds.
  public enum Kind: UInt8, Sendable {
    case heartbeat = 1
    case voteRequest = 2
    case voteReply = 3
    case configOffer = 4
    case configProposal = 5
    case part = 6
  }

  /// How the payload is protected, and with which key (transport's business;
  /// the codec only carries it).
  public struct Seal: Sendable, Hashable {
    public var protection: UInt8
    /// The key this packet is sealed with.
    public var keyID: UInt32
    /// A second key the sender has loaded for a rotation (0: none): a peer
    /// holding the same one may switch to it (docs/wire-format.md, "Keys").
    public var nextKeyID: UInt32
    public init(protection: UInt8, keyID: UInt32, nextKeyID: UInt32 = 0) {
      self.protection = protection
      self.keyID = keyID
      self.nextKeyID = nextKeyID
    }
    /// No cryptography: the simulator and codec tests.
    public static let plain = Seal(protection: 0, keyID: 0)
  }

  /// A packet's header as read, before its payload is opened.
  public struct Envelope: Sendable {
    public var header: PacketHeader
    public var kind: UInt8
    public var seal: Seal
    /// Where the payload lies in the datagram; the tag follows it.
    public var payload: Range<Int>
  }

  // MARK: Encoding

  public static func encodePayload(_ message: Message) throws(WireError) -> (Kind, [UInt8]) {
    var out = RecordWriter()
    let kind: Kind
    switch message {
    case .heartbeat(let beat):
      kind = .heartbeat
      try encode(beat, into: &out)
    case .voteRequest(let request):
      kind = .voteRequest
      try out.counter(1, request.term, of: "term")
      out.bool(2, request.preVote)
      try version(3, request.configVersion, into: &out)
    case .voteReply(let reply):
      kind = .voteReply
      try out.counter(1, reply.term, of: "term")
      out.bool(2, reply.granted)
      out.bool(3, reply.preVote)
    case .configOffer(let document):
      kind = .configOffer
      try version(1, document.version, into: &out)
      try version(2, document.base, into: &out)
      try out.string(3, document.text)
    case .configProposal(let proposal):
      kind = .configProposal
      out.unsigned(1, proposal.id)
      try out.string(2, proposal.text)
      if let edit = proposal.edit { try encodeEdit(edit, into: &out) }
    case .part(let part):
      kind = .part
      guard part.count >= 1, part.count <= MessageParts.maximumParts, part.index >= 0, part.index < part.count,
        part.bytes.count <= MessageParts.chunkBytes
      else { throw .invalid("part \(part.index) of \(part.count) with \(part.bytes.count) bytes") }
      out.unsigned(1, UInt64(part.stream.rawValue))
      out.unsigned(2, part.id)
      out.unsigned(3, UInt64(part.index))
      out.unsigned(4, UInt64(part.count))
      out.data(5, part.bytes)
    }
    return (kind, out.bytes)
  }

  /// A payload that fits one datagram: what `MessageParts.fit` makes of any message.
  public static func encodeDatagramPayload(_ message: Message) throws(WireError) -> (Kind, [UInt8]) {
    let (kind, payload) = try encodePayload(message)
    guard payload.count <= maximumPayload else { throw .tooLarge("payload", payload.count) }
    return (kind, payload)
  }

  public static func encodeHeader(_ header: PacketHeader, kind: Kind, seal: Seal, payloadLength: Int) -> [UInt8] {
    var out = WireWriter()
    for byte in magic { out.u8(byte) }
    out.u8(version)
    out.u8(kind.rawValue)
    out.u8(seal.protection)
    out.u8(0)
    out.u32(seal.keyID)
    out.u32(seal.nextKeyID)
    out.u32(header.sender.rawValue)
    out.u32(header.receiver?.rawValue ?? 0)
    out.u64(header.incarnation)
    out.u64(header.receiverIncarnation)
    out.u64(header.sequence)
    out.i64(header.sentAt)
    out.u32(UInt32(payloadLength))
    return out.bytes
  }

  /// Header and clear payload, with no tag: for the simulator and tests.
  public static func encode(_ packet: Packet, seal: Seal = .plain) throws(WireError) -> [UInt8] {
    let (kind, payload) = try encodeDatagramPayload(packet.message)
    return encodeHeader(packet.header, kind: kind, seal: seal, payloadLength: payload.count) + payload
  }

  // MARK: Decoding

  /// The header alone, checked for everything that costs no cryptography:
  /// size, magic, format, lengths. `tagLength` bytes follow the payload.
  public static func readHeader(_ bytes: [UInt8], tagLength: Int) throws(WireError) -> Envelope {
    guard bytes.count >= headerSize + tagLength else {
      throw .truncated(needed: headerSize + tagLength, remaining: bytes.count)
    }
    guard bytes.count <= maximumDatagram else { throw .tooLarge("datagram", bytes.count) }
    var reader = WireReader(bytes)
    guard Array(try reader.take(4)) == magic else { throw .badMagic }
    let format = try reader.u8()
    guard format == version else { throw .unsupportedVersion(format) }
    let kind = try reader.u8()
    let protection = try reader.u8()
    _ = try reader.u8()
    let keyID = try reader.u32()
    let nextKeyID = try reader.u32()
    let sender = NodeID(try reader.u32())
    guard sender.rawValue != 0 else { throw .invalid("sender id 0") }
    let receiverRaw = try reader.u32()
    let header = PacketHeader(
      sender: sender, receiver: receiverRaw == 0 ? nil : NodeID(receiverRaw), incarnation: try reader.u64(),
      receiverIncarnation: try reader.u64(), sequence: try reader.u64(), sentAt: try reader.i64())
    let length = Int(try reader.u32())
    let available = bytes.count - headerSize - tagLength
    guard length == available else { throw .lengthMismatch(declared: length, actual: available) }
    return Envelope(
      header: header, kind: kind, seal: Seal(protection: protection, keyID: keyID, nextKeyID: nextKeyID),
      payload: headerSize..<(headerSize + length))
  }

  public static func decodePayload(kind raw: UInt8, _ bytes: [UInt8]) throws(WireError) -> Message {
    guard let kind = Kind(rawValue: raw) else { throw .unknownKind(raw) }
    var reader = RecordReader(bytes)
    switch kind {
    case .heartbeat: return .heartbeat(try decodeHeartbeat(&reader))
    case .voteRequest:
      var request = VoteRequest(term: 0)
      try reader.readFields { (field) throws(WireError) in
        switch field.tag {
        case 1: request.term = try field.counter(of: "term")
        case 2: request.preVote = try field.bool()
        case 3: request.configVersion = try decodeVersion(field)
        default: break
        }
      }
      return .voteRequest(request)
    case .voteReply:
      var reply = VoteReply(term: 0, granted: false)
      try reader.readFields { (field) throws(WireError) in
        switch field.tag {
        case 1: reply.term = try field.counter(of: "term")
        case 2: reply.granted = try field.bool()
        case 3: reply.preVote = try field.bool()
        default: break
        }
      }
      return .voteReply(reply)
    case .configOffer:
      var document = ConfigDocument(version: .initial, base: .initial, text: "")
      try reader.readFields { (field) throws(WireError) in
        switch field.tag {
        case 1: document.version = try decodeVersion(field)
        case 2: document.base = try decodeVersion(field)
        case 3: document.text = try field.string()
        default: break
        }
      }
      return .configOffer(document)
    case .configProposal:
      var proposal = ConfigProposal(id: 0, text: "")
      try reader.readFields { (field) throws(WireError) in
        switch field.tag {
        case 1: proposal.id = try field.unsigned()
        case 2: proposal.text = try field.string()
        case 3: proposal.edit = try decodeEdit(field)
        default: break
        }
      }
      return .configProposal(proposal)
    case .part:
      var stream: UInt64 = 0
      var part = MessagePart(stream: .report, id: 0, index: 0, count: 0, bytes: [])
      try reader.readFields { (field) throws(WireError) in
        switch field.tag {
        case 1: stream = try field.unsigned()
        case 2: part.id = try field.unsigned()
        case 3: part.index = Int(try field.unsigned(as: UInt16.self))
        case 4: part.count = Int(try field.unsigned(as: UInt16.self))
        case 5: part.bytes = field.data()
        default: break
        }
      }
      // A stream this version does not know belongs to a newer peer.
      guard let known = UInt8(exactly: stream).flatMap(PartStream.init(rawValue:)) else {
        throw .unknownKind(UInt8(clamping: stream))
      }
      part.stream = known
      guard part.count >= 1, part.count <= MessageParts.maximumParts, part.index < part.count,
        part.bytes.count <= MessageParts.chunkBytes
      else { throw .invalid("part \(part.index) of \(part.count) with \(part.bytes.count) bytes") }
      return .part(part)
    }
  }

  /// Header and clear payload, with no tag: for the simulator and tests.
  public static func decode(_ bytes: [UInt8]) throws(WireError) -> Packet {
    let envelope = try readHeader(bytes, tagLength: 0)
    let message = try decodePayload(kind: envelope.kind, Array(bytes[envelope.payload]))
    return Packet(header: envelope.header, message: message)
  }

  /// The sender alone, for a transport that looks it up before anything else.
  public static func peekSender(_ bytes: [UInt8]) -> NodeID? {
    guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else { return nil }
    var reader = WireReader(bytes, offset: 16)
    guard let raw = try? reader.u32(), raw != 0 else { return nil }
    return NodeID(raw)
  }

  // MARK: Heartbeat

  enum Beat {
    static let term: UInt8 = 1
    static let leader: UInt8 = 2
    static let heard: UInt8 = 3
    static let member: UInt8 = 4
    static let echo: UInt8 = 5
    static let report: UInt8 = 6
    static let directives: UInt8 = 7
    static let request: UInt8 = 8
    static let answer: UInt8 = 9
    static let configVersion: UInt8 = 10
    static let configDigest: UInt8 = 11
    static let sections: UInt8 = 12
    static let held: UInt8 = 13
    static let carried: UInt8 = 14
  }

  static func encode(_ beat: Heartbeat, into out: inout RecordWriter) throws(WireError) {
    try out.counter(Beat.term, beat.membership.term, of: "term")
    out.node(Beat.leader, beat.membership.leader)
    try out.nodes(Beat.heard, beat.membership.heard, of: "node list")
    try out.nodes(Beat.member, beat.membership.members, of: "node list")
    try out.list(Beat.echo, beat.membership.echoes, limit: maxNodes, of: "echo list") {
      (echo: inout RecordWriter, element) throws(WireError) in
      echo.node(1, element.node)
      echo.signed(2, element.stamp)
    }
    for section in beat.carried.sorted() { try encode(section, of: beat, into: &out) }
    try version(Beat.configVersion, beat.config.version, into: &out)
    out.unsigned(Beat.configDigest, beat.config.digest)
    try versions(Beat.sections, beat.sections, into: &out)
    try versions(Beat.held, beat.held, into: &out)
    for section in beat.carried.sorted() { out.unsigned(Beat.carried, UInt64(section.rawValue)) }
  }

  static func versions(_ tag: UInt8, _ versions: SectionVersions, into out: inout RecordWriter) throws(WireError) {
    for (section, number) in versions.versions {
      try out.record(tag) { (record: inout RecordWriter) throws(WireError) in
        record.unsigned(1, UInt64(section.rawValue))
        try record.counter(2, number, of: "section version")
      }
    }
  }

  /// One section's fields, as a heartbeat carries them and as its parts
  /// reassemble to.
  public static func sectionBytes(_ section: Section, of beat: Heartbeat) throws(WireError) -> [UInt8] {
    var out = RecordWriter()
    try encode(section, of: beat, into: &out)
    return out.bytes
  }

  /// A section's value from its reassembled bytes, set into `beat`.
  public static func decodeSection(
    _ section: Section, _ bytes: [UInt8], into beat: inout Heartbeat
  ) throws(WireError) {
    var reader = RecordReader(bytes)
    let decoded = try decodeHeartbeat(&reader)
    switch section {
    case .report: beat.report = decoded.report
    case .directives: beat.directives = decoded.directives
    case .requests: beat.requests = decoded.requests
    case .answers: beat.answers = decoded.answers
    }
  }

  static func encode(_ section: Section, of beat: Heartbeat, into out: inout RecordWriter) throws(WireError) {
    switch section {
    case .report:
      guard let report = beat.report else { return }
      try out.record(Beat.report) { (record: inout RecordWriter) throws(WireError) in
        record.bool(1, report.probed)
        record.unsigned(2, report.mode == .standby ? 1 : 0)
        let attributes = report.attributes.sorted { $0.key < $1.key }
        try record.list(4, attributes, limit: ClusterLimits.nodeAttributes, of: "attribute list") {
          (entry: inout RecordWriter, attribute) throws(WireError) in
          guard attribute.key.utf8.count <= ClusterLimits.attributeNameBytes,
            attribute.value.utf8.count <= ClusterLimits.attributeValueBytes
          else { throw .invalid("attribute '\(attribute.key.prefix(64))' is longer than a report carries") }
          try entry.string(1, attribute.key)
          try entry.string(2, attribute.value)
        }
        try record.list(3, report.resources, limit: maxReported, of: "resource list") {
          (entry: inout RecordWriter, resource) throws(WireError) in
          try entry.string(1, resource.id.rawValue)
          entry.unsigned(2, UInt64(roleCode(resource.role)))
          entry.unsigned(3, UInt64(UInt32(clamping: resource.failCount)))
          if let token = resource.lastStartToken { entry.unsigned(4, token) }
          if resource.promoted { entry.bool(6, true) }
          if resource.roleChanging { entry.bool(7, true) }
          if resource.halted { entry.bool(8, true) }
          if let notified = resource.notified { entry.unsigned(9, notified) }
          if resource.promotionFailed { entry.bool(10, true) }
          if let failure = resource.lastFailure {
            try entry.record(5) { (record: inout RecordWriter) throws(WireError) in
              record.unsigned(1, UInt64(actionCode(failure.action)))
              record.signed(2, Int64(failure.code))
              try record.string(3, failure.reason)
              record.signed(4, failure.wallTime)
            }
          }
        }
      }
    case .directives:
      guard let directives = beat.directives else { return }
      try out.record(Beat.directives) { (record: inout RecordWriter) throws(WireError) in
        try record.list(1, directives.assignments, limit: maxResources, of: "assignment list") {
          (entry: inout RecordWriter, assignment) throws(WireError) in
          try entry.string(1, assignment.resource.rawValue)
          entry.node(2, assignment.node)
          entry.unsigned(3, assignment.token)
          if assignment.promoted { entry.bool(4, true) }
          if let instance = assignment.instance { entry.unsigned(5, UInt64(instance)) }
        }
        try record.list(2, directives.notifications, limit: maxResources, of: "notification list") {
          (entry: inout RecordWriter, note) throws(WireError) in
          try encodeNotification(note, into: &entry)
        }
        try record.list(3, directives.fenced, limit: maxNodes, of: "fenced list") {
          (entry: inout RecordWriter, fenced) throws(WireError) in
          entry.node(1, fenced.node)
          entry.unsigned(2, fenced.boot)
          if let device = fenced.device {
            guard device.utf8.count <= FencedBoot.deviceBytes else {
              throw .tooLarge("fence device id", device.utf8.count)
            }
            try entry.string(3, device)
          }
          if let level = fenced.level { entry.unsigned(4, UInt64(min(255, max(0, level)))) }
          // Clamped to what the reader takes (a level in a byte, a duration in 32 bits).
          if let milliseconds = fenced.milliseconds {
            entry.unsigned(5, UInt64(min(Int64(UInt32.max), max(0, milliseconds))))
          }
        }
      }
    case .requests:
      try out.list(Beat.request, beat.requests, limit: maxRequests, of: "request list") {
        (entry: inout RecordWriter, request) throws(WireError) in
        entry.unsigned(1, request.id)
        switch request.kind {
        case .move(let resource, let target):
          entry.unsigned(2, 1)
          try entry.string(3, resource.rawValue)
          entry.node(4, target)
        case .cleanup(let resource, let node):
          entry.unsigned(2, 2)
          try entry.string(3, resource.rawValue)
          entry.node(4, node)
        case .attribute(let node, let name, let value):
          entry.unsigned(2, 3)
          entry.node(4, node)
          try entry.string(5, name)
          if let value { try entry.string(6, value) }
        case .fence(let node, let action, let confirm):
          entry.unsigned(2, 4)
          entry.node(4, node)
          if confirm { entry.bool(7, true) }
          if let action { entry.unsigned(8, action == .off ? 2 : 1) }
        }
      }
    case .answers:
      try out.list(Beat.answer, beat.answers, limit: maxAnswers, of: "answer list") {
        (entry: inout RecordWriter, answer) throws(WireError) in
        entry.node(1, answer.origin)
        entry.unsigned(2, answer.id)
        entry.bool(3, answer.accepted)
        try entry.string(4, answer.message)
        if let configVersion = answer.configVersion { try version(5, configVersion, into: &entry) }
      }
    }
  }

  /// A clone notification: `{1: resource, 2: id, 3: timing, 4: operation,
  /// 5: target node (repeated), 6: entry {1: list, 2: instance, 3: node}
  /// (repeated)}`.
  static func encodeNotification(_ note: CloneNotification, into out: inout RecordWriter) throws(WireError) {
    try out.string(1, note.resource.rawValue)
    out.unsigned(2, note.id)
    out.unsigned(3, UInt64(note.timing.rawValue))
    out.unsigned(4, UInt64(actionCode(note.operation)))
    try out.nodes(5, note.targets, of: "notification target list")
    try out.list(6, note.entries, limit: CloneNotification.maximumEntries, of: "notification entry list") {
      (entry: inout RecordWriter, item) throws(WireError) in
      entry.unsigned(1, UInt64(item.list.rawValue))
      entry.unsigned(2, UInt64(item.instance))
      entry.node(3, item.node)
    }
  }

  static func decodeNotification(_ field: RecordField) throws(WireError) -> CloneNotification? {
    var resource: ResourceID?
    var id: UInt64 = 0
    var timing: CloneNotification.Timing?
    var operation: AgentAction?
    var targets: [NodeID] = []
    var entries: [CloneNotification.Entry] = []
    var reader = field.record()
    let limits: [UInt8: (Int, String)] = [
      5: (maxNodes, "notification target list"), 6: (CloneNotification.maximumEntries, "notification entry list"),
    ]
    try reader.readFields(limits: limits) { (part) throws(WireError) in
      switch part.tag {
      case 1: resource = ResourceID(try part.string())
      case 2: id = try part.unsigned()
      case 3: timing = UInt8(exactly: try part.unsigned()).flatMap(CloneNotification.Timing.init(rawValue:))
      case 4:
        let code = try part.unsigned()
        operation = code < actions.count ? actions[Int(code)] : nil
      case 5: targets.append(try part.node())
      case 6:
        var list: CloneNotification.List?
        var instance: Int?
        var node: NodeID?
        var inner = part.record()
        try inner.readFields { (item) throws(WireError) in
          switch item.tag {
          case 1: list = UInt8(exactly: try item.unsigned()).flatMap(CloneNotification.List.init(rawValue:))
          case 2: instance = Int(try item.unsigned(as: UInt16.self))
          case 3: node = try item.node()
          default: break
          }
        }
        // A list a newer leader added is skipped; the rest still counts.
        guard let instance, let node else { throw .invalid("notification entry without an instance or node") }
        if let list { entries.append(CloneNotification.Entry(list, instance: instance, node: node)) }
      default: break
      }
    }
    guard let resource else { throw .invalid("notification without a resource") }
    guard let timing, let operation else { return nil }
    return CloneNotification(
      resource: resource, id: id, timing: timing, operation: operation, targets: targets, entries: entries)
  }

  /// An operator edit: field 3 of a proposal, `{1: kind, 2: resource,
  /// 3: node, 4: on, 5: until, 6: name, 7: value}`; kinds 1 ban, 2 pin,
  /// 3 clear, 4 standby, 5 online, 6 maintenance, 7 permanent node
  /// attribute, 8 cluster property (no value: removed).
  static func encodeEdit(_ edit: OperatorEdit, into out: inout RecordWriter) throws(WireError) {
    try out.record(3) { (record: inout RecordWriter) throws(WireError) in
      switch edit {
      case .ban(let resource, let node, let until), .pin(let resource, let node, let until):
        if case .ban = edit { record.unsigned(1, 1) } else { record.unsigned(1, 2) }
        try record.string(2, resource.rawValue)
        try record.string(3, node)
        if let until {
          guard (0...WallClockText.latest).contains(until) else { throw .invalid("an edit's end is out of range") }
          record.signed(5, until)
        }
      case .clear(let resource):
        record.unsigned(1, 3)
        try record.string(2, resource.rawValue)
      case .standby(let node):
        record.unsigned(1, 4)
        try record.string(3, node)
      case .online(let node):
        record.unsigned(1, 5)
        try record.string(3, node)
      case .maintenance(let on, let node, let resource):
        record.unsigned(1, 6)
        if let resource { try record.string(2, resource.rawValue) }
        if let node { try record.string(3, node) }
        record.bool(4, on)
      case .nodeAttribute(let node, let name, let value):
        record.unsigned(1, 7)
        try record.string(3, node)
        try record.string(6, name)
        if let value { try record.string(7, value) }
      case .property(let name, let value):
        record.unsigned(1, 8)
        try record.string(6, name)
        if let value { try record.string(7, value) }
      }
    }
  }

  static func decodeEdit(_ field: RecordField) throws(WireError) -> OperatorEdit {
    var kind: UInt64 = 0
    var resource: ResourceID?
    var node: String?
    var on = false
    var until: Int64?
    var name: String?
    var value: String?
    var reader = field.record()
    try reader.readFields { (item) throws(WireError) in
      switch item.tag {
      case 1: kind = try item.unsigned()
      case 2: resource = ResourceID(try item.string())
      case 3: node = try item.string()
      case 4: on = try item.bool()
      case 5:
        let value = try item.signed()
        guard (0...WallClockText.latest).contains(value) else { throw .invalid("an edit's end is out of range") }
        until = value
      case 6: name = try item.string()
      case 7: value = try item.string()
      default: break
      }
    }
    switch (kind, resource, node) {
    case (1, let resource?, let node?): return .ban(resource, node: node, until: until)
    case (2, let resource?, let node?): return .pin(resource, node: node, until: until)
    case (3, let resource?, _): return .clear(resource)
    case (4, _, let node?): return .standby(node: node)
    case (5, _, let node?): return .online(node: node)
    case (6, _, _): return .maintenance(on: on, node: node, resource: resource)
    case (7, _, let node?) where name != nil: return .nodeAttribute(node: node, name: name!, value: value)
    case (8, _, _) where name != nil: return .property(name: name!, value: value)
    default: throw .invalid("operator edit of kind \(kind) without what it names")
    }
  }

  static func version(_ tag: UInt8, _ version: ConfigVersion, into out: inout RecordWriter) throws(WireError) {
    try out.record(tag) { (record: inout RecordWriter) throws(WireError) in
      try record.counter(1, version.epoch, of: "configuration epoch")
      try record.counter(2, version.version, of: "configuration version")
    }
  }

  static func decodeVersion(_ field: RecordField) throws(WireError) -> ConfigVersion {
    var version = ConfigVersion.initial
    var reader = field.record()
    try reader.readFields { (inner) throws(WireError) in
      switch inner.tag {
      case 1: version.epoch = try inner.counter(of: "configuration epoch")
      case 2: version.version = try inner.counter(of: "configuration version")
      default: break
      }
    }
    return version
  }

  static func decodeHeartbeat(_ reader: inout RecordReader) throws(WireError) -> Heartbeat {
    var beat = Heartbeat(membership: MembershipBeat(term: 0, leader: nil, heard: [], members: []))
    beat.carried = []
    let sectionLimit = (Section.allCases.count, "section list")
    let limits: [UInt8: (Int, String)] = [
      Beat.heard: (maxNodes, "node list"), Beat.member: (maxNodes, "node list"), Beat.echo: (maxNodes, "echo list"),
      Beat.request: (maxRequests, "request list"), Beat.answer: (maxAnswers, "answer list"),
      Beat.report: (1, "report"), Beat.directives: (1, "directives"), Beat.sections: sectionLimit,
      Beat.held: sectionLimit, Beat.carried: sectionLimit,
    ]
    try reader.readFields(limits: limits) { (field) throws(WireError) in
      switch field.tag {
      case Beat.term: beat.membership.term = try field.counter(of: "term")
      case Beat.leader: beat.membership.leader = try field.node()
      case Beat.heard: beat.membership.heard.append(try field.node())
      case Beat.member: beat.membership.members.append(try field.node())
      case Beat.echo:
        var node: NodeID?
        var stamp: Int64 = 0
        var inner = field.record()
        try inner.readFields { (part) throws(WireError) in
          switch part.tag {
          case 1: node = try part.node()
          case 2: stamp = try part.signed()
          default: break
          }
        }
        guard let node else { throw .invalid("echo without a node") }
        beat.membership.echoes.append(MembershipBeat.Echo(node: node, stamp: stamp))
      case Beat.report: beat.report = try decodeReport(field)
      case Beat.directives:
        var assignments: [Assignment] = []
        var notifications: [CloneNotification] = []
        var fenced: [FencedBoot] = []
        var inner = field.record()
        let limits: [UInt8: (Int, String)] = [
          1: (maxResources, "assignment list"), 2: (maxResources, "notification list"), 3: (maxNodes, "fenced list"),
        ]
        try inner.readFields(limits: limits) { (part) throws(WireError) in
          if part.tag == 3 {
            var item = FencedBoot(node: NodeID(0), boot: 0)
            var node: NodeID?
            var entry = part.record()
            try entry.readFields { (value) throws(WireError) in
              switch value.tag {
              case 1: node = try value.node()
              case 2: item.boot = try value.unsigned()
              case 3:
                let device = try value.string()
                guard device.utf8.count <= FencedBoot.deviceBytes else {
                  throw .invalid("a fence device id longer than \(FencedBoot.deviceBytes) bytes")
                }
                item.device = device
              case 4: item.level = Int(try value.unsigned(as: UInt8.self))
              case 5: item.milliseconds = Int64(try value.unsigned(as: UInt32.self))
              default: break
              }
            }
            guard let node else { throw .invalid("a fenced entry without a node") }
            item.node = node
            fenced.append(item)
            return
          }
          if part.tag == 2 {
            // A notification of a kind this version cannot run is left out.
            if let note = try decodeNotification(part) { notifications.append(note) }
            return
          }
          guard part.tag == 1 else { return }
          var resource: ResourceID?
          var node: NodeID?
          var token: UInt64 = 0
          var promoted = false
          var instance: Int?
          var entry = part.record()
          try entry.readFields { (value) throws(WireError) in
            switch value.tag {
            case 1: resource = ResourceID(try value.string())
            case 2: node = try value.node()
            case 3: token = try value.unsigned()
            case 4: promoted = try value.bool()
            case 5: instance = Int(try value.unsigned(as: UInt16.self))
            default: break
            }
          }
          guard let resource, let node else { throw .invalid("assignment without a resource or node") }
          assignments.append(
            Assignment(resource: resource, node: node, token: token, promoted: promoted, instance: instance))
        }
        var directives = Directives(assignments: assignments, notifications: notifications)
        directives.fenced = fenced
        beat.directives = directives
      case Beat.request:
        var id: UInt64 = 0
        var kind: UInt64 = 0
        var resource: ResourceID?
        var target: NodeID?
        var name: String?
        var value: String?
        var confirm = false
        var fenceAction: UInt64 = 0
        var inner = field.record()
        try inner.readFields { (part) throws(WireError) in
          switch part.tag {
          case 1: id = try part.unsigned()
          case 2: kind = try part.unsigned()
          case 3: resource = ResourceID(try part.string())
          case 4: target = try part.node()
          case 5: name = try part.string()
          case 6: value = try part.string()
          case 7: confirm = try part.bool()
          case 8: fenceAction = try part.unsigned()
          default: break
          }
        }
        let request: OperatorRequest.Kind
        switch kind {
        case 1, 2:
          guard let resource else { throw .invalid("request without a resource") }
          request = kind == 1 ? .move(resource, target: target) : .cleanup(resource, node: target)
        case 3:
          guard let target, let name else { throw .invalid("attribute request without its node and name") }
          request = .attribute(node: target, name: name, value: value)
        case 4:
          guard let target else { throw .invalid("fence request without its node") }
          // An action this version does not know: the devices' own.
          let action: FenceAction? = fenceAction == 1 ? .reboot : fenceAction == 2 ? .off : nil
          request = .fence(node: target, action: action, confirm: confirm)
        default:
          // A request of a kind this version does not know is left to the
          // leader that does: skipped, not refused.
          return
        }
        beat.requests.append(OperatorRequest(id: id, kind: request))
      case Beat.answer:
        var origin: NodeID?
        var answer = RequestAnswer(origin: NodeID(1), id: 0, accepted: false, message: "")
        var inner = field.record()
        try inner.readFields { (part) throws(WireError) in
          switch part.tag {
          case 1: origin = try part.node()
          case 2: answer.id = try part.unsigned()
          case 3: answer.accepted = try part.bool()
          case 4: answer.message = String(try part.string().utf8Prefix(ClusterLimits.answerBytes))
          case 5: answer.configVersion = try decodeVersion(part)
          default: break
          }
        }
        guard let origin else { throw .invalid("answer without an origin") }
        answer.origin = origin
        beat.answers.append(answer)
      case Beat.configVersion: beat.config.version = try decodeVersion(field)
      case Beat.configDigest: beat.config.digest = try field.unsigned()
      case Beat.sections: try decodeVersion(field, into: &beat.sections)
      case Beat.held: try decodeVersion(field, into: &beat.held)
      case Beat.carried:
        // A section a newer peer added is skipped like any unknown field.
        if let section = UInt8(exactly: try field.unsigned()).flatMap(Section.init(rawValue:)) {
          beat.carried.insert(section)
        }
      default: break
      }
    }
    return beat
  }

  static func decodeVersion(_ field: RecordField, into versions: inout SectionVersions) throws(WireError) {
    var code: UInt64 = 0
    var number: UInt64 = 0
    var reader = field.record()
    try reader.readFields { (inner) throws(WireError) in
      switch inner.tag {
      case 1: code = try inner.unsigned()
      case 2: number = try inner.counter(of: "section version")
      default: break
      }
    }
    guard let section = UInt8(exactly: code).flatMap(Section.init(rawValue:)) else { return }
    versions[section] = number
  }

  static func decodeReport(_ field: RecordField) throws(WireError) -> NodeReport {
    var report = NodeReport(probed: false, mode: .online, resources: [])
    // Collected, then set once: the report indexes its list on each set.
    var resources: [ResourceReport] = []
    var reader = field.record()
    let limits: [UInt8: (Int, String)] = [
      3: (maxReported, "resource list"), 4: (ClusterLimits.nodeAttributes, "attribute list"),
    ]
    try reader.readFields(limits: limits) { (part) throws(WireError) in
      switch part.tag {
      case 4:
        var name: String?
        var value: String?
        var inner = part.record()
        try inner.readFields { (item) throws(WireError) in
          switch item.tag {
          case 1: name = try item.string()
          case 2: value = try item.string()
          default: break
          }
        }
        guard let name, let value, name.utf8.count <= ClusterLimits.attributeNameBytes,
          value.utf8.count <= ClusterLimits.attributeValueBytes
        else { throw .invalid("a node attribute without a name or value, or longer than allowed") }
        report.attributes[name] = value
      case 1: report.probed = try part.bool()
      case 2:
        switch try part.unsigned() {
        case 0: report.mode = .online
        case 1: report.mode = .standby
        case let other: throw .invalid("node mode \(other)")
        }
      case 3:
        var id: ResourceID?
        var entry = ResourceReport(id: "", role: .unknown)
        var inner = part.record()
        try inner.readFields { (value) throws(WireError) in
          switch value.tag {
          case 1: id = ResourceID(try value.string())
          case 2: entry.role = try role(from: try value.unsigned(as: UInt8.self))
          case 3: entry.failCount = Int(try value.unsigned(as: UInt32.self))
          case 4: entry.lastStartToken = try value.unsigned()
          case 6: entry.promoted = try value.bool()
          case 7: entry.roleChanging = try value.bool()
          case 8: entry.halted = try value.bool()
          case 9: entry.notified = try value.unsigned()
          case 10: entry.promotionFailed = try value.bool()
          case 5:
            var failure = ResourceFailure(action: .monitor, code: 0, reason: "", wallTime: 0)
            var knownAction = true
            var fields = value.record()
            try fields.readFields { (item) throws(WireError) in
              switch item.tag {
              case 1:
                // An action added by a newer version: the failure is not
                // shown here, the rest of the report is read.
                let code = try item.unsigned(as: UInt8.self)
                knownAction = Int(code) < actions.count
                if knownAction { failure.action = actions[Int(code)] }
              case 2:
                guard let code = Int32(exactly: try item.signed()) else { throw .invalid("exit code out of range") }
                failure.code = code
              case 3: failure.reason = String(try item.string().utf8Prefix(ClusterLimits.failureReasonBytes))
              case 4: failure.wallTime = try item.signed()
              default: break
              }
            }
            entry.lastFailure = knownAction ? failure : nil
          default: break
          }
        }
        guard let id else { throw .invalid("resource report without an id") }
        entry.id = id
        resources.append(entry)
      default: break
      }
    }
    report.resources = resources
    return report
  }

  static let roles: [ResourceRole] = [.unknown, .stopped, .starting, .started, .stopping, .failed, .blocked]
  /// Codes are positions: new actions are only ever appended.
  static let actions: [AgentAction] = [
    .start, .stop, .monitor, .metaData, .validateAll, .promote, .demote, .notify, .reloadAgent, .reload,
  ]

  static func roleCode(_ role: ResourceRole) -> UInt8 { UInt8(roles.firstIndex(of: role)!) }
  static func role(from code: UInt8) throws(WireError) -> ResourceRole {
    guard Int(code) < roles.count else { throw .invalid("resource role \(code)") }
    return roles[Int(code)]
  }
  static func actionCode(_ action: AgentAction) -> UInt8 { UInt8(actions.firstIndex(of: action)!) }
}

import HactlModel

/// Messages larger than one datagram, as parts that each fit one.
///
/// A heartbeat keeps its membership and versions in its own datagram and
/// sends the sections that do not fit as parts just before it; a
/// configuration offer or proposal too large for a datagram goes whole as
/// parts. Parts carry no order and no acknowledgement of their own: whoever
/// sent the whole sends it again (a heartbeat section until the receiver
/// holds its version, an offer until the peer runs that configuration), and
/// parts with the same stream and id combine across those repeats, so a
/// receiver completes a whole even when no single round arrived intact.
public enum MessageParts {
  /// The bytes of one part: with the part's fields, the header and the
  /// longest tag, under `PacketCodec.maximumDatagram`.
  public static let chunkBytes = 1_200
  /// The most parts of one whole: more than the largest configuration or
  /// report needs (a test checks both).
  public static let maximumParts = 512
  public static var maximumWholeBytes: Int { chunkBytes * maximumParts }

  /// The datagrams that carry `message`, parts first: each fits
  /// `PacketCodec.maximumPayload`.
  public static func fit(_ message: Message) throws(WireError) -> [Message] {
    let (_, payload) = try PacketCodec.encodePayload(message)
    guard payload.count > PacketCodec.maximumPayload else { return [message] }
    switch message {
    case .heartbeat(var beat):
      // The largest sections go as parts until the rest fits.
      var sized: [(Section, [UInt8])] = []
      for section in beat.carried { sized.append((section, try PacketCodec.sectionBytes(section, of: beat))) }
      sized.sort { ($0.1.count, $0.0.rawValue) > ($1.1.count, $1.0.rawValue) }
      var parts: [Message] = []
      for (section, bytes) in sized {
        beat.carried.remove(section)
        beat.clear(section)
        parts += try split(bytes, stream: PartStream(section), id: beat.sections[section])
        if try PacketCodec.encodePayload(.heartbeat(beat)).1.count <= PacketCodec.maximumPayload {
          return parts + [.heartbeat(beat)]
        }
      }
      throw .tooLarge("heartbeat without its sections", try PacketCodec.encodePayload(.heartbeat(beat)).1.count)
    case .configOffer:
      return try split(payload, stream: .configOffer, id: ConfigStamp.digest(of: payload))
    case .configProposal:
      return try split(payload, stream: .configProposal, id: ConfigStamp.digest(of: payload))
    case .voteRequest, .voteReply, .part:
      throw .tooLarge("payload", payload.count)
    }
  }

  public static func split(_ bytes: [UInt8], stream: PartStream, id: UInt64) throws(WireError) -> [Message] {
    let count = max(1, (bytes.count + chunkBytes - 1) / chunkBytes)
    guard count <= maximumParts else { throw .tooLarge("\(stream) in parts", bytes.count) }
    return (0..<count).map { index in
      let chunk = Array(bytes[(index * chunkBytes)..<min(bytes.count, (index + 1) * chunkBytes)])
      return .part(MessagePart(stream: stream, id: id, index: index, count: count, bytes: chunk))
    }
  }

  /// A whole from its parts, as reassembled.
  public static func message(of stream: PartStream, _ bytes: [UInt8]) throws(WireError) -> Message? {
    switch stream {
    case .configOffer: return try PacketCodec.decodePayload(kind: PacketCodec.Kind.configOffer.rawValue, bytes)
    case .configProposal: return try PacketCodec.decodePayload(kind: PacketCodec.Kind.configProposal.rawValue, bytes)
    case .report, .directives, .requests, .answers: return nil
    }
  }
}

/// Reassembles one sender's parts: per stream, the parts of one id at a time
/// (a newer id replaces a whole in progress). Everything it keeps is
/// bounded by `MessageParts`' limits.
public struct PartAssembler: Sendable, Hashable {
  struct Whole: Sendable, Hashable {
    var id: UInt64
    var count: Int
    var chunks: [Int: [UInt8]] = [:]
  }
  var wholes: [PartStream: Whole] = [:]

  public init() {}

  /// The whole's bytes once its last part arrives.
  public mutating func add(_ part: MessagePart) -> [UInt8]? {
    // The decoder refuses these already; a caller that did not decode
    // must not be able to make the assembly trap.
    guard part.count >= 1, part.count <= MessageParts.maximumParts, (0..<part.count).contains(part.index),
      part.bytes.count <= MessageParts.chunkBytes
    else { return nil }
    var whole = wholes[part.stream] ?? Whole(id: part.id, count: part.count)
    if whole.id != part.id || whole.count != part.count { whole = Whole(id: part.id, count: part.count) }
    whole.chunks[part.index] = part.bytes
    guard whole.chunks.count == whole.count else {
      wholes[part.stream] = whole
      return nil
    }
    wholes[part.stream] = nil
    return (0..<whole.count).flatMap { whole.chunks[$0]! }
  }

  /// Forgets a whole in progress (its content is no longer wanted).
  public mutating func drop(_ stream: PartStream) { wholes[stream] = nil }
}

import HactlModel

/// Drops packets that are replayed, duplicated or from an older boot of their
/// sender: per sender, the incarnation may only grow, and within one
/// incarnation the sequence number must.
public struct ReplayFilter: Sendable {
  var latest: [NodeID: (incarnation: UInt64, sequence: UInt64)] = [:]
  /// Recently accepted sequences per sender: a second copy of one of them is
  /// the same packet over another link, not an attack.
  var recent: [NodeID: [UInt64]] = [:]
  static let remembered = 64
  public init() {}

  public enum Verdict: Sendable, Equatable {
    case accept
    case staleIncarnation
    case replayed
    /// Already accepted from another link.
    case duplicate
  }

  public mutating func check(_ header: PacketHeader) -> Verdict {
    if let known = latest[header.sender] {
      if header.incarnation < known.incarnation { return .staleIncarnation }
      if header.incarnation == known.incarnation && header.sequence <= known.sequence {
        return recent[header.sender]?.contains(header.sequence) == true ? .duplicate : .replayed
      }
      if header.incarnation > known.incarnation { recent[header.sender] = [] }
    }
    latest[header.sender] = (header.incarnation, header.sequence)
    recent[header.sender, default: []].append(header.sequence)
    if recent[header.sender]!.count > Self.remembered { recent[header.sender]!.removeFirst() }
    return .accept
  }
}

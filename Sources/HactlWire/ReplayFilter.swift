import HactlModel

/// Drops packets that are replayed, duplicated or from an older boot of their
/// sender: per sender, the incarnation may only grow, and within one
/// incarnation the sequence number must.
public struct ReplayFilter: Sendable {
  var latest: [NodeID: (incarnation: UInt64, sequence: UInt64)] = [:]
  public init() {}

  public enum Verdict: Sendable, Equatable {
    case accept
    case staleIncarnation
    case replayed
  }

  public mutating func check(_ header: PacketHeader) -> Verdict {
    if let known = latest[header.sender] {
      if header.incarnation < known.incarnation { return .staleIncarnation }
      if header.incarnation == known.incarnation && header.sequence <= known.sequence { return .replayed }
    }
    latest[header.sender] = (header.incarnation, header.sequence)
    return .accept
  }
}

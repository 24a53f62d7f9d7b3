/// Where a configuration sits in the cluster's history. The epoch is the term
/// of the leader that made it and the version counts every change, so two
/// leaders can never make different configurations with the same stamp (one
/// leader per term), and the newest one wins everywhere.
public struct ConfigVersion: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
  public var epoch: UInt64
  public var version: UInt64

  public init(epoch: UInt64, version: UInt64) {
    self.epoch = epoch
    self.version = version
  }

  /// The configuration file a daemon starts from, before any `config apply`.
  public static let initial = ConfigVersion(epoch: 0, version: 0)

  public static func < (lhs: ConfigVersion, rhs: ConfigVersion) -> Bool {
    (lhs.epoch, lhs.version) < (rhs.epoch, rhs.version)
  }

  /// The next change, made by the leader of `term`.
  public func next(term: UInt64) -> ConfigVersion {
    ConfigVersion(epoch: max(term, epoch), version: version + 1)
  }

  public var description: String { "\(epoch).\(version)" }
}

/// A configuration as the cluster replicates it: the operator's own text,
/// exactly as written (comments included), with its place in the history.
public struct ConfigDocument: Sendable, Hashable, Codable {
  public var version: ConfigVersion
  /// The version it replaced when the leader made it: a new configuration is
  /// always made from the newest one the cluster acknowledged.
  public var base: ConfigVersion
  public var text: String

  public init(version: ConfigVersion, base: ConfigVersion, text: String) {
    self.version = version
    self.base = base
    self.text = text
  }

  /// What a heartbeat says of it.
  public var stamp: ConfigStamp { ConfigStamp(version: version, digest: ConfigStamp.digest(of: text)) }
}

/// A configuration's version with a digest of its text, carried in every
/// heartbeat: peers behind get the text, and two nodes that started from
/// different files at the same version are noticed.
public struct ConfigStamp: Sendable, Hashable, Codable {
  public var version: ConfigVersion
  public var digest: UInt64

  public init(version: ConfigVersion, digest: UInt64) {
    self.version = version
    self.digest = digest
  }

  /// FNV-1a over the UTF-8 bytes: a mismatch detector, not a security check
  /// (packets are already authenticated).
  public static func digest(of text: String) -> UInt64 { digest(of: text.utf8) }

  public static func digest<Bytes: Sequence<UInt8>>(of bytes: Bytes) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash ^= UInt64(byte)
      hash = hash &* 0x0000_0100_0000_01b3
    }
    return hash
  }
}

import Crypto
import Foundation
import HactlConfig
import HactlModel
import HactlWire
import Synchronization

/// One cluster key: the secret bytes of a key file, and what is derived
/// from them. The raw secret is never used directly: HKDF gives each use
/// (the key id, authentication, each sender's boot) a key of its own.
public struct ClusterKey: Sendable {
  /// Names the key in every packet header, so that a receiver holding two
  /// keys during a rotation knows which one opens it (not secret: derived).
  public let id: UInt32
  let secret: SymmetricKey
  let salt: [UInt8]
  /// HMAC-SHA256 key for clusters that turned encryption off.
  let authenticationKey: SymmetricKey

  public static let minimumLength = 32
  /// The largest key file read: keys are 64 bytes; anything much larger is
  /// not a key file.
  public static let maximumLength = 4096

  public enum LoadError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(String)
    case tooShort(String, Int)

    public var description: String {
      switch self {
      case .unreadable(let why): return "key file: \(why)"
      case .tooShort(let path, let count):
        return
          "key file \(path) holds \(count) bytes; at least \(ClusterKey.minimumLength) are needed (make one with 'hactl keygen \(path)')"
      }
    }
  }

  /// Loads a key file: a regular file (not a symbolic link) owned by this
  /// daemon's user that group and others cannot read or write. Nil when
  /// `optional` and the file does not exist.
  public static func load(path: String, clusterName: String, optional: Bool = false) throws(LoadError) -> ClusterKey? {
    let data: Data?
    do {
      data = try LocalFile.read(path, limit: maximumLength, private: true)
    } catch {
      throw .unreadable(error.description)
    }
    guard let data else {
      if optional { return nil }
      throw .unreadable("cannot read \(path): \(String(cString: strerror(ENOENT)))")
    }
    guard data.count >= minimumLength else { throw .tooShort(path, data.count) }
    return ClusterKey(secret: Array(data), clusterName: clusterName)
  }

  public static func load(path: String, clusterName: String) throws(LoadError) -> ClusterKey {
    try load(path: path, clusterName: clusterName, optional: false)!
  }

  public init(secret: [UInt8], clusterName: String) {
    self.secret = SymmetricKey(data: secret)
    // Binding the cluster name means two clusters that share a key by
    // mistake still reject each other's packets.
    salt = Array("hactl/3 \(clusterName)".utf8)
    authenticationKey = Self.derive(self.secret, salt: salt, info: Array("authentication".utf8))
    let idKey = Self.derive(self.secret, salt: salt, info: Array("key id".utf8))
    id = idKey.withUnsafeBytes { raw in raw.prefix(4).reduce(UInt32(0)) { ($0 << 8) | UInt32($1) } } | 1
  }

  /// A key id as status and logs show it: 8 hex digits.
  public static func hex(_ id: UInt32) -> String {
    let digits = String(id, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
  }

  static func derive(_ secret: SymmetricKey, salt: [UInt8], info: [UInt8]) -> SymmetricKey {
    HKDF<SHA256>.deriveKey(inputKeyMaterial: secret, salt: salt, info: info, outputByteCount: 32)
  }

  /// The AEAD key for one sender's boot: with it, the sequence number alone
  /// is a nonce that never repeats (it grows within a boot, and every boot
  /// has a new incarnation).
  func encryptionKey(sender: NodeID, incarnation: UInt64) -> SymmetricKey {
    var info = Array("encryption".utf8)
    var writer = WireWriter()
    writer.u32(sender.rawValue)
    writer.u64(incarnation)
    info += writer.bytes
    return Self.derive(secret, salt: salt, info: info)
  }
}

/// How packets are protected on the wire.
public enum WireProtection: UInt8, Sendable {
  /// ChaCha20-Poly1305: confidential and authenticated (the default).
  case encrypted = 1
  /// HMAC-SHA256 only: readable by anyone on the path (for a capture).
  case authenticated = 2

  public var tagLength: Int { self == .encrypted ? 16 : 32 }
}

/// Seals packets for a peer and opens what peers send: the keys in use
/// (the current one, and a next one during a rotation), which key each peer
/// can open, and the per-boot AEAD keys, cached.
public final class PacketSealer: Sendable {
  public let protection: WireProtection
  public let local: NodeID
  struct State {
    var current: ClusterKey
    var next: ClusterKey?
    /// The newest of our keys each peer has shown it holds.
    var peerHolds: [NodeID: UInt32] = [:]
    var derived: [DerivedKey: SymmetricKey] = [:]
  }
  struct DerivedKey: Hashable {
    var key: UInt32
    var sender: NodeID
    var incarnation: UInt64
  }
  let state: Mutex<State>
  /// Each sender's boots come and go; a few hundred keys at most are kept.
  static let derivedKept = 512

  public init(protection: WireProtection, local: NodeID, current: ClusterKey, next: ClusterKey? = nil) {
    self.protection = protection
    self.local = local
    state = Mutex(State(current: current, next: next))
  }

  /// After SIGHUP: the key files as they are now.
  public func reload(current: ClusterKey, next: ClusterKey?) {
    state.withLock { state in
      state.current = current
      state.next = next?.id == current.id ? nil : next
      state.derived = [:]
    }
  }

  /// Which key goes to a peer: the next one once the peer showed it holds
  /// it, else the current one.
  static func sendingKey(to peer: NodeID?, in state: State) -> ClusterKey {
    if let peer, let next = state.next, state.peerHolds[peer] == next.id { return next }
    return state.current
  }

  public var keyIDs: (current: UInt32, next: UInt32?) { state.withLock { ($0.current.id, $0.next?.id) } }

  func key(_ id: UInt32, in state: State) -> ClusterKey? {
    if state.current.id == id { return state.current }
    if let next = state.next, next.id == id { return next }
    return nil
  }

  func encryptionKey(_ key: ClusterKey, sender: NodeID, incarnation: UInt64, in state: inout State) -> SymmetricKey {
    let name = DerivedKey(key: key.id, sender: sender, incarnation: incarnation)
    if let known = state.derived[name] { return known }
    if state.derived.count >= Self.derivedKept { state.derived = [:] }
    let derived = key.encryptionKey(sender: sender, incarnation: incarnation)
    state.derived[name] = derived
    return derived
  }

  static func nonce(_ sequence: UInt64) -> ChaChaPoly.Nonce {
    var writer = WireWriter()
    writer.u32(0)
    writer.u64(sequence)
    return try! ChaChaPoly.Nonce(data: writer.bytes)
  }

  /// The datagram for `packet` (its header names the receiver).
  public func seal(_ packet: Packet) throws(WireError) -> [UInt8] {
    let (kind, payload) = try PacketCodec.encodeDatagramPayload(packet.message)
    return state.withLock { state -> [UInt8] in
      let key = Self.sendingKey(to: packet.header.receiver, in: state)
      let seal = PacketCodec.Seal(protection: protection.rawValue, keyID: key.id, nextKeyID: state.next?.id ?? 0)
      let header = PacketCodec.encodeHeader(packet.header, kind: kind, seal: seal, payloadLength: payload.count)
      switch protection {
      case .encrypted:
        let aead = encryptionKey(key, sender: packet.header.sender, incarnation: packet.header.incarnation, in: &state)
        let box = try! ChaChaPoly.seal(
          payload, using: aead, nonce: Self.nonce(packet.header.sequence), authenticating: header)
        return header + Array(box.ciphertext) + Array(box.tag)
      case .authenticated:
        var mac = HMAC<SHA256>(key: key.authenticationKey)
        mac.update(data: header)
        mac.update(data: payload)
        return header + payload + Array(mac.finalize())
      }
    }
  }

  public enum Refusal: Error, Sendable, Equatable {
    /// Too short, not ours, another format or protection: no crypto spent.
    case malformed
    case unsupportedVersion
    /// From no configured peer, or meant for another member.
    case misdirected
    /// Sealed with a key we do not hold, or its tag does not verify.
    case failedAuthentication
    /// Authentic, but of a kind this version does not know (a newer peer).
    case unknownKind
  }

  /// Cheap checks first (size, magic, format, protection, sender, receiver,
  /// key), then the cryptography, then the payload.
  public func open(_ bytes: [UInt8], peers: Set<NodeID>) -> Result<Packet, Refusal> {
    let envelope: PacketCodec.Envelope
    do {
      envelope = try PacketCodec.readHeader(bytes, tagLength: protection.tagLength)
    } catch {
      if case .unsupportedVersion = error { return .failure(.unsupportedVersion) }
      return .failure(.malformed)
    }
    guard envelope.seal.protection == protection.rawValue else { return .failure(.malformed) }
    let header = envelope.header
    guard peers.contains(header.sender), header.receiver == local else { return .failure(.misdirected) }
    let opened: [UInt8]? = state.withLock { state -> [UInt8]? in
      guard let key = key(envelope.seal.keyID, in: state) else { return nil }
      let clear = Array(bytes[..<envelope.payload.lowerBound])
      let body = bytes[envelope.payload]
      let tag = bytes[envelope.payload.upperBound...]
      let payload: [UInt8]
      switch protection {
      case .encrypted:
        let aead = encryptionKey(key, sender: header.sender, incarnation: header.incarnation, in: &state)
        guard
          let box = try? ChaChaPoly.SealedBox(nonce: Self.nonce(header.sequence), ciphertext: body, tag: tag),
          let plain = try? ChaChaPoly.open(box, using: aead, authenticating: clear)
        else { return nil }
        payload = Array(plain)
      case .authenticated:
        var mac = HMAC<SHA256>(key: key.authenticationKey)
        mac.update(data: clear)
        mac.update(data: body)
        // `==` on a MAC compares in constant time.
        guard mac.finalize() == tag else { return nil }
        payload = Array(body)
      }
      // What the peer holds, from an authentic packet only.
      if let next = state.next, envelope.seal.keyID == next.id || envelope.seal.nextKeyID == next.id {
        state.peerHolds[header.sender] = next.id
      }
      return payload
    }
    guard let opened else { return .failure(.failedAuthentication) }
    do {
      return .success(Packet(header: header, message: try PacketCodec.decodePayload(kind: envelope.kind, opened)))
    } catch {
      if case .unknownKind = error { return .failure(.unknownKind) }
      return .failure(.malformed)
    }
  }
}

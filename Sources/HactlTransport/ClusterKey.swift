import Crypto
import Foundation
import HactlConfig
import HactlWire

/// The shared secret of the cluster, and the HMAC-SHA256 that authenticates
/// every packet with it.
public struct ClusterKey: Sendable {
  let key: SymmetricKey
  let context: [UInt8]

  public static let minimumLength = 32

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

  /// The largest key file read: keys are 64 bytes; anything much larger is
  /// not a key file.
  public static let maximumLength = 4096

  /// Loads the key file: a regular file (not a symbolic link) owned by this
  /// daemon's user that group and others cannot read or write.
  public static func load(path: String, clusterName: String) throws(LoadError) -> ClusterKey {
    let data: Data?
    do {
      data = try LocalFile.read(path, limit: maximumLength, private: true)
    } catch {
      throw .unreadable(error.description)
    }
    guard let data else { throw .unreadable("cannot read \(path): \(String(cString: strerror(ENOENT)))") }
    guard data.count >= minimumLength else { throw .tooShort(path, data.count) }
    return ClusterKey(secret: Array(data), clusterName: clusterName)
  }

  public init(secret: [UInt8], clusterName: String) {
    key = SymmetricKey(data: secret)
    // Binding the cluster name means two clusters that share a key by
    // mistake still reject each other's packets.
    context = Array("hactl/1 \(clusterName)\0".utf8)
  }

  public static let tagLength = 32

  /// The packet followed by its tag.
  public func seal(_ packet: [UInt8]) -> [UInt8] {
    var mac = HMAC<SHA256>(key: key)
    mac.update(data: context)
    mac.update(data: packet)
    return packet + Array(mac.finalize())
  }

  /// The packet without its tag, or nil when the tag does not match.
  public func open(_ sealed: [UInt8]) -> [UInt8]? {
    guard sealed.count > Self.tagLength else { return nil }
    let body = Array(sealed[..<(sealed.count - Self.tagLength)])
    let tag = sealed[(sealed.count - Self.tagLength)...]
    var mac = HMAC<SHA256>(key: key)
    mac.update(data: context)
    mac.update(data: body)
    // `==` on a MAC compares in constant time.
    guard mac.finalize() == tag else { return nil }
    return body
  }
}

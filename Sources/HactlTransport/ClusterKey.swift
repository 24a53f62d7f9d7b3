import Crypto
import Foundation
import HactlWire

/// The shared secret of the cluster, and the HMAC-SHA256 that authenticates
/// every packet with it.
public struct ClusterKey: Sendable {
  let key: SymmetricKey
  let context: [UInt8]

  public static let minimumLength = 32

  public enum LoadError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(String, String)
    case tooShort(String, Int)
    case tooOpen(String, String)

    public var description: String {
      switch self {
      case .unreadable(let path, let why): return "cannot read key file \(path): \(why)"
      case .tooShort(let path, let count):
        return
          "key file \(path) holds \(count) bytes; at least \(ClusterKey.minimumLength) are needed (make one with 'hactl keygen \(path)')"
      case .tooOpen(let path, let mode):
        return
          "key file \(path) has mode \(mode): it must not be readable or writable by group or others (chmod 600 \(path))"
      }
    }
  }

  /// Loads the key file, refusing one that group or others could read.
  public static func load(path: String, clusterName: String) throws(LoadError) -> ClusterKey {
    var info = stat()
    guard stat(path, &info) == 0 else { throw .unreadable(path, String(cString: strerror(errno))) }
    let mode = info.st_mode & 0o777
    guard mode & 0o077 == 0 else { throw .tooOpen(path, String(mode, radix: 8)) }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw .unreadable(path, "permission denied or not a regular file")
    }
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

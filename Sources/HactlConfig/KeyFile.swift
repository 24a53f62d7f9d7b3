import Foundation

/// Cluster key files: random bytes, readable by root only.
public enum KeyFile {
  public static let length = 64

  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  public static func generate(at path: String, replace: Bool) throws(Failure) {
    if FileManager.default.fileExists(atPath: path) && !replace {
      throw Failure(description: "\(path) exists; use --force to replace it (every member then needs the new key)")
    }
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    let temporary = path + ".tmp"
    let fd = open(temporary, O_CREAT | O_WRONLY | O_TRUNC | O_EXCL, 0o600)
    guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let synced = fsync(fd) == 0
    close(fd)
    guard written == length, synced, rename(temporary, path) == 0 else {
      unlink(temporary)
      throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
    }
  }
}

import Foundation

/// Reading the daemon's own files (configuration, state, key) without
/// surprises: a file that is absent is told apart from one that cannot be
/// read (a state file that fails with EIO is not a fresh start), sizes are
/// bounded, and private files refuse symbolic links and other owners.
public enum LocalFile {
  public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String
    init(_ path: String, _ reason: String) {
      self.path = path
      self.reason = reason
    }
    public var description: String { "cannot read \(path): \(reason)" }
  }

  /// The file's bytes, or nil when it does not exist. `private` files must
  /// be owned by this process's user and closed to group and others;
  /// neither they nor `noLinks` files may be reached through a symbolic link.
  public static func read(_ path: String, limit: Int, private: Bool = false, noLinks: Bool = false) throws(Failure)
    -> Data?
  {
    let refuseLinks = `private` || noLinks
    // O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise
    // wait for a writer forever, before the file type could be checked.
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (refuseLinks ? O_NOFOLLOW : 0))
    guard fd >= 0 else {
      let code = errno
      if code == ENOENT { return nil }
      if code == ELOOP && refuseLinks { throw Failure(path, "it is a symbolic link; give the real path") }
      throw Failure(path, String(cString: strerror(code)))
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw Failure(path, String(cString: strerror(errno))) }
    guard info.st_mode & S_IFMT == S_IFREG else { throw Failure(path, "not a regular file") }
    if `private` {
      guard info.st_uid == geteuid() else {
        throw Failure(path, "owned by uid \(info.st_uid), not by this daemon's user (uid \(geteuid()))")
      }
      let mode = info.st_mode & 0o777
      guard mode & 0o077 == 0 else {
        throw Failure(
          path,
          "mode \(String(mode, radix: 8)): it must not be readable or writable by group or others (chmod 600 \(path))")
      }
    }
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let count = Foundation.read(fd, &buffer, buffer.count)
      if count < 0 {
        if errno == EINTR { continue }
        throw Failure(path, String(cString: strerror(errno)))
      }
      if count == 0 { return data }
      data.append(contentsOf: buffer[0..<count])
      if data.count > limit { throw Failure(path, "larger than \(limit) bytes") }
    }
  }
}

import Foundation
import HactlConfig
import HactlMembership
import HactlModel

/// The daemon's durable state: one small file per record, each replaced
/// atomically (write a temporary file, fsync it, rename it over the old one,
/// fsync the folder), so a crash leaves either the old record or the new one.
public struct StateStore {
  let folder: String

  init(folder: String) throws {
    self.folder = folder
    try FileManager.default.createDirectory(
      atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    // Whoever may write the folder may delete the vote record (a second
    // vote in one term) or swap the configuration: only the daemon's user.
    var info = stat()
    guard stat(folder, &info) == 0 else {
      throw StateError("cannot use the state folder \(folder): \(String(cString: strerror(errno)))")
    }
    guard info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
      throw StateError(
        "the state folder \(folder) must belong to this daemon's user (uid \(geteuid())) and not be writable by "
          + "group or others (it is uid \(info.st_uid), mode \(String(info.st_mode & 0o777, radix: 8)))")
    }
  }

  var lockPath: String { folder + "/lock" }

  /// One daemon per state folder: a second one would share the vote record
  /// and break one vote per term. The lock lasts as long as the process
  /// (the descriptor is never closed; the kernel drops the lock at exit,
  /// even after SIGKILL).
  func lock() throws {
    let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw StateError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      let code = errno
      var holder = [UInt8](repeating: 0, count: 32)
      let count = pread(fd, &holder, holder.count, 0)
      close(fd)
      guard code == EWOULDBLOCK else {
        throw StateError("cannot lock \(lockPath): \(String(cString: strerror(code)))")
      }
      let pid = String(decoding: holder.prefix(max(0, count)), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
      throw StateError(
        "another hactld (pid \(pid.isEmpty ? "?" : pid)) already runs with the state folder \(folder); "
          + "one daemon per node")
    }
    let pid = Array("\(getpid())\n".utf8)
    _ = ftruncate(fd, 0)
    _ = pwrite(fd, pid, pid.count, 0)
  }

  var electionPath: String { folder + "/election.json" }
  var incarnationPath: String { folder + "/incarnation" }
  var configPath: String { folder + "/config.json" }

  /// A state file's bytes, nil when it does not exist; any other failure
  /// to read it is an error (treating it as absent could vote twice, or
  /// forget a configuration or a resource still running).
  func readState(_ path: String, limit: Int) throws -> Data? {
    do {
      return try LocalFile.read(path, limit: limit, noLinks: true)
    } catch {
      throw StateError("\(error); refusing to start without the state it holds")
    }
  }

  /// The replicated configuration this node last stored, if any.
  func loadConfig() throws -> ConfigDocument? {
    // The text is at most `configurationBytes`, but JSON may escape each byte.
    guard let data = try readState(configPath, limit: 6 * ClusterLimits.configurationBytes + 4096) else { return nil }
    do {
      let document = try JSONDecoder().decode(ConfigDocument.self, from: data)
      for counter in [document.version.epoch, document.version.version, document.base.epoch, document.base.version]
      where counter > ClusterLimits.largestCounter {
        throw StateError("version \(document.version) is beyond any real cluster")
      }
      return document
    } catch {
      throw StateError(
        "\(configPath) is corrupt (\(error)); refusing to start without the configuration it held "
          + "(move it away to start from the configuration file; the peers hand over the newest one)")
    }
  }

  var historyPath: String { folder + "/fencing-history.jsonl" }
  /// The history keeps at most this many lines: a node fenced in a loop
  /// for months fills no disk.
  static let historyLines = 1_000

  /// Appends one fencing to the history (a JSON line, synced); past the
  /// limit, the newest lines replace the file whole.
  func appendHistory(_ event: FencingEvent) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var line = try encoder.encode(event)
    line.append(UInt8(ascii: "\n"))
    var events = try loadHistory()
    guard events.count < Self.historyLines else {
      events = Array(events.suffix(Self.historyLines - 1)) + [event]
      var text = Data()
      for item in events {
        text.append(try encoder.encode(item))
        text.append(UInt8(ascii: "\n"))
      }
      try Self.writeAtomically(text, to: historyPath)
      return
    }
    let fd = open(historyPath, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw StateError("cannot open \(historyPath): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    guard written == line.count, fsync(fd) == 0 else {
      throw StateError("cannot write \(historyPath): \(String(cString: strerror(errno)))")
    }
  }

  /// The fencing history, oldest first; a line that cannot be read (a
  /// crash in the middle of a write) is skipped.
  func loadHistory() throws -> [FencingEvent] {
    guard let data = try readState(historyPath, limit: 4 << 20) else { return [] }
    let decoder = JSONDecoder()
    return data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(FencingEvent.self, from: $0) }
  }

  var retiringPath: String { folder + "/retiring.json" }

  /// Old resource definitions this node may still run (removed from the
  /// configuration, or redefined) until it saw them stopped.
  func loadRetiring() throws -> [ResourceSpec] {
    guard let data = try readState(retiringPath, limit: 16 << 20) else { return [] }
    do {
      return try JSONDecoder().decode([ResourceSpec].self, from: data)
    } catch {
      throw StateError(
        "\(retiringPath) is corrupt (\(error)); it lists resources this node may still run: "
          + "stop them by hand, then move the file away")
    }
  }

  func saveRetiring(_ definitions: [ResourceSpec]) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    try Self.writeAtomically(try encoder.encode(definitions), to: retiringPath)
  }

  func save(_ document: ConfigDocument) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    try Self.writeAtomically(try encoder.encode(document), to: configPath)
  }

  func loadElection() throws -> ElectionRecord {
    guard let data = try readState(electionPath, limit: 4096) else { return ElectionRecord() }
    let record: ElectionRecord
    do {
      record = try JSONDecoder().decode(ElectionRecord.self, from: data)
    } catch {
      throw StateError("\(electionPath) is corrupt (\(error)); refusing to start with an unknown vote")
    }
    guard record.term <= ClusterLimits.largestCounter else {
      throw StateError(
        "\(electionPath) holds term \(record.term), beyond any real cluster; refusing to start with an unknown vote")
    }
    return record
  }

  func save(_ record: ElectionRecord) throws {
    try Self.writeAtomically(try JSONEncoder().encode(record), to: electionPath)
  }

  /// A fresh boot incarnation: larger than the last one even if the clock
  /// went back, and larger than any earlier boot even if the folder was wiped
  /// (it starts from the wall clock in microseconds).
  func nextIncarnation(wallClockMicroseconds: UInt64 = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000)))
    throws -> UInt64
  {
    var stored: UInt64 = 0
    if let data = try readState(incarnationPath, limit: 64) {
      let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      guard let value = UInt64(text), value < Self.largestIncarnation else {
        throw StateError(
          "\(incarnationPath) does not hold a boot incarnation below \(Self.largestIncarnation) ('\(text.prefix(40))'); "
            + "remove it to start (peers accept the next boot once they declared this node lost)")
      }
      stored = value
    }
    let next = max(stored + 1, min(wallClockMicroseconds, Self.largestIncarnation - 1))
    try Self.writeAtomically(Data("\(next)\n".utf8), to: incarnationPath)
    return next
  }

  /// Far beyond any wall clock in microseconds (year 146,000), far below
  /// the top of the range.
  static let largestIncarnation: UInt64 = 1 << 62

  /// Also what benchmarks time as the floor of a durable change.
  public static func writeAtomically(_ data: Data, to path: String) throws {
    func failure(_ what: String, _ code: Int32) -> StateError {
      StateError("cannot write \(path): \(what): \(String(cString: strerror(code)))")
    }
    let temporary = path + ".tmp"
    // O_NOFOLLOW: a link planted in the folder is never written through.
    let fd = open(temporary, O_CREAT | O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw failure("open \(temporary)", errno) }
    var code: Int32 = 0
    data.withUnsafeBytes { buffer in
      var offset = 0
      while offset < buffer.count {
        let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if written < 0 && errno == EINTR { continue }
        if written <= 0 {
          code = written < 0 ? errno : ENOSPC
          return
        }
        offset += written
      }
    }
    if code == 0 && fsync(fd) != 0 { code = errno }
    if close(fd) != 0 && code == 0 { code = errno }
    if code == 0 && rename(temporary, path) != 0 { code = errno }
    guard code == 0 else {
      unlink(temporary)
      throw failure("write, fsync or rename", code)
    }
    // The rename is durable only once the folder is.
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let dirfd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard dirfd >= 0 else { throw failure("open folder \(folder)", errno) }
    defer { close(dirfd) }
    guard fsync(dirfd) == 0 else { throw failure("fsync folder \(folder)", errno) }
  }
}

struct StateError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

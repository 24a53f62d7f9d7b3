import Foundation
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
  }

  var electionPath: String { folder + "/election.json" }
  var incarnationPath: String { folder + "/incarnation" }
  var configPath: String { folder + "/config.json" }

  /// The replicated configuration this node last stored, if any.
  func loadConfig() throws -> ConfigDocument? {
    guard let data = FileManager.default.contents(atPath: configPath) else { return nil }
    do {
      return try JSONDecoder().decode(ConfigDocument.self, from: data)
    } catch {
      throw StateError(
        "\(configPath) is corrupt (\(error)); refusing to start without the configuration it held "
          + "(move it away to start from the configuration file; the peers hand over the newest one)")
    }
  }

  var retiringPath: String { folder + "/retiring.json" }

  /// Old resource definitions this node may still run (removed from the
  /// configuration, or redefined) until it saw them stopped.
  func loadRetiring() throws -> [ResourceSpec] {
    guard let data = FileManager.default.contents(atPath: retiringPath) else { return [] }
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
    guard let data = FileManager.default.contents(atPath: electionPath) else { return ElectionRecord() }
    do {
      return try JSONDecoder().decode(ElectionRecord.self, from: data)
    } catch {
      throw StateError("\(electionPath) is corrupt (\(error)); refusing to start with an unknown vote")
    }
  }

  func save(_ record: ElectionRecord) throws {
    try Self.writeAtomically(try JSONEncoder().encode(record), to: electionPath)
  }

  /// A fresh boot incarnation: larger than the last one even if the clock
  /// went back, and larger than any earlier boot even if the folder was wiped
  /// (it starts from the wall clock in microseconds).
  func nextIncarnation() throws -> UInt64 {
    let stored =
      FileManager.default.contents(atPath: incarnationPath)
      .flatMap { String(data: $0, encoding: .utf8) }
      .flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    let clock = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
    let next = max(stored + 1, clock)
    try Self.writeAtomically(Data("\(next)\n".utf8), to: incarnationPath)
    return next
  }

  /// Also what benchmarks time as the floor of a durable change.
  public static func writeAtomically(_ data: Data, to path: String) throws {
    let temporary = path + ".tmp"
    let fd = open(temporary, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
    guard fd >= 0 else { throw StateError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
    var ok = data.withUnsafeBytes { buffer -> Bool in
      var offset = 0
      while offset < buffer.count {
        let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if written <= 0 { return false }
        offset += written
      }
      return true
    }
    ok = ok && fsync(fd) == 0
    close(fd)
    guard ok, rename(temporary, path) == 0 else {
      unlink(temporary)
      throw StateError("cannot write \(path): \(String(cString: strerror(errno)))")
    }
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    let dirfd = open(folder, O_RDONLY | O_DIRECTORY)
    if dirfd >= 0 {
      fsync(dirfd)
      close(dirfd)
    }
  }
}

struct StateError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

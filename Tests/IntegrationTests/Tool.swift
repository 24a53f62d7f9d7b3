import Foundation
import HactlLab

/// Runs one of our programs to completion and captures what it printed.
/// Output goes to temporary files, not pipes, so that a chatty program can
/// never block on a full pipe while we wait for it.
enum Tool {
  struct Result {
    var status: Int32
    var output: String
    var errors: String
  }

  static func hactld() throws -> String { try LocalCluster.locateDaemon() }

  static func hactl() throws -> String {
    URL(fileURLWithPath: try hactld()).deletingLastPathComponent().appendingPathComponent("hactl").path
  }

  static func run(_ path: String, _ arguments: [String]) throws -> Result {
    let base = NSTemporaryDirectory() + "hactl-tool-\(UUID().uuidString)"
    FileManager.default.createFile(atPath: base + ".out", contents: nil)
    FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
      try? FileManager.default.removeItem(atPath: base + ".out")
      try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    try process.run()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus,
      output: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
      errors: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
  }
}

/// Blocking calls made on a thread of their own, so that they never hold
/// one of the cooperative pool's threads (as many as the machine has
/// cores) that in-process servers under test need.
enum Blocking {
  struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
  }

  static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
  }
}

/// The resources most process tests run, as `LocalCluster.Options` wants them.
enum LabResources {
  /// One marker with a 1 s monitor, placed wherever the leader likes.
  static let marker = """
      - id: marker
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
    """

  /// One marker that prefers alpha, so a test knows where it runs.
  static let markerOnAlpha = """
      - id: marker
        agent: ocf:hactl:Marker
        prefer: { node: alpha }
    """
}

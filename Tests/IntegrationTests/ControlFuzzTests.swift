import Foundation
import HactlControl
import HactlModel
import NIOPosix
import Testing

/// The control protocol against random and mutated requests, as the packet
/// and configuration fuzzers do for theirs: every request gets one answer
/// (or a refusal), nothing traps, and the server keeps serving.
@Suite(.serialized)
struct ControlFuzzTests {
  static let valid: [ControlRequest] = [
    .status, .migrate(resource: "vip", node: "beta"), .migrate(resource: "vip", node: nil),
    .applyConfig(text: "cluster:\n  name: x\n"), .showConfig,
  ]

  func mutate(_ bytes: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
    func below(_ bound: Int) -> Int { Int.random(in: 0..<max(1, bound), using: &random) }
    func byte() -> UInt8 { UInt8.random(in: 0 ... .max, using: &random) }
    var bytes = bytes
    switch below(5) {
    case 0 where !bytes.isEmpty: bytes[below(bytes.count)] = byte()
    case 1: bytes = Array(bytes.prefix(below(bytes.count + 1)))
    case 2: bytes.insert(byte(), at: below(bytes.count + 1))
    case 3: bytes = (0..<below(300)).map { _ in byte() }
    default:
      // Numbers and types where strings belong, and deep nesting.
      let tricks = [
        "{\"command\":1e300}", "{\"command\":\"migrate\",\"resource\":[[[[[[[[[]]]]]]]]]}",
        String(repeating: "[", count: 5000), "{\"command\":\"migrate\",\"resource\":\"\u{0}\",\"node\":null}",
        "{\"command\":\"config-apply\",\"text\":" + String(repeating: "\"", count: 3) + "}",
      ]
      bytes = Array(tricks[below(tricks.count)].utf8)
    }
    return bytes
  }

  @Test func randomAndMutatedRequestsAlwaysGetOneAnswer() async throws {
    let path = NSTemporaryDirectory() + "hactl-fuzz-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
    let server = try await ControlServer.bind(path: path, group: MultiThreadedEventLoopGroup.singleton)
    let serving = Task {
      try await server.serve { request in ControlResponse(ok: true, message: "\(request)") }
    }
    defer {
      serving.cancel()
      unlink(path)
    }
    var random = SeededRandom(seed: 7)
    let encoder = JSONEncoder()
    var answered = 0
    for round in 0..<300 {
      let base = Array(try encoder.encode(Self.valid[round % Self.valid.count]))
      var request = round % 10 == 0 ? base : mutate(base, &random)
      request.removeAll { $0 == UInt8(ascii: "\n") }
      let reply = try await roundTrip(request + [UInt8(ascii: "\n")], path: path)
      let line = try #require(reply.split(separator: UInt8(ascii: "\n")).first, "no answer to round \(round)")
      let response = try JSONDecoder().decode(ControlResponse.self, from: Data(line))
      #expect(response.ok || response.error != nil)
      answered += 1
    }
    #expect(answered == 300)
    // An oversized request is refused, not read forever.
    let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 2_000_000)
    let refused = try await roundTrip(huge, path: path)
    #expect(String(decoding: refused, as: UTF8.self).contains("request larger than"))
    // And it still serves.
    let status = try await ControlClient.send(.status, socketPath: path, timeout: .seconds(5))
    #expect(status.ok)
    await server.close()
  }

  /// Writes the request and reads everything the server answers, with
  /// plain blocking calls (the server's framing is under test, not ours),
  /// on a thread of their own: the server's tasks need the pool's threads.
  func roundTrip(_ bytes: [UInt8], path: String) async throws -> [UInt8] {
    try await Blocking.run {
      let fd = UnixSocket.connect(path)
      guard fd >= 0 else { throw Blocking.Failure("cannot connect to \(path): errno \(errno)") }
      defer { close(fd) }
      var timeout = timeval(tv_sec: 60, tv_usec: 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      var offset = 0
      while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if written <= 0 { break }  // the server stopped reading: it answers anyway
        offset += written
      }
      shutdown(fd, Int32(SHUT_WR))
      return Self.readToEnd(fd)
    }
  }

  static func readToEnd(_ fd: Int32) -> [UInt8] {
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let count = recv(fd, &buffer, buffer.count, 0)
      if count <= 0 { break }
      reply += buffer[0..<count]
    }
    return reply
  }

  /// Clients that connect while the server is not taking connections (as
  /// during the daemon's shutdown) are closed when it stops; the connection
  /// objects NIO queued for them used to trap in their deinit.
  @Test func connectionsLeftQueuedAtCloseAreClosedNotCrashed() async throws {
    let path = NSTemporaryDirectory() + "hactl-queued-\(getpid())-\(UInt32.random(in: 0 ... .max)).sock"
    var server: ControlServer? = try await ControlServer.bind(
      path: path, group: MultiThreadedEventLoopGroup.singleton)
    let clients = (0..<3).map { _ in UnixSocket.connect(path) }
    defer { for fd in clients where fd >= 0 { close(fd) } }
    #expect(clients.allSatisfy { $0 >= 0 })
    // Accepting happens on NIO's event loop, not on this task's pool.
    try await Task.sleep(for: .milliseconds(500))
    await server?.close()
    server = nil
    let ends = try await Blocking.run {
      clients.map { fd -> [UInt8] in
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return Self.readToEnd(fd)
      }
    }
    #expect(ends.allSatisfy { $0.isEmpty })
  }

  /// Whoever may rename files in the socket's folder could swap the socket
  /// for a link between its bind and its chown, and have the daemon give
  /// that file to group haclient.
  @Test func theSocketsFolderMustNotLetOthersSwapTheSocket() async throws {
    let folder = NSTemporaryDirectory() + "hactl-open-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    chmod(folder, 0o777)
    await #expect(throws: ControlServer.BindError.self) {
      _ = try await ControlServer.bind(path: folder + "/hactld.sock", group: MultiThreadedEventLoopGroup.singleton)
    }
    #expect(!FileManager.default.fileExists(atPath: folder + "/hactld.sock"))
    if getuid() == 0 {
      chmod(folder, 0o755)
      chown(folder, 65534, 65534)
      await #expect(throws: ControlServer.BindError.self) {
        _ = try await ControlServer.bind(path: folder + "/hactld.sock", group: MultiThreadedEventLoopGroup.singleton)
      }
      chown(folder, 0, 0)
    }
    // Sticky, as /tmp is: nobody may rename another user's file there.
    chmod(folder, 0o1777)
    let server = try await ControlServer.bind(
      path: folder + "/hactld.sock", group: MultiThreadedEventLoopGroup.singleton)
    await server.close()
  }

  @Test func onlyRootTheDaemonsUserAndTheAdminGroupMayConnect() {
    let access = ControlAccess(daemonUser: 0, adminGroup: 990)
    let noGroups: (uid_t, gid_t) -> [gid_t] = { _, _ in [] }
    #expect(access.allows(uid: 0, gid: 0, groups: noGroups))
    #expect(access.allows(uid: 1000, gid: 990, groups: noGroups))
    #expect(access.allows(uid: 1000, gid: 100, groups: { _, _ in [100, 990] }))
    #expect(!access.allows(uid: 1000, gid: 100, groups: { _, _ in [100, 27] }))
    #expect(!ControlAccess(daemonUser: 0, adminGroup: nil).allows(uid: 1000, gid: 100, groups: noGroups))
    #expect(ControlAccess(daemonUser: 1000, adminGroup: nil).allows(uid: 1000, gid: 100, groups: noGroups))
  }
}

import Foundation
import HactlModel
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

public enum ControlClientError: Error, Sendable, CustomStringConvertible {
  case notRunning(String)
  case failed(String)

  public var description: String {
    switch self {
    case .notRunning(let path):
      return "hactld is not running on this node (cannot connect to \(path))"
    case .failed(let why): return why
    }
  }
}

/// `hactl`'s side of the control socket.
public enum ControlClient {
  /// Far above the largest status (every resource and node at its limits).
  public static let maximumResponseBytes = 64 << 20

  public static func send(
    _ request: ControlRequest, socketPath: String, timeout: Duration = .seconds(60)
  ) async throws(ControlClientError) -> ControlResponse {
    let group = MultiThreadedEventLoopGroup.singleton
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    do {
      channel = try await ClientBootstrap(group: group)
        .channelOption(.allowRemoteHalfClosure, value: true)
        .connect(unixDomainSocketPath: socketPath)
        .flatMapThrowing { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: $0) }
        .get()
    } catch {
      throw .notRunning(socketPath)
    }
    do {
      let body = try JSONEncoder().encode(request) + Data("\n".utf8)
      let reply = try await withThrowingTaskGroup(of: [UInt8]?.self) { tasks in
        tasks.addTask {
          try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(bytes: body))
            var bytes: [UInt8] = []
            for try await chunk in inbound {
              bytes += chunk.readableBytesView
              if bytes.last == UInt8(ascii: "\n") { break }
              guard bytes.count <= maximumResponseBytes else {
                throw ControlClientError.failed("hactld answered more than \(maximumResponseBytes) bytes")
              }
            }
            return bytes
          }
        }
        tasks.addTask {
          try await Task.sleep(for: timeout)
          return nil
        }
        let first = try await tasks.next() ?? nil
        tasks.cancelAll()
        return first
      }
      guard let reply else {
        try? await channel.channel.close()
        throw ControlClientError.failed("hactld did not answer within \(timeout)")
      }
      guard !reply.isEmpty else { throw ControlClientError.failed("hactld closed the connection without answering") }
      return try JSONDecoder().decode(ControlResponse.self, from: Data(reply))
    } catch let error as ControlClientError {
      throw error
    } catch {
      throw .failed("control socket \(socketPath): \(error)")
    }
  }
}

/// `hactld`'s side: accepts connections and answers each request.
///
/// Every resource a client can hold is bounded: connections at once, the
/// time to send a request, its size, and who may connect at all (root, the
/// daemon's own user, and members of the admin group, checked with the
/// kernel's peer credentials).
public final class ControlServer: Sendable {
  let channel: NIOAsyncChannel<AcceptedConnection, Never>
  public let path: String
  let adminGroup: gid_t?
  let active = Mutex(0)

  /// Connections served at once; more are answered "busy" and closed, so a
  /// client holding many open can never take the daemon's descriptors.
  public static let maximumConnections = 16
  /// A client must send its whole request within this time.
  public static let requestDeadline: Duration = .seconds(5)

  public struct BindError: Error, CustomStringConvertible {
    public var description: String
  }

  /// Binds the socket with mode 0660, owned by root and group `haclient`
  /// when that group exists. The socket is created closed to everyone but
  /// the daemon's user and opened up only once its owner and mode are set:
  /// if either fails, nothing is served.
  public static func bind(path: String, group: any EventLoopGroup) async throws -> ControlServer {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    try checkFolder(folder)
    try removeStaleSocket(at: path)
    let previous = umask(0o177)
    let channel: NIOAsyncChannel<AcceptedConnection, Never>
    do {
      channel = try await ServerBootstrap(group: group)
        // A client that closes its sending side after the request (as
        // `socat` does) still gets its answer.
        .childChannelOption(.allowRemoteHalfClosure, value: true)
        .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: false) { child in
          child.eventLoop.makeCompletedFuture {
            AcceptedConnection(try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child))
          }
        }
      umask(previous)
    } catch {
      umask(previous)
      throw error
    }
    let admin = getgrnam(ControlDefaults.adminGroup).map { $0.pointee.gr_gid }
    func refuse(_ what: String) async -> BindError {
      let why = String(cString: strerror(errno))
      try? await channel.channel.close()
      unlink(path)
      return BindError(description: "cannot \(what) of the control socket \(path): \(why)")
    }
    if let admin, lchown(path, geteuid(), admin) != 0 { throw await refuse("set the group") }
    guard chmod(path, 0o660) == 0 else { throw await refuse("set the mode") }
    return ControlServer(channel: channel, path: path, adminGroup: admin)
  }

  /// The socket's owner and mode are set by path after it is bound; in a
  /// folder where someone else can rename files, that someone could put a
  /// link to /etc/shadow there in between and have root hand it to group
  /// haclient. So the folder must be root's or the daemon's, and writable
  /// by nobody else unless sticky (as /tmp is, where nobody may rename
  /// another user's file).
  static func checkFolder(_ folder: String) throws {
    func refuse(_ why: String) -> BindError {
      BindError(description: "the folder \(folder) of the control socket \(why)")
    }
    var info = stat()
    guard stat(folder, &info) == 0 else { throw refuse("cannot be used: \(String(cString: strerror(errno)))") }
    guard info.st_uid == 0 || info.st_uid == geteuid() else {
      throw refuse("belongs to uid \(info.st_uid), not to root or this daemon's user")
    }
    guard info.st_mode & 0o022 == 0 || info.st_mode & S_ISVTX != 0 else {
      let mode = String(info.st_mode & 0o7777, radix: 8)
      throw refuse("is writable by others (mode \(mode)) and not sticky: anyone could swap the socket")
    }
  }

  /// A socket file left by a daemon that died is removed; one that answers
  /// belongs to a running daemon, and anything else is not ours to delete.
  static func removeStaleSocket(at path: String) throws {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    guard info.st_mode & S_IFMT == S_IFSOCK else {
      throw BindError(description: "\(path) exists and is not a socket: refusing to replace it")
    }
    guard path.utf8.count < UnixSocket.longestPath else {
      throw BindError(description: "control socket path too long: \(path)")
    }
    let fd = UnixSocket.connect(path)
    if fd >= 0 {
      _ = Glibc.close(fd)
      throw BindError(description: "another hactld answers on \(path): one daemon per control socket")
    }
    unlink(path)
  }

  init(channel: NIOAsyncChannel<AcceptedConnection, Never>, path: String, adminGroup: gid_t?) {
    self.channel = channel
    self.path = path
    self.adminGroup = adminGroup
  }

  /// Serves until the server is closed; each connection is one request.
  public func serve(_ handler: @escaping @Sendable (ControlRequest) async -> ControlResponse) async throws {
    try await withThrowingDiscardingTaskGroup { group in
      try await channel.executeThenClose { connections in
        for try await accepted in connections {
          let connection = accepted.connection
          let admitted = active.withLock { count in
            guard count < Self.maximumConnections else { return false }
            count += 1
            return true
          }
          group.addTask { [self] in
            defer {
              if admitted { active.withLock { $0 -= 1 } }
              withExtendedLifetime(accepted) {}
            }
            guard admitted else {
              try? await Self.reply(
                .failure("hactld is busy: \(Self.maximumConnections) requests in progress; try again"), on: connection)
              return
            }
            guard let refusal = await refusal(of: connection) else {
              try? await Self.answer(connection, handler)
              return
            }
            try? await Self.reply(.failure(refusal), on: connection)
          }
        }
      }
    }
  }

  /// Why the connecting process may not use the socket, if it may not.
  func refusal(of connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async -> String? {
    guard let provider = connection.channel as? any SocketOptionProvider else {
      return "cannot read the client's credentials"
    }
    let credentials: PeerCredentials
    do {
      credentials = try await provider.unsafeGetSocketOption(
        level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(peerCredentialsOption)
      ).get()
    } catch {
      return "cannot read the client's credentials: \(error)"
    }
    let access = ControlAccess(daemonUser: geteuid(), adminGroup: adminGroup)
    guard access.allows(uid: credentials.uid, gid: credentials.gid) else {
      return "uid \(credentials.uid) may not use hactld: root and members of '\(ControlDefaults.adminGroup)' only"
    }
    return nil
  }

  /// A configuration at its size limit, even with every character escaped in JSON.
  static let maximumRequestBytes = 6 * ClusterLimits.configurationBytes + 1024

  enum Received {
    case line([UInt8])
    case tooLarge
    case closed
    case late
  }

  /// The first line a client sends, within the deadline and the size limit.
  static func receive(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>) async throws -> Received {
    try await withThrowingTaskGroup(of: Received.self) { tasks in
      tasks.addTask {
        var bytes: [UInt8] = []
        for try await chunk in inbound {
          bytes += chunk.readableBytesView
          if let end = bytes.firstIndex(of: UInt8(ascii: "\n")) { return .line(Array(bytes[..<end])) }
          if bytes.count > maximumRequestBytes { return .tooLarge }
        }
        return bytes.isEmpty ? .closed : .line(bytes)
      }
      tasks.addTask {
        try await Task.sleep(for: requestDeadline)
        return .late
      }
      let first = try await tasks.next() ?? .closed
      tasks.cancelAll()
      return first
    }
  }

  static func answer(
    _ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
    _ handler: @Sendable (ControlRequest) async -> ControlResponse
  ) async throws {
    try await connection.executeThenClose { inbound, outbound in
      let response: ControlResponse
      switch try await receive(inbound) {
      case .tooLarge: response = .failure("request larger than \(maximumRequestBytes) bytes")
      case .late: response = .failure("no complete request within \(requestDeadline)")
      case .closed: response = .failure("empty request")
      case .line(let line):
        do {
          response = await handler(try JSONDecoder().decode(ControlRequest.self, from: Data(line)))
        } catch {
          response = .failure("bad request: \(error)")
        }
      }
      try await outbound.write(encode(response))
    }
  }

  static func reply(_ response: ControlResponse, on connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
    try await connection.executeThenClose { _, outbound in try await outbound.write(encode(response)) }
  }

  static func encode(_ response: ControlResponse) -> ByteBuffer {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let body = (try? encoder.encode(response)) ?? Data("{\"ok\":false,\"error\":\"encoding failed\"}".utf8)
    return ByteBuffer(bytes: body + Data("\n".utf8))
  }

  public func close() async {
    try? await channel.channel.close()
    unlink(path)
  }
}

/// A connection the server accepted, whether or not it is ever served.
///
/// NIO traps when a connection's writer is dropped unfinished, and the
/// connections accepted but not yet taken from the queue are dropped when
/// the server stops serving: a client connecting during shutdown would
/// crash the daemon. Whatever drops this closes the connection instead.
final class AcceptedConnection: Sendable {
  let connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>

  init(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) { self.connection = connection }

  deinit {
    connection.outbound.finish()
    connection.channel.close(promise: nil)
  }
}

/// A plain blocking connection to a Unix socket: the stale-socket check,
/// and tests that speak the protocol by hand.
public enum UnixSocket {
  /// `sun_path` holds this many bytes, the terminating zero included.
  public static let longestPath = MemoryLayout.size(ofValue: sockaddr_un().sun_path)

  /// A connected descriptor, or -1 (with `errno` set).
  public static func connect(_ path: String) -> Int32 {
    let bytes = Array(path.utf8)
    guard bytes.count < longestPath else {
      errno = ENAMETOOLONG
      return -1
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in bytes.enumerated() { raw[index] = byte }
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard connected == 0 else {
      let code = errno
      _ = Glibc.close(fd)
      errno = code
      return -1
    }
    return fd
  }
}

/// Linux's `struct ucred`, which Swift's Glibc module does not export.
struct PeerCredentials: Sendable {
  var pid: Int32 = 0
  var uid: UInt32 = 0
  var gid: UInt32 = 0
}

/// SO_PEERCRED on Linux (asm-generic/socket.h), also not exported.
let peerCredentialsOption: Int32 = 17

/// Who may use the control socket: root, the daemon's own user, and
/// members of the admin group (primary or supplementary). Being allowed is
/// being root on every node: a member can apply any configuration, and
/// configurations name the programs the daemons run as root.
public struct ControlAccess: Sendable {
  public var daemonUser: uid_t
  public var adminGroup: gid_t?

  public init(daemonUser: uid_t, adminGroup: gid_t?) {
    self.daemonUser = daemonUser
    self.adminGroup = adminGroup
  }

  public func allows(uid: uid_t, gid: gid_t, groups: (uid_t, gid_t) -> [gid_t] = ControlAccess.groups) -> Bool {
    if uid == 0 || uid == daemonUser { return true }
    guard let adminGroup else { return false }
    return gid == adminGroup || groups(uid, gid).contains(adminGroup)
  }

  /// The user's groups from the system's databases.
  public static func groups(of uid: uid_t, primary gid: gid_t) -> [gid_t] {
    guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return [] }
    var count: Int32 = 64
    var groups = [gid_t](repeating: 0, count: Int(count))
    if getgrouplist(name, gid, &groups, &count) < 0 {
      guard count > 0, count <= 65536 else { return [] }
      groups = [gid_t](repeating: 0, count: Int(count))
      guard getgrouplist(name, gid, &groups, &count) >= 0 else { return [] }
    }
    return Array(groups.prefix(Int(count)))
  }
}

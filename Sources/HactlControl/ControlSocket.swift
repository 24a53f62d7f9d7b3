import Foundation
import HactlModel
import NIOCore
import NIOPosix

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
public final class ControlServer: Sendable {
  let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
  public let path: String

  /// Binds the socket with mode 0660, owned by root and group `haclient`
  /// when that group exists.
  public static func bind(path: String, group: any EventLoopGroup) async throws -> ControlServer {
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let channel = try await ServerBootstrap(group: group)
      .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { child in
        child.eventLoop.makeCompletedFuture {
          try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
        }
      }
    chmod(path, 0o660)
    if let admin = getgrnam(ControlDefaults.adminGroup) {
      chown(path, 0, admin.pointee.gr_gid)
    }
    return ControlServer(channel: channel, path: path)
  }

  init(channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, path: String) {
    self.channel = channel
    self.path = path
  }

  /// Serves until the server is closed; each connection is one request.
  public func serve(_ handler: @escaping @Sendable (ControlRequest) async -> ControlResponse) async throws {
    try await withThrowingDiscardingTaskGroup { group in
      try await channel.executeThenClose { connections in
        for try await connection in connections {
          group.addTask {
            try? await Self.answer(connection, handler)
          }
        }
      }
    }
  }

  /// A configuration at its size limit, even with every character escaped in JSON.
  static let maximumRequestBytes = 6 * ClusterLimits.configurationBytes + 1024

  static func answer(
    _ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
    _ handler: @Sendable (ControlRequest) async -> ControlResponse
  ) async throws {
    try await connection.executeThenClose { inbound, outbound in
      var bytes: [UInt8] = []
      for try await chunk in inbound {
        bytes += chunk.readableBytesView
        if bytes.contains(UInt8(ascii: "\n")) || bytes.count > maximumRequestBytes { break }
      }
      let response: ControlResponse
      if bytes.count > maximumRequestBytes && !bytes.contains(UInt8(ascii: "\n")) {
        response = .failure("request larger than \(maximumRequestBytes) bytes")
      } else if let line = bytes.split(separator: UInt8(ascii: "\n")).first {
        do {
          response = await handler(try JSONDecoder().decode(ControlRequest.self, from: Data(line)))
        } catch {
          response = .failure("bad request: \(error)")
        }
      } else {
        response = .failure("empty request")
      }
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      let body = (try? encoder.encode(response)) ?? Data("{\"ok\":false,\"error\":\"encoding failed\"}".utf8)
      try await outbound.write(ByteBuffer(bytes: body + Data("\n".utf8)))
    }
  }

  public func close() async {
    try? await channel.channel.close()
    unlink(path)
  }
}

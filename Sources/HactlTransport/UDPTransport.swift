import HactlModel
import HactlWire
import NIOCore
import NIOPosix
import Synchronization

/// Authenticated UDP between members. The socket bound to this node's
/// address only receives: SwiftNIO closes a datagram channel on most write
/// errors (an unreachable network, a blackhole route), and that must never
/// make a node deaf. Sends go out through one socket per peer, on the same
/// address and an ephemeral port, so that an error towards one peer (which
/// closes that socket until it is rebuilt) never costs another peer its
/// heartbeats. Bad packets are counted and dropped, never passed on.
public final class UDPTransport: Sendable {
  public struct Counters: Sendable {
    public var sent = 0
    /// Bytes sent, UDP payloads (HMAC tag included).
    public var bytesSent = 0
    /// Sends the kernel refused (no route, network down): the next heartbeat retries.
    public var sendErrors = 0
    public var received = 0
    public var failedAuthentication = 0
    public var malformed = 0
  }

  let receiver: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
  let key: ClusterKey
  let peers: [NodeID: SocketAddress]
  let localHost: String
  let group: any EventLoopGroup
  let counters = Mutex(Counters())
  let senders = Mutex<[NodeID: SenderState]>([:])

  enum SenderState {
    case none
    case opening
    case open(any Channel)
  }

  public static func bind(
    on endpoint: Endpoint, peers: [NodeID: Endpoint], key: ClusterKey, group: any EventLoopGroup
  ) async throws -> UDPTransport {
    let receiver = try await DatagramBootstrap(group: group)
      .channelOption(.socketOption(.so_reuseaddr), value: 1)
      .bind(host: endpoint.host, port: Int(endpoint.port))
      .flatMapThrowing { channel in
        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
          wrappingChannelSynchronously: channel)
      }.get()
    var addresses: [NodeID: SocketAddress] = [:]
    for (id, peer) in peers {
      addresses[id] = try SocketAddress(ipAddress: peer.host, port: Int(peer.port))
    }
    let transport = UDPTransport(receiver: receiver, key: key, peers: addresses, localHost: endpoint.host, group: group)
    for peer in addresses.keys { try await transport.openSender(for: peer) }
    return transport
  }

  init(
    receiver: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>, key: ClusterKey,
    peers: [NodeID: SocketAddress], localHost: String, group: any EventLoopGroup
  ) {
    self.receiver = receiver
    self.key = key
    self.peers = peers
    self.localHost = localHost
    self.group = group
  }

  public var statistics: Counters { counters.withLock { $0 } }

  func openSender(for peer: NodeID) async throws {
    let channel = try await DatagramBootstrap(group: group).bind(host: localHost, port: 0).get()
    senders.withLock { $0[peer] = .open(channel) }
    channel.closeFuture.whenComplete { [self] _ in
      senders.withLock { states in
        if case .open(let current) = states[peer], current === channel { states[peer] = SenderState.none }
      }
    }
  }

  /// Sends without waiting: a heartbeat that cannot go out is replaced by the next.
  public func send(_ bytes: [UInt8], to peer: NodeID) {
    guard let address = peers[peer] else { return }
    let (channel, rebuild): ((any Channel)?, Bool) = senders.withLock { states in
      switch states[peer] ?? SenderState.none {
      case .open(let channel): return (channel, false)
      case .opening: return (nil, false)
      case .none:
        states[peer] = .opening
        return (nil, true)
      }
    }
    guard let channel else {
      // An error closed this peer's socket: rebuild it; this packet is lost.
      if rebuild {
        Task { [self] in
          do {
            try await openSender(for: peer)
          } catch {
            senders.withLock { $0[peer] = SenderState.none }
          }
        }
      }
      counters.withLock { $0.sendErrors += 1 }
      return
    }
    let sealed = key.seal(bytes)
    let envelope = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: sealed))
    let promise = channel.eventLoop.makePromise(of: Void.self)
    promise.futureResult.whenFailure { [self] _ in counters.withLock { $0.sendErrors += 1 } }
    channel.writeAndFlush(envelope, promise: promise)
    counters.withLock {
      $0.sent += 1
      $0.bytesSent += sealed.count
    }
  }

  /// Authenticated, decoded packets, until the channel closes.
  public func packets() -> AsyncStream<Packet> {
    let (stream, continuation) = AsyncStream.makeStream(of: Packet.self, bufferingPolicy: .bufferingNewest(1024))
    let inbound = receiver.inbound
    let task = Task { [self] in
      do {
        for try await envelope in inbound {
          let bytes = Array(envelope.data.readableBytesView)
          guard let body = key.open(bytes) else {
            counters.withLock { $0.failedAuthentication += 1 }
            continue
          }
          guard let packet = try? PacketCodec.decode(body) else {
            counters.withLock { $0.malformed += 1 }
            continue
          }
          counters.withLock { $0.received += 1 }
          continuation.yield(packet)
        }
      } catch {}
      continuation.finish()
    }
    continuation.onTermination = { _ in task.cancel() }
    return stream
  }

  public func close() async {
    try? await receiver.channel.close()
    let channels: [any Channel] = senders.withLock { states in
      states.values.compactMap { state in
        if case .open(let channel) = state { return channel }
        return nil
      }
    }
    for channel in channels { try? await channel.close() }
  }
}

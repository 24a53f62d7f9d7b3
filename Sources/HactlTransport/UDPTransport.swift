import HactlModel
import HactlWire
import NIOCore
import NIOPosix
import Synchronization

/// Authenticated UDP between members: one socket bound to this node's
/// address, packets sealed with the cluster key. Bad packets are counted and
/// dropped, never passed on.
public final class UDPTransport: Sendable {
  public struct Counters: Sendable {
    public var sent = 0
    /// Bytes sent, UDP payloads (HMAC tag included).
    public var bytesSent = 0
    public var received = 0
    public var failedAuthentication = 0
    public var malformed = 0
  }

  let channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
  let key: ClusterKey
  let peers: [NodeID: SocketAddress]
  let counters = Mutex(Counters())

  public static func bind(
    on endpoint: Endpoint, peers: [NodeID: Endpoint], key: ClusterKey, group: any EventLoopGroup
  ) async throws -> UDPTransport {
    let channel = try await DatagramBootstrap(group: group)
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
    return UDPTransport(channel: channel, key: key, peers: addresses)
  }

  init(
    channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>, key: ClusterKey,
    peers: [NodeID: SocketAddress]
  ) {
    self.channel = channel
    self.key = key
    self.peers = peers
  }

  public var statistics: Counters { counters.withLock { $0 } }

  /// Sends without waiting: a heartbeat that cannot go out is replaced by the next.
  public func send(_ bytes: [UInt8], to peer: NodeID) {
    guard let address = peers[peer] else { return }
    let sealed = key.seal(bytes)
    let envelope = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: sealed))
    channel.channel.writeAndFlush(envelope, promise: nil)
    counters.withLock {
      $0.sent += 1
      $0.bytesSent += sealed.count
    }
  }

  /// Authenticated, decoded packets, until the channel closes.
  public func packets() -> AsyncStream<Packet> {
    let (stream, continuation) = AsyncStream.makeStream(of: Packet.self, bufferingPolicy: .bufferingNewest(1024))
    let inbound = channel.inbound
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
    try? await channel.channel.close()
  }
}

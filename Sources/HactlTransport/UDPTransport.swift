import HactlModel
import HactlWire
import NIOCore
import NIOPosix
import Synchronization

/// Encrypted (or authenticated) UDP between members, on every link. The sockets bound to
/// this node's addresses (one per link) only receive: SwiftNIO closes a
/// datagram channel on most write errors (an unreachable network, a
/// blackhole route), and that must never make a node deaf. Sends go out
/// through one socket per peer and link, on the link's address and an
/// ephemeral port, so that an error towards one peer (which closes that
/// socket until it is rebuilt) never costs another peer or link its
/// heartbeats. Bad packets are counted and dropped, never passed on.
public final class UDPTransport: Sendable {
  public struct Counters: Sendable {
    public var sent = 0
    /// Bytes sent, UDP payloads (tag included).
    public var bytesSent = 0
    /// Sends the kernel refused (no route, network down): the next heartbeat retries.
    public var sendErrors = 0
    public var received = 0
    public var failedAuthentication = 0
    public var malformed = 0
    /// From no configured peer, or meant for another member.
    public var misdirected = 0
    /// Another format version, or an authentic message of a kind this
    /// version does not know: a newer peer (counted, logged by the daemon).
    public var unsupported = 0
  }

  /// A packet and the link it came in on.
  public struct Arrival: Sendable {
    public var packet: Packet
    public var link: Int
  }

  typealias Receiver = NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>

  let receivers: [Receiver]
  public let sealer: PacketSealer
  /// Each peer's address on each link.
  let peers: [NodeID: [SocketAddress]]
  let peerIDs: Set<NodeID>
  let localHosts: [String]
  let group: any EventLoopGroup
  let counters = Mutex(Counters())
  let senders = Mutex<[SenderKey: SenderState]>([:])

  struct SenderKey: Hashable {
    var peer: NodeID
    var link: Int
  }

  enum SenderState {
    case none
    case opening
    case open(any Channel)
  }

  /// One more than any datagram of ours, so a larger one is seen as such
  /// (and refused), never cut to fit.
  static let receiveBufferBytes = PacketCodec.maximumDatagram + 1
  /// Room in the kernel for a burst of parts (a large configuration offer)
  /// while the daemon is busy; the kernel caps it at net.core.rmem_max.
  static let socketReceiveBuffer = 4 << 20

  public static func bind(
    links: [Endpoint], peers: [NodeID: [Endpoint]], sealer: PacketSealer, group: any EventLoopGroup
  ) async throws -> UDPTransport {
    var receivers: [Receiver] = []
    for link in links {
      receivers.append(
        // No SO_REUSEADDR: with it, any local user (or a second hactld)
        // could bind the same address and port and take this node's packets.
        try await DatagramBootstrap(group: group)
          .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.receiveBufferBytes))
          .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(Self.socketReceiveBuffer))
          .bind(host: link.host, port: Int(link.port))
          .flatMapThrowing { try Receiver(wrappingChannelSynchronously: $0) }
          .get())
    }
    var addresses: [NodeID: [SocketAddress]] = [:]
    for (id, endpoints) in peers {
      addresses[id] = try endpoints.map { try SocketAddress(ipAddress: $0.host, port: Int($0.port)) }
    }
    let transport = UDPTransport(
      receivers: receivers, sealer: sealer, peers: addresses, localHosts: links.map(\.host), group: group)
    for peer in addresses.keys {
      for link in links.indices { try await transport.openSender(SenderKey(peer: peer, link: link)) }
    }
    return transport
  }

  init(
    receivers: [Receiver], sealer: PacketSealer, peers: [NodeID: [SocketAddress]], localHosts: [String],
    group: any EventLoopGroup
  ) {
    self.receivers = receivers
    self.sealer = sealer
    self.peerIDs = Set(peers.keys)
    self.peers = peers
    self.localHosts = localHosts
    self.group = group
  }

  public var statistics: Counters { counters.withLock { $0 } }

  func openSender(_ key: SenderKey) async throws {
    let channel = try await DatagramBootstrap(group: group).bind(host: localHosts[key.link], port: 0).get()
    senders.withLock { $0[key] = .open(channel) }
    channel.closeFuture.whenComplete { [self] _ in
      senders.withLock { states in
        if case .open(let current) = states[key], current === channel { states[key] = SenderState.none }
      }
    }
  }

  /// Sends on every link without waiting: a heartbeat that cannot go out is
  /// replaced by the next.
  public func send(_ packet: Packet) throws(WireError) {
    guard let peer = packet.header.receiver, let addresses = peers[peer] else { return }
    let sealed = try sealer.seal(packet)
    for (link, address) in addresses.enumerated() where link < localHosts.count {
      send(sealed, to: address, via: SenderKey(peer: peer, link: link))
    }
  }

  func send(_ sealed: [UInt8], to address: SocketAddress, via key: SenderKey) {
    let (channel, rebuild): ((any Channel)?, Bool) = senders.withLock { states in
      switch states[key] ?? SenderState.none {
      case .open(let channel): return (channel, false)
      case .opening: return (nil, false)
      case .none:
        states[key] = .opening
        return (nil, true)
      }
    }
    guard let channel else {
      // An error closed this socket: rebuild it; this packet is lost.
      if rebuild {
        Task { [self] in
          do {
            try await openSender(key)
          } catch {
            senders.withLock { $0[key] = SenderState.none }
          }
        }
      }
      counters.withLock { $0.sendErrors += 1 }
      return
    }
    let envelope = AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: sealed))
    let promise = channel.eventLoop.makePromise(of: Void.self)
    promise.futureResult.whenFailure { [self] _ in counters.withLock { $0.sendErrors += 1 } }
    channel.writeAndFlush(envelope, promise: promise)
    counters.withLock {
      $0.sent += 1
      $0.bytesSent += sealed.count
    }
  }

  /// Authenticated, decoded packets from every link, until the sockets close.
  public func packets() -> AsyncStream<Arrival> {
    let (stream, continuation) = AsyncStream.makeStream(of: Arrival.self, bufferingPolicy: .bufferingNewest(1024))
    let tasks = receivers.enumerated().map { link, receiver in
      let inbound = receiver.inbound
      return Task { [self] in
        do {
          for try await envelope in inbound {
            let bytes = Array(envelope.data.readableBytesView)
            switch sealer.open(bytes, peers: peerIDs) {
            case .success(let packet):
              counters.withLock { $0.received += 1 }
              continuation.yield(Arrival(packet: packet, link: link))
            case .failure(let refusal):
              counters.withLock { counters in
                switch refusal {
                case .malformed: counters.malformed += 1
                case .misdirected: counters.misdirected += 1
                case .failedAuthentication: counters.failedAuthentication += 1
                case .unsupportedVersion, .unknownKind: counters.unsupported += 1
                }
              }
            }
          }
        } catch {}
      }
    }
    Task {
      for task in tasks { await task.value }
      continuation.finish()
    }
    continuation.onTermination = { _ in
      for task in tasks { task.cancel() }
    }
    return stream
  }

  public func close() async {
    for receiver in receivers { try? await receiver.channel.close() }
    let channels: [any Channel] = senders.withLock { states in
      states.values.compactMap { state in
        if case .open(let channel) = state { return channel }
        return nil
      }
    }
    for channel in channels { try? await channel.close() }
  }
}

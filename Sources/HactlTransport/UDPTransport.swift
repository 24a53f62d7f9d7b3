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

  let receivers = Mutex<[any Channel]>([])
  /// Where authenticated packets go, and who hears when a socket closes.
  let inbox = Mutex<Inbox?>(nil)
  public let sealer: PacketSealer
  /// Each peer's address on each link.
  let peers: [NodeID: [SocketAddress]]
  let peerIDs: Set<NodeID>
  let localHosts: [String]
  /// Every socket lives on this one event loop, and so may the daemon's
  /// core: a packet is read, opened and handled, and the answer written, on
  /// one thread with no hand-over (issue 9: an idle node's cost is mostly
  /// threads waking each other).
  public let loop: any EventLoop
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
  static let datagramsPerRead: UInt = 32

  struct Inbox: Sendable {
    var deliver: @Sendable (Arrival) -> Void
    var closed: @Sendable () -> Void
  }

  public static func bind(
    links: [Endpoint], peers: [NodeID: [Endpoint]], sealer: PacketSealer, loop: any EventLoop
  ) async throws -> UDPTransport {
    var addresses: [NodeID: [SocketAddress]] = [:]
    for (id, endpoints) in peers {
      addresses[id] = try endpoints.map { try SocketAddress(ipAddress: $0.host, port: Int($0.port)) }
    }
    let transport = UDPTransport(sealer: sealer, peers: addresses, localHosts: links.map(\.host), loop: loop)
    for (index, link) in links.enumerated() {
      // No SO_REUSEADDR: with it, any local user (or a second hactld)
      // could bind the same address and port and take this node's packets.
      let channel = try await DatagramBootstrap(group: loop)
        .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.receiveBufferBytes))
        .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(Self.socketReceiveBuffer))
        // A peer's burst (31 heartbeats, a section's parts) is read in one
        // turn of the loop, and decided on once (DaemonCore.receive).
        .channelOption(.maxMessagesPerRead, value: Self.datagramsPerRead)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ArrivalHandler(transport: transport, link: index))
          }
        }
        .bind(host: link.host, port: Int(link.port))
        .get()
      transport.receivers.withLock { $0.append(channel) }
    }
    for peer in addresses.keys {
      for link in links.indices { try await transport.openSender(SenderKey(peer: peer, link: link)) }
    }
    return transport
  }

  init(sealer: PacketSealer, peers: [NodeID: [SocketAddress]], localHosts: [String], loop: any EventLoop) {
    self.sealer = sealer
    self.peerIDs = Set(peers.keys)
    self.peers = peers
    self.localHosts = localHosts
    self.loop = loop
  }

  public var statistics: Counters { counters.withLock { $0 } }

  func openSender(_ key: SenderKey) async throws {
    let channel = try await DatagramBootstrap(group: loop).bind(host: localHosts[key.link], port: 0).get()
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

  /// Hands every authenticated, decoded packet to `deliver`, on `loop`, as
  /// it is read; `closed` is called once if a receiving socket closes (the
  /// node is deaf from then on).
  public func receive(
    deliver: @escaping @Sendable (Arrival) -> Void, closed: @escaping @Sendable () -> Void
  ) {
    // On the loop, where packets arrive: those that came before anyone
    // listened go first, in order.
    loop.execute { [self] in
      inbox.withLock { $0 = Inbox(deliver: deliver, closed: closed) }
      for arrival in early.withLock({ early in
        defer { early = [] }
        return early
      }) {
        deliver(arrival)
      }
    }
  }

  /// Packets read before `receive` was called (the daemon binds its
  /// sockets before it starts listening), up to a limit.
  let early = Mutex<[Arrival]>([])
  static let earlyLimit = 256

  /// The same packets as a stream (tests), until a socket closes.
  public func packets() -> AsyncStream<Arrival> {
    let (stream, continuation) = AsyncStream.makeStream(of: Arrival.self, bufferingPolicy: .bufferingNewest(1024))
    receive(deliver: { continuation.yield($0) }, closed: { continuation.finish() })
    return stream
  }

  /// One datagram read on link `link`: opened, counted, delivered.
  func arrived(_ bytes: [UInt8], link: Int) {
    switch sealer.open(bytes, peers: peerIDs) {
    case .success(let packet):
      counters.withLock { $0.received += 1 }
      let arrival = Arrival(packet: packet, link: link)
      guard let inbox = inbox.withLock({ $0 }) else {
        early.withLock { if $0.count < Self.earlyLimit { $0.append(arrival) } }
        return
      }
      inbox.deliver(arrival)
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

  func receiverClosed() {
    let inbox = inbox.withLock { inbox in
      defer { inbox = nil }
      return inbox
    }
    inbox?.closed()
  }

  public func close() async {
    // Whoever listens hears that it ends (and knows it asked for it).
    receiverClosed()
    for receiver in receivers.withLock({ $0 }) { try? await receiver.close() }
    let channels: [any Channel] = senders.withLock { states in
      states.values.compactMap { state in
        if case .open(let channel) = state { return channel }
        return nil
      }
    }
    for channel in channels { try? await channel.close() }
  }
}

/// Reads datagrams on a receiving socket and hands them to the transport,
/// on the socket's event loop.
final class ArrivalHandler: ChannelInboundHandler, Sendable {
  typealias InboundIn = AddressedEnvelope<ByteBuffer>

  let transport: UDPTransport
  let link: Int

  init(transport: UDPTransport, link: Int) {
    self.transport = transport
    self.link = link
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let envelope = unwrapInboundIn(data)
    transport.arrived(Array(envelope.data.readableBytesView), link: link)
  }

  func channelInactive(context: ChannelHandlerContext) {
    transport.receiverClosed()
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // A read error (ICMP port unreachable reported on the socket, say) is
    // not a reason to stop listening.
  }
}

import HactlLab
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire
import NIOPosix
import Testing

/// Two real transports on 127.0.0.1: what one seals, the other opens, from
/// the smallest datagram to the largest, and what is larger goes as parts
/// that each fit. Serialized: it binds ports.
@Suite(.serialized)
struct TransportTests {
  @Test func largePacketsArriveWholeAndAuthenticated() async throws {
    let ports = try LocalCluster.freeUDPPorts(count: 2)
    let key = ClusterKey(secret: Array(repeating: 7, count: 32), clusterName: "big")
    func sealer(_ local: UInt32) -> PacketSealer {
      PacketSealer(protection: .encrypted, local: NodeID(local), current: key)
    }
    let endpoints = ports.map { Endpoint(host: "127.0.0.1", port: $0) }
    let group = MultiThreadedEventLoopGroup.singleton
    let sender = try await UDPTransport.bind(
      links: [endpoints[0]], peers: [NodeID(2): [endpoints[1]]], sealer: sealer(1), loop: group.next())
    let receiver = try await UDPTransport.bind(
      links: [endpoints[1]], peers: [NodeID(1): [endpoints[0]]], sealer: sealer(2), loop: group.next())
    // A leader's heartbeat with many answers, and a configuration of 34 KB.
    let answers = (0..<ClusterLimits.answersKept).map {
      RequestAnswer(
        origin: NodeID(2), id: UInt64($0), accepted: true,
        message: "configuration 1.\($0) is stored on members holding 2 of 3 votes; "
          + String(repeating: "z", count: 150),
        configVersion: ConfigVersion(epoch: 1, version: UInt64($0)))
    }
    let messages: [Message] = [
      .heartbeat(
        Heartbeat(membership: MembershipBeat(term: 1, leader: NodeID(1), heard: [], members: []), answers: answers)),
      .configOffer(
        ConfigDocument(
          version: ConfigVersion(epoch: 1, version: 40), base: ConfigVersion(epoch: 1, version: 39),
          text: String(repeating: "# a long comment\n", count: 2_000))),
    ]
    var sent: [Packet] = []
    for message in messages {
      let datagrams = try MessageParts.fit(message)
      #expect(datagrams.count > 1)
      for datagram in datagrams {
        let packet = Packet(
          header: PacketHeader(
            sender: NodeID(1), receiver: NodeID(2), incarnation: 1, sequence: UInt64(sent.count + 1)),
          message: datagram)
        #expect(try sender.sealer.seal(packet).count <= PacketCodec.maximumDatagram)
        try sender.send(packet)
        sent.append(packet)
      }
    }
    var received: [Packet] = []
    let total = sent.count
    let stream = receiver.packets()
    let collect = Task {
      var packets: [Packet] = []
      for await arrival in stream {
        packets.append(arrival.packet)
        if packets.count == total { break }
      }
      return packets
    }
    let timeout = Task {
      try await Task.sleep(for: .seconds(5))
      collect.cancel()
    }
    received = await collect.value
    timeout.cancel()
    // Loopback keeps the order; a difference is shown short, not as bytes.
    #expect(received.count == sent.count)
    let differing = zip(received, sent).first { $0.0 != $0.1 }.map { String(describing: $0.1.header) }
    #expect(differing == nil, "the first datagram that differs from what was sent")
    #expect(receiver.statistics.failedAuthentication == 0)
    var assembler = PartAssembler()
    let offer = received.compactMap { packet -> Message? in
      guard case .part(let part) = packet.message, part.stream == .configOffer,
        let bytes = assembler.add(part)
      else { return nil }
      return try? MessageParts.message(of: part.stream, bytes)
    }
    #expect(offer == [messages[1]])
    await sender.close()
    await receiver.close()
  }
}

import HactlLab
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire
import NIOPosix
import Testing

/// Two real transports on 127.0.0.1: what one seals, the other opens, up to
/// the largest packet the codec makes. Serialized: it binds ports.
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
      links: [endpoints[0]], peers: [NodeID(2): [endpoints[1]]], sealer: sealer(1), group: group)
    let receiver = try await UDPTransport.bind(
      links: [endpoints[1]], peers: [NodeID(1): [endpoints[0]]], sealer: sealer(2), group: group)
    // A leader's heartbeat with many answers (NIO's default would cut it at
    // 2048 bytes), and a configuration at its size limit.
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
          text: String(repeating: "# a long comment\n", count: ClusterLimits.configurationBytes / 17))),
    ]
    var sent: [Packet] = []
    for (index, message) in messages.enumerated() {
      let packet = Packet(
        header: PacketHeader(sender: NodeID(1), receiver: NodeID(2), incarnation: 1, sequence: UInt64(index + 1)),
        message: message)
      let bytes = try PacketCodec.encode(packet)
      #expect(bytes.count > 2048)
      try sender.send(packet)
      sent.append(packet)
    }
    var received: [Packet] = []
    let stream = receiver.packets()
    let collect = Task {
      var packets: [Packet] = []
      for await arrival in stream {
        packets.append(arrival.packet)
        if packets.count == messages.count { break }
      }
      return packets
    }
    let timeout = Task {
      try await Task.sleep(for: .seconds(5))
      collect.cancel()
    }
    received = await collect.value
    timeout.cancel()
    #expect(received == sent)
    #expect(receiver.statistics.failedAuthentication == 0)
    await sender.close()
    await receiver.close()
  }
}

import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// Records UDP datagrams to one port (as tcpdump would, with a packet
/// socket: root only), for replaying them later. Traffic to 127.0.0.1 is
/// only on the loopback interface (each datagram seen going out and in).
final class LoopbackRecorder: @unchecked Sendable {
  let fd: Int32
  let port: UInt16

  /// ETH_P_IP, in network order as `socket(2)` wants it.
  static let ipProtocol = UInt16(0x0800).bigEndian

  init?(port: UInt16) {
    fd = socket(AF_PACKET, Int32(SOCK_DGRAM.rawValue), Int32(Self.ipProtocol))
    guard fd >= 0 else { return nil }
    self.port = port
    var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  }

  deinit { close(fd) }

  /// The UDP payloads sent to `port` during `duration`.
  func record(for duration: Duration) -> [[UInt8]] {
    let deadline = ContinuousClock.now + duration
    return capture(until: { ContinuousClock.now >= deadline }) { $0 == port }.compactMap(\.payload)
  }

  struct Captured {
    /// Nil for an IP fragment other than the first.
    var payload: [UInt8]?
    /// IP says more fragments follow, or this one is not the first.
    var fragment: Bool
  }

  /// Every IPv4 UDP datagram to a port `wanted` accepts, and every IP
  /// fragment of one.
  func capture(until done: () -> Bool, to wanted: (UInt16) -> Bool) -> [Captured] {
    var captured: [Captured] = []
    var buffer = [UInt8](repeating: 0, count: 70_000)
    while !done() {
      let count = recv(fd, &buffer, buffer.count, 0)
      guard count > 28, buffer[0] >> 4 == 4, buffer[9] == 17 else { continue }  // IPv4, UDP
      let ipHeader = Int(buffer[0] & 0x0f) * 4
      let flagsAndOffset = UInt16(buffer[6]) << 8 | UInt16(buffer[7])
      let moreFragments = flagsAndOffset & 0x2000 != 0
      guard flagsAndOffset & 0x1fff == 0 else {
        captured.append(Captured(payload: nil, fragment: true))
        continue
      }
      guard count > ipHeader + 8 else { continue }
      let destination = UInt16(buffer[ipHeader + 2]) << 8 | UInt16(buffer[ipHeader + 3])
      guard wanted(destination) else { continue }
      captured.append(Captured(payload: Array(buffer[(ipHeader + 8)..<count]), fragment: moreFragments))
    }
    return captured
  }
}

@Suite(.serialized, .enabled(if: getuid() == 0))
struct ReplayAcrossRestartTests {
  /// Packets from its peers, recorded while alpha ran, replayed to alpha
  /// restarted alone: once they gave it quorum; now they count for nothing.
  @Test func packetsRecordedBeforeARestartGiveNoQuorumAfterIt() async throws {
    let cluster = try LocalCluster(
      options: LocalCluster.Options(resourcesYAML: LabResources.markerOnAlpha))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.resource("marker")?.state == .started }
    let port = try #require(cluster.ports["alpha"])
    let recorder = try #require(LoopbackRecorder(port: port))
    let recorded = try await Blocking.run { recorder.record(for: .seconds(1)) }
    try #require(recorded.count >= 5, "recorded only \(recorded.count) datagrams to alpha")
    for member in cluster.members { cluster.crash(member) }
    try cluster.start("alpha")
    // Replay them while watching alpha: a single status with quorum, or a
    // peer alive, is the failure.
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.localNode == "alpha" }
    var sawQuorum: String?
    let sender = try LoopbackSender()
    for _ in 0..<30 {
      for datagram in recorded { sender.send(datagram, to: port) }
      try await Task.sleep(for: .milliseconds(20))
      let seen = try await cluster.status(via: "alpha")
      if seen.quorum.quorate || seen.nodes.contains(where: { $0.name != "alpha" && $0.state != .lost }) {
        sawQuorum = StatusText.render(seen)
      }
      try await Task.sleep(for: .milliseconds(80))
    }
    #expect(sawQuorum == nil, "replayed packets counted: \(sawQuorum ?? "")")
    let status = try await cluster.status(via: "alpha")
    #expect(status.nodes.filter { $0.name != "alpha" }.allSatisfy { $0.state == .lost })
    #expect(status.resource("marker")?.state != .started)
    let traffic = try #require(status.traffic)
    #expect(traffic.earlierBoot >= recorded.count, "\(traffic)")
    #expect(traffic.received >= recorded.count)
  }
}

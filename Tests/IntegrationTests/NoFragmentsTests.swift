import Foundation
import HactlControl
import HactlLab
import HactlModel
import HactlWire
import Synchronization
import Testing

/// Real daemons with state far larger than a datagram (a hundred resources,
/// a configuration of 100 KB) never send a datagram over the limit and never
/// an IP fragment, yet every member gets every whole: nothing relies on
/// fragments, which real networks lose. Root only (a packet socket).
@Suite(.serialized, .enabled(if: getuid() == 0))
struct NoFragmentsTests {
  static let resourceCount = 100

  static var resources: String {
    (0..<resourceCount).map { index in
      """
        - id: service-\(index)-with-a-long-name-as-sites-use
          agent: ocf:hactl:Marker
          monitor: { interval: 60s, timeout: 10s }
          prefer: { node: \(index % 2 == 0 ? "alpha" : "beta") }
      """
    }.joined(separator: "\n")
  }

  @Test func largeStateAndConfigurationsTravelWithoutFragments() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    let recorder = try #require(LoopbackRecorder(port: 0))
    let ports = Set(cluster.ports.values)
    try cluster.startAll()
    // Watch everything the members send each other while they start a
    // hundred resources and replicate a large configuration.
    let done = Mutex(false)
    let capture = Task {
      try await Blocking.run { recorder.capture(until: { done.withLock { $0 } }) { ports.contains($0) } }
    }
    _ = try await cluster.waitFor(via: "arbiter", timeout: .seconds(60)) { status in
      status.resources.filter { $0.state == .started }.count == Self.resourceCount
    }
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    let padded = original + String(repeating: "# a comment that makes the file large\n", count: 2_700)
    #expect(padded.utf8.count > 100_000)
    let applied = try await ControlClient.send(.applyConfig(text: padded), socketPath: cluster.socketPath("beta"))
    #expect(applied.ok, "\(applied.error ?? "")")
    let everywhere = try await cluster.waitFor(via: "arbiter", timeout: .seconds(10)) {
      $0.configuration?.behind == []
    }
    #expect(everywhere.configuration?.version == applied.configVersion)
    try await Task.sleep(for: .milliseconds(500))
    done.withLock { $0 = true }
    let captured = try await capture.value
    let payloads = captured.compactMap(\.payload)
    #expect(payloads.count > 100, "captured only \(payloads.count) datagrams")
    #expect(!captured.contains { $0.fragment }, "an IP fragment went out")
    let largest = payloads.map(\.count).max() ?? 0
    #expect(largest <= PacketCodec.maximumDatagram, "a datagram of \(largest) bytes")
    // The state really was larger than a datagram: it went in parts.
    let parts = payloads.filter { $0.count > 5 && $0[5] == PacketCodec.Kind.part.rawValue }
    #expect(parts.count > 80, "only \(parts.count) parts")
  }
}

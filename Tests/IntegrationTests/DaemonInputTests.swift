import Foundation
import HactlConfig
import HactlControl
import HactlLab
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire
import Testing

/// Bad input to a real daemon: forged, garbled and replayed packets are
/// dropped and counted; a bad key or configuration stops it at once.
@Suite(.serialized)
struct DaemonInputTests {
  static let resources = LabResources.marker

  func sendUDP(_ bytes: [UInt8], to port: UInt16) { try? LoopbackSender().send(bytes, to: port) }

  @Test func forgedGarbledAndReplayedPacketsAreDroppedAndCounted() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.resource("marker")?.state == .started }
    let port = try #require(cluster.ports["alpha"])
    let config = try ConfigLoader.load(path: cluster.configPath)
    let realKey = try ClusterKey.load(path: config.cluster.keyFile, clusterName: config.cluster.name)
    let wrongKey = ClusterKey(secret: Array(repeating: 9, count: 64), clusterName: config.cluster.name)
    let alphaBoot = try #require(
      UInt64(
        try String(contentsOfFile: cluster.stateFolder("alpha") + "/incarnation", encoding: .utf8)
          .trimmingCharacters(in: .whitespacesAndNewlines)))
    // A heartbeat from beta claiming leadership of a huge term, from an old
    // boot of beta, naming alpha's current boot.
    func forged(to receiver: UInt32 = 1) -> Packet {
      Packet(
        header: PacketHeader(
          sender: NodeID(2), receiver: NodeID(receiver), incarnation: 1, receiverIncarnation: alphaBoot, sequence: 1),
        message: .heartbeat(
          Heartbeat(membership: MembershipBeat(term: 1_000_000, leader: NodeID(2), heard: [], members: [NodeID(2)]))))
    }
    let real = PacketSealer(protection: .encrypted, local: NodeID(2), current: realKey)
    let wrong = PacketSealer(protection: .encrypted, local: NodeID(2), current: wrongKey)
    for _ in 0..<10 { sendUDP(Array("garbage".utf8), to: port) }
    for _ in 0..<5 { sendUDP(try wrong.seal(forged()), to: port) }
    for _ in 0..<3 { sendUDP(try real.seal(forged(to: 3)), to: port) }
    for _ in 0..<2 { sendUDP(try real.seal(forged()), to: port) }

    let after = try await cluster.waitFor(via: "alpha", timeout: .seconds(10)) { status in
      guard let traffic = status.traffic else { return false }
      return traffic.failedAuthentication >= 5 && traffic.malformed >= 10 && traffic.replayed >= 2
        && traffic.unknownSender >= 3
    }
    let traffic = try #require(after.traffic)
    // The control socket is for root and the admin group only.
    var info = stat()
    #expect(stat(cluster.socketPath("alpha"), &info) == 0)
    #expect(info.st_mode & 0o777 == 0o660)
    #expect(traffic.failedAuthentication == 5)
    #expect(traffic.malformed == 10)
    #expect(traffic.replayed == 2)
    #expect(traffic.unknownSender == 3)
    #expect(traffic.key == ClusterKey.hex(realKey.id))
    // None of it changed anything: same term, same leader, still running.
    #expect(after.term < 1_000_000)
    #expect(after.resource("marker")?.state == .started)
    #expect(after.nodes.allSatisfy { $0.state == .online })
    #expect(
      StatusText.render(after).contains(
        "dropped: 5 failed authentication, 10 malformed, 2 replayed, 3 from unknown senders"))
  }

  /// A newer release's packets are counted apart and said out loud: the
  /// operator of a half-upgraded cluster learns it from the log.
  @Test func packetsFromANewerFormatAreCountedAndLogged() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.start("alpha")
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.localNode == "alpha" }
    let port = try #require(cluster.ports["alpha"])
    let future = Array("HACT".utf8) + [PacketCodec.version + 1] + [UInt8](repeating: 0, count: 120)
    for _ in 0..<4 { sendUDP(future, to: port) }
    let status = try await cluster.waitFor(via: "alpha", timeout: .seconds(10)) {
      ($0.traffic?.unsupported ?? 0) >= 4
    }
    #expect(status.traffic?.malformed == 0)
    let deadline = ContinuousClock.now + .seconds(5)
    while !cluster.tail(of: cluster.logPath("alpha")).contains("a newer version runs on another member")
      && ContinuousClock.now < deadline
    {
      try await Task.sleep(for: .milliseconds(20))
    }
    #expect(cluster.tail(of: cluster.logPath("alpha")).contains("a newer version runs on another member"))
  }

  func runDaemon(_ arguments: [String]) throws -> Tool.Result { try Tool.run(try Tool.hactld(), arguments) }

  @Test func daemonRefusesAKeyReadableByOthers() throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    chmod(cluster.folder + "/authkey", 0o644)
    let result = try runDaemon([
      "--config", cluster.configPath, "--node", "alpha", "--state", cluster.stateFolder("alpha"), "--socket",
      cluster.socketPath("alpha"),
    ])
    #expect(result.status == 2)
    #expect(
      result.errors
        == "hactld: key file: cannot read \(cluster.folder)/authkey: mode 644: it must not be readable or writable by group or others (chmod 600 \(cluster.folder)/authkey)\n"
    )
  }

  @Test func daemonRefusesAnInvalidConfigurationAndAnUnknownNode() throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    let unknown = try runDaemon([
      "--config", cluster.configPath, "--node", "omega", "--state", cluster.stateFolder("x"),
    ])
    #expect(unknown.status == 2)
    #expect(unknown.errors.contains("no node or witness named 'omega'"))
    let witness = try runDaemon([
      "--config", cluster.configPath, "--node", "arbiter", "--state", cluster.stateFolder("x"),
    ])
    #expect(witness.errors.contains("'arbiter' is the witness: start it with --witness"))
    let broken = cluster.folder + "/broken.yaml"
    try "cluster: { name: x }\n".write(toFile: broken, atomically: true, encoding: .utf8)
    let invalid = try runDaemon(["--config", broken, "--node", "alpha", "--state", cluster.stateFolder("x")])
    #expect(invalid.status == 2)
    #expect(invalid.errors.contains("\(broken):1:10: cluster.key_file: missing required key 'key_file'"))
  }

  @Test func daemonRefusesCorruptOrInvalidStoredStateAndSaysWhatToDo() throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    let state = cluster.stateFolder("alpha")
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    try "{\"version\": ".write(toFile: state + "/config.json", atomically: true, encoding: .utf8)
    let corrupt = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(corrupt.status == 2)
    #expect(corrupt.errors.contains("\(state)/config.json is corrupt"), "\(corrupt.errors)")
    #expect(corrupt.errors.contains("move it away"))
    let invalid = ConfigDocument(
      version: ConfigVersion(epoch: 3, version: 2), base: ConfigVersion(epoch: 3, version: 1), text: "nodes: 7\n")
    try JSONEncoder().encode(invalid).write(to: URL(fileURLWithPath: state + "/config.json"))
    let refused = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(refused.status == 2)
    #expect(refused.errors.contains("the stored configuration 3.2 is invalid"), "\(refused.errors)")
    #expect(refused.errors.contains("(configuration 3.2):1:1"), "\(refused.errors)")
    try FileManager.default.removeItem(atPath: state + "/config.json")
    try "[{\"id\": 3}]".write(toFile: state + "/retiring.json", atomically: true, encoding: .utf8)
    let retiring = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(retiring.status == 2)
    #expect(retiring.errors.contains("\(state)/retiring.json is corrupt"), "\(retiring.errors)")
    #expect(retiring.errors.contains("stop them by hand"))
    try FileManager.default.removeItem(atPath: state + "/retiring.json")

    // A state file that exists but cannot be read is not an absent one: a
    // node that forgot its vote could vote twice in one term.
    try FileManager.default.createDirectory(atPath: state + "/election.json", withIntermediateDirectories: false)
    let unreadable = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(unreadable.status == 2)
    #expect(unreadable.errors.contains("\(state)/election.json: not a regular file"), "\(unreadable.errors)")
    try FileManager.default.removeItem(atPath: state + "/election.json")
    symlink(cluster.folder + "/elsewhere.json", state + "/election.json")
    let linked = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(linked.status == 2)
    #expect(linked.errors.contains("symbolic link"), "\(linked.errors)")
    try FileManager.default.removeItem(atPath: state + "/election.json")
    try "{\"term\": 18446744073709551615}".write(toFile: state + "/election.json", atomically: true, encoding: .utf8)
    let hugeTerm = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(hugeTerm.status == 2)
    #expect(hugeTerm.errors.contains("beyond any real cluster"), "\(hugeTerm.errors)")
    try FileManager.default.removeItem(atPath: state + "/election.json")

    // A folder others may write: they could delete the vote record.
    chmod(state, 0o777)
    let open = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(open.status == 2)
    #expect(open.errors.contains("must belong to this daemon's user"), "\(open.errors)")
    chmod(state, 0o700)

    // The largest incarnation once crashed the daemon at start, silently.
    try "18446744073709551615\n".write(toFile: state + "/incarnation", atomically: true, encoding: .utf8)
    let hugeIncarnation = try runDaemon(["--config", cluster.configPath, "--node", "alpha", "--state", state])
    #expect(hugeIncarnation.status == 2)
    #expect(hugeIncarnation.errors.contains("\(state)/incarnation does not hold a boot incarnation"))
  }
}

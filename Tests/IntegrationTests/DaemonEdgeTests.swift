import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// A careless operator and a hostile local user against a real daemon:
/// one daemon per node, nobody else on its port, and a control socket that
/// no client can exhaust.
@Suite(.serialized)
struct DaemonEdgeTests {
  static let resources = """
      - id: marker
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
    """

  func runDaemon(_ arguments: [String]) throws -> Tool.Result { try Tool.run(try Tool.hactld(), arguments) }

  @Test func aSecondDaemonForTheSameStateFolderExitsWithAClearMessage() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.resource("marker")?.state == .started }
    let pid = try #require(cluster.pid("alpha"))
    // Another socket path, so only the state folder is shared.
    let second = try runDaemon([
      "--config", cluster.configPath, "--node", "alpha", "--state", cluster.stateFolder("alpha"), "--socket",
      cluster.folder + "/second.sock",
    ])
    #expect(second.status == 1)
    #expect(
      second.errors.contains("another hactld (pid \(pid)) already runs with the state folder"), "\(second.errors)")
    // The first one is untouched.
    let status = try await cluster.status(via: "alpha")
    #expect(status.resource("marker")?.state == .started)
  }

  @Test func aSecondDaemonOnTheSameControlSocketLeavesTheFirstOneItsSocket() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.start("alpha")
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.localNode == "alpha" }
    // Another member's daemon, pointed by mistake at alpha's socket.
    let second = try runDaemon([
      "--config", cluster.configPath, "--node", "beta", "--state", cluster.stateFolder("beta"), "--socket",
      cluster.socketPath("alpha"),
    ])
    #expect(second.status == 1)
    #expect(second.errors.contains("another hactld answers on \(cluster.socketPath("alpha"))"), "\(second.errors)")
    #expect(try await cluster.status(via: "alpha").localNode == "alpha")
  }

  func bindUDP(_ port: UInt16, reuse: Bool) -> (fd: Int32, errno: Int32) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    var one: Int32 = 1
    if reuse { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    let code = result == 0 ? 0 : errno
    if result != 0 { close(fd) }
    return (result == 0 ? fd : -1, code)
  }

  /// With SO_REUSEADDR on the daemon's socket, anyone could bind the same
  /// port and receive its peers' packets: the node went deaf.
  @Test func nobodyElseCanBindTheDaemonsPortAndADaemonRefusesATakenOne() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.start("alpha")
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.localNode == "alpha" }
    let port = try #require(cluster.ports["alpha"])
    let thief = bindUDP(port, reuse: true)
    if thief.fd >= 0 { close(thief.fd) }
    #expect(thief.fd < 0 && thief.errno == EADDRINUSE, "a second socket bound alpha's port")
    // The other way round: a port already taken stops the daemon at once.
    let betaPort = try #require(cluster.ports["beta"])
    let squatter = bindUDP(betaPort, reuse: true)
    try #require(squatter.fd >= 0)
    defer { close(squatter.fd) }
    let beta = try runDaemon([
      "--config", cluster.configPath, "--node", "beta", "--state", cluster.stateFolder("beta"), "--socket",
      cluster.socketPath("beta"),
    ])
    #expect(beta.status == 1)
    #expect(beta.errors.contains("cannot bind UDP 127.0.0.1:\(betaPort)"), "\(beta.errors)")
  }

  func openDescriptors(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
  }

  func connectUnix(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    if result != 0 {
      close(fd)
      return -1
    }
    return fd
  }

  /// Hundreds of idle connections once exhausted the daemon's descriptors:
  /// its agents could not spawn and it aborted with the resource running.
  @Test func idleConnectionsCannotExhaustTheDaemon() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.resource("marker")?.state == .started }
    let pid = try #require(cluster.pid("alpha"))
    let before = openDescriptors(pid)
    var held: [Int32] = []
    defer { for fd in held { close(fd) } }
    for _ in 0..<400 {
      let fd = connectUnix(cluster.socketPath("alpha"))
      if fd >= 0 { held.append(fd) }
    }
    try await Task.sleep(for: .milliseconds(500))
    let during = openDescriptors(pid)
    #expect(
      during < before + ControlServer.maximumConnections + 64,
      "the daemon holds \(during) descriptors with \(held.count) idle clients (\(before) before)")
    // Past the request deadline the idle ones are gone and status answers.
    let answered = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("marker")?.state == .started
    }
    #expect(answered.nodes.allSatisfy { $0.state == .online })
    #expect(kill(pid, 0) == 0, "the daemon died")
  }
}

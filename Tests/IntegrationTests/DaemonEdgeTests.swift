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
  static let resources = LabResources.marker

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
      let fd = UnixSocket.connect(cluster.socketPath("alpha"))
      if fd >= 0 { held.append(fd) }
    }
    // Those over the limit are answered "busy" and closed at once; the
    // admitted ones are held until their 5 s deadline. Well before it:
    let bound = before + ControlServer.maximumConnections + 64
    var during = openDescriptors(pid)
    let deadline = ContinuousClock.now + ControlServer.requestDeadline / 2
    while during >= bound && ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(20))
      during = openDescriptors(pid)
    }
    #expect(during < bound, "the daemon holds \(during) descriptors with \(held.count) idle clients (\(before) before)")
    // Past the request deadline the idle ones are gone and status answers.
    let answered = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("marker")?.state == .started
    }
    #expect(answered.nodes.allSatisfy { $0.state == .online })
    #expect(kill(pid, 0) == 0, "the daemon died")
  }
}

/// Signals and shutdown: the daemon never leaves a resource running behind
/// its back, and says so when it cannot help it.
@Suite(.serialized)
struct ShutdownEdgeTests {
  /// An agent whose start takes `delay` seconds and records its pid first.
  func installSlowAgent(in cluster: LocalCluster) throws {
    let folder = cluster.folder + "/ocf/resource.d/test"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let agent = """
      #!/bin/sh
      marker="$HA_RSCTMP/slow-$OCF_RESOURCE_INSTANCE"
      case "$1" in
        start) echo $$ > "$marker.starting"; sleep "${OCF_RESKEY_delay:-12}"; touch "$marker"; exit 0 ;;
        stop) rm -f "$marker"; exit 0 ;;
        monitor) [ -e "$marker" ] && exit 0; exit 7 ;;
        meta-data) echo '<resource-agent name="Slow"/>'; exit 0 ;;
        *) exit 3 ;;
      esac

      """
    try agent.write(toFile: folder + "/Slow", atomically: true, encoding: .utf8)
    chmod(folder + "/Slow", 0o755)
  }

  @Test func sigtermDuringASlowStartKillsTheStartAndStopsBeforeExiting() async throws {
    // The start (12 s) outlasts the stop timeout and margin (2 s + 5 s):
    // a daemon that only waited would exit, and the start would then finish
    // with nobody watching.
    let cluster = try LocalCluster(
      options: LocalCluster.Options(
        resourcesYAML: """
            - id: slow
              agent: ocf:test:Slow
              params: { delay: "12" }
              start: { timeout: 60s }
              stop: { timeout: 2s }
              prefer: { node: alpha }
          """))
    defer { cluster.shutdown() }
    try installSlowAgent(in: cluster)
    try cluster.startAll()
    let starting = cluster.runtimeFolder("alpha") + "/slow-slow.starting"
    let deadline = ContinuousClock.now + .seconds(20)
    while !FileManager.default.fileExists(atPath: starting) && ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(20))
    }
    let startPID = try #require(
      Int32(try String(contentsOfFile: starting, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(cluster.signal("alpha", SIGTERM))
    let status = await cluster.exitStatus("alpha", within: .seconds(9))
    #expect(
      status == 0,
      "hactld did not stop cleanly within 9 s: \(String(describing: status))\n\(cluster.tail(of: cluster.logPath("alpha")))"
    )
    #expect(kill(startPID, 0) != 0, "the start (pid \(startPID)) outlived the daemon")
    #expect(!FileManager.default.fileExists(atPath: cluster.runtimeFolder("alpha") + "/slow-slow"))
    #expect(cluster.tail(of: cluster.logPath("alpha")).contains("start cancelled by the shutdown"))
  }

  @Test func sighupAndOtherCommonSignalsAreLoggedNotFatal() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: DaemonEdgeTests.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.resource("marker")?.state == .started }
    for signal in [SIGHUP, SIGUSR1, SIGUSR2] { #expect(cluster.signal("alpha", signal)) }
    let deadline = ContinuousClock.now + .seconds(10)
    func logged() -> Bool {
      let log = cluster.tail(of: cluster.logPath("alpha"), lines: 100)
      return ["SIGHUP: keys reloaded", "SIGUSR1: ignored", "SIGUSR2: ignored"].allSatisfy(log.contains)
    }
    while !logged() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    #expect(logged(), "\(cluster.tail(of: cluster.logPath("alpha")))")
    let status = try await cluster.status(via: "alpha")
    #expect(status.resource("marker")?.state == .started)
    #expect(cluster.pid("alpha") != nil, "a signal killed the daemon")
  }

  static var canMount: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/mount") }

  /// A node whose state can no longer be written cannot keep its promises
  /// (one vote per term, configurations it claims to hold): it stops what
  /// it runs first, then exits non-zero saying why.
  @Test(.enabled(if: canMount))
  func aDaemonThatCannotWriteItsStateStopsItsResourcesThenExits() async throws {
    let cluster = try LocalCluster(
      options: LocalCluster.Options(resourcesYAML: LabResources.markerOnAlpha))
    defer { cluster.shutdown() }
    let state = cluster.stateFolder("alpha")
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    let mounted = try Tool.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", state])
    try #require(mounted.status == 0, "\(mounted.errors)")
    defer { _ = try? Tool.run("/usr/bin/umount", ["-l", state]) }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.state == .started && $0.resource("marker")?.node == "alpha"
    }
    // Fill it: the next state file cannot be written (ENOSPC).
    _ = try Tool.run("/usr/bin/dd", ["if=/dev/zero", "of=\(state)/filler", "bs=4096"])
    // Any durable write will do: a configuration change makes every member store it.
    var text = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    text += "# changed\n"
    let changed = cluster.folder + "/changed.yaml"
    try text.write(toFile: changed, atomically: true, encoding: .utf8)
    _ = try Tool.run(try Tool.hactl(), ["config", "apply", changed, "--socket", cluster.socketPath("beta")])
    let status = await cluster.exitStatus("alpha", within: .seconds(20))
    #expect(status == 70, "\(String(describing: status))\n\(cluster.tail(of: cluster.logPath("alpha")))")
    let log = cluster.tail(of: cluster.logPath("alpha"), lines: 80)
    #expect(log.contains("this node stops its resources and exits"))
    #expect(!FileManager.default.fileExists(atPath: cluster.runtimeFolder("alpha") + "/Marker-marker@alpha"))
  }
}

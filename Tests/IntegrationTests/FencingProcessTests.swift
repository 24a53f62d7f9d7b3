import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// Fencing with real daemons: a hook of this test stands for the power
/// switch (it kills the target's hactld, by the pid the test gave it). A
/// node that stops answering is fenced before its resource starts on the
/// survivor; while the device fails, nothing is taken over and status says
/// why. Serialized: they signal processes.
@Suite(.serialized)
struct FencingProcessTests {
  static let resources = """
      - id: marker
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
    """

  /// A cluster whose fence device is `hook`, a script in its folder that
  /// logs each call, fails while `broken` exists there, and otherwise
  /// kills the target's hactld.
  func makeCluster() throws -> (LocalCluster, hook: String) {
    let scratch = Self.makeHook()
    var options = LocalCluster.Options(resourcesYAML: Self.resources)
    options.extraYAML = Self.fencingYAML(hook: scratch + "/power")
    do {
      return (try LocalCluster(options: options), scratch)
    } catch {
      try? FileManager.default.removeItem(atPath: scratch)
      throw error
    }
  }

  /// A folder holding the hook `power` (see `makeCluster`).
  static func makeHook() -> String {
    let scratch = NSTemporaryDirectory() + "hactl-fence-hook-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let hook = scratch + "/power"
    try! """
    #!/bin/sh
    echo "$1 $2 $(date +%s%N)" >> "\(scratch)/calls"
    [ -e "\(scratch)/broken" ] && { echo "the power switch does not answer" >&2; exit 1; }
    kill -KILL "$(cat "\(scratch)/pid-$1")"
    """.write(toFile: hook, atomically: true, encoding: .utf8)
    chmod(hook, 0o755)
    return scratch
  }

  static func fencingYAML(hook: String, extra: String = "") -> String {
    """
    fencing:
    \(extra)  devices:
        - { id: power, hook: "\(hook)", hosts: [alpha, beta], retries: 0, timeout: 10s }

    """
  }

  /// Tells the hook each node's hactld.
  static func tellPids(_ cluster: LocalCluster, _ scratch: String) throws {
    for node in ["alpha", "beta"] {
      let pid = try #require(cluster.pid(node))
      try String(pid).write(toFile: scratch + "/pid-\(node)", atomically: true, encoding: .utf8)
    }
  }

  /// Started, the marker on alpha, and the hook told the pids.
  func runMarkerOnAlpha(_ cluster: LocalCluster, _ scratch: String) async throws {
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.node == "alpha" && $0.resource("marker")?.state == .started
    }
    try Self.tellPids(cluster, scratch)
  }

  func finish(_ cluster: LocalCluster, _ scratch: String) {
    cluster.shutdown()
    try? FileManager.default.removeItem(atPath: scratch)
  }

  static func calls(_ scratch: String) -> [String] {
    ((try? String(contentsOfFile: scratch + "/calls", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
  }

  func calls(_ scratch: String) -> [String] { Self.calls(scratch) }

  /// A stop that outlives its timeout leaves the resource possibly running:
  /// its node is fenced (on_fail for stop defaults to fence), and only then
  /// does the resource start elsewhere. The follower is made to hold it,
  /// since a leader cannot fence itself.
  @Test func aStopThatTimesOutFencesItsNodeBeforeTheResourceMoves() async throws {
    let scratch = Self.makeHook()
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let job = scratch + "/job"
    try """
    #!/bin/sh
    state="$HA_RSCTMP/job@$OCF_RESKEY_CRM_meta_on_node"
    case "$1" in
      start) touch "$state" ;;
      stop) [ -e "\(scratch)/hang" ] && sleep 30; rm -f "$state" ;;
      monitor) [ -e "$state" ] || exit 7 ;;
      *) exit 3 ;;
    esac
    """.write(toFile: job, atomically: true, encoding: .utf8)
    chmod(job, 0o755)
    var options = LocalCluster.Options(
      resourcesYAML: """
          - id: job
            agent: "script:\(job)"
            monitor: { interval: 1s, timeout: 10s }
            stop: { timeout: 1s }
        """)
    options.extraYAML = Self.fencingYAML(hook: scratch + "/power")
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try cluster.startAll()
    let settled = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.leader != nil && $0.resource("job")?.state == .started
    }
    let leader = try #require(settled.leader)
    let follower = leader == "alpha" ? "beta" : "alpha"
    let hactl = try Tool.hactl()
    if settled.resource("job")?.node != follower {
      let moved = try Tool.run(hactl, ["migrate", "job", follower, "--socket", cluster.socketPath(leader)])
      #expect(moved.status == 0, "\(moved.errors)")
      _ = try await cluster.waitFor(via: leader, timeout: .seconds(20)) {
        $0.resource("job")?.node == follower && $0.resource("job")?.state == .started
      }
    }
    try Self.tellPids(cluster, scratch)
    #expect(FileManager.default.createFile(atPath: scratch + "/hang", contents: nil))
    let asked = try Tool.run(hactl, ["migrate", "job", leader, "--socket", cluster.socketPath(leader)])
    #expect(asked.status == 0, "\(asked.errors)")
    _ = try await cluster.waitFor(via: leader, timeout: .seconds(30)) {
      $0.resource("job")?.node == leader && $0.resource("job")?.state == .started
    }
    let fenced = calls(scratch)
    #expect(fenced.count == 1 && fenced.first?.hasPrefix("\(follower) reboot ") == true, "\(fenced)")
    let fencedAt = try #require(fenced.first.flatMap { Int64($0.split(separator: " ")[2]) })
    let started =
      try FileManager.default.attributesOfItem(
        atPath: cluster.runtimeFolder(leader) + "/job@\(leader)")[.modificationDate] as? Date
    #expect(Int64((try #require(started)).timeIntervalSince1970 * 1e9) > fencedAt, "started before the fence")
    #expect(await cluster.exitStatus(follower, within: .seconds(5)) != nil, "the hook's kill took it down")
    let history = try Tool.run(hactl, ["history", "--socket", cluster.socketPath(leader)])
    #expect(history.output.contains("\(follower): fenced by power (level 1)"), "\(history.output)")
  }

  @Test func aNodeThatStopsAnsweringIsFencedBeforeItsResourceMoves() async throws {
    let (cluster, scratch) = try makeCluster()
    defer { finish(cluster, scratch) }
    try await runMarkerOnAlpha(cluster, scratch)
    // Frozen, not dead: without fencing it could wake and still run it.
    #expect(cluster.signal("alpha", SIGSTOP))
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.node == "beta" && $0.resource("marker")?.state == .started
    }
    let fenced = calls(scratch)
    #expect(fenced.count == 1 && fenced.first?.hasPrefix("alpha reboot ") == true, "\(fenced)")
    let fencedAt = try #require(fenced.first.flatMap { Int64($0.split(separator: " ")[2]) })
    let marker = cluster.runtimeFolder("beta") + "/Marker-marker@beta"
    let started = try FileManager.default.attributesOfItem(atPath: marker)[.modificationDate] as? Date
    let startedAt = Int64((try #require(started)).timeIntervalSince1970 * 1e9)
    #expect(startedAt > fencedAt, "the marker started on beta before alpha was fenced")
    let shown = try Tool.run(try Tool.hactl(), ["status", "--socket", cluster.socketPath("beta")])
    #expect(shown.output.contains("Fencing:\n  alpha: fenced by power (level 1) in "), "\(shown.output)")
    // The history is on beta's disk: it outlives beta's daemon.
    await cluster.stop("beta")
    try cluster.start("beta")
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) { $0.localNode == "beta" }
    let history = try Tool.run(try Tool.hactl(), ["history", "--socket", cluster.socketPath("beta")])
    #expect(history.status == 0, "\(history.errors)")
    #expect(history.output.contains("alpha: fenced by power (level 1) in "), "\(history.output)")
    #expect(history.output.contains("; asked: lost; leader beta"), "\(history.output)")
    #expect(await cluster.exitStatus("alpha", within: .seconds(5)) != nil, "the hook's kill took alpha down")
  }

  /// While the device fails, nothing moves and status says why; an
  /// operator who turned the node off by hand confirms it (`hactl fence
  /// --confirm`, asked unless --yes), and then it moves.
  @Test func whileTheDeviceFailsNothingMovesAndStatusSaysWhy() async throws {
    let (cluster, scratch) = try makeCluster()
    defer { finish(cluster, scratch) }
    try await runMarkerOnAlpha(cluster, scratch)
    FileManager.default.createFile(atPath: scratch + "/broken", contents: nil)
    #expect(cluster.signal("alpha", SIGSTOP))
    let refused = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.note?.contains("NOT TAKEN OVER, fencing failed") == true
    }
    #expect(
      refused.resource("marker")?.note
        == "may still run on alpha (lost): NOT TAKEN OVER, fencing failed: power: exit 1: the power switch does not answer"
    )
    #expect(!FileManager.default.fileExists(atPath: cluster.runtimeFolder("beta") + "/Marker-marker@beta"))
    // The operator turns alpha off by hand, and says so.
    let hactl = try Tool.hactl()
    let unasked = try Tool.run(hactl, ["fence", "alpha", "--confirm", "--socket", cluster.socketPath("beta")])
    #expect(unasked.status == 2 && unasked.errors.contains("Refusing without --yes"), "\(unasked.errors)")
    #expect(cluster.signal("alpha", SIGKILL))
    let confirmed = try Tool.run(
      hactl, ["fence", "alpha", "--confirm", "--yes", "--socket", cluster.socketPath("beta")])
    #expect(confirmed.status == 0, "\(confirmed.errors)")
    #expect(confirmed.output == "alpha confirmed off by an operator: what it ran may start elsewhere\n")
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.node == "beta" && $0.resource("marker")?.state == .started
    }
  }

  /// Debian's fence_ipmilan against OpenIPMI's simulated BMC on 127.0.0.1
  /// (real IPMI 2.0 over lanplus): alpha's "power" is its hactld, which the
  /// BMC's chassis control kills when told to power off. The password is
  /// read from a file when fencing, never replicated or shown.
  @Test(.enabled(if: SimulatedBMC.available))
  func fenceIpmilanPowersOffALostNodeThroughASimulatedBMC() async throws {
    let scratch = Self.makeHook()
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let bmc = try SimulatedBMC(folder: scratch + "/bmc")
    defer { bmc.stop() }
    var options = LocalCluster.Options(resourcesYAML: Self.resources)
    options.extraYAML =
      "fencing:\n  devices:\n" + bmc.deviceYAML(id: "bmc-alpha", node: "alpha")
      + "    - { id: power, hook: \"\(scratch)/power\", hosts: [beta], retries: 0, timeout: 10s }\n"
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try await runMarkerOnAlpha(cluster, scratch)
    try bmc.standFor(pid: try #require(cluster.pid("alpha")))
    #expect(cluster.signal("alpha", SIGSTOP))
    let moved = try await cluster.waitFor(via: "beta", timeout: .seconds(40)) {
      $0.resource("marker")?.node == "beta" && $0.resource("marker")?.state == .started
    }
    #expect(moved.fencing?.first?.device == "bmc-alpha", "\(String(describing: moved.fencing))")
    #expect(await cluster.exitStatus("alpha", within: .seconds(5)) != nil, "the BMC powered alpha off")
    #expect(calls(scratch).isEmpty, "the hook (beta's device) was not used")
    #expect(bmc.power == "1", "a reboot: off, then on again")
    let shown = try Tool.run(try Tool.hactl(), ["status", "--socket", cluster.socketPath("beta")])
    #expect(shown.output.contains("alpha: fenced by bmc-alpha (level 1) in "), "\(shown.output)")
    let password = try String(contentsOfFile: bmc.passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
    #expect(!shown.output.contains(password))
  }

  /// The watchdog shell against a stand-in file (no watchdog module loads
  /// here): every node feeds it while quorate, and a node that stops
  /// cleanly disarms it with the magic 'V'; a device that cannot be opened
  /// stops hactld at start with the reason.
  @Test func nodesFeedTheWatchdogAndDisarmItOnACleanStop() async throws {
    let scratch = NSTemporaryDirectory() + "hactl-watchdog-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let device = scratch + "/watchdog"
    FileManager.default.createFile(atPath: device, contents: nil)
    var options = LocalCluster.Options(resourcesYAML: Self.resources)
    options.extraYAML = "fencing:\n  watchdog: { device: \"\(device)\", timeout: 3s }\n"
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.state == .started && $0.quorum.quorate
    }
    func fed() -> Int { (try? FileManager.default.attributesOfItem(atPath: device)[.size] as? Int) ?? 0 }
    let before = fed()
    try await Task.sleep(for: .seconds(2))
    // Two nodes, a feed each second at most (a third of 3 s): not polled faster.
    #expect(fed() - before >= 2 && fed() - before <= 8, "\(fed() - before) feeds in 2 s")
    await cluster.stop("alpha")
    let bytes = try #require(FileManager.default.contents(atPath: device))
    #expect(bytes.contains(UInt8(ascii: "V")), "a clean stop disarms it")
    let log = (try? String(contentsOfFile: cluster.logPath("alpha"), encoding: .utf8)) ?? ""
    #expect(log.contains("watchdog \(device) armed: 3 s without a feed resets this machine"), "\(log)")
    #expect(log.contains("cannot set its timeout"), "a plain file is no watchdog: said, not fatal")

    var broken = LocalCluster.Options(resourcesYAML: Self.resources)
    broken.extraYAML = "fencing:\n  watchdog: { device: \"\(scratch)/missing/watchdog\", timeout: 3s }\n"
    let other = try LocalCluster(options: broken)
    defer { other.shutdown() }
    try other.start("alpha")
    #expect(await other.exitStatus("alpha", within: .seconds(10)) == 1)
    let said = (try? String(contentsOfFile: other.logPath("alpha"), encoding: .utf8)) ?? ""
    #expect(said.contains("cannot open the watchdog \(scratch)/missing/watchdog"), "\(said)")
  }
}

import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// Real `hactld` processes on 127.0.0.1: two nodes and a witness, each test
/// with its own ports and folders. Serialized: they signal processes.
@Suite(.serialized)
struct FailoverProcessTests {
  static let resources = """
      - id: service
        agent: ocf:hactl:Daemon
        params: { command: "exec sleep 100000" }
        monitor: { interval: 1s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
      - id: marker
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
    """

  static let names = ["service", "marker"]

  func makeCluster(extraResources: String = "") throws -> LocalCluster {
    try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources + extraResources))
  }

  func runsOnly(on node: String, _ names: [String] = names) -> @Sendable (ClusterStatus) -> Bool {
    { status in
      names.allSatisfy { name in
        guard let resource = status.resource(name) else { return false }
        return resource.state == .started && resource.node == node && resource.activeOn == [node]
      }
    }
  }

  func markerExists(_ cluster: LocalCluster, on node: String) -> Bool {
    FileManager.default.fileExists(atPath: cluster.runtimeFolder(node) + "/Marker-marker@\(node)")
  }

  @Test func crashOfTheActiveNodeMovesItsResourcesToTheSurvivor() async throws {
    let cluster = try makeCluster()
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))
    #expect(markerExists(cluster, on: "alpha"))

    cluster.crash("alpha")
    let after = try await cluster.waitFor(via: "beta", timeout: .seconds(20), runsOnly(on: "beta"))
    #expect(after.leader == "beta")
    #expect(after.node("alpha")?.state == .lost)
    #expect(after.quorum.quorate)
    #expect(markerExists(cluster, on: "beta"))
  }

  @Test func stalledNodeIsReplacedAndStopsItsCopyWhenItWakes() async throws {
    let cluster = try makeCluster()
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))

    #expect(cluster.signal("alpha", SIGSTOP))
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20), runsOnly(on: "beta"))
    // Frozen, alpha could not stop anything: its copy is still there.
    #expect(markerExists(cluster, on: "alpha"))

    #expect(cluster.signal("alpha", SIGCONT))
    let deadline = ContinuousClock.now + .seconds(10)
    while markerExists(cluster, on: "alpha") && ContinuousClock.now < deadline {
      try await Task.sleep(for: .milliseconds(10))
    }
    #expect(!markerExists(cluster, on: "alpha"), "alpha kept its copy after it woke up")
    // It stopped because it saw its own stall, not because it later lost quorum.
    #expect(cluster.tail(of: cluster.logPath("alpha"), lines: 200).contains("this node was stalled for"))

    // alpha rejoins; stickiness keeps everything on beta.
    let healed = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { status in
      status.node("alpha")?.member == true && runsOnly(on: "beta")(status)
    }
    #expect(healed.leader == "beta")
  }

  @Test func gracefulShutdownHandsResourcesOverBeforeTheNodeIsDeclaredLost() async throws {
    let cluster = try makeCluster()
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))
    await cluster.stop("alpha")  // SIGTERM, then waits for it to exit
    #expect(!markerExists(cluster, on: "alpha"), "alpha stopped its resources before it exited")
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20), runsOnly(on: "beta"))
    // beta took over while alpha was still a member handing over, not after
    // a dead time of silence: its start comes before any "alpha lost".
    let log = cluster.tail(of: cluster.logPath("beta"), lines: 500)
    let started = try #require(log.range(of: "marker: started"))
    if let lost = log.range(of: "alpha lost") {
      #expect(started.lowerBound < lost.lowerBound, "beta waited for the dead time:\n\(log)")
    }
    #expect(cluster.tail(of: cluster.logPath("alpha"), lines: 200).contains("leaving the cluster"))
  }

  @Test func migrateMovesAResourceAndItStays() async throws {
    let cluster = try makeCluster()
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))

    // Asked on beta, a follower: the request travels to the leader.
    let response = try await cluster.migrate("service", to: "beta", via: "beta")
    #expect(response.ok, "\(response.error ?? "")")
    _ = try await cluster.waitFor(via: "arbiter", timeout: .seconds(20), runsOnly(on: "beta", ["service"]))

    // No leftover constraint, and stickiness (100) beats alpha's preference (50).
    try await Task.sleep(for: .seconds(3))
    let later = try await cluster.status(via: "alpha")
    #expect(runsOnly(on: "beta", ["service"])(later))
    #expect(runsOnly(on: "alpha", ["marker"])(later))

    // Without a node: the best other node.
    let back = try await cluster.migrate("service", to: nil, via: "alpha")
    #expect(back.ok)
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha", ["service"]))

    let refused = try await cluster.migrate("service", to: "arbiter", via: "alpha")
    #expect(!refused.ok)
    #expect(refused.error?.contains("witness") == true)
    let unknown = try await cluster.migrate("nothing", to: "beta", via: "alpha")
    #expect(unknown.error?.contains("no resource 'nothing'") == true)
  }

  /// hactl ban, clear, standby and online: each is stored in the
  /// configuration's operator block (shown by config show), says what the
  /// cluster will do, and the cluster does it.
  @Test func operatorCommandsMoveResourcesAndOutliveTheLeader() async throws {
    let cluster = try makeCluster()
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))
    func hactl(_ arguments: [String]) throws -> Tool.Result {
      try Tool.run(try Tool.hactl(), arguments + ["--socket", cluster.socketPath("beta")])
    }
    let ban = try hactl(["ban", "marker", "alpha"])
    #expect(ban.status == 0, "\(ban.errors)")
    #expect(ban.output.contains("ban marker from alpha: stored as configuration"))
    #expect(ban.output.contains("* Move marker ( alpha -> beta )"), "\(ban.output)")
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "beta", ["marker"]))
    let shown = try hactl(["config", "show"])
    #expect(shown.output.contains("operator:") && shown.output.contains("cli-ban-marker-on-alpha"))

    let cleared = try hactl(["clear", "marker"])
    #expect(cleared.status == 0)
    // Stickiness keeps it where it is once the ban is gone.
    #expect(cleared.output.contains("This changes nothing that runs."), "\(cleared.output)")

    let standby = try hactl(["standby", "beta"])
    #expect(standby.status == 0)
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))
    #expect(try hactl(["online", "beta"]).status == 0)
    let cleanup = try hactl(["cleanup", "marker"])
    #expect(cleanup.status == 0 && cleanup.output.contains("marker: no failures left"), "\(cleanup.output)")
    let unknown = try hactl(["ban", "nothing", "alpha"])
    #expect(unknown.status != 0 && unknown.errors.contains("no resource, group or clone 'nothing'"))

    // With a lifetime: the constraint carries its end, in UTC.
    let brief = try hactl(["ban", "marker", "beta", "--lifetime", "PT1H"])
    #expect(brief.status == 0, "\(brief.errors)")
    #expect(brief.output.contains("ban marker from beta until 20"), "\(brief.output)")
    let withEnd = try hactl(["config", "show"])
    #expect(withEnd.output.contains("cli-ban-marker-on-beta") && withEnd.output.contains("expires: \"20"))
    let vague = try hactl(["migrate", "marker", "--lifetime", "a while"])
    #expect(vague.status != 0 && vague.errors.contains("needs the node"), "\(vague.errors)")
    let nonsense = try hactl(["migrate", "marker", "alpha", "--lifetime", "a while"])
    #expect(nonsense.status != 0 && nonsense.errors.contains("--lifetime 'a while' is not a duration"))
  }

  @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/lib/ocf/resource.d/heartbeat/Dummy")))
  func clusterLabsDummyAgentFailsOverUnmodified() async throws {
    let dummy = """

        - id: dummy
          agent: ocf:heartbeat:Dummy
          monitor: { interval: 1s, timeout: 10s }
          prefer: { node: beta, score: 50 }
      """
    let cluster = try makeCluster(extraResources: dummy)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "beta", ["dummy"]))
    // Dummy keeps its state file in HA_RSCTMP, which hactld sets per node.
    #expect(FileManager.default.fileExists(atPath: cluster.runtimeFolder("beta") + "/Dummy-dummy.state"))
    cluster.crash("beta")
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha", ["dummy"]))
    #expect(FileManager.default.fileExists(atPath: cluster.runtimeFolder("alpha") + "/Dummy-dummy.state"))
  }

  /// attrd_updater, crm_node and crm_resource --locate, as the links
  /// hactld gives agents, answer as pacemaker's do for what the mariadb,
  /// mysql and rabbitmq agents ask.
  @Test func compatibilityCommandsAnswerAsPacemakersDo() async throws {
    let cluster = try makeCluster()
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha"))
    func tool(_ name: String, _ arguments: [String]) throws -> Tool.Result {
      let path = cluster.stateFolder("beta") + "/agent-tools/" + name
      return try Tool.run(
        "/usr/bin/env",
        ["HACTL_SOCKET=" + cluster.socketPath("beta"), "OCF_RESKEY_CRM_meta_on_node=beta", path] + arguments)
    }
    #expect(try tool("crm_node", ["-n"]).output == "beta\n")
    #expect(try tool("crm_node", ["-q"]).output == "1\n")
    let list = try tool("crm_node", ["-l"])
    #expect(list.output.contains("alpha member") && list.output.contains("beta member"), "\(list.output)")
    #expect(try tool("crm_node", ["-l", "-p"]).output == "alpha beta\n")
    #expect(try tool("crm_node", ["--frob"]).status == 3)

    // A value an agent will eval comes back quoted for the shell.
    // Were it not quoted, eval would run the substitutions (harmlessly) and
    // the value read back would differ.
    let tricky = #"5-"$(echo injected)"`echo injected`\$HOME"#
    #expect(try tool("attrd_updater", ["-p", "-n", "db-gtid", "-U", tricky]).status == 0)
    let query = try tool("attrd_updater", ["-p", "-N", "beta", "-n", "db-gtid", "-Q"])
    #expect(query.status == 0, "\(query.errors)")
    let evaluated = try Tool.run("/bin/sh", ["-c", "eval \"$0\"; printf %s \"$value\"", query.output])
    #expect(evaluated.output == tricky, "\(query.output)")
    // mariadb's clear_all_gtid: another node's attribute, through the leader.
    #expect(try tool("attrd_updater", ["-p", "-n", "db-gtid", "-N", "alpha", "-U", "0-1-9"]).status == 0)
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(5)) {
      $0.node("alpha")?.attributes?["db-gtid"] == "0-1-9"
    }
    #expect(try tool("attrd_updater", ["-n", "db-gtid", "-N", "alpha", "-D"]).status == 0)
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(5)) { $0.node("alpha")?.attributes?["db-gtid"] == nil }
    #expect(try tool("attrd_updater", ["-n", "db-gtid", "-D"]).status == 0)
    #expect(try tool("attrd_updater", ["-n", "db-gtid", "-Q"]).status == 105)

    let located = try tool("crm_resource", ["--locate", "-r", "marker"])
    #expect(located.output == "resource marker is running on: alpha\n", "\(located.output)")
    #expect(try tool("crm_resource", ["-W", "-r", "marker", "-Q"]).output == "alpha\n")
    #expect(try tool("crm_resource", ["--cleanup", "-r", "marker"]).status == 3)
  }

  /// `script:PATH`: an admin's own script, called as an OCF agent from
  /// its own path, fails over like any resource.
  @Test func anAdminsOwnScriptFailsOver() async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hactl-script-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("job").path
    try """
    #!/bin/sh
    state="$HA_RSCTMP/job@$OCF_RESKEY_CRM_meta_on_node"
    case "$1" in
      start) touch "$state" ;;
      stop) rm -f "$state" ;;
      monitor)
        [ -e "$state" ] || exit 7
        if [ -e "\(folder.path)/fail" ]; then
          echo "lock holder: pid 4242"
          echo "ocf-exit-reason:the job lost its lock" >&2
          exit 1
        fi ;;
      *) exit 3 ;;
    esac
    """.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    let job = """

        - id: job
          agent: "script:\(path)"
          monitor: { interval: 1s, timeout: 10s }
          prefer: { node: beta, score: 50 }
      """
    let cluster = try makeCluster(extraResources: job)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "beta", ["job"]))
    #expect(FileManager.default.fileExists(atPath: cluster.runtimeFolder("beta") + "/job@beta"))
    cluster.crash("beta")
    let moved = try await cluster.waitFor(via: "alpha", timeout: .seconds(20), runsOnly(on: "alpha", ["job"]))
    #expect(moved.resource("job")?.agent == "script:\(path)")
    // A failure shows the agent's own reason.
    FileManager.default.createFile(atPath: folder.appendingPathComponent("fail").path, contents: nil)
    let failed = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("job")?.lastFailure?.reason.contains("the job lost its lock") == true
    }
    #expect(failed.resource("job")?.lastFailure?.reason == "generic error (exit 1): the job lost its lock")
    // The node that ran it keeps what it printed, and shows it.
    #expect(failed.resource("job")?.lastFailure?.output?.contains("lock holder: pid 4242") == true)
    let shown = try Tool.run(try Tool.hactl(), ["status", "--socket", cluster.socketPath("alpha")])
    #expect(shown.output.contains("    | lock holder: pid 4242\n"), "\(shown.output)")
  }

  @Test func statusWithoutADaemonIsAOneLineErrorAndNonZeroExit() throws {
    let result = try Tool.run(try Tool.hactl(), ["status", "--socket", "/nonexistent/hactld.sock"])
    #expect(result.status != 0)
    #expect(result.errors == "hactl: hactld is not running on this node (cannot connect to /nonexistent/hactld.sock)\n")
  }

}

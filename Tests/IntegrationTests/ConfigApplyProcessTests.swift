import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// `hactl config apply` against real daemons: the change is stored by a
/// quorum, acts live on the resources, survives a restart, and bad input or
/// a partition without quorum is refused with a clear error.
@Suite(.serialized)
struct ConfigApplyProcessTests {
  static let resources = """
      - id: marker
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
      - id: spare
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
    """

  func hactl(_ arguments: [String]) throws -> Tool.Result { try Tool.run(try Tool.hactl(), arguments) }

  /// Writes `text` as `name` in the cluster's folder and runs `hactl config apply` on it via `member`.
  func apply(_ text: String, as name: String, in cluster: LocalCluster, via member: String) throws -> (
    path: String, result: Tool.Result
  ) {
    let path = cluster.folder + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return (path, try hactl(["config", "apply", path, "--socket", cluster.socketPath(member)]))
  }

  func markerExists(_ cluster: LocalCluster, _ resource: String, on node: String) -> Bool {
    FileManager.default.fileExists(atPath: cluster.runtimeFolder(node) + "/Marker-\(resource)@\(node)")
  }

  func storedVersion(_ cluster: LocalCluster, _ member: String) -> String? {
    guard let data = FileManager.default.contents(atPath: cluster.stateFolder(member) + "/config.json"),
      let document = try? JSONDecoder().decode(ConfigDocument.self, from: data)
    else { return nil }
    return document.version.description
  }

  /// resource-agents' Dummy (OCF 1.0, legacy reload): a change of `fake`
  /// is reloaded where it runs, nothing stops; a change of `state` (unique)
  /// restarts it.
  @Test func theRealDummyAgentReloadsWhatItCanAndRestartsForTheRest() async throws {
    let dummy = """
        - id: dummy
          agent: ocf:heartbeat:Dummy
          params: { fake: "one" }
          monitor: { interval: 1s, timeout: 10s }
          prefer: { node: alpha, score: 50 }
      """
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: dummy))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("dummy")?.node == "alpha" && $0.resource("dummy")?.state == .started
    }
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    let log = cluster.logPath("alpha")
    func logged(_ text: String) -> Int {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: text).count - 1
    }
    let stopsBefore = logged("dummy: stopped")
    let reloaded = original.replacingOccurrences(of: #"fake: "one""#, with: #"fake: "two""#)
    #expect(reloaded != original)
    #expect(try apply(reloaded, as: "reload.yaml", in: cluster, via: "beta").result.status == 0)
    try await cluster.waitUntil(timeout: .seconds(20)) { logged("dummy: reloaded with its new parameters") == 1 }
    #expect(logged("parameters fake changed; its agent reloads them (reload)") == 1)
    #expect(logged("dummy: stopped") == stopsBefore, "a reload stops nothing")
    #expect(FileManager.default.fileExists(atPath: cluster.runtimeFolder("alpha") + "/Dummy-dummy.state"))

    let moved = cluster.folder + "/dummy-elsewhere.state"
    let restarted = reloaded.replacingOccurrences(of: #"fake: "two""#, with: #"fake: "two", state: "\#(moved)""#)
    #expect(try apply(restarted, as: "restart.yaml", in: cluster, via: "beta").result.status == 0)
    try await cluster.waitUntil(timeout: .seconds(20)) { FileManager.default.fileExists(atPath: moved) }
    #expect(logged("dummy: stopped") == stopsBefore + 1)
    #expect(logged("dummy: reloaded with its new parameters") == 1)
  }

  @Test func applyChangesResourcesLiveOnEveryMemberAndSurvivesARestart() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { status in
      ["marker", "spare"].allSatisfy { status.resource($0)?.node == "alpha" && status.resource($0)?.state == .started }
    }
    // The operator's new file: spare removed, a new resource that prefers beta.
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    let spare = try #require(original.range(of: "  - id: spare"))
    let next =
      String(original[..<spare.lowerBound])
      + String(repeating: "# Operators write long comments; the text travels whole (over 2 KB here).\n", count: 100)
        + """
        # added by config apply
          - id: extra
            agent: ocf:hactl:Marker
            monitor: { interval: 1s, timeout: 10s }
            prefer: { node: beta, score: 50 }

        """
    // Asked on beta, a follower; it answers once a quorum stored it.
    let applied = try apply(next, as: "next.yaml", in: cluster, via: "beta").result
    #expect(applied.status == 0, "\(applied.errors)")
    #expect(applied.output.contains("as configuration "), "\(applied.output)")
    let stored = ["alpha", "beta", "arbiter"].filter { storedVersion(cluster, $0) != nil }
    #expect(stored.count >= 2, "acknowledged with only \(stored) holding it")

    let after = try await cluster.waitFor(via: "arbiter", timeout: .seconds(20)) { status in
      status.resource("extra")?.node == "beta" && status.resource("extra")?.state == .started
        && status.resource("spare") == nil && status.configuration?.behind == []
    }
    #expect(after.resource("marker")?.node == "alpha", "an unchanged resource stays put")
    #expect(!markerExists(cluster, "spare", on: "alpha"), "the removed resource was stopped")
    #expect(markerExists(cluster, "extra", on: "beta"))
    let version = try #require(after.configuration?.version)
    #expect(version != "0.0")
    for member in ["alpha", "beta", "arbiter"] {
      #expect(storedVersion(cluster, member) == version, "\(member) did not store \(version)")
    }
    let shown = try hactl(["config", "show", "--socket", cluster.socketPath("alpha")])
    #expect(shown.output == next)
    #expect(shown.errors.contains("configuration \(version)"))

    // A restarted daemon runs what it stored, not its (older) file.
    cluster.crash("beta")
    try cluster.start("beta")
    let restarted = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) { status in
      status.configuration?.version == version && status.resource("extra")?.state == .started
    }
    #expect(restarted.resource("spare") == nil)
    #expect(cluster.tail(of: cluster.logPath("beta"), lines: 400).contains("running the stored one"))
  }

  @Test func badFilesMembershipChangesAndPartitionsWithoutQuorumAreRefused() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { $0.resource("marker")?.state == .started }
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)

    let (badPath, bad) = try apply(
      original.replacingOccurrences(of: "agent: ocf:hactl:Marker", with: "agent: Marker"), as: "bad.yaml",
      in: cluster, via: "alpha")
    #expect(bad.status == 2)
    #expect(bad.errors.contains("\(badPath):"), "\(bad.errors)")
    #expect(bad.errors.contains("nothing was sent"))

    let slower = try apply(
      original.replacingOccurrences(of: "dead_time: 1s", with: "dead_time: 2s"), as: "slower.yaml", in: cluster,
      via: "alpha"
    ).result
    #expect(slower.status == 1)
    #expect(slower.errors.contains("cluster.dead_time"), "\(slower.errors)")

    // beta alone: one vote of three.
    await cluster.stop("alpha")
    await cluster.stop("arbiter")
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) { !$0.quorum.quorate }
    let alone = try apply(
      original.replacingOccurrences(of: "score: 50", with: "score: 60"), as: "changed.yaml", in: cluster, via: "beta"
    ).result
    #expect(alone.status == 1)
    #expect(alone.errors.contains("no quorum"), "\(alone.errors)")
    let status = try await cluster.status(via: "beta")
    #expect(status.configuration?.version == "0.0", "nothing changed")
    #expect(storedVersion(cluster, "beta") == nil)
  }

  /// Children of `pid` (by /proc), for killing the agent calls a crashed
  /// daemon had in flight, as a machine crash would.
  func children(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { candidate in
      guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { return false }
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      return fields.count > 2 && Int32(fields[1]) == pid
    }
  }

  @Test func aRemovedResourceStillStoppingWhenItsDaemonDiesIsStoppedByTheNextOne() async throws {
    let resources = """
        - id: slow
          agent: ocf:hactl:Daemon
          params: { command: "trap '' TERM; exec sleep 100000", stop_grace: 2 }
          monitor: { interval: 1s, timeout: 10s }
          stop: { timeout: 20s }
          prefer: { node: alpha, score: 50 }
      """
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("slow")?.node == "alpha" && $0.resource("slow")?.state == .started
    }
    let pidfile = cluster.runtimeFolder("alpha") + "/Daemon-slow@alpha.pid"
    let servicePid = try #require(
      Int32((try String(contentsOfFile: pidfile, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    let withoutSlow =
      String(original[..<(try #require(original.range(of: "resources:"))).lowerBound]) + "resources: []\n"
    let applied = try apply(withoutSlow, as: "empty.yaml", in: cluster, via: "beta").result
    #expect(applied.status == 0, "\(applied.errors)")
    // alpha is stopping it (the service ignores TERM for 2 s): crash alpha's
    // daemon and its stop call, as a power cut would, but not the service.
    let daemon = try #require(cluster.pid("alpha"))
    var stopCalls: [Int32] = []
    let deadline = ContinuousClock.now + .seconds(10)
    while stopCalls.isEmpty && ContinuousClock.now < deadline {
      stopCalls = children(of: daemon)
      try await Task.sleep(for: .milliseconds(10))
    }
    try #require(!stopCalls.isEmpty, "alpha never started stopping the removed resource")
    let retiring = try String(contentsOfFile: cluster.stateFolder("alpha") + "/retiring.json", encoding: .utf8)
    #expect(retiring.contains("\"slow\""), "recorded before the configuration that drops it: \(retiring)")
    for call in stopCalls { kill(-call, SIGKILL) }
    cluster.crash("alpha")
    #expect(kill(servicePid, 0) == 0, "the service outlived its daemon")
    try cluster.start("alpha")
    let stopDeadline = ContinuousClock.now + .seconds(20)
    while kill(servicePid, 0) == 0 && ContinuousClock.now < stopDeadline {
      try await Task.sleep(for: .milliseconds(50))
    }
    #expect(kill(servicePid, 0) != 0, "nobody stopped the removed resource after the restart")
    if kill(servicePid, 0) == 0 { kill(servicePid, SIGKILL) }
    let forgotten = try await cluster.waitFor(via: "alpha", timeout: .seconds(10)) { _ in
      (try? String(contentsOfFile: cluster.stateFolder("alpha") + "/retiring.json", encoding: .utf8)) == "[]"
    }
    #expect(forgotten.resources.isEmpty)
  }
}

import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// An init script of a real daemon, as Debian ships it: cluster-glue's
/// `logd` (heartbeat's logging daemon, brought by resource-agents), run as
/// `lsb:logd` and as `heartbeat:logd` (found in /etc/init.d, its status
/// judged by its words). The daemon is one per machine, so the cluster has
/// one node.
@Suite(.serialized)
struct InitScriptProcessTests {
  static let script = "/etc/init.d/logd"
  static let pidFile = "/run/logd.pid"
  static let usable = getuid() == 0 && FileManager.default.isExecutableFile(atPath: script)

  /// The running ha_logd's pid, from its pid file, if that process is it.
  func logd() -> Int32? {
    guard let text = try? String(contentsOfFile: Self.pidFile, encoding: .utf8),
      let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1,
      let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)
    else { return nil }
    return name.hasPrefix("ha_logd") ? pid : nil
  }

  @Test(.enabled(if: usable), arguments: ["lsb:logd", "heartbeat:logd"])
  func aRealInitScriptStartsMonitorsRecoversAndStopsItsDaemon(agent: String) async throws {
    try #require(logd() == nil, "logd already runs on this machine: this test would take it over")
    var options = LocalCluster.Options(
      resourcesYAML: """
          - id: logd
            agent: \(agent)
            monitor: { interval: 1s, timeout: 10s }
            migration_threshold: 3
        """)
    options.nodes = ["alpha"]
    options.witness = nil
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("logd")?.state == .started && $0.resource("logd")?.node == "alpha"
    }
    let first = try #require(logd(), "started, but no ha_logd runs")

    // The daemon dies (with its writer child): its monitor sees it, and it
    // is started again.
    let firstGroup = getpgid(first)
    try #require(firstGroup > 1)
    kill(-firstGroup, SIGKILL)
    let recovered = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("logd")?.failCounts["alpha"] == 1 && $0.resource("logd")?.state == .started
    }
    #expect(recovered.resource("logd")?.lastFailure?.action == .monitor)
    let second = try #require(logd(), "recovered, but no ha_logd runs")
    #expect(second != first)

    // Removed from the configuration: its script stops it.
    let path = cluster.folder + "/without-logd.yaml"
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    let cut = try #require(original.range(of: "resources:\n  - id: logd"))
    try (String(original[..<cut.lowerBound]) + "resources: []\n").write(toFile: path, atomically: true, encoding: .utf8)
    let applied = try Tool.run(try Tool.hactl(), ["config", "apply", path, "--socket", cluster.socketPath("alpha")])
    #expect(applied.status == 0, "\(applied.errors)")
    let group = getpgid(second)
    try await cluster.waitUntil(timeout: .seconds(20)) { logd() == nil }
    // Nothing of it is left behind (its init script stops the writer too).
    try await cluster.waitUntil(timeout: .seconds(5)) { kill(-group, 0) != 0 }
  }
}

import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// resource-agents' own Stateful agent, unmodified, as a promotable clone on
/// real hactld processes: it sets its promotion score through crm_attribute
/// (answered by hactld), one instance is promoted, and after a SIGKILL of
/// that node the survivor's instance is promoted. A group ordered after the
/// promotion follows it. Serialized: it signals processes.
@Suite(.serialized)
struct PromotableProcessTests {
  static let stateful = "/usr/lib/ocf/resource.d/heartbeat/Stateful"

  static let resources = """
      - id: stateful
        agent: ocf:heartbeat:Stateful
        monitor: { interval: 1s, timeout: 10s }
        monitor_promoted: { interval: 1500ms, timeout: 10s }
      - id: first
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
      - id: second
        agent: ocf:hactl:Marker
        monitor: { interval: 1s, timeout: 10s }
    groups:
      - { id: service, members: [first, second] }
    clones:
      - { id: stateful-clone, resource: stateful, promotable: true }
    constraints:
      colocation:
        - { id: service-with-primary, resource: service, with: stateful-clone, with_role: Promoted, score: INFINITY }
      order:
        - { id: primary-then-service, first: stateful-clone, first_action: promote, then: service, then_action: start }
    """

  func promoted(on node: String) -> @Sendable (ClusterStatus) -> Bool {
    { status in
      guard let stateful = status.resource("stateful"), stateful.promotedOn == [node] else { return false }
      return ["first", "second"].allSatisfy {
        status.resource($0)?.node == node && status.resource($0)?.state == .started
      }
    }
  }

  func stateFile(_ cluster: LocalCluster, _ node: String) -> String? {
    try? String(contentsOfFile: cluster.runtimeFolder(node) + "/Stateful-stateful.state", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
  }

  @Test(.enabled(if: FileManager.default.fileExists(atPath: stateful)))
  func statefulIsPromotedOnTheSurvivorAfterACrash() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    let before = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { status in
      guard let node = status.resource("stateful")?.promotedOn?.first else { return false }
      return self.promoted(on: node)(status) && status.resource("stateful")?.activeOn.count == 2
    }
    let primary = try #require(before.resource("stateful")?.promotedOn?.first)
    let survivor = primary == "alpha" ? "beta" : "alpha"
    #expect(stateFile(cluster, primary) == "master")
    #expect(stateFile(cluster, survivor) == "slave")
    // The agent's own promotion scores, set with crm_attribute -p.
    #expect(before.node(primary)?.attributes?["master-stateful"] == "10")
    #expect(before.node(survivor)?.attributes?["master-stateful"] == "5")

    // The same commands answer an operator or a script: a query, and the
    // errors pacemaker gives for what hactl does not do.
    let tool = cluster.stateFolder(survivor) + "/agent-tools/crm_attribute"
    func crmAttribute(_ arguments: [String]) throws -> Tool.Result {
      try Tool.run("/usr/bin/env", ["HACTL_SOCKET=" + cluster.socketPath(survivor), tool] + arguments)
    }
    let query = try crmAttribute(["-N", primary, "-n", "master-stateful", "-G", "-q"])
    #expect(query.status == 0 && query.output == "10\n", "\(query.errors)")
    let missing = try crmAttribute(["-n", "nothing", "-G"])
    #expect(missing.status == 105 && missing.errors.contains("attribute 'nothing' is not set"))
    // A permanent attribute of another node, and a cluster property as
    // the mysql agent keeps its replication position: both go into the
    // configuration (its operator block), so every node answers them.
    let forever = try crmAttribute(["-N", primary, "-n", "site", "-v", "east", "-l", "forever"])
    #expect(forever.status == 0, "\(forever.errors)")
    let property = try crmAttribute([
      "--type", "crm_config", "--name", "stateful_REPL_INFO", "-s", "mysql_replication", "-v", "\(primary)|bin.3|154",
    ])
    #expect(property.status == 0, "\(property.errors)")
    let otherTool = cluster.stateFolder(primary) + "/agent-tools/crm_attribute"
    let site = try Tool.run(
      "/usr/bin/env",
      ["HACTL_SOCKET=" + cluster.socketPath(primary), otherTool, "-n", "site", "-l", "forever", "-G"])
    #expect(site.status == 0 && site.output == "scope=nodes  name=site value=east\n", "\(site.errors)")
    let position = try Tool.run(
      "/usr/bin/env",
      [
        "HACTL_SOCKET=" + cluster.socketPath(primary), otherTool, "-t", "crm_config", "-n", "stateful_REPL_INFO", "-q",
        "-G",
      ])
    #expect(position.status == 0 && position.output == "\(primary)|bin.3|154\n", "\(position.errors)")
    let shown = try Tool.run(try Tool.hactl(), ["config", "show", "--socket", cluster.socketPath(primary)])
    #expect(shown.output.contains("node_attributes:") && shown.output.contains("\"site\": \"east\""))
    let gone = try crmAttribute(["-t", "crm_config", "-n", "stateful_REPL_INFO", "-D"])
    #expect(gone.status == 0)
    let unset = try crmAttribute(["-t", "crm_config", "-n", "stateful_REPL_INFO", "-G", "-d", "none"])
    #expect(unset.status == 0 && unset.output == "scope=crm_config  name=stateful_REPL_INFO value=none\n")
    #expect(unset.errors.isEmpty, "a default answers a query quietly: \(unset.errors)")
    // Another node's transient attribute goes through the leader to it.
    let otherTransient = try crmAttribute(["-N", primary, "-n", "gtid", "-v", "0-1-42", "-l", "reboot"])
    #expect(otherTransient.status == 0, "\(otherTransient.errors)")
    let gtid = try await cluster.waitFor(via: survivor, timeout: .seconds(5)) {
      $0.node(primary)?.attributes?["gtid"] == "0-1-42"
    }
    #expect(gtid.node(primary)?.attributes?["gtid"] == "0-1-42")
    let unknown = try crmAttribute(["--frobnicate"])
    #expect(unknown.status == 64 && unknown.errors.contains("unknown option '--frobnicate'"))

    let status = try Tool.run(try Tool.hactl(), ["status", "--socket", cluster.socketPath(survivor)])
    #expect(status.output.contains("stateful [stateful-clone]") && status.output.contains("first (service)"))
    #expect(status.output.contains("Promoted on \(primary), Unpromoted on \(survivor)"), "\(status.output)")
    let why = try Tool.run(try Tool.hactl(), ["why", "stateful-clone", "--socket", cluster.socketPath(survivor)])
    #expect(why.status == 0)
    #expect(why.output.contains("should run on \(primary) (Promoted)"), "\(why.output)")
    #expect(why.output.contains("promotion score (master-stateful = 10) +10"))

    cluster.crash(primary)
    let after = try await cluster.waitFor(via: survivor, timeout: .seconds(30), promoted(on: survivor))
    #expect(after.node(primary)?.state == .lost)
    #expect(stateFile(cluster, survivor) == "master")
    // The group started in order there: its second member after its first.
    let first = try #require(markerTime(cluster, "first", survivor))
    let second = try #require(markerTime(cluster, "second", survivor))
    #expect(first <= second)
  }

  func markerTime(_ cluster: LocalCluster, _ resource: String, _ node: String) -> Date? {
    let path = cluster.runtimeFolder(node) + "/Marker-\(resource)@\(node)"
    return (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
  }

  /// A clone with notify: true on real processes. Each copy's agent
  /// (hactl's Marker, logging what it hears) learns of the other copies
  /// starting and stopping, before and after, with pacemaker's lists.
  @Test func aCloneWithNotifyHearsOfEveryCopyStartingAndStopping() async throws {
    let logFolder = FileManager.default.temporaryDirectory.appendingPathComponent("hactl-notify-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: logFolder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: logFolder) }
    let log = logFolder.appendingPathComponent("notifications").path
    let resources = """
        - id: web
          agent: ocf:hactl:Marker
          params: { notify_log: "\(log)" }
          monitor: { interval: 1s, timeout: 10s }
      clones:
        - { id: web-clone, resource: web, notify: true }
      """
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    func heard() -> [String] {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
    let bothRun: @Sendable (ClusterStatus) -> Bool = { $0.resource("web")?.activeOn.count == 2 }
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30), bothRun)
    // Both copies started together: nobody was active before, both hear after.
    try await cluster.waitUntil(timeout: .seconds(10)) { heard().filter { $0.contains("post-start") }.count == 2 }
    for line in heard() {
      #expect(line.contains("post-start start=[alpha beta] stop=[] active=[]"), "\(heard())")
    }

    func hactl(_ arguments: [String]) throws -> Tool.Result {
      try Tool.run(try Tool.hactl(), arguments + ["--socket", cluster.socketPath("alpha")])
    }
    let before = heard().count
    #expect(try hactl(["standby", "beta"]).status == 0)
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { $0.resource("web")?.activeOn == ["alpha"] }
    try await cluster.waitUntil(timeout: .seconds(10)) { heard().count >= before + 3 }
    #expect(
      Array(heard()[before...]).sorted() == [
        "alpha post-stop start=[] stop=[beta] active=[alpha beta] instance=0",
        "alpha pre-stop start=[] stop=[beta] active=[alpha beta] instance=0",
        "beta pre-stop start=[] stop=[beta] active=[alpha beta] instance=1",
      ]
        || Array(heard()[before...]).sorted() == [
          "alpha post-stop start=[] stop=[beta] active=[alpha beta] instance=1",
          "alpha pre-stop start=[] stop=[beta] active=[alpha beta] instance=1",
          "beta pre-stop start=[] stop=[beta] active=[alpha beta] instance=0",
        ], "\(heard()[before...])")

    let stopped = heard().count
    #expect(try hactl(["online", "beta"]).status == 0)
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30), bothRun)
    try await cluster.waitUntil(timeout: .seconds(10)) { heard().count >= stopped + 3 }
    let back = Array(heard()[stopped...]).map {
      $0.replacingOccurrences(of: #" instance=\d+"#, with: "", options: .regularExpression)
    }
    #expect(
      back.sorted() == [
        "alpha post-start start=[beta] stop=[] active=[alpha]",
        "alpha pre-start start=[beta] stop=[] active=[alpha]",
        "beta post-start start=[beta] stop=[] active=[alpha]",
      ], "\(back)")
    // The pre notification came before beta started; the post ones after.
    #expect(back.first == "alpha pre-start start=[beta] stop=[] active=[alpha]", "\(back)")
  }
}

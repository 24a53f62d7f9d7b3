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
    let forever = try crmAttribute(["-n", "site", "-v", "east", "-l", "forever"])
    #expect(forever.status == 3 && forever.errors.contains("lifetime 'forever' is not supported"))
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
}

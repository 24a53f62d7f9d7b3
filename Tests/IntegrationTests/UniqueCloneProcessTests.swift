import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// resource-agents' own Dummy, unmodified, as a globally-unique clone on
/// real hactld processes: two instances on one node keep apart because
/// each is told its own instance name (`ip:N`, the name of its state
/// file), and after a SIGKILL the survivor takes over instances up to
/// clone_node_max, under their own names. Serialized: it signals processes.
@Suite(.serialized)
struct UniqueCloneProcessTests {
  static let dummy = "/usr/lib/ocf/resource.d/heartbeat/Dummy"

  static let resources = """
      - id: ip
        agent: ocf:heartbeat:Dummy
        monitor: { interval: 1s, timeout: 10s }
    clones:
      - { id: ip-clone, resource: ip, clone_max: 4, clone_node_max: 3 }
    """

  static let instances = (0..<4).map { "ip:\($0)" }

  /// The instances whose Dummy state file exists on a node.
  func stateFiles(_ cluster: LocalCluster, _ node: String) -> Set<String> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: cluster.runtimeFolder(node))) ?? []
    return Set(
      names.compactMap { name in
        guard name.hasPrefix("Dummy-"), name.hasSuffix(".state") else { return nil }
        return String(name.dropFirst("Dummy-".count).dropLast(".state".count))
      })
  }

  func running(on node: String, _ status: ClusterStatus) -> Set<String> {
    Set(Self.instances.filter { status.resource($0)?.state == .started && status.resource($0)?.node == node })
  }

  @Test(.enabled(if: FileManager.default.fileExists(atPath: dummy)))
  func instancesRunSideBySideAndTheSurvivorTakesUpToCloneNodeMax() async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: Self.resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    let before = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { status in
      Self.instances.allSatisfy { status.resource($0)?.state == .started && status.resource($0)?.activeOn.count == 1 }
    }
    #expect(before.resource("ip") == nil)
    #expect(Self.instances.allSatisfy { before.resource($0)?.clone == "ip-clone" })
    let onAlpha = running(on: "alpha", before)
    let onBeta = running(on: "beta", before)
    #expect(onAlpha.count == 2 && onBeta.count == 2, "alpha \(onAlpha), beta \(onBeta)")
    #expect(stateFiles(cluster, "alpha") == onAlpha)
    #expect(stateFiles(cluster, "beta") == onBeta)
    let hactl = try Tool.hactl()
    let text = try Tool.run(hactl, ["status", "--socket", cluster.socketPath("beta")])
    #expect(text.output.contains("ip:0 [ip-clone]"), "\(text.output)")
    // The live status read back as the scheduler's state: each instance
    // under its own number, so nothing is to be done; and with alpha down,
    // one of its two would start on beta (clone_node_max 3), keeping its
    // number.
    let socket = ["--live", "--socket", cluster.socketPath("beta")]
    let steady = try Tool.run(hactl, ["simulate"] + socket)
    #expect(steady.status == 0 && steady.output.contains("(nothing to do)"), "\(steady.output)\(steady.errors)")
    let down = try Tool.run(hactl, ["simulate", "--node-down", "alpha"] + socket)
    let moved = onAlpha.filter { down.output.contains("* Start \($0) ( beta )") }
    #expect(moved.count == 1 && !down.output.contains("Stop"), "\(down.output)")

    // Beta's own instances stop while no leader's lease covers it (each is
    // a singleton), and its new term starts three: clone_node_max.
    cluster.crash("alpha")
    let after = try await cluster.waitFor(via: "beta", timeout: .seconds(30)) { status in
      self.running(on: "beta", status).count == 3
    }
    let survivors = running(on: "beta", after)
    #expect(stateFiles(cluster, "beta") == survivors)
    // The fourth has no node left: beta holds clone_node_max.
    let left = try #require(Set(Self.instances).subtracting(survivors).first)
    #expect(after.resource(left)?.state != .started || after.resource(left)?.node == nil)
  }
}

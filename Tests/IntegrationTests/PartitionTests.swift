import Foundation
import HactlControl
import HactlLab
import HactlModel
import Testing

/// Real `hactld` processes, each in its own network namespace, partitioned
/// for real: exactly one side may run the resource, at every instant.
@Suite(.serialized, .enabled(if: NamespaceLab.available))
struct PartitionTests {
  static let members = ["alpha", "beta", "arbiter"]

  /// `adjust` changes the options before the cluster is made (its
  /// members are `members`, each in its namespace).
  func start(
    links: Int = 1, members: [String] = Self.members, adjust: (inout LocalCluster.Options) -> Void = { _ in }
  ) throws -> (NamespaceLab, LocalCluster) {
    let lab = try NamespaceLab(members: members, links: links)
    var options = LocalCluster.Options(
      resourcesYAML: """
          - id: marker
            agent: ocf:hactl:Marker
            monitor: { interval: 1s, timeout: 10s }
            prefer: { node: alpha, score: 50 }
        """)
    if !members.contains("arbiter") { options.witness = nil }
    for member in members {
      options.addresses[member] = lab.members[member]!.addresses
      options.launchPrefix[member] = lab.launch(member)
    }
    adjust(&options)
    let cluster: LocalCluster
    do {
      cluster = try LocalCluster(options: options)
    } catch {
      lab.destroy()
      throw error
    }
    do {
      try cluster.startAll()
    } catch {
      // Some daemons may be running already: stop them before the namespaces go.
      cluster.shutdown()
      lab.destroy()
      throw error
    }
    return (lab, cluster)
  }

  func runsOn(_ cluster: LocalCluster) -> [String] {
    ["alpha", "beta"].filter {
      FileManager.default.fileExists(atPath: cluster.runtimeFolder($0) + "/Marker-marker@\($0)")
    }
  }

  /// Watches the marker files every 5 ms until it runs only on `node`;
  /// fails if it ever runs on both.
  func watchUntilOnlyOn(_ node: String, _ cluster: LocalCluster, within limit: Duration) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
      let now = runsOn(cluster)
      #expect(now.count <= 1, "the resource runs on \(now) at once")
      if now == [node] { return }
      try await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("never ran on \(node) alone; runs on \(runsOn(cluster))")
  }

  func settle(_ cluster: LocalCluster) async throws {
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) {
      $0.resource("marker")?.node == "alpha" && $0.nodes.allSatisfy { $0.state == .online }
    }
  }

  @Test func fullPartitionOfAPairWithAWitnessLeavesExactlyOneSideRunning() async throws {
    let (lab, cluster) = try start()
    defer {
      cluster.shutdown()
      lab.destroy()
    }
    try await settle(cluster)
    try lab.isolate("alpha")
    try await watchUntilOnlyOn("beta", cluster, within: .seconds(15))
    // Some time later it is still so: alpha, alone, has no quorum.
    try await Task.sleep(for: .seconds(2))
    #expect(runsOn(cluster) == ["beta"])
    let alpha = try await cluster.status(via: "alpha")
    #expect(!alpha.quorum.quorate)
    try lab.reconnect("alpha")
    let healed = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { status in
      status.nodes.allSatisfy { $0.state == .online && $0.member }
    }
    #expect(healed.resource("marker")?.node == "beta", "stickiness keeps it where it went")
    #expect(runsOn(cluster) == ["beta"])
  }

  @Test func aFailedLinkWithARedundantLinkUpIsReportedAndMovesNothing() async throws {
    let (lab, cluster) = try start(links: 2)
    defer {
      cluster.shutdown()
      lab.destroy()
    }
    try await settle(cluster)
    try lab.isolate("alpha", link: 1)
    let degraded = try await cluster.waitFor(via: "beta", timeout: .seconds(10)) { status in
      status.node("alpha")?.links.map(\.up) == [true, false]
    }
    #expect(degraded.node("alpha")?.state == .online)
    #expect(StatusText.render(degraded).contains("link 1 (\(lab.members["alpha"]!.addresses[1])"))
    // Well past the dead time: nothing moved.
    try await Task.sleep(for: .seconds(3))
    #expect(runsOn(cluster) == ["alpha"])
    let later = try await cluster.status(via: "arbiter")
    #expect(later.resource("marker")?.node == "alpha")
    #expect(later.node("alpha")?.state == .online)
    // The link comes back, and is seen to.
    try lab.reconnect("alpha", link: 1)
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(10)) {
      $0.node("alpha")?.links.map(\.up) == [true, true]
    }
    // Both links down: now alpha is lost and the resource moves.
    try lab.isolate("alpha")
    try await watchUntilOnlyOn("beta", cluster, within: .seconds(15))
  }

  @Test func oneWayPartitionFromTheActiveNodeMovesItWithoutOverlap() async throws {
    let (lab, cluster) = try start()
    defer {
      cluster.shutdown()
      lab.destroy()
    }
    try await settle(cluster)
    // alpha still hears the others, but nobody hears alpha.
    try lab.dropOutgoing("alpha")
    try await watchUntilOnlyOn("beta", cluster, within: .seconds(15))
    try await Task.sleep(for: .seconds(2))
    #expect(runsOn(cluster) == ["beta"])
    lab.restore("alpha")
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) { status in
      status.nodes.allSatisfy { $0.state == .online && $0.member }
    }
    #expect(runsOn(cluster) == ["beta"])
  }

  @Test func oneWayPartitionTowardsTheActiveNodeMovesItWithoutOverlap() async throws {
    let (lab, cluster) = try start()
    defer {
      cluster.shutdown()
      lab.destroy()
    }
    try await settle(cluster)
    // Everyone still hears alpha, but alpha hears nobody.
    try lab.dropIncoming("alpha")
    try await watchUntilOnlyOn("beta", cluster, within: .seconds(15))
    try await Task.sleep(for: .seconds(2))
    #expect(runsOn(cluster) == ["beta"], "a node that cannot hear the leader must not be given anything")
    lab.restore("alpha")
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) { status in
      status.nodes.allSatisfy { $0.state == .online && $0.member }
    }
    #expect(runsOn(cluster) == ["beta"])
  }

  /// A fenced pair without a witness splits: each half keeps quorum
  /// (`two_node`) and would fence the other. With a priority delay, the
  /// half running the resource shoots first: one fencing, of the idle
  /// node, and the resource never leaves its node. The hook kills the
  /// target's hactld by pid, across the namespaces.
  @Test func aSplitPairFencesOnceAndTheNodeRunningTheResourceWins() async throws {
    let scratch = FencingProcessTests.makeHook()
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let (lab, cluster) = try start(members: ["alpha", "beta"]) { options in
      options.extraClusterYAML = "  quorum: { two_node: true }"
      options.extraYAML = FencingProcessTests.fencingYAML(hook: scratch + "/power", extra: "  priority_delay: 3s\n")
    }
    defer {
      cluster.shutdown()
      lab.destroy()
    }
    try await settle(cluster)
    try FencingProcessTests.tellPids(cluster, scratch)
    try lab.isolate("alpha")
    // beta is fenced (its hactld killed) while alpha keeps the marker.
    let deadline = ContinuousClock.now + .seconds(15)
    while ContinuousClock.now < deadline && FencingProcessTests.calls(scratch).isEmpty {
      #expect(runsOn(cluster) == ["alpha"])
      try await Task.sleep(for: .milliseconds(5))
    }
    #expect(await cluster.exitStatus("beta", within: .seconds(5)) != nil, "beta was fenced")
    // Past beta's priority delay: still one fencing, and alpha runs on.
    try await Task.sleep(for: .seconds(4))
    let fenced = FencingProcessTests.calls(scratch)
    #expect(fenced.count == 1 && fenced.first?.hasPrefix("beta reboot ") == true, "\(fenced)")
    #expect(runsOn(cluster) == ["alpha"])
    let status = try await cluster.status(via: "alpha")
    #expect(status.resource("marker")?.node == "alpha" && status.resource("marker")?.state == .started)
  }
}

import Foundation
import HactlControl
import HactlLab
import HactlModel
import HactlTransport
import Testing

/// The documented rotation (docs/wire-format.md, "Keys") on a running
/// cluster: a next key loaded everywhere with SIGHUP, then made the key.
@Suite(.serialized)
struct KeyRotationTests {
  @Test func aKeyRotatesOnARunningClusterWithNoNodeLost() async throws {
    let cluster = try LocalCluster(
      options: LocalCluster.Options(resourcesYAML: LabResources.marker))
    defer { cluster.shutdown() }
    try cluster.startAll()
    let before = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) {
      $0.resource("marker")?.state == .started
    }
    let holder = try #require(before.resource("marker")?.node)
    let oldKey = cluster.folder + "/authkey"
    let nextKey = oldKey + ".next"
    let oldID = try ClusterKey.load(path: oldKey, clusterName: "demo").id
    let made = try Tool.run(try Tool.hactl(), ["keygen", nextKey])
    try #require(made.status == 0, "\(made.errors)")
    let newID = try ClusterKey.load(path: nextKey, clusterName: "demo").id

    // Step 1: every member loads the next key; they switch to it pairwise.
    for member in cluster.members { #expect(cluster.signal(member, SIGHUP)) }
    for member in cluster.members {
      _ = try await cluster.waitFor(via: member, timeout: .seconds(10)) {
        $0.traffic?.nextKey == ClusterKey.hex(newID)
      }
    }
    // Step 2: the next key becomes the key, and the old one is gone.
    try #require(rename(nextKey, oldKey) == 0)
    for member in cluster.members { #expect(cluster.signal(member, SIGHUP)) }
    for member in cluster.members {
      _ = try await cluster.waitFor(via: member, timeout: .seconds(10)) {
        $0.traffic?.key == ClusterKey.hex(newID) && $0.traffic?.nextKey == nil
      }
    }
    try await Task.sleep(for: .seconds(2))  // a window in which nothing may move
    for member in cluster.members {
      let status = try await cluster.status(via: member)
      #expect(status.nodes.allSatisfy { $0.state == .online }, "\(member): \(StatusText.render(status))")
      #expect(status.traffic?.failedAuthentication == 0, "\(member) refused packets during the rotation")
      #expect(status.resource("marker")?.node == holder)
      #expect(!cluster.tail(of: cluster.logPath(member), lines: 200).contains(" lost"))
    }
    #expect(oldID != newID)
  }
}

/// `encryption: false` is a working mode, not a flag nobody tried: a pair
/// forms, runs a resource and fails over with packets in clear.
@Suite(.serialized)
struct AuthenticatedOnlyTests {
  @Test func aClusterWithEncryptionOffRunsAndFailsOver() async throws {
    var options = LocalCluster.Options(resourcesYAML: LabResources.markerOnAlpha)
    options.extraClusterYAML = "  encryption: false"
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.node == "alpha" && $0.resource("marker")?.state == .started
    }
    cluster.crash("alpha")
    let after = try await cluster.waitFor(via: "beta", timeout: .seconds(20)) {
      $0.resource("marker")?.node == "beta" && $0.resource("marker")?.state == .started
    }
    #expect(after.traffic?.failedAuthentication == 0)
    #expect(after.traffic?.malformed == 0)
  }
}

import HactlController
import HactlModel
import HactlSimulation
import Testing

/// Groups, clones, promotable clones, failure_timeout and on_fail, on whole
/// simulated clusters of real controllers.
struct ResourceModelTests {
  func config(_ resources: [ResourceSpec], groups: [GroupSpec] = [], clones: [CloneSpec] = []) -> ClusterConfig {
    var config = SimCluster.config(resources: resources)
    config.groups = groups
    config.clones = clones
    return config
  }

  func starts(_ sim: SimCluster, _ resource: ResourceID, on node: String) -> [Instant] {
    sim.started.filter { $0.1 == sim.id(node) && $0.2 == resource }.map(\.0)
  }

  @Test func aGroupStartsInOrderAndFailsOverInOrder() throws {
    let members = ["fs", "db", "vip"].map { SimCluster.marker(ResourceID($0), prefer: nil) }
    var sim = SimCluster(
      config: config(
        members + [SimCluster.marker("other", prefer: "beta")],
        groups: [GroupSpec(id: "stack", members: ["fs", "db", "vip"])]))
    let started = sim.run(
      until: { sim in ["fs", "db", "vip"].allSatisfy { sim.runs(ResourceID($0)).count == 1 } }, within: .seconds(10))
    #expect(started != nil)
    let node = try #require(sim.runs("fs").first)
    #expect(sim.runs("db") == [node] && sim.runs("vip") == [node])
    let first = starts(sim, "fs", on: node)[0]
    let second = starts(sim, "db", on: node)[0]
    let third = starts(sim, "vip", on: node)[0]
    #expect(first < second && second < third, "started out of order: \(first) \(second) \(third)")

    // hactl why, from any node: where each member goes, why, and the scores.
    let why = try sim.controllers[sim.id("beta")]!.explain("stack", now: sim.now).get()
    #expect(why.contains("fs should run on \(node) (Started): highest score"), "\(why)")
    #expect(why.contains("Nothing is left to do for it."))
    #expect(why.contains("Scores of stack:"))
    #expect(throws: NodeController.RequestError.unknownResource("nothing")) {
      try sim.controllers[sim.id("beta")]!.explain("nothing", now: sim.now).get()
    }

    sim.crash(node)
    let survivor = node == "alpha" ? "beta" : "alpha"
    let moved = sim.run(until: { $0.runs("vip") == [survivor] }, within: .seconds(10))
    #expect(moved != nil)
    #expect(sim.runs("fs") == [survivor] && sim.runs("db") == [survivor])
    let order = ["fs", "db", "vip"].map { starts(sim, ResourceID($0), on: survivor).last! }
    #expect(order == order.sorted(), "failed over out of order: \(order)")
    #expect(sim.violations.isEmpty)
  }

  @Test func aPromotableCloneIsPromotedWhereItsScoreIsHighestThenOnTheSurvivor() throws {
    let clone = CloneSpec(id: "db-clone", child: "db", promotable: true)
    var sim = SimCluster(config: config([SimCluster.marker("db", prefer: nil)], clones: [clone]))
    let running = sim.run(until: { $0.runs("db").count == 2 }, within: .seconds(10))
    #expect(running != nil)
    // No promotion score yet: nothing is promoted.
    sim.run(for: .seconds(2))
    #expect(sim.promoted("db").isEmpty)
    sim.setAttribute("alpha", "master-db", "5")
    sim.setAttribute("beta", "master-db", "10")
    let promoted = sim.run(until: { $0.promoted("db") == ["beta"] }, within: .seconds(5))
    #expect(promoted != nil, "\(sim.trace.suffix(20).joined(separator: "\n"))")
    let shown = sim.run(until: { $0.status(via: "alpha").resource("db")?.promotedOn == ["beta"] }, within: .seconds(1))
    #expect(shown != nil)

    // The score moves: beta is demoted before alpha is promoted.
    sim.setAttribute("alpha", "master-db", "100")
    let switched = sim.run(until: { $0.promoted("db") == ["alpha"] }, within: .seconds(5))
    #expect(switched != nil)
    #expect(sim.violations.isEmpty, "\(sim.trace.suffix(60).joined(separator: "\n"))")

    sim.crash("alpha")
    let failedOver = sim.run(until: { $0.promoted("db") == ["beta"] }, within: .seconds(5))
    #expect(failedOver != nil, "\(sim.trace.suffix(40).joined(separator: "\n"))")
    // Its copy kept running through the election: it was promoted, not restarted.
    #expect(starts(sim, "db", on: "beta").count == 1)
    #expect(sim.violations.isEmpty)
  }

  @Test func failuresExpireAfterFailureTimeoutOnTheNodeThatFailed() throws {
    var vip = SimCluster.marker("vip")
    vip.preferenceScore = 500
    vip.failureTimeout = .seconds(4)
    var sim = SimCluster(config: config([vip]))
    _ = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10))
    sim.agentFaults[SimCluster.AgentKey(node: sim.id("alpha"), resource: "vip", action: .monitor)] = .fail(times: 1)
    let moved = sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(5))
    #expect(moved != nil)
    #expect(sim.status(via: "beta").resource("vip")?.failCounts == ["alpha": 1])
    // Forgotten after 4 s on alpha's clock: the preference brings it back.
    let back = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(8))
    let elapsed = try #require(back)
    #expect(elapsed >= .seconds(2))
    #expect(sim.status(via: "beta").resource("vip")?.failCounts == [:])
    #expect(sim.violations.isEmpty)
  }

  @Test func onFailIgnoreKeepsItRunningAndStopKeepsItStoppedEverywhere() throws {
    var ignored = SimCluster.marker("ignored")
    ignored.monitor.onFail = .ignore
    var halted = SimCluster.marker("halted")
    halted.monitor.onFail = .stop
    var sim = SimCluster(config: config([ignored, halted]))
    _ = sim.run(until: { $0.runs("ignored") == ["alpha"] && $0.runs("halted") == ["alpha"] }, within: .seconds(10))
    sim.fail("alpha", "ignored", .monitor)
    sim.agentFaults[SimCluster.AgentKey(node: sim.id("alpha"), resource: "halted", action: .monitor)] = .fail(times: 1)
    sim.run(for: .seconds(5))
    #expect(sim.runs("ignored") == ["alpha"])
    #expect(sim.runs("halted").isEmpty)
    let status = sim.status(via: "beta")
    #expect(status.resource("ignored")?.failCounts == [:])
    #expect(status.resource("ignored")?.lastFailure?.action == .monitor)
    #expect(status.resource("halted")?.state == .stopped)
    #expect(sim.violations.isEmpty)
  }

  @Test func cleanupForgetsFailuresAndProbesABlockedResourceAgain() throws {
    var sim = SimCluster(config: config([SimCluster.marker("vip")]))
    _ = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10))
    let alpha = sim.id("alpha")
    sim.agentFaults[SimCluster.AgentKey(node: alpha, resource: "vip", action: .monitor)] = .fail(times: 1)
    sim.agentFaults[SimCluster.AgentKey(node: alpha, resource: "vip", action: .stop)] = .fail(times: 1)
    sim.run(for: .seconds(3))
    #expect(sim.status(via: "beta").resource("vip")?.state == .blocked)
    // The operator stops it by hand, then cleans it up from another node.
    sim.world[alpha]!.remove("vip")
    #expect(sim.cleanup("vip", on: "alpha", via: "beta") != nil)
    let running = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(5))
    #expect(running != nil, "\(sim.trace.suffix(20).joined(separator: "\n"))")
    let vip = sim.status(via: "beta").resource("vip")
    #expect(vip?.failCounts == [:] && vip?.lastFailure == nil)
    #expect(sim.violations.isEmpty)
  }
}

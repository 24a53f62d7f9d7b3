import HactlConfig
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

  /// A globally-unique clone: each instance is a resource of its own on
  /// the nodes (`ip:N`: its own agent instance name, probe, fail count),
  /// several run on one node up to clone_node_max, and a lost node's
  /// instances start elsewhere under their own numbers.
  @Test func aGloballyUniqueCloneRunsSeveralInstancesPerNodeEachItsOwn() throws {
    let clone = CloneSpec(id: "ip-clone", child: "ip", cloneMax: 4, cloneNodeMax: 3, globallyUnique: true)
    var sim = SimCluster(config: config([SimCluster.marker("ip", prefer: nil, threshold: 2)], clones: [clone]))
    let instances = (0..<4).map { ResourceID("ip:\($0)") }
    let started = sim.run(until: { sim in instances.allSatisfy { sim.runs($0).count == 1 } }, within: .seconds(10))
    #expect(started != nil)
    #expect(sim.runs("ip").isEmpty)
    let perNode = Dictionary(grouping: instances) { sim.runs($0)[0] }.mapValues(\.count)
    #expect(perNode == ["alpha": 2, "beta": 2], "\(perNode)")
    // Each agent call names its instance and says the clone is unique.
    let startCalls = sim.actions.filter { $0.call.action == .start }
    #expect(Set(startCalls.map(\.call.definition.id)) == Set(instances))
    for entry in startCalls {
      #expect(entry.call.meta["globally_unique"] == "true")
      #expect("ip:" + (entry.call.meta["clone"] ?? "?") == entry.call.definition.id.rawValue)
    }
    let status = sim.controllers[sim.id("alpha")]!.status(now: sim.now)
    #expect(status.resources.filter { $0.clone == "ip-clone" }.map(\.id) == instances.map(\.rawValue))

    // One instance's failures are its own: at the threshold it leaves its
    // node, and the others stay where they are.
    let failing = try #require(instances.first { sim.runs($0) == ["alpha"] })
    let staying = try #require(instances.first { sim.runs($0) == ["alpha"] && $0 != failing })
    sim.fail("alpha", failing, .monitor, times: 2)
    let moved = sim.run(until: { $0.runs(failing) == ["beta"] }, within: .seconds(20))
    #expect(moved != nil, "\(failing) runs on \(sim.runs(failing))")
    #expect(sim.runs(staying) == ["alpha"])
    #expect(sim.status(via: "beta").resource(failing.rawValue)?.failCounts["alpha"] == 2)
    // Cleaned up by its own name, that instance forgets its failures.
    #expect(sim.cleanup(failing.rawValue, on: nil, via: "beta") != nil)
    let cleaned = sim.run(
      until: { $0.status(via: "beta").resource(failing.rawValue)?.failCounts.isEmpty == true }, within: .seconds(5))
    #expect(cleaned != nil)

    // With alpha lost, beta runs three of the four (clone_node_max). Its
    // instances are singletons: they stop while no leader's lease covers
    // beta, as a primitive's do, and its new term starts three of them.
    sim.crash("alpha")
    let settled = sim.run(
      until: { sim in instances.filter { sim.runs($0) == ["beta"] }.count == 3 }, within: .seconds(10))
    #expect(settled != nil)
    sim.run(for: .seconds(5))
    #expect(instances.filter { sim.runs($0).contains("beta") }.count == 3)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// Made globally unique on a live cluster, a clone's copies stop under
  /// the old name and start under the new ones; a lower clone_max stops
  /// the copies numbered above it.
  @Test func aCloneMadeGloballyUniqueOnALiveClusterRunsUnderItsNewNames() throws {
    let anonymous = CloneSpec(id: "ip-clone", child: "ip", cloneMax: 2)
    var sim = SimCluster(config: config([SimCluster.marker("ip", prefer: nil)], clones: [anonymous]))
    #expect(sim.run(until: { $0.runs("ip").count == 2 }, within: .seconds(10)) != nil)
    var changed = sim.config
    changed.clones[0].globallyUnique = true
    changed.clones[0].cloneMax = 3
    changed.clones[0].cloneNodeMax = 2
    _ = try sim.applyConfig(ConfigWriter.yaml(changed), via: "beta").get()
    let instances = (0..<3).map { ResourceID("ip:\($0)") }
    let renamed = sim.run(
      until: { sim in sim.runs("ip").isEmpty && instances.allSatisfy { sim.runs($0).count == 1 } },
      within: .seconds(20))
    #expect(renamed != nil, "\(instances.map { sim.runs($0) }), ip on \(sim.runs("ip"))")
    changed.clones[0].cloneMax = 2
    _ = try sim.applyConfig(ConfigWriter.yaml(changed), via: "alpha").get()
    let lowered = sim.run(
      until: { sim in sim.runs("ip:2").isEmpty && instances.prefix(2).allSatisfy { sim.runs($0).count == 1 } },
      within: .seconds(20))
    #expect(lowered != nil)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
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

  /// `crm_attribute -l forever`: a permanent promotion score lives in the
  /// configuration, so every node knows it and it outlives the daemon that
  /// set it (a transient one goes with its daemon). Cluster properties too.
  @Test func permanentAttributesAndPropertiesLiveInTheConfiguration() throws {
    let clone = CloneSpec(id: "db-clone", child: "db", promotable: true)
    var sim = SimCluster(config: config([SimCluster.marker("db", prefer: nil)], clones: [clone]))
    #expect(sim.run(until: { $0.runs("db").count == 2 }, within: .seconds(10)) != nil)
    let set = sim.edit(.nodeAttribute(node: "alpha", name: "master-db", value: "10"), via: "beta")
    #expect((try? set.get()) != nil)
    _ = sim.edit(.property(name: "db_REPL_INFO", value: "alpha|bin.1|4"), via: "alpha")
    #expect(sim.run(until: { $0.promoted("db") == ["alpha"] }, within: .seconds(5)) != nil)
    for node in ["alpha", "beta"] {
      let controller = sim.controllers[sim.id(node)]!
      #expect(try controller.attribute("master-db", node: "alpha").get() == "10")
      #expect(try controller.property("db_REPL_INFO").get() == "alpha|bin.1|4")
    }
    // A restart of alpha's daemon keeps the score: it is promoted again.
    sim.crashDaemon(sim.id("alpha"))
    sim.restartDaemon("alpha")
    sim.run(for: .seconds(3))
    #expect(sim.run(until: { $0.promoted("db") == ["alpha"] }, within: .seconds(10)) != nil)

    // What the file cannot hold, or does not name, is refused at once.
    #expect(throws: NodeController.RequestError.self) {
      try sim.edit(.nodeAttribute(node: "nowhere", name: "a", value: "1"), via: "beta").get()
    }
    #expect(throws: NodeController.RequestError.self) {
      try sim.edit(.property(name: "bad name", value: "1"), via: "beta").get()
    }
    #expect(throws: NodeController.RequestError.self) {
      try sim.edit(.property(name: "x", value: "two\nlines"), via: "beta").get()
    }
    _ = sim.edit(.property(name: "db_REPL_INFO", value: nil), via: "beta")
    let removed = sim.run(
      until: { $0.controllers[$0.id("alpha")].map { (try? $0.property("db_REPL_INFO").get()) == nil } == true },
      within: .seconds(3))
    #expect(removed != nil)
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// `attrd_updater -N NODE`: another node's transient attribute, asked on
  /// one node, is set (and deleted) by that node when it hears the asker,
  /// and is seen everywhere in its report; a node that is not a member
  /// now is refused by the leader.
  @Test func anotherNodesTransientAttributeIsSetByThatNode() throws {
    var sim = SimCluster(config: config([SimCluster.marker("vip")]))
    #expect(sim.run(until: { $0.runs("vip").count == 1 }, within: .seconds(10)) != nil)
    let asked = sim.setAttribute(of: "beta", "db-gtid", "0-1-42", via: "alpha")
    #expect(asked != nil)
    func seen(_ value: String?) -> (SimCluster) -> Bool {
      { sim in
        ["alpha", "beta"].allSatisfy {
          (try? sim.controllers[sim.id($0)]!.attribute("db-gtid", node: "beta").get()) == value
        }
      }
    }
    #expect(sim.run(until: seen("0-1-42"), within: .seconds(3)) != nil)
    let answered = sim.run(
      until: { $0.answers[$0.id("alpha")]?.contains { $0.id == asked } == true }, within: .seconds(3))
    #expect(answered != nil)
    _ = sim.setAttribute(of: "beta", "db-gtid", nil, via: "alpha")
    #expect(sim.run(until: seen(nil), within: .seconds(3)) != nil)

    sim.crash("beta")
    sim.run(for: .seconds(3))
    let refused = sim.setAttribute(of: "beta", "db-gtid", "1", via: "alpha")
    let answer = sim.run(
      until: { $0.answers[$0.id("alpha")]?.contains { $0.id == refused && !$0.accepted } == true },
      within: .seconds(3))
    #expect(answer != nil, "a lost node's attribute was not refused")
    #expect(sim.violations.isEmpty, "\(sim.violations)")
  }

  /// The notifications a clone's agents ran, as "node type-operation", in order.
  func notifications(_ sim: SimCluster, _ resource: ResourceID, since: Instant = .zero) -> [String] {
    sim.actions.filter { $0.at >= since && $0.call.resource == resource }.compactMap { entry in
      let meta = entry.call.meta
      switch entry.call.action {
      case .notify:
        return "\(sim.name(entry.node)) \(meta["notify_type"]!)-\(meta["notify_operation"]!)"
      case .promote, .demote, .start, .stop:
        return "\(sim.name(entry.node)) \(entry.call.action.rawValue)"
      default:
        return nil
      }
    }
  }

  @Test func aCloneWithNotifyHearsOfEveryChangeBeforeAndAfterIt() throws {
    let clone = CloneSpec(id: "db-clone", child: "db", notify: true, promotable: true)
    var sim = SimCluster(config: config([SimCluster.marker("db", prefer: nil)], clones: [clone]))
    let running = sim.run(until: { $0.runs("db").count == 2 }, within: .seconds(10))
    #expect(running != nil)
    sim.run(for: .seconds(1))
    sim.setAttribute("alpha", "master-db", "5")
    sim.setAttribute("beta", "master-db", "10")
    let before = sim.now
    let promoted = sim.run(until: { $0.promoted("db") == ["beta"] }, within: .seconds(5))
    #expect(promoted != nil)
    sim.run(for: .seconds(1))
    // Both active instances hear of the promote before it and after it.
    var seen = notifications(sim, "db", since: before)
    #expect(seen.count == 5, "\(seen)")
    #expect(Set(seen.prefix(2)) == ["alpha pre-promote", "beta pre-promote"], "\(seen)")
    #expect(seen[2] == "beta promote", "\(seen)")
    #expect(Set(seen.suffix(2)) == ["alpha post-promote", "beta post-promote"], "\(seen)")
    let post = try #require(sim.actions.last { $0.call.action == .notify })
    #expect(post.call.meta["notify_promote_uname"] == "beta")
    #expect(post.call.meta["notify_active_uname"]?.split(separator: " ").sorted() == ["alpha", "beta"])
    #expect(post.call.meta["notify_master_uname"] == "" && post.call.meta["notify_promoted_uname"] == "")
    #expect(post.call.meta["notify_promote_resource"]?.hasPrefix("db:") == true)

    // The score moves: demote with its notifications, then promote with its own.
    let switchAt = sim.now
    sim.setAttribute("alpha", "master-db", "100")
    let switched = sim.run(until: { $0.promoted("db") == ["alpha"] }, within: .seconds(5))
    #expect(switched != nil)
    sim.run(for: .seconds(1))
    seen = notifications(sim, "db", since: switchAt)
    let phases = seen.map { $0.split(separator: " ")[1] }.reduce(into: [Substring]()) {
      if $0.last != $1 { $0.append($1) }
    }
    #expect(
      phases == ["pre-demote", "demote", "post-demote", "pre-promote", "promote", "post-promote"], "\(seen)")
    let demoteNote = try #require(sim.actions.first { $0.at >= switchAt && $0.call.action == .notify })
    #expect(demoteNote.call.meta["notify_master_uname"] == "beta")
    #expect(demoteNote.call.meta["notify_demote_uname"] == "beta")
    #expect(demoteNote.call.meta["notify_promote_uname"] == "alpha")

    // A lost node holds nothing back: the survivor hears of its own promote.
    let crashAt = sim.now
    sim.crash("alpha")
    let failedOver = sim.run(until: { $0.promoted("db") == ["beta"] }, within: .seconds(5))
    #expect(failedOver != nil, "\(sim.trace.suffix(40).joined(separator: "\n"))")
    sim.run(for: .seconds(1))
    seen = notifications(sim, "db", since: crashAt)
    #expect(seen == ["beta pre-promote", "beta promote", "beta post-promote"], "\(seen)")
    #expect(sim.violations.isEmpty)
  }

  @Test func nothingIsMonitoredInMaintenanceAndFailuresShowOnceItEnds() throws {
    var sim = SimCluster(config: config([SimCluster.marker("vip")]))
    let running = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10))
    #expect(running != nil)
    var maintenance = sim.config
    maintenance.cluster.maintenance = true
    _ = try sim.applyConfig(ConfigWriter.yaml(maintenance), via: "beta").get()
    sim.run(for: .seconds(2))
    // The resource dies meanwhile: nobody looks, nothing is restarted.
    sim.fail("alpha", "vip", .monitor)
    let before = sim.now
    sim.run(for: .seconds(10))
    #expect(sim.status(via: "beta").resource("vip")?.failCounts.isEmpty != false)
    #expect(!sim.actions.contains { $0.at >= before && $0.call.resource == "vip" })
    var back = maintenance
    back.cluster.maintenance = false
    _ = try sim.applyConfig(ConfigWriter.yaml(back), via: "beta").get()
    let noticed = sim.run(
      until: { $0.status(via: "beta").resource("vip")?.failCounts["alpha"] != nil }, within: .seconds(5))
    #expect(noticed != nil)
    #expect(sim.violations.isEmpty)
  }

  @Test func aBanWithALifetimeEndsWhenItsTimeComes() throws {
    var vip = SimCluster.marker("vip")
    vip.stickiness = .zero
    var sim = SimCluster(config: config([vip]))
    #expect(sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10)) != nil)
    let until = SimCluster.wallTime(at: sim.now) + 8
    _ = try sim.edit(.ban("vip", node: "alpha", until: until), via: "beta").get()
    #expect(sim.run(until: { $0.runs("vip") == ["beta"] }, within: .seconds(5)) != nil)
    let movedAt = sim.now
    // Back where it prefers once the ban ends: the leader woke for it.
    let back = sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(20))
    #expect(back != nil)
    #expect(SimCluster.wallTime(at: sim.now) >= until && sim.now - movedAt < .seconds(10))
    // The ban is still in the configuration, shown with its end.
    let text = try #require(sim.controllers[sim.id("alpha")]?.document.text)
    #expect(text.contains("expires: \"\(WallClockText.format(until))\""), "\(text)")
    #expect(sim.violations.isEmpty)
  }

  @Test func onFailDemoteDemotesInPlaceAndPromotesElsewhere() throws {
    var db = SimCluster.marker("db", prefer: nil)
    db.monitorPromoted = OperationSpec(interval: .milliseconds(700), timeout: .seconds(5), onFail: .demote)
    let clone = CloneSpec(id: "db-clone", child: "db", promotable: true)
    var sim = SimCluster(config: config([db], clones: [clone]))
    #expect(sim.run(until: { $0.runs("db").count == 2 }, within: .seconds(10)) != nil)
    sim.setAttribute("alpha", "master-db", "5")
    sim.setAttribute("beta", "master-db", "10")
    #expect(sim.run(until: { $0.promoted("db") == ["beta"] }, within: .seconds(5)) != nil)
    sim.fail("beta", "db", .monitor, times: 1)
    let moved = sim.run(until: { $0.promoted("db") == ["alpha"] }, within: .seconds(5))
    #expect(moved != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    sim.run(for: .seconds(3))
    // Demoted, not restarted: beta's copy runs on, unpromoted, and stays so.
    #expect(sim.runs("db") == ["alpha", "beta"] && sim.promoted("db") == ["alpha"])
    #expect(starts(sim, "db", on: "beta").count == 1)
    let why = try sim.controllers[sim.id("alpha")]!.explain("db-clone", now: sim.now).get()
    #expect(why.contains("its Promoted role failed on beta (on_fail: demote)"), "\(why)")
    // Cleaned up, beta may be promoted again.
    _ = sim.cleanup("db", on: "beta", via: "alpha")
    sim.run(for: .seconds(2))
    let after = try sim.controllers[sim.id("alpha")]!.explain("db-clone", now: sim.now).get()
    #expect(!after.contains("on_fail: demote"), "\(after)\n\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.violations.isEmpty)
  }

  @Test func onFailStandbyEmptiesTheNodeUntilCleanedUp() throws {
    var db = SimCluster.marker("db", prefer: "alpha")
    db.monitor = OperationSpec(interval: .seconds(1), timeout: .seconds(5), onFail: .standby)
    var sim = SimCluster(config: config([db, SimCluster.marker("vip", prefer: "alpha")]))
    #expect(sim.run(until: { $0.runs("db") == ["alpha"] && $0.runs("vip") == ["alpha"] }, within: .seconds(10)) != nil)
    sim.fail("alpha", "db", .monitor, times: 1)
    let emptied = sim.run(until: { $0.runs("db") == ["beta"] && $0.runs("vip") == ["beta"] }, within: .seconds(10))
    #expect(emptied != nil, "\(sim.trace.suffix(30).joined(separator: "\n"))")
    #expect(sim.status(via: "beta").node("alpha")?.state == .standby)
    _ = sim.cleanup("db", on: "alpha", via: "beta")
    let back = sim.run(until: { $0.status(via: "beta").node("alpha")?.state == .online }, within: .seconds(5))
    #expect(back != nil)
    #expect(sim.violations.isEmpty)
  }

  @Test func validateAllRunsBeforeTheFirstStartAndNotConfiguredStopsItEverywhere() throws {
    var sim = SimCluster(config: config([SimCluster.marker("vip"), SimCluster.marker("web")]))
    sim.fail("alpha", "web", .validateAll, times: 1, code: 6)
    #expect(sim.run(until: { $0.runs("vip") == ["alpha"] }, within: .seconds(10)) != nil)
    sim.run(for: .seconds(5))
    // Checked once, just before the first start on that node.
    let vip = sim.actions.filter { $0.call.resource == "vip" && $0.node == sim.id("alpha") }.map(\.call.action)
    #expect(Array(vip.prefix(2)) == [.validateAll, .start], "\(vip)")
    // OCF_ERR_CONFIGURED is fatal: the definition is wrong, it runs nowhere.
    #expect(sim.runs("web").isEmpty)
    let web = try #require(sim.status(via: "beta").resource("web"))
    #expect(web.lastFailure?.action == .validateAll, "\(web)")
    #expect(!sim.actions.contains { $0.call.resource == "web" && $0.call.action == .start })
    _ = sim.cleanup("web", on: nil, via: "beta")
    #expect(sim.run(until: { $0.runs("web").count == 1 }, within: .seconds(10)) != nil)
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

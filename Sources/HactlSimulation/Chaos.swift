import HactlConfig
import HactlController
import HactlModel

/// One seeded run: a random cluster, random overlapping faults for
/// `duration`, then everything heals and the cluster must converge. The same
/// seed always replays the same run, step for step.
public struct ChaosOptions: Sendable {
  public var duration: Duration = .seconds(60)
  /// After healing, every resource that some healthy node may run must run
  /// exactly once within this bound.
  public var convergenceBound: Duration = .seconds(20)
  /// Mean time between faults.
  public var faultEvery: Duration = .seconds(2)
  /// Give some runs two links (chosen from a separate stream, so that a
  /// single-link run draws exactly what it drew before links existed, and
  /// old regression seeds replay their original scenario).
  public var redundantLinks = true
  /// Operators apply new configurations now and then (valid ones that change
  /// resources, and ones that must be refused), from their own random stream
  /// for the same reason as links.
  public var configChanges = true
  /// Half the runs carry state larger than a datagram (40 more resources
  /// with long ids, so reports and directives travel in parts) and lose
  /// parts now and then; from their own stream too.
  public var largeState = false
  /// At every input that comes before a node's deadline, check on a copy
  /// that a tick then would do nothing (`SimCluster.probeDeadlines`). Soaks
  /// may turn it off: it costs about a third more time.
  public var probeDeadlines = true
  /// Add the storage-stack pattern to some runs: a promotable clone, and a
  /// group colocated with its Promoted instance and ordered after its
  /// promotion (its own stream too).
  public var resourceModel = false
  /// Add a globally-unique clone to every run: three instances, up to two
  /// on a node, each a resource of its own (`u:0` to `u:2`).
  public var uniqueClone = false
  /// Configure a fence device for every node (its own stream): lost nodes
  /// are fenced, devices fail and hang now and then, and some crashes are
  /// permanent (a machine that never comes back is fenced, not waited for).
  public var fencing = false
  public init() {}
}

public struct ChaosReport: Sendable {
  public var seed: UInt64
  public var violations: [String]
  public var largeState = false
  public var faults: Int
  public var simulated: Duration
  public var description: String
  /// The last lines of the trace: what led to the first violation.
  public var traceTail: [String]
  public var redundantLinks = true
  public var configChanges = true
  public var resourceModel = false
  public var uniqueClone = false
  public var fencing = false
  /// Configuration changes acknowledged to the simulated operator.
  public var acknowledgedChanges = 0

  public var passed: Bool { violations.isEmpty }

  /// A readable account of a failure, with the command that replays it.
  public var failureReport: String {
    var lines = ["seed \(seed) failed: \(description)"]
    lines += violations.map { "  violation: \($0)" }
    let flags =
      (redundantLinks ? "" : " --single-link") + (configChanges ? "" : " --no-config-changes")
      + (largeState ? " --large-state" : "") + (resourceModel ? " --resource-model" : "")
      + (uniqueClone ? " --unique-clone" : "") + (fencing ? " --fencing" : "")
    lines.append("  replay: swift run hactl-sim --seed \(seed) --trace\(flags)")
    lines.append("  trace (last \(traceTail.count) lines):")
    lines += traceTail.map { "    " + $0 }
    return lines.joined(separator: "\n")
  }
}

public enum Chaos {
  public static func run(seed: UInt64, options: ChaosOptions = ChaosOptions(), keepTrace: Int = 150) -> ChaosReport {
    var report = runScenario(seed: seed, options: options, keepTrace: keepTrace)
    report.largeState = options.largeState
    report.resourceModel = options.resourceModel
    report.uniqueClone = options.uniqueClone
    report.fencing = options.fencing
    return report
  }

  static func runScenario(seed: UInt64, options: ChaosOptions, keepTrace: Int) -> ChaosReport {
    var random = SeededRandom(seed: seed)
    let nodeCount = random.pick([2, 2, 2, 3, 3, 4])
    let witness = nodeCount % 2 == 0 || random.chance(0.3)
    let resourceCount = Int.random(in: 1...3, using: &random)
    let names = ["alpha", "beta", "gamma", "delta"]
    var resources = (0..<resourceCount).map { index in
      SimCluster.marker(
        ResourceID("r\(index)"),
        prefer: random.chance(0.7) ? names[Int.random(in: 0..<nodeCount, using: &random)] : nil,
        threshold: random.pick([1, 2, 3]), timeout: .seconds(2))
    }
    if options.configChanges {
      // Like a real file with many settings: its offers are larger than one
      // datagram, so they travel as parts, and a path that drops parts loses them.
      resources[0].parameters = [("description", String(repeating: "a long description ", count: 80))]
    }
    var stateRandom = SeededRandom(seed: seed ^ 0x5354_4154_4550_5254)
    let bulky = options.largeState && stateRandom.chance(0.5)
    if bulky {
      resources += (0..<40).map {
        SimCluster.marker(
          ResourceID("bulk-\($0)-" + String(repeating: "x", count: 48)), prefer: nil, threshold: 3,
          timeout: .seconds(2))
      }
    }
    var linkRandom = SeededRandom(seed: seed ^ 0x4C49_4E4B_5345_4544)
    let links = options.redundantLinks && linkRandom.chance(0.3) ? 2 : 1
    var config = SimCluster.config(nodes: nodeCount, witness: witness, resources: resources, links: links)
    if options.resourceModel {
      var modelRandom = SeededRandom(seed: seed ^ 0x4D4F_4445_4C53_5441)
      storageStack(&config, &modelRandom)
    }
    if options.uniqueClone {
      config.resources.append(SimCluster.marker("u", prefer: nil, threshold: 2, timeout: .seconds(2)))
      config.clones.append(CloneSpec(id: "u-clone", child: "u", cloneMax: 3, cloneNodeMax: 2, globallyUnique: true))
    }
    var fenceRandom = SeededRandom(seed: seed ^ 0x4645_4E43_4544_4F4B)
    if options.fencing && fenceRandom.chance(0.3) {
      // Self-fencing only (sbd's diskless mode): a watchdog and no device.
      config.fencing = FencingConfig()
      config.fencing.watchdog = FencingConfig.Watchdog(
        device: "/dev/watchdog", timeout: .milliseconds(Int64(Int.random(in: 2...5, using: &fenceRandom) * 1000)))
    } else if options.fencing {
      config.fencing = FencingConfig(devices: [
        FenceDevice(
          id: "power", program: .hook("/sim/power"), targets: .nodes(config.nodes.map(\.name)),
          action: fenceRandom.chance(0.7) ? .reboot : .off, timeout: .seconds(2),
          retries: Int.random(in: 0...2, using: &fenceRandom), delay: fenceRandom.milliseconds(0...500),
          randomDelayMax: fenceRandom.milliseconds(0...1000))
      ])
    }
    var sim = SimCluster(config: config, seed: random.next())
    sim.probeDeadlines = options.probeDeadlines
    sim.stopLatency = random.milliseconds(5...200)
    sim.agentLatency = random.milliseconds(5...100)
    let description =
      "\(nodeCount) nodes\(witness ? " + witness" : ""), \(config.resources.count) resources, \(links) link(s), "
      + "stop \(sim.stopLatency.milliseconds) ms"
    var faults = 0
    var configRandom = SeededRandom(seed: seed ^ 0x434F_4E46_4947_5321)
    var pending: [(at: Instant, heal: Heal)] = []
    let end = sim.now + options.duration

    while sim.now < end {
      let gap = random.milliseconds(100...Int(options.faultEvery.milliseconds * 2))
      let until = min(end, sim.now + gap)
      while sim.now < until {
        sim.run(for: .milliseconds(50))
        for item in pending where item.at <= sim.now { apply(item.heal, to: &sim) }
        pending.removeAll { $0.at <= sim.now }
      }
      if let (fault, heal) = randomFault(&sim, &random) {
        faults += 1
        sim.trace.append("\(sim.now) FAULT \(fault)")
        if let heal { pending.append((sim.now + random.milliseconds(300...6000), heal)) }
      }
      if options.fencing, let fault = fencingFault(&sim, &fenceRandom) {
        faults += 1
        sim.trace.append("\(sim.now) FAULT \(fault)")
      }
      if bulky && stateRandom.chance(0.3) {
        sim.partLoss = Double.random(in: 0.1...0.7, using: &stateRandom)
        sim.trace.append("\(sim.now) FAULT \(Int(sim.partLoss * 100))% of parts lost")
        pending.append((sim.now + stateRandom.milliseconds(500...8000), .partsArrive))
      }
      if options.configChanges && configRandom.chance(0.3) {
        if let heal = changeConfig(&sim, &configRandom) {
          pending.append((sim.now + configRandom.milliseconds(1000...15000), heal))
        }
      }
      if !sim.violations.isEmpty { break }
    }

    // Heal everything and demand convergence.
    for item in pending { apply(item.heal, to: &sim) }
    sim.cutLinks = []
    sim.partsDroppedTo = []
    sim.partLoss = 0
    sim.linkLoss = [:]
    sim.loss = 0
    sim.jitter = .zero
    sim.duplication = 0
    sim.stalled = []
    sim.agentFaults = [:]
    sim.fenceFaults = [:]
    // A fence still under way may power a machine off: it is turned on again.
    sim.powerOnAfterFence = true
    for node in sim.crashed.sorted() { sim.restart(node) }
    sim.trace.append("\(sim.now) HEALED: every fault repaired")
    if sim.violations.isEmpty {
      let converged = sim.run(until: { isConverged($0) }, within: options.convergenceBound)
      if converged == nil {
        sim.trace.append("\(sim.now) NOT CONVERGED: \(convergenceProblem(sim) ?? "?")")
        sim.trace += sim.memberStates()
        return ChaosReport(
          seed: seed,
          violations: [
            "no convergence within \(options.convergenceBound) after healing: \(convergenceProblem(sim) ?? "?")"
          ],
          faults: faults, simulated: sim.now - .zero, description: description,
          traceTail: Array(sim.trace.suffix(keepTrace)), redundantLinks: options.redundantLinks,
          configChanges: options.configChanges)
      }
    }
    return ChaosReport(
      seed: seed, violations: sim.violations, faults: faults, simulated: sim.now - .zero, description: description,
      traceTail: Array(sim.trace.suffix(keepTrace)), redundantLinks: options.redundantLinks,
      configChanges: options.configChanges, acknowledgedChanges: sim.acknowledgedChanges)
  }

  /// With fencing: the device fails or hangs for a while, or a machine
  /// dies for good (only a fence, never a heal, ends its loss).
  static func fencingFault(_ sim: inout SimCluster, _ random: inout SeededRandom) -> String? {
    switch Int.random(in: 0..<10, using: &random) {
    case 0:
      let times = Int.random(in: 1...4, using: &random)
      sim.fenceFaults["power"] = .fail(times: times)
      return "fence device fails \(times) times"
    case 1:
      sim.fenceFaults["power"] = .hang(times: 1)
      return "fence device hangs once"
    case 2:
      let up = sim.config.nodes.map(\.id).filter { !sim.crashed.contains($0) }
      guard up.count > 1 else { return nil }
      let victim = random.pick(up)
      sim.crashMachine(victim)
      return "machine \(sim.name(victim)) dies for good"
    default:
      return nil
    }
  }

  /// An operator applies a configuration on a random running member: mostly
  /// valid resource changes, sometimes text that must be refused at once.
  /// Or a member's path starts dropping parts, so configurations (larger
  /// than a datagram) stop reaching it: the returned heal ends that.
  static func changeConfig(_ sim: inout SimCluster, _ random: inout SeededRandom) -> Heal? {
    let up = sim.config.voters.map(\.id).filter { !sim.crashed.contains($0) && !sim.stalled.contains($0) }
    guard !up.isEmpty, let controller = sim.controllers[random.pick(up)] else { return nil }
    if random.chance(0.25) {
      let victim = random.pick(sim.config.voters.map(\.id))
      sim.partsDroppedTo.insert(victim)
      sim.trace.append("\(sim.now) FAULT the path to \(sim.name(victim)) drops parts")
      return .partsPass(victim)
    }
    let via = controller.local.name
    var config = controller.config
    let change: String
    var mustRefuse = false
    switch Int.random(in: 0..<8, using: &random) {
    case 0 where !config.resources.isEmpty:
      let index = Int.random(in: 0..<config.resources.count, using: &random)
      config.resources[index].stickiness = Score(Int.random(in: 0...200, using: &random))
      change = "stickiness of \(config.resources[index].id)"
    case 1 where !config.resources.isEmpty:
      let index = Int.random(in: 0..<config.resources.count, using: &random)
      config.resources[index].parameters = [("generation", String(random.next() % 1000))]
      change = "parameters of \(config.resources[index].id) (a restart)"
    case 2 where config.resources.count > 1:
      let removed = config.resources.remove(at: Int.random(in: 0..<config.resources.count, using: &random))
      change = "remove \(removed.id)"
    case 3 where config.resources.count < 4:
      let used = Set(config.resources.map(\.id))
      let id = (0..<8).map { ResourceID("r\($0)") }.first { !used.contains($0) }!
      let prefer = random.chance(0.5) ? random.pick(config.nodes).name : nil
      config.resources.append(SimCluster.marker(id, prefer: prefer, threshold: 2, timeout: .seconds(2)))
      change = "add \(id)"
    case 4 where !config.resources.isEmpty:
      let index = Int.random(in: 0..<config.resources.count, using: &random)
      config.resources[index].monitor.interval = random.milliseconds(300...2000)
      change = "monitor interval of \(config.resources[index].id)"
    case 5:
      config.cluster.deadTime = config.cluster.deadTime + .milliseconds(100)
      change = "dead time (needs a restart)"
      mustRefuse = true
    case 6:
      let text = ConfigWriter.yaml(config).replacingOccurrences(of: "resources:", with: "resources: {")
      let result = sim.applyConfig(text, via: via)
      sim.trace.append(
        "\(sim.now) OPERATOR apply invalid text via \(via): \(result.isFailure ? "refused" : "ACCEPTED")")
      if !result.isFailure { sim.violate("an invalid configuration was accepted") }
      return nil
    default:
      change = "nothing (the same text again)"
    }
    let result = sim.applyConfig(ConfigWriter.yaml(config), via: via)
    let outcome: String
    switch result {
    case .success(let id): outcome = "request \(id) sent"
    case .failure(let error): outcome = "refused: \(error)"
    }
    sim.trace.append("\(sim.now) OPERATOR apply via \(via) (\(change)): \(outcome)")
    if mustRefuse && !result.isFailure { sim.violate("a membership change was accepted by config apply") }
    return nil
  }

  enum Heal: Sendable {
    case restart(NodeID)
    case unstall(NodeID)
    case reconnect(Set<SimCluster.DirectedLink>)
    case calmNetwork
    case partsPass(NodeID)
    case partsArrive
  }

  static func apply(_ heal: Heal, to sim: inout SimCluster) {
    switch heal {
    case .restart(let node): sim.restart(node)
    case .unstall(let node):
      sim.stalled.remove(node)
      sim.trace.append("\(sim.now) FAULT \(sim.name(node)) resumes")
    case .reconnect(let links):
      sim.cutLinks.subtract(links)
      sim.trace.append("\(sim.now) FAULT links restored")
    case .partsPass(let node):
      sim.partsDroppedTo.remove(node)
      sim.trace.append("\(sim.now) FAULT parts reach \(sim.name(node)) again")
    case .partsArrive:
      sim.partLoss = 0
      sim.trace.append("\(sim.now) FAULT parts arrive again")
    case .calmNetwork:
      sim.loss = 0
      sim.linkLoss = [:]
      sim.jitter = .zero
      sim.duplication = 0
      sim.trace.append("\(sim.now) FAULT network calm")
    }
  }

  static func randomFault(_ sim: inout SimCluster, _ random: inout SeededRandom) -> (String, Heal?)? {
    let members = sim.config.voters.map(\.id)
    let nodes = sim.config.nodes.map(\.id)
    let up = members.filter { !sim.crashed.contains($0) && !sim.stalled.contains($0) }
    guard let victim = up.isEmpty ? nil : random.pick(up) else { return nil }
    let name = sim.name(victim)
    let links = sim.config.linkCount
    switch Int.random(in: 0..<(links > 1 ? 14 : 12), using: &random) {
    case 0:
      sim.crashMachine(victim)
      return ("machine \(name) crashes", .restart(victim))
    case 1:
      sim.crashDaemon(victim)
      return ("daemon \(name) crashes, its resources keep running", .restart(victim))
    case 2:
      sim.stalled.insert(victim)
      return ("\(name) stalls", .unstall(victim))
    case 3:
      let jump = random.milliseconds(300...3000)
      sim.clockOffset[victim, default: .zero] += jump
      return ("\(name)'s clock jumps \(jump.milliseconds) ms ahead", nil)
    case 4, 5:
      let side = Set(members.filter { _ in random.chance(0.5) })
      let before = sim.cutLinks
      sim.partition(side)
      let names = side.map { sim.name($0) }.sorted()
      return ("partition \(names) from the rest", .reconnect(sim.cutLinks.subtracting(before)))
    case 6:
      let others = members.filter { $0 != victim }
      let to = random.pick(others)
      let link = SimCluster.DirectedLink(from: victim, to: to)
      sim.cutLinks.insert(link)
      return ("one-way cut \(name) → \(sim.name(to))", .reconnect([link]))
    case 7:
      sim.loss = Double.random(in: 0.1...0.5, using: &random)
      return ("packet loss \(Int(sim.loss * 100))%", .calmNetwork)
    case 8:
      sim.jitter = random.milliseconds(20...400)
      sim.duplication = Double.random(in: 0...0.3, using: &random)
      return ("jitter \(sim.jitter.milliseconds) ms, duplication \(Int(sim.duplication * 100))%", .calmNetwork)
    case 9, 10:
      // What nodes run: a globally-unique clone's instances by their own names.
      let executed = sim.config.executedResources
      guard let spec = executed.isEmpty ? nil : random.pick(executed) else { return nil }
      let node = random.pick(nodes)
      var action = random.pick([AgentAction.monitor, .start, .monitor])
      // With fencing, a failed or hung stop fences its node (the leader's
      // too, once it has stepped down): a quarter of these faults hit the
      // stop, chosen by the moment so that the draws of older seeds stay.
      let moment = sim.now.nanoseconds / 50_000_000 + Int64(node.rawValue)
      if !sim.config.fencing.devices.isEmpty && moment % 4 == 0 { action = .stop }
      let fault: SimCluster.AgentFault = random.chance(0.3) ? .hang(times: 1) : .fail(times: 1)
      sim.agentFaults[SimCluster.AgentKey(node: node, resource: spec.id, action: action)] = fault
      return ("agent \(spec.id) \(action.rawValue) on \(sim.name(node)) will \(fault)", nil)
    case 12:
      // One link between two members fails both ways; another still works.
      let other = random.pick(members.filter { $0 != victim })
      let link = Int.random(in: 0..<links, using: &random)
      let cut: Set<SimCluster.DirectedLink> = [
        SimCluster.DirectedLink(from: victim, to: other, link: link),
        SimCluster.DirectedLink(from: other, to: victim, link: link),
      ]
      sim.cutLinks.formUnion(cut)
      return ("link \(link) between \(name) and \(sim.name(other)) fails", .reconnect(cut))
    case 13:
      let link = Int.random(in: 0..<links, using: &random)
      sim.linkLoss[link] = Double.random(in: 0.3...1, using: &random)
      return ("loss \(Int(sim.linkLoss[link]! * 100))% on link \(link)", .calmNetwork)
    default:
      return nil
    }
  }

  /// Converged: one leader that every member follows; every resource that a
  /// member may run (not banned there by failures, not blocked) runs on
  /// exactly one machine, whose daemon is entitled to it.
  /// A promotable clone `pm` (scores as permanent node attributes, so a
  /// restarted daemon keeps them), and a group `stack` of two members that
  /// runs with its Promoted instance, after the promotion.
  static func storageStack(_ config: inout ClusterConfig, _ random: inout SeededRandom) {
    config.resources += ["pm", "s1", "s2"].map {
      SimCluster.marker(ResourceID($0), prefer: nil, threshold: 3, timeout: .seconds(2))
    }
    config.groups = [GroupSpec(id: "stack", members: ["s1", "s2"])]
    config.clones = [CloneSpec(id: "pm-clone", child: "pm", notify: true, promotable: true)]
    config.constraints.colocations = [
      ColocationConstraint(
        id: "stack-with-primary", resource: "stack", with: "pm-clone", score: .infinity, withRole: .promoted)
    ]
    config.constraints.orders = [
      OrderConstraint(
        id: "primary-then-stack", first: "pm-clone", firstAction: .promote, then: "stack", thenAction: .start)
    ]
    for index in config.nodes.indices {
      config.nodes[index].attributes["master-pm"] = String(random.pick([5, 10, 20]))
    }
  }

  public static func isConverged(_ sim: SimCluster) -> Bool { convergenceProblem(sim) == nil }

  public static func convergenceProblem(_ sim: SimCluster) -> String? {
    let members = sim.config.voters.map(\.id)
    let leaders = Set(members.compactMap { sim.controllers[$0]?.membership.leader })
    guard leaders.count == 1, let leader = leaders.first,
      members.allSatisfy({ sim.controllers[$0]?.membership.leader == leader })
    else { return "members do not agree on one leader" }
    // Everyone on the newest configuration any member stored.
    let newest = sim.storedConfig.values.map(\.version).max() ?? .initial
    let versions = members.map { sim.controllers[$0]?.document.version ?? .initial }
    guard versions.allSatisfy({ $0 == newest }) else {
      return "configurations \(versions.map(\.description)) are not all the newest, \(newest)"
    }
    let config = sim.runningConfig
    for removed in sim.everyResource.subtracting(config.executedResources.map(\.id)).sorted()
    where !sim.runs(removed).isEmpty {
      return "\(removed) left the configuration but runs on \(sim.runs(removed))"
    }
    let status = sim.status(via: sim.name(leader))
    let cloned = Set(config.clones.map(\.child))
    let grouped = Set(config.groups.flatMap(\.members))
    for clone in config.clones where clone.promotable {
      let promoted = sim.promoted(clone.child)
      let running = sim.runs(clone.child)
      if !running.isEmpty && promoted.count != 1 {
        return "\(clone.child) runs on \(running) and is Promoted on \(promoted)"
      }
      for group in config.groups where promoted.count == 1 {
        // With the Promoted instance, up to the first member banned there
        // (its failures reached its threshold): that one and those after
        // it stay stopped.
        var expected: [[String]] = []
        var banned = false
        for member in group.members {
          let spec = config.resource(member)
          let failures = status.resource(member.rawValue)?.failCounts[promoted[0]] ?? 0
          banned = banned || failures >= (spec?.migrationThreshold ?? 1)
          expected.append(banned ? [] : promoted)
        }
        let placed = group.members.map { sim.runs($0) }
        if placed != expected {
          return "\(group.id) runs on \(placed), not \(expected) (with the Promoted \(clone.child) on \(promoted))"
        }
      }
    }
    if let problem = uniqueCloneProblem(sim, config, status) { return problem }
    for spec in config.resources where !cloned.contains(spec.id) && !grouped.contains(spec.id) {
      guard let resource = status.resource(spec.id.rawValue) else { return "\(spec.id) missing from status" }
      if resource.state == .blocked { continue }
      let allowed = sim.config.nodes.filter { (resource.failCounts[$0.name] ?? 0) < spec.migrationThreshold }
      let running = sim.runs(spec.id)
      if allowed.isEmpty {
        if running.isEmpty { continue }
        return "\(spec.id) is banned everywhere but runs on \(running)"
      }
      guard running.count == 1,
        sim.isEntitled(sim.id(running[0]), to: spec.id) || sim.isKeeping(sim.id(running[0]), spec.id)
      else {
        return "\(spec.id) runs on \(running) (allowed on \(allowed.map(\.name)))"
      }
    }
    return nil
  }

  /// A globally-unique clone's instances: each on one machine at most, its
  /// daemon entitled to it; at most clone_node_max on a node; and one left
  /// stopped only where every member that could take it is full or has
  /// banned it (its own failures there).
  static func uniqueCloneProblem(_ sim: SimCluster, _ config: ClusterConfig, _ status: ClusterStatus) -> String? {
    let hosts = status.nodes.filter { $0.kind == .node && $0.member && $0.state == .online }.map(\.name)
    for clone in config.clones where clone.globallyUnique {
      guard let spec = config.resource(clone.child) else { continue }
      let instances = (0..<clone.maximumInstances(nodes: config.nodes.count)).map(clone.instanceResource)
      if instances.contains(where: { status.resource($0.rawValue)?.state == .blocked }) { continue }
      var perNode: [String: Int] = [:]
      for instance in instances {
        let running = sim.runs(instance)
        guard running.count <= 1 else { return "\(instance) runs on \(running)" }
        if let node = running.first {
          perNode[node, default: 0] += 1
          if !sim.isEntitled(sim.id(node), to: instance) && !sim.isKeeping(sim.id(node), instance) {
            return "\(instance) runs on \(node), which is not entitled to it"
          }
        }
      }
      if let full = perNode.first(where: { $0.value > clone.cloneNodeMax }) {
        return "\(clone.id) runs \(full.value) instances on \(full.key), clone_node_max \(clone.cloneNodeMax)"
      }
      for instance in instances where sim.runs(instance).isEmpty {
        let failures = status.resource(instance.rawValue)?.failCounts ?? [:]
        let open = hosts.filter {
          perNode[$0, default: 0] < clone.cloneNodeMax && (failures[$0] ?? 0) < spec.migrationThreshold
        }
        if !open.isEmpty { return "\(instance) runs nowhere, though \(open) could take it" }
      }
    }
    return nil
  }
}

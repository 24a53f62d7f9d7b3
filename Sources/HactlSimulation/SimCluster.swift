import HactlConfig
import HactlController
import HactlMembership
import HactlModel
import HactlWire

/// Whole clusters of real `NodeController`s in one process. Packets go
/// through the real codec over a simulated network (latency, jitter and
/// reordering, loss, duplication, cut links in either direction); agents act
/// on a simulated world; each node has its own clock; time moves only in
/// `run(for:)`. Everything random comes from one seed.
public struct SimCluster: Sendable {
  public private(set) var config: ClusterConfig
  public private(set) var controllers: Controllers
  public private(set) var now = Instant.zero
  public var random: SeededRandom

  // Network
  public var latency: Duration = .milliseconds(1)
  /// Extra random delay per packet, up to this: reorders packets.
  public var jitter: Duration = .zero
  public var loss: Double = 0
  /// Extra loss on one link only (redundant links).
  public var linkLoss: [Int: Double] = [:]
  public var duplication: Double = 0
  /// Directed links that deliver nothing: `[from, to]`, on one link or all.
  public var cutLinks: Set<DirectedLink> = []
  /// Members that never receive a part of anything larger than a datagram
  /// (a large configuration offer, a large section): as if a middlebox
  /// dropped them.
  public var partsDroppedTo: Set<NodeID> = []
  /// Extra loss for parts only: wholes must still complete from repeats.
  public var partLoss: Double = 0

  // Agents
  public var agentLatency: Duration = .milliseconds(20)
  /// Stops are often slower than starts (a service draining).
  public var stopLatency: Duration = .milliseconds(20)
  public var agentFaults: [AgentKey: AgentFault] = [:]

  // Machines
  /// What really runs on each machine.
  public var world: [NodeID: Set<ResourceID>] = [:]
  /// Daemons that are not running (the machine may still run resources).
  public var crashed: Set<NodeID> = []
  /// Daemons that are frozen: their inputs wait, as in a stopped process's socket.
  public var stalled: Set<NodeID> = []
  /// Which daemon incarnation started each copy: a copy found by the probe
  /// of a later incarnation is an orphan of a crashed daemon.
  public var startedBy: [NodeID: [ResourceID: UInt64]] = [:]
  /// How far ahead each node's monotonic clock is.
  public var clockOffset: [NodeID: Duration] = [:] {
    // A clock that jumps brings its deadline nearer or further.
    didSet { for node in controllers.keys { rearm(node) } }
  }

  // What happened
  public var trace: [String] = []
  public private(set) var started: [(Instant, NodeID, ResourceID)] = []
  /// Every agent call but monitors, as it completed (notifications included).
  public private(set) var actions: [(at: Instant, node: NodeID, call: AgentCall)] = []
  public private(set) var answers: [NodeID: [RequestAnswer]] = [:]
  public private(set) var sent: [NodeID: Int] = [:]
  /// Every breach of an invariant, with the moment and recent trace.
  public private(set) var violations: [String] = []
  /// Which node led each term: at most one, ever.
  public private(set) var leaders: [UInt64: NodeID] = [:]

  // Configuration
  /// What each member stored (it survives crashes, like the election record).
  public private(set) var storedConfig: [NodeID: ConfigDocument] = [:]
  /// What each member stored as old definitions it may still run.
  public private(set) var storedRetiring: [NodeID: [ResourceSpec]] = [:]
  /// Every version ever stored, with its text: one text per version.
  public private(set) var configHistory: [ConfigVersion: ConfigDocument] = [:]
  /// The newest version an operator was told a quorum stored.
  public private(set) var acknowledgedConfig: ConfigVersion = .initial
  /// How many configuration changes operators were told succeeded.
  public private(set) var acknowledgedChanges = 0
  /// Every resource any configuration had: a removed one may still run.
  public private(set) var everyResource: Set<ResourceID> = []
  let initialDocument: ConfigDocument

  var packets: [(at: Instant, to: NodeID, bytes: [UInt8], link: Int)] = []
  var calls: [(at: Instant, node: NodeID, call: AgentCall)] = []
  /// Fence attempts under way: when each ends, on which node it runs.
  var fences: [(at: Instant, node: NodeID, call: FenceCall)] = []
  /// How long a fence attempt takes, and how long a machine a fence
  /// rebooted stays down before its daemon starts again.
  public var fenceLatency: Duration = .milliseconds(300)
  public var rebootTime: Duration = .seconds(3)
  /// What a fence device does instead of succeeding, by device id.
  public enum FenceFault: Sendable {
    /// Fails the next `times` attempts (`Int.max`: always).
    case fail(times: Int)
    /// Hangs until its timeout, the next `times` attempts.
    case hang(times: Int)
    /// Says it succeeded but does nothing (a wrong port in a host map).
    case lie
  }
  public var fenceFaults: [String: FenceFault] = [:]
  /// When each machine's watchdog was last fed: one not fed for its
  /// timeout resets the machine (and it boots again after `rebootTime`).
  public private(set) var watchdogFed: [NodeID: Instant] = [:]
  /// Machines powered off (a crash of the machine, not of its daemon): a
  /// watchdog counts on while only the daemon is dead, as the kernel's
  /// does when its file is closed without the magic 'V'.
  var machinesDown: Set<NodeID> = []
  public private(set) var watchdogResets: [(at: Instant, node: NodeID)] = []
  /// Each node's fencing history, as its daemon would keep it.
  public private(set) var history: [NodeID: [FencingEvent]] = [:]
  /// Someone turns machines a fence powered off back on (a soak's heal).
  public var powerOnAfterFence = false
  /// Machines a fence device said it fenced, until they boot again (a
  /// device that lies leaves one running).
  public private(set) var confirmedFenced: Set<NodeID> = []
  /// Every fence that succeeded: when, by whom, on which machine.
  public private(set) var fencedMachines: [(at: Instant, by: NodeID, target: NodeID)] = []
  /// Machines a fence rebooted, and when they start again.
  var reboots: [(at: Instant, node: NodeID)] = []
  /// What each agent's meta-data says about reloading (none: it restarts).
  public var agentReloads: [AgentRef: AgentReload] = [:]
  /// Every reload-agent call that succeeded, with the definition it applied.
  public private(set) var reloaded: [(at: Instant, node: NodeID, definition: ResourceSpec)] = []
  var sequence: [NodeID: UInt64] = [:]
  var incarnations: [NodeID: UInt64] = [:]
  var election: [NodeID: ElectionRecord] = [:]

  public struct DirectedLink: Hashable, Sendable {
    public var from: NodeID
    public var to: NodeID
    /// One redundant link, or nil for all of them.
    public var link: Int?
    public init(from: NodeID, to: NodeID, link: Int? = nil) {
      self.from = from
      self.to = to
      self.link = link
    }
  }

  public struct AgentKey: Hashable, Sendable {
    public var node: NodeID
    public var resource: ResourceID
    public var action: AgentAction
    public init(node: NodeID, resource: ResourceID, action: AgentAction) {
      self.node = node
      self.resource = resource
      self.action = action
    }
  }

  public enum AgentFault: Hashable, Sendable {
    /// Exit `code` (1 by default) the next `times` calls (`Int.max`: always).
    case fail(times: Int, code: Int32 = 1)
    /// Never return: the executor's timeout ends it.
    case hang(times: Int)
  }

  /// `down`: members whose daemons are not started yet (`restart` starts them).
  public init(config: ClusterConfig, seed: UInt64 = 1, down: Set<String> = []) {
    self.config = config
    controllers = Controllers(config.voters.map(\.id))
    initialDocument = ConfigDocument(version: .initial, base: .initial, text: ConfigWriter.yaml(config))
    everyResource = Set(config.executedResources.map(\.id))
    random = SeededRandom(seed: seed)
    for member in config.voters {
      if down.contains(member.name) {
        crashed.insert(member.id)
      } else {
        boot(member.id)
      }
    }
  }

  public static func config(
    nodes: Int = 2, witness: Bool = true, resources: [ResourceSpec], policy: NoQuorumPolicy = .stop, links: Int = 1
  ) -> ClusterConfig {
    let names = ["alpha", "beta", "gamma", "delta", "epsilon"]
    func endpoints(_ index: Int) -> [Endpoint] {
      (0..<links).map { Endpoint(host: "127.0.0.\($0 + 1)", port: UInt16(6000 + index)) }
    }
    let nodeSpecs = (0..<nodes).map {
      NodeSpec(
        name: $0 < names.count ? names[$0] : "node\($0 + 1)", id: NodeID(UInt32($0 + 1)), links: endpoints($0))
    }
    let witnessSpec = witness ? WitnessSpec(name: "arbiter", id: NodeID(UInt32(nodes + 1)), links: endpoints(99)) : nil
    return ClusterConfig(
      cluster: ClusterSettings(name: "sim", keyFile: "/dev/null", quorum: QuorumOptions(noQuorumPolicy: policy)),
      nodes: nodeSpecs, witness: witnessSpec, resources: resources)
  }

  public static func marker(
    _ id: ResourceID, prefer: String? = "alpha", threshold: Int = 1, timeout: Duration = .seconds(5)
  ) -> ResourceSpec {
    ResourceSpec(
      id: id, agent: AgentRef(provider: "hactl", type: "Marker"),
      start: OperationSpec(timeout: timeout), stop: OperationSpec(timeout: timeout),
      monitor: OperationSpec(interval: .seconds(1), timeout: timeout), preferredNode: prefer,
      migrationThreshold: threshold)
  }

  /// The simulated wall clock: Unix seconds, from November 2023 at t+0.
  public static func wallTime(at now: Instant) -> Int64 { 1_700_000_000 + now.nanoseconds / 1_000_000_000 }

  public func id(_ name: String) -> NodeID { config.member(named: name)!.id }
  public func name(_ id: NodeID) -> String { config.member(id: id)?.name ?? id.description }
  func localNow(_ node: NodeID) -> Instant {
    let extra = inputsAtThisInstant[node].map { $0.at == now ? $0.count : 0 } ?? 0
    return now + (clockOffset[node] ?? .zero) + .nanoseconds(extra)
  }

  /// A real node never handles two inputs at the same nanosecond: each
  /// input to a node at one simulated instant is a nanosecond after the
  /// one before. With equal times, a heartbeat sent before a withdrawal
  /// carried the same stamp as one sent after it, and its echo confirmed
  /// the withdrawal (chaos seed 1900007 then started a resource on a
  /// second node while the first was still starting it).
  var inputsAtThisInstant: [NodeID: (at: Instant, count: Int64)] = [:]

  mutating func beginInput(_ node: NodeID) {
    if let last = inputsAtThisInstant[node], last.at == now {
      inputsAtThisInstant[node] = (now, last.count + 1)
    } else {
      inputsAtThisInstant[node] = (now, 0)
    }
  }

  // MARK: Faults

  mutating func boot(_ node: NodeID) {
    // hactld arms the watchdog as it starts.
    if config.fencing.watchdog != nil && config.nodes.contains(where: { $0.id == node }) { watchdogFed[node] = now }
    // As hactld does: the wall clock in microseconds, and always above the last.
    let incarnation = max((incarnations[node] ?? 0) + 1, UInt64(max(0, now.nanoseconds / 1000)))
    incarnations[node] = incarnation
    sequence[node] = 0
    // A daemon starts from what it stored, as hactld does.
    let document = storedConfig[node] ?? initialDocument
    var running = config
    do {
      running = try ConfigLoader.parse(document.text, file: "stored").liveParts(over: config)
    } catch {
      // hactld would refuse to start: a member stored text it could not read back.
      violate("\(name(node)) stored configuration \(document.version) that does not load: \(error)")
    }
    beginInput(node)
    var controller = NodeController(
      config: running, local: node, incarnation: incarnation, election: election[node] ?? ElectionRecord(),
      now: localNow(node), document: document, retiring: storedRetiring[node] ?? [],
      wallTime: Self.wallTime(at: localNow(node)))
    let effects = controller.start(now: localNow(node))
    controllers[node] = controller
    perform(effects, on: node)
  }

  /// The machine dies: its daemon and everything it ran are gone.
  public mutating func crash(_ name: String) { crashMachine(id(name)) }

  public mutating func crashMachine(_ node: NodeID) {
    crashed.insert(node)
    machinesDown.insert(node)
    stalled.remove(node)
    world[node] = []
    promotedWorld[node] = []
    startedBy[node] = [:]
    calls.removeAll { $0.node == node }
    hungCalls = hungCalls.filter { $0.node != node }
    packets.removeAll { $0.to == node }
    trace.append("\(now) FAULT crash machine \(name(node))")
  }

  /// Only the daemon dies; what it ran keeps running.
  public mutating func crashDaemon(_ node: NodeID) {
    crashed.insert(node)
    stalled.remove(node)
    calls.removeAll { $0.node == node }
    hungCalls = hungCalls.filter { $0.node != node }
    packets.removeAll { $0.to == node }
    trace.append("\(now) FAULT crash daemon \(name(node))")
  }

  /// Starts the daemon again (a new incarnation).
  public mutating func restart(_ node: NodeID) {
    guard crashed.contains(node) else { return }
    crashed.remove(node)
    machinesDown.remove(node)
    confirmedFenced.remove(node)
    trace.append("\(now) FAULT restart \(name(node))")
    boot(node)
  }

  public mutating func restartDaemon(_ name: String) { restart(id(name)) }

  /// The agent exits 1 for the next `times` calls of `action` (always by default).
  public mutating func fail(
    _ name: String, _ resource: ResourceID, _ action: AgentAction, times: Int = .max, code: Int32 = 1
  ) {
    agentFaults[AgentKey(node: id(name), resource: resource, action: action)] = .fail(times: times, code: code)
  }

  public mutating func isolate(_ name: String) {
    let node = id(name)
    for other in config.voters.map(\.id) where other != node {
      cutLinks.insert(DirectedLink(from: node, to: other))
      cutLinks.insert(DirectedLink(from: other, to: node))
    }
  }

  /// Splits the members into two sides that cannot reach each other.
  public mutating func partition(_ side: Set<NodeID>) {
    for a in config.voters.map(\.id) {
      for b in config.voters.map(\.id) where side.contains(a) != side.contains(b) {
        cutLinks.insert(DirectedLink(from: a, to: b))
      }
    }
  }

  public mutating func heal() { cutLinks = [] }

  // MARK: Observing

  /// Nodes where the simulated agent runs `resource` Promoted.
  public func promoted(_ resource: ResourceID) -> [String] {
    config.nodes.filter { promotedWorld[$0.id]?.contains(resource) == true }.map(\.name)
  }

  /// Sets (or deletes) a transient node attribute, as an agent's
  /// crm_attribute would.
  public mutating func setAttribute(_ node: String, _ name: String, _ value: String?) {
    let id = id(node)
    guard var controller = controllers[id], !crashed.contains(id) else { return }
    beginInput(id)
    let (_, effects) = controller.setAttribute(name, value, now: localNow(id))
    controllers[id] = controller
    perform(effects, on: id)
  }

  public func runs(_ resource: ResourceID) -> [String] {
    // Nodes are fixed for a run; resources may change with the configuration.
    config.nodes.filter { world[$0.id]?.contains(resource) == true }.map(\.name)
  }

  public func status(via name: String) -> ClusterStatus {
    let node = id(name)
    return controllers[node]!.status(now: localNow(node))
  }

  /// Whether the daemon on `node` holds the right to run resources, means to
  /// keep `resource` running, and started it itself.
  public func isEntitled(_ node: NodeID, to resource: ResourceID) -> Bool {
    guard !crashed.contains(node), !stalled.contains(node), let controller = controllers[node] else { return false }
    return controller.membership.mayRunResources(now: localNow(node))
      && [.started, .starting].contains(controller.localRole(of: resource))
      && controller.wantsRunning(resource, now: localNow(node))
      && startedBy[node]?[resource] == incarnations[node]
  }

  /// A running daemon that keeps `resource` as started, even if an earlier
  /// incarnation started it (convergence accepts such a copy).
  public func isKeeping(_ node: NodeID, _ resource: ResourceID) -> Bool {
    guard !crashed.contains(node), !stalled.contains(node), let controller = controllers[node] else { return false }
    return controller.membership.mayRunResources(now: localNow(node)) && controller.localRole(of: resource) == .started
  }

  /// One line per member: term, role, leader, quorum, who it hears.
  public func memberStates() -> [String] {
    config.voters.map { member in
      guard let controller = controllers[member.id], !crashed.contains(member.id) else {
        return "  \(member.name): down"
      }
      let m = controller.membership
      let heard = m.alivePeers.map { name($0) }.joined(separator: ",")
      return "  \(member.name): term \(m.term) \(m.role.rawValue) leader \(m.leader.map { name($0) } ?? "-") "
        + "quorate \(m.quorate) excluded \(m.excluded) voted \(m.record.votedFor.map { name($0) } ?? "-") hears [\(heard)]"
    }
  }

  /// An operator's `hactl config apply` on `name`; the refusal if refused at once.
  public mutating func applyConfig(_ text: String, via name: String) -> Result<UInt64, NodeController.RequestError> {
    let node = id(name)
    beginInput(node)
    let (result, effects) = controllers[node]!.requestConfigChange(text: text, now: localNow(node))
    perform(effects, on: node)
    return result
  }

  /// An operator's `hactl ban`, `standby`... on `name`; the refusal if refused at once.
  public mutating func edit(_ edit: OperatorEdit, via name: String) -> Result<UInt64, NodeController.RequestError> {
    let node = id(name)
    beginInput(node)
    let (result, effects) = controllers[node]!.requestOperatorEdit(edit, now: localNow(node))
    perform(effects, on: node)
    return result
  }

  /// The operator's command stops waiting (hactld gives up after 10 s).
  public mutating func giveUp(_ request: UInt64, via name: String) {
    controllers[id(name)]!.cancelRequest(request)
    rearm(id(name))
  }

  /// The configuration the members converge to: the leader's, else any.
  public var runningConfig: ClusterConfig {
    let up = config.voters.map(\.id).filter { !crashed.contains($0) }
    let leader = up.first { controllers[$0]?.membership.isLeader == true } ?? up.first
    return leader.flatMap { controllers[$0]?.config } ?? config
  }

  public mutating func migrate(_ resource: String, to target: String?, via name: String) -> UInt64? {
    ask(via: name) { $0.requestMove(resource: resource, to: target, now: $1) }
  }

  /// `hactl fence`, asked on `name`.
  public mutating func fence(_ target: String, action: FenceAction? = nil, confirm: Bool = false, via name: String)
    -> UInt64?
  {
    ask(via: name) { $0.requestFence(node: target, action: action, confirm: confirm, now: $1) }
  }

  public mutating func cleanup(_ resource: String, on target: String?, via name: String) -> UInt64? {
    ask(via: name) { $0.requestCleanup(resource: resource, node: target, now: $1) }
  }

  /// Another node's transient attribute, asked on `name` (`attrd_updater -N`).
  public mutating func setAttribute(of node: String, _ attribute: String, _ value: String?, via name: String)
    -> UInt64?
  {
    ask(via: name) { $0.requestAttribute(node: node, name: attribute, value: value, now: $1) }
  }

  /// An operator's request made on one node, as its control socket would.
  mutating func ask(
    via name: String,
    _ request: (inout NodeController, Instant) -> (Result<UInt64, NodeController.RequestError>, [ControllerEffect])
  ) -> UInt64? {
    let node = id(name)
    beginInput(node)
    let (result, effects) = request(&controllers[node]!, localNow(node))
    perform(effects, on: node)
    return try? result.get()
  }

  // MARK: Running

  /// Moves from event to event (a packet arriving, an agent call ending, a
  /// node's own deadline) until `duration` has passed, checking the
  /// invariants after every event.
  public mutating func run(for duration: Duration) {
    let end = now + duration
    while let next = nextEvent(), next <= end { step(to: next) }
    now = end
    checkInvariants()
  }

  /// Runs until `condition` holds, looking after every event; returns the
  /// time it took, nil if it does not hold within `limit`.
  public mutating func run(until condition: (SimCluster) -> Bool, within limit: Duration) -> Duration? {
    let start = now
    let end = now + limit
    while !condition(self) {
      guard let next = nextEvent(), next <= end else {
        now = end
        checkInvariants()
        return condition(self) ? limit : nil
      }
      step(to: next)
    }
    return now - start
  }

  /// The moment of the next event: nil when nothing will ever happen.
  func nextEvent() -> Instant? {
    var next = Instant.distantFuture
    for packet in packets where packet.at < next && !stalled.contains(packet.to) { next = packet.at }
    for call in calls where call.at < next && !stalled.contains(call.node) { next = call.at }
    for fence in fences where fence.at < next && !stalled.contains(fence.node) { next = fence.at }
    for reboot in reboots where reboot.at < next { next = reboot.at }
    if let watchdog = config.fencing.watchdog {
      for (node, fed) in watchdogFed where !machinesDown.contains(node) && fed + watchdog.timeout < next {
        next = fed + watchdog.timeout
      }
    }
    for (node, wake) in wakeAt where wake < next && !crashed.contains(node) && !stalled.contains(node) {
      next = wake
    }
    return next == .distantFuture ? nil : max(next, now)
  }

  /// Everything due at `moment`: packets in arrival then send order, agent
  /// results, then the nodes whose deadline came, in node order.
  mutating func step(to moment: Instant) {
    now = moment
    let due = packets.enumerated().filter { $0.element.at <= now && !stalled.contains($0.element.to) }
    for index in due.map(\.offset).reversed() { packets.remove(at: index) }
    for packet in due.sorted(by: { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }).map(\.element)
    where !crashed.contains(packet.to) {
      // As hactld reads them: the packets due together at a node (those
      // queued behind a stall, say) get one decision after the last.
      let decoded = try! PacketCodec.decode(packet.bytes)
      if controllers.lend(packet.to, { $0.decisionPending }) == false {
        probeDeadline(of: packet.to)
        beginInput(packet.to)
      }
      let effects = controllers[packet.to]!.receiveDeferringDecision(
        decoded, link: packet.link, now: localNow(packet.to))
      perform(effects, on: packet.to)
      checkInvariants()
    }
    for node in Set(due.map(\.element.to)).sorted()
    where !crashed.contains(node) && controllers.lend(node, { $0.decisionPending }) == true {
      let skipped = controllers.lend(node) { $0.counters.decisionsSkipped }!
      let effects = controllers[node]!.decidePending(now: localNow(node))
      probeSkippedDecision(of: node, skippedBefore: skipped)
      perform(effects, on: node)
      checkInvariants()
    }
    let finished = calls.enumerated().filter { $0.element.at <= now && !stalled.contains($0.element.node) }
    for index in finished.map(\.offset).reversed() { calls.remove(at: index) }
    for item in finished.map(\.element) where !crashed.contains(item.node) {
      let outcome = agent(item.call, on: item.node)
      probeDeadline(of: item.node)
      beginInput(item.node)
      let result = NodeController.AgentResult(
        call: item.call, outcome: outcome, wallTime: Self.wallTime(at: now),
        reload: item.call.action == .metaData ? agentReloads[item.call.definition.agent] : nil)
      let effects = controllers[item.node]!.agentsFinished([result], now: localNow(item.node))
      perform(effects, on: item.node)
      checkInvariants()
    }
    let endedFences = fences.enumerated().filter { $0.element.at <= now && !stalled.contains($0.element.node) }
    for index in endedFences.map(\.offset).reversed() { fences.remove(at: index) }
    for item in endedFences.map(\.element) where !crashed.contains(item.node) {
      let result = fence(item.call, by: item.node)
      beginInput(item.node)
      let effects = controllers[item.node]!.fenceFinished(item.call.id, result: result, now: localNow(item.node))
      perform(effects, on: item.node)
      checkInvariants()
    }
    if let watchdog = config.fencing.watchdog {
      for (node, fed) in watchdogFed.sorted(by: { $0.key < $1.key })
      where !machinesDown.contains(node) && fed + watchdog.timeout <= now {
        trace.append("\(now) \(name(node)) reset by its watchdog (last fed \(fed))")
        watchdogResets.append((now, node))
        crashMachine(node)
        watchdogFed[node] = nil
        reboots.append((now + rebootTime, node))
        checkInvariants()
      }
    }
    let dueReboots = reboots.filter { $0.at <= now }
    reboots.removeAll { $0.at <= now }
    for reboot in dueReboots where crashed.contains(reboot.node) {
      restart(reboot.node)
      checkInvariants()
    }
    for node in controllers.keys
    where !crashed.contains(node) && !stalled.contains(node) && wakeAt[node].map({ $0 <= now }) == true {
      ticks += 1
      ticksByNode[node, default: 0] += 1
      let skipped = controllers.lend(node) { $0.counters.decisionsSkipped }!
      beginInput(node)
      let effects = controllers[node]!.tick(now: localNow(node))
      probeSkippedDecision(of: node, skippedBefore: skipped)
      perform(effects, on: node)
      if let wake = wakeAt[node], wake <= now {
        violate("\(name(node)) asks to be woken at \(wake) again after its tick at \(now): it would spin")
        wakeAt[node] = now + .milliseconds(1)
      }
      checkInvariants()
    }
  }

  /// When each node's controller asked to be woken, on the simulator's clock.
  var wakeAt: [NodeID: Instant] = [:]
  /// Ticks the nodes asked for, all nodes together.
  public private(set) var ticks = 0
  public private(set) var ticksByNode: [NodeID: Int] = [:]

  /// Checks, on a copy, that a tick at any moment before a node's deadline
  /// would do nothing: an input arriving early is the chance to look. A
  /// deadline set too late would leave a node asleep while it should act
  /// (stop a resource whose lease ran out, declare a peer lost). On by
  /// default in tests; soaks turn it off for speed (`ChaosOptions`).
  public var probeDeadlines = true

  mutating func probeDeadline(of node: NodeID) {
    // On the node's own clock: an input a nanosecond after another at the
    // same instant may already be past a deadline set a nanosecond ahead.
    guard probeDeadlines, var copy = controllers[node], localNow(node) < copy.wakeAt else { return }
    let wake = copy.wakeAt
    let effects = copy.tick(now: localNow(node), decidingAnyway: true)
    if !effects.isEmpty {
      violate("\(name(node)) would act at \(now), before its deadline \(wake): \(effects.prefix(3))")
    }
  }

  /// After an input on which a node did not decide because the decision
  /// would repeat the last one, decides anyway on a copy: that must do
  /// nothing, or the skip left something undone until the next limit.
  mutating func probeSkippedDecision(of node: NodeID, skippedBefore: Int) {
    guard probeDeadlines, var copy = controllers[node], copy.counters.decisionsSkipped > skippedBefore,
      localNow(node) < copy.membership.tickDue
    else { return }
    let effects = copy.tick(now: localNow(node), decidingAnyway: true)
    if !effects.isEmpty {
      violate("\(name(node)) did not decide at \(now), but deciding would act: \(effects.prefix(3))")
    }
  }

  /// After every input, the node's new deadline in the simulator's time.
  mutating func rearm(_ node: NodeID) {
    guard let local = controllers.lend(node, { $0.wakeAt }) else { return }
    let offset = (clockOffset[node] ?? .zero).nanosecondsClamped
    wakeAt[node] = local == .distantFuture ? local : Instant(nanoseconds: local.nanoseconds &- offset)
  }

  mutating func send(_ message: Message, from node: NodeID, to peer: NodeID) {
    sent[node, default: 0] += 1
    sequence[node, default: 0] += 1
    let header = PacketHeader(
      sender: node, receiver: peer, incarnation: incarnations[node]!,
      receiverIncarnation: controllers.lend(node) { $0.receiverIncarnation(for: peer) } ?? 0,
      sequence: sequence[node]!,
      sentAt: localNow(node).nanoseconds)
    guard !cutLinks.contains(DirectedLink(from: node, to: peer)) else { return }
    let bytes: [UInt8]
    do {
      bytes = try PacketCodec.encode(Packet(header: header, message: message))
    } catch {
      violate("\(name(node)) cannot encode a packet for \(name(peer)): \(error)")
      return
    }
    if bytes.count + PacketCodec.longestTag > PacketCodec.maximumDatagram {
      violate("\(name(node)) sent \(name(peer)) a datagram of \(bytes.count) bytes before its tag")
    }
    if case .part = message {
      if partsDroppedTo.contains(peer) || random.chance(partLoss) { return }
    }
    for link in 0..<config.linkCount {
      guard !cutLinks.contains(DirectedLink(from: node, to: peer, link: link)), !random.chance(loss) else {
        continue
      }
      if let extra = linkLoss[link], random.chance(extra) { continue }
      let copies = random.chance(duplication) ? 2 : 1
      for _ in 0..<copies {
        let extra = jitter > .zero ? random.milliseconds(0...Int(jitter.milliseconds)) : .zero
        packets.append((now + latency + extra, peer, bytes, link))
      }
    }
  }

  mutating func perform(_ effects: [ControllerEffect], on node: NodeID) {
    defer { rearm(node) }
    for effect in effects {
      switch effect {
      case .send(let peer, let message):
        let datagrams: [Message]
        do {
          datagrams = try MessageParts.fit(message)
        } catch {
          // The daemon would log this and send nothing: its peers lose it.
          violate("\(name(node)) cannot encode a packet for \(name(peer)): \(error)")
          continue
        }
        for datagram in datagrams { send(datagram, from: node, to: peer) }
      case .persistElection(let record):
        election[node] = record
      case .persistConfig(let document):
        store(document, on: node)
      case .persistRetiring(let definitions):
        storedRetiring[node] = definitions
      case .runAgent(let call):
        let key = AgentKey(node: node, resource: call.resource, action: call.action)
        if case .hang(let times) = agentFaults[key] {
          agentFaults[key] = times > 1 ? .hang(times: times - 1) : nil
          calls.append((now + call.timeout, node, call))
          hungCalls.insert(HungCall(node: node, id: call.id))
          trace.append("\(now) \(name(node)) agent \(call.resource) \(call.action.rawValue) hangs")
        } else {
          calls.append((now + (call.action == .stop ? stopLatency : agentLatency), node, call))
        }
      case .feedWatchdog:
        watchdogFed[node] = now
      case .recordFencing(let event):
        history[node, default: []].append(event)
      case .runFence(let call):
        let hangs: Bool
        if case .hang? = fenceFaults[call.device.id] { hangs = true } else { hangs = false }
        fences.append((now + (hangs ? call.device.timeout : fenceLatency), node, call))
        trace.append("\(now) \(name(node)) fences \(call.targetName) with \(call.device.id)")
      case .cancelAgent(let id):
        calls.removeAll { $0.node == node && $0.call.id == id }
        hungCalls.remove(HungCall(node: node, id: id))
      case .requestAnswered(let answer):
        answers[node, default: []].append(answer)
        if answer.accepted, let version = answer.configVersion {
          acknowledgedConfig = max(acknowledgedConfig, version)
          acknowledgedChanges += 1
          trace.append("\(now) \(name(node)) operator told: configuration \(version) applied")
        }
      case .log(let level, let message):
        trace.append("\(now) \(name(node)) \(level.rawValue): \(message)")
      }
    }
  }

  /// The simulated fence device: powers the target machine off (and on
  /// again after `rebootTime` for a reboot), unless a fault says otherwise.
  mutating func fence(_ call: FenceCall, by node: NodeID) -> FenceResult {
    switch fenceFaults[call.device.id] {
    case .fail(let times)?:
      fenceFaults[call.device.id] = times == .max ? .fail(times: times) : (times > 1 ? .fail(times: times - 1) : nil)
      trace.append("\(now) \(name(node)) fence \(call.device.id) on \(call.targetName) fails (injected)")
      return .failed("injected failure")
    case .hang(let times)?:
      fenceFaults[call.device.id] = times > 1 ? .hang(times: times - 1) : nil
      trace.append("\(now) \(name(node)) fence \(call.device.id) on \(call.targetName) hangs (injected)")
      return .failed("timed out after \(call.device.timeout.milliseconds) ms")
    case .lie?:
      confirmedFenced.insert(call.target)
      trace.append("\(now) \(name(node)) fence \(call.device.id) on \(call.targetName) says done, does nothing")
      return .succeeded
    case nil:
      break
    }
    confirmedFenced.insert(call.target)
    crashMachine(call.target)
    fencedMachines.append((now, node, call.target))
    trace.append("\(now) \(name(node)) fenced \(call.targetName) (\(call.action.rawValue))")
    if call.action == .reboot || powerOnAfterFence { reboots.append((now + rebootTime, call.target)) }
    return .succeeded
  }

  /// The simulated agent: acts on `world` like Marker acts on its file.
  mutating func agent(_ call: AgentCall, on node: NodeID) -> AgentOutcome {
    if hungCalls.remove(HungCall(node: node, id: call.id)) != nil { return .timedOut }
    let key = AgentKey(node: node, resource: call.resource, action: call.action)
    if case .fail(let times, let code) = agentFaults[key] {
      agentFaults[key] =
        times == .max ? .fail(times: times, code: code) : (times > 1 ? .fail(times: times - 1, code: code) : nil)
      trace.append("\(now) \(name(node)) agent \(call.resource) \(call.action.rawValue) fails (injected)")
      return .exited(code)
    }
    if call.action != .monitor { actions.append((now, node, call)) }
    switch call.action {
    case .start:
      checkStartOrder(call.resource, on: node)
      world[node, default: []].insert(call.resource)
      startedBy[node, default: [:]][call.resource] = incarnations[node]
      started.append((now, node, call.resource))
      return .exited(0)
    case .stop:
      world[node, default: []].remove(call.resource)
      promotedWorld[node, default: []].remove(call.resource)
      return .exited(0)
    case .monitor:
      guard world[node]?.contains(call.resource) == true else { return .exited(7) }
      return promotedWorld[node]?.contains(call.resource) == true ? .exited(8) : .exited(0)
    case .promote:
      guard world[node]?.contains(call.resource) == true else { return .exited(7) }
      promotedWorld[node, default: []].insert(call.resource)
      return .exited(0)
    case .demote:
      promotedWorld[node, default: []].remove(call.resource)
      return .exited(0)
    case .metaData, .validateAll, .notify:
      return .exited(0)
    case .reloadAgent, .reload:
      // Runs on with its new parameters; it must have been running.
      guard world[node]?.contains(call.resource) == true else {
        violate("\(call.resource) reloaded on \(name(node)) where it does not run")
        return .exited(7)
      }
      reloaded.append((now, node, call.definition))
      return .exited(0)
    }
  }

  /// A start begins only once what it is ordered after runs: the member
  /// before it in its group on the same machine, and the first of a
  /// mandatory order somewhere (Promoted, for an order after a promote).
  mutating func checkStartOrder(_ resource: ResourceID, on node: NodeID) {
    let running = world[node] ?? []
    for group in config.groups {
      guard let index = group.members.firstIndex(of: resource), index > 0 else { continue }
      let before = group.members[index - 1]
      if !running.contains(before) {
        violate("\(resource) starts on \(name(node)) while \(before), before it in \(group.id), does not run there")
      }
    }
    let unit = config.groups.first { $0.members.contains(resource) }?.id ?? resource
    for order in config.constraints.orders where order.kind == .mandatory && order.then == unit {
      guard order.thenAction == .start, config.group(unit)?.members.first ?? resource == resource else { continue }
      let first = config.clone(order.first)?.child ?? config.group(order.first)?.members.last ?? order.first
      // Any instance of a globally-unique clone, which runs under its own name.
      let firsts = Set(config.executedResources.map(\.id).filter { config.uniqueInstance($0)?.child == first })
        .union([first])
      let somewhere = config.nodes.contains { spec in
        let there = (order.firstAction == .promote ? promotedWorld[spec.id] : world[spec.id]) ?? []
        return !there.isDisjoint(with: firsts)
      }
      if !somewhere {
        violate(
          "\(resource) starts on \(name(node)) while \(order.first) is not \(order.firstAction.rawValue)d anywhere")
      }
    }
  }

  struct HungCall: Hashable, Sendable {
    var node: NodeID
    var id: UInt64
  }
  var hungCalls: Set<HungCall> = []
  /// Instances the simulated agent runs Promoted, per machine.
  var promotedWorld: [NodeID: Set<ResourceID>] = [:]

  /// The safety rule and the one-leader-per-term rule, after every step.
  ///
  /// A singleton runs on at most one machine whose daemon holds the right to
  /// run resources (quorate partition, fresh lease, a member), means to keep
  /// it running, and started it. A copy on a stalled or crashed daemon's
  /// machine, one its node is stopping, or one a restarted daemon found by
  /// its probe, is the documented gap that only fencing closes; the leader
  /// resolves the last kind once the probes are in.
  mutating func checkInvariants() {
    // Only a resource on two machines at once can break the rule; a
    // clone's copies may run on several, but never more Promoted than
    // promoted_max.
    var copies: [ResourceID: Int] = [:]
    for running in world.values {
      for resource in running { copies[resource, default: 0] += 1 }
    }
    let cloned = Set(
      config.clones.flatMap { clone in config.group(clone.child)?.members ?? [clone.child] })
    for clone in config.clones where clone.promotable {
      // As for singletons, a copy counts where the node holds the right to
      // it: a lease, and its leader's word to run it Promoted. A node told
      // to demote, or woken from a stall and demoting, is the gap only
      // fencing closes.
      let promoted = config.nodes.filter {
        promotedWorld[$0.id]?.contains(clone.child) == true && isEntitled($0.id, to: clone.child)
          && controllers[$0.id]?.wantsPromoted(clone.child, now: localNow($0.id)) == true
      }
      if promoted.count > clone.promotedMax {
        let detail = promoted.map { spec in
          let controller = controllers[spec.id]!
          return
            "\(spec.name): term \(controller.membership.term), leader \(controller.membership.leader.map(name) ?? "none")"
        }
        violate(
          "\(clone.child) runs Promoted on \(promoted.map(\.name)), each of which holds the right to run it (\(detail.joined(separator: "; ")))"
        )
      }
    }
    for resource in copies.filter({ $0.value > 1 && !cloned.contains($0.key) }).keys.sorted() {
      let entitled = config.nodes.filter {
        world[$0.id]?.contains(resource) == true && isEntitled($0.id, to: resource)
      }
      if entitled.count > 1 {
        let detail = entitled.map { spec in
          let controller = controllers[spec.id]!
          let role = controller.localRole(of: resource).map { "\($0)" } ?? "?"
          return "\(spec.name): term \(controller.membership.term), leader "
            + "\(controller.membership.leader.map(name) ?? "none"), \(role), \(controller.wantDescription(resource, now: localNow(spec.id)))"
        }
        violate(
          "\(resource) runs on \(entitled.map(\.name)), each of which holds the right to run it (\(detail.joined(separator: "; ")))"
        )
      }
      // With fencing, the full rule: two machines only if one of them was
      // confirmed fenced (stalled or not, whatever its daemon thinks).
      let unfencedCopies = config.nodes.filter {
        world[$0.id]?.contains(resource) == true && !confirmedFenced.contains($0.id)
      }
      if config.fencing.isEnabled && unfencedCopies.count > 1 {
        violate("\(resource) runs on \(unfencedCopies.map(\.name)), none of which was confirmed fenced")
      }
    }
    // An acknowledged configuration stays on a quorum (so every later leader has it).
    if acknowledgedConfig > .initial {
      let needed =
        config.cluster.quorum.twoNode
        ? config.voters.reduce(0) { $0 + $1.votes } : config.expectedVotes / 2 + 1
      let votes = votesStoring(acknowledgedConfig)
      if votes < needed {
        violate(
          "acknowledged configuration \(acknowledgedConfig) is stored by members with \(votes) votes, \(needed) needed")
      }
    }
    for node in config.voters.map(\.id) where !crashed.contains(node) {
      guard let term = controllers.lend(node, { $0.membership.isLeader ? $0.membership.term : nil }) ?? nil else {
        continue
      }
      if let other = leaders[term], other != node {
        violate("two leaders in term \(term): \(name(other)) and \(name(node))")
      }
      leaders[term] = node
    }
  }

  /// A member stores a configuration: never an older one, never a second
  /// text under one version, never one made without an acknowledged one.
  mutating func store(_ document: ConfigDocument, on node: NodeID) {
    let before = storedConfig[node]?.version ?? .initial
    if document.version <= before {
      violate("\(name(node)) stored configuration \(document.version) over \(before)")
    }
    if let known = configHistory[document.version] {
      if known.text != document.text { violate("two configurations with version \(document.version)") }
    } else {
      configHistory[document.version] = document
      if document.base < acknowledgedConfig {
        violate(
          "configuration \(document.version) was made from \(document.base), which lacks acknowledged "
            + "\(acknowledgedConfig): that change is lost")
      }
      if let parsed = try? ConfigLoader.parse(document.text, file: "stored") {
        everyResource.formUnion(parsed.executedResources.map(\.id))
      }
    }
    storedConfig[node] = document
  }

  /// Votes of the members that stored `version` or newer.
  public func votesStoring(_ version: ConfigVersion) -> Int {
    config.voters.filter { (storedConfig[$0.id]?.version ?? .initial) >= version }.reduce(0) { $0 + $1.votes }
  }

  public mutating func violate(_ what: String) {
    // One report per kind of breach is enough to find it; keep the first.
    guard violations.count < 5 else { return }
    violations.append("\(now): \(what)")
  }
}

extension Result {
  public var isFailure: Bool {
    if case .failure = self { return true }
    return false
  }
}

/// The members' controllers by node id, kept in an array: reading one or
/// changing it in place never copies it, where a dictionary's subscript
/// moves the whole controller out and back in at every event.
public struct Controllers: Sendable {
  var slots: [NodeController?]
  let index: [NodeID: Int]
  public let keys: [NodeID]

  init(_ members: [NodeID]) {
    keys = members.sorted()
    index = Dictionary(uniqueKeysWithValues: keys.enumerated().map { ($1, $0) })
    slots = Array(repeating: nil, count: keys.count)
  }

  public subscript(node: NodeID) -> NodeController? {
    _read {
      if let position = index[node] { yield slots[position] } else { yield nil }
    }
    _modify {
      guard let position = index[node] else {
        var absent: NodeController?
        yield &absent
        return
      }
      yield &slots[position]
    }
  }

  public var values: [NodeController] { slots.compactMap { $0 } }

  /// The controller of `node`, lent in place. Reading one through the
  /// subscript copies it whole (every dictionary in it retained, then
  /// released), which was most of the simulator's cost when done for every
  /// event.
  mutating func lend<T>(_ node: NodeID, _ body: (inout NodeController) -> T) -> T? {
    guard let position = index[node], slots[position] != nil else { return nil }
    return body(&slots[position]!)
  }
}

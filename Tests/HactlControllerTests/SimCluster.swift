import HactlController
import HactlMembership
import HactlModel
import HactlWire

/// Whole clusters of real `NodeController`s in one process: packets go
/// through the real codec over a simulated network with a fixed latency,
/// agents act on a simulated world, and time moves only in `run(for:)`.
struct SimCluster {
  var config: ClusterConfig
  var controllers: [NodeID: NodeController] = [:]
  var now = Instant.zero
  var latency: Duration = .milliseconds(1)
  var agentLatency: Duration = .milliseconds(20)
  /// Stops are often slower than starts (a service draining).
  var stopLatency: Duration = .milliseconds(20)
  /// What really runs on each machine.
  var world: [NodeID: Set<ResourceID>] = [:]
  var crashed: Set<NodeID> = []
  var stalled: Set<NodeID> = []
  /// Links cut in both directions.
  var cut: Set<Set<NodeID>> = []
  var failing: Set<Failure> = []
  var trace: [String] = []
  var started: [(Instant, NodeID, ResourceID)] = []
  var answers: [NodeID: [RequestAnswer]] = [:]
  /// Packets each node has sent.
  var sent: [NodeID: Int] = [:]
  /// Every moment a singleton ran on two machines that could both act.
  var violations: [String] = []

  private var packets: [(at: Instant, to: NodeID, bytes: [UInt8])] = []
  private var calls: [(at: Instant, node: NodeID, call: AgentCall)] = []
  private var sequence: [NodeID: UInt64] = [:]
  private var incarnations: [NodeID: UInt64] = [:]
  private var election: [NodeID: ElectionRecord] = [:]
  private var lastTick: Instant = .zero

  struct Failure: Hashable {
    var node: NodeID
    var resource: ResourceID
    var action: AgentAction
  }

  init(config: ClusterConfig) {
    self.config = config
    for member in config.voters { boot(member.id) }
  }

  static func config(
    nodes: Int = 2, witness: Bool = true, resources: [ResourceSpec], policy: NoQuorumPolicy = .stop
  ) -> ClusterConfig {
    let names = ["alpha", "beta", "gamma", "delta"]
    let nodeSpecs = (0..<nodes).map {
      NodeSpec(
        name: names[$0], id: NodeID(UInt32($0 + 1)), endpoint: Endpoint(host: "127.0.0.1", port: UInt16(6000 + $0)))
    }
    let witnessSpec =
      witness
      ? WitnessSpec(name: "arbiter", id: NodeID(UInt32(nodes + 1)), endpoint: Endpoint(host: "127.0.0.1", port: 6100))
      : nil
    return ClusterConfig(
      cluster: ClusterSettings(name: "sim", keyFile: "/dev/null", quorum: QuorumOptions(noQuorumPolicy: policy)),
      nodes: nodeSpecs, witness: witnessSpec, resources: resources)
  }

  static func marker(_ id: ResourceID, prefer: String? = "alpha", threshold: Int = 1) -> ResourceSpec {
    ResourceSpec(
      id: id, agent: AgentRef(provider: "hactl", type: "Marker"),
      monitor: OperationSpec(interval: .seconds(1), timeout: .seconds(5)), preferredNode: prefer,
      migrationThreshold: threshold)
  }

  func id(_ name: String) -> NodeID { config.member(named: name)!.id }

  // MARK: Faults

  mutating func boot(_ node: NodeID) {
    let incarnation = (incarnations[node] ?? 0) + 1
    incarnations[node] = incarnation
    sequence[node] = 0
    var controller = NodeController(
      config: config, local: node, incarnation: incarnation, election: election[node] ?? ElectionRecord(), now: now)
    let effects = controller.start(now: now)
    controllers[node] = controller
    perform(effects, on: node)
  }

  /// The machine dies: its daemon and everything it ran are gone.
  mutating func crash(_ name: String) {
    let node = id(name)
    crashed.insert(node)
    world[node] = []
    calls.removeAll { $0.node == node }
    trace.append("\(now) crash \(name)")
  }

  /// Only the daemon restarts; what it ran keeps running.
  mutating func restartDaemon(_ name: String) {
    let node = id(name)
    crashed.remove(node)
    calls.removeAll { $0.node == node }
    trace.append("\(now) restart \(name)")
    boot(node)
  }

  mutating func fail(_ name: String, _ resource: ResourceID, _ action: AgentAction) {
    failing.insert(Failure(node: id(name), resource: resource, action: action))
  }

  mutating func isolate(_ name: String) {
    let node = id(name)
    for other in config.voters.map(\.id) where other != node { cut.insert([node, other]) }
  }

  mutating func heal() { cut = [] }

  func runs(_ resource: ResourceID) -> [String] {
    config.nodes.filter { world[$0.id]?.contains(resource) == true }.map(\.name)
  }

  func status(via name: String) -> ClusterStatus { controllers[id(name)]!.status(now: now) }

  mutating func migrate(_ resource: String, to target: String?, via name: String) -> UInt64? {
    let node = id(name)
    let (result, effects) = controllers[node]!.requestMove(resource: resource, to: target, now: now)
    perform(effects, on: node)
    return try? result.get()
  }

  // MARK: Running

  /// Advances time in 5 ms steps: delivers packets, completes agent calls,
  /// and ticks every 50 ms. A stalled node receives and ticks nothing; its
  /// inputs wait, as they do in a stopped process's socket buffer.
  mutating func run(for duration: Duration) {
    let end = now + duration
    while now < end {
      now = now + .milliseconds(5)
      let due = packets.filter { $0.at <= now && !stalled.contains($0.to) }
      packets.removeAll { $0.at <= now && !stalled.contains($0.to) }
      for packet in due where !crashed.contains(packet.to) {
        let decoded = try! PacketCodec.decode(packet.bytes)
        let effects = controllers[packet.to]!.receive(decoded, now: now)
        perform(effects, on: packet.to)
      }
      let finished = calls.filter { $0.at <= now && !stalled.contains($0.node) }
      calls.removeAll { $0.at <= now && !stalled.contains($0.node) }
      for item in finished where !crashed.contains(item.node) {
        let outcome = agent(item.call, on: item.node)
        let effects = controllers[item.node]!.agentFinished(
          item.call.id, outcome: outcome, now: now, wallTime: 1_700_000_000)
        perform(effects, on: item.node)
      }
      if now - lastTick >= .milliseconds(50) {
        lastTick = now
        for node in controllers.keys.sorted() where !crashed.contains(node) && !stalled.contains(node) {
          let effects = controllers[node]!.tick(now: now)
          perform(effects, on: node)
        }
      }
      checkInvariants()
    }
  }

  /// Runs until `condition` holds; returns the time it took, nil on timeout.
  mutating func run(until condition: (SimCluster) -> Bool, within limit: Duration) -> Duration? {
    let start = now
    while now - start < limit {
      if condition(self) { return now - start }
      run(for: .milliseconds(5))
    }
    return condition(self) ? now - start : nil
  }

  mutating func perform(_ effects: [ControllerEffect], on node: NodeID) {
    for effect in effects {
      switch effect {
      case .send(let peer, let message):
        sent[node, default: 0] += 1
        sequence[node, default: 0] += 1
        let header = PacketHeader(sender: node, incarnation: incarnations[node]!, sequence: sequence[node]!)
        guard !cut.contains([node, peer]) else { continue }
        let bytes = try! PacketCodec.encode(Packet(header: header, message: message))
        packets.append((now + latency, peer, bytes))
      case .persistElection(let record):
        election[node] = record
      case .runAgent(let call):
        calls.append((now + (call.action == .stop ? stopLatency : agentLatency), node, call))
      case .requestAnswered(let answer):
        answers[node, default: []].append(answer)
      case .log(let level, let message):
        trace.append("\(now) \(config.member(id: node)!.name) \(level.rawValue): \(message)")
      }
    }
  }

  mutating func agent(_ call: AgentCall, on node: NodeID) -> AgentOutcome {
    let failure = failing.contains(Failure(node: node, resource: call.resource, action: call.action))
    switch call.action {
    case .start:
      if failure { return .exited(1) }
      world[node, default: []].insert(call.resource)
      started.append((now, node, call.resource))
      return .exited(0)
    case .stop:
      if failure { return .exited(1) }
      world[node, default: []].remove(call.resource)
      return .exited(0)
    case .monitor:
      if failure { return .exited(1) }
      return world[node]?.contains(call.resource) == true ? .exited(0) : .exited(7)
    case .metaData, .validateAll:
      return .exited(0)
    }
  }

  /// The safety rule, checked after every step: a singleton runs on at most
  /// one machine whose daemon holds the right to run resources (quorate
  /// partition, fresh lease, a member) and means to keep it running. A copy
  /// on a stalled or crashed node, or one its node is stopping, is the
  /// documented gap that only fencing closes.
  mutating func checkInvariants() {
    for spec in config.resources {
      let acting = config.nodes.filter { node in
        world[node.id]?.contains(spec.id) == true && !stalled.contains(node.id) && !crashed.contains(node.id)
          && controllers[node.id]!.membership.mayRunResources(now: now)
          && [.started, .starting].contains(controllers[node.id]!.localRole(of: spec.id))
      }
      if acting.count > 1 {
        violations.append(
          "\(spec.id) active on \(acting.map(\.name)) at \(now)\n" + trace.suffix(30).joined(separator: "\n"))
      }
    }
  }
}

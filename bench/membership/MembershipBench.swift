import Foundation
import HactlConfig
import HactlControl
import HactlDaemon
import HactlLab
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire

/// Tables from real `hactld` processes on 127.0.0.1:
/// 1. failure detection: SIGKILL a node, time until a survivor's status shows
///    it lost, against the configured dead time;
/// 2. idle cost per node for 2, 8 and 32 nodes: CPU seconds per hour and
///    bytes per second sent;
/// 3. `hactl config apply` latency: asked on a follower, until a quorum
///    stored it, against the floor of two durable writes in a row;
/// 4. the cost of a flood of bad datagrams to one node: CPU per datagram for
///    each kind, from refused before any cryptography to a failed tag;
/// 5. (`scale`) idle cost per node with 10, 100 and 1,000 resources at 2, 8
///    and 32 nodes, and the time a changed resource state takes to reach
///    every node after the node it changed on shows it;
/// 6. (`load`) a pair under CPU saturation and under memory pressure:
///    false losses and the worst silence heard, against no load;
/// 7. (`floor`) the idle rhythm of a pair without hactld: bare threads,
///    with and without sealing real heartbeats.
///
///     swift build -c release && .build/release/membership-bench [RUNS] [IDLE_SECONDS] [SIZES, e.g. 2,8,32]
///     .build/release/membership-bench flood [SECONDS]
///     .build/release/membership-bench floor [SECONDS]
///     .build/release/membership-bench scale [IDLE_SECONDS] [SIZES] [RESOURCE COUNTS, e.g. 10,100,1000] [MOVES] [INTERVAL DEAD_TIME]
///     .build/release/membership-bench load [SECONDS] [cpu|memory|cpu-unprotected|memory-unprotected]
@main
enum MembershipBench {
  static func main() async throws {
    let arguments = CommandLine.arguments.dropFirst().map { $0 }
    if arguments.first == "flood" {
      try await flood(seconds: arguments.count > 1 ? Double(arguments[1]) ?? 5 : 5)
      return
    }
    if arguments.first == "floor" {
      try floor(seconds: arguments.count > 1 ? Double(arguments[1]) ?? 60 : 60)
      return
    }
    if arguments.first == "load" {
      let kinds = arguments.count > 2 ? [arguments[2]] : ["cpu", "memory"]
      try await load(seconds: arguments.count > 1 ? Double(arguments[1]) ?? 60 : 60, kinds: kinds)
      return
    }
    if arguments.first == "scale" {
      func list(_ index: Int, _ fallback: [Int]) -> [Int] {
        arguments.count > index ? arguments[index].split(separator: ",").compactMap { Int($0) } : fallback
      }
      try await scale(
        seconds: arguments.count > 1 ? Double(arguments[1]) ?? 10 : 10, sizes: list(2, [2, 8, 32]),
        counts: list(3, [10, 100, 1000]), moves: list(4, [5]).first ?? 5,
        timing: arguments.count > 6 ? (interval: arguments[5], deadTime: arguments[6]) : nil)
      return
    }
    let runs = arguments.first.flatMap(Int.init) ?? 30
    let idleSeconds = arguments.count > 1 ? Double(arguments[1]) ?? 20 : 20
    if runs > 0 { try await detection(runs: runs) }
    let sizes = arguments.count > 2 ? arguments[2].split(separator: ",").compactMap { Int($0) } : [2, 8, 32]
    try await idleCost(sizes: sizes, seconds: idleSeconds)
    if runs > 0 { try await configApply(runs: runs) }
    try await flood(seconds: max(2, idleSeconds / 3))
  }

  static func detection(runs: Int) async throws {
    var options = LocalCluster.Options(resourcesYAML: "")
    options.nodes = ["alpha", "beta", "gamma"]
    options.witness = nil
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try cluster.startAll()
    let deadTime = DurationParsing.parse(options.deadTime)!
    let interval = DurationParsing.parse(options.heartbeatInterval)!
    var samples: [Double] = []
    for run in 1...runs {
      _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { status in
        status.nodes.allSatisfy { $0.state == .online } && status.leader != nil
      }
      // A random phase against the heartbeat schedule.
      try await Task.sleep(for: .milliseconds(Int.random(in: 0..<200)))
      let killed = ContinuousClock.now
      cluster.crash("gamma")
      _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30), every: .milliseconds(2)) {
        $0.node("gamma")?.state == .lost
      }
      samples.append((ContinuousClock.now - killed).seconds * 1000)
      print(String(format: "detection run %2d: %.0f ms", run, samples.last!))
      try cluster.start("gamma")
    }
    let sorted = samples.sorted()
    let floor = Double((deadTime - interval).milliseconds)
    print("")
    print(
      "| failure detection (ms, n=\(runs)) | median | p99 | min | max | dead time | floor (dead time − interval) | median / dead time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
      String(
        format: "| kill → survivor sees it lost | %.0f | %.0f | %.0f | %.0f | %lld | %.0f | %.2f |",
        Statistics.percentile(sorted, 50), Statistics.percentile(sorted, 99), sorted.first!, sorted.last!,
        deadTime.milliseconds, floor,
        Statistics.percentile(sorted, 50) / Double(deadTime.milliseconds)))
    print("")
  }

  static func idleCost(sizes: [Int], seconds: Double) async throws {
    print(
      "| nodes | CPU s per node per hour | bytes/s sent per node | packets/s sent per node | timer wake-ups/s per node | event-loop wake-ups/s per node | RSS MB per node | PSS MB per node |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes {
      var options = LocalCluster.Options(resourcesYAML: "")
      options.nodes = (1...size).map { "n\($0)" }
      options.witness = nil
      let cluster = try LocalCluster(options: options)
      defer { cluster.shutdown() }
      try cluster.startAll()
      _ = try await cluster.waitFor(via: "n1", timeout: .seconds(60)) { status in
        status.nodes.allSatisfy { $0.state == .online && $0.member } && status.leader != nil
      }
      try await Task.sleep(for: .seconds(2))
      var wakeupsBefore = 0
      for node in options.nodes { wakeupsBefore += try await cluster.status(via: node).timing?.wakeups ?? 0 }
      let started = ContinuousClock.now
      let idle = try await idleFigures(cluster, nodes: options.nodes, seconds: seconds)
      var wakeupsAfter = 0
      for node in options.nodes { wakeupsAfter += try await cluster.status(via: node).timing?.wakeups ?? 0 }
      let wakeups = Double(wakeupsAfter - wakeupsBefore) / (ContinuousClock.now - started).seconds / Double(size)
      let memory = options.nodes.compactMap { residentMemory(cluster, $0) }
      let rss = memory.map(\.rss).reduce(0, +) / Double(max(1, memory.count))
      let pss = memory.map(\.pss).reduce(0, +) / Double(max(1, memory.count))
      print(
        String(
          format: "| %d | %.1f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f |", size, idle.cpu, idle.bytes, idle.packets,
          wakeups, idle.loopWakes, rss, pss))
    }
  }

  /// Per node, while nothing changes: CPU seconds per hour, bytes and
  /// packets sent per second, and how often its event loops slept and were
  /// woken per second (for whatever reason, a timer or a packet or nothing).
  static func idleFigures(_ cluster: LocalCluster, nodes: [String], seconds: Double) async throws -> (
    cpu: Double, bytes: Double, packets: Double, loopWakes: Double
  ) {
    let cpuBefore = nodes.map { cluster.threadRunTimes($0) ?? [:] }
    let sleepsBefore = nodes.map { cluster.threadSleeps($0, namedLike: "NIO-") ?? [:] }
    var before: [String: TrafficStatus] = [:]
    for node in nodes { before[node] = try await cluster.status(via: node).traffic }
    let started = ContinuousClock.now
    try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    let elapsed = (ContinuousClock.now - started).seconds
    let cpu = zip(cpuBefore, nodes.map { cluster.threadRunTimes($0) ?? [:] }).map {
      LocalCluster.cpuSeconds(from: $0, to: $1)
    }.reduce(0, +)
    let sleeps = zip(sleepsBefore, nodes.map { cluster.threadSleeps($0, namedLike: "NIO-") ?? [:] }).map {
      LocalCluster.growth(from: $0, to: $1)
    }.reduce(0, +)
    var bytes = 0
    var packets = 0
    for node in nodes {
      let after = try await cluster.status(via: node).traffic!
      bytes += after.bytesSent - before[node]!.bytesSent
      packets += after.sent - before[node]!.sent
    }
    let perNode = Double(nodes.count)
    return (
      cpu / elapsed * 3600 / perNode, Double(bytes) / elapsed / perNode,
      Double(packets) / elapsed / perNode, Double(sleeps) / elapsed / perNode
    )
  }

  /// Resident memory of one daemon in MB: RSS counts shared libraries whole,
  /// PSS shares them among the processes that map them.
  static func residentMemory(_ cluster: LocalCluster, _ node: String) -> (rss: Double, pss: Double)? {
    guard let pid = cluster.pid(node),
      let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)
    else { return nil }
    func field(_ name: String) -> Double? {
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
      return line.split(separator: " ").dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
    }
    guard let rss = field("Rss"), let pss = field("Pss") else { return nil }
    return (rss, pss)
  }

  /// A pair at default settings under load: every core saturated by
  /// ordinary-priority busy processes, or memory pressure (a process that
  /// keeps touching all but 512 MB of the available memory). Counts the
  /// peers declared lost, the worst silence any node heard from a live
  /// peer, and resource moves, against the same run with no load.
  static func load(seconds: Double, kinds: [String]) async throws {
    print(
      "| load | seconds | false losses | worst silence heard (ms) | dead time (ms) | resource moves | real-time | memory |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind in ["none"] + kinds {
      // "cpu-unprotected", "memory-unprotected": the same load on daemons
      // that neither run real-time nor lock their memory.
      var options = LocalCluster.Options(resourcesYAML: quietResources(1))
      if kind.hasSuffix("-unprotected") { options.extraClusterYAML = "  realtime: false\n  lock_memory: false" }
      let cluster = try LocalCluster(options: options)
      defer { cluster.shutdown() }
      try cluster.startAll()
      let settled = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { status in
        status.resources.allSatisfy { $0.state == .started }
          && status.nodes.allSatisfy { $0.state == .online && $0.member }
      }
      let home = settled.resources.map { ($0.id, $0.node) }
      let nodes = cluster.members
      var before: [String: TimingStatus] = [:]
      for node in nodes { before[node] = try await cluster.status(via: node).timing }
      let hogs = try startLoad(String(kind.prefix { $0 != "-" }))
      // The quiet baseline needs no more than a minute.
      let duration = kind == "none" ? min(seconds, 60) : seconds
      try await Task.sleep(for: .milliseconds(Int(duration * 1000)))
      for hog in hogs where hog.isRunning { kill(hog.processIdentifier, SIGKILL) }
      for hog in hogs { hog.waitUntilExit() }
      var lost = 0
      var worst: Int64 = 0
      var timing: TimingStatus?
      for node in nodes {
        let after = try await cluster.status(via: node)
        guard let now = after.timing else { continue }
        timing = now
        lost += now.peersLost - (before[node]?.peersLost ?? 0)
        worst = max(worst, now.longestSilenceMilliseconds)
      }
      let final = try await cluster.status(via: "alpha")
      let moves = home.filter { id, node in final.resource(id)?.node != node }.count
      let deadTime = DurationParsing.parse(cluster.options.deadTime)!.milliseconds
      print(
        "| \(kind) | \(Int(duration)) | \(lost) | \(worst) | \(deadTime) | \(moves) | \(timing?.realtime ?? "?") | \(timing?.memory ?? "?") |"
      )
    }
  }

  /// Ordinary-priority processes that load the machine until killed.
  static func startLoad(_ kind: String) throws -> [Process] {
    func spawn(_ arguments: [String]) throws -> Process {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/bin/sh")
      process.arguments = ["-c"] + arguments
      try process.run()
      return process
    }
    switch kind {
    case "cpu":
      // Twice as many busy loops as cores.
      let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
      return try (0..<(2 * cores)).map { _ in try spawn(["while :; do :; done"]) }
    case "memory":
      // All but 512 MB of what is available, touched over and over; the
      // kernel must reclaim page cache (and unlocked program text) for it.
      // It is the first choice of the OOM killer, not a daemon.
      let script = """
        echo 1000 > /proc/self/oom_score_adj
        exec python3 -c '
        import mmap, re, time
        available = int(re.search(r"MemAvailable:\\s+(\\d+)", open("/proc/meminfo").read()).group(1)) * 1024
        size = max(64 << 20, available - (512 << 20))
        block = mmap.mmap(-1, size)
        while True:
            for offset in range(0, size, 4096):
                block[offset] = 1
        '
        """
      return [try spawn([script])]
    default:
      return []
    }
  }

  /// Resources that cost almost nothing to run: a marker file each, and a
  /// monitor once an hour, so the daemons' own cost is what is measured.
  static func quietResources(_ count: Int) -> String {
    (0..<count).map { index in
      "  - id: service-\(index)\n    agent: ocf:hactl:Marker\n    monitor: { interval: 1h, timeout: 20s }\n"
        + "    start: { timeout: 60s }\n    stop: { timeout: 60s }\n"
    }.joined()
  }

  /// `timing`: a heartbeat interval and dead time other than the defaults
  /// (32 daemons on two cores share what 32 machines would have).
  static func scale(
    seconds: Double, sizes: [Int], counts: [Int], moves: Int, timing: (interval: String, deadTime: String)? = nil
  ) async throws {
    var rows: [String] = []
    for size in sizes {
      for count in counts {
        var options = LocalCluster.Options(resourcesYAML: quietResources(count))
        options.nodes = (1...size).map { "n\($0)" }
        options.witness = nil
        if let timing { (options.heartbeatInterval, options.deadTime) = timing }
        let cluster = try LocalCluster(options: options)
        defer { cluster.shutdown() }
        try cluster.startAll()
        let began = ContinuousClock.now
        _ = try await cluster.waitFor(via: "n1", timeout: .seconds(900), every: .milliseconds(500)) { status in
          status.nodes.allSatisfy { $0.state == .online && $0.member } && status.leader != nil
            && status.resources.filter { $0.state == .started }.count == count
        }
        let settled = (ContinuousClock.now - began).seconds
        try await Task.sleep(for: .seconds(3))
        let idle = try await idleFigures(cluster, nodes: options.nodes, seconds: seconds)
        let spread = try await propagation(cluster, nodes: options.nodes, moves: moves)
        let row = String(
          format: "| %d | %d | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f |", size, count, idle.cpu, idle.bytes,
          idle.packets, Statistics.percentile(spread, 50), Statistics.percentile(spread, 99), settled)
        print(row)
        rows.append(row)
      }
    }
    print("")
    print(
      "| nodes | resources | CPU s per node per hour (idle) | bytes/s sent per node | packets/s sent per node "
        + "| state reaches every node (ms, median) | p99 | start to all running (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows { print(row) }
  }

  /// A resource moves; from the moment its new node shows it started, how
  /// long until every node does (polled every few ms).
  static func propagation(_ cluster: LocalCluster, nodes: [String], moves: Int) async throws -> [Double] {
    var samples: [Double] = []
    for move in 0..<moves {
      let resource = "service-\(move)"
      let status = try await cluster.status(via: nodes[0])
      guard let from = status.resource(resource)?.node else { continue }
      let target = nodes.first { $0 != from }!
      _ = try await ControlClient.send(
        .migrate(resource: resource, node: target), socketPath: cluster.socketPath(from), timeout: .seconds(60))
      var seen: [String: ContinuousClock.Instant] = [:]
      let deadline = ContinuousClock.now + .seconds(60)
      while seen.count < nodes.count && ContinuousClock.now < deadline {
        for node in nodes where seen[node] == nil {
          let view = try await cluster.status(via: node)
          if view.resource(resource)?.node == target && view.resource(resource)?.state == .started {
            seen[node] = ContinuousClock.now
          }
        }
      }
      guard seen.count == nodes.count, let local = seen[target], let last = seen.values.max() else { continue }
      samples.append((last - local).seconds * 1000)
    }
    return samples.isEmpty ? [.nan] : samples.sorted()
  }

  static func configApply(runs: Int) async throws {
    let resources = """
        - id: marker
          agent: ocf:hactl:Marker
          monitor: { interval: 10s, timeout: 10s }
      """
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: resources))
    defer { cluster.shutdown() }
    try cluster.startAll()
    let original = try String(contentsOfFile: cluster.configPath, encoding: .utf8)
    var samples: [Double] = []
    for run in 1...runs {
      let status = try await cluster.waitFor(via: "beta", timeout: .seconds(30)) {
        $0.leader != nil && $0.configuration?.behind == [] && $0.resource("marker")?.state == .started
      }
      let follower = status.leader == "alpha" ? "beta" : "alpha"
      let text = original + "# change \(run)\n"
      let started = ContinuousClock.now
      let response = try await ControlClient.send(.applyConfig(text: text), socketPath: cluster.socketPath(follower))
      guard response.ok else { throw LocalCluster.LabError("run \(run): \(response.error ?? "refused")") }
      samples.append((ContinuousClock.now - started).seconds * 1000)
      print(String(format: "config apply run %2d via %@: %.1f ms", run, follower, samples.last!))
    }
    // The floor: the leader and one more member each store it durably, one
    // after the other, as hactld does (write, fsync, rename, fsync the folder).
    var writes: [Double] = []
    let probe = cluster.folder + "/fsync-probe"
    let data = Data(original.utf8)
    for _ in 0..<max(runs, 20) {
      let started = ContinuousClock.now
      try StateStore.writeAtomically(data, to: probe)
      writes.append((ContinuousClock.now - started).seconds * 1000)
    }
    let sorted = samples.sorted()
    let floor = 2 * Statistics.percentile(writes.sorted(), 50)
    print("")
    print("| config apply (ms, n=\(runs)) | median | p99 | min | max | floor (2 durable writes) | median / floor |")
    print("|---|---|---|---|---|---|---|")
    print(
      String(
        format: "| asked on a follower → quorum stored it | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |",
        Statistics.percentile(sorted, 50), Statistics.percentile(sorted, 99), sorted.first!, sorted.last!, floor,
        Statistics.percentile(sorted, 50) / floor))
  }

  /// Datagrams to one node's port, as fast as one sender manages for
  /// `seconds`, per kind; the node's CPU per datagram above its idle cost.
  static func flood(seconds: Double) async throws {
    let cluster = try LocalCluster(options: LocalCluster.Options(resourcesYAML: ""))
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { $0.leader != nil }
    let port = cluster.ports["alpha"]!
    let config = try ConfigLoader.load(path: cluster.configPath)
    let key = try ClusterKey.load(path: config.cluster.keyFile, clusterName: config.cluster.name)
    let beta = PacketSealer(protection: .encrypted, local: NodeID(2), current: key)
    let heartbeat = Packet(
      header: PacketHeader(sender: NodeID(2), receiver: NodeID(1), incarnation: 1, sequence: 1),
      message: .heartbeat(Heartbeat(membership: MembershipBeat(term: 1, leader: nil, heard: [], members: []))))
    let sealed = try beta.seal(heartbeat)
    var badTag = sealed
    badTag[badTag.count - 1] ^= 1
    var stranger = sealed
    stranger[19] = 99  // sender id 99: nobody in the cluster
    let kinds: [(String, [UInt8])] = [
      ("not a hactl packet (bad magic)", Array(repeating: 0x41, count: sealed.count)),
      ("valid header, unknown sender", stranger),
      ("valid header, known sender, bad tag (one AEAD open)", badTag),
    ]
    let sender = try LoopbackSender()
    func idleCPU() async throws -> Double {
      let before = cluster.cpuSeconds("alpha") ?? 0
      try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
      return (cluster.cpuSeconds("alpha") ?? 0) - before
    }
    let idle = try await idleCPU()
    print("")
    print(
      "| flood of \(sealed.count)-byte datagrams to one node | sent/s | refused by the node/s | node CPU µs per refused datagram |"
    )
    print("|---|---|---|---|")
    func refused() async throws -> Int {
      let traffic = try await cluster.status(via: "alpha").traffic!
      return traffic.malformed + traffic.unknownSender + traffic.failedAuthentication
    }
    for (name, datagram) in kinds {
      let refusedBefore = try await refused()
      let before = cluster.cpuSeconds("alpha") ?? 0
      let started = ContinuousClock.now
      var sent = 0
      while (ContinuousClock.now - started).seconds < seconds {
        for _ in 0..<200 where sender.send(datagram, to: port) { sent += 1 }
      }
      let elapsed = (ContinuousClock.now - started).seconds
      let used = (cluster.cpuSeconds("alpha") ?? 0) - before - idle * elapsed / seconds
      try await Task.sleep(for: .milliseconds(300))
      // The kernel drops what the node cannot read in time: count what it refused.
      let processed = max(1, try await refused() - refusedBefore)
      print(
        String(
          format: "| %@ | %.0f | %.0f | %.2f |", name, Double(sent) / elapsed, Double(processed) / elapsed,
          max(0, used) / Double(processed) * 1e6))
    }
  }
}

import Foundation
import HactlConfig
import HactlControl
import HactlModel
import Synchronization

/// A cluster of real `hactld` processes on 127.0.0.1, each with its own port,
/// state folder, control socket and agent runtime folder, all under one
/// temporary folder that `shutdown()` removes. It signals only the processes
/// it started, by pid.
public final class LocalCluster: @unchecked Sendable {
  public struct Options: Sendable {
    public var name = "demo"
    public var nodes = ["alpha", "beta"]
    public var witness: String? = "arbiter"
    public var heartbeatInterval = "200ms"
    public var deadTime = "1s"
    /// The `resources:` section, YAML, indented by two spaces per level.
    public var resourcesYAML: String
    public var extraClusterYAML = ""
    /// Top-level sections after `resources:` (e.g. `fencing:`).
    public var extraYAML = ""
    /// Per member: its addresses, one per link, when not 127.0.0.1.
    public var addresses: [String: [String]] = [:]
    /// Per member: a command that runs the daemon, e.g. `ip netns exec NS`.
    public var launchPrefix: [String: [String]] = [:]
    public init(resourcesYAML: String) { self.resourcesYAML = resourcesYAML }
  }

  public struct LabError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
  }

  public let folder: String
  public let options: Options
  public let daemonPath: String
  public let configPath: String
  public let members: [String]
  /// Each member's UDP port on 127.0.0.1.
  public let ports: [String: UInt16]
  private var processes: [String: Process] = [:]
  private let lock = NSLock()

  public init(options: Options, daemonPath: String? = nil, agentsPath: String? = nil) throws {
    self.options = options
    self.daemonPath = try daemonPath ?? Self.locateDaemon()
    let agents = try agentsPath ?? Self.locateAgents()
    let members = options.nodes + (options.witness.map { [$0] } ?? [])
    let folder = try Self.makeFolder()
    do {
      // A half-made folder must not outlive a failed setup.
      ports = try Self.prepare(folder: folder, options: options, members: members, agents: agents)
    } catch {
      try? FileManager.default.removeItem(atPath: folder)
      throw error
    }
    self.folder = folder
    self.members = members
    configPath = folder + "/cluster.yaml"
  }

  /// Writes the OCF root, key, configuration and runtime folders; returns each member's port.
  static func prepare(folder: String, options: Options, members: [String], agents: String) throws -> [String: UInt16] {
    try FileManager.default.createDirectory(atPath: folder + "/ocf/resource.d", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: folder + "/ocf/resource.d/hactl", withDestinationPath: agents)
    // Let tests use the ClusterLabs agents unmodified when they are installed.
    if FileManager.default.fileExists(atPath: "/usr/lib/ocf/resource.d/heartbeat") {
      try FileManager.default.createSymbolicLink(
        atPath: folder + "/ocf/resource.d/heartbeat", withDestinationPath: "/usr/lib/ocf/resource.d/heartbeat")
      try FileManager.default.createSymbolicLink(atPath: folder + "/ocf/lib", withDestinationPath: "/usr/lib/ocf/lib")
    }
    do {
      try KeyFile.generate(at: folder + "/authkey", replace: false)
    } catch {
      throw LabError(error.description)
    }
    let ports = try freeUDPPorts(count: members.count)
    var yaml = """
      cluster:
        name: \(options.name)
        key_file: authkey
        heartbeat_interval: \(options.heartbeatInterval)
        dead_time: \(options.deadTime)
        ocf_root: ocf
      \(options.extraClusterYAML)
      nodes:

      """
    for (index, node) in options.nodes.enumerated() {
      yaml +=
        "  - { name: \(node), id: \(index + 1), \(addressField(options.addresses[node])), port: \(ports[index]) }\n"
    }
    if let witness = options.witness {
      yaml +=
        "witness: { name: \(witness), id: \(options.nodes.count + 1), \(addressField(options.addresses[witness])), "
        + "port: \(ports.last!) }\n"
    }
    yaml += options.resourcesYAML.isEmpty ? "resources: []\n" : "resources:\n" + options.resourcesYAML + "\n"
    yaml += options.extraYAML
    try yaml.write(toFile: folder + "/cluster.yaml", atomically: true, encoding: .utf8)
    for member in members {
      try FileManager.default.createDirectory(
        atPath: runtimeFolder(in: folder, member), withIntermediateDirectories: true)
    }
    return Dictionary(uniqueKeysWithValues: zip(members, ports))
  }

  static func addressField(_ addresses: [String]?) -> String {
    guard let addresses, !addresses.isEmpty else { return "address: 127.0.0.1" }
    return addresses.count == 1 ? "address: \(addresses[0])" : "addresses: [\(addresses.joined(separator: ", "))]"
  }

  public func socketPath(_ member: String) -> String { folder + "/\(member).sock" }
  public func logPath(_ member: String) -> String { folder + "/\(member).log" }
  public func stateFolder(_ member: String) -> String { folder + "/state-\(member)" }
  public func runtimeFolder(_ member: String) -> String { Self.runtimeFolder(in: folder, member) }
  static func runtimeFolder(in folder: String, _ member: String) -> String { folder + "/run-\(member)" }

  /// Starts (or restarts) one member's daemon; output goes to its log.
  public func start(_ member: String) throws {
    let process = Process()
    let prefix = options.launchPrefix[member] ?? []
    process.executableURL = URL(fileURLWithPath: prefix.first ?? daemonPath)
    var arguments =
      Array(prefix.dropFirst()) + (prefix.isEmpty ? [] : [daemonPath]) + [
        "--config", configPath, "--node", member, "--state", stateFolder(member), "--socket", socketPath(member),
        "--agent-runtime", runtimeFolder(member),
      ]
    if member == options.witness { arguments.append("--witness") }
    process.arguments = arguments
    if !FileManager.default.fileExists(atPath: logPath(member)) {
      FileManager.default.createFile(atPath: logPath(member), contents: nil)
    }
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(member)))
    log.seekToEndOfFile()
    process.standardOutput = log
    process.standardError = log
    process.standardInput = FileHandle.nullDevice
    try process.run()
    lock.withLock { processes[member] = process }
  }

  public func startAll() throws {
    for member in members { try start(member) }
  }

  /// CPU seconds (user + system) the member's daemon has used so far, to the
  /// nanosecond: the scheduler's own count for every thread
  /// (`/proc/PID/task/*/schedstat`), since `/proc/PID/stat` counts in 10 ms
  /// ticks and an idle daemon uses a few of them a minute.
  public func cpuSeconds(_ member: String) -> Double? {
    threadRunTimes(member).map { Double($0.values.reduce(0, +)) / 1e9 }
  }

  /// Each of the member's threads' run time in nanoseconds, from the
  /// scheduler's own counters (`/proc/PID/task/TID/schedstat`).
  public func threadRunTimes(_ member: String) -> [String: UInt64]? {
    perThread(member, file: "schedstat") { $0.split(separator: " ").first.flatMap { UInt64($0) } }
  }

  /// How often each of the member's threads went to sleep and was woken
  /// (`voluntary_ctxt_switches`): an event loop counts one per wait in
  /// epoll_wait, whatever ended it, a packet, a timer or nothing.
  /// `prefix` picks threads by name (`NIO-` for the event loops).
  public func threadSleeps(_ member: String, namedLike prefix: String = "") -> [String: UInt64]? {
    perThread(member, file: "status") { text in
      guard text.hasPrefix("Name:\t\(prefix)") else { return nil }
      return
        text.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
        .flatMap { UInt64($0.dropFirst("voluntary_ctxt_switches:".count).trimmingCharacters(in: .whitespaces)) }
    }
  }

  private func perThread(_ member: String, file: String, _ value: (String) -> UInt64?) -> [String: UInt64]? {
    guard let pid = pid(member),
      let threads = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
    else { return nil }
    var values: [String: UInt64] = [:]
    for thread in threads {
      guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/\(file)", encoding: .utf8),
        let number = value(text)
      else { continue }
      values[thread] = number
    }
    return values
  }

  /// How much a per-thread count grew between two samples, counted over the
  /// threads alive at the second: a thread that exited in between takes
  /// its count with it (a sum over threads then went down, below zero).
  public static func growth(from before: [String: UInt64], to after: [String: UInt64]) -> UInt64 {
    after.reduce(0) { $0 + ($1.value &- min(before[$1.key] ?? 0, $1.value)) }
  }

  /// CPU seconds between two samples of `threadRunTimes`.
  public static func cpuSeconds(from before: [String: UInt64], to after: [String: UInt64]) -> Double {
    Double(growth(from: before, to: after)) / 1e9
  }

  public func pid(_ member: String) -> Int32? {
    lock.withLock { processes[member].flatMap { $0.isRunning ? $0.processIdentifier : nil } }
  }

  /// The member's daemon's exit status once it has exited by itself within
  /// `timeout`; nil while it still runs.
  public func exitStatus(_ member: String, within timeout: Duration) async -> Int32? {
    guard let process = lock.withLock({ processes[member] }) else { return nil }
    await Self.waitForExit(of: process, within: timeout)
    return process.isRunning ? nil : process.terminationStatus
  }

  /// Polls with the task asleep: tests run in parallel on a cooperative
  /// pool as wide as the machine has cores, and a thread blocked here for
  /// seconds would starve every other test's tasks.
  static func waitForExit(of process: Process, within timeout: Duration) async {
    let deadline = ContinuousClock.now + timeout
    while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
  }

  /// Sends a signal to one member's daemon (only ever a pid we started).
  @discardableResult
  public func signal(_ member: String, _ signal: Int32) -> Bool {
    guard let pid = pid(member) else { return false }
    return kill(pid, signal) == 0
  }

  /// SIGKILL, then waits until the process is gone.
  public func crash(_ member: String) {
    guard let process = lock.withLock({ processes[member] }) else { return }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
  }

  /// SIGTERM (graceful: resources stop), SIGKILL after `timeout`.
  public func stop(_ member: String, timeout: Duration = .seconds(30)) async {
    guard let process = lock.withLock({ processes[member] }), process.isRunning else { return }
    kill(process.processIdentifier, SIGCONT)
    kill(process.processIdentifier, SIGTERM)
    await Self.waitForExit(of: process, within: timeout)
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
  }

  public func status(via member: String) async throws -> ClusterStatus {
    let response = try await ControlClient.send(.status, socketPath: socketPath(member), timeout: .seconds(5))
    guard let status = response.status else { throw LabError(response.error ?? "no status") }
    return status
  }

  /// Polls `member`'s status until `condition` holds; returns that status.
  public func waitFor(
    via member: String, timeout: Duration, every interval: Duration = .milliseconds(20),
    _ condition: @Sendable (ClusterStatus) -> Bool
  ) async throws -> ClusterStatus {
    let deadline = ContinuousClock.now + timeout
    var last: ClusterStatus?
    while ContinuousClock.now < deadline {
      if let status = try? await status(via: member) {
        last = status
        if condition(status) { return status }
      }
      try await Task.sleep(for: interval)
    }
    throw LabError(
      "condition not met within \(timeout) via \(member); last status:\n"
        + (last.map(StatusText.render) ?? "(none: daemon not answering)") + "\n--- log of \(member):\n"
        + tail(of: logPath(member)))
  }

  /// Polls `condition` (a file, a log line) until it holds.
  public func waitUntil(timeout: Duration, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
      guard ContinuousClock.now < deadline else { throw LabError("condition not met within \(timeout)") }
      try await Task.sleep(for: .milliseconds(50))
    }
  }

  public func migrate(_ resource: String, to node: String?, via member: String) async throws -> ControlResponse {
    try await ControlClient.send(.migrate(resource: resource, node: node), socketPath: socketPath(member))
  }

  public func tail(of path: String, lines: Int = 40) -> String {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
  }

  /// Stops every daemon, kills what their agents left running (pids from the
  /// agents' own pid files, in folders this cluster made), removes the folder.
  /// It blocks (it runs in `defer`), but only at a test's end and mostly
  /// for well under a second.
  public func shutdown(keepFolder: Bool = false) {
    let running = lock.withLock { members.compactMap { processes[$0] }.filter(\.isRunning) }
    for process in running {
      kill(process.processIdentifier, SIGCONT)
      kill(process.processIdentifier, SIGTERM)
    }
    let deadline = ContinuousClock.now + .seconds(10)
    while running.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(10_000) }
    for process in running {
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
      process.waitUntilExit()
    }
    for member in members {
      let folder = runtimeFolder(member)
      for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where file.hasSuffix(".pid") {
        if let text = try? String(contentsOfFile: folder + "/" + file, encoding: .utf8),
          let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1
        {
          kill(pid, SIGKILL)
        }
      }
    }
    // HACTL_LAB_KEEP=1 keeps the folders of tests and benchmarks for a post-mortem.
    let keep = keepFolder || ProcessInfo.processInfo.environment["HACTL_LAB_KEEP"] == "1"
    if !keep { try? FileManager.default.removeItem(atPath: folder) }
  }

  // MARK: Locating things

  /// `hactld`: $HACTLD, next to this executable, or in the package's build folder.
  public static func locateDaemon() throws -> String {
    if let path = ProcessInfo.processInfo.environment["HACTLD"] { return path }
    var candidates: [String] = []
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var folder = executable.deletingLastPathComponent()
    for _ in 0..<4 {
      candidates.append(folder.appendingPathComponent("hactld").path)
      folder = folder.deletingLastPathComponent()
    }
    if let root = packageRoot() {
      candidates += [root + "/.build/debug/hactld", root + "/.build/release/hactld"]
    }
    candidates.append("/usr/sbin/hactld")
    if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
    throw LabError(
      "cannot find hactld (looked in \(candidates.joined(separator: ", "))); run 'swift build' or set HACTLD")
  }

  /// `hactld`, building it first when this is a package checkout without it
  /// (`swift run hactl demo` builds only `hactl`).
  public static func locateOrBuildDaemon() throws -> String {
    if let found = try? locateDaemon() { return found }
    guard let root = packageRoot() else { return try locateDaemon() }
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    let configuration = executable.contains("/release/") ? "release" : "debug"
    FileHandle.standardError.write(
      Data("hactl: building hactld first (swift build -c \(configuration) --product hactld)\n".utf8))
    let build = Process()
    build.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    build.arguments = ["swift", "build", "-c", configuration, "--product", "hactld"]
    build.currentDirectoryURL = URL(fileURLWithPath: root)
    try build.run()
    build.waitUntilExit()
    guard build.terminationStatus == 0 else {
      throw LabError("building hactld failed (exit \(build.terminationStatus))")
    }
    return try locateDaemon()
  }

  /// This project's agents: $HACTL_AGENTS, `resource-agents/hactl` in the
  /// package, or the installed provider folder.
  public static func locateAgents() throws -> String {
    if let path = ProcessInfo.processInfo.environment["HACTL_AGENTS"] { return path }
    var candidates: [String] = []
    if let root = packageRoot() { candidates.append(root + "/resource-agents/hactl") }
    candidates.append("/usr/lib/ocf/resource.d/hactl")
    if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/Marker") }) {
      return found
    }
    throw LabError("cannot find hactl's agents (looked in \(candidates.joined(separator: ", "))); set HACTL_AGENTS")
  }

  /// The folder holding Package.swift, above the executable or the cwd.
  public static func packageRoot() -> String? {
    let starts = [
      URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
      URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
    ]
    for start in starts {
      var folder = start
      for _ in 0..<8 {
        if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path),
          FileManager.default.fileExists(atPath: folder.appendingPathComponent("resource-agents").path)
        {
          return folder.path
        }
        folder = folder.deletingLastPathComponent()
      }
    }
    return nil
  }

  static func makeFolder() throws -> String {
    var template = Array((NSTemporaryDirectory() + "hactl-lab-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw LabError("cannot create a temporary folder") }
    return String(cString: made)
  }

  /// Ports handed out in this process: a port released here is not bound
  /// again until its daemon starts, so two clusters made at once in one
  /// test run must never be handed the same one.
  static let handedOut = Mutex<Set<UInt16>>([])

  /// Ports the kernel says are free now on 127.0.0.1 (bound, read, released).
  /// Free UDP ports on 127.0.0.1 below the kernel's ephemeral range: the
  /// daemons' sending sockets take ephemeral ports (about N² of them for N
  /// members), and one of them taking a member's port before that member
  /// starts would keep it from binding (a 32-node benchmark run lost a node
  /// that way).
  public static func freeUDPPorts(count: Int) throws -> [UInt16] {
    let ephemeralStart =
      (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
      .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
    let range = 10_000..<max(10_001, min(ephemeralStart, 65_536))
    var ports: [UInt16] = []
    var sockets: [Int32] = []
    defer { for socket in sockets { close(socket) } }
    var attempts = 0
    while ports.count < count {
      attempts += 1
      guard attempts < count * 100 else { throw LabError("no \(count) free UDP ports in \(range)") }
      let port = UInt16(Int.random(in: range))
      guard !ports.contains(port), handedOut.withLock({ $0.insert(port).inserted }) else { continue }
      let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
      guard fd >= 0 else { throw LabError("socket(): \(String(cString: strerror(errno)))") }
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      address.sin_port = port.bigEndian
      let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
          bind(fd, raw, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
      }
      guard bound else {
        close(fd)
        continue
      }
      sockets.append(fd)
      ports.append(port)
    }
    return ports
  }

}

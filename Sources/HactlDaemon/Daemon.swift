import Foundation
import HactlConfig
import HactlControl
import HactlController
import HactlExecutor
import HactlMembership
import HactlModel
import HactlTransport
import Logging
import NIOPosix
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
  import Glibc
#endif

public struct DaemonOptions: Sendable {
  public var configPath: String
  public var nodeName: String
  public var witness: Bool
  public var stateFolder: String
  public var socketPath: String
  public var ocfRoot: String?
  /// HA_RSCTMP for agents; nil leaves the agents' own default.
  public var agentRuntimeFolder: String?
  public var verbose: Bool

  public init(
    configPath: String, nodeName: String, witness: Bool, stateFolder: String, socketPath: String,
    ocfRoot: String?, agentRuntimeFolder: String? = nil, verbose: Bool
  ) {
    self.configPath = configPath
    self.nodeName = nodeName
    self.witness = witness
    self.stateFolder = stateFolder
    self.socketPath = socketPath
    self.ocfRoot = ocfRoot
    self.agentRuntimeFolder = agentRuntimeFolder
    self.verbose = verbose
  }

  public static let defaultStateFolder = "/var/lib/hactl"
}

/// Starts `hactld`: validates everything it can before touching the network,
/// so a bad configuration or key fails at once with a clear message.
public enum Daemon {
  public struct StartupError: Error, CustomStringConvertible {
    public var description: String
    public var exitCode: Int32
  }

  public static func run(_ options: DaemonOptions) async -> Int32 {
    LoggingSystem.bootstrap { label in
      var handler = StreamLogHandler.standardError(label: label)
      handler.logLevel = options.verbose ? .debug : .info
      return handler
    }
    var logger = Logger(label: "hactld[\(options.nodeName)]")
    logger.logLevel = options.verbose ? .debug : .info
    do {
      try await runChecked(options, logger: logger)
      return 0
    } catch let error as StartupError {
      FileHandle.standardError.write(Data("hactld: \(error.description)\n".utf8))
      return error.exitCode
    } catch {
      FileHandle.standardError.write(Data("hactld: \(error)\n".utf8))
      return 1
    }
  }

  static func runChecked(_ options: DaemonOptions, logger: Logger) async throws {
    let file: (text: String, config: ClusterConfig)
    do {
      file = try ConfigLoader.loadWithText(path: options.configPath)
    } catch {
      throw StartupError(description: "invalid configuration:\n\(error.description)", exitCode: 2)
    }
    let store: StateStore
    do {
      store = try StateStore(folder: options.stateFolder)
    } catch {
      throw StartupError(description: "\(error)", exitCode: 2)
    }
    do {
      try store.lock()
    } catch {
      throw StartupError(description: "\(error)", exitCode: 1)
    }
    let (config, document) = try chooseConfiguration(file: file, store: store, options: options, logger: logger)
    guard let member = config.member(named: options.nodeName) else {
      let names = config.voters.map(\.name).joined(separator: ", ")
      throw StartupError(
        description: "no node or witness named '\(options.nodeName)' in \(options.configPath) (members: \(names))",
        exitCode: 2)
    }
    if options.witness && member.kind != .witness {
      throw StartupError(description: "'\(member.name)' is a node, not the witness: drop --witness", exitCode: 2)
    }
    if !options.witness && member.kind == .witness {
      throw StartupError(description: "'\(member.name)' is the witness: start it with --witness", exitCode: 2)
    }
    let keys: (current: ClusterKey, next: ClusterKey?)
    do {
      keys = try loadKeys(config.cluster)
    } catch {
      throw StartupError(description: error.description, exitCode: 2)
    }
    let sealer = PacketSealer(
      protection: config.cluster.encryption ? .encrypted : .authenticated, local: member.id, current: keys.current,
      next: keys.next)
    let election: ElectionRecord
    let retiring: [ResourceSpec]
    let incarnation: UInt64
    do {
      election = try store.loadElection()
      retiring = try store.loadRetiring()
      incarnation = try store.nextIncarnation()
    } catch {
      throw StartupError(description: "\(error)", exitCode: 2)
    }

    let group = MultiThreadedEventLoopGroup.singleton
    var peers: [NodeID: [Endpoint]] = [:]
    for peer in config.voters where peer.id != member.id { peers[peer.id] = peer.links }
    let transport: UDPTransport
    do {
      transport = try await UDPTransport.bind(links: member.links, peers: peers, sealer: sealer, loop: group.next())
    } catch {
      let addresses = member.links.map(\.description).joined(separator: ", ")
      throw StartupError(description: "cannot bind UDP \(addresses): \(error)", exitCode: 1)
    }
    let control: ControlServer
    do {
      control = try await ControlServer.bind(path: options.socketPath, group: group)
    } catch {
      await transport.close()
      throw StartupError(description: "cannot create control socket \(options.socketPath): \(error)", exitCode: 1)
    }
    // After the sockets, whose threads now exist and take it too.
    let protections = Protections.apply(realtime: config.cluster.realtime, lockMemory: config.cluster.lockMemory)
    if protections.realtime.hasPrefix("refused") || protections.memory.hasPrefix("refused") {
      logger.warning(
        "timing protections: real-time scheduling \(protections.realtime), memory \(protections.memory); a busy machine may delay heartbeats (hactld(8), TIMING)"
      )
    }
    let origin = ContinuousClock.now
    let controller = NodeController(
      config: config, local: member.id, incarnation: incarnation, election: election, now: .zero,
      document: document, configFolder: ConfigLoader.folder(of: options.configPath), retiring: retiring,
      wallTime: Int64(Date().timeIntervalSince1970))
    let core = DaemonCore(
      controller: controller, transport: transport, store: store, logger: logger,
      ocfRoot: options.ocfRoot ?? config.cluster.ocfRoot, agentRuntimeFolder: options.agentRuntimeFolder,
      agentTools: member.kind == .node ? prepareAgentTools(options, logger: logger) : nil, origin: origin,
      protections: protections)
    logger.notice(
      "\(member.kind == .witness ? "witness" : "node") \(member.name) (id \(member.id.rawValue)) on \(member.links.map(\.description).joined(separator: " and ")), control socket \(options.socketPath)"
    )
    if member.kind == .node, let watchdog = config.fencing.watchdog { try await core.openWatchdog(watchdog) }
    await core.openWakeTimer()
    let service = NodeService(core: core, transport: transport, control: control, config: config, logger: logger)
    let serviceGroup = ServiceGroup(
      services: [service], gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
      logger: logger)
    try await serviceGroup.run()
  }
}

extension Daemon {
  /// A folder of links to `hactl` named after pacemaker's commands
  /// (AgentTools.commands), for agents: `STATE/agent-tools`. Without an
  /// `hactl` beside `hactld` agents run without them, and that is logged.
  static func prepareAgentTools(_ options: DaemonOptions, logger: Logger) -> AgentTools? {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    let hactl = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("hactl").path
    guard FileManager.default.isExecutableFile(atPath: hactl) else {
      logger.warning(
        "no hactl beside hactld (\(hactl)): agents that call crm_attribute or crm_master will not find them")
      return nil
    }
    let folder = options.stateFolder + "/agent-tools"
    var info = stat()
    if lstat(folder, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR { unlink(folder) }
    mkdir(folder, 0o755)
    for command in AgentTools.commands {
      let path = folder + "/" + command
      unlink(path)
      guard symlink(hactl, path) == 0 else {
        logger.warning("cannot link \(path) to \(hactl): \(String(cString: strerror(errno)))")
        return nil
      }
    }
    let socket =
      options.socketPath.hasPrefix("/")
      ? options.socketPath : FileManager.default.currentDirectoryPath + "/" + options.socketPath
    return AgentTools(folder: folder, socketPath: socket)
  }

  /// The key file, and the next key of a rotation (`KEY_FILE.next`) when it
  /// exists (docs/wire-format.md, "Keys").
  static func loadKeys(_ cluster: ClusterSettings) throws(ClusterKey.LoadError) -> (ClusterKey, ClusterKey?) {
    let current = try ClusterKey.load(path: cluster.keyFile, clusterName: cluster.name)
    let next = try ClusterKey.load(path: cluster.keyFile + ".next", clusterName: cluster.name, optional: true)
    return (current, next)
  }

  /// The file a daemon starts from, unless it stored a replicated
  /// configuration: that one is newer (`hactl config apply` made it), and a
  /// quorum may have acknowledged it, so it wins.
  static func chooseConfiguration(
    file: (text: String, config: ClusterConfig), store: StateStore, options: DaemonOptions, logger: Logger
  ) throws -> (ClusterConfig, ConfigDocument) {
    let fromFile = ConfigDocument(version: .initial, base: .initial, text: file.text)
    let stored: ConfigDocument?
    do {
      stored = try store.loadConfig()
    } catch {
      throw StartupError(description: "\(error)", exitCode: 2)
    }
    guard let stored, stored.version > .initial else { return (file.config, fromFile) }
    let config: ClusterConfig
    do {
      config = try ConfigLoader.parse(
        stored.text, file: "\(store.configPath) (configuration \(stored.version))",
        relativeTo: ConfigLoader.folder(of: options.configPath))
    } catch {
      throw StartupError(
        description: "the stored configuration \(stored.version) is invalid:\n\(error.description)\n"
          + "move \(store.configPath) away to start from \(options.configPath); the peers hand over the newest one",
        exitCode: 2)
    }
    if stored.text != file.text {
      logger.warning(
        "\(options.configPath) differs from configuration \(stored.version) stored in \(store.configPath): running the stored one (change it with 'hactl config apply'; 'hactl config show' prints it)"
      )
    }
    return (config, stored)
  }
}

/// The one long-running service: packets, signals and the control socket
/// (the controller's own timer lives in `DaemonCore`).
/// On graceful shutdown it stops its resources before it leaves, so the
/// survivors restart them at once rather than after the dead time.
struct NodeService: Service {
  let core: DaemonCore
  let transport: UDPTransport
  let control: ControlServer
  let config: ClusterConfig
  let logger: Logger

  func run() async throws {
    try await withThrowingTaskGroup(of: Void.self) { tasks in
      tasks.addTask {
        // Packets are handled where they are read: the core runs on the
        // transport's event loop.
        await withCheckedContinuation { (deaf: CheckedContinuation<Void, Never>) in
          transport.receive(
            deliver: { arrival in core.assumeIsolated { $0.receive(arrival.packet, link: arrival.link) } },
            closed: { deaf.resume() })
        }
        guard !Task.isCancelled else { return }
        // Deaf for good: hand everything over cleanly, then let the service
        // manager restart us with a fresh socket.
        logger.critical("the UDP socket closed: stopping resources and exiting")
        let left = await core.leaveAndWait()
        if !left.isEmpty { logger.critical("may still run here: \(left.map(\.rawValue).joined(separator: ", "))") }
        exit(75)
      }
      tasks.addTask {
        // Signals that would otherwise kill the daemon on the spot (its
        // resources left running, its socket left behind) are only logged.
        for await signal in await UnixSignalsSequence(trapping: Self.loggedSignals) {
          guard signal == .sighup else {
            logger.notice("\(signal): ignored (stop hactld with SIGTERM)")
            continue
          }
          // Keys are all SIGHUP reloads: the configuration changes with
          // 'hactl config apply', never from the file behind the cluster's back.
          do {
            let (current, next) = try Daemon.loadKeys(config.cluster)
            transport.sealer.reload(current: current, next: next)
            let nextNote = next.map { ", next key \(ClusterKey.hex($0.id))" } ?? ""
            logger.notice("SIGHUP: keys reloaded: current key \(ClusterKey.hex(current.id))\(nextNote)")
          } catch {
            logger.error("SIGHUP: keys not reloaded, the old ones stay: \(error)")
          }
        }
      }
      tasks.addTask {
        try await control.serve { request in await core.control(request) }
      }
      await core.start()
      try? await gracefulShutdown()
      let left = await core.leaveAndWait()
      // One last heartbeat so the leader sees everything stopped. Its writes
      // are queued on each channel's event loop before the closes below,
      // which `transport.close()` awaits: they go out first.
      await core.tick()
      await core.stopTimer()
      tasks.cancelAll()
      await control.close()
      await transport.close()
      await core.closeWatchdog(disarm: left.isEmpty)
      guard left.isEmpty else {
        throw Daemon.StartupError(
          description: "stopped, but these may still run here (a stop failed or did not finish): "
            + left.map(\.rawValue).joined(separator: ", "),
          exitCode: 1)
      }
      logger.notice("stopped")
    }
  }

  /// Common signals with a deadly default action that mean nothing to hactld.
  static let loggedSignals: [UnixSignal] = [.sighup, .sigusr1, .sigusr2, .sigalrm]
}

/// Until the services own them, the signals they will handle are ignored:
/// one arriving during start-up must not kill a daemon that is binding its
/// sockets. Agents get default dispositions back (Subprocess resets them).
public enum EarlySignals {
  public static func ignore() {
    for signal in [SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE] { Glibc.signal(signal, SIG_IGN) }
  }
}

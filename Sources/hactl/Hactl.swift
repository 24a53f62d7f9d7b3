import ArgumentParser
import Foundation
import HactlAgents
import HactlConfig
import HactlControl
import HactlModel

/// `hactl`, or one of pacemaker's commands when called by its name.
@main
enum Entry {
  static func main() async {
    if let code = await CompatCommands.runIfCalledAsOne() { exit(code) }
    await Hactl.main()
  }
}

struct Hactl: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hactl",
    abstract: "Operate an hactl high-availability cluster.",
    discussion: "See hactl(8). Commands that talk to the cluster use the local hactld's control socket.",
    subcommands: [
      StatusCommand.self, MigrateCommand.self, BanCommand.self, ClearCommand.self, StandbyCommand.self,
      OnlineCommand.self, MaintenanceCommand.self, CleanupCommand.self, FenceCommand.self, HistoryCommand.self,
      WhyCommand.self,
      SimulateCommand.self,
      AttributeCommand.self,
      ConfigCommand.self,
      AgentCommand.self,
      KeygenCommand.self,
      DemoCommand.self,
    ])
}

struct SocketOptions: ParsableArguments {
  @Option(
    name: .long, help: "Control socket of the local hactld (default: $HACTL_SOCKET or \(ControlDefaults.socketPath)).")
  var socket: String?

  var path: String {
    socket ?? ProcessInfo.processInfo.environment[ControlDefaults.socketEnvironment] ?? ControlDefaults.socketPath
  }
}

/// Prints a one-line error and exits non-zero: what operators see on failure.
func hactlFail(_ message: String, code: Int32 = 1) -> ExitCode {
  FileHandle.standardError.write(Data("hactl: \(message)\n".utf8))
  return ExitCode(code)
}

func fetchStatus(socket: String) async throws -> ClusterStatus {
  let response: ControlResponse
  do {
    response = try await ControlClient.send(.status, socketPath: socket, timeout: .seconds(10))
  } catch {
    throw hactlFail(error.description)
  }
  guard response.ok, let status = response.status else { throw hactlFail(response.error ?? "no status in the answer") }
  return status
}

struct StatusCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status", abstract: "Show nodes, quorum, leader and where every resource runs.")

  @OptionGroup var socket: SocketOptions

  @Flag(name: .long, help: "Print the stable JSON schema (hactl.status/1) instead of text.")
  var json = false

  func run() async throws {
    let status = try await fetchStatus(socket: socket.path)
    print(json ? StatusText.json(status) : StatusText.render(status))
  }
}

struct MigrateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "migrate",
    abstract: "Move a resource to another node now; it then stays there (no constraint is left behind).")

  @Argument(help: "The resource to move.") var resource: String
  @Argument(help: "The node to move it to (default: the best other node).") var node: String?
  @OptionGroup var socket: SocketOptions

  @Flag(name: .customLong("no-wait"), help: "Return once the leader accepted the move.")
  var noWait = false

  @Option(name: .long, help: "Seconds to wait for the resource to run on its new node (at most 86400).")
  var timeout: Double = 60

  @Flag(name: .long, help: "Keep it on NODE until 'hactl clear' (an INFINITY location constraint).")
  var pin = false

  @Option(
    name: .long,
    help: "Keep it on NODE for this long, then let it go where it scores best (90s, 30m, 2h, 1d or PT1H30M).")
  var lifetime: String?

  func validate() throws {
    // Checked before anything is asked of the cluster: a NaN or 1e300 would
    // trap when turned into a deadline, after the move was accepted.
    guard timeout.isFinite, timeout > 0, timeout <= Self.longestTimeout else {
      throw ValidationError("--timeout must be a number of seconds above 0 and at most \(Int(Self.longestTimeout))")
    }
  }

  static let longestTimeout: Double = 86_400

  func run() async throws {
    if let lifetime {
      guard let node else {
        throw hactlFail(
          "--lifetime needs the node to keep it on (or ban it from a node: 'hactl ban RES NODE --lifetime')")
      }
      let until = try lifetimeEnd(lifetime)
      try await performEdit(.pin(ResourceID(resource), node: node, until: until), socket: socket.path)
      return
    }
    if pin {
      guard let node else { throw hactlFail("--pin needs the node to pin it to") }
      try await performEdit(.pin(ResourceID(resource), node: node), socket: socket.path)
      return
    }
    let before = try await fetchStatus(socket: socket.path)
    guard let original = before.resource(resource) else {
      throw hactlFail("no resource '\(resource)' in the cluster (see 'hactl status')")
    }
    let started = ContinuousClock.now
    let response: ControlResponse
    do {
      response = try await ControlClient.send(
        .migrate(resource: resource, node: node), socketPath: socket.path, timeout: .seconds(30))
    } catch {
      throw hactlFail(error.description)
    }
    guard response.ok else { throw hactlFail(response.error ?? "the move was refused") }
    print(response.message ?? "accepted")
    if noWait { return }
    let deadline = started + .milliseconds(Int64(timeout * 1000))
    while ContinuousClock.now < deadline {
      let status = try await fetchStatus(socket: socket.path)
      if let current = status.resource(resource), current.state == .started, let location = current.node,
        current.activeOn == [location], node.map({ $0 == location }) ?? (location != original.node)
      {
        let elapsed = ContinuousClock.now - started
        print("\(resource) runs on \(location) (\(String(format: "%.2f", elapsed.seconds)) s)")
        return
      }
      try await Task.sleep(for: .milliseconds(50))
    }
    throw hactlFail("\(resource) did not start on its new node within \(Int(timeout)) s; see 'hactl status'")
  }
}

struct ConfigCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "config", abstract: "Check, apply and show the cluster configuration.",
    subcommands: [Check.self, Apply.self, Show.self])

  struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "apply",
      abstract: "Replace the running configuration on every member; succeed once a quorum has stored it.",
      discussion: """
        The file is checked here first, then sent to the leader, which makes it the next version and \
        replicates it. Resources change live (new ones are probed, removed ones stopped, changed ones \
        restarted). Membership, timings and quorum settings cannot change this way. A node without \
        quorum refuses. See hactl.yaml(5), CHANGING THE CONFIGURATION.
        """)

    @Argument(help: "The new configuration file.") var file: String
    @OptionGroup var socket: SocketOptions

    func run() async throws {
      let text: String
      do {
        text = try ConfigLoader.loadWithText(path: file).text
      } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        let count = error.errors.count
        throw hactlFail("\(file): \(count) error\(count == 1 ? "" : "s"); nothing was sent", code: 2)
      }
      let response: ControlResponse
      do {
        response = try await ControlClient.send(
          .applyConfig(text: text), socketPath: socket.path, timeout: .seconds(30))
      } catch {
        throw hactlFail(error.description)
      }
      guard response.ok else { throw hactlFail(response.error ?? "the configuration was refused") }
      print("applied \(file) as configuration \(response.configVersion ?? "?"): \(response.message ?? "")")
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "show", abstract: "Print the configuration the local hactld runs (its version goes to stderr).")

    @OptionGroup var socket: SocketOptions

    func run() async throws {
      let response: ControlResponse
      do {
        response = try await ControlClient.send(.showConfig, socketPath: socket.path, timeout: .seconds(10))
      } catch {
        throw hactlFail(error.description)
      }
      guard response.ok, let text = response.message else { throw hactlFail(response.error ?? "no configuration") }
      FileHandle.standardError.write(Data("configuration \(response.configVersion ?? "?")\n".utf8))
      print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
    }
  }

  struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "check", abstract: "Validate a configuration file; list every error with file, line and field.")

    @Argument(help: "The configuration file.") var file: String
    @OptionGroup var places: AgentPlaces

    func run() async throws {
      let text: String
      let config: ClusterConfig
      do {
        (text, config) = try ConfigLoader.loadWithText(path: file)
      } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        let count = error.errors.count
        throw hactlFail("\(file): \(count) error\(count == 1 ? "" : "s")", code: 2)
      }
      let (errors, warnings) = await AgentChecks.run(
        config: config, text: text, file: file, catalog: places.catalog(defaultOCFRoot: config.cluster.ocfRoot))
      for line in errors + warnings { FileHandle.standardError.write(Data((line + "\n").utf8)) }
      guard errors.isEmpty else {
        throw hactlFail("\(file): \(errors.count) error\(errors.count == 1 ? "" : "s")", code: 2)
      }
      let witness = config.witness.map { ", witness \($0.name)" } ?? ""
      print(
        "\(file): OK: cluster \(config.cluster.name), \(config.nodes.count) nodes\(witness), \(config.resources.count) resources"
      )
    }
  }
}

/// What `hactl config check` learns from the agents installed here: each
/// resource's parameters against its agent's meta-data (errors, with the
/// place in the file), and agents that are not installed (warnings: the
/// file may be checked on a machine that runs none of it).
enum AgentChecks {
  static func run(config: ClusterConfig, text: String, file: String, catalog: AgentCatalog) async -> (
    errors: [String], warnings: [String]
  ) {
    var errors: [String] = []
    var warnings: [String] = []
    /// Each finding at its place in the file: an error, or a warning.
    func report(
      _ findings: [ParameterCheck.Finding], _ place: ResourcePositions?, _ field: String, secrets: Set<String> = []
    ) {
      for finding in findings {
        let position =
          finding.kind == .missing
          ? place?.params ?? place?.agent : place?.parameters[finding.parameter] ?? place?.params
        let location = "\(file):\(position?.line ?? 1):\(position?.column ?? 1)"
        let section = secrets.contains(finding.parameter) ? "secrets" : "params"
        let path = finding.kind == .missing ? "\(field).params" : "\(field).\(section).\(finding.parameter)"
        if finding.isError {
          errors.append("\(location): \(path): \(finding.message)")
        } else {
          warnings.append("\(location): warning: \(path): \(finding.message)")
        }
      }
    }
    let positions = ConfigLoader.resourcePositions(text, file: file)
    var metadata: [AgentRef: Result<AgentMetadata, AgentCatalog.Failure>] = [:]
    for (index, spec) in config.resources.enumerated() {
      let place = positions[spec.id.rawValue]
      let field = "resources[\(place?.index ?? index)]"
      let programs = spec.agent.programs(ocfRoot: catalog.folders.ocfRoot)
      guard programs.contains(where: { access($0, X_OK) == 0 }) else {
        warnings.append(
          "\(file): warning: \(field) '\(spec.id)': \(spec.agent) is not installed on this machine (no executable \(programs.joined(separator: " or ")))"
        )
        continue
      }
      guard spec.agent.standard == .ocf else { continue }
      if metadata[spec.agent] == nil { metadata[spec.agent] = await catalog.metadata(of: spec.agent) }
      switch metadata[spec.agent]! {
      case .failure(let failure):
        warnings.append("\(file): warning: \(field) '\(spec.id)': parameters not checked: \(failure)")
      case .success(let agentMetadata):
        report(ParameterCheck.findings(for: spec, metadata: agentMetadata), place, field)
      }
    }
    let devices = ConfigLoader.fenceDevicePositions(text, file: file)
    for (index, device) in config.fencing.devices.enumerated() {
      guard case .agent(let program) = device.program else { continue }
      let place = devices[device.id]
      let field = "fencing.devices[\(place?.index ?? index)]"
      guard access(program, X_OK) == 0 else {
        warnings.append(
          "\(file): warning: \(field) '\(device.id)': \(program) is not installed on this machine (apt-get install fence-agents?)"
        )
        continue
      }
      switch await catalog.fenceMetadata(program: program) {
      case .failure(let failure):
        warnings.append("\(file): warning: \(field) '\(device.id)': options not checked: \(failure)")
      case .success(let agentMetadata):
        report(
          ParameterCheck.findings(for: device, metadata: agentMetadata), place, field,
          secrets: Set(device.secrets.map(\.name)))
      }
    }
    return (errors, warnings)
  }
}

struct KeygenCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "keygen", abstract: "Write a new random cluster key file (mode 0600). Copy it to every member.")

  @Argument(help: "Where to write the key.") var file: String
  @Flag(name: .long, help: "Replace an existing file.") var force = false

  func run() async throws {
    do {
      try KeyFile.generate(at: file, replace: force)
    } catch {
      throw hactlFail(error.description)
    }
    print("wrote a \(KeyFile.length)-byte key to \(file) (mode 0600); copy it to every node and the witness")
  }
}

struct AttributeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "attribute",
    abstract: "Show or set node attributes (transient: gone when that node's hactld restarts).",
    discussion: "Permanent attributes live in the configuration (nodes[].attributes). See hactl(8).",
    subcommands: [Get.self, Set.self, Delete.self])

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Print a node's attribute.")
    @Argument(help: "The attribute.") var name: String
    @Option(name: .long, help: "The node (default: this one).") var node: String?
    @OptionGroup var socket: SocketOptions
    func run() async throws {
      print(try await requestMessage(.getAttribute(name: name, node: node), socket: socket.path))
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "set", abstract: "Set a transient attribute of this node (or of --node).")
    @Argument(help: "The attribute.") var name: String
    @Argument(help: "Its value.") var value: String
    @Option(help: "Another node (through the leader; it must be a member now).") var node: String?
    @OptionGroup var socket: SocketOptions
    func run() async throws {
      print(try await requestMessage(.setAttribute(name: name, value: value, node: node), socket: socket.path))
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "delete", abstract: "Delete a transient attribute of this node (or of --node).")
    @Argument(help: "The attribute.") var name: String
    @Option(help: "Another node (through the leader; it must be a member now).") var node: String?
    @OptionGroup var socket: SocketOptions
    func run() async throws {
      print(try await requestMessage(.setAttribute(name: name, value: nil, node: node), socket: socket.path))
    }
  }

}

struct WhyCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "why",
    abstract: "Say why a resource runs where it does, or is stopped, with every node's score.")
  @Argument(help: "A resource, group or clone.") var resource: String
  @OptionGroup var socket: SocketOptions
  func run() async throws {
    print(try await requestMessage(.why(resource: resource), socket: socket.path))
  }
}

/// Sends one request to the local daemon: its answer's message, or a
/// one-line error and a non-zero exit.
func requestMessage(_ request: ControlRequest, socket: String) async throws -> String {
  let response: ControlResponse
  do {
    response = try await ControlClient.send(request, socketPath: socket, timeout: .seconds(10))
  } catch {
    throw hactlFail(error.description)
  }
  guard response.ok else { throw hactlFail(response.error ?? "refused") }
  return response.message ?? ""
}

import Foundation
import HactlControl

/// pacemaker's crm_attribute and crm_master, for resource agents that call
/// them (Stateful, linbit's drbd, mysql), answered by the local hactld's
/// node-attribute store. `hactl` answers as them when it is called by
/// their name (hactld links them in the folder it puts first on agents'
/// PATH and in HA_SBIN_DIR). The options those agents use are implemented
/// (hactl(8), COMPATIBILITY COMMANDS); any other is refused on stderr with
/// pacemaker's exit code for an unsupported feature.
enum CompatCommands {
  /// pacemaker's exit codes (crm_exit_t).
  static let usage: Int32 = 64
  static let unsupported: Int32 = 3
  static let noSuchAttribute: Int32 = 105
  static let failed: Int32 = 1

  static func runIfCalledAsOne() async -> Int32? {
    let name = URL(fileURLWithPath: CommandLine.arguments.first ?? "").lastPathComponent
    let arguments = Array(CommandLine.arguments.dropFirst())
    switch name {
    case "crm_attribute", "crm_master": return await run(name, arguments)
    case "attrd_updater": return await attrdUpdater(arguments)
    case "crm_node": return await crmNode(arguments)
    case "crm_resource": return await crmResource(arguments)
    default: return nil
    }
  }

  /// The local hactld's control socket, as agents are told it.
  static var socket: String {
    ProcessInfo.processInfo.environment[ControlDefaults.socketEnvironment] ?? ControlDefaults.socketPath
  }

  /// Sends one request; the answer, or the exit code already complained of.
  /// `unsetIsQuiet`: a name that is not set is not complained of (a query
  /// with a default to print instead).
  static func ask(_ command: String, _ request: ControlRequest, unsetIsQuiet: Bool = false) async -> Result<
    ControlResponse, ExitCode
  > {
    let response: ControlResponse
    do {
      response = try await ControlClient.send(request, socketPath: socket, timeout: .seconds(10))
    } catch {
      return .failure(ExitCode(complain(command, "\(error)", failed)))
    }
    guard response.ok else {
      let error = response.error ?? "refused"
      guard !error.contains("is not set") else {
        return .failure(ExitCode(unsetIsQuiet ? noSuchAttribute : complain(command, error, noSuchAttribute)))
      }
      return .failure(ExitCode(complain(command, error, failed)))
    }
    return .success(response)
  }

  struct ExitCode: Error {
    var code: Int32
    init(_ code: Int32) { self.code = code }
  }

  struct Parsed {
    enum Action {
      case update(String)
      case delete
      case query
    }
    var action = Action.query
    var name: String?
    var node: String?
    var lifetime = "reboot"
    var quiet = false
    /// `--type crm_config`: a cluster property, not a node attribute.
    var clusterProperty = false
    /// What a query answers when the attribute is not set (`-d`).
    var fallback: String?
  }

  static func run(_ command: String, _ arguments: [String]) async -> Int32 {
    let environment = ProcessInfo.processInfo.environment
    var parsed = Parsed()
    var index = 0
    func value(_ option: String) -> String? {
      if let equals = arguments[index].firstIndex(of: "="), arguments[index].hasPrefix("--") {
        return String(arguments[index][arguments[index].index(after: equals)...])
      }
      index += 1
      return index < arguments.count ? arguments[index] : nil
    }
    // crm_master's own resource name, or crm_attribute -p's: the promotion
    // score of the resource this agent runs (a clone's number dropped).
    let resource = environment["OCF_RESOURCE_INSTANCE"].map { instance in
      instance.split(separator: ":").first.map(String.init) ?? instance
    }
    if command == "crm_master" { parsed.name = resource.map { "master-\($0)" } }
    while index < arguments.count {
      let argument = arguments[index]
      let option = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
      switch option {
      case "-v", "--update", "--attr-value":
        guard let text = value(option) else { return complain(command, "\(option) needs a value", usage) }
        parsed.action = .update(text)
      case "-D", "--delete", "--delete-attr": parsed.action = .delete
      case "-G", "--query", "--get-value": parsed.action = .query
      case "-q", "--quiet": parsed.quiet = true
      case "-n", "--name", "--attr-name":
        guard let text = value(option) else { return complain(command, "\(option) needs a name", usage) }
        parsed.name = text
      case "-N", "--node":
        guard let text = value(option) else { return complain(command, "\(option) needs a node", usage) }
        parsed.node = text
      case "-l", "--lifetime":
        guard let text = value(option) else { return complain(command, "\(option) needs a lifetime", usage) }
        parsed.lifetime = text
      case "-t", "--type":
        guard let text = value(option) else { return complain(command, "\(option) needs a type", usage) }
        switch text {
        case "status": parsed.lifetime = "reboot"
        case "nodes": parsed.lifetime = "forever"
        case "crm_config": parsed.clusterProperty = true
        default:
          return complain(
            command, "--type \(text) is not supported: node attributes (status, nodes) and crm_config only",
            unsupported)
        }
      case "-s", "--set-name":
        // Which set of a section holds the name: hactl keeps one per scope.
        guard value(option) != nil else { return complain(command, "\(option) needs a set name", usage) }
      case "-d", "--default":
        guard let text = value(option) else { return complain(command, "\(option) needs a value", usage) }
        parsed.fallback = text
      case "-p", "--promotion":
        let named = argument.contains("=") ? value(option) : nil
        guard let target = named ?? resource else {
          return complain(command, "--promotion needs a resource (OCF_RESOURCE_INSTANCE is not set)", usage)
        }
        parsed.name = "master-\(target)"
      case "-r", "--resource", "--rsc-id":
        guard let text = value(option) else { return complain(command, "\(option) needs a resource", usage) }
        parsed.name = command == "crm_master" ? "master-\(text)" : parsed.name
      case "-i", "--id", "-z", "--utilization", "--output-as":
        return complain(command, "\(option) is not supported by hactl", unsupported)
      case "-V", "--verbose": break
      default:
        return complain(command, "unknown option '\(argument)'", usage)
      }
      index += 1
    }
    guard let name = parsed.name else { return complain(command, "no attribute name (-n NAME)", usage) }
    let request: ControlRequest
    let scope: String
    switch (parsed.action, parsed.clusterProperty) {
    case (.query, true):
      request = .getProperty(name: name)
      scope = "crm_config"
    case (.query, false):
      request = .getAttribute(name: name, node: parsed.node)
      scope = parsed.lifetime == "forever" ? "nodes" : "status"
    case (.update(let text), true):
      request = .edit(.property(name: name, value: text))
      scope = "crm_config"
    case (.delete, true):
      request = .edit(.property(name: name, value: nil))
      scope = "crm_config"
    case (.update, false), (.delete, false):
      let value: String?
      if case .update(let text) = parsed.action { value = text } else { value = nil }
      let local = environment["OCF_RESKEY_CRM_meta_on_node"] ?? localHostName()
      switch parsed.lifetime {
      case "forever", "nodes":
        // Kept in the configuration, which every node holds: any node's.
        request = .edit(.nodeAttribute(node: parsed.node ?? local, name: name, value: value))
        scope = "nodes"
      case "reboot", "status":
        let other = parsed.node.flatMap { $0 == local || $0 == localHostName() ? nil : $0 }
        request = .setAttribute(name: name, value: value, node: other)
        scope = "status"
      default:
        return complain(command, "unknown lifetime '\(parsed.lifetime)' (reboot or forever)", usage)
      }
    }
    let response: ControlResponse
    let queryWithDefault = parsed.fallback != nil && { if case .query = parsed.action { true } else { false } }()
    switch await ask(command, request, unsetIsQuiet: queryWithDefault) {
    case .failure(let exit):
      guard case .query = parsed.action, let fallback = parsed.fallback, exit.code == noSuchAttribute else {
        return exit.code
      }
      response = ControlResponse(ok: true, message: fallback)
    case .success(let answer): response = answer
    }
    if case .query = parsed.action {
      let text = response.message ?? ""
      print(parsed.quiet ? text : "scope=\(scope)  name=\(name) value=\(text)")
    }
    return 0
  }

  static func complain(_ command: String, _ message: String, _ code: Int32) -> Int32 {
    FileHandle.standardError.write(Data("\(command): \(message)\n".utf8))
    return code
  }

  static func localHostName() -> String {
    ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
  }
}

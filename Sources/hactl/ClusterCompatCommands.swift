import Foundation
import HactlControl
import HactlModel

/// pacemaker's attrd_updater, crm_node and crm_resource --locate, with the
/// options that resource-agents' mariadb, mysql and rabbitmq agents use
/// (hactl(8), COMPATIBILITY COMMANDS); any other option is refused on
/// stderr with pacemaker's exit code for an unsupported feature.
extension CompatCommands {
  /// Reads `arguments` as options: each handler gets the option and a way
  /// to take its value; it returns an exit code to stop with, or nil.
  static func options(
    _ command: String, _ arguments: [String], _ handle: (String, () -> String?) -> Int32?
  ) -> Int32? {
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      let option = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
      let value: () -> String? = {
        if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
          return String(argument[argument.index(after: equals)...])
        }
        index += 1
        return index < arguments.count ? arguments[index] : nil
      }
      if let code = handle(option, value) { return code }
      index += 1
    }
    return nil
  }

  /// `attrd_updater -n NAME (-U VALUE | -D | -Q) [-N NODE] [-p] [-l reboot]`.
  /// Queries print `name="NAME" host="NODE" value="VALUE"`, which agents
  /// `eval`: the value is escaped for a double-quoted shell word.
  static func attrdUpdater(_ arguments: [String]) async -> Int32 {
    let command = "attrd_updater"
    var name: String?
    var node: String?
    var action = Parsed.Action.query
    let stop = options(command, arguments) { option, value in
      switch option {
      case "-n", "--name":
        guard let text = value() else { return complain(command, "\(option) needs a name", usage) }
        name = text
      case "-N", "--node":
        guard let text = value() else { return complain(command, "\(option) needs a node", usage) }
        node = text
      case "-U", "--update", "-B", "--update-both":
        guard let text = value() else { return complain(command, "\(option) needs a value", usage) }
        action = .update(text)
      case "-D", "--delete": action = .delete
      case "-Q", "--query": action = .query
      case "-p", "--private", "-q", "--quiet": break
      case "-l", "--lifetime":
        guard let text = value(), ["reboot", "status"].contains(text) else {
          return complain(command, "only the lifetime reboot is supported (transient node attributes)", unsupported)
        }
      case "-d", "--delay":
        guard value() != nil else { return complain(command, "\(option) needs a delay", usage) }
      default:
        return complain(command, "option '\(option)' is not supported by hactl", unsupported)
      }
      return nil
    }
    if let stop { return stop }
    guard let name else { return complain(command, "no attribute name (-n NAME)", usage) }
    switch action {
    case .query:
      switch await ask(command, .getAttribute(name: name, node: node)) {
      case .failure(let exit): return exit.code
      case .success(let response):
        let host = node ?? ProcessInfo.processInfo.environment["OCF_RESKEY_CRM_meta_on_node"] ?? localHostName()
        print(
          "name=\"\(shellQuoted(name))\" host=\"\(shellQuoted(host))\" value=\"\(shellQuoted(response.message ?? ""))\""
        )
        return 0
      }
    case .update, .delete:
      let local = ProcessInfo.processInfo.environment["OCF_RESKEY_CRM_meta_on_node"] ?? localHostName()
      var value: String?
      if case .update(let text) = action { value = text }
      // Another node's goes through the leader to that node.
      let other = node.flatMap { $0 == local || $0 == localHostName() ? nil : $0 }
      switch await ask(command, .setAttribute(name: name, value: value, node: other)) {
      case .failure(let exit): return exit.code
      case .success: return 0
      }
    }
  }

  /// `crm_node -n | -i | -l | -p | -q`: this node's name or id, the
  /// cluster's nodes (`ID NAME member|lost`), this partition's members on
  /// one line, or 1/0 for quorum.
  static func crmNode(_ arguments: [String]) async -> Int32 {
    let command = "crm_node"
    enum Question { case name, id, list, partition, quorum }
    var question: Question?
    let stop = options(command, arguments) { option, _ in
      switch option {
      case "-n", "--name": question = .name
      case "-i", "--cluster-id": question = .id
      case "-l", "--list": question = question == .partition ? .partition : .list
      case "-p", "--partition": question = .partition
      case "-q", "--quorum": question = .quorum
      case "-V", "--verbose": break
      default: return complain(command, "option '\(option)' is not supported by hactl", unsupported)
      }
      return nil
    }
    if let stop { return stop }
    guard let question else { return complain(command, "give -n, -i, -l, -p or -q", usage) }
    let status: ClusterStatus
    switch await ask(command, .status) {
    case .failure(let exit): return exit.code
    case .success(let response):
      guard let answer = response.status else { return complain(command, "no status in the answer", failed) }
      status = answer
    }
    let nodes = status.nodes.filter { $0.kind == .node }
    switch question {
    case .name:
      print(status.localNode)
    case .id:
      guard let local = nodes.first(where: { $0.name == status.localNode }) else {
        return complain(command, "this daemon is the witness, not a node", failed)
      }
      print(local.id)
    case .list:
      for node in nodes { print("\(node.id) \(node.name) \(node.member ? "member" : "lost")") }
    case .partition:
      print(nodes.filter(\.member).map(\.name).joined(separator: " "))
    case .quorum:
      print(status.quorum.quorate ? "1" : "0")
    }
    return 0
  }

  /// `crm_resource --locate -r RES [-Q]`: where a resource runs.
  static func crmResource(_ arguments: [String]) async -> Int32 {
    let command = "crm_resource"
    var resource: String?
    var locate = false
    var quiet = false
    let stop = options(command, arguments) { option, value in
      switch option {
      case "-W", "--locate": locate = true
      case "-r", "--resource":
        guard let text = value() else { return complain(command, "\(option) needs a resource", usage) }
        resource = text
      case "-Q", "--quiet": quiet = true
      default: return complain(command, "option '\(option)' is not supported by hactl (only --locate)", unsupported)
      }
      return nil
    }
    if let stop { return stop }
    guard locate else { return complain(command, "only --locate is supported by hactl", unsupported) }
    guard let resource else { return complain(command, "no resource (-r RESOURCE)", usage) }
    switch await ask(command, .status) {
    case .failure(let exit): return exit.code
    case .success(let response):
      guard let found = response.status?.resource(resource) else {
        return complain(command, "no resource '\(resource)' in the cluster", noSuchAttribute)
      }
      let promoted = Set(found.promotedOn ?? [])
      if found.activeOn.isEmpty && !quiet {
        FileHandle.standardError.write(Data("resource \(resource) is NOT running\n".utf8))
      }
      for node in found.activeOn {
        print(quiet ? node : "resource \(resource) is running on: \(node)\(promoted.contains(node) ? " Promoted" : "")")
      }
      return 0
    }
  }

  /// Escapes what a double-quoted shell word would interpret.
  static func shellQuoted(_ text: String) -> String {
    var result = ""
    for character in text {
      if "\"\\$`".contains(character) { result.append("\\") }
      result.append(character)
    }
    return result
  }
}

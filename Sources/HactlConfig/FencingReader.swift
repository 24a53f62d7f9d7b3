import HactlModel
import Yams

/// The `fencing:` section: devices and levels, every error with its place.
extension ConfigBuilder {
  static let fencingKeys = ["devices", "levels", "priority_delay", "winner", "watchdog"]
  static let watchdogKeys = ["device", "timeout"]
  static let deviceKeys = [
    "id", "agent", "hook", "params", "secrets", "hosts", "host_map", "action", "timeout", "retries", "delay",
    "random_delay_max",
  ]
  static let secretKeys = ["file", "command"]
  /// Where fence agents named without a path are found.
  static let fenceAgentFolder = "/usr/sbin"

  func fencing(_ node: Node, nodeNames: [String], _ reader: inout NodeReader) -> FencingConfig? {
    guard let fields = reader.fields(of: node, at: "fencing", allowed: Self.fencingKeys) else { return nil }
    var config = FencingConfig()
    let errorsBefore = reader.errors.count
    // Ids as written, even of devices with errors of their own, so that
    // levels naming them do not also become errors.
    var written: Set<String> = []
    if let node = fields["watchdog"],
      let settings = reader.fields(of: node, at: "fencing.watchdog", allowed: Self.watchdogKeys)
    {
      let device = settings.string("device", &reader) ?? "/dev/watchdog"
      if !Self.isCleanAbsolutePath(device) {
        reader.fail(at: settings["device"], "fencing.watchdog.device", "an absolute path without '..'")
      }
      let timeout = settings.duration("timeout", &reader, allowZero: false) ?? .seconds(5)
      if timeout < .seconds(1) || timeout > .seconds(120) {
        reader.fail(at: settings["timeout"] ?? node, "fencing.watchdog.timeout", "between 1s and 2m")
      }
      config.watchdog = FencingConfig.Watchdog(device: device, timeout: timeout)
    }
    let devices = config.watchdog == nil ? fields.required("devices", &reader) : fields["devices"]
    if let list = devices, let items = reader.list(list, at: "fencing.devices") {
      if items.isEmpty && config.watchdog == nil {
        reader.fail(at: list, "fencing.devices", "needs at least one device")
      }
      if items.count > FencingConfig.mostDevices {
        reader.fail(at: list, "fencing.devices", "at most \(FencingConfig.mostDevices) devices")
      }
      for (index, item) in items.prefix(FencingConfig.mostDevices).enumerated() {
        if let id = item.mapping?[Node("id")]?.scalar?.string { written.insert(id) }
        if let device = fenceDevice(item, at: "fencing.devices[\(index)]", nodeNames: nodeNames, &reader) {
          if config.device(device.id) != nil {
            reader.fail(at: item, "fencing.devices[\(index)].id", "device '\(device.id)' is defined twice")
          }
          config.devices.append(device)
        }
      }
    }
    if let delay = fields.duration("priority_delay", &reader, allowZero: true) {
      if delay > .seconds(600) { reader.fail(at: fields["priority_delay"], "fencing.priority_delay", "at most 10m") }
      config.priorityDelay = delay
    }
    if let winner = fields.string("winner", &reader) {
      if nodeNames.contains(winner) {
        config.winner = winner
      } else {
        reader.fail(at: fields["winner"], "fencing.winner", "'\(winner)' is not a configured node")
      }
    }
    if let levels = fields["levels"] {
      config.levels = fenceLevels(levels, devices: config.devices, written: written, nodeNames: nodeNames, &reader)
    }
    return reader.errors.count == errorsBefore ? config : nil
  }

  func fenceDevice(_ node: Node, at path: String, nodeNames: [String], _ reader: inout NodeReader) -> FenceDevice? {
    guard let fields = reader.fields(of: node, at: path, allowed: Self.deviceKeys) else { return nil }
    let errorsBefore = reader.errors.count
    let id = identifier(fields, "id", &reader)
    var program: FenceDevice.Program?
    switch (fields["agent"], fields["hook"]) {
    case (let agent?, nil):
      if let name = reader.string(agent, at: fields.path("agent")) {
        program = fenceAgent(name, at: agent, fields.path("agent"), &reader).map { .agent($0) }
      }
    case (nil, let hook?):
      if let path = reader.string(hook, at: fields.path("hook")) {
        if Self.isCleanAbsolutePath(path) {
          program = .hook(path)
        } else {
          reader.fail(at: hook, fields.path("hook"), "a hook is an absolute path without '..'")
        }
      }
    case (.some, .some):
      reader.fail(at: fields.node, path, "a device has either 'agent' or 'hook', not both")
    case (nil, nil):
      reader.fail(at: fields.node, path, "a device needs 'agent' (a fence agent) or 'hook' (a program)")
    }
    var options: [FenceOption] = []
    if let params = fields["params"] {
      for (name, value) in parameters(params, at: fields.path("params"), what: "parameter", &reader) {
        let at = params.mapping?[Node(name)] ?? params
        if FenceDevice.reservedOptions.contains(name) {
          reader.fail(at: at, fields.path("params.\(name)"), "hactld sets '\(name)' itself on every call")
        } else if FenceDevice.secretOptions.contains(name) {
          reader.fail(
            at: at, fields.path("params.\(name)"),
            "'\(name)' is a secret: put it under secrets (read from a file or a command when fencing), "
              + "never in the configuration every node keeps and shows")
        } else if !Self.fitsOneLine(value) {
          reader.fail(at: at, fields.path("params.\(name)"), "a fence agent reads one option per line: no line breaks")
        } else {
          options.append(FenceOption(name: name, value: value))
        }
      }
    }
    var secrets: [FenceSecret] = []
    if let node = fields["secrets"] {
      secrets = fenceSecrets(node, at: fields.path("secrets"), options: options, &reader)
    }
    if case .hook = program, !options.isEmpty || !secrets.isEmpty {
      reader.fail(at: fields.node, path, "a hook takes no params or secrets: it is called as HOOK TARGET ACTION")
    }
    let targets = fenceTargets(fields, nodeNames: nodeNames, &reader)
    var device = FenceDevice(
      id: id ?? "", program: program ?? .hook("/"), targets: targets ?? .nodes([]), options: options,
      secrets: secrets)
    if let action = fields.choice("action", &reader, as: FenceAction.self) { device.action = action }
    if let timeout = fields.duration("timeout", &reader, allowZero: false) {
      if timeout > .seconds(600) {
        reader.fail(at: fields["timeout"], fields.path("timeout"), "at most 10m")
      }
      device.timeout = timeout
    }
    if let retries = fields.integer("retries", &reader, in: 0...10) { device.retries = retries }
    for key in ["delay", "random_delay_max"] {
      guard let value = fields.duration(key, &reader, allowZero: true) else { continue }
      if value > .seconds(600) { reader.fail(at: fields[key], fields.path(key), "at most 10m") }
      if key == "delay" { device.delay = value } else { device.randomDelayMax = value }
    }
    guard reader.errors.count == errorsBefore, id != nil, program != nil, targets != nil else { return nil }
    return device
  }

  /// A fence agent by name (`fence_ipmilan`, in /usr/sbin) or absolute path.
  func fenceAgent(_ name: String, at node: Node, _ path: String, _ reader: inout NodeReader) -> String? {
    if name.hasPrefix("/") {
      guard Self.isCleanAbsolutePath(name) else {
        reader.fail(at: node, path, "an agent's path is absolute, without '..'")
        return nil
      }
      return name
    }
    guard name.hasPrefix("fence_"), name.count > 6,
      name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
    else {
      reader.fail(at: node, path, "a fence agent is named fence_NAME (found in /usr/sbin), or given by absolute path")
      return nil
    }
    return Self.fenceAgentFolder + "/" + name
  }

  func fenceSecrets(_ node: Node, at path: String, options: [FenceOption], _ reader: inout NodeReader)
    -> [FenceSecret]
  {
    guard let mapping = node.mapping else {
      reader.fail(at: node, path, "expected a mapping of option names to { file: PATH } or { command: TEXT }")
      return []
    }
    var secrets: [FenceSecret] = []
    for (keyNode, valueNode) in mapping {
      guard let name = keyNode.scalar?.string, !name.isEmpty,
        name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
      else {
        reader.fail(at: keyNode, path, "option names are letters, digits and '_'")
        continue
      }
      let at = "\(path).\(name)"
      if FenceDevice.reservedOptions.contains(name) {
        reader.fail(at: keyNode, at, "hactld sets '\(name)' itself on every call")
        continue
      }
      if options.contains(where: { $0.name == name }) || secrets.contains(where: { $0.name == name }) {
        reader.fail(at: keyNode, at, "'\(name)' is given twice")
        continue
      }
      guard let fields = reader.fields(of: valueNode, at: at, allowed: Self.secretKeys) else { continue }
      switch (fields.string("file", &reader), fields.string("command", &reader)) {
      case (let file?, nil):
        // Resolved now: the daemon reads it where it runs, at each call.
        let resolved = resolve(file)
        if Self.isCleanAbsolutePath(resolved) {
          secrets.append(FenceSecret(name: name, source: .file(resolved)))
        } else {
          reader.fail(at: fields["file"], "\(at).file", "a path without '..'")
        }
      case (nil, let command?):
        if command.isEmpty || command.utf8.contains(0) {
          reader.fail(at: fields["command"], "\(at).command", "a command line, run with /bin/sh -c")
        } else {
          secrets.append(FenceSecret(name: name, source: .command(command)))
        }
      default:
        reader.fail(at: valueNode, at, "give exactly one of 'file' and 'command'")
      }
    }
    return secrets
  }

  func fenceTargets(_ fields: Fields, nodeNames: [String], _ reader: inout NodeReader) -> FenceDevice.Targets? {
    switch (fields["hosts"], fields["host_map"]) {
    case (let hosts?, nil):
      guard let items = reader.list(hosts, at: fields.path("hosts")) else { return nil }
      var names: [String] = []
      for (index, item) in items.enumerated() {
        guard let name = reader.string(item, at: fields.path("hosts[\(index)]")) else { continue }
        guard nodeNames.contains(name) else {
          reader.fail(at: item, fields.path("hosts[\(index)]"), "'\(name)' is not a configured node")
          continue
        }
        names.append(name)
      }
      if items.isEmpty { reader.fail(at: hosts, fields.path("hosts"), "needs at least one node") }
      return names.count == items.count && !names.isEmpty ? .nodes(names) : nil
    case (nil, let map?):
      guard let text = reader.string(map, at: fields.path("host_map")) else { return nil }
      // pacemaker's pcmk_host_map: "node:port;node:port" (spaces and commas too).
      var ports: [String: String] = [:]
      for entry in text.split(whereSeparator: { $0 == ";" || $0 == "," || $0 == " " }) {
        let pair = entry.split(separator: ":", maxSplits: 1)
        guard pair.count == 2, !pair[1].isEmpty, Self.fitsOneLine(String(pair[1])) else {
          reader.fail(at: map, fields.path("host_map"), "'\(entry)' is not NODE:PORT")
          return nil
        }
        let node = String(pair[0])
        guard nodeNames.contains(node) else {
          reader.fail(at: map, fields.path("host_map"), "'\(node)' is not a configured node")
          return nil
        }
        guard ports[node] == nil else {
          reader.fail(at: map, fields.path("host_map"), "'\(node)' is mapped twice")
          return nil
        }
        ports[node] = String(pair[1])
      }
      guard !ports.isEmpty else {
        reader.fail(at: map, fields.path("host_map"), "maps no node (write NODE:PORT;NODE:PORT)")
        return nil
      }
      return .hostMap(ports)
    case (.some, .some):
      reader.fail(at: fields.node, fields.path("hosts"), "give either 'hosts' or 'host_map', not both")
      return nil
    case (nil, nil):
      reader.fail(at: fields.node, fields.path("hosts"), "a device needs 'hosts' or 'host_map': what it can fence")
      return nil
    }
  }

  func fenceLevels(
    _ node: Node, devices: [FenceDevice], written: Set<String>, nodeNames: [String], _ reader: inout NodeReader
  ) -> [String: [[String]]] {
    guard let mapping = node.mapping else {
      reader.fail(at: node, "fencing.levels", "expected a mapping of node names to lists of levels")
      return [:]
    }
    var result: [String: [[String]]] = [:]
    for (keyNode, value) in mapping {
      guard let target = keyNode.scalar?.string, nodeNames.contains(target) else {
        reader.fail(at: keyNode, "fencing.levels", "'\(keyNode.scalar?.string ?? "?")' is not a configured node")
        continue
      }
      let path = "fencing.levels.\(target)"
      guard let levels = reader.list(value, at: path) else { continue }
      if levels.isEmpty || levels.count > FencingConfig.mostLevels {
        reader.fail(at: value, path, "between 1 and \(FencingConfig.mostLevels) levels")
        continue
      }
      var parsed: [[String]] = []
      for (index, level) in levels.enumerated() {
        let at = "\(path)[\(index)]"
        guard let entries = reader.list(level, at: at) else { continue }
        if entries.isEmpty || entries.count > FencingConfig.mostDevicesPerLevel {
          reader.fail(at: level, at, "a level has between 1 and \(FencingConfig.mostDevicesPerLevel) devices")
          continue
        }
        var ids: [String] = []
        for (position, entry) in entries.enumerated() {
          guard let id = reader.string(entry, at: "\(at)[\(position)]") else { continue }
          guard let device = devices.first(where: { $0.id == id }) else {
            if !written.contains(id) {
              reader.fail(at: entry, "\(at)[\(position)]", "no device '\(id)' in fencing.devices")
            }
            continue
          }
          guard device.canFence(target) else {
            reader.fail(at: entry, "\(at)[\(position)]", "device '\(id)' cannot fence '\(target)' (see its hosts)")
            continue
          }
          ids.append(id)
        }
        parsed.append(ids)
      }
      result[target] = parsed
    }
    return result
  }

  static func isCleanAbsolutePath(_ path: String) -> Bool {
    path.hasPrefix("/") && !path.split(separator: "/").contains("..") && !path.utf8.contains(0) && fitsOneLine(path)
  }

  /// No line break or other control character: each option is one line.
  static func fitsOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
  }
}

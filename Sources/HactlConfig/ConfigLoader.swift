import Foundation
import HactlModel
import Synchronization
import Yams

/// Turns the YAML configuration file into a validated `ClusterConfig`.
public enum ConfigLoader {
  /// Reads and validates the file at `path`.
  public static func load(path: String) throws(ConfigErrors) -> ClusterConfig {
    try loadWithText(path: path).config
  }

  /// Reads and validates the file at `path`, keeping its text (what the
  /// cluster replicates).
  public static func loadWithText(path: String) throws(ConfigErrors) -> (text: String, config: ClusterConfig) {
    let data: Data
    switch readFile(path) {
    case .success(let bytes): data = bytes
    case .failure(let failure):
      throw ConfigErrors([
        ConfigError(file: path, line: 1, column: 1, field: "", message: "cannot read the file: \(failure.reason)")
      ])
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw ConfigErrors([
        ConfigError(file: path, line: 1, column: 1, field: "", message: "the file is not UTF-8 text")
      ])
    }
    return (text, try parse(text, file: path, relativeTo: folder(of: path)))
  }

  /// Where relative paths in the file at `path` start from.
  public static func folder(of path: String) -> String {
    URL(fileURLWithPath: path).deletingLastPathComponent().path
  }

  /// Validates configuration text. Relative paths in it (key file, OCF root)
  /// are taken relative to `folder`, the configuration file's own folder.
  public static func parse(_ text: String, file: String, relativeTo folder: String = "/")
    throws(ConfigErrors) -> ClusterConfig
  {
    // Parsing is a function of these three alone (it reads no file), and
    // each replicated text is parsed by every member, and again at every
    // check: the simulator, with all members in one process, spent a sixth
    // of its time parsing the same few texts.
    let key = ParseKey(text: text, file: file, folder: folder)
    if let known = recentlyParsed.withLock({ recent in recent.first { $0.key == key }?.result }) {
      return try known.get()
    }
    let result = Result { () throws(ConfigErrors) -> ClusterConfig in
      try parseAnew(text, file: file, relativeTo: folder)
    }
    recentlyParsed.withLock { recent in
      recent.removeAll { $0.key == key }
      recent.append((key, result))
      if recent.count > Self.parsesKept { recent.removeFirst() }
    }
    return try result.get()
  }

  struct ParseKey: Equatable {
    var text: String
    var file: String
    var folder: String
  }

  /// The last few texts parsed, and what came of them.
  static let recentlyParsed = Mutex<[(key: ParseKey, result: Result<ClusterConfig, ConfigErrors>)]>([])
  static let parsesKept = 8

  static func parseAnew(_ text: String, file: String, relativeTo folder: String) throws(ConfigErrors) -> ClusterConfig {
    let size = text.utf8.count
    guard size <= ClusterLimits.configurationBytes else {
      throw ConfigErrors([
        ConfigError(
          file: file, line: 1, column: 1, field: "",
          message:
            "the file is \(size) bytes; at most \(ClusterLimits.configurationBytes) fit the packets that replicate it")
      ])
    }
    var reader = NodeReader(file: file)
    guard let root = try compose(text, file: file) else {
      throw ConfigErrors([
        ConfigError(
          file: file, line: 1, column: 1, field: "",
          message: "the file is empty: it needs at least 'cluster' and 'nodes'")
      ])
    }
    let config = ConfigBuilder(folder: folder).build(root, &reader)
    guard reader.errors.isEmpty, let config else {
      // Stable: errors at one position keep the order they were found in.
      let ordered = reader.errors.enumerated().sorted {
        ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
      }
      throw ConfigErrors(ordered.map(\.element))
    }
    return config
  }

  /// YAML text as a tree, refused before it is composed when it could
  /// expand (aliases) or nest without bound; nil for an empty document.
  /// `lineOffset`: lines before it in its file (a second document).
  package static func compose(_ text: String, file: String, lineOffset: Int = 0) throws(ConfigErrors) -> Node? {
    func shifted(_ error: ConfigError) -> ConfigError {
      var error = error
      error.line += lineOffset
      return error
    }
    if let refused = YAMLGuard.check(text, file: file) { throw ConfigErrors([shifted(refused)]) }
    do {
      return try Yams.compose(yaml: text)
    } catch let error as YamlError {
      throw ConfigErrors([shifted(Self.syntaxError(error, file: file))])
    } catch {
      throw ConfigErrors([ConfigError(file: file, line: 1 + lineOffset, column: 1, field: "", message: "\(error)")])
    }
  }

  static func syntaxError(_ error: YamlError, file: String) -> ConfigError {
    switch error {
    case .scanner(let context, let problem, let mark, _),
      .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      let detail = context.map { "\(problem) \($0.text)" } ?? problem
      return ConfigError(
        file: file, line: mark.line, column: mark.column, field: "",
        message: "YAML syntax error: \(detail)")
    case .duplicatedKeysInMapping(let duplicates, let context):
      let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
      return ConfigError(
        file: file, line: context.mark.line, column: context.mark.column, field: "",
        message: "the key \(keys) appears more than once in the same mapping")
    case .reader(let problem, _, _, _):
      return ConfigError(
        file: file, line: 1, column: 1, field: "", message: "cannot read YAML: \(problem)")
    default:
      return ConfigError(file: file, line: 1, column: 1, field: "", message: "YAML error: \(error)")
    }
  }

  /// The file's bytes, or the reason for not having them.
  static func readFile(_ path: String) -> Result<Data, LocalFile.Failure> {
    Result { () throws(LocalFile.Failure) in
      guard let data = try LocalFile.read(path, limit: maximumFileBytes) else {
        throw LocalFile.Failure(path, String(cString: strerror(ENOENT)))
      }
      return data
    }
  }

  /// Far above what replication accepts: a larger file is refused before
  /// it is parsed, with its size.
  static let maximumFileBytes = 16 << 20
}

/// Reads each section; returns nil when anything was wrong (the reader holds why).
struct ConfigBuilder {
  let folder: String
  /// The file has a `fencing:` section: `on_fail: fence` may be used.
  var fencingConfigured = false

  static let topKeys = [
    "cluster", "nodes", "witness", "resources", "groups", "clones", "constraints", "resource_defaults",
    "operation_defaults", "operator", "fencing",
  ]
  static let clusterKeys = [
    "name", "key_file", "port", "heartbeat_interval", "dead_time", "quorum", "ocf_root", "encryption", "realtime",
    "lock_memory", "maintenance",
  ]
  static let quorumKeys = ["expected_votes", "no_quorum_policy", "two_node", "wait_for_all", "unfenced_takeover"]
  static let nodeKeys = ["name", "id", "address", "addresses", "port", "votes", "mode", "maintenance", "attributes"]
  static let witnessKeys = ["name", "id", "address", "addresses", "port", "votes"]
  /// corosync's knet allows 8 links; so do we.
  static let maximumLinks = 8
  static let resourceKeys = [
    "id", "agent", "params", "start", "stop", "monitor", "monitor_promoted", "promote", "demote", "notify", "prefer",
    "stickiness", "migration_threshold", "failure_timeout", "target_role", "managed",
  ]
  static let operationKeys = ["interval", "timeout", "on_fail", "depth"]
  static let preferKeys = ["node", "score"]

  func build(_ root: Node, _ reader: inout NodeReader) -> ClusterConfig? {
    guard let top = reader.fields(of: root, at: "", allowed: Self.topKeys) else { return nil }
    if top["fencing"] != nil && !fencingConfigured {
      var builder = self
      builder.fencingConfigured = true
      return builder.build(root, &reader)
    }
    let settings = top.required("cluster", &reader).flatMap { cluster($0, &reader) }
    let nodes = top.required("nodes", &reader).flatMap {
      nodeList($0, port: settings?.port ?? ClusterSettings.defaultPort, &reader)
    }
    let witness = top["witness"].flatMap {
      witnessSpec($0, port: settings?.port ?? ClusterSettings.defaultPort, &reader)
    }
    // Names as written, even of nodes with other errors, so that one bad
    // node does not also make every resource that prefers it an error.
    let nodeNames =
      top["nodes"]?.sequence.map { items in
        items.compactMap { $0.mapping?[Node("name")]?.scalar?.string }
      } ?? []
    let defaults = defaults(top, &reader)
    let resources = top["resources"].map { resourceList($0, nodeNames: nodeNames, defaults: defaults, &reader) } ?? []
    let groups = top["groups"].map { groupList($0, &reader) } ?? []
    let clones = top["clones"].map { cloneList($0, &reader) } ?? []
    let constraints = top["constraints"].map { constraintSet($0, &reader) } ?? Constraints()
    let operatorState = top["operator"].map { self.operatorState($0, &reader) } ?? OperatorState()
    let fencing = top["fencing"].map { self.fencing($0, nodeNames: nodeNames, &reader) } ?? FencingConfig()
    guard let settings, let nodes, let resources, let groups, let clones, let constraints, let operatorState,
      let fencing
    else {
      return nil
    }
    var config = ClusterConfig(
      cluster: settings, nodes: nodes, witness: witness, resources: resources, groups: groups, clones: clones,
      constraints: constraints)
    config.fencing = fencing
    if fencing.watchdog != nil, fencing.devices.isEmpty, settings.quorum.twoNode {
      // Each half of a split pair stays quorate, so keeps feeding its
      // watchdog, and would count the other fenced: both would run it all.
      reader.fail(
        at: top["fencing"]?.mapping?[Node("watchdog")] ?? top["fencing"], "fencing.watchdog",
        "a watchdog alone cannot fence a two_node pair (each half stays quorate and keeps feeding it): "
          + "add a witness or a fence device")
    }
    if fencing.isEnabled, fencing.watchdog == nil, let section = top["fencing"] {
      // A node nothing can fence would keep its resources from ever
      // being recovered: say so now, not when it is lost.
      for node in nodes where fencing.plan(for: node.name).isEmpty {
        reader.fail(at: section, "fencing", "no device can fence node '\(node.name)' (add it to a device's hosts)")
      }
    }
    applyOperatorState(operatorState, to: &config, top: top, &reader)
    crossCheck(config, top: top, &reader)
    crossCheckModel(config, top: top, &reader)
    return config
  }

  func cluster(_ node: Node, _ reader: inout NodeReader) -> ClusterSettings? {
    guard let fields = reader.fields(of: node, at: "cluster", allowed: Self.clusterKeys) else {
      return nil
    }
    let name = fields.required("name", &reader).flatMap { clusterName($0, fields, &reader) }
    let keyFile = fields.required("key_file", &reader).flatMap {
      reader.string($0, at: fields.path("key_file"))
    }
    var settings = ClusterSettings(name: name ?? "", keyFile: keyFile.map(resolve) ?? "")
    if let port = fields.integer("port", &reader, in: 1...65535) {
      settings.port = UInt16(port)
    }
    if let value = fields.duration("heartbeat_interval", &reader, allowZero: false) {
      settings.heartbeatInterval = value
    }
    if let value = fields.duration("dead_time", &reader, allowZero: false) {
      settings.deadTime = value
    }
    if settings.heartbeatInterval < ClusterLimits.minimumHeartbeatInterval {
      reader.fail(
        at: fields["heartbeat_interval"] ?? node, fields.path("heartbeat_interval"),
        "must be at least \(DurationParsing.format(ClusterLimits.minimumHeartbeatInterval))")
    }
    if settings.deadTime < settings.heartbeatInterval * 2 {
      reader.fail(
        at: fields["dead_time"] ?? fields["heartbeat_interval"] ?? node, fields.path("dead_time"),
        "must be at least twice heartbeat_interval (\(DurationParsing.format(settings.heartbeatInterval))), "
          + "or one lost packet declares a node dead")
    }
    if let value = fields.string("ocf_root", &reader) {
      settings.ocfRoot = resolve(value)
    }
    if let value = fields.boolean("encryption", &reader) { settings.encryption = value }
    if let value = fields.boolean("realtime", &reader) { settings.realtime = value }
    if let value = fields.boolean("lock_memory", &reader) { settings.lockMemory = value }
    if let value = fields.boolean("maintenance", &reader) { settings.maintenance = value }
    if let node = fields["quorum"],
      let quorum = reader.fields(of: node, at: fields.path("quorum"), allowed: Self.quorumKeys)
    {
      if let votes = quorum.integer("expected_votes", &reader, in: 1...1024) {
        settings.quorum.expectedVotes = votes
      }
      if let policy = quorum.choice("no_quorum_policy", &reader, as: NoQuorumPolicy.self) {
        settings.quorum.noQuorumPolicy = policy
      }
      if let value = quorum.boolean("two_node", &reader) { settings.quorum.twoNode = value }
      // corosync's rule: wait_for_all is on by default with two_node.
      settings.quorum.waitForAll = quorum.boolean("wait_for_all", &reader) ?? settings.quorum.twoNode
      if let node = quorum["unfenced_takeover"], let text = reader.string(node, at: quorum.path("unfenced_takeover")) {
        if text == QuorumOptions.unfencedTakeoverPhrase {
          settings.quorum.unfencedTakeover = true
        } else {
          reader.fail(
            at: node, quorum.path("unfenced_takeover"),
            "to accept the risk, write exactly: \"\(QuorumOptions.unfencedTakeoverPhrase)\"")
        }
      }
    }
    guard name != nil, keyFile != nil else { return nil }
    return settings
  }

  func clusterName(_ node: Node, _ fields: Fields, _ reader: inout NodeReader) -> String? {
    guard let name = reader.string(node, at: fields.path("name")) else { return nil }
    guard Self.isName(name) else {
      reader.fail(at: node, fields.path("name"), Self.nameRule(name))
      return nil
    }
    return name
  }

  func nodeList(_ node: Node, port: UInt16, _ reader: inout NodeReader) -> [NodeSpec]? {
    guard let items = reader.list(node, at: "nodes") else { return nil }
    guard !items.isEmpty else {
      reader.fail(at: node, "nodes", "needs at least one node")
      return nil
    }
    var specs: [NodeSpec] = []
    for (index, item) in items.enumerated() {
      let path = "nodes[\(index)]"
      guard let fields = reader.fields(of: item, at: path, allowed: Self.nodeKeys),
        let member = memberFields(fields, port: port, &reader)
      else { continue }
      var spec = NodeSpec(name: member.name, id: member.id, links: member.links, votes: member.votes)
      if let mode = fields.choice("mode", &reader, as: NodeMode.self) {
        spec.mode = mode
      }
      if let value = fields.boolean("maintenance", &reader) { spec.maintenance = value }
      if let node = fields["attributes"] {
        spec.attributes = Dictionary(
          uniqueKeysWithValues: parameters(node, at: fields.path("attributes"), what: "attribute", &reader).map {
            ($0.name, $0.value)
          })
      }
      specs.append(spec)
    }
    return specs.count == items.count ? specs : nil
  }

  func witnessSpec(_ node: Node, port: UInt16, _ reader: inout NodeReader) -> WitnessSpec? {
    guard let fields = reader.fields(of: node, at: "witness", allowed: Self.witnessKeys),
      let member = memberFields(fields, port: port, &reader)
    else { return nil }
    return WitnessSpec(name: member.name, id: member.id, links: member.links, votes: member.votes)
  }

  /// The fields nodes and the witness share.
  func memberFields(_ fields: Fields, port defaultPort: UInt16, _ reader: inout NodeReader)
    -> (name: String, id: NodeID, links: [Endpoint], votes: Int)?
  {
    var name: String?
    if let node = fields.required("name", &reader), let value = reader.string(node, at: fields.path("name")) {
      if Self.isName(value) {
        name = value
      } else {
        reader.fail(at: node, fields.path("name"), Self.nameRule(value))
      }
    }
    let id = fields.required("id", &reader).flatMap {
      reader.integer($0, at: fields.path("id"), in: 1...Int(UInt16.max))
    }
    var hosts: [String]?
    switch (fields["address"], fields["addresses"]) {
    case (nil, nil):
      reader.fail(
        at: fields.node, fields.path("address"), "missing required key 'address' (or 'addresses', one per link)")
    case (.some, .some):
      reader.fail(at: fields["addresses"], fields.path("addresses"), "give either 'address' or 'addresses', not both")
    case (let single?, nil):
      if let value = address(single, at: fields.path("address"), &reader) { hosts = [value] }
    case (nil, let list?):
      if let items = reader.list(list, at: fields.path("addresses")) {
        if items.isEmpty || items.count > Self.maximumLinks {
          reader.fail(at: list, fields.path("addresses"), "needs 1 to \(Self.maximumLinks) addresses, one per link")
        } else {
          let parsed = items.enumerated().compactMap { address($1, at: fields.path("addresses[\($0)]"), &reader) }
          if parsed.count == items.count { hosts = parsed }
        }
      }
    }
    var port = defaultPort
    if let value = fields.integer("port", &reader, in: 1...65535) {
      port = UInt16(value)
    }
    var votes = 1
    if let value = fields.integer("votes", &reader, in: 0...255) {
      votes = value
    }
    guard let name, let id, let hosts else { return nil }
    return (name, NodeID(UInt32(id)), hosts.map { Endpoint(host: $0, port: port) }, votes)
  }

  func address(_ node: Node, at path: String, _ reader: inout NodeReader) -> String? {
    guard let value = reader.string(node, at: path) else { return nil }
    guard IPAddressSyntax.isLiteral(value) else {
      reader.fail(
        at: node, path,
        "'\(value)' is not an IPv4 or IPv6 address (host names are not resolved: a cluster must not depend on DNS)")
      return nil
    }
    return value
  }

  func resourceList(_ node: Node, nodeNames: [String], defaults: ResourceDefaults, _ reader: inout NodeReader)
    -> [ResourceSpec]?
  {
    guard let items = reader.list(node, at: "resources") else { return nil }
    var specs: [ResourceSpec] = []
    var seen: [String: Int] = [:]
    for (index, item) in items.enumerated() {
      let path = "resources[\(index)]"
      guard let fields = reader.fields(of: item, at: path, allowed: Self.resourceKeys),
        let spec = resource(fields, nodeNames: nodeNames, defaults: defaults, &reader)
      else { continue }
      if let first = seen[spec.id.rawValue] {
        reader.fail(
          at: fields["id"], fields.path("id"),
          "resource id '\(spec.id)' is already used by resources[\(first)]")
        continue
      }
      seen[spec.id.rawValue] = index
      specs.append(spec)
    }
    return specs.count == items.count ? specs : nil
  }

  func resource(_ fields: Fields, nodeNames: [String], defaults: ResourceDefaults, _ reader: inout NodeReader)
    -> ResourceSpec?
  {
    var id: ResourceID?
    if let node = fields.required("id", &reader), let value = reader.string(node, at: fields.path("id")) {
      if Self.isName(value) {
        id = ResourceID(value)
      } else {
        reader.fail(at: node, fields.path("id"), Self.nameRule(value))
      }
    }
    var agent: AgentRef?
    if let node = fields.required("agent", &reader), let value = reader.string(node, at: fields.path("agent")) {
      switch AgentRef.parse(value) {
      case .success(let parsed): agent = parsed
      case .failure(let error): reader.fail(at: node, fields.path("agent"), error.reason)
      }
    }
    guard let id, let agent else { return nil }
    var spec = ResourceSpec(id: id, agent: agent)
    defaults.apply(to: &spec)
    let errorsBefore = reader.errors.count
    if let node = fields["params"] {
      spec.parameters = parameters(node, at: fields.path("params"), what: "parameter", &reader)
    }
    if let node = fields["start"] {
      spec.start = operation(node, at: fields.path("start"), base: spec.start, interval: false, &reader)
    }
    if let node = fields["stop"] {
      spec.stop = operation(node, at: fields.path("stop"), base: spec.stop, interval: false, &reader)
    }
    if let node = fields["monitor"] {
      spec.monitor = operation(node, at: fields.path("monitor"), base: spec.monitor, interval: true, &reader)
    }
    if let node = fields["monitor_promoted"] {
      spec.monitorPromoted = operation(
        node, at: fields.path("monitor_promoted"), base: spec.monitor, interval: true, demotes: true, &reader)
    }
    if let node = fields["promote"] {
      spec.promote = operation(
        node, at: fields.path("promote"), base: spec.promote, interval: false, demotes: true, &reader)
    }
    if let node = fields["demote"] {
      spec.demote = operation(node, at: fields.path("demote"), base: spec.demote, interval: false, &reader)
    }
    if let node = fields["notify"] {
      spec.notify = operation(node, at: fields.path("notify"), base: spec.notify, interval: false, &reader)
    }
    if let value = fields.duration("failure_timeout", &reader, allowZero: false) { spec.failureTimeout = value }
    if let role = role(fields, "target_role", &reader) { spec.targetRole = role }
    if let value = fields.boolean("managed", &reader) { spec.managed = value }
    if let node = fields["prefer"],
      let prefer = reader.fields(of: node, at: fields.path("prefer"), allowed: Self.preferKeys)
    {
      if let node = prefer.required("node", &reader), let name = reader.string(node, at: prefer.path("node")) {
        if nodeNames.contains(name) {
          spec.preferredNode = name
        } else {
          let known = nodeNames.joined(separator: ", ")
          reader.fail(at: node, prefer.path("node"), "'\(name)' is not a node of this cluster (nodes: \(known))")
        }
      }
      if let score = prefer.score("score", &reader) {
        spec.preferenceScore = score
      }
    }
    if let score = fields.score("stickiness", &reader) {
      spec.stickiness = score
    }
    if let value = fields.integer("migration_threshold", &reader, in: 1...1_000_000) {
      spec.migrationThreshold = value
    }
    return reader.errors.count == errorsBefore ? spec : nil
  }

  /// `demotes`: on_fail: demote makes sense there (a promote, or the
  /// monitor of the Promoted role), as pacemaker allows it.
  func operation(
    _ node: Node, at path: String, base: OperationSpec, interval: Bool, demotes: Bool = false,
    _ reader: inout NodeReader
  ) -> OperationSpec {
    let allowed = interval ? Self.operationKeys : ["timeout", "on_fail"]
    guard let fields = reader.fields(of: node, at: path, allowed: allowed) else { return base }
    var spec = base
    if let value = fields.duration("interval", &reader, allowZero: true) {
      spec.interval = value
    }
    if let value = fields.duration("timeout", &reader, allowZero: false) {
      spec.timeout = value
    }
    if let depth = fields.integer("depth", &reader, in: 0...99) { spec.depth = depth }
    if let policy = fields.choice("on_fail", &reader, as: FailurePolicy.self) {
      switch policy {
      case .fence where !fencingConfigured:
        reader.fail(
          at: fields["on_fail"], fields.path("on_fail"),
          "on_fail: fence needs a fence device (the fencing: section); use block or stop without one")
      case .demote where !demotes:
        reader.fail(
          at: fields["on_fail"], fields.path("on_fail"),
          "on_fail: demote applies to promote and monitor_promoted only (what fails in the Promoted role)")
      case .ignore, .restart, .block, .stop, .demote, .standby, .fence:
        spec.onFail = policy
      }
    }
    return spec
  }

  func parameters(_ node: Node, at path: String, what: String, _ reader: inout NodeReader)
    -> [(name: String, value: String)]
  {
    guard let mapping = node.mapping else {
      reader.fail(at: node, path, "expected a mapping of \(what) names to values, found \(node.kindName)")
      return []
    }
    var result: [(name: String, value: String)] = []
    for (keyNode, valueNode) in mapping {
      // Attributes keep pacemaker's names (`master-drbd0`, `site.zone`).
      let punctuation: String = what == "parameter" ? "_" : "_-."
      guard let name = keyNode.scalar?.string, !name.isEmpty,
        name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || punctuation.contains($0)) })
      else {
        reader.fail(
          at: keyNode, path,
          what == "parameter"
            ? "parameter names are letters, digits and '_' (they become OCF_RESKEY_name)"
            : "\(what) names are letters, digits, '_', '-' and '.'")
        continue
      }
      if result.contains(where: { $0.name == name }) {
        reader.fail(at: keyNode, "\(path).\(name)", "'\(name)' appears more than once")
        continue
      }
      guard let value = valueNode.scalar?.string else {
        reader.fail(at: valueNode, "\(path).\(name)", "expected a single value, found \(valueNode.kindName)")
        continue
      }
      // An environment variable ends at its first NUL: the agent would get
      // another value than the one written.
      guard !value.utf8.contains(0) else {
        reader.fail(at: valueNode, "\(path).\(name)", "a NUL character cannot be passed to an agent")
        continue
      }
      result.append((name, value))
    }
    return result
  }

  /// Checks that need the whole file: unique names, ids and endpoints, votes.
  func crossCheck(_ config: ClusterConfig, top: Fields, _ reader: inout NodeReader) {
    var names: [String: Int] = [:]
    var ids: [NodeID: Int] = [:]
    var endpoints: [Endpoint: Int] = [:]
    let nodesNode = top["nodes"]?.sequence.map(Array.init) ?? []
    let members = config.voters
    for (index, member) in members.enumerated() {
      let isWitness = member.kind == .witness
      let itemNode = isWitness ? top["witness"] : (index < nodesNode.count ? nodesNode[index] : nil)
      let path = isWitness ? "witness" : "nodes[\(index)]"
      let fieldNode = { (key: String) in itemNode?.mapping?[Node(key)] ?? itemNode }
      if let first = names[member.name] {
        reader.fail(
          at: fieldNode("name"), "\(path).name", "name '\(member.name)' is already used by \(describe(first, members))")
      } else {
        names[member.name] = index
      }
      if let first = ids[member.id] {
        reader.fail(
          at: fieldNode("id"), "\(path).id", "id \(member.id.rawValue) is already used by \(describe(first, members))")
      } else {
        ids[member.id] = index
      }
      for endpoint in member.links {
        if let first = endpoints[endpoint] {
          reader.fail(
            at: fieldNode("address"), "\(path).address",
            "\(endpoint) is already used by \(describe(first, members)); give each node its own address or port")
        } else {
          endpoints[endpoint] = index
        }
      }
      if member.links.count != members[0].links.count {
        reader.fail(
          at: fieldNode("addresses"), "\(path).addresses",
          "\(member.name) has \(member.links.count) link(s) but \(members[0].name) has \(members[0].links.count): "
            + "every member needs one address per link")
      }
    }
    if members.count > ClusterLimits.members {
      reader.fail(
        at: top["nodes"], "nodes",
        "\(members.count) members (nodes and witness); a cluster has at most \(ClusterLimits.members)")
    }
    if config.resources.count > ClusterLimits.resources {
      reader.fail(
        at: top["resources"], "resources",
        "\(config.resources.count) resources; a cluster has at most \(ClusterLimits.resources)")
    }
    if members.reduce(0, { $0 + $1.votes }) == 0 {
      reader.fail(at: top["nodes"], "nodes", "at least one member must have a vote")
    }
    let quorum = config.cluster.quorum
    let quorumNode = top["cluster"]?.mapping?[Node("quorum")]
    if quorum.twoNode && (config.nodes.count != 2 || config.witness != nil) {
      reader.fail(
        at: quorumNode?.mapping?[Node("two_node")] ?? quorumNode, "cluster.quorum.two_node",
        "two_node is for exactly two nodes and no witness (with a witness, a plain majority already survives a node)")
    }
    if quorum.unfencedTakeover && !quorum.twoNode {
      reader.fail(
        at: quorumNode?.mapping?[Node("unfenced_takeover")] ?? quorumNode, "cluster.quorum.unfenced_takeover",
        "only means something with two_node: true")
    }
  }

  func describe(_ index: Int, _ members: [Member]) -> String {
    members[index].kind == .witness ? "the witness" : "nodes[\(index)]"
  }

  func resolve(_ path: String) -> String {
    path.hasPrefix("/") ? path : (folder.hasSuffix("/") ? folder + path : folder + "/" + path)
  }

  static func isName(_ text: String) -> Bool {
    guard let first = text.first, first.isASCII, first.isLetter || first.isNumber, text.count <= 64 else {
      return false
    }
    return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
  }

  static func nameRule(_ text: String) -> String {
    "'\(text)' is not a valid name: use up to 64 letters, digits, '-', '_' or '.', starting with a letter or digit"
  }
}

/// Where a resource's fields are written, for checks made after the
/// configuration is loaded (its parameters against the agent's meta-data).
package struct ResourcePositions: Sendable {
  package struct Position: Sendable, Equatable {
    package var line: Int
    package var column: Int
    package init(line: Int, column: Int) {
      self.line = line
      self.column = column
    }
  }
  package var index: Int
  package var agent: Position
  package var params: Position?
  package var parameters: [String: Position] = [:]
}

extension ConfigLoader {
  /// The positions of each resource's fields in `text`, by resource id;
  /// empty when the text does not compose (then the loader has said why).
  package static func resourcePositions(_ text: String, file: String) -> [String: ResourcePositions] {
    itemPositions(text, file: file, at: ["resources"])
  }

  /// The same for fence devices (`fencing.devices`), their secrets' names
  /// among their parameters.
  package static func fenceDevicePositions(_ text: String, file: String) -> [String: ResourcePositions] {
    itemPositions(text, file: file, at: ["fencing", "devices"])
  }

  static func itemPositions(_ text: String, file: String, at path: [String]) -> [String: ResourcePositions] {
    guard let root = try? compose(text, file: file) else { return [:] }
    var section: Node? = root
    for key in path { section = section?.mapping?[Node(key)] }
    guard let items = section?.sequence else { return [:] }
    func position(_ node: Node) -> ResourcePositions.Position {
      ResourcePositions.Position(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }
    var found: [String: ResourcePositions] = [:]
    for (index, item) in items.enumerated() {
      guard let fields = item.mapping, let id = fields["id"]?.scalar?.string else { continue }
      let program = fields["agent"] ?? fields["hook"]
      var positions = ResourcePositions(index: index, agent: program.map(position) ?? position(item))
      for key in ["params", "secrets"] {
        guard let params = fields[Node(key)] else { continue }
        positions.params = positions.params ?? position(params)
        for (keyNode, _) in params.mapping ?? [:] {
          if let name = keyNode.scalar?.string { positions.parameters[name] = position(keyNode) }
        }
      }
      found[id] = positions
    }
    return found
  }
}

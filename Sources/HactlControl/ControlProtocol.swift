import HactlModel

/// One request per connection: a JSON object on one line, answered by one
/// JSON object on one line (docs/control-protocol.md).
public enum ControlRequest: Sendable, Codable, Equatable {
  case status
  case migrate(resource: String, node: String?)
  /// A new configuration's text, for the leader to replicate.
  case applyConfig(text: String)
  /// The configuration the daemon runs, with its version.
  case showConfig
  /// Sets (or, with no value, deletes) a transient attribute of this node,
  /// or of another node when one is named.
  case setAttribute(name: String, value: String?, node: String? = nil)
  /// A node's attribute (this node's without a node), transient or permanent.
  case getAttribute(name: String, node: String?)
  /// Why a resource runs where it does, in sentences and scores.
  case why(resource: String)
  /// Forget a resource's failures and probe it again (one node, or all).
  case cleanup(resource: String, node: String?)
  /// An operator's change kept in the configuration (ban, clear, pin,
  /// standby, online, maintenance).
  case edit(OperatorEdit)
  /// A cluster property (`crm_attribute --type crm_config`).
  case getProperty(name: String)
  /// `hactl fence`: fence a node now (`action` "off" or "reboot", or the
  /// devices' own), or with `confirm` declare it off.
  case fence(node: String, action: FenceAction?, confirm: Bool)
  /// This node's fencing history (`hactl history`).
  case history

  enum CodingKeys: String, CodingKey {
    case command, resource, node, text, name, value, on, until, action, confirm
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    let command = try container.decode(String.self, forKey: .command)
    switch command {
    case "status": self = .status
    case "history": self = .history
    case "migrate":
      self = .migrate(
        resource: try container.decode(String.self, forKey: .resource),
        node: try container.decodeIfPresent(String.self, forKey: .node))
    case "config-apply": self = .applyConfig(text: try container.decode(String.self, forKey: .text))
    case "config-show": self = .showConfig
    case "attribute-set":
      self = .setAttribute(
        name: try container.decode(String.self, forKey: .name),
        value: try container.decodeIfPresent(String.self, forKey: .value),
        node: try container.decodeIfPresent(String.self, forKey: .node))
    case "why": self = .why(resource: try container.decode(String.self, forKey: .resource))
    case "fence":
      let action = try container.decodeIfPresent(String.self, forKey: .action)
      guard action.map({ FenceAction(rawValue: $0) != nil }) ?? true else {
        throw DecodingError.dataCorruptedError(
          forKey: .action, in: container, debugDescription: "fence action is off or reboot")
      }
      self = .fence(
        node: try container.decode(String.self, forKey: .node), action: action.flatMap(FenceAction.init(rawValue:)),
        confirm: try container.decodeIfPresent(Bool.self, forKey: .confirm) ?? false)
    case "cleanup":
      self = .cleanup(
        resource: try container.decode(String.self, forKey: .resource),
        node: try container.decodeIfPresent(String.self, forKey: .node))
    case "ban", "pin", "clear", "standby", "online", "maintenance":
      let resource = try container.decodeIfPresent(String.self, forKey: .resource).map { ResourceID($0) }
      let node = try container.decodeIfPresent(String.self, forKey: .node)
      func need<T>(_ value: T?, _ key: CodingKeys) throws -> T {
        guard let value else {
          throw DecodingError.keyNotFound(key, .init(codingPath: [], debugDescription: "\(command) needs \(key)"))
        }
        return value
      }
      switch command {
      case "ban", "pin":
        let until = try container.decodeIfPresent(Int64.self, forKey: .until)
        if let until, until < 0 || until > WallClockText.latest {
          throw DecodingError.dataCorruptedError(
            forKey: .until, in: container, debugDescription: "until must be a moment in Unix seconds")
        }
        let (resource, node) = (try need(resource, .resource), try need(node, .node))
        self = .edit(
          command == "ban" ? .ban(resource, node: node, until: until) : .pin(resource, node: node, until: until))
      case "clear": self = .edit(.clear(try need(resource, .resource)))
      case "standby": self = .edit(.standby(node: try need(node, .node)))
      case "online": self = .edit(.online(node: try need(node, .node)))
      default:
        self = .edit(
          .maintenance(on: try container.decode(Bool.self, forKey: .on), node: node, resource: resource))
      }
    case "attribute-set-permanent":
      self = .edit(
        .nodeAttribute(
          node: try container.decode(String.self, forKey: .node),
          name: try container.decode(String.self, forKey: .name),
          value: try container.decodeIfPresent(String.self, forKey: .value)))
    case "property-set":
      self = .edit(
        .property(
          name: try container.decode(String.self, forKey: .name),
          value: try container.decodeIfPresent(String.self, forKey: .value)))
    case "property-get": self = .getProperty(name: try container.decode(String.self, forKey: .name))
    case "attribute-get":
      self = .getAttribute(
        name: try container.decode(String.self, forKey: .name),
        node: try container.decodeIfPresent(String.self, forKey: .node))
    default:
      throw DecodingError.dataCorruptedError(
        forKey: .command, in: container, debugDescription: "unknown command '\(command)'")
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .status:
      try container.encode("status", forKey: .command)
    case .history:
      try container.encode("history", forKey: .command)
    case .migrate(let resource, let node):
      try container.encode("migrate", forKey: .command)
      try container.encode(resource, forKey: .resource)
      try container.encodeIfPresent(node, forKey: .node)
    case .applyConfig(let text):
      try container.encode("config-apply", forKey: .command)
      try container.encode(text, forKey: .text)
    case .showConfig:
      try container.encode("config-show", forKey: .command)
    case .setAttribute(let name, let value, let node):
      try container.encode("attribute-set", forKey: .command)
      try container.encode(name, forKey: .name)
      try container.encodeIfPresent(value, forKey: .value)
      try container.encodeIfPresent(node, forKey: .node)
    case .why(let resource):
      try container.encode("why", forKey: .command)
      try container.encode(resource, forKey: .resource)
    case .fence(let node, let action, let confirm):
      try container.encode("fence", forKey: .command)
      try container.encode(node, forKey: .node)
      try container.encodeIfPresent(action?.rawValue, forKey: .action)
      if confirm { try container.encode(true, forKey: .confirm) }
    case .cleanup(let resource, let node):
      try container.encode("cleanup", forKey: .command)
      try container.encode(resource, forKey: .resource)
      try container.encodeIfPresent(node, forKey: .node)
    case .edit(let edit):
      switch edit {
      case .ban(let resource, let node, let until), .pin(let resource, let node, let until):
        if case .ban = edit {
          try container.encode("ban", forKey: .command)
        } else {
          try container.encode("pin", forKey: .command)
        }
        try container.encode(resource.rawValue, forKey: .resource)
        try container.encode(node, forKey: .node)
        try container.encodeIfPresent(until, forKey: .until)
      case .clear(let resource):
        try container.encode("clear", forKey: .command)
        try container.encode(resource.rawValue, forKey: .resource)
      case .standby(let node), .online(let node):
        if case .standby = edit {
          try container.encode("standby", forKey: .command)
        } else {
          try container.encode("online", forKey: .command)
        }
        try container.encode(node, forKey: .node)
      case .maintenance(let on, let node, let resource):
        try container.encode("maintenance", forKey: .command)
        try container.encode(on, forKey: .on)
        try container.encodeIfPresent(node, forKey: .node)
        try container.encodeIfPresent(resource?.rawValue, forKey: .resource)
      case .nodeAttribute(let node, let name, let value):
        try container.encode("attribute-set-permanent", forKey: .command)
        try container.encode(node, forKey: .node)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(value, forKey: .value)
      case .property(let name, let value):
        try container.encode("property-set", forKey: .command)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(value, forKey: .value)
      }
    case .getProperty(let name):
      try container.encode("property-get", forKey: .command)
      try container.encode(name, forKey: .name)
    case .getAttribute(let name, let node):
      try container.encode("attribute-get", forKey: .command)
      try container.encode(name, forKey: .name)
      try container.encodeIfPresent(node, forKey: .node)
    }
  }
}

public struct ControlResponse: Sendable, Codable, Equatable {
  public var ok: Bool
  public var message: String?
  public var error: String?
  public var status: ClusterStatus?
  /// For configuration requests: the version concerned (`EPOCH.VERSION`).
  public var configVersion: String?
  /// For `history`: the node's fencing history, oldest first.
  public var history: [FencingEvent]?

  public init(
    ok: Bool, message: String? = nil, error: String? = nil, status: ClusterStatus? = nil,
    configVersion: String? = nil
  ) {
    self.ok = ok
    self.message = message
    self.error = error
    self.status = status
    self.configVersion = configVersion
  }

  enum CodingKeys: String, CodingKey {
    case ok, message, error, status, history
    case configVersion = "config_version"
  }

  public static func failure(_ error: String) -> ControlResponse { ControlResponse(ok: false, error: error) }
}

public enum ControlDefaults {
  public static let socketPath = "/run/hactl/hactld.sock"
  /// The group whose members may use the socket besides root (pacemaker's).
  public static let adminGroup = "haclient"
  /// Environment variable that overrides the socket path for `hactl`.
  public static let socketEnvironment = "HACTL_SOCKET"
}

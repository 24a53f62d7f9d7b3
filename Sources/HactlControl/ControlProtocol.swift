import HactlModel

/// One request per connection: a JSON object on one line, answered by one
/// JSON object on one line (docs/control-protocol.md).
public enum ControlRequest: Sendable, Codable, Equatable {
  case status
  case migrate(resource: String, node: String?)

  enum CodingKeys: String, CodingKey {
    case command, resource, node
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    let command = try container.decode(String.self, forKey: .command)
    switch command {
    case "status": self = .status
    case "migrate":
      self = .migrate(
        resource: try container.decode(String.self, forKey: .resource),
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
    case .migrate(let resource, let node):
      try container.encode("migrate", forKey: .command)
      try container.encode(resource, forKey: .resource)
      try container.encodeIfPresent(node, forKey: .node)
    }
  }
}

public struct ControlResponse: Sendable, Codable, Equatable {
  public var ok: Bool
  public var message: String?
  public var error: String?
  public var status: ClusterStatus?

  public init(ok: Bool, message: String? = nil, error: String? = nil, status: ClusterStatus? = nil) {
    self.ok = ok
    self.message = message
    self.error = error
    self.status = status
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

import HactlModel

/// Node attributes: permanent ones come from the configuration
/// (`nodes[].attributes`); transient ones are set on the node they
/// describe (by agents through crm_attribute and crm_master, or by an
/// operator), travel in that node's report, and are gone when its daemon
/// restarts (pacemaker's lifetime "reboot"). The leader reads both, the
/// transient value winning, for rules and promotion scores.
extension NodeController {
  public enum AttributeError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidName(String)
    case invalidValue(String)
    case tooMany(Int)
    case unknownNode(String)
    case notSet(name: String, node: String)
    case unavailable(String)
    case propertyNotSet(String)

    public var description: String {
      switch self {
      case .invalidName(let name):
        return "'\(name.prefix(80))' is not an attribute name: up to \(ClusterLimits.attributeNameBytes) "
          + "letters, digits, '-', '_', '.' or ':'"
      case .invalidValue(let why): return why
      case .tooMany(let limit): return "this node already has \(limit) transient attributes, the most a report carries"
      case .unknownNode(let name): return "no node '\(name)' in the configuration"
      case .notSet(let name, let node): return "attribute '\(name)' is not set on \(node)"
      case .unavailable(let node): return "\(node) is not a member now: its transient attributes are not known here"
      case .propertyNotSet(let name): return "cluster property '\(name)' is not set"
      }
    }
  }

  static func isAttributeName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= ClusterLimits.attributeNameBytes
      && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }
  }

  /// Sets (value) or deletes (nil) one of this node's transient attributes.
  public mutating func setAttribute(_ name: String, _ value: String?, now: Instant)
    -> (Result<String, AttributeError>, [ControllerEffect])
  {
    if let refusal = Self.checkTransient(name, value, have: transientAttributes) { return (.failure(refusal), []) }
    guard transientAttributes[name] != value else {
      return (.success(value.map { "\(name)=\($0) (unchanged)" } ?? "\(name) was not set"), [])
    }
    transientAttributes[name] = value
    let effects = apply(membership.observe(now: now), now: now) + finish(now: now, forceBeat: false)
    return (.success(value.map { "\(name)=\($0)" } ?? "\(name) deleted"), effects)
  }

  /// Why a node cannot hold this transient attribute, if it cannot.
  static func checkTransient(_ name: String, _ value: String?, have: [String: String]) -> AttributeError? {
    guard isAttributeName(name) else { return .invalidName(name) }
    guard let value else { return nil }
    guard value.utf8.count <= ClusterLimits.attributeValueBytes else {
      return .invalidValue("the value is longer than \(ClusterLimits.attributeValueBytes) bytes")
    }
    guard !value.contains(where: { $0.isNewline || $0 == "\0" }) else {
      return .invalidValue("the value must be one line of text")
    }
    guard have[name] != nil || have.count < ClusterLimits.nodeAttributes else {
      return .tooMany(ClusterLimits.nodeAttributes)
    }
    return nil
  }

  /// Another node's transient attribute (`attrd_updater -N NODE`): asked
  /// here, carried in this node's requests, and set by that node when it
  /// sees them; the leader answers once it has the request.
  public mutating func requestAttribute(node: String, name: String, value: String?, now: Instant)
    -> (Result<UInt64, RequestError>, [ControllerEffect])
  {
    if let refusal = Self.checkTransient(name, value, have: [:]) {
      return (.failure(.invalidAttribute(refusal.description)), [])
    }
    return queueRequest(naming: node, now: now) { .attribute(node: $0!, name: name, value: value) }
  }

  /// A cluster property agents keep (`crm_attribute --type crm_config`).
  public func property(_ name: String) -> Result<String, AttributeError> {
    config.operatorState.properties[name].map { .success($0) } ?? .failure(.propertyNotSet(name))
  }

  /// A node's attribute as the scheduler would see it.
  public func attribute(_ name: String, node: String?) -> Result<String, AttributeError> {
    let spec: NodeSpec?
    if let node {
      spec = config.nodes.first { $0.name == node }
      guard spec != nil else { return .failure(.unknownNode(node)) }
    } else {
      spec = config.nodes.first { $0.id == local.id }
    }
    guard let spec else { return .failure(.unknownNode(local.name)) }
    let transient = spec.id == local.id ? transientAttributes : peerReports[spec.id]?.attributes
    if let value = transient?[name] ?? spec.attributes[name] { return .success(value) }
    if transient == nil { return .failure(.unavailable(spec.name)) }
    return .failure(.notSet(name: name, node: spec.name))
  }

  /// Every attribute of a node: permanent ones with its transient ones over them.
  func attributes(of spec: NodeSpec, report: NodeReport?) -> [String: String] {
    spec.attributes.merging(report?.attributes ?? [:]) { _, transient in transient }
  }
}

import HactlConfig
import HactlModel

/// A resource's parameters against its agent's meta-data: a name the agent
/// does not take is a typo that the agent would silently ignore, and a
/// required one left out fails only at the first start, on whichever node
/// that happens.
public enum ParameterCheck {
  public struct Finding: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
      case unknown, missing, notAChoice, deprecated
    }
    public var kind: Kind
    /// The parameter concerned (for `missing`, the one left out).
    public var parameter: String
    public var message: String
    public var isError: Bool { kind != .deprecated }
  }

  public static func findings(for spec: ResourceSpec, metadata: AgentMetadata) -> [Finding] {
    // Heartbeat scripts take positional arguments; only OCF names them.
    guard spec.agent.standard == .ocf else { return [] }
    return findings(agent: spec.agent.description, parameters: spec.parameters, metadata: metadata)
  }

  /// A fence device's options and secrets (whose values are not known
  /// here) against its agent's meta-data; what hactld sets itself is never
  /// missing.
  public static func findings(for device: FenceDevice, metadata: AgentMetadata) -> [Finding] {
    guard case .agent(let path) = device.program else { return [] }
    let name = String(path.split(separator: "/").last ?? "")
    return findings(
      agent: name, parameters: device.options.map { ($0.name, $0.value) } + device.secrets.map { ($0.name, nil) },
      metadata: metadata, setByHactld: FenceDevice.reservedOptions)
  }

  static func findings(
    agent: String, parameters: [(name: String, value: String?)], metadata: AgentMetadata,
    setByHactld: Set<String> = []
  ) -> [Finding] {
    var findings: [Finding] = []
    let given = Set(parameters.map(\.name)).union(setByHactld)
    for (name, value) in parameters {
      guard let parameter = metadata.parameter(name) else {
        let takes = metadata.parameters.map(\.name)
        let hint = NodeReader.closest(to: name, in: takes).map { " (did you mean '\($0)'?)" } ?? ""
        findings.append(
          Finding(
            kind: .unknown, parameter: name,
            message: "\(agent) takes no parameter '\(name)'\(hint); it takes: "
              + (takes.isEmpty ? "none" : takes.joined(separator: ", "))))
        continue
      }
      if let value, parameter.type == "select", !parameter.choices.isEmpty, !parameter.choices.contains(value) {
        findings.append(
          Finding(
            kind: .notAChoice, parameter: name,
            message: "'\(value)' is not one of \(agent)'s values for '\(name)': "
              + parameter.choices.joined(separator: ", ")))
      }
      if parameter.deprecated {
        findings.append(
          Finding(
            kind: .deprecated, parameter: name, message: "\(agent) marks '\(name)' as deprecated"))
      }
    }
    // An old name that a newer one replaces is never asked for: the newer
    // one is (given, or missing in its own right).
    let replaced = Set(metadata.parameters.compactMap(\.obsoletes))
    for parameter in metadata.parameters
    where parameter.required && !given.contains(parameter.name) && !replaced.contains(parameter.name) {
      let what = parameter.shortDescription.isEmpty ? "" : " (\(parameter.shortDescription))"
      findings.append(
        Finding(
          kind: .missing, parameter: parameter.name,
          message: "\(agent) requires the parameter '\(parameter.name)'\(what)"))
    }
    return findings
  }
}

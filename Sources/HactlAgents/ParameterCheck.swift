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
    var findings: [Finding] = []
    let given = Set(spec.parameters.map(\.name))
    for (name, value) in spec.parameters {
      guard let parameter = metadata.parameter(name) else {
        let takes = metadata.parameters.map(\.name)
        let hint = NodeReader.closest(to: name, in: takes).map { " (did you mean '\($0)'?)" } ?? ""
        findings.append(
          Finding(
            kind: .unknown, parameter: name,
            message: "\(spec.agent) takes no parameter '\(name)'\(hint); it takes: "
              + (takes.isEmpty ? "none" : takes.joined(separator: ", "))))
        continue
      }
      if parameter.type == "select", !parameter.choices.isEmpty, !parameter.choices.contains(value) {
        findings.append(
          Finding(
            kind: .notAChoice, parameter: name,
            message: "'\(value)' is not one of \(spec.agent)'s values for '\(name)': "
              + parameter.choices.joined(separator: ", ")))
      }
      if parameter.deprecated {
        findings.append(
          Finding(
            kind: .deprecated, parameter: name, message: "\(spec.agent) marks '\(name)' as deprecated"))
      }
    }
    for parameter in metadata.parameters where parameter.required && !given.contains(parameter.name) {
      let what = parameter.shortDescription.isEmpty ? "" : " (\(parameter.shortDescription))"
      findings.append(
        Finding(
          kind: .missing, parameter: parameter.name,
          message: "\(spec.agent) requires the parameter '\(parameter.name)'\(what)"))
    }
    return findings
  }
}

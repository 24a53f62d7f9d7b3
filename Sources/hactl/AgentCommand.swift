import ArgumentParser
import Foundation
import HactlAgents
import HactlConfig
import HactlExecutor
import HactlModel

/// Where agents and the meta-data cache are, for commands that read agents
/// on this machine.
struct AgentPlaces: ParsableArguments {
  @Option(
    name: .customLong("ocf-root"),
    help: "OCF_ROOT (default: the configuration's ocf_root, else \(ClusterSettings.defaultOCFRoot)).")
  var ocfRoot: String?

  @Option(
    name: .customLong("metadata-cache"),
    help:
      "Where agents' meta-data is kept between runs (default: \(AgentCatalog.defaultCacheFolder)); 'none' keeps nothing."
  )
  var cache: String = AgentCatalog.defaultCacheFolder

  func catalog(defaultOCFRoot: String = ClusterSettings.defaultOCFRoot) -> AgentCatalog {
    AgentCatalog(
      folders: AgentFolders(ocfRoot: ocfRoot ?? defaultOCFRoot), cacheFolder: cache == "none" ? nil : cache)
  }
}

struct AgentCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "agent", abstract: "List the resource agents installed here and show what each takes.",
    subcommands: [List.self, Show.self])

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list", abstract: "List installed agents: all, one class (ocf, lsb, heartbeat) or ocf:PROVIDER.")

    @Argument(help: "ocf, ocf:PROVIDER, lsb or heartbeat.") var filter: String?
    @OptionGroup var places: AgentPlaces

    func run() async throws {
      let names: [String]
      do {
        names = try places.catalog().list(filter)
      } catch {
        throw hactlFail(error.description, code: 2)
      }
      for name in names { print(name) }
    }
  }

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "show", abstract: "Show an agent's description, parameters and actions (from its meta-data).")

    @Argument(help: "The agent, as a configuration names it (ocf:heartbeat:IPaddr2).") var agent: String
    @OptionGroup var places: AgentPlaces

    func run() async throws {
      let reference: AgentRef
      switch AgentRef.parse(agent) {
      case .success(let parsed): reference = parsed
      case .failure(let error): throw hactlFail("'\(agent)': \(error.reason)", code: 2)
      }
      switch await places.catalog().metadata(of: reference) {
      case .failure(let failure): throw hactlFail(failure.description)
      case .success(let metadata): print(Self.text(metadata, agent: reference), terminator: "")
      }
    }

    static func text(_ metadata: AgentMetadata, agent: AgentRef) -> String {
      var lines = ["\(agent)\(metadata.version.map { " (version \($0))" } ?? "")"]
      if !metadata.shortDescription.isEmpty { lines.append("  \(metadata.shortDescription)") }
      if !metadata.longDescription.isEmpty {
        lines.append("")
        lines += metadata.longDescription.split(separator: "\n", omittingEmptySubsequences: false).map {
          "  " + $0.trimmingCharacters(in: .whitespaces)
        }
      }
      lines.append("")
      lines.append("parameters (params:):")
      if metadata.parameters.isEmpty { lines.append("  none") }
      for parameter in metadata.parameters {
        var traits = [parameter.type]
        if parameter.required { traits.append("required") }
        if parameter.unique { traits.append("unique") }
        if parameter.deprecated { traits.append("deprecated") }
        if let value = parameter.defaultValue { traits.append("default \(value.isEmpty ? "\"\"" : value)") }
        if !parameter.choices.isEmpty { traits.append("one of \(parameter.choices.joined(separator: ", "))") }
        lines.append("  \(parameter.name) (\(traits.joined(separator: ", ")))")
        if !parameter.shortDescription.isEmpty { lines.append("      \(parameter.shortDescription)") }
      }
      lines.append("")
      lines.append("actions:")
      for action in metadata.actions {
        let traits = [
          action.timeout.map { "timeout \($0)" }, action.interval.map { "interval \($0)" },
          action.depth.map { "depth \($0)" }, action.role.map { "role \($0)" },
        ].compactMap { $0 }
        lines.append("  \(action.name)\(traits.isEmpty ? "" : " (\(traits.joined(separator: ", ")))")")
      }
      // Agents' words reach the operator's terminal: no escape sequences.
      return lines.map(\.withoutControlCharacters).joined(separator: "\n") + "\n"
    }
  }
}

import HactlModel
import Yams

/// The configuration's `operator:` block: what hactl ban, clear, migrate
/// --pin, standby, online and maintenance set. hactl writes it at the end
/// of the file and leaves every other line of the operator's text as it is.
public enum OperatorBlock {
  static let keys = [
    "constraints", "standby", "maintenance", "maintenance_nodes", "maintenance_resources", "node_attributes",
    "properties",
  ]
  static let constraintKeys = ["id", "resource", "node", "score", "expires"]
  static let marker =
    "# Managed by hactl (ban, clear, migrate --pin, standby, online, maintenance, crm_attribute): change it with those commands."

  /// Why a node attribute or cluster property cannot be kept in the block
  /// as given, if it cannot: the same rule where an edit is asked
  /// (`NodeController.checkEdit`) and where the block is read back.
  package static func settingRefusal(_ name: String, _ value: String?, limit: Int) -> String? {
    guard !name.isEmpty, name.utf8.count <= ClusterLimits.attributeNameBytes,
      name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) })
    else {
      return
        "'\(name.utf8Prefix(80))' is not a name the configuration can hold: letters, digits, '_', '-' and '.', at most \(ClusterLimits.attributeNameBytes) bytes"
    }
    guard let value else { return nil }
    guard value.utf8.count <= limit else { return "the value is longer than \(limit) bytes" }
    guard value.withoutControlCharacters == value else {
      return "the value must be one line of text without control characters"
    }
    return nil
  }

  /// `text` with its operator block replaced by `state`'s (removed when
  /// empty). The block runs from its `operator:` line (and the marker
  /// comment before it) to the next top-level key or the end.
  public static func rewrite(_ text: String, with state: OperatorState) -> String {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if let start = lines.firstIndex(where: { $0.hasPrefix("operator:") }) {
      var end = start + 1
      while end < lines.count, lines[end].isEmpty || lines[end].first == " " || lines[end].first == "#" {
        end += 1
      }
      var from = start
      if from > 0, lines[from - 1] == marker { from -= 1 }
      lines.removeSubrange(from..<end)
    }
    while lines.last?.isEmpty == true { lines.removeLast() }
    var result = lines.joined(separator: "\n") + "\n"
    if !state.isEmpty { result += "\n" + render(state) }
    return result
  }

  public static func render(_ state: OperatorState) -> String {
    let quoted = ConfigWriter.quoted
    var lines = [marker, "operator:"]
    if !state.constraints.isEmpty {
      lines.append("  constraints:")
      for constraint in state.constraints {
        let expires = constraint.expires.map { ", expires: \(quoted(WallClockText.format($0)))" } ?? ""
        lines.append(
          "    - { id: \(quoted(constraint.id)), resource: \(quoted(constraint.resource.rawValue)), "
            + "node: \(quoted(constraint.node ?? "")), score: \(quoted(constraint.score.description))\(expires) }")
      }
    }
    if !state.standby.isEmpty { lines.append("  standby: [\(state.standby.map(quoted).joined(separator: ", "))]") }
    if state.maintenance { lines.append("  maintenance: true") }
    if !state.maintenanceNodes.isEmpty {
      lines.append("  maintenance_nodes: [\(state.maintenanceNodes.map(quoted).joined(separator: ", "))]")
    }
    if !state.maintenanceResources.isEmpty {
      let names = state.maintenanceResources.map { quoted($0.rawValue) }.joined(separator: ", ")
      lines.append("  maintenance_resources: [\(names)]")
    }
    if !state.nodeAttributes.isEmpty {
      lines.append("  node_attributes:")
      for node in state.nodeAttributes.keys.sorted() {
        lines.append("    \(quoted(node)):")
        for (name, value) in state.nodeAttributes[node]!.sorted(by: { $0.key < $1.key }) {
          lines.append("      \(quoted(name)): \(quoted(value))")
        }
      }
    }
    if !state.properties.isEmpty {
      lines.append("  properties:")
      for (name, value) in state.properties.sorted(by: { $0.key < $1.key }) {
        lines.append("    \(quoted(name)): \(quoted(value))")
      }
    }
    return lines.joined(separator: "\n") + "\n"
  }
}

extension ConfigBuilder {
  func operatorState(_ node: Node, _ reader: inout NodeReader) -> OperatorState? {
    guard let fields = reader.fields(of: node, at: "operator", allowed: OperatorBlock.keys) else { return nil }
    var state = OperatorState()
    func names(_ key: String, _ reader: inout NodeReader) -> [String] {
      guard let list = fields[key], let items = reader.list(list, at: fields.path(key)) else { return [] }
      return items.enumerated().compactMap { reader.string($1, at: fields.path("\(key)[\($0)]")) }
    }
    if let list = fields["constraints"], let items = reader.list(list, at: fields.path("constraints")) {
      for (index, item) in items.enumerated() {
        let path = fields.path("constraints[\(index)]")
        guard let entry = reader.fields(of: item, at: path, allowed: OperatorBlock.constraintKeys),
          let id = entry.required("id", &reader).flatMap({ reader.string($0, at: entry.path("id")) }),
          let resource = identifier(entry, "resource", &reader),
          let node = entry.required("node", &reader).flatMap({ reader.string($0, at: entry.path("node")) }),
          let score = entry.required("score", &reader).flatMap({ reader.score($0, at: entry.path("score")) })
        else { continue }
        guard id.hasPrefix("cli-") else {
          reader.fail(
            at: entry["id"], entry.path("id"), "operator constraints are named cli-...; others go in 'constraints'")
          continue
        }
        state.constraints.append(
          LocationConstraint(
            id: id, resource: ResourceID(resource), score: score, node: node, expires: expires(entry, &reader)))
      }
    }
    state.standby = names("standby", &reader)
    state.maintenance = fields.boolean("maintenance", &reader) ?? false
    state.maintenanceNodes = names("maintenance_nodes", &reader)
    state.maintenanceResources = names("maintenance_resources", &reader).map { ResourceID($0) }
    if let mapping = fields["node_attributes"] {
      if let nodes = mapping.mapping {
        for (key, value) in nodes {
          guard let node = reader.string(key, at: fields.path("node_attributes")) else { continue }
          let path = fields.path("node_attributes.\(node)")
          let attributes = parameters(value, at: path, what: "attribute", &reader)
          for (name, text) in attributes {
            if let refusal = OperatorBlock.settingRefusal(name, text, limit: ClusterLimits.attributeValueBytes) {
              reader.fail(at: key, "\(path).\(name)", refusal)
            }
          }
          state.nodeAttributes[node] = Dictionary(
            attributes.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        }
      } else {
        reader.fail(at: mapping, fields.path("node_attributes"), "expected a mapping of node names to attributes")
      }
    }
    if let mapping = fields["properties"] {
      let properties = parameters(mapping, at: fields.path("properties"), what: "property", &reader)
      for (name, value) in properties {
        if let refusal = OperatorBlock.settingRefusal(name, value, limit: ClusterLimits.propertyValueBytes) {
          reader.fail(at: mapping, fields.path("properties.\(name)"), refusal)
        }
      }
      state.properties = Dictionary(properties.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
      if state.properties.count > ClusterLimits.clusterProperties {
        reader.fail(
          at: mapping, fields.path("properties"), "more than \(ClusterLimits.clusterProperties) cluster properties")
      }
    }
    // What could be read is applied, so that its other errors show too.
    return state
  }

  /// The operator block over the file's own settings: its constraints join
  /// the others, its standby and maintenance set the nodes, the cluster and
  /// the resources.
  func applyOperatorState(
    _ state: OperatorState, to config: inout ClusterConfig, top: Fields, _ reader: inout NodeReader
  ) {
    config.operatorState = state
    let block = top["operator"]
    let nodeNames = Set(config.nodes.map(\.name))
    for name in state.standby + state.maintenanceNodes + state.constraints.compactMap(\.node)
    where !nodeNames.contains(name) {
      reader.fail(at: block, "operator", "'\(name)' is not a node of this cluster")
    }
    for index in config.nodes.indices {
      if state.standby.contains(config.nodes[index].name) { config.nodes[index].mode = .standby }
      if state.maintenanceNodes.contains(config.nodes[index].name) { config.nodes[index].maintenance = true }
    }
    if state.maintenance { config.cluster.maintenance = true }
    for resource in state.maintenanceResources {
      if let index = config.resources.firstIndex(where: { $0.id == resource }) {
        config.resources[index].managed = false
      } else {
        reader.fail(at: block, "operator.maintenance_resources", "'\(resource)' is not a resource")
      }
    }
    config.constraints.locations += state.constraints
    for (node, attributes) in state.nodeAttributes {
      guard let index = config.nodes.firstIndex(where: { $0.name == node }) else {
        reader.fail(at: block, "operator.node_attributes", "'\(node)' is not a node of this cluster")
        continue
      }
      config.nodes[index].attributes.merge(attributes) { _, set in set }
      if config.nodes[index].attributes.count > ClusterLimits.nodeAttributes {
        reader.fail(
          at: block, "operator.node_attributes.\(node)",
          "\(node) has more than \(ClusterLimits.nodeAttributes) permanent attributes")
      }
    }
  }
}

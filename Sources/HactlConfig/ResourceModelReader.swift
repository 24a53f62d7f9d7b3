import HactlModel
import Yams

/// What `resource_defaults` and `operation_defaults` set for every
/// resource that does not set it itself (pacemaker's rsc_defaults and
/// op_defaults).
struct ResourceDefaults {
  var stickiness = ResourceSpec.defaultStickiness
  var migrationThreshold = ResourceSpec.defaultMigrationThreshold
  var failureTimeout: Duration?
  var targetRole = ResourceRunRole.started
  var managed = true
  var timeout = ResourceSpec.defaultOperationTimeout

  func apply(to spec: inout ResourceSpec) {
    spec.stickiness = stickiness
    spec.migrationThreshold = migrationThreshold
    spec.failureTimeout = failureTimeout
    spec.targetRole = targetRole
    spec.managed = managed
    spec.start.timeout = timeout
    spec.stop.timeout = timeout
    spec.monitor.timeout = timeout
    spec.promote.timeout = timeout
    spec.demote.timeout = timeout
    spec.notify.timeout = timeout
  }
}

/// Groups, clones, constraints and defaults: the parts of the file that
/// pacemaker calls the resource model.
extension ConfigBuilder {
  static let resourceDefaultKeys = ["stickiness", "migration_threshold", "failure_timeout", "target_role", "managed"]
  static let operationDefaultKeys = ["timeout"]
  static let groupKeys = ["id", "members", "target_role", "managed", "stickiness"]
  static let cloneKeys = [
    "id", "resource", "clone_max", "clone_node_max", "globally_unique", "interleave", "notify", "promotable",
    "promoted_max",
    "promoted_node_max", "target_role", "managed", "stickiness",
  ]
  static let constraintKinds = ["location", "colocation", "order"]
  static let locationKeys = ["id", "resource", "node", "rule", "score", "role", "expires"]
  static let colocationKeys = ["id", "resource", "with", "score", "role", "with_role"]
  static let orderKeys = ["id", "first", "first_action", "then", "then_action", "kind", "symmetrical"]

  func defaults(_ top: Fields, _ reader: inout NodeReader) -> ResourceDefaults {
    var defaults = ResourceDefaults()
    if let node = top["resource_defaults"],
      let fields = reader.fields(of: node, at: "resource_defaults", allowed: Self.resourceDefaultKeys)
    {
      if let score = fields.score("stickiness", &reader) { defaults.stickiness = score }
      if let value = fields.integer("migration_threshold", &reader, in: 1...1_000_000) {
        defaults.migrationThreshold = value
      }
      if let value = fields.duration("failure_timeout", &reader, allowZero: false) { defaults.failureTimeout = value }
      if let role = role(fields, "target_role", &reader) { defaults.targetRole = role }
      if let value = fields.boolean("managed", &reader) { defaults.managed = value }
    }
    if let node = top["operation_defaults"],
      let fields = reader.fields(of: node, at: "operation_defaults", allowed: Self.operationDefaultKeys),
      let value = fields.duration("timeout", &reader, allowZero: false)
    {
      defaults.timeout = value
    }
    return defaults
  }

  func role(_ fields: Fields, _ key: String, _ reader: inout NodeReader) -> ResourceRunRole? {
    guard let node = fields[key], let text = reader.string(node, at: fields.path(key)) else { return nil }
    guard let role = ResourceRunRole(parsing: text) else {
      let options = ResourceRunRole.allCases.map(\.rawValue).joined(separator: ", ")
      reader.fail(at: node, fields.path(key), "'\(text)' is not a role (one of: \(options))")
      return nil
    }
    return role
  }

  func meta(_ fields: Fields, _ reader: inout NodeReader) -> ResourceMeta {
    ResourceMeta(
      targetRole: role(fields, "target_role", &reader), managed: fields.boolean("managed", &reader),
      stickiness: fields.score("stickiness", &reader))
  }

  func identifier(_ fields: Fields, _ key: String, _ reader: inout NodeReader) -> String? {
    guard let node = fields.required(key, &reader), let value = reader.string(node, at: fields.path(key)) else {
      return nil
    }
    guard Self.isName(value) else {
      reader.fail(at: node, fields.path(key), Self.nameRule(value))
      return nil
    }
    return value
  }

  func groupList(_ node: Node, _ reader: inout NodeReader) -> [GroupSpec]? {
    guard let items = reader.list(node, at: "groups") else { return nil }
    var groups: [GroupSpec] = []
    for (index, item) in items.enumerated() {
      let path = "groups[\(index)]"
      guard let fields = reader.fields(of: item, at: path, allowed: Self.groupKeys) else { continue }
      let id = identifier(fields, "id", &reader)
      var members: [ResourceID] = []
      if let list = fields.required("members", &reader), let entries = reader.list(list, at: fields.path("members")) {
        if entries.isEmpty { reader.fail(at: list, fields.path("members"), "a group needs at least one member") }
        for (position, entry) in entries.enumerated() {
          if let name = reader.string(entry, at: fields.path("members[\(position)]")) {
            members.append(ResourceID(name))
          }
        }
      }
      let meta = meta(fields, &reader)
      // Kept even with errors of its own (they are recorded), so that what
      // refers to it does not also become an error.
      guard let id else { continue }
      groups.append(GroupSpec(id: ResourceID(id), members: members, meta: meta))
    }
    return groups
  }

  func cloneList(_ node: Node, _ reader: inout NodeReader) -> [CloneSpec]? {
    guard let items = reader.list(node, at: "clones") else { return nil }
    var clones: [CloneSpec] = []
    let instances = 1...ClusterLimits.resources
    for (index, item) in items.enumerated() {
      let path = "clones[\(index)]"
      guard let fields = reader.fields(of: item, at: path, allowed: Self.cloneKeys) else { continue }
      let id = identifier(fields, "id", &reader)
      let child = identifier(fields, "resource", &reader)
      var clone = CloneSpec(id: ResourceID(id ?? "-"), child: ResourceID(child ?? "-"))
      clone.cloneMax = fields.integer("clone_max", &reader, in: instances)
      if let value = fields.integer("clone_node_max", &reader, in: instances) { clone.cloneNodeMax = value }
      // Pacemaker's default: unique as soon as a node may hold several.
      clone.globallyUnique = fields.boolean("globally_unique", &reader) ?? (clone.cloneNodeMax > 1)
      if clone.cloneNodeMax > 1 && !clone.globallyUnique {
        // Anonymous copies on one node would share one agent instance name
        // and its state files (docs/decisions.md).
        reader.fail(
          at: fields["clone_node_max"], fields.path("clone_node_max"),
          "several instances on one node must each be a resource of their own: "
            + "set globally_unique: true, or clone_node_max: 1")
      }
      if let value = fields.boolean("interleave", &reader) { clone.interleave = value }
      if let value = fields.boolean("notify", &reader) { clone.notify = value }
      if let value = fields.boolean("promotable", &reader) { clone.promotable = value }
      if let value = fields.integer("promoted_max", &reader, in: 1...ClusterLimits.resources) {
        clone.promotedMax = value
      }
      if let value = fields.integer("promoted_node_max", &reader, in: 1...ClusterLimits.resources) {
        clone.promotedNodeMax = value
      }
      for key in ["promoted_max", "promoted_node_max"] where fields[key] != nil && !clone.promotable {
        reader.fail(at: fields[key], fields.path(key), "only means something with promotable: true")
      }
      if let most = clone.cloneMax, clone.promotable, clone.promotedMax > most {
        reader.fail(
          at: fields["promoted_max"], fields.path("promoted_max"),
          "\(clone.promotedMax) promoted instances, but clone_max allows only \(most) instances")
      }
      clone.meta = meta(fields, &reader)
      guard id != nil, child != nil else { continue }
      clones.append(clone)
    }
    return clones
  }

  func constraintSet(_ node: Node, _ reader: inout NodeReader) -> Constraints? {
    guard let fields = reader.fields(of: node, at: "constraints", allowed: Self.constraintKinds) else { return nil }
    var constraints = Constraints()
    func each(_ kind: String, _ keys: [String], _ reader: inout NodeReader, _ read: (Fields, inout NodeReader) -> Void)
    {
      guard let list = fields[kind], let items = reader.list(list, at: fields.path(kind)) else { return }
      for (index, item) in items.enumerated() {
        if let entry = reader.fields(of: item, at: fields.path("\(kind)[\(index)]"), allowed: keys) {
          read(entry, &reader)
        }
      }
    }
    each("location", Self.locationKeys, &reader) { entry, reader in
      if let location = location(entry, &reader) { constraints.locations.append(location) }
    }
    each("colocation", Self.colocationKeys, &reader) { entry, reader in
      let id = identifier(entry, "id", &reader)
      let resource = identifier(entry, "resource", &reader)
      let with = identifier(entry, "with", &reader)
      let score = entry.required("score", &reader).flatMap { reader.score($0, at: entry.path("score")) }
      let dependentRole = self.role(entry, "role", &reader)
      let withRole = self.role(entry, "with_role", &reader)
      guard let id, let resource, let with, let score else { return }
      constraints.colocations.append(
        ColocationConstraint(
          id: id, resource: ResourceID(resource), with: ResourceID(with), score: score, role: dependentRole,
          withRole: withRole))
    }
    each("order", Self.orderKeys, &reader) { entry, reader in
      let id = identifier(entry, "id", &reader)
      let first = identifier(entry, "first", &reader)
      let then = identifier(entry, "then", &reader)
      let firstAction = entry.choice("first_action", &reader, as: OrderAction.self)
      let thenAction = entry.choice("then_action", &reader, as: OrderAction.self)
      var kind = OrderKind.mandatory
      if let node = entry["kind"], let text = reader.string(node, at: entry.path("kind")) {
        if let parsed = OrderKind(parsing: text) {
          kind = parsed
        } else {
          let options = OrderKind.allCases.map(\.rawValue).joined(separator: ", ")
          reader.fail(at: node, entry.path("kind"), "'\(text)' is not an order kind (one of: \(options))")
        }
      }
      let symmetrical = entry.boolean("symmetrical", &reader)
      guard let id, let first, let then else { return }
      constraints.orders.append(
        OrderConstraint(
          id: id, first: ResourceID(first), firstAction: firstAction ?? .start, then: ResourceID(then),
          thenAction: thenAction, kind: kind, symmetrical: symmetrical))
    }
    // What could be read is checked against the rest too; the errors are
    // recorded, so the file is refused all the same.
    return constraints
  }

  func location(_ entry: Fields, _ reader: inout NodeReader) -> LocationConstraint? {
    let id = identifier(entry, "id", &reader)
    let resource = identifier(entry, "resource", &reader)
    let score = entry.required("score", &reader).flatMap { reader.score($0, at: entry.path("score")) }
    let role = self.role(entry, "role", &reader)
    var node: String?
    var rule: NodeRule?
    switch (entry["node"], entry["rule"]) {
    case (nil, nil):
      reader.fail(at: entry.node, entry.path("node"), "give 'node' (a node's name) or 'rule' (over node attributes)")
    case (.some, .some):
      reader.fail(at: entry["rule"], entry.path("rule"), "give either 'node' or 'rule', not both")
    case (let value?, nil):
      node = reader.string(value, at: entry.path("node"))
    case (nil, let value?):
      if let text = reader.string(value, at: entry.path("rule")) {
        switch RuleSyntax.parse(text) {
        case .success(let parsed): rule = parsed
        case .failure(let error): reader.fail(at: value, entry.path("rule"), error.reason)
        }
      }
    }
    let expires = self.expires(entry, &reader)
    guard let id, let resource, let score, node != nil || rule != nil else { return nil }
    return LocationConstraint(
      id: id, resource: ResourceID(resource), score: score, node: node, rule: rule, role: role, expires: expires)
  }

  /// `expires: "2026-11-29T10:00:00Z"`: from then on the constraint no
  /// longer applies.
  func expires(_ entry: Fields, _ reader: inout NodeReader) -> Int64? {
    guard let node = entry["expires"], let text = reader.string(node, at: entry.path("expires")) else { return nil }
    guard let moment = WallClockText.parse(text) else {
      reader.fail(at: node, entry.path("expires"), "'\(text)' is not a moment in UTC such as 2026-11-29T10:00:00Z")
      return nil
    }
    return moment
  }

  /// What needs every part read: ids in one namespace, members and children
  /// that exist and belong to one parent, constraints on what exists and
  /// roles only where promotion exists.
  func crossCheckModel(_ config: ClusterConfig, top: Fields, _ reader: inout NodeReader) {
    var kinds: [ResourceID: String] = [:]
    for spec in config.resources { kinds[spec.id] = "resource" }
    func claim(_ id: ResourceID, _ kind: String, at node: Node?, _ field: String, _ reader: inout NodeReader) -> Bool {
      if let existing = kinds[id] {
        reader.fail(at: node, field, "id '\(id)' is already used by a \(existing)")
        return false
      }
      kinds[id] = kind
      return true
    }
    let groupNodes = top["groups"]?.sequence.map(Array.init) ?? []
    let cloneNodes = top["clones"]?.sequence.map(Array.init) ?? []
    func field(_ items: [Node], _ index: Int, _ key: String) -> Node? {
      index < items.count ? items[index].mapping?[Node(key)] ?? items[index] : nil
    }
    var parent: [ResourceID: ResourceID] = [:]
    for (index, group) in config.groups.enumerated() {
      guard claim(group.id, "group", at: field(groupNodes, index, "id"), "groups[\(index)].id", &reader) else {
        continue
      }
      for (position, member) in group.members.enumerated() {
        let path = "groups[\(index)].members[\(position)]"
        let at = field(groupNodes, index, "members")?.sequence.map(Array.init).flatMap {
          position < $0.count ? $0[position] : nil
        }
        guard config.resource(member) != nil else {
          reader.fail(at: at, path, "'\(member)' is not a resource (a group holds resources, not groups or clones)")
          continue
        }
        if let other = parent[member] {
          reader.fail(at: at, path, "'\(member)' is already in \(other); a resource belongs to one group at most")
          continue
        }
        parent[member] = group.id
      }
    }
    for (index, clone) in config.clones.enumerated() {
      guard claim(clone.id, "clone", at: field(cloneNodes, index, "id"), "clones[\(index)].id", &reader) else {
        continue
      }
      let at = field(cloneNodes, index, "resource")
      let path = "clones[\(index)].resource"
      guard config.resource(clone.child) != nil || config.groups.contains(where: { $0.id == clone.child }) else {
        reader.fail(at: at, path, "'\(clone.child)' is not a resource or a group")
        continue
      }
      if let other = parent[clone.child] {
        reader.fail(at: at, path, "'\(clone.child)' is in \(other): clone the group, not its member")
        continue
      }
      parent[clone.child] = clone.id
      let primitives = config.groups.first(where: { $0.id == clone.child })?.members ?? [clone.child]
      for member in primitives {
        guard let agent = config.resource(member)?.agent, !agent.hasRoles, clone.promotable || clone.notify else {
          continue
        }
        let needs = clone.promotable ? "a promotable clone" : "notifications"
        reader.fail(
          at: field(cloneNodes, index, "resource"), "clones[\(index)].resource",
          "\(needs) need\(clone.promotable ? "s" : "") an OCF agent; '\(member)' is \(agent)")
      }
      if clone.globallyUnique {
        let refusal =
          config.groups.contains(where: { $0.id == clone.child })
          ? "'\(clone.child)' is a group: a globally-unique clone is of one resource"
          : clone.promotable
            ? "a promotable clone cannot be globally unique here (docs/decisions.md)"
            : clone.notify ? "a globally-unique clone gets no notifications here (docs/decisions.md)" : nil
        if let refusal {
          reader.fail(at: field(cloneNodes, index, "globally_unique"), "clones[\(index)].globally_unique", refusal)
        }
        if clone.cloneNodeMax > 1, let agent = config.resource(clone.child)?.agent, !agent.hasRoles {
          reader.fail(
            at: field(cloneNodes, index, "clone_node_max"), "clones[\(index)].clone_node_max",
            "several instances on one node need an OCF agent, which tells them apart; '\(clone.child)' is \(agent)")
        }
      }
      if clone.notify, config.groups.contains(where: { $0.id == clone.child }) {
        reader.fail(
          at: field(cloneNodes, index, "notify"), "clones[\(index)].notify",
          "notifications are sent to a clone of one resource; '\(clone.child)' is a group (clone its resources instead)"
        )
      }
      for member in config.groups.first(where: { $0.id == clone.child })?.members ?? [] {
        parent[member] = parent[member] ?? clone.id
      }
    }
    checkConstraints(config, kinds: kinds, parent: parent, top: top, &reader)
    // Without clones, the count of resources is checked with the members.
    let instances = config.instanceCount
    if !config.clones.isEmpty && instances > ClusterLimits.resources {
      reader.fail(
        at: top["clones"], "clones",
        "\(instances) resource instances (clone instances counted); a cluster has at most \(ClusterLimits.resources)")
    }
  }

  func checkConstraints(
    _ config: ClusterConfig, kinds: [ResourceID: String], parent: [ResourceID: ResourceID], top: Fields,
    _ reader: inout NodeReader
  ) {
    let section = top["constraints"]?.mapping
    // A constraint's place in the file, found by its id: entries that could
    // not be read at all are not in the model, so positions would shift.
    func position(_ kind: String, _ index: Int, id: String) -> Int {
      let items = section?[Node(kind)]?.sequence.map(Array.init) ?? []
      return items.indices.first { $0 >= index && items[$0].mapping?[Node("id")]?.scalar?.string == id } ?? index
    }
    func entry(_ kind: String, _ index: Int, _ key: String) -> Node? {
      if kind == "operator" { return top["operator"] }
      let items = section?[Node(kind)]?.sequence.map(Array.init) ?? []
      return index < items.count ? items[index].mapping?[Node(key)] ?? items[index] : nil
    }
    var ids: Set<String> = []
    func check(
      _ kind: String, _ index: Int, id: String, resources: [(key: String, id: ResourceID)],
      roles: [(key: String, role: ResourceRunRole?, resource: ResourceID)], _ reader: inout NodeReader
    ) {
      let path = kind == "operator" ? "operator.constraints" : "constraints.\(kind)[\(index)]"
      if !ids.insert(id).inserted {
        reader.fail(at: entry(kind, index, "id"), "\(path).id", "constraint id '\(id)' is already used")
      }
      for (key, resource) in resources {
        if kinds[resource] == nil {
          reader.fail(at: entry(kind, index, key), "\(path).\(key)", "'\(resource)' is not a resource, group or clone")
        } else if let owner = parent[resource] {
          reader.fail(
            at: entry(kind, index, key), "\(path).\(key)",
            "'\(resource)' is part of \(owner): constrain \(owner) instead")
        }
      }
      for (key, role, resource) in roles {
        guard let role, role == .promoted || role == .unpromoted else { continue }
        if !config.isPromotable(resource) {
          reader.fail(
            at: entry(kind, index, key), "\(path).\(key)",
            "\(role.rawValue) only applies to a promotable clone, and '\(resource)' is not one")
        }
      }
    }
    let fromOperator = Set(config.operatorState.constraints.map(\.id))
    for (modelIndex, location) in config.constraints.locations.enumerated() {
      let kind = fromOperator.contains(location.id) ? "operator" : "location"
      let index = position("location", modelIndex, id: location.id)
      check(
        kind, index, id: location.id, resources: [("resource", location.resource)],
        roles: [("role", location.role, location.resource)], &reader)
      // The operator block's nodes are checked with the block.
      if kind == "location", let node = location.node, !config.nodes.contains(where: { $0.name == node }) {
        let known = config.nodes.map(\.name).joined(separator: ", ")
        reader.fail(
          at: entry("location", index, "node"), "constraints.location[\(index)].node",
          "'\(node)' is not a node of this cluster (nodes: \(known))")
      }
    }
    for (modelIndex, colocation) in config.constraints.colocations.enumerated() {
      let index = position("colocation", modelIndex, id: colocation.id)
      check(
        "colocation", index, id: colocation.id,
        resources: [("resource", colocation.resource), ("with", colocation.with)],
        roles: [("role", colocation.role, colocation.resource), ("with_role", colocation.withRole, colocation.with)],
        &reader)
      if colocation.resource == colocation.with {
        reader.fail(
          at: entry("colocation", index, "with"), "constraints.colocation[\(index)].with",
          "a resource cannot be colocated with itself")
      }
    }
    for (modelIndex, order) in config.constraints.orders.enumerated() {
      let index = position("order", modelIndex, id: order.id)
      check(
        "order", index, id: order.id, resources: [("first", order.first), ("then", order.then)], roles: [], &reader)
      for (key, action, resource) in [
        ("first_action", order.firstAction, order.first), ("then_action", order.thenAction, order.then),
      ]
      where (action == .promote || action == .demote) && kinds[resource] != nil && !config.isPromotable(resource) {
        reader.fail(
          at: entry("order", index, key), "constraints.order[\(index)].\(key)",
          "'\(resource)' is not a promotable clone: it is never \(action.rawValue)d")
      }
      if order.first == order.then {
        reader.fail(
          at: entry("order", index, "then"), "constraints.order[\(index)].then",
          "a resource cannot be ordered after itself")
      }
    }
  }
}

/// `#uname eq db1 and site ne east`: pcs's rule expressions, joined by one
/// of `and` or `or` (not both: pacemaker nests rules for that).
public enum RuleSyntax {
  public struct Failure: Error, Equatable {
    public var reason: String
  }

  public static func parse(_ text: String) -> Result<NodeRule, Failure> {
    let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    guard !words.isEmpty else { return .failure(Failure(reason: "an empty rule")) }
    var clauses: [[String]] = [[]]
    var combination: NodeRule.Combination?
    for word in words {
      if let joiner = NodeRule.Combination(rawValue: word.lowercased()) {
        if let combination, combination != joiner {
          return .failure(Failure(reason: "a rule joins its expressions with 'and' or with 'or', not both"))
        }
        combination = joiner
        clauses.append([])
      } else {
        clauses[clauses.count - 1].append(word)
      }
    }
    var expressions: [AttributeExpression] = []
    for clause in clauses {
      switch clause.count {
      case 2:
        guard let operation = AttributeExpression.Operation(rawValue: clause[0].lowercased()),
          operation == .defined || operation == .notDefined
        else {
          return .failure(
            Failure(reason: "'\(clause.joined(separator: " "))' is not 'defined NAME' or 'not_defined NAME'"))
        }
        expressions.append(AttributeExpression(attribute: clause[1], operation: operation))
      case 3:
        guard let operation = AttributeExpression.Operation(rawValue: clause[1].lowercased()),
          operation != .defined, operation != .notDefined
        else {
          let operations = "eq, ne, lt, gt, lte, gte"
          return .failure(Failure(reason: "'\(clause[1])' is not a comparison (one of: \(operations))"))
        }
        expressions.append(AttributeExpression(attribute: clause[0], operation: operation, value: clause[2]))
      default:
        return .failure(
          Failure(
            reason:
              "'\(clause.joined(separator: " "))' is not an expression (NAME OP VALUE, defined NAME or not_defined NAME)"
          ))
      }
    }
    return .success(NodeRule(combination: combination ?? .and, expressions: expressions))
  }
}

import HactlConfig
import HactlModel
import Testing

/// The `operator:` block that hactl ban, clear, standby, online and
/// maintenance write: the rest of the operator's file stays as written.
struct OperatorBlockTests {
  let file = """
    # our pair
    cluster: { name: pair, key_file: key }
    nodes:
      - { name: a, id: 1, address: 127.0.0.1, port: 7001 }   # the first
      - { name: b, id: 2, address: 127.0.0.1, port: 7002 }
    resources:
      - { id: vip, agent: "ocf:heartbeat:Dummy" }
      - { id: db, agent: "ocf:heartbeat:Dummy" }
    """

  @Test func editsLandInTheBlockAndLeaveTheRestAsWritten() throws {
    var state = OperatorEdit.ban("vip", node: "a").applied(to: OperatorState())
    state = OperatorEdit.standby(node: "b").applied(to: state)
    state = OperatorEdit.maintenance(on: true, node: nil, resource: "db").applied(to: state)
    let once = OperatorBlock.rewrite(file, with: state)
    #expect(once.hasPrefix(file))
    #expect(once.contains("# the first"))
    let config = try ConfigLoader.parse(once, file: "c.yaml")
    #expect(config.operatorState == state)
    #expect(config.constraints.locations.map(\.id) == ["cli-ban-vip-on-a"])
    #expect(config.nodes[1].mode == .standby)
    #expect(config.resource("db")?.managed == false)

    // Rewriting replaces the block; clearing everything removes it.
    let cleared = OperatorEdit.online(node: "b").applied(to: OperatorEdit.clear("vip").applied(to: state))
    let twice = OperatorBlock.rewrite(once, with: cleared)
    #expect(twice.components(separatedBy: "operator:").count == 2)
    #expect(try ConfigLoader.parse(twice, file: "c.yaml").nodes[1].mode == .online)
    let none = OperatorBlock.rewrite(twice, with: OperatorState())
    #expect(!none.contains("operator:") && none.hasPrefix(file))
  }

  /// What agents keep with `crm_attribute -l forever` and `--type
  /// crm_config` lives in the block too: permanent node attributes over
  /// the file's own, and cluster properties, values quoted as written.
  @Test func agentsAttributesAndPropertiesLandInTheBlock() throws {
    var state = OperatorEdit.nodeAttribute(node: "b", name: "master-drbd0", value: "10000").applied(to: OperatorState())
    state = OperatorEdit.nodeAttribute(node: "a", name: "site", value: "north: #1").applied(to: state)
    state = OperatorEdit.property(name: "mysql_REPL_INFO", value: "a|mysql-bin.000003|154").applied(to: state)
    let text = OperatorBlock.rewrite(
      file.replacingOccurrences(of: "port: 7002 }", with: "port: 7002, attributes: { rack: r2 } }"), with: state)
    let config = try ConfigLoader.parse(text, file: "c.yaml")
    #expect(config.operatorState == state)
    #expect(config.nodes[1].attributes == ["rack": "r2", "master-drbd0": "10000"])
    #expect(config.nodes[0].attributes == ["site": "north: #1"])
    #expect(config.operatorState.properties["mysql_REPL_INFO"] == "a|mysql-bin.000003|154")

    // Removing the last of a node's attributes removes the node's entry.
    let removed = OperatorEdit.nodeAttribute(node: "a", name: "site", value: nil).applied(to: state)
    #expect(removed.nodeAttributes["a"] == nil)
    let again = try ConfigLoader.parse(OperatorBlock.rewrite(text, with: removed), file: "c.yaml")
    #expect(again.nodes[0].attributes.isEmpty)

    let stranger = file + "\noperator:\n  node_attributes:\n    c: { x: \"1\" }\n"
    #expect(throws: ConfigErrors.self) { try ConfigLoader.parse(stranger, file: "c.yaml") }
    // Read back with the limits an edit is asked with.
    let long = String(repeating: "x", count: ClusterLimits.propertyValueBytes + 1)
    let tooLong = file + "\noperator:\n  properties:\n    big: \"\(long)\"\n"
    #expect(throws: ConfigErrors.self) { try ConfigLoader.parse(tooLong, file: "c.yaml") }
    let escape = file + "\noperator:\n  node_attributes:\n    a: { x: \"\\e[2J\" }\n"
    do {
      _ = try ConfigLoader.parse(escape, file: "c.yaml")
      Issue.record("an attribute with an escape sequence was read back")
    } catch {
      #expect(error.description.contains("operator.node_attributes.a.x: the value must be one line of text"))
    }
  }

  @Test func aBlockNamingWhatDoesNotExistIsAnError() {
    let bad =
      file
      + "\noperator:\n  standby: [c]\n  constraints:\n    - { id: ban, resource: vip, node: a, score: -INFINITY }\n"
    #expect(throws: ConfigErrors.self) { try ConfigLoader.parse(bad, file: "c.yaml") }
    do {
      _ = try ConfigLoader.parse(bad, file: "c.yaml")
    } catch {
      #expect(error.description.contains("operator constraints are named cli-"))
      #expect(error.description.contains("'c' is not a node of this cluster"))
    }
  }

  @Test func theWriterKeepsTheBlockApart() throws {
    var state = OperatorEdit.pin("vip", node: "b").applied(to: OperatorState())
    state = OperatorEdit.maintenance(on: true, node: "a", resource: nil).applied(to: state)
    let config = try ConfigLoader.parse(OperatorBlock.rewrite(file, with: state), file: "c.yaml")
    let again = try ConfigLoader.parse(ConfigWriter.yaml(config), file: "w.yaml")
    #expect(again == config)
  }
}

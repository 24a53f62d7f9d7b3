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

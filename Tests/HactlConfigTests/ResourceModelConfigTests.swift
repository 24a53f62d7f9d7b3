import HactlConfig
import HactlModel
import Testing

/// Groups, clones and constraints that do not fit together are refused
/// with what is wrong and where, all at once.
struct ResourceModelConfigTests {
  let head = """
    cluster: { name: pair, key_file: key }
    nodes:
      - { name: a, id: 1, address: 127.0.0.1, port: 7001 }
      - { name: b, id: 2, address: 127.0.0.1, port: 7002 }
    resources:
      - { id: fs, agent: "ocf:heartbeat:Dummy" }
      - { id: db, agent: "ocf:heartbeat:Dummy" }
      - { id: drbd, agent: "ocf:heartbeat:Stateful" }
      - { id: vip, agent: "ocf:heartbeat:Dummy" }

    """

  func errors(_ body: String) -> [String] {
    do {
      _ = try ConfigLoader.parse(head + body, file: "c.yaml")
      return []
    } catch {
      return error.errors.map(\.description)
    }
  }

  @Test func aValidStackLoads() throws {
    let config = try ConfigLoader.parse(
      head + """
        groups:
          - { id: stack, members: [fs, db] }
        clones:
          - { id: drbd-clone, resource: drbd, promotable: true }
        constraints:
          colocation:
            - { id: stack-with-primary, resource: stack, with: drbd-clone, with_role: Master, score: INFINITY }
          order:
            - { id: primary-first, first: drbd-clone, first_action: promote, then: stack, then_action: start }
          location:
            - { id: vip-east, resource: vip, rule: "site eq east and #uname ne b", score: 100 }
        """, file: "c.yaml")
    #expect(config.constraints.colocations[0].withRole == .promoted)
    #expect(config.constraints.orders[0].symmetrical)
    #expect(config.constraints.locations[0].rule?.expressions.count == 2)
    #expect(config.instanceCount == 5)
  }

  @Test func everyMisfitIsNamedWithItsPlace() {
    let found = errors(
      """
      groups:
        - { id: stack, members: [fs, nothing] }
        - { id: other, members: [fs] }
      clones:
        - { id: fs-clone, resource: fs }
        - { id: vip-clone, resource: vip, promoted_max: 2 }
        - { id: db, resource: db }
      constraints:
        colocation:
          - { id: c1, resource: db, with: vip, score: INFINITY, with_role: Promoted }
          - { id: c1, resource: vip, with: vip, score: 100 }
        order:
          - { id: o1, first: vip, first_action: promote, then: drbd }
        location:
          - { id: l1, resource: vip, rule: "site eq east or #uname eq a and x gt 1", score: 10 }
          - { id: l2, resource: vip, node: c, score: 10 }
      """)
    let expected = [
      "groups[0].members[1]: 'nothing' is not a resource",
      "groups[1].members[0]: 'fs' is already in stack",
      "clones[0].resource: 'fs' is in stack: clone the group, not its member",
      "clones[1].promoted_max: only means something with promotable: true",
      "clones[2].id: id 'db' is already used by a resource",
      "constraints.colocation[0].with_role: Promoted only applies to a promotable clone, and 'vip' is not one",
      "constraints.colocation[1].id: constraint id 'c1' is already used",
      "constraints.colocation[1].with: a resource cannot be colocated with itself",
      "constraints.order[0].first_action: 'vip' is not a promotable clone: it is never promoted",
      "constraints.location[0].rule: a rule joins its expressions with 'and' or with 'or', not both",
      "constraints.location[1].node: 'c' is not a node of this cluster (nodes: a, b)",
    ]
    for message in expected {
      #expect(found.contains { $0.contains(message) }, "missing: \(message)\nfound:\n\(found.joined(separator: "\n"))")
    }
    #expect(found.allSatisfy { $0.hasPrefix("c.yaml:") })
  }

  @Test func constraintsNameTopLevelResourcesOnly() {
    let found = errors(
      """
      groups:
        - { id: stack, members: [fs, db] }
      constraints:
        location:
          - { id: l1, resource: db, node: a, score: 10 }
      """)
    #expect(found.contains { $0.contains("'db' is part of stack: constrain stack instead") }, "\(found)")
  }

  /// Several instances on a node make a clone globally unique (pacemaker's
  /// default); each instance is then `vip:N` on the nodes.
  @Test func severalInstancesOnANodeAreGloballyUnique() throws {
    let config = try ConfigLoader.parse(
      head + "clones:\n  - { id: vips, resource: vip, clone_max: 3, clone_node_max: 2 }\n", file: "c.yaml")
    let clone = try #require(config.clone("vips"))
    #expect(clone.globallyUnique && clone.cloneNodeMax == 2)
    #expect(config.executedResources.map(\.id) == ["fs", "db", "drbd", "vip:0", "vip:1", "vip:2"])
    #expect(config.executedResource("vip:2")?.agent == config.resource("vip")?.agent)
    #expect(config.executedResource("vip") == nil && config.executedResource("vip:3") == nil)
    #expect(config.executedResource("vip:02") == nil && config.executedResource("fs:0") == nil)
    #expect(config.instanceCount == 6)
    let reread = try ConfigLoader.parse(ConfigWriter.yaml(config), file: "w.yaml")
    #expect(reread.clone("vips") == clone)
    let anonymous = try ConfigLoader.parse(head + "clones:\n  - { id: vips, resource: vip }\n", file: "c.yaml")
    #expect(anonymous.clone("vips")?.globallyUnique == false)
    #expect(anonymous.executedResources.map(\.id) == ["fs", "db", "drbd", "vip"])
  }

  @Test func whatTheDaemonCannotRunYetIsRefused() {
    let found = errors(
      """
      clones:
        - { id: vips, resource: vip, clone_node_max: 2, globally_unique: false }
      """ + "\n")
    #expect(
      found.contains {
        $0.contains("clones[0].clone_node_max: several instances on one node must each be a resource of their own")
      }, "\(found)")
    let uniqueRefusals = errors(
      """
        - { id: web, agent: "lsb:nginx" }
      groups:
        - { id: stack, members: [fs, db] }
      clones:
        - { id: stacks, resource: stack, globally_unique: true }
        - { id: drbds, resource: drbd, promotable: true, globally_unique: true }
        - { id: vips, resource: vip, notify: true, globally_unique: true }
        - { id: webs, resource: web, clone_node_max: 2 }
      """ + "\n")
    for message in [
      "clones[0].globally_unique: 'stack' is a group: a globally-unique clone is of one resource",
      "clones[1].globally_unique: a promotable clone cannot be globally unique here",
      "clones[2].globally_unique: a globally-unique clone gets no notifications here",
      "clones[3].clone_node_max: several instances on one node need an OCF agent, which tells them apart; 'web' is lsb:nginx",
    ] {
      #expect(uniqueRefusals.contains { $0.contains(message) }, "missing: \(message)\nfound: \(uniqueRefusals)")
    }
    let policies = errors("resource_defaults: { migration_threshold: 2 }\n")
    #expect(policies.isEmpty)
    let lsbPromotable = errors(
      "  - { id: init, agent: \"lsb:nginx\" }\nclones:\n  - { id: inits, resource: init, promotable: true }\n")
    #expect(
      lsbPromotable.contains { $0.contains("a promotable clone needs an OCF agent; 'init' is lsb:nginx") },
      "\(lsbPromotable)")
    let groupNotify = errors(
      """
      groups:
        - { id: stack, members: [fs, db] }
      clones:
        - { id: stacks, resource: stack, notify: true }
      """ + "\n")
    #expect(
      groupNotify.contains {
        $0.contains("clones[0].notify: notifications are sent to a clone of one resource; 'stack' is a group")
      }, "\(groupNotify)")
  }

  @Test func aCloneWithNotifyTakesItsNotifyTimeoutFromTheDefaults() throws {
    let config = try ConfigLoader.parse(
      head.replacingOccurrences(
        of: "{ id: drbd, agent: \"ocf:heartbeat:Stateful\" }",
        with: "{ id: drbd, agent: \"ocf:heartbeat:Stateful\", notify: { timeout: 90s } }")
          + """
          operation_defaults: { timeout: 40s }
          clones:
            - { id: drbd-clone, resource: drbd, promotable: true, notify: true }
          """, file: "c.yaml")
    #expect(config.resource("drbd")?.notify.timeout == .seconds(90))
    #expect(config.resource("fs")?.notify.timeout == .seconds(40))
    #expect(config.clones[0].notify)
  }

  @Test func momentsAndLifetimesReadAsOperatorsWriteThem() throws {
    #expect(WallClockText.parse("1970-01-01T00:00:00Z") == 0)
    #expect(WallClockText.parse("2026-11-29T10:00:00Z") == 1_795_946_400)
    #expect(WallClockText.parse("2024-02-29T23:59:59Z") == 1_709_251_199)
    for moment: Int64 in [0, 951_782_400, 1_709_251_199, 1_795_946_400, WallClockText.latest] {
      #expect(WallClockText.parse(WallClockText.format(moment)) == moment)
    }
    for bad in [
      "2026-11-29 10:00:00", "2026-11-29T10:00:00", "2026-11-29T10:00:00+01:00", "2023-02-29T00:00:00Z",
      "2026-13-01T00:00:00Z", "2026-11-29T24:00:00Z", "1969-12-31T23:59:59Z", "２０２６-11-29T10:00:00Z", "",
    ] {
      #expect(WallClockText.parse(bad) == nil, "\(bad)")
    }
    #expect(WallClockText.lifetime("90s") == 90)
    #expect(WallClockText.lifetime("1h30m") == 5400)
    #expect(WallClockText.lifetime("PT1H30M") == 5400)
    #expect(WallClockText.lifetime("P1DT2H") == 93_600)
    #expect(WallClockText.lifetime("2d") == 172_800)
    for bad in ["", "0s", "P1M", "1y", "h", "PT", "-5m", "99999999999s", "20000d", "1.5h"] {
      #expect(WallClockText.lifetime(bad) == nil, "\(bad)")
    }
    let found = errors(
      """
      constraints:
        location:
          - { id: soon, resource: vip, node: a, score: 100, expires: "tomorrow" }
      """ + "\n")
    #expect(
      found.contains { $0.contains("expires: 'tomorrow' is not a moment in UTC such as 2026-11-29T10:00:00Z") },
      "\(found)")
  }
}

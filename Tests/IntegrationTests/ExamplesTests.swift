import Foundation
import HactlConfig
import HactlControl
import HactlLab
import HactlModel
import Testing

/// Every example configuration is valid, and `hactl config check` says so;
/// a broken file gets every error and a non-zero exit.
struct ExamplesTests {
  static var root: String { LocalCluster.packageRoot() ?? FileManager.default.currentDirectoryPath }

  static var examples: [String] {
    let folder = root + "/examples"
    return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
      .filter { $0.hasSuffix(".yaml") }.sorted().map { folder + "/" + $0 }
  }

  @Test func thereAreExamples() {
    #expect(Self.examples.count >= 3)
  }

  @Test(arguments: examples)
  func exampleIsValid(path: String) throws {
    let config = try ConfigLoader.load(path: path)
    #expect(!config.nodes.isEmpty)
  }

  func hactl(_ arguments: [String]) throws -> Tool.Result { try Tool.run(try Tool.hactl(), arguments) }

  /// systemd's default kills every process of the unit on stop, the
  /// services the agents started included, behind the stop agents' back.
  @Test func theSystemdUnitLeavesStopsToHactld() throws {
    let unit = try String(contentsOfFile: Self.root + "/examples/hactld.service", encoding: .utf8)
    let settings = unit.split(separator: "\n").filter { !$0.hasPrefix("#") }
    #expect(settings.contains("KillMode=process"))
    #expect(settings.contains("KillSignal=SIGTERM"))
    let timeout = settings.first { $0.hasPrefix("TimeoutStopSec=") }.flatMap { Int($0.dropFirst(15)) }
    #expect((timeout ?? 0) >= 120)
  }

  @Test func configCheckAcceptsAnExampleAndListsEveryErrorOfABrokenFile() throws {
    let good = try hactl(["config", "check", Self.root + "/examples/floating-ip-pair.yaml", "--metadata-cache", "none"])
    #expect(good.status == 0)
    #expect(good.output.contains("OK: cluster lb, 2 nodes, witness arbiter, 2 resources"))

    let broken = NSTemporaryDirectory() + "hactl-broken-\(UInt32.random(in: 0 ... .max)).yaml"
    defer { unlink(broken) }
    try "cluster:\n  name: x\n  key_file: k\n  dead_tme: 1s\nnodes:\n  - { name: a, id: 0, address: nowhere }\n"
      .write(toFile: broken, atomically: true, encoding: .utf8)
    let bad = try hactl(["config", "check", broken, "--metadata-cache", "none"])
    #expect(bad.status == 2)
    #expect(bad.errors.contains("\(broken):4:3: cluster.dead_tme: unknown key 'dead_tme' (did you mean 'dead_time'?)"))
    #expect(bad.errors.contains("\(broken):6:20: nodes[0].id: 0 is out of range (1...65535)"))
    #expect(bad.errors.contains("nodes[0].address: 'nowhere' is not an IPv4 or IPv6 address"))
    #expect(bad.errors.hasSuffix("hactl: \(broken): 3 errors\n"))

    // An agent this machine does not have is a warning, not an error.
    let missing = NSTemporaryDirectory() + "hactl-missing-\(UInt32.random(in: 0 ... .max)).yaml"
    defer { unlink(missing) }
    try """
    cluster: { name: x, key_file: k }
    nodes:
      - { name: a, id: 1, address: 127.0.0.1 }
    resources:
      - { id: vip, agent: "ocf:heartbeat:Nope" }
      - { id: web, agent: "lsb:hactl-no-such-script" }
    """.write(toFile: missing, atomically: true, encoding: .utf8)
    let warned = try hactl(["config", "check", missing, "--metadata-cache", "none"])
    #expect(warned.status == 0 && warned.output.contains("OK:"))
    #expect(
      warned.errors.contains(
        "resources[0] 'vip': ocf:heartbeat:Nope is not installed on this machine (no executable /usr/lib/ocf/resource.d/heartbeat/Nope)"
      ), "\(warned.errors)")
    #expect(warned.errors.contains("resources[1] 'web': lsb:hactl-no-such-script is not installed"))
  }

  /// With resource-agents installed (the test command installs it): the
  /// agents are listed and shown from their own meta-data, and a
  /// parameter the agent does not take, or a required one left out, is an
  /// error of `hactl config check` at its place in the file.
  @Test func agentsAreListedShownAndCheckedAgainstTheirMetadata() throws {
    guard access("/usr/lib/ocf/resource.d/heartbeat/IPaddr2", X_OK) == 0 else {
      Issue.record("resource-agents is not installed: scripts/test installs it")
      return
    }
    let listed = try hactl(["agent", "list", "ocf:heartbeat"])
    #expect(listed.status == 0)
    let names = listed.output.split(separator: "\n")
    #expect(names.contains("ocf:heartbeat:Dummy") && names.contains("ocf:heartbeat:IPaddr2"))
    #expect(names.allSatisfy { $0.hasPrefix("ocf:heartbeat:") })
    let shown = try hactl(["agent", "show", "ocf:heartbeat:IPaddr2", "--metadata-cache", "none"])
    #expect(shown.status == 0)
    #expect(shown.output.contains("  ip (string, required, unique, default \"\")\n      IPv4 or IPv6 address"))
    #expect(shown.output.contains("  start (timeout 20s)"))
    let unknown = try hactl(["agent", "list", "systemd"])
    #expect(unknown.status == 2 && unknown.errors.contains("unknown agent class 'systemd'"))

    let typo = NSTemporaryDirectory() + "hactl-typo-\(UInt32.random(in: 0 ... .max)).yaml"
    defer { unlink(typo) }
    try """
    cluster: { name: x, key_file: k }
    nodes:
      - { name: a, id: 1, address: 127.0.0.1 }
    resources:
      - id: vip
        agent: ocf:heartbeat:IPaddr2
        params:
          cidr_netmsk: "24"
    """.write(toFile: typo, atomically: true, encoding: .utf8)
    let checked = try hactl(["config", "check", typo, "--metadata-cache", "none"])
    #expect(checked.status == 2)
    #expect(
      checked.errors.contains(
        "\(typo):8:7: resources[0].params.cidr_netmsk: ocf:heartbeat:IPaddr2 takes no parameter 'cidr_netmsk' (did you mean 'cidr_netmask'?)"
      ), "\(checked.errors)")
    #expect(
      checked.errors.contains(
        "\(typo):8:7: resources[0].params: ocf:heartbeat:IPaddr2 requires the parameter 'ip'"))
    #expect(checked.errors.hasSuffix("hactl: \(typo): 2 errors\n"))
  }

  /// Fence devices are checked against their agents' meta-data (Debian's
  /// fence-agents): a misspelt option, a value not among its choices, and
  /// a missing required one, each at its place; a name the device's newer
  /// option replaces, and what hactld sets itself, are not missing.
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/fence_apc_snmp")))
  func fenceDevicesAreCheckedAgainstTheirAgents() throws {
    let path = NSTemporaryDirectory() + "hactl-fence-check-\(UUID().uuidString).yaml"
    defer { unlink(path) }
    try """
    cluster: { name: x, key_file: k }
    nodes:
      - { name: a, id: 1, address: 127.0.0.1 }
    fencing:
      devices:
        - id: ipmi
          agent: fence_ipmilan
          params: { ip: 127.0.0.1, lanplsu: "1", method: sideways }
          secrets: { password: { file: /etc/hactl/ipmi.pass } }
          hosts: [a]
        - id: pdu
          agent: fence_apc_snmp
          secrets: { community: { command: "cat /etc/hactl/community" } }
          host_map: "a:1"
    """.write(toFile: path, atomically: true, encoding: .utf8)
    let checked = try hactl(["config", "check", path, "--metadata-cache", "none"])
    #expect(checked.status == 2)
    let lines = checked.errors.split(separator: "\n").map(String.init)
    #expect(
      lines.contains {
        $0.hasPrefix(
          "\(path):8:32: fencing.devices[0].params.lanplsu: fence_ipmilan takes no parameter 'lanplsu' (did you mean 'lanplus'?)"
        )
      }, "\(lines)")
    #expect(
      lines.contains(
        "\(path):8:46: fencing.devices[0].params.method: 'sideways' is not one of fence_ipmilan's values for 'method': onoff, cycle"
      ))
    #expect(
      lines.contains {
        $0.hasPrefix("\(path):13:16: fencing.devices[1].params: fence_apc_snmp requires the parameter 'ip'")
      }, "\(lines)")
    for name in ["plug", "port", "ipaddr", "action"] {
      #expect(!lines.contains { $0.contains("requires the parameter '\(name)'") }, "\(name) is not missing")
    }
    #expect(lines.last == "hactl: \(path): 3 errors")
  }

  /// `hactl simulate` replays a scenario file with events on top, starts
  /// from a status saved as JSON, and refuses what names no node.
  @Test func simulateShowsWhatTheClusterWouldDo() throws {
    let scenario = Self.root + "/Tests/HactlSchedulerTests/Scenarios/drbd-stack-steady.yaml"
    let steady = try hactl(["simulate", scenario])
    #expect(steady.status == 0)
    #expect(steady.output.contains("(nothing to do)"))
    let down = try hactl(["simulate", scenario, "--node-down", "db1"])
    #expect(down.output.contains("* Promote drbd0:1 ( Unpromoted -> Promoted db2 )"))
    #expect(down.output.contains("* Start fs ( db2 )"))
    let bad = try hactl(["simulate", scenario, "--fail", "fs:monitor:nowhere"])
    #expect(bad.status == 2)
    #expect(bad.errors.contains("'nowhere' is not a node of this configuration"))

    let example = Self.root + "/examples/drbd-mysql-stack.yaml"
    let primary = try hactl(["simulate", "--config", example, "--attr", "db1:master-drbd0=10000", "--scores"])
    #expect(primary.output.contains("* Promote drbd0:0 ( Stopped -> Promoted db1 )"))
    #expect(primary.output.contains("promotion score (master-drbd0 = 10000) +10000"))

    let status = ClusterStatus(
      cluster: "trial", localNode: "node1", term: 3, leader: "node1",
      quorum: QuorumStatus(quorate: true, votes: 3, expectedVotes: 3, needed: 2, waitingFor: [], twoNode: false),
      nodes: [
        NodeStatus(name: "node1", id: 1, kind: .node, state: .online, leader: true, member: true),
        NodeStatus(name: "node2", id: 2, kind: .node, state: .online, leader: false, member: true),
      ],
      resources: [
        ResourceStatus(
          id: "dummy", agent: "ocf:heartbeat:Dummy", state: .started, node: "node2", activeOn: ["node2"],
          failCounts: [:], lastFailure: nil)
      ])
    let saved = NSTemporaryDirectory() + "hactl-status-\(UInt32.random(in: 0 ... .max)).json"
    defer { unlink(saved) }
    try StatusText.json(status).write(toFile: saved, atomically: true, encoding: .utf8)
    let dummy = Self.root + "/examples/dummy-pair.yaml"
    let live = try hactl(["simulate", "--config", dummy, "--state", saved])
    #expect(live.output.contains("(nothing to do)"))
    let lost = try hactl(["simulate", "--config", dummy, "--state", saved, "--node-down", "node2", "--json"])
    #expect(lost.output.contains("\"* Start dummy ( node1 )\""))
    // Only regular files of bounded size: a FIFO would otherwise wait forever.
    let fifo = NSTemporaryDirectory() + "hactl-fifo-\(UInt32.random(in: 0 ... .max))"
    #expect(mkfifo(fifo, 0o600) == 0)
    defer { unlink(fifo) }
    let refused = try hactl(["simulate", "--config", dummy, "--state", fifo])
    #expect(refused.status == 2 && refused.errors == "hactl: cannot read \(fifo): not a regular file\n")
  }

  @Test func keygenWritesAPrivateKeyAndRefusesToOverwrite() throws {
    let path = NSTemporaryDirectory() + "hactl-key-\(UInt32.random(in: 0 ... .max))"
    defer { unlink(path) }
    #expect(try hactl(["keygen", path]).status == 0)
    var info = stat()
    stat(path, &info)
    #expect(info.st_mode & 0o777 == 0o600)
    #expect(info.st_size == 64)
    let again = try hactl(["keygen", path])
    #expect(again.status != 0)
    #expect(again.errors.contains("exists; use --force"))
  }

  /// A timeout that cannot be a deadline once trapped after the move had
  /// been accepted; it must be refused before anything is asked (the socket
  /// named here does not exist, so reaching it would be another error).
  @Test(arguments: ["nan", "1e300", "inf", "-1", "0", "86401"])
  func migrateRefusesATimeoutThatIsNotADeadline(timeout: String) throws {
    let result = try hactl(["migrate", "db", "--timeout=\(timeout)", "--socket", "/nonexistent/hactld.sock"])
    #expect(result.status == 64, "\(result.errors)")
    #expect(result.errors.contains("--timeout must be a number of seconds above 0"), "\(result.errors)")
  }

  @Test func statusTextShowsWhereThingsRunAndWhy() {
    var status = ClusterStatus(
      cluster: "lb", localNode: "lb2", term: 4, leader: "lb2",
      quorum: QuorumStatus(quorate: true, votes: 2, expectedVotes: 3, needed: 2),
      nodes: [
        NodeStatus(name: "lb1", id: 1, kind: .node, state: .lost, leader: false, member: false),
        NodeStatus(name: "lb2", id: 2, kind: .node, state: .online, leader: true, member: true),
        NodeStatus(name: "arbiter", id: 3, kind: .witness, state: .online, leader: false, member: true),
      ],
      resources: [
        ResourceStatus(
          id: "vip", agent: "ocf:heartbeat:IPaddr2", state: .started, node: "lb2", activeOn: ["lb2"],
          failCounts: ["lb1": 1],
          lastFailure: NodeFailure(
            node: "lb1",
            failure: ResourceFailure(action: .monitor, code: 7, reason: "not running (exit 7)", wallTime: 0))),
        ResourceStatus(
          id: "drbd0", agent: "ocf:linbit:drbd", state: .started, node: "lb2", activeOn: ["lb1", "lb2"],
          failCounts: [:], lastFailure: nil),
      ])
    status.resources[1].promotedOn = ["lb2"]
    status.resources[1].clone = "drbd0-clone"
    status.nodes[1].attributes = ["master-drbd0": "10000"]
    status.configuration = ConfigurationStatus(version: "4.7", behind: ["lb1"], restartNeeded: ["cluster.dead_time"])
    let text = StatusText.render(status)
    #expect(text.contains("Cluster lb, seen from lb2: term 4, leader lb2"))
    #expect(
      text.contains("Configuration: version 4.7; not yet on lb1; takes effect at restart: cluster.dead_time"), "\(text)"
    )
    #expect(text.contains("Quorum: yes (2 of 3 votes, 2 needed)"))
    #expect(text.contains("  lb1      id 1  node     lost"))
    #expect(text.contains("  vip                  ocf:heartbeat:IPaddr2  started on lb2  "), "\(text)")
    #expect(text.contains("failures: lb1=1"))
    #expect(text.contains("Node attributes:\n  lb2: master-drbd0=10000"))
    #expect(text.contains("vip: monitor on lb1 failed: not running (exit 7) at 1970-01-01T00:00:00Z"))
    #expect(text.contains("started Promoted on lb2, Unpromoted on lb1"), "\(text)")
    #expect(text.contains("  drbd0 [drbd0-clone]  ocf:linbit:drbd"), "\(text)")
    // The JSON field names are a documented, stable schema.
    let json = StatusText.json(status)
    for field in [
      "\"schema\" : \"hactl.status\\/1\"", "\"local_node\"", "\"expected_votes\"", "\"active_on\"", "\"fail_counts\"",
      "\"last_failure\"", "\"quorate\"", "\"needed\"", "\"member\"", "\"kind\" : \"witness\"",
      "\"configuration\"", "\"restart_needed\"", "\"behind\"", "\"promoted_on\"", "\"attributes\"",
    ] {
      #expect(json.contains(field), "\(field)")
    }
  }
}

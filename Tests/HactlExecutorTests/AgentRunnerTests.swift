import Foundation
import HactlExecutor
import HactlModel
import Testing

/// Runs real shell-script agents in a temporary folder, removed after each test.
@Suite(.serialized)
final class AgentRunnerTests {
  let folder: String

  init() throws {
    var template = Array((NSTemporaryDirectory() + "hactl-agent-XXXXXX").utf8CString)
    folder = String(cString: mkdtemp(&template)!)
  }

  deinit {
    try? FileManager.default.removeItem(atPath: folder)
  }

  func script(_ name: String, _ body: String) throws -> String {
    let path = folder + "/" + name
    try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    return path
  }

  static let spec = ResourceSpec(
    id: "vip", agent: AgentRef(provider: "heartbeat", type: "IPaddr2"),
    parameters: [(name: "ip", value: "192.0.2.10"), (name: "cidr_netmask", value: "24")])

  @Test func environmentFollowsTheOCFSpecification() throws {
    let environment = OCFEnvironment.variables(
      for: Self.spec, action: .monitor, timeout: .seconds(20), interval: .seconds(10), ocfRoot: "/usr/lib/ocf",
      nodeName: "alpha", runtimeFolder: "/run/x")
    #expect(environment["OCF_ROOT"] == "/usr/lib/ocf")
    #expect(environment["OCF_RESOURCE_INSTANCE"] == "vip")
    #expect(environment["OCF_RESOURCE_TYPE"] == "IPaddr2")
    #expect(environment["OCF_RESOURCE_PROVIDER"] == "heartbeat")
    #expect(environment["OCF_RESKEY_ip"] == "192.0.2.10")
    #expect(environment["OCF_RESKEY_cidr_netmask"] == "24")
    #expect(environment["OCF_RESKEY_CRM_meta_timeout"] == "20000")
    #expect(environment["OCF_RESKEY_CRM_meta_interval"] == "10000")
    #expect(environment["OCF_RA_VERSION_MAJOR"] == "1")
    #expect(environment["HA_RSCTMP"] == "/run/x")
    #expect(environment["OCF_RESKEY_CRM_meta_probe"] == nil)
    let probe = OCFEnvironment.variables(
      for: Self.spec, action: .monitor, timeout: .seconds(20), interval: .zero, ocfRoot: "/r", nodeName: "a")
    #expect(probe["OCF_RESKEY_CRM_meta_interval"] == "0")
    #expect(probe["OCF_RESKEY_CRM_meta_probe"] == "true")
    #expect(OCFEnvironment.agentPath(for: Self.spec.agent, ocfRoot: "/r") == "/r/resource.d/heartbeat/IPaddr2")
    #expect(environment["OCF_RESKEY_CRM_meta_name"] == "monitor")
    #expect(environment["OCF_CHECK_LEVEL"] == nil)
    var deep = Self.spec
    deep.monitor.depth = 10
    deep.monitorPromoted = OperationSpec(interval: .seconds(11), timeout: .seconds(20), depth: 20)
    let checked = OCFEnvironment.variables(
      for: deep, action: .monitor, timeout: .seconds(20), interval: .seconds(10), ocfRoot: "/r", nodeName: "a",
      nodeID: NodeID(3))
    #expect(checked["OCF_CHECK_LEVEL"] == "10" && checked["OCF_RESKEY_CRM_meta_on_node_uuid"] == "3")
    let promoted = OCFEnvironment.variables(
      for: deep, action: .monitor, timeout: .seconds(20), interval: .seconds(11), ocfRoot: "/r", nodeName: "a")
    #expect(promoted["OCF_CHECK_LEVEL"] == "20")
    #expect(probe["OCF_CHECK_LEVEL"] == nil)
  }

  @Test func theAgentSeesItsEnvironmentAndActionAndNothingElse() async throws {
    let path = try script(
      "env", "echo \"$1 $OCF_RESKEY_ip $OCF_RESOURCE_INSTANCE ${HOME:-nohome} $(readlink /proc/self/fd/0)\"")
    let run = await AgentRunner.run(
      AgentInvocation(
        path: path, action: "start", environment: ["OCF_RESKEY_ip": "192.0.2.10", "OCF_RESOURCE_INSTANCE": "vip"],
        timeout: .seconds(5)))
    #expect(run.outcome == .exited(0))
    // Its stdin is /dev/null, as under pacemaker (only fence agents get input).
    #expect(run.output == "start 192.0.2.10 vip nohome /dev/null\n")
  }

  static let codes: [(Int32, OCFResult)] = [
    (0, OCFResult.success), (1, .genericError), (2, .invalidArgument), (3, .unimplemented),
    (4, .insufficientPrivilege), (5, .notInstalled), (6, .notConfigured), (7, .notRunning),
    (8, .runningPromoted), (9, .failedPromoted), (190, .degraded), (191, .degradedPromoted), (42, .other(42)),
  ]

  @Test(arguments: codes)
  func exitCodesMapToOCFResults(code: Int32, expected: OCFResult) async throws {
    let path = try script("exit\(code)", "exit \(code)")
    let run = await AgentRunner.run(
      AgentInvocation(path: path, action: "monitor", environment: [:], timeout: .seconds(5)))
    #expect(run.outcome == .exited(code))
    #expect(OCFResult(outcome: run.outcome) == expected)
  }

  @Test func monitorMeaningsFollowTheSpecification() {
    #expect(OCFResult.success.monitorMeaning == .running)
    #expect(OCFResult.notRunning.monitorMeaning == .stopped)
    #expect(OCFResult.genericError.monitorMeaning == .failed)
    #expect(OCFResult.timedOut.monitorMeaning == .failed)
    #expect(OCFResult.degraded.monitorMeaning == .running)
  }

  @Test func missingOrNonExecutableAgentsCannotRun() async throws {
    let missing = await AgentRunner.run(
      AgentInvocation(path: folder + "/nope", action: "start", environment: [:], timeout: .seconds(5)))
    #expect(missing.outcome == .notInstalled("agent not found: \(folder)/nope"))
    #expect(OCFResult(outcome: missing.outcome) == .notInstalled)
    let plain = folder + "/plain"
    try "exit 0\n".write(toFile: plain, atomically: true, encoding: .utf8)
    let notExecutable = await AgentRunner.run(
      AgentInvocation(path: plain, action: "start", environment: [:], timeout: .seconds(5)))
    #expect(notExecutable.outcome == .notInstalled("agent not executable: \(plain)"))
  }

  @Test func outputPastTheCapIsReadAndDiscardedNotAnError() async throws {
    // ocf_log and OCF_TRACE_RA write to stderr; a running resource's probe
    // that talks a lot is still a running resource.
    let path = try script(
      "chatty",
      """
      echo first-line
      head -c 3000000 /dev/zero | tr '\\0' x >&2
      echo "ocf-exit-reason:last words" >&2
      exit 0
      """)
    let run = await AgentRunner.run(
      AgentInvocation(path: path, action: "monitor", environment: [:], timeout: .seconds(20)))
    #expect(run.outcome == .exited(0))
    #expect(OCFResult(outcome: run.outcome).monitorMeaning == .running)
    #expect(run.output.hasPrefix("first-line\n"))
    #expect(run.output.hasSuffix("ocf-exit-reason:last words\n"))
    #expect(run.output.contains("bytes of output discarded"))
    #expect(run.output.utf8.count < AgentRunner.outputLimit + 100)
  }

  @Test func anAgentKilledByASignalHasAnUnknownOutcomeNeverStopped() async throws {
    let path = try script("crashing", "kill -SEGV $$")
    let run = await AgentRunner.run(
      AgentInvocation(path: path, action: "monitor", environment: [:], timeout: .seconds(5)))
    #expect(run.outcome == .signaled(SIGSEGV))
    let result = OCFResult(outcome: run.outcome)
    #expect(result.monitorMeaning == .failed)
    #expect(result != .notInstalled && result != .notRunning)
  }

  @Test func anAgentThatCannotBeSpawnedIsNotCalledNotInstalled() async throws {
    // Executable, but the kernel cannot run it (as when exec fails for want
    // of descriptors or memory): the agent never ran.
    let path = folder + "/garbage"
    try Data([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]).write(to: URL(fileURLWithPath: path))
    chmod(path, 0o755)
    let run = await AgentRunner.run(
      AgentInvocation(path: path, action: "monitor", environment: [:], timeout: .seconds(5)))
    guard case .couldNotSpawn = run.outcome else {
      Issue.record("expected couldNotSpawn, got \(run.outcome)")
      return
    }
  }

  @Test func timeoutKillsTheWholeProcessGroupIncludingGrandchildren() async throws {
    // The agent starts a grandchild that ignores TERM, then hangs itself.
    let pidFile = folder + "/grandchild.pid"
    let path = try script(
      "hang",
      """
      sh -c 'trap "" TERM; echo $$ > \(pidFile); while :; do sleep 0.05; done' &
      trap "" TERM
      while :; do sleep 0.05; done
      """)
    let run = await AgentRunner.run(
      AgentInvocation(
        path: path, action: "start", environment: [:], timeout: .milliseconds(300), killGrace: .milliseconds(200)))
    #expect(run.outcome == .timedOut)
    #expect(OCFResult(outcome: run.outcome) == .timedOut)
    let grandchild = try #require(
      Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(try await isGone(grandchild), "grandchild \(grandchild) survived the timeout")
  }

  @Test func cancellingTheCallKillsTheAgentsWholeGroup() async throws {
    let pidFile = folder + "/cancelled.pid"
    let path = try script(
      "slow-monitor", "sh -c 'echo $$ > \(pidFile); sleep 30' &\nsleep 30")
    let task = Task {
      await AgentRunner.run(AgentInvocation(path: path, action: "monitor", environment: [:], timeout: .seconds(60)))
    }
    // Cancel once the grandchild runs (it wrote its pid), not after a guess.
    let deadline = ContinuousClock.now + .seconds(20)
    while (try? String(contentsOfFile: pidFile, encoding: .utf8))?.hasSuffix("\n") != true
      && ContinuousClock.now < deadline
    {
      try await Task.sleep(for: .milliseconds(5))
    }
    task.cancel()
    let run = await task.value
    // Killed, not finished: the agent would otherwise sleep 30 s and exit 0.
    #expect(run.outcome == .signaled(SIGKILL))
    let grandchild = try #require(
      Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(try await isGone(grandchild), "grandchild \(grandchild) survived the cancellation")
  }

  @Test func anAgentsBackgroundServiceOutlivesASuccessfulStart() async throws {
    // A start that daemonizes must return, and its daemon must keep running.
    let pidFile = folder + "/daemon.pid"
    let path = try script("daemon", "sleep 30 > /dev/null 2>&1 &\necho $! > \(pidFile)\nexit 0")
    let run = await AgentRunner.run(
      AgentInvocation(path: path, action: "start", environment: [:], timeout: .seconds(5)))
    #expect(run.outcome == .exited(0))
    let pid = try #require(
      Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(kill(pid, 0) == 0)
    kill(pid, SIGKILL)
  }

  /// Waits up to two seconds for `pid` to die (or be a zombie).
  func isGone(_ pid: Int32) async throws -> Bool {
    for _ in 0..<100 {
      if kill(pid, 0) != 0 || isZombie(pid) { return true }
      try await Task.sleep(for: .milliseconds(20))
    }
    return false
  }

  /// This project's Daemon agent: stop must take the command's children too
  /// (`sleep 300; true` keeps a shell with a child, unlike `exec sleep`).
  @Test func hactlDaemonAgentStopsTheCommandsWholeProcessGroup() async throws {
    let agent = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("resource-agents/hactl/Daemon").path
    let environment = [
      "OCF_ROOT": "/usr/lib/ocf", "OCF_RESOURCE_INSTANCE": "group", "OCF_RESKEY_command": "sleep 300; true",
      "OCF_RESKEY_state_dir": folder, "OCF_RESKEY_stop_grace": "1",
    ]
    func call(_ action: String) async -> AgentOutcome {
      await AgentRunner.run(
        AgentInvocation(path: agent, action: action, environment: environment, timeout: .seconds(10))
      )
      .outcome
    }
    #expect(await call("start") == .exited(0))
    let pidFile = try #require(
      try FileManager.default.contentsOfDirectory(atPath: folder).first { $0.hasSuffix(".pid") })
    let leader = try #require(
      Int32(
        try String(contentsOfFile: folder + "/" + pidFile, encoding: .utf8).trimmingCharacters(
          in: .whitespacesAndNewlines)))
    #expect(members(ofGroup: leader).count >= 2, "the shell and its sleep")
    #expect(await call("monitor") == .exited(0))
    #expect(await call("stop") == .exited(0))
    #expect(await call("monitor") == .exited(7))
    let left = members(ofGroup: leader).filter { !isZombie($0) }
    for pid in left { kill(pid, SIGKILL) }
    #expect(left.isEmpty, "processes \(left) of the command outlived stop")
  }

  /// Live processes whose process group is `group` (from /proc).
  func members(ofGroup group: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
      guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { return false }
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      return fields.count > 2 && Int32(fields[2]) == group
    }
  }

  func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
  }

  @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/lib/ocf/resource.d/heartbeat/Dummy")))
  func clusterLabsDummyRunsUnmodified() async throws {
    let spec = ResourceSpec(id: "dummy1", agent: AgentRef(provider: "heartbeat", type: "Dummy"))
    func call(_ action: AgentAction) async -> AgentOutcome {
      let environment = OCFEnvironment.variables(
        for: spec, action: action, timeout: .seconds(20), interval: .zero, ocfRoot: "/usr/lib/ocf", nodeName: "alpha",
        runtimeFolder: folder)
      return await AgentRunner.run(
        AgentInvocation(
          path: OCFEnvironment.agentPath(for: spec.agent, ocfRoot: "/usr/lib/ocf"), action: action.rawValue,
          environment: environment, timeout: .seconds(20))
      ).outcome
    }
    #expect(await call(.monitor) == .exited(7))
    #expect(await call(.start) == .exited(0))
    #expect(FileManager.default.fileExists(atPath: folder + "/Dummy-dummy1.state"))
    #expect(await call(.monitor) == .exited(0))
    #expect(await call(.stop) == .exited(0))
    #expect(await call(.monitor) == .exited(7))
    #expect(await call(.metaData) == .exited(0))
  }

  /// Runs one action of a resource through its class, as hactld does.
  func call(_ spec: ResourceSpec, _ action: AgentAction, folders: AgentFolders) async -> AgentOutcome {
    let invocation = AgentClass.invocation(
      AgentClass.Call(spec: spec, action: action, timeout: .seconds(5), interval: .zero, nodeName: "alpha"),
      folders: folders, exists: { FileManager.default.fileExists(atPath: $0) })
    let run = await AgentRunner.run(invocation)
    return AgentClass.ocfOutcome(of: run, agent: spec.agent, action: action)
  }

  @Test func anInitScriptIsCalledWithStatusAndItsCodesMappedAsPacemakerMapsThem() async throws {
    let state = folder + "/svc.state"
    _ = try script(
      "svc",
      """
      [ -z "$OCF_ROOT" ] || exit 6  # an init script gets no OCF variables
      case "$1" in
        start) touch \(state) ;;
        stop) rm -f \(state) ;;
        status) [ -e \(folder)/svc.code ] && exit "$(cat \(folder)/svc.code)"; [ -e \(state) ] || exit 3 ;;
        *) exit 3 ;;
      esac
      """)
    let spec = ResourceSpec(id: "svc", agent: try AgentRef.parse("lsb:svc").get())
    let folders = AgentFolders(ocfRoot: "/nonexistent", initScripts: folder)
    #expect(await call(spec, .monitor, folders: folders) == .exited(7))
    #expect(await call(spec, .start, folders: folders) == .exited(0))
    #expect(await call(spec, .monitor, folders: folders) == .exited(0))
    #expect(await call(spec, .stop, folders: folders) == .exited(0))
    // LSB status codes: dead with a pid file is stopped; 150 is pacemaker's
    // "not installed"; 4 (unknown) is a failure.
    for (status, ocf) in [(1, 7), (2, 7), (3, 7), (4, 1), (150, 5), (151, 4)] {
      try String(status).write(toFile: folder + "/svc.code", atomically: true, encoding: .utf8)
      #expect(await call(spec, .monitor, folders: folders) == .exited(Int32(ocf)), "LSB status \(status)")
    }
    // Other actions share OCF's codes up to 7; above is a failure.
    #expect(
      AgentClass.ocfOutcome(
        of: AgentRun(outcome: .exited(5), output: "", elapsed: .zero), agent: spec.agent, action: .start) == .exited(5))
    #expect(
      AgentClass.ocfOutcome(
        of: AgentRun(outcome: .exited(9), output: "", elapsed: .zero), agent: spec.agent, action: .start) == .exited(1))
    let missing = ResourceSpec(id: "gone", agent: try AgentRef.parse("lsb:gone").get())
    guard case .notInstalled = await call(missing, .monitor, folders: folders) else {
      Issue.record("a missing init script must be not installed")
      return
    }
  }

  @Test func aHeartbeatScriptTakesItsArgumentsFirstAndSaysRunningInWords() async throws {
    let resourceScripts = folder + "/resource.d"
    try FileManager.default.createDirectory(atPath: resourceScripts, withIntermediateDirectories: true)
    let state = folder + "/hb.state"
    let path = resourceScripts + "/IPaddr"
    try """
    #!/bin/sh
    echo "$@" >> \(folder)/hb.calls
    case "$3" in
      start) touch \(state) ;;
      stop) rm -f \(state) ;;
      status) if [ -e \(state) ]; then echo "IPaddr is running"; else echo "IPaddr is stopped"; fi ;;
    esac
    exit 0
    """.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    let spec = ResourceSpec(
      id: "ip", agent: try AgentRef.parse("heartbeat:IPaddr").get(),
      parameters: [(name: "1", value: "192.0.2.10/24"), (name: "2", value: "eth0")])
    let folders = AgentFolders(ocfRoot: "/nonexistent", heartbeatScripts: [resourceScripts, folder + "/init.d"])
    #expect(await call(spec, .monitor, folders: folders) == .exited(7))
    #expect(await call(spec, .start, folders: folders) == .exited(0))
    #expect(await call(spec, .monitor, folders: folders) == .exited(0))
    let calls = try String(contentsOfFile: folder + "/hb.calls", encoding: .utf8)
    #expect(calls.hasPrefix("192.0.2.10/24 eth0 status\n192.0.2.10/24 eth0 start\n"), "\(calls)")
  }

  @Test func anAdminsScriptIsCalledAsAnOCFAgentFromItsOwnPath() async throws {
    let path = try script(
      "mine", "[ \"$OCF_RESOURCE_INSTANCE\" = job ] || exit 6; [ \"$1\" = monitor ] && exit 7; exit 0")
    let spec = ResourceSpec(id: "job", agent: try AgentRef.parse("script:" + path).get())
    let folders = AgentFolders(ocfRoot: "/nonexistent")
    #expect(await call(spec, .monitor, folders: folders) == .exited(7))
    #expect(await call(spec, .start, folders: folders) == .exited(0))
    for bad in ["script:relative/path", "script:/a/../b", "lsb:../x", "upstart:x", "ocf:heartbeat"] {
      guard case .failure = AgentRef.parse(bad) else {
        Issue.record("'\(bad)' must be refused")
        continue
      }
    }
  }
}

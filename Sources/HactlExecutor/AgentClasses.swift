import HactlModel

/// Where each class's agents are found.
public struct AgentFolders: Sendable, Equatable {
  /// OCF_ROOT: agents in `resource.d/PROVIDER/TYPE`.
  public var ocfRoot: String
  /// Init scripts (`lsb:NAME`).
  public var initScripts: String
  /// Heartbeat v1 resource scripts (`heartbeat:NAME`), looked up in turn.
  public var heartbeatScripts: [String]

  public init(
    ocfRoot: String, initScripts: String = AgentRef.initScripts,
    heartbeatScripts: [String] = AgentRef.heartbeatScripts
  ) {
    self.ocfRoot = ocfRoot
    self.initScripts = initScripts
    self.heartbeatScripts = heartbeatScripts
  }
}

/// The one place that knows each agent class: how a call is made (program,
/// arguments, environment) and what its exit code means in OCF terms. The
/// controller reads every result as OCF; this turns each class's own
/// conventions into OCF, as pacemaker's executor does.
public enum AgentClass {
  /// Everything a call needs besides its class.
  public struct Call: Sendable {
    public var spec: ResourceSpec
    public var action: AgentAction
    public var timeout: Duration
    public var interval: Duration
    public var nodeName: String
    public var nodeID: NodeID?
    public var runtimeFolder: String?
    public var meta: [String: String]
    public var tools: AgentTools?

    public init(
      spec: ResourceSpec, action: AgentAction, timeout: Duration, interval: Duration, nodeName: String,
      nodeID: NodeID? = nil, runtimeFolder: String? = nil, meta: [String: String] = [:], tools: AgentTools? = nil
    ) {
      self.nodeID = nodeID
      self.spec = spec
      self.action = action
      self.timeout = timeout
      self.interval = interval
      self.nodeName = nodeName
      self.runtimeFolder = runtimeFolder
      self.meta = meta
      self.tools = tools
    }
  }

  public static func invocation(_ call: Call, folders: AgentFolders, exists: (String) -> Bool) -> AgentInvocation {
    let agent = call.spec.agent
    let candidates = agent.programs(
      ocfRoot: folders.ocfRoot, initScripts: folders.initScripts, heartbeatScripts: folders.heartbeatScripts)
    let path = candidates.first(where: exists) ?? candidates[0]
    switch agent.standard {
    case .ocf, .script:
      // An admin's script is called as an OCF agent: same environment, same codes.
      return AgentInvocation(
        path: path, arguments: [call.action.rawValue],
        environment: OCFEnvironment.variables(
          for: call.spec, action: call.action, timeout: call.timeout, interval: call.interval,
          ocfRoot: folders.ocfRoot, nodeName: call.nodeName, nodeID: call.nodeID, runtimeFolder: call.runtimeFolder,
          meta: call.meta, tools: call.tools),
        timeout: call.timeout)
    case .lsb:
      return AgentInvocation(
        path: path, arguments: [scriptAction(call.action)], environment: scriptEnvironment(call),
        timeout: call.timeout)
    case .heartbeat:
      // Heartbeat v1: the resource's arguments first (the parameters in
      // the order written), then the action.
      return AgentInvocation(
        path: path, arguments: call.spec.parameters.map(\.value) + [scriptAction(call.action)],
        environment: scriptEnvironment(call), timeout: call.timeout)
    }
  }

  /// The run's outcome in OCF terms.
  public static func ocfOutcome(of run: AgentRun, agent: AgentRef, action: AgentAction) -> AgentOutcome {
    guard case .exited(let code) = run.outcome else { return run.outcome }
    switch agent.standard {
    case .ocf, .script:
      return run.outcome
    case .lsb:
      return .exited(lsbToOCF(code, action: action))
    case .heartbeat:
      // Heartbeat's own rule: a status that says "running" or "OK" means
      // running, anything else stopped; other actions succeed with exit 0.
      guard action == .monitor else { return .exited(code == 0 ? 0 : 1) }
      let running = run.output.contains("running") || run.output.contains("OK")
      return .exited(running ? 0 : OCFResult.notRunning.code)
    }
  }

  /// pacemaker's LSB mapping: other actions share OCF's codes up to 7;
  /// `status` has codes of its own (LSB 3 and the dead-but-pid-file ones
  /// are "not running"; 150 and 151 are pacemaker's not installed and
  /// insufficient privileges).
  static func lsbToOCF(_ code: Int32, action: AgentAction) -> Int32 {
    guard action == .monitor else { return (0...7).contains(code) ? code : OCFResult.genericError.code }
    switch code {
    case 0: return OCFResult.success.code
    case 1, 2, 3: return OCFResult.notRunning.code
    case 150: return OCFResult.notInstalled.code
    case 151: return OCFResult.insufficientPrivilege.code
    default: return OCFResult.genericError.code
    }
  }

  /// Init and heartbeat scripts know `status` where OCF says `monitor`.
  static func scriptAction(_ action: AgentAction) -> String { action == .monitor ? "status" : action.rawValue }

  /// What an init script gets: a plain PATH and the runtime folder, not
  /// the OCF variables (pacemaker gives them none either).
  static func scriptEnvironment(_ call: Call) -> [String: String] {
    var environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"]
    if let folder = call.runtimeFolder { environment["HA_RSCTMP"] = folder }
    return environment
  }
}

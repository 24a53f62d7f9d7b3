import HactlModel

/// The environment an OCF agent expects (Resource Agent API, "Environment
/// variables"; the CRM_meta names are pacemaker's, which agents rely on).
public enum OCFEnvironment {
  public static func variables(
    for spec: ResourceSpec, action: AgentAction, timeout: Duration, interval: Duration, ocfRoot: String,
    nodeName: String, nodeID: NodeID? = nil, runtimeFolder: String? = nil, meta: [String: String] = [:],
    tools: AgentTools? = nil
  ) -> [String: String] {
    var environment: [String: String] = [
      "OCF_ROOT": ocfRoot,
      "OCF_FUNCTIONS_DIR": ocfRoot + "/lib/heartbeat",
      "OCF_RA_VERSION_MAJOR": "1",
      "OCF_RA_VERSION_MINOR": "1",
      "OCF_RESOURCE_INSTANCE": spec.id.rawValue,
      "OCF_RESOURCE_TYPE": spec.agent.type,
      "OCF_RESOURCE_PROVIDER": spec.agent.provider,
      "OCF_RESKEY_CRM_meta_timeout": String(timeout.milliseconds),
      "OCF_RESKEY_CRM_meta_interval": String(interval.milliseconds),
      "OCF_RESKEY_CRM_meta_on_node": nodeName,
      "OCF_RESKEY_CRM_meta_name": action.rawValue,
      "HA_LOGTAG": "hactl-agent",
      "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    if let runtimeFolder {
      // Where agents keep pid and state files (ocf-directories' HA_RSCTMP).
      environment["HA_RSCTMP"] = runtimeFolder
    }
    if let nodeID { environment["OCF_RESKEY_CRM_meta_on_node_uuid"] = String(nodeID.rawValue) }
    if action == .monitor && interval == .zero {
      environment["OCF_RESKEY_CRM_meta_probe"] = "true"
    }
    if action == .monitor && interval > .zero {
      // The recurring monitor of this interval: the Promoted one when its
      // interval is this one, as pacemaker tells them apart.
      let monitor = spec.monitorPromoted.flatMap { $0.interval == interval ? $0 : nil } ?? spec.monitor
      if let depth = monitor.depth { environment["OCF_CHECK_LEVEL"] = String(depth) }
    }
    for (name, value) in meta {
      environment["OCF_RESKEY_CRM_meta_" + name.replacingDashes] = value
    }
    if let tools {
      // pacemaker's command-line tools that agents call (crm_attribute,
      // crm_master), answered by the local hactld: first on PATH and as
      // HA_SBIN_DIR, where ocf-shellfuncs looks for them.
      environment["HA_SBIN_DIR"] = tools.folder
      environment["PATH"] = tools.folder + ":" + environment["PATH"]!
      environment["HACTL_SOCKET"] = tools.socketPath
    }
    for parameter in spec.parameters {
      environment["OCF_RESKEY_" + parameter.name] = parameter.value
    }
    return environment
  }

  /// `ROOT/resource.d/PROVIDER/TYPE`.
  public static func agentPath(for agent: AgentRef, ocfRoot: String) -> String {
    agent.programs(ocfRoot: ocfRoot)[0]
  }
}

/// Where the compatibility commands are for agents, and the control socket
/// they answer through.
public struct AgentTools: Sendable, Equatable {
  public var folder: String
  public var socketPath: String
  public init(folder: String, socketPath: String) {
    self.folder = folder
    self.socketPath = socketPath
  }

  /// The commands, each a link to `hactl`, which answers as the command
  /// it is called by.
  public static let commands = ["crm_attribute", "crm_master", "attrd_updater", "crm_node", "crm_resource"]
}

extension String {
  fileprivate var replacingDashes: String { String(map { $0 == "-" ? "_" : $0 }) }
}

import HactlModel

/// The environment an OCF agent expects (Resource Agent API, "Environment
/// variables"; the CRM_meta names are pacemaker's, which agents rely on).
public enum OCFEnvironment {
  public static func variables(
    for spec: ResourceSpec, action: AgentAction, timeout: Duration, interval: Duration, ocfRoot: String,
    nodeName: String, runtimeFolder: String? = nil
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
      "HA_LOGTAG": "hactl-agent",
      "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    ]
    if let runtimeFolder {
      // Where agents keep pid and state files (ocf-directories' HA_RSCTMP).
      environment["HA_RSCTMP"] = runtimeFolder
    }
    if action == .monitor && interval == .zero {
      environment["OCF_RESKEY_CRM_meta_probe"] = "true"
    }
    for parameter in spec.parameters {
      environment["OCF_RESKEY_" + parameter.name] = parameter.value
    }
    return environment
  }

  /// `ROOT/resource.d/PROVIDER/TYPE`.
  public static func agentPath(for agent: AgentRef, ocfRoot: String) -> String {
    "\(ocfRoot)/resource.d/\(agent.provider)/\(agent.type)"
  }
}

import HactlModel
import HactlScheduler

extension ClusterSnapshot {
  /// A live cluster as `hactl status --json` printed it: which nodes are
  /// online or in standby, where each resource is and how, and its fail
  /// counts. A lost node runs nothing, as the leader takes it.
  public init(status: ClusterStatus) {
    self.init()
    for node in status.nodes where node.kind == .node {
      var state = NodeState()
      state.online = node.member && (node.state == .online || node.state == .standby)
      state.standby = node.state == .standby ? true : nil
      nodes[node.name] = state
    }
    let online = Set(nodes.filter { $0.value.online }.keys)
    for resource in status.resources {
      let id = ResourceID(resource.id)
      for (node, count) in resource.failCounts where count > 0 {
        failures.append(Failure(resource: id, node: node, operation: "monitor", count: count, age: .zero))
      }
      let state: ObservedState
      switch resource.state {
      case .started: state = .running(.started, settled: true)
      case .starting: state = .running(.started, settled: false)
      case .stopping: state = .stopping
      case .failed, .unknown: state = .failed
      case .blocked: state = .blocked
      case .stopped: continue
      }
      for node in resource.activeOn where online.contains(node) {
        instances.append(Instance(instance: InstanceID(id), node: node, state: state))
      }
    }
  }
}

import HactlModel
import HactlWire

/// `hactl cleanup`: a node forgets a resource's failures and probes it
/// again. The request travels in the asking node's heartbeats, which every
/// peer receives, so each node concerned applies it when it sees it (once
/// per request); the leader answers the asker.
extension NodeController {
  public mutating func requestCleanup(resource: String, node: String?, now: Instant)
    -> (Result<UInt64, RequestError>, [ControllerEffect])
  {
    let id = ResourceID(resource)
    guard !primitives(of: id).isEmpty else { return (.failure(.unknownResource(resource)), []) }
    return queueRequest(naming: node, now: now) { .cleanup(id, node: $0) }
  }

  /// The resources nodes run that a resource, group or clone id stands
  /// for (every instance of a globally-unique clone, or one of them).
  func primitives(of id: ResourceID) -> [ResourceID] {
    if config.executedResource(id) != nil { return [id] }
    let child = config.clone(id)?.child ?? id
    if let clone = config.clones.first(where: { $0.globallyUnique && $0.child == child }) {
      return (0..<clone.maximumInstances(nodes: config.nodes.count)).map(clone.instanceResource)
    }
    if let group = config.group(child) { return group.members }
    return config.resource(child) != nil ? [child] : []
  }

  /// Requests for this node to apply (cleanups, and changes of its
  /// transient attributes asked on another node), by any node, itself
  /// included, that it has not applied yet.
  var requestsDue: [(key: RequestKey, kind: OperatorRequest.Kind)] {
    guard local.kind == .node else { return [] }
    var incoming = peerRequests.map { ($0.key, $0.value) }
    incoming.append((local.id, pendingRequests))
    var due: [(RequestKey, OperatorRequest.Kind)] = []
    for (origin, requests) in incoming.sorted(by: { $0.0 < $1.0 }) {
      for request in requests where request.kind.isAppliedByNodes {
        guard request.kind.appliedOn.map({ $0 == local.id }) ?? true else { continue }
        let key = RequestKey(origin: origin, id: request.id)
        if !appliedRequests.contains(key) { due.append((key, request.kind)) }
      }
    }
    return due
  }

  /// Applies the requests due here; true when a resource or an attribute
  /// changed.
  mutating func applyRequests() -> (changed: Bool, effects: [ControllerEffect]) {
    var changed = false
    var effects: [ControllerEffect] = []
    for (key, kind) in requestsDue {
      _ = appliedRequests.firstTime(key)
      switch kind {
      case .cleanup(let resource, _):
        for id in primitives(of: resource) {
          guard var local = resources[id] else { continue }
          local.cleanUp()
          resources[id] = local
          changed = true
        }
        effects.append(
          .log(.notice, "\(resource): failures forgotten, probing again (asked on \(name(of: key.origin)))"))
      case .attribute(_, let attribute, let value):
        // Checked where it was asked; a value this node cannot hold (its
        // limit reached meanwhile) is left out and said.
        if let refusal = Self.checkTransient(attribute, value, have: transientAttributes) {
          effects.append(.log(.warning, "attribute \(attribute) asked on \(name(of: key.origin)) not set: \(refusal)"))
          continue
        }
        if transientAttributes[attribute] != value {
          transientAttributes[attribute] = value
          changed = true
        }
      case .move, .fence:
        break
      }
    }
    return (changed, effects)
  }
}

extension LocalResource {
  /// Forgets failures; a resource not known to run is probed again (a
  /// blocked one included: the operator says its stop was dealt with).
  mutating func cleanUp() {
    failCount = 0
    lastFailure = nil
    lastFailureOutput = nil
    lastFailureAt = nil
    halted = false
    promotionFailed = false
    standbyOnFail = false
    if inFlight == nil && [.blocked, .stopped].contains(role) {
      role = .unknown
      nextMonitor = nil
    }
  }
}

import HactlMembership
import HactlModel
import HactlWire

/// One agent invocation the shell must perform, then report back with
/// `NodeController.agentFinished`.
public struct AgentCall: Sendable, Hashable {
  public var id: UInt64
  public var resource: ResourceID
  public var action: AgentAction
  public var timeout: Duration
  /// OCF_RESKEY_CRM_meta_interval: zero for probes and one-shot actions.
  public var interval: Duration
  public var isProbe: Bool
  /// Meta attributes the agent gets as OCF_RESKEY_CRM_meta_NAME besides
  /// timeout and interval: a clone's (clone, clone_max, promoted_max...).
  public var meta: [String: String]
  /// The definition to call the agent with: the one it was started with
  /// (until it has stopped), or for a reload the new one. It travels with
  /// the call, so the executor never reads it back from the controller.
  public var definition: ResourceSpec

  public init(
    id: UInt64, definition: ResourceSpec, action: AgentAction, timeout: Duration, interval: Duration,
    isProbe: Bool, meta: [String: String] = [:]
  ) {
    self.id = id
    self.resource = definition.id
    self.definition = definition
    self.action = action
    self.timeout = timeout
    self.interval = interval
    self.isProbe = isProbe
    self.meta = meta
  }
}

public enum LogLevel: String, Sendable, Hashable {
  case debug, info, notice, warning, error
}

/// What the controller asks the world to do, in order.
public enum ControllerEffect: Sendable, Hashable {
  case send(to: NodeID, Message)
  /// Must be durable (written, fsynced, renamed) before later effects run.
  case persistElection(ElectionRecord)
  /// A configuration to keep (write, fsync, rename) before later effects
  /// run: the heartbeats after it tell peers this node holds it.
  case persistConfig(ConfigDocument)
  /// Definitions this node may still be running that its configuration no
  /// longer holds (removed, or replaced by a new definition), until each is
  /// known stopped: a restarted daemon stops them before anything else.
  /// Written before the configuration that drops them.
  case persistRetiring([ResourceSpec])
  case runAgent(AgentCall)
  /// One attempt of one fence device; its result comes back as
  /// `fenceFinished`.
  case runFence(FenceCall)
  /// Keep the watchdog from resetting this machine for another timeout.
  case feedWatchdog
  /// A line for this node's fencing history (kept on its disk, bounded).
  case recordFencing(FencingEvent)
  /// Abandon a call (a monitor standing between a resource and its stop):
  /// kill it; its result, if any, is ignored.
  case cancelAgent(UInt64)
  /// The leader answered an operator request made on this node.
  case requestAnswered(RequestAnswer)
  case log(LogLevel, String)
}

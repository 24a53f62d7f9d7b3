/// How the cluster powers off or cuts off a node it has lost before it
/// recovers that node's resources elsewhere (STONITH): fence devices, and
/// per node the levels to try in order (pacemaker's fencing topology).
public struct FencingConfig: Sendable, Hashable {
  public var devices: [FenceDevice]
  /// Per node name, levels tried in order until one succeeds; a level
  /// succeeds when all its devices do. A node without levels here is
  /// fenced by each device that can fence it, one level each, in file order.
  public var levels: [String: [[String]]]
  /// When a pair splits and each half fences the other, fencing the more
  /// important node waits this long, so that it shoots first and survives
  /// (pacemaker's priority-fencing-delay). Zero: no such delay.
  public var priorityDelay: Duration = .zero
  /// The node that counts as the more important one, whatever runs where;
  /// nil: the one that ran more resources when the other lost it.
  public var winner: String?

  public init(devices: [FenceDevice] = [], levels: [String: [[String]]] = [:]) {
    self.devices = devices
    self.levels = levels
  }

  /// Self-fencing: each node feeds this watchdog device only while it may
  /// run resources, so a hung or cut-off node resets itself; a node lost
  /// for twice the timeout counts as fenced (sbd's diskless mode).
  public var watchdog: Watchdog?

  public struct Watchdog: Sendable, Hashable {
    public var device: String
    public var timeout: Duration
    public init(device: String, timeout: Duration) {
      self.device = device
      self.timeout = timeout
    }
    /// How long a survivor waits after losing a node before it counts as
    /// fenced: twice its timeout (pacemaker's advice for
    /// stonith-watchdog-timeout).
    public var fencedAfter: Duration { timeout * 2 }
    /// How often a healthy node feeds it.
    public var feedEvery: Duration { timeout / 3 }
  }

  /// Fencing is on once a device or a watchdog is configured.
  public var isEnabled: Bool { !devices.isEmpty || watchdog != nil }

  public func device(_ id: String) -> FenceDevice? { devices.first { $0.id == id } }

  /// The levels that fence `node`, devices resolved; empty when nothing can.
  public func plan(for node: String) -> [[FenceDevice]] {
    if let configured = levels[node] {
      return configured.map { level in level.compactMap { device($0) } }.filter { !$0.isEmpty }
    }
    return devices.filter { $0.canFence(node) }.map { [$0] }
  }

  /// Devices at most, levels per node at most (pacemaker allows 9), devices
  /// per level at most.
  public static let mostDevices = 64
  public static let mostLevels = 9
  public static let mostDevicesPerLevel = 8
}

/// One fence device: a fence agent (ClusterLabs fence-agents API: options
/// as `name=value` lines on stdin) or a plain hook called with the target
/// and the action.
public struct FenceDevice: Sendable, Hashable {
  public enum Program: Sendable, Hashable {
    /// A fence agent's absolute path (`fence_ipmilan` is looked up in
    /// /usr/sbin when the configuration is read).
    case agent(String)
    /// An admin's program: `PATH TARGET ACTION`, exit 0 on success.
    case hook(String)
  }

  /// What the device can fence: named nodes (the agent is told the node's
  /// name as `plug`), or a host map from node names to the device's own
  /// port names (pacemaker's pcmk_host_map).
  public enum Targets: Sendable, Hashable {
    case nodes([String])
    case hostMap([String: String])
  }

  /// Where a secret option comes from, read at each call and never kept
  /// in the configuration, in logs or in status.
  public enum SecretSource: Sendable, Hashable {
    case file(String)
    case command(String)
  }

  public var id: String
  public var program: Program
  /// Options passed to the agent as written (never secrets: those are
  /// refused here and belong in `secrets`).
  public var options: [FenceOption]
  public var secrets: [FenceSecret]
  public var targets: Targets
  public var action: FenceAction
  public var timeout: Duration
  /// Attempts after the first that failed, before the next level.
  public var retries: Int
  /// Waited before each fencing by this device (pcmk_delay_base), and a
  /// random extra wait up to `randomDelayMax` (pcmk_delay_max), so that the
  /// two halves of a split pair do not shoot at the same moment.
  public var delay: Duration
  public var randomDelayMax: Duration

  public init(
    id: String, program: Program, targets: Targets, options: [FenceOption] = [], secrets: [FenceSecret] = [],
    action: FenceAction = .reboot, timeout: Duration = FenceDevice.defaultTimeout,
    retries: Int = FenceDevice.defaultRetries, delay: Duration = .zero, randomDelayMax: Duration = .zero
  ) {
    self.id = id
    self.program = program
    self.targets = targets
    self.options = options
    self.secrets = secrets
    self.action = action
    self.timeout = timeout
    self.retries = retries
    self.delay = delay
    self.randomDelayMax = randomDelayMax
  }

  public func canFence(_ node: String) -> Bool {
    switch targets {
    case .nodes(let names): return names.contains(node)
    case .hostMap(let map): return map[node] != nil
    }
  }

  /// The name the agent knows `node` by (its `plug`).
  public func port(for node: String) -> String? {
    switch targets {
    case .nodes(let names): return names.contains(node) ? node : nil
    case .hostMap(let map): return map[node]
    }
  }

  /// pacemaker's stonith-timeout and pcmk_off_retries defaults.
  public static let defaultTimeout: Duration = .seconds(60)
  public static let defaultRetries = 2

  /// Option names hactld sets itself on every call.
  public static let reservedOptions: Set<String> = ["action", "plug", "port", "nodename", "option"]
  /// Option names that carry secrets in fence-agents: written in the
  /// configuration they would be replicated and shown; refused there.
  public static let secretOptions: Set<String> = ["password", "passwd", "community", "snmp_priv_passwd", "secret"]
}

public struct FenceOption: Sendable, Hashable {
  public var name: String
  public var value: String
  public init(name: String, value: String) {
    self.name = name
    self.value = value
  }
}

public struct FenceSecret: Sendable, Hashable {
  public var name: String
  public var source: FenceDevice.SecretSource
  public init(name: String, source: FenceDevice.SecretSource) {
    self.name = name
    self.source = source
  }
}

/// What fencing does to the target (pacemaker's stonith-action): `reboot`
/// by default; `off` keeps it down until someone turns it on.
public enum FenceAction: String, Sendable, Hashable, CaseIterable {
  case reboot, off
}

/// One line of a node's durable fencing history (`hactl history`): an
/// attempt's outcome as the leader saw it, an operator's confirmation, or
/// a fencing a leader announced.
public struct FencingEvent: Sendable, Codable, Hashable {
  public enum Outcome: String, Sendable, Codable {
    /// This node, as leader, fenced it.
    case fenced
    /// One attempt failed (the job goes on: a retry, the next level).
    case failed
    /// An operator declared it off (`hactl fence --confirm`).
    case confirmed
    /// A leader announced it fenced (heard here, done elsewhere).
    case announced
  }
  /// Wall clock of the node that wrote it, Unix seconds.
  public var time: Int64
  public var node: String
  public var outcome: Outcome
  /// Why it was fenced: the node was lost, a stop failed, an operator asked.
  public var why: String?
  /// The leader that fenced it or announced it.
  public var by: String
  public var device: String?
  public var level: Int?
  public var milliseconds: Int64?
  public var reason: String?

  public init(
    time: Int64, node: String, outcome: Outcome, why: String? = nil, by: String, device: String? = nil,
    level: Int? = nil, milliseconds: Int64? = nil, reason: String? = nil
  ) {
    self.time = time
    self.node = node
    self.outcome = outcome
    self.why = why
    self.by = by
    self.device = device
    self.level = level
    self.milliseconds = milliseconds
    self.reason = reason
  }
}

import HactlModel
import HactlWire

/// One configured resource on this node: its role as the agents last said,
/// and the operation in flight.
struct LocalResource: Sendable {
  var spec: ResourceSpec
  /// A new definition (agent or parameters changed) that waits until the
  /// old one has stopped: the agent must stop what it started, as it started it.
  var replacement: ResourceSpec?
  /// No longer configured: stop it, then forget it.
  var removed = false
  var role: ResourceRole = .unknown
  var failCount = 0
  var lastFailure: ResourceFailure?
  /// The end of what the failed call printed (this node only: never sent).
  var lastFailureOutput: String?
  var inFlight: InFlight?
  var nextMonitor: Instant?
  /// The leader's decision this node last started the resource for.
  var lastStartToken: UInt64?
  /// An instance of a promotable clone: monitors expect its role.
  var promotable = false
  /// Running Promoted (until a demote completes).
  var promoted = false
  /// Stopped by on_fail: stop, until cleaned up.
  var halted = false
  /// When the last counted failure happened, on this node's clock: its
  /// failure_timeout runs from here.
  var lastFailureAt: Instant?
  /// The clone notification round this node last ran for it (pre or post).
  var lastNotified: UInt64?
  /// Its Promoted role failed with on_fail: demote: it runs here
  /// unpromoted, and is promoted here no more until cleaned up or until
  /// its failure_timeout.
  var promotionFailed = false
  /// It failed with on_fail: standby: this node runs nothing until it is
  /// cleaned up.
  var standbyOnFail = false
  /// What its agent's meta-data says about reloading, read when its
  /// parameters changed while it runs (nil: not read yet).
  var reload: AgentReload?
  /// Fencing is configured: a failed stop fences this node by default
  /// (set from the configuration as each result is recorded).
  var fencing = false
  /// Its agent's validate-all accepted this definition here: checked once
  /// before its first start on this node.
  var validated = false

  /// Not before this instant is another call started: the last one could
  /// not even be spawned (out of descriptors or processes).
  var retryNotBefore: Instant?

  struct InFlight: Sendable, Hashable {
    var id: UInt64
    var action: AgentAction
    var isProbe: Bool
    /// What to return to if the agent could not be spawned at all.
    var roleBefore: ResourceRole
    var startTokenBefore: UInt64?
    /// The round a `notify` call runs.
    var notification: UInt64?
  }

  init(spec: ResourceSpec, promotable: Bool = false) {
    self.spec = spec
    self.promotable = promotable
  }

  /// A new definition waits for the old one to stop, unless the agent may
  /// take it in place: while its meta-data is read, and when it says so.
  var restartsForReplacement: Bool {
    guard let replacement else { return false }
    guard role == .started, spec.agent.standard == .ocf, replacement.changedParameters(from: spec) != nil else {
      return true
    }
    return reload.map { !$0.reloads(from: spec, to: replacement) } ?? false
  }

  var report: ResourceReport {
    ResourceReport(
      id: spec.id, role: role, failCount: failCount, lastFailure: lastFailure, lastStartToken: lastStartToken,
      promoted: promoted, roleChanging: inFlight.map { $0.action == .promote || $0.action == .demote } ?? false,
      halted: halted, notified: lastNotified, promotionFailed: promotionFailed)
  }

  /// What a failed operation's on_fail asks for (`ResourceSpec.failurePolicy`).
  func policy(for action: AgentAction) -> FailurePolicy {
    spec.failurePolicy(for: action, promoted: promoted, fencing: fencing)
  }

  /// A failed operation under its policy; returns how it is logged.
  mutating func failed(_ action: AgentAction, _ result: OCFResult, _ detail: String, wallTime: Int64, ban: Bool)
    -> LogLine
  {
    let what = "\(action.rawValue) failed: \(detail)"
    // OCF_ERR_CONFIGURED is fatal, whatever on_fail says (but ignore): the
    // definition is wrong everywhere, so it stops everywhere.
    let policy = result == .notConfigured && policy(for: action) != .ignore ? .stop : policy(for: action)
    switch policy {
    case .ignore:
      lastFailure = ResourceFailure(action: action, code: result.code, reason: detail, wallTime: wallTime)
      if action == .start || action == .promote || action == .demote {
        role = .started
        if action != .start { promoted = action == .promote }
      }
      return LogLine(level: .warning, message: "\(what); ignored (on_fail: ignore)")
    case .block:
      role = .blocked
      nextMonitor = nil
      fail(action, result, detail, wallTime: wallTime, ban: true)
      return LogLine(
        level: .error, message: "\(what); it may still run here, so it is blocked everywhere until cleaned up")
    case .fence:
      // Left as it is: the leader fences this node, then recovers it elsewhere.
      role = .blocked
      nextMonitor = nil
      fail(action, result, detail, wallTime: wallTime, ban: true)
      return LogLine(level: .error, message: "\(what); this node is to be fenced (on_fail: fence)")
    case .demote where promoted && result != .notRunning:
      // It still runs: it goes on unpromoted (demoted first, see reconcile).
      promotionFailed = true
      lastFailure = ResourceFailure(action: action, code: result.code, reason: detail, wallTime: wallTime)
      return LogLine(
        level: .warning,
        message: "\(what); demoting it, and it is promoted here no more until cleaned up (on_fail: demote)")
    case let policy:
      role = .failed
      nextMonitor = nil
      if policy == .stop { halted = true }
      if policy == .standby { standbyOnFail = true }
      fail(action, result, detail, wallTime: wallTime, ban: ban || policy == .stop)
      switch policy {
      case .stop:
        return LogLine(
          level: .warning, message: "\(what); stopping it, and it starts nowhere until cleaned up (on_fail: stop)")
      case .standby:
        return LogLine(
          level: .warning,
          message: "\(what); stopping it, and this node runs nothing until it is cleaned up (on_fail: standby)")
      default:
        return LogLine(level: .warning, message: "\(what); stopping it (failure \(failCount))")
      }
    }
  }

  /// The recurring monitor for the role it runs in.
  var monitor: OperationSpec { promoted ? spec.monitorPromoted ?? spec.monitor : spec.monitor }

  struct LogLine {
    var level: LogLevel
    var message: String
  }

  /// Applies an agent's result; returns what is worth logging.
  mutating func record(
    call: InFlight, result: OCFResult, outcome: AgentOutcome, now: Instant, wallTime: Int64,
    exitReason: String? = nil, reload answer: AgentReload? = nil
  ) -> LogLine? {
    let detail = Self.detail(result, outcome) + (exitReason.map { ": \($0)" } ?? "")
    let countBefore = failCount
    let promotionFailedBefore = promotionFailed
    defer { if failCount != countBefore || promotionFailed != promotionFailedBefore { lastFailureAt = now } }
    switch call.action {
    case .monitor where call.isProbe:
      switch result.monitorMeaning {
      case .running:
        role = .started
        promoted = promotable && result.isPromoted
        scheduleMonitor(now: now)
        return LogLine(level: .notice, message: "probe: running here\(promoted ? " (Promoted)" : "")")
      case .stopped:
        role = .stopped
        if result == .notInstalled || result == .notConfigured || result == .invalidArgument {
          // It cannot run here at all: ban the node rather than fail later.
          fail(.monitor, result, detail, wallTime: wallTime, ban: true)
          return LogLine(level: .warning, message: "probe: \(detail); this node cannot run it")
        }
        return nil
      case .failed:
        if result == .notInstalled || result == .notConfigured || result == .invalidArgument {
          role = .stopped
          fail(.monitor, result, detail, wallTime: wallTime, ban: true)
          return LogLine(level: .warning, message: "probe: \(detail); this node cannot run it")
        }
        role = .failed
        fail(.monitor, result, detail, wallTime: wallTime, ban: false)
        return LogLine(level: .warning, message: "probe failed: \(detail); stopping it")
      }
    case .monitor:
      switch result.monitorMeaning {
      // A promotable instance must be in the role it was left in: Promoted
      // found Unpromoted (or the reverse) is a failure, as in pacemaker.
      case .running where promotable && result.isPromoted != promoted:
        let expected = "\(detail), expected \(promoted ? "Promoted" : "Unpromoted")"
        let line = failed(.monitor, result, expected, wallTime: wallTime, ban: false)
        if role == .started { scheduleMonitor(now: now) }
        return line
      case .running:
        scheduleMonitor(now: now)
        return nil
      case .stopped, .failed:
        let line = failed(.monitor, result, detail, wallTime: wallTime, ban: false)
        if role == .started { scheduleMonitor(now: now) }
        return line
      }
    case .start:
      if result == .success {
        role = .started
        scheduleMonitor(now: now)
        return LogLine(level: .notice, message: "started")
      }
      // A failed start bans the node (pacemaker's start-failure-is-fatal).
      let line = failed(.start, result, detail, wallTime: wallTime, ban: true)
      if role == .started { scheduleMonitor(now: now) }
      return line
    case .promote:
      guard result == .success else {
        // A promote that failed may have half promoted it: with
        // on_fail: demote it is demoted to be sure.
        if policy(for: .promote) == .demote && result != .notRunning { promoted = true }
        return failed(.promote, result, detail, wallTime: wallTime, ban: false)
      }
      promoted = true
      scheduleMonitor(now: now)
      return LogLine(level: .notice, message: "promoted")
    case .demote:
      guard result == .success else { return failed(.demote, result, detail, wallTime: wallTime, ban: false) }
      promoted = false
      scheduleMonitor(now: now)
      return LogLine(level: .notice, message: "demoted")
    case .stop:
      if result == .success || result == .notRunning {
        role = .stopped
        promoted = false
        nextMonitor = nil
        return LogLine(level: .notice, message: "stopped")
      }
      if policy(for: .stop) == .ignore {
        role = .stopped
        promoted = false
        nextMonitor = nil
      }
      return failed(.stop, result, detail, wallTime: wallTime, ban: true)
    case .notify:
      // A round is run once whatever the agent said: pacemaker ignores a
      // failed notification too, and a leader must not wait on it forever.
      lastNotified = call.notification
      guard result != .success else { return nil }
      return LogLine(level: .warning, message: "notify failed: \(detail); ignored")
    case .validateAll:
      switch result {
      case .success, .unimplemented:
        validated = true
        return nil
      case .notConfigured:
        // pacemaker's fatal error: the configuration itself is wrong.
        halted = true
        fail(.validateAll, result, detail, wallTime: wallTime, ban: true)
        return LogLine(
          level: .error,
          message: "validate-all: \(detail); it starts nowhere until the configuration is fixed and it is cleaned up")
      default:
        fail(.validateAll, result, detail, wallTime: wallTime, ban: true)
        return LogLine(level: .warning, message: "validate-all: \(detail); this node cannot run it")
      }
    case .metaData:
      // Meta-data that could not be read or says nothing: a restart.
      let facts = result == .success ? answer ?? .none : .none
      reload = facts
      guard let replacement else { return nil }
      guard facts.reloads(from: spec, to: replacement) else {
        return LogLine(level: .info, message: "parameters changed; its agent cannot reload them: restarting it")
      }
      let names = (replacement.changedParameters(from: spec) ?? []).sorted().joined(separator: ", ")
      let action = facts.action?.rawValue ?? ""
      return LogLine(level: .info, message: "parameters \(names) changed; its agent reloads them (\(action))")
    case .reloadAgent, .reload:
      guard result == .success else { return failed(call.action, result, detail, wallTime: wallTime, ban: false) }
      if let replacement { spec = replacement }
      replacement = nil
      reload = nil
      scheduleMonitor(now: now)
      return LogLine(level: .notice, message: "reloaded with its new parameters")
    }
  }

  mutating func fail(_ action: AgentAction, _ result: OCFResult, _ detail: String, wallTime: Int64, ban: Bool) {
    failCount = ban ? max(failCount + 1, spec.migrationThreshold) : failCount + 1
    lastFailure = ResourceFailure(action: action, code: result.code, reason: detail, wallTime: wallTime)
  }

  /// When its failures expire (failure_timeout after the last one), if
  /// they ever do: not while it is blocked or stopped by on_fail: stop,
  /// which wait for an operator.
  var failuresExpire: Instant? {
    guard let timeout = spec.failureTimeout, failCount > 0 || promotionFailed, !halted, !standbyOnFail,
      role != .blocked, let at = lastFailureAt
    else {
      return nil
    }
    return at + timeout
  }

  /// Forgets failures older than failure_timeout; true when it did.
  mutating func expireFailures(now: Instant) -> Bool {
    guard let expiry = failuresExpire, now >= expiry else { return false }
    failCount = 0
    promotionFailed = false
    return true
  }

  mutating func scheduleMonitor(now: Instant) {
    nextMonitor = monitor.interval > .zero ? now + monitor.interval : nil
  }

  static func detail(_ result: OCFResult, _ outcome: AgentOutcome) -> String {
    switch outcome {
    case .notInstalled(let why), .couldNotSpawn(let why): return why
    case .signaled(let signal): return "killed by signal \(signal)"
    case .timedOut: return "timed out"
    case .exited(let code): return "\(result) (exit \(code))"
    }
  }
}

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
  var inFlight: InFlight?
  var nextMonitor: Instant?
  /// The leader's decision this node last started the resource for.
  var lastStartToken: UInt64?
  /// An instance of a promotable clone: monitors expect its role.
  var promotable = false
  /// Running Promoted (until a demote completes).
  var promoted = false

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
  }

  init(spec: ResourceSpec, promotable: Bool = false) {
    self.spec = spec
    self.promotable = promotable
  }

  var report: ResourceReport {
    ResourceReport(
      id: spec.id, role: role, failCount: failCount, lastFailure: lastFailure, lastStartToken: lastStartToken,
      promoted: promoted, roleChanging: inFlight.map { $0.action == .promote || $0.action == .demote } ?? false)
  }

  /// The recurring monitor for the role it runs in.
  var monitor: OperationSpec { promoted ? spec.monitorPromoted ?? spec.monitor : spec.monitor }

  struct LogLine {
    var level: LogLevel
    var message: String
  }

  /// Applies an agent's result; returns what is worth logging.
  mutating func record(
    call: InFlight, result: OCFResult, outcome: AgentOutcome, now: Instant, wallTime: Int64
  ) -> LogLine? {
    let detail = Self.detail(result, outcome)
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
        role = .failed
        nextMonitor = nil
        fail(
          .monitor, result, "\(detail): expected \(promoted ? "Promoted" : "Unpromoted")", wallTime: wallTime,
          ban: false)
        return LogLine(
          level: .warning,
          message:
            "monitor: running \(result.isPromoted ? "Promoted" : "Unpromoted") but expected otherwise; stopping it")
      case .running:
        scheduleMonitor(now: now)
        return nil
      case .stopped, .failed:
        role = .failed
        nextMonitor = nil
        fail(.monitor, result, detail, wallTime: wallTime, ban: false)
        return LogLine(level: .warning, message: "monitor failed: \(detail); stopping it (failure \(failCount))")
      }
    case .start:
      if result == .success {
        role = .started
        scheduleMonitor(now: now)
        return LogLine(level: .notice, message: "started")
      }
      role = .failed
      let fatal = result == .notInstalled || result == .notConfigured || result == .invalidArgument
      fail(.start, result, detail, wallTime: wallTime, ban: fatal)
      return LogLine(level: .warning, message: "start failed: \(detail); stopping it (failure \(failCount))")
    case .promote:
      guard result == .success else {
        role = .failed
        nextMonitor = nil
        fail(.promote, result, detail, wallTime: wallTime, ban: false)
        return LogLine(level: .warning, message: "promote failed: \(detail); stopping it (failure \(failCount))")
      }
      promoted = true
      scheduleMonitor(now: now)
      return LogLine(level: .notice, message: "promoted")
    case .demote:
      guard result == .success else {
        role = .failed
        nextMonitor = nil
        fail(.demote, result, detail, wallTime: wallTime, ban: false)
        return LogLine(level: .warning, message: "demote failed: \(detail); stopping it (failure \(failCount))")
      }
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
      role = .blocked
      fail(.stop, result, detail, wallTime: wallTime, ban: true)
      return LogLine(
        level: .error,
        message: "stop failed: \(detail); it may still run here, so it is blocked everywhere until cleaned up")
    case .metaData, .validateAll, .notify:
      return nil
    }
  }

  mutating func fail(_ action: AgentAction, _ result: OCFResult, _ detail: String, wallTime: Int64, ban: Bool) {
    failCount = ban ? max(failCount + 1, spec.migrationThreshold) : failCount + 1
    lastFailure = ResourceFailure(action: action, code: result.code, reason: detail, wallTime: wallTime)
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

import HactlModel
import Subprocess
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What to run: one program, one action, its environment and time limit.
public struct AgentInvocation: Sendable {
  public var path: String
  public var action: String
  public var environment: [String: String]
  public var timeout: Duration
  /// After TERM on timeout, how long the group gets before KILL.
  public var killGrace: Duration

  public init(
    path: String, action: String, environment: [String: String], timeout: Duration,
    killGrace: Duration = .seconds(2)
  ) {
    self.path = path
    self.action = action
    self.environment = environment
    self.timeout = timeout
    self.killGrace = killGrace
  }
}

public struct AgentRun: Sendable {
  public var outcome: AgentOutcome
  /// The agent's output, stderr after stdout, trimmed to a few KiB (for logs).
  public var output: String
  public var elapsed: Duration
}

/// Runs agents as children in their own session, hence their own process
/// group: on timeout the whole group gets TERM, then KILL, so no grandchild
/// of a hung agent survives it.
public enum AgentRunner {
  public static let outputLimit = 8192

  public static func run(_ invocation: AgentInvocation) async -> AgentRun {
    let clock = ContinuousClock()
    let started = clock.now
    guard access(invocation.path, X_OK) == 0 else {
      let why = errno == ENOENT ? "agent not found: \(invocation.path)" : "agent not executable: \(invocation.path)"
      return AgentRun(outcome: .couldNotRun(why), output: "", elapsed: clock.now - started)
    }
    let timedOut = Flag()
    let child = ChildProcess()
    do {
      // Cancelling the calling task kills the agent's whole process group.
      let (status, output) = try await withTaskCancellationHandler {
        try await spawn(invocation, timedOut: timedOut, child: child)
      } onCancel: {
        child.killGroup()
      }
      let elapsed = clock.now - started
      if timedOut.isSet { return AgentRun(outcome: .timedOut, output: output, elapsed: elapsed) }
      switch status {
      case .exited(let code): return AgentRun(outcome: .exited(code), output: output, elapsed: elapsed)
      case .signaled(let signal):
        return AgentRun(outcome: .couldNotRun("killed by signal \(signal)"), output: output, elapsed: elapsed)
      }
    } catch {
      return AgentRun(
        outcome: .couldNotRun("cannot run \(invocation.path): \(error)"), output: "", elapsed: clock.now - started)
    }
  }

  static func spawn(_ invocation: AgentInvocation, timedOut: Flag, child: ChildProcess) async throws -> (
    TerminationStatus, String
  ) {
    var options = PlatformOptions()
    options.createSession = true
    var environment: [Environment.Key: String] = [:]
    for (key, value) in invocation.environment { environment[Environment.Key(stringLiteral: key)] = value }
    let result = try await Subprocess.run(
      .path(.init(invocation.path)),
      arguments: [invocation.action],
      environment: .custom(environment),
      platformOptions: options,
      input: .none,
      output: .string(limit: outputLimit),
      error: .string(limit: outputLimit)
    ) { execution in
      let pid = execution.processIdentifier.value
      child.record(pid)
      // The watchdog outlives this closure: `run` returns only when the
      // agent exits, and cancels nothing, so we cancel it ourselves below.
      return Task {
        try await Task.sleep(for: invocation.timeout)
        timedOut.set()
        kill(-pid, SIGTERM)
        try await Task.sleep(for: invocation.killGrace)
        kill(-pid, SIGKILL)
      }
    }
    result.closureResult.cancel()
    child.exited()
    return (result.terminationStatus, (result.standardOutput ?? "") + (result.standardError ?? ""))
  }
}

/// The agent's pid while it runs, so that a cancellation can kill its group.
final class ChildProcess: Sendable {
  private let pid = Atomic<Int32>(0)
  func record(_ value: Int32) { pid.store(value, ordering: .sequentiallyConsistent) }
  func exited() { pid.store(-1, ordering: .sequentiallyConsistent) }
  func killGroup() {
    let value = pid.load(ordering: .sequentiallyConsistent)
    if value > 0 { kill(-value, SIGKILL) }
  }
}

/// A one-way flag shared between the watchdog and the caller.
final class Flag: Sendable {
  private let value = Atomic<Bool>(false)
  func set() { value.store(true, ordering: .sequentiallyConsistent) }
  var isSet: Bool { value.load(ordering: .sequentiallyConsistent) }
}

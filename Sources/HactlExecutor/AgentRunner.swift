import HactlModel
import Subprocess
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What to run: one program, its arguments (the action last), its
/// environment and time limit.
public struct AgentInvocation: Sendable {
  public var path: String
  public var arguments: [String]
  public var environment: [String: String]
  public var timeout: Duration
  /// After TERM on timeout, how long the group gets before KILL.
  public var killGrace: Duration
  /// Output kept (head and tail); a larger output is cut in the middle.
  public var outputLimit = AgentRunner.outputLimit
  /// Whether stderr is kept after stdout (for logs), or dropped (meta-data,
  /// where only stdout is the answer).
  public var keepsErrorOutput = true
  /// Written to its stdin, then closed (a fence agent's options); empty:
  /// it reads end of file at once.
  public var input: [UInt8] = []

  public init(
    path: String, action: String, environment: [String: String], timeout: Duration,
    killGrace: Duration = .seconds(2)
  ) {
    self.init(path: path, arguments: [action], environment: environment, timeout: timeout, killGrace: killGrace)
  }

  public init(
    path: String, arguments: [String], environment: [String: String], timeout: Duration,
    killGrace: Duration = .seconds(2)
  ) {
    self.path = path
    self.arguments = arguments
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
  /// The output was larger than the invocation's limit and was cut.
  public var outputCut = false

  public init(outcome: AgentOutcome, output: String, elapsed: Duration) {
    self.outcome = outcome
    self.output = output
    self.elapsed = elapsed
  }

  /// The agent's own reason for its result: the last `ocf-exit-reason:`
  /// line it printed (ocf-shellfuncs' ocf_exit_reason), if any.
  public var exitReason: String? {
    let marker = "ocf-exit-reason:"
    guard let line = output.split(whereSeparator: \.isNewline).last(where: { $0.hasPrefix(marker) }) else {
      return nil
    }
    var reason = line.dropFirst(marker.count).drop(while: \.isWhitespace)
    while reason.last?.isWhitespace == true { reason = reason.dropLast() }
    return reason.isEmpty ? nil : String(reason)
  }
}

/// Runs agents as children in their own session, hence their own process
/// group: on timeout the whole group gets TERM, then KILL, so no grandchild
/// of a hung agent survives it.
public enum AgentRunner {
  /// Output kept per call: the first half and the last half of this many
  /// bytes (the `ocf-exit-reason:` line is usually near the end). Everything
  /// in between is read and discarded, so a chatty agent never blocks on a
  /// full pipe and never turns into an error.
  public static let outputLimit = 8192

  public static func run(_ invocation: AgentInvocation) async -> AgentRun {
    let clock = ContinuousClock()
    let started = clock.now
    guard access(invocation.path, X_OK) == 0 else {
      let why = errno == ENOENT ? "agent not found: \(invocation.path)" : "agent not executable: \(invocation.path)"
      return AgentRun(outcome: .notInstalled(why), output: "", elapsed: clock.now - started)
    }
    let child = ChildProcess()
    // Whatever happens below, the watchdog dies with this call: a timer left
    // behind would signal a process group id that may since belong to
    // another program.
    defer { child.finished() }
    do {
      // Cancelling the calling task kills the agent's whole process group.
      let (status, kept) = try await withTaskCancellationHandler {
        try await spawn(invocation, child: child)
      } onCancel: {
        child.killGroup(SIGKILL)
      }
      let elapsed = clock.now - started
      let outcome: AgentOutcome
      if child.timedOut {
        outcome = .timedOut
      } else {
        switch status {
        case .exited(let code): outcome = .exited(code)
        case .signaled(let signal): outcome = .signaled(signal)
        }
      }
      var run = AgentRun(outcome: outcome, output: kept.text, elapsed: elapsed)
      run.outputCut = kept.discarded > 0
      return run
    } catch {
      // The agent never ran (no descriptors, no processes left): nothing
      // about the resource changed. A spawn that failed after fork leaves no
      // child either: Subprocess reaps it before it throws.
      return AgentRun(
        outcome: .couldNotSpawn("cannot start \(invocation.path): \(error)"), output: "",
        elapsed: clock.now - started)
    }
  }

  static func spawn(_ invocation: AgentInvocation, child: ChildProcess) async throws -> (
    TerminationStatus, CappedOutput
  ) {
    var options = PlatformOptions()
    options.createSession = true
    var environment: [Environment.Key: String] = [:]
    for (key, value) in invocation.environment { environment[Environment.Key(stringLiteral: key)] = value }
    let body = { (pid: Int32, output: SubprocessOutputSequence) async throws -> CappedOutput in
      child.started(pid, invocation: invocation)
      // A cancellation that came before the pid was known killed nothing.
      if Task.isCancelled { child.killGroup(SIGKILL) }
      // Ends when the agent exits, even if a background child it left
      // behind still holds the pipe open (Subprocess stops reading then).
      var kept = CappedOutput(limit: invocation.outputLimit)
      for try await buffer in output {
        buffer.withUnsafeBytes { kept.append($0) }
      }
      return kept
    }
    // Agents read /dev/null on stdin, as under pacemaker; only a fence
    // agent is given its options there.
    func launch<Input: InputProtocol>(_ input: Input) async throws -> (TerminationStatus, CappedOutput) {
      if invocation.keepsErrorOutput {
        let result = try await Subprocess.run(
          .path(.init(invocation.path)), arguments: .init(invocation.arguments), environment: .custom(environment),
          platformOptions: options, input: input, output: .sequence, error: .combinedWithOutput
        ) { try await body($0.processIdentifier.value, $0.standardOutput) }
        return (result.terminationStatus, result.closureResult)
      }
      let result = try await Subprocess.run(
        .path(.init(invocation.path)), arguments: .init(invocation.arguments), environment: .custom(environment),
        platformOptions: options, input: input, output: .sequence, error: .discarded
      ) { try await body($0.processIdentifier.value, $0.standardOutput) }
      return (result.terminationStatus, result.closureResult)
    }
    return invocation.input.isEmpty ? try await launch(NoInput.none) : try await launch(.array(invocation.input))
  }
}

/// The head and tail of an agent's output, whatever its size.
struct CappedOutput {
  let limit: Int
  var head: [UInt8] = []
  var tail: [UInt8] = []
  var discarded = 0

  init(limit: Int) { self.limit = limit }

  mutating func append(_ bytes: UnsafeRawBufferPointer) {
    var rest = bytes[...]
    let room = limit / 2 - head.count
    if room > 0 {
      head += rest.prefix(room)
      rest = rest.dropFirst(room)
    }
    guard !rest.isEmpty else { return }
    tail += rest
    let excess = tail.count - limit / 2
    if excess > 0 {
      tail.removeFirst(excess)
      discarded += excess
    }
  }

  var text: String {
    let marker = discarded > 0 ? Array("\n[... \(discarded) bytes of output discarded ...]\n".utf8) : []
    return String(decoding: head + marker + tail, as: UTF8.self)
  }
}

/// The agent's pid while it runs, and its watchdog. Signals go to the
/// group only while the agent is known not to have been reaped (under the
/// same lock that marks it finished), so that a reused pid is never hit.
final class ChildProcess: Sendable {
  private struct State {
    var pid: Int32 = 0
    var done = false
    var timedOut = false
    var watchdog: Task<Void, Never>?
  }
  private let state = Mutex(State())

  func started(_ pid: Int32, invocation: AgentInvocation) {
    let watchdog = Task { [self] in
      guard (try? await Task.sleep(for: invocation.timeout)) != nil else { return }
      state.withLock { $0.timedOut = !$0.done }
      killGroup(SIGTERM)
      guard (try? await Task.sleep(for: invocation.killGrace)) != nil else { return }
      killGroup(SIGKILL)
    }
    let cancelled: Bool = state.withLock { current in
      current.pid = pid
      current.watchdog = watchdog
      return current.done
    }
    if cancelled { watchdog.cancel() }
  }

  var timedOut: Bool { state.withLock { $0.timedOut } }

  func finished() {
    let watchdog: Task<Void, Never>? = state.withLock { current in
      current.done = true
      defer { current.watchdog = nil }
      return current.watchdog
    }
    watchdog?.cancel()
  }

  func killGroup(_ signal: Int32) {
    state.withLock { current in
      if current.pid > 0 && !current.done { kill(-current.pid, signal) }
    }
  }
}

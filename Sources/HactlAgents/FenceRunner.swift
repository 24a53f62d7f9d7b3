import Foundation
import HactlConfig
import HactlExecutor
import HactlModel

/// One attempt of one fence device on one target, as the fence-agents API
/// makes it (ClusterLabs fence-agents, doc/FenceAgentAPI.md): the options as
/// `name=value` lines on stdin, exit 0 for success (for `status`, 0 is on
/// and 2 is off). A hook is called as `HOOK TARGET ACTION`. Each attempt
/// runs like any agent call: its own session, a time limit, the group
/// killed after it. Retries, levels and delays are the controller's.
public enum FenceRunner {
  /// What a fence agent is asked to do.
  public enum Action: String, Sendable, Hashable, CaseIterable {
    case off, reboot, on, status, monitor
  }

  public enum Outcome: Sendable, Hashable {
    case succeeded
    /// For `status`: the target is off (exit 2).
    case targetOff
    case failed(String)
  }

  public struct Attempt: Sendable {
    public var outcome: Outcome
    public var elapsed: Duration
    /// What the agent printed, every secret's value masked.
    public var output: String
  }

  /// Why a secret could not be read (its source, never its value).
  public struct SecretFailure: Error, Sendable {
    public var message: String
    init(_ message: String) { self.message = message }
  }

  /// A secret's value at most, and a secret command's time limit.
  public static let secretBytes = 4096
  public static let secretCommandTimeout: Duration = .seconds(10)

  public static func run(
    _ device: FenceDevice, target: String, action: Action, timeout: Duration? = nil
  ) async -> Attempt {
    let clock = ContinuousClock()
    let started = clock.now
    var secrets: [String: String] = [:]
    for secret in device.secrets {
      switch await read(secret) {
      case .success(let value): secrets[secret.name] = value
      case .failure(let failure):
        return Attempt(outcome: .failed(failure.message), elapsed: clock.now - started, output: "")
      }
    }
    guard let invocation = invocation(device, target: target, action: action, secrets: secrets, timeout: timeout)
    else {
      return Attempt(
        outcome: .failed("\(device.id) cannot fence \(target)"), elapsed: clock.now - started, output: "")
    }
    let run = await AgentRunner.run(invocation)
    let output = masked(run.output, secrets: Array(secrets.values))
    let outcome: Outcome
    switch run.outcome {
    case .exited(0): outcome = .succeeded
    case .exited(2) where action == .status || action == .monitor: outcome = .targetOff
    case .exited(let code):
      let last = output.split(whereSeparator: \.isNewline).last.map(String.init)?.withoutControlCharacters
      outcome = .failed("exit \(code)" + (last.map { ": \(String($0.utf8Prefix(200)))" } ?? ""))
    case .timedOut: outcome = .failed("timed out after \(invocation.timeout.milliseconds) ms")
    case .signaled(let signal): outcome = .failed("killed by signal \(signal)")
    case .notInstalled(let why), .couldNotSpawn(let why): outcome = .failed(why)
    }
    return Attempt(outcome: outcome, elapsed: clock.now - started, output: output)
  }

  /// The call: a fence agent with its options on stdin, or a hook with
  /// the target and action as arguments. Nil when the device cannot fence
  /// `target`.
  public static func invocation(
    _ device: FenceDevice, target: String, action: Action, secrets: [String: String], timeout: Duration? = nil
  ) -> AgentInvocation? {
    guard let port = device.port(for: target) else { return nil }
    let environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"]
    switch device.program {
    case .hook(let path):
      return AgentInvocation(
        path: path, arguments: [target, action.rawValue], environment: environment,
        timeout: timeout ?? device.timeout)
    case .agent(let path):
      var lines = ["action=\(action.rawValue)", "plug=\(port)", "nodename=\(target)"]
      lines += device.options.map { "\($0.name)=\($0.value)" }
      lines += device.secrets.compactMap { secret in secrets[secret.name].map { "\(secret.name)=\($0)" } }
      var invocation = AgentInvocation(
        path: path, arguments: [], environment: environment, timeout: timeout ?? device.timeout)
      invocation.input = Array((lines.joined(separator: "\n") + "\n").utf8)
      return invocation
    }
  }

  /// A secret's value: the first line of its file or of its command's
  /// output. Never logged: a failure names the source, not the value.
  static func read(_ secret: FenceSecret) async -> Result<String, SecretFailure> {
    switch secret.source {
    case .file(let path):
      // Not through a link, a FIFO or a device, and bounded (LocalFile).
      let data: Data?
      do {
        data = try LocalFile.read(path, limit: secretBytes, noLinks: true)
      } catch {
        return .failure(SecretFailure("cannot read secret \(secret.name) from \(path): \(error.reason)"))
      }
      guard let data else {
        return .failure(
          SecretFailure("cannot read secret \(secret.name) from \(path): \(String(cString: strerror(ENOENT)))"))
      }
      return firstLine(Array(data)[...], name: secret.name, from: path)
    case .command(let command):
      let run = await AgentRunner.run(
        AgentInvocation(
          path: "/bin/sh", arguments: ["-c", command], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
          timeout: secretCommandTimeout))
      guard case .exited(0) = run.outcome else {
        return .failure(SecretFailure("the command for secret \(secret.name) failed (\(run.outcome))"))
      }
      return firstLine(Array(run.output.utf8).prefix(secretBytes), name: secret.name, from: "its command")
    }
  }

  static func firstLine(_ bytes: ArraySlice<UInt8>, name: String, from source: String) -> Result<String, SecretFailure>
  {
    let line = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
    let text = String(decoding: line, as: UTF8.self)
    let value = text.hasSuffix("\r") ? String(text.dropLast()) : text
    guard !value.isEmpty else { return .failure(SecretFailure("secret \(name) from \(source) is empty")) }
    guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\0" }) else {
      return .failure(SecretFailure("secret \(name) from \(source) holds control characters"))
    }
    return .success(value)
  }

  /// The output with every secret's value replaced: agents may print the
  /// options they were given when they fail.
  static func masked(_ output: String, secrets: [String]) -> String {
    secrets.filter { !$0.isEmpty }.reduce(output) { text, secret in
      text.replacing(secret, with: "********")
    }
  }
}

import ArgumentParser
import Foundation
import HactlConfig
import HactlControl
import HactlModel
import HactlScenario
import HactlScheduler

/// crm_simulate for hactl: what the scheduler would do, from a scenario
/// file, a configuration with a saved status, or the live cluster, after
/// the events given.
struct SimulateCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate",
    abstract: "Show what the cluster would do: the transition summary, and with --scores why.",
    discussion: """
      Sources, one of: a scenario file (a configuration, then '---' and a state; see hactl(8)); \
      --config with an optional --state (the JSON of 'hactl status --json'); or --live (the local \
      hactld's configuration and status). Events change the state first, as crm_simulate's do. \
      Nothing is sent to the cluster.
      """)

  @Argument(help: "A scenario file.") var scenario: String?
  @Option(name: .long, help: "A configuration file (hactl.yaml).") var config: String?
  @Option(name: .long, help: "A status saved with 'hactl status --json' (default: everything stopped).")
  var state: String?
  @Flag(name: .long, help: "Start from the live cluster (the local hactld's configuration and status).")
  var live = false
  @OptionGroup var socket: SocketOptions

  @Option(name: .customLong("node-down"), help: "Take NODE down (it is taken to run nothing).")
  var nodeDown: [String] = []
  @Option(name: .customLong("node-up"), help: "Bring NODE up.") var nodeUp: [String] = []
  @Option(name: .long, help: "Fail an operation: RESOURCE:OPERATION:NODE, e.g. vip:monitor:db1.")
  var fail: [String] = []
  @Option(name: .long, help: "Set a node attribute: NODE:NAME=VALUE (empty VALUE removes it).")
  var attr: [String] = []

  @Flag(name: .long, help: "Also print the actions in order, where each instance goes and why, and every score.")
  var scores = false
  @Flag(name: .long, help: "Print JSON instead of text.") var json = false

  func validate() throws {
    let sources = [scenario != nil, config != nil, live].filter { $0 }.count
    guard sources == 1 else {
      throw ValidationError("give one of: a scenario file, --config FILE (with --state), or --live")
    }
    if state != nil && config == nil { throw ValidationError("--state goes with --config") }
  }

  func run() async throws {
    var (clusterConfig, snapshot, events) = try await source()
    do {
      events += nodeDown.map { .nodeDown($0) } + nodeUp.map { .nodeUp($0) }
      for text in fail { events.append(try SimulationEvent.fail(parsing: text)) }
      for text in attr { events.append(try SimulationEvent.attribute(parsing: text)) }
      for event in events { snapshot.apply(event) }
      let transition = Scheduler.schedule(try snapshot.input(clusterConfig))
      if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(TransitionReport(transition)), as: UTF8.self))
      } else {
        print(TransitionText.render(transition, actions: scores, scores: scores), terminator: "")
      }
    } catch let error as SnapshotError {
      throw hactlFail(error.message, code: 2)
    }
  }

  /// A scenario or a saved status: a regular file of bounded size (a FIFO,
  /// a device or a huge file is refused with the reason).
  static func read(_ path: String) throws -> Data {
    do {
      guard let data = try LocalFile.read(path, limit: 16 << 20) else {
        throw hactlFail("\(path): no such file", code: 2)
      }
      return data
    } catch let failure as LocalFile.Failure {
      throw hactlFail(failure.description, code: 2)
    }
  }

  func source() async throws -> (ClusterConfig, ClusterSnapshot, [SimulationEvent]) {
    if let scenario {
      let text = String(decoding: try Self.read(scenario), as: UTF8.self)
      do {
        let parsed = try Scenario.parse(text, file: scenario, relativeTo: ConfigLoader.folder(of: scenario))
        return (parsed.config, parsed.snapshot, parsed.events)
      } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw hactlFail("\(scenario): \(error.errors.count) error(s)", code: 2)
      }
    }
    if let config {
      let loaded: ClusterConfig
      do {
        loaded = try ConfigLoader.load(path: config)
      } catch {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw hactlFail("\(config): \(error.errors.count) error(s)", code: 2)
      }
      guard let state else { return (loaded, ClusterSnapshot(), []) }
      let data = try Self.read(state)
      guard let status = try? JSONDecoder().decode(ClusterStatus.self, from: data) else {
        throw hactlFail("\(state): not a status saved with 'hactl status --json'", code: 2)
      }
      return (loaded, ClusterSnapshot(status: status), [])
    }
    let (config, snapshot, _) = try await liveSnapshot(socket: socket.path)
    return (config, snapshot, [])
  }
}

/// The local daemon's configuration (with its version) and status, as the
/// scheduler's input.
func liveSnapshot(socket: String) async throws -> (ClusterConfig, ClusterSnapshot, version: String) {
  let status = try await fetchStatus(socket: socket)
  let response: ControlResponse
  do {
    response = try await ControlClient.send(.showConfig, socketPath: socket, timeout: .seconds(10))
  } catch {
    throw hactlFail(error.description)
  }
  guard response.ok, let text = response.message else {
    throw hactlFail(response.error ?? "the local hactld sent no configuration")
  }
  do {
    let config = try ConfigLoader.parse(text, file: "(live configuration)")
    var snapshot = ClusterSnapshot(status: status)
    snapshot.wallTime = Int64(Date().timeIntervalSince1970)
    return (config, snapshot, response.configVersion ?? "")
  } catch {
    throw hactlFail(error.description)
  }
}

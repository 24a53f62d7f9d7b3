import ArgumentParser
import Foundation
import HactlControl
import HactlDaemon

@main
struct Hactld: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hactld",
    abstract: "The hactl cluster daemon: heartbeats, quorum, leader election and resource agents.",
    discussion: "Run one on every node, and one with --witness on the witness. See hactld(8).")

  @Option(name: .long, help: "The cluster configuration file (see hactl.yaml(5)).")
  var config: String

  @Option(name: .long, help: "This member's name in the configuration.")
  var node: String

  @Flag(name: .long, help: "Run as the witness: vote for quorum, run no resources.")
  var witness = false

  @Option(name: .long, help: "Folder for durable state (vote record, boot incarnation).")
  var state = DaemonOptions.defaultStateFolder

  @Option(name: .long, help: "Path of the control socket that hactl talks to.")
  var socket = ControlDefaults.socketPath

  @Option(name: .customLong("ocf-root"), help: "Overrides cluster.ocf_root from the configuration.")
  var ocfRoot: String?

  @Option(
    name: .customLong("agent-runtime"),
    help: "HA_RSCTMP for agents: their pid and state files (for several nodes on one machine).")
  var agentRuntime: String?

  @Flag(name: .long, help: "Log debug messages too.")
  var verbose = false

  func run() async throws {
    EarlySignals.ignore()
    let options = DaemonOptions(
      configPath: config, nodeName: node, witness: witness, stateFolder: state, socketPath: socket,
      ocfRoot: ocfRoot, agentRuntimeFolder: agentRuntime, verbose: verbose)
    let code = await Daemon.run(options)
    if code != 0 { throw ExitCode(code) }
  }
}

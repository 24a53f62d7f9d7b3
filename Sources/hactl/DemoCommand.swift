import ArgumentParser
import Foundation
import HactlControl
import HactlLab
import HactlModel

struct DemoCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Run a two-node cluster and a witness on 127.0.0.1, crash the active node, show the failover.",
    discussion: """
      Needs nothing installed beyond Swift: the resources use this project's own agents \
      (ocf:hactl:Daemon and ocf:hactl:Marker). Every process and file it makes is removed at the end.
      """)

  @Option(name: .customLong("dead-time"), help: "Silence after which a node is declared lost.")
  var deadTime = "1s"

  @Option(name: .customLong("heartbeat-interval"), help: "Time between heartbeats.")
  var heartbeatInterval = "200ms"

  @Flag(name: .long, help: "Keep the demo folder (configuration, logs) instead of removing it.")
  var keep = false

  static let resources = """
      - id: service
        agent: ocf:hactl:Daemon
        params: { command: "while :; do sleep 1; done" }
        monitor: { interval: 2s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
      - id: marker
        agent: ocf:hactl:Marker
        monitor: { interval: 2s, timeout: 10s }
        prefer: { node: alpha, score: 50 }
    """

  func run() async throws {
    var options = LocalCluster.Options(resourcesYAML: Self.resources)
    options.deadTime = deadTime
    options.heartbeatInterval = heartbeatInterval
    let cluster: LocalCluster
    do {
      cluster = try LocalCluster(options: options, daemonPath: try LocalCluster.locateOrBuildDaemon())
    } catch {
      throw hactlFail("\(error)")
    }
    let interrupt = InterruptCleanup(cluster)
    defer {
      interrupt.cancel()
      say("cleaning up: stopping the daemons\(keep ? "" : " and removing \(cluster.folder)")")
      cluster.shutdown(keepFolder: keep)
    }
    do {
      try await demo(cluster)
    } catch {
      throw hactlFail("demo failed: \(error)")
    }
  }

  func demo(_ cluster: LocalCluster) async throws {
    say("a two-node cluster (alpha, beta) and a witness (arbiter) on 127.0.0.1, in \(cluster.folder)")
    say("configuration: \(cluster.configPath); daemon: \(cluster.daemonPath)")
    try cluster.startAll()
    say("waiting for quorum, a leader, and both resources started...")
    let names = ["service", "marker"]
    let ready = try await cluster.waitFor(via: "alpha", timeout: .seconds(30)) { status in
      names.allSatisfy { status.resource($0)?.state == .started }
    }
    print("\n" + StatusText.render(ready) + "\n")
    guard let active = ready.resource("service")?.node, let survivor = options(except: active) else {
      throw LocalCluster.LabError("no active node found")
    }
    say("crashing \(active), the active node, with SIGKILL...")
    let killed = ContinuousClock.now
    cluster.crash(active)
    let after = try await cluster.waitFor(via: survivor, timeout: .seconds(30), every: .milliseconds(5)) { status in
      names.allSatisfy { status.resource($0)?.state == .started && status.resource($0)?.node == survivor }
    }
    let takeover = ContinuousClock.now - killed
    print("\n" + StatusText.render(after) + "\n")
    say(
      "takeover: \(names.joined(separator: " and ")) run on \(survivor) \(String(format: "%.2f", takeover.seconds)) s "
        + "after the crash (dead time \(deadTime), heartbeat every \(heartbeatInterval))")
  }

  func options(except node: String) -> String? { ["alpha", "beta"].first { $0 != node } }

  func say(_ text: String) { print("hactl demo: \(text)") }
}

/// Ctrl-C during the demo still removes every process and file it made.
final class InterruptCleanup: @unchecked Sendable {
  let source: DispatchSourceSignal

  init(_ cluster: LocalCluster) {
    signal(SIGINT, SIG_IGN)
    source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler {
      print("\nhactl demo: interrupted; cleaning up")
      cluster.shutdown()
      exit(130)
    }
    source.resume()
  }

  func cancel() {
    source.cancel()
    signal(SIGINT, SIG_DFL)
  }
}

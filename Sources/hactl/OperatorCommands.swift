import ArgumentParser
import Foundation
import HactlControl
import HactlModel
import HactlScenario
import HactlScheduler

/// Sends an operator's change, waits until a quorum stored it, says so, and
/// says what the change makes the cluster do: the scheduler on the cluster
/// as it was just before, with the new configuration (the cluster may
/// already be at it by the time this prints).
func performEdit(_ edit: OperatorEdit, socket: String) async throws {
  let (_, before, _) = try await liveSnapshot(socket: socket)
  let response: ControlResponse
  do {
    response = try await ControlClient.send(.edit(edit), socketPath: socket, timeout: .seconds(30))
  } catch {
    throw hactlFail(error.description)
  }
  guard response.ok else { throw hactlFail(response.error ?? "refused") }
  let version = response.configVersion ?? "?"
  print("\(edit): stored as configuration \(version)")
  // The local daemon takes the new version within an interval or two.
  var (config, _, running) = try await liveSnapshot(socket: socket)
  for _ in 0..<40 where running != version {
    try await Task.sleep(for: .milliseconds(50))
    (config, _, running) = try await liveSnapshot(socket: socket)
  }
  guard running == version, let input = try? before.input(config) else { return }
  let summary = Scheduler.schedule(input).summary
  print(
    summary.isEmpty
      ? "This changes nothing that runs." : "The cluster will:\n" + summary.map { "  \($0)" }.joined(separator: "\n"))
}

struct BanCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ban",
    abstract:
      "Keep a resource, group or clone off a node until 'hactl clear' or for --lifetime (a -INFINITY location constraint)."
  )
  @Argument(help: "The resource, group or clone.") var resource: String
  @Argument(help: "The node.") var node: String
  @Option(name: .long, help: "Only for this long (90s, 30m, 2h, 1d or PT1H30M), not until 'hactl clear'.")
  var lifetime: String?
  @OptionGroup var socket: SocketOptions
  func run() async throws {
    let until = try lifetime.map(lifetimeEnd)
    try await performEdit(.ban(ResourceID(resource), node: node, until: until), socket: socket.path)
  }
}

/// When a lifetime given now ends, on this machine's clock (Unix seconds):
/// the leader compares it with its own clock.
func lifetimeEnd(_ text: String) throws -> Int64 {
  guard let seconds = WallClockText.lifetime(text) else {
    throw hactlFail(
      "--lifetime '\(text)' is not a duration: give 90s, 30m, 2h, 1d, 1h30m or ISO 8601's PT1H30M (at most ten years)")
  }
  return Int64(Date().timeIntervalSince1970) + seconds
}

struct ClearCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "clear", abstract: "Remove the bans and the pin hactl set for a resource, group or clone.")
  @Argument(help: "The resource, group or clone.") var resource: String
  @OptionGroup var socket: SocketOptions
  func run() async throws { try await performEdit(.clear(ResourceID(resource)), socket: socket.path) }
}

struct StandbyCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "standby", abstract: "Move every resource off a node and keep it empty until 'hactl online'.")
  @Argument(help: "The node.") var node: String
  @OptionGroup var socket: SocketOptions
  func run() async throws { try await performEdit(.standby(node: node), socket: socket.path) }
}

struct OnlineCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "online", abstract: "Let a node in standby run resources again.")
  @Argument(help: "The node.") var node: String
  @OptionGroup var socket: SocketOptions
  func run() async throws { try await performEdit(.online(node: node), socket: socket.path) }
}

struct MaintenanceCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "maintenance",
    abstract: "Leave the cluster, a node or a resource as it is: nothing is started, stopped or moved there.")
  @Argument(help: "on or off.") var state: String
  @Option(name: .long, help: "Only this node.") var node: String?
  @Option(name: .long, help: "Only this resource (it is left unmanaged).") var resource: String?
  @OptionGroup var socket: SocketOptions
  func validate() throws {
    guard ["on", "off"].contains(state) else { throw ValidationError("say 'on' or 'off'") }
    guard node == nil || resource == nil else { throw ValidationError("give --node or --resource, not both") }
  }
  func run() async throws {
    try await performEdit(
      .maintenance(on: state == "on", node: node, resource: resource.map { ResourceID($0) }), socket: socket.path)
  }
}

struct CleanupCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cleanup",
    abstract: "Forget a resource's failures and probe it again, on one node or every node.",
    discussion: "A blocked resource (its stop failed) may run again once cleaned up: first make sure it is stopped.")
  @Argument(help: "The resource, group or clone.") var resource: String
  @Option(name: .long, help: "Only on this node.") var node: String?
  @OptionGroup var socket: SocketOptions
  func run() async throws {
    print(try await requestMessage(.cleanup(resource: resource, node: node), socket: socket.path))
    let (config, _, _) = try await liveSnapshot(socket: socket.path)
    let id = ResourceID(resource)
    let child = config.clone(id)?.child ?? id
    // A globally-unique clone's instances show under their own names.
    let instances = config.executedResources.map(\.id).filter { config.uniqueInstance($0)?.child == child }
    let members = Set(((config.group(child)?.members ?? [child]) + instances).map(\.rawValue))
    // Each node applies it when it sees the request: wait until the
    // failures are gone from the status, as this node sees it.
    for _ in 0..<100 {
      let status = try await fetchStatus(socket: socket.path)
      let left = status.resources.filter { entry in
        members.contains(entry.id)
          && (entry.failCounts.keys.contains { node == nil || $0 == node } || entry.state == .blocked)
      }
      if left.isEmpty {
        print("\(resource): no failures left\(node.map { " on \($0)" } ?? "")")
        return
      }
      try await Task.sleep(for: .milliseconds(100))
    }
    throw hactlFail("\(resource) still shows failures after 10 s; see 'hactl status'")
  }
}

struct FenceCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fence",
    abstract: "Fence a node now, or declare a node off (--confirm).",
    discussion: """
      Without --confirm the leader fences NODE with its fence devices (their levels in order), as after a \
      loss: what it runs is recovered elsewhere once it is fenced. With --confirm nothing is fenced: the \
      operator declares NODE powered off (a failed fence device, a machine turned off by hand), and what \
      it ran may start elsewhere at once. Confirming a node that is still on runs its resources twice. \
      Both ask first unless --yes.
      """)
  @Argument(help: "The node.") var node: String
  @Flag(help: "Power it off and leave it off.") var off = false
  @Flag(help: "Power it off and on again.") var reboot = false
  @Flag(help: "Declare it off without fencing it (stonith_admin --confirm).") var confirm = false
  @Flag(help: "Do not ask.") var yes = false
  @OptionGroup var socket: SocketOptions

  func validate() throws {
    guard !(off && reboot) else { throw ValidationError("--off and --reboot exclude each other") }
    guard !(confirm && (off || reboot)) else { throw ValidationError("--confirm fences nothing: no --off or --reboot") }
  }

  func run() async throws {
    if !yes {
      let question =
        confirm
        ? "Declare \(node) powered off? If it still runs, its resources will run twice."
        : "Fence \(node)? It is powered \(off ? "off" : reboot ? "off and on" : "off (or rebooted, as its devices say)")."
      guard isatty(STDIN_FILENO) == 1 else {
        throw hactlFail("\(question) Refusing without --yes: standard input is not a terminal", code: 2)
      }
      print("\(question) Type the node's name to go on: ", terminator: "")
      guard readLine()?.trimmingCharacters(in: .whitespaces) == node else { throw hactlFail("not confirmed") }
    }
    let action: FenceAction? = off ? .off : reboot ? .reboot : nil
    print(try await requestMessage(.fence(node: node, action: action, confirm: confirm), socket: socket.path))
  }
}

struct HistoryCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "history",
    abstract: "Show this node's fencing history: every fencing it did or heard of, oldest first.",
    discussion: "Kept on the node's disk (its last 1,000), so it outlives the daemon; ask each node for its own.")
  @Flag(name: .long, help: "Print JSON lines instead of text.") var json = false
  @OptionGroup var socket: SocketOptions

  func run() async throws {
    let response: ControlResponse
    do {
      response = try await ControlClient.send(.history, socketPath: socket.path, timeout: .seconds(10))
    } catch {
      throw hactlFail(error.description)
    }
    guard response.ok, let events = response.history else { throw hactlFail(response.error ?? "no history") }
    guard json else {
      print(StatusText.history(events))
      return
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    for event in events { print(String(decoding: try encoder.encode(event), as: UTF8.self)) }
  }
}

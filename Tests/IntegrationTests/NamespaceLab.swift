import Foundation

/// Network namespaces made (and deleted) by a test: a hub namespace holding
/// a bridge, and one namespace per member joined to it by a veth pair, with
/// addresses in 10.231.X.0/24. No address is ever configured outside these
/// namespaces, so no traffic can leave them.
final class NamespaceLab {
  struct Member {
    var namespace: String
    /// The veth end inside the hub, on the bridge.
    var hubInterface: String
    var address: String
  }

  let hub: String
  private(set) var members: [String: Member] = [:]

  static var available: Bool {
    getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
  }

  init(members names: [String]) throws {
    let suffix = String(UInt32.random(in: 0 ... .max), radix: 16)
    let subnet = Int.random(in: 1...250)
    hub = "hactl-hub-\(suffix)"
    try Self.ip(["netns", "add", hub])
    do {
      try Self.ip(["-n", hub, "link", "set", "lo", "up"])
      try Self.ip(["-n", hub, "link", "add", "br0", "type", "bridge"])
      try Self.ip(["-n", hub, "link", "set", "br0", "up"])
      for (index, name) in names.enumerated() {
        let namespace = "hactl-\(name)-\(suffix)"
        let hubInterface = "m\(index)"
        let address = "10.231.\(subnet).\(index + 1)"
        try Self.ip(["netns", "add", namespace])
        members[name] = Member(namespace: namespace, hubInterface: hubInterface, address: address)
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        try Self.ip([
          "-n", hub, "link", "add", hubInterface, "type", "veth", "peer", "name", "eth0", "netns", namespace,
        ])
        try Self.ip(["-n", hub, "link", "set", hubInterface, "master", "br0", "up"])
        try Self.ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", "eth0"])
        try Self.ip(["-n", namespace, "link", "set", "eth0", "up"])
      }
    } catch {
      destroy()
      throw error
    }
  }

  /// The command prefix that runs a program inside `member`'s namespace.
  func launch(_ member: String) -> [String] { ["/usr/sbin/ip", "netns", "exec", members[member]!.namespace] }

  /// Cuts `member` off entirely (both directions).
  func isolate(_ member: String) throws {
    try Self.ip(["-n", hub, "link", "set", members[member]!.hubInterface, "down"])
  }
  func reconnect(_ member: String) throws {
    try Self.ip(["-n", hub, "link", "set", members[member]!.hubInterface, "up"])
  }

  /// Drops everything `member` sends to the others (blackhole routes in its
  /// namespace: no kernel module needed); it still hears them.
  func dropOutgoing(_ member: String) throws {
    for (name, other) in members where name != member {
      try Self.ip(["-n", members[member]!.namespace, "route", "add", "blackhole", "\(other.address)/32"])
    }
  }

  /// Drops everything the others send to `member`; they still hear it.
  func dropIncoming(_ member: String) throws {
    for (name, other) in members where name != member {
      try Self.ip(["-n", other.namespace, "route", "add", "blackhole", "\(members[member]!.address)/32"])
    }
  }

  func restore(_ member: String) {
    for (name, other) in members where name != member {
      try? Self.ip(["-n", members[member]!.namespace, "route", "del", "blackhole", "\(other.address)/32"])
      try? Self.ip(["-n", other.namespace, "route", "del", "blackhole", "\(members[member]!.address)/32"])
    }
  }

  func destroy() {
    for member in members.values { try? Self.ip(["netns", "del", member.namespace]) }
    try? Self.ip(["netns", "del", hub])
  }

  struct CommandFailed: Error, CustomStringConvertible {
    var description: String
  }

  static func ip(_ arguments: [String]) throws { try run("/usr/sbin/ip", arguments) }
  static func run(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      throw CommandFailed(description: "\(tool) \(arguments.joined(separator: " ")): \(text)")
    }
  }
}

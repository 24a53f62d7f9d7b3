import Foundation

/// Network namespaces made (and deleted) by a test: a hub namespace holding
/// one bridge per link, and one namespace per member joined to every bridge
/// by a veth pair, with addresses in 10.231.X.0/24. No address is ever
/// configured outside these namespaces, so no traffic can leave them.
final class NamespaceLab {
  struct Member {
    var namespace: String
    /// Per link: the veth end inside the hub, on that link's bridge.
    var hubInterfaces: [String]
    /// Per link: the member's address.
    var addresses: [String]
    var address: String { addresses[0] }
  }

  let hub: String
  private(set) var members: [String: Member] = [:]

  static var available: Bool {
    getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
  }

  /// `links` separate networks (one bridge each), every member on all.
  init(members names: [String], links: Int = 1) throws {
    let suffix = String(UInt32.random(in: 0 ... .max), radix: 16)
    let subnet = Int.random(in: 1...200)
    hub = "hactl-hub-\(suffix)"
    try Self.ip(["netns", "add", hub])
    do {
      try Self.ip(["-n", hub, "link", "set", "lo", "up"])
      for link in 0..<links {
        try Self.ip(["-n", hub, "link", "add", "br\(link)", "type", "bridge"])
        try Self.ip(["-n", hub, "link", "set", "br\(link)", "up"])
      }
      for (index, name) in names.enumerated() {
        let namespace = "hactl-\(name)-\(suffix)"
        try Self.ip(["netns", "add", namespace])
        members[name] = Member(namespace: namespace, hubInterfaces: [], addresses: [])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        for link in 0..<links {
          let hubInterface = "m\(index)l\(link)"
          let address = "10.231.\(subnet + link).\(index + 1)"
          members[name]!.hubInterfaces.append(hubInterface)
          members[name]!.addresses.append(address)
          try Self.ip([
            "-n", hub, "link", "add", hubInterface, "type", "veth", "peer", "name", "eth\(link)", "netns", namespace,
          ])
          try Self.ip(["-n", hub, "link", "set", hubInterface, "master", "br\(link)", "up"])
          try Self.ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", "eth\(link)"])
          try Self.ip(["-n", namespace, "link", "set", "eth\(link)", "up"])
        }
      }
    } catch {
      destroy()
      throw error
    }
  }

  /// The command prefix that runs a program inside `member`'s namespace.
  func launch(_ member: String) -> [String] { ["/usr/sbin/ip", "netns", "exec", members[member]!.namespace] }

  /// Cuts `member` off (both directions), on every link or on one.
  func isolate(_ member: String, link: Int? = nil) throws {
    for (index, interface) in members[member]!.hubInterfaces.enumerated() where link == nil || link == index {
      try Self.ip(["-n", hub, "link", "set", interface, "down"])
    }
  }

  func reconnect(_ member: String, link: Int? = nil) throws {
    for (index, interface) in members[member]!.hubInterfaces.enumerated() where link == nil || link == index {
      try Self.ip(["-n", hub, "link", "set", interface, "up"])
    }
  }

  /// Drops everything `member` sends to the others (blackhole routes in its
  /// namespace: no kernel module needed); it still hears them.
  func dropOutgoing(_ member: String) throws {
    for (name, other) in members where name != member {
      for address in other.addresses {
        try Self.ip(["-n", members[member]!.namespace, "route", "add", "blackhole", "\(address)/32"])
      }
    }
  }

  /// Drops everything the others send to `member`; they still hear it.
  func dropIncoming(_ member: String) throws {
    for (name, other) in members where name != member {
      for address in members[member]!.addresses {
        try Self.ip(["-n", other.namespace, "route", "add", "blackhole", "\(address)/32"])
      }
    }
  }

  func restore(_ member: String) {
    for (name, other) in members where name != member {
      for address in other.addresses {
        try? Self.ip(["-n", members[member]!.namespace, "route", "del", "blackhole", "\(address)/32"])
      }
      for address in members[member]!.addresses {
        try? Self.ip(["-n", other.namespace, "route", "del", "blackhole", "\(address)/32"])
      }
    }
  }

  func destroy() {
    for member in members.values { try? Self.ip(["netns", "del", member.namespace]) }
    try? Self.ip(["netns", "del", hub])
  }

  struct CommandFailed: Error, CustomStringConvertible {
    var description: String
  }

  static func ip(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      throw CommandFailed(description: "ip \(arguments.joined(separator: " ")): \(text)")
    }
  }
}

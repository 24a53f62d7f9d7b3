import Foundation
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The floor under a pair's idle cost: the same rhythm as two idle hactld
/// (the leader sends every heartbeat interval and its follower answers at
/// once, on 127.0.0.1) done by two bare threads with poll(2), once with
/// bytes alone and once sealing and opening real heartbeats with the
/// daemon's own `PacketSealer`. What hactld costs above the second line is
/// its event loop, its controller and its encoding.
extension MembershipBench {
  static func floor(seconds: Double, interval: Duration = .milliseconds(200)) throws {
    print("")
    print(
      "| the same rhythm without hactld (one heartbeat interval 200 ms) | CPU s per node per hour | wake-ups/s per node |"
    )
    print("|---|---|---|")
    for sealed in [false, true] {
      let result = try FloorPair(sealed: sealed, interval: interval).run(seconds: seconds)
      let name = sealed ? "bare threads, sealing and opening real heartbeats" : "bare threads, bytes only"
      print(String(format: "| %@ | %.2f | %.1f |", name, result.cpuPerHour, result.wakeupsPerSecond))
    }
    print("")
    print("| one heartbeat of a pair, in a loop | µs |")
    print("|---|---|")
    let (seal, open) = FloorPair.sealingCost()
    print(String(format: "| seal (encode, encrypt) | %.2f |", seal))
    print(String(format: "| open (decrypt, decode) | %.2f |", open))
  }
}

struct FloorPair {
  let sealed: Bool
  let interval: Duration

  struct Figures {
    var cpuPerHour: Double
    var wakeupsPerSecond: Double
  }

  /// A UDP socket bound to 127.0.0.1 on a port the kernel picks.
  static func boundSocket() throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw FloorError("socket(): \(String(cString: strerror(errno)))") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
      }
    }
    guard bound else { throw FloorError("bind(): \(String(cString: strerror(errno)))") }
    return (fd, UInt16(bigEndian: address.sin_port))
  }

  struct FloorError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
  }

  static func heartbeat(from sender: Int, sequence: UInt64) -> Packet {
    Packet(
      header: PacketHeader(
        sender: NodeID(UInt32(sender)), receiver: NodeID(UInt32(3 - sender)), incarnation: 1, sequence: sequence),
      message: .heartbeat(
        Heartbeat(membership: MembershipBeat(term: 1, leader: NodeID(1), heard: [], members: [NodeID(1), NodeID(2)]))))
  }

  static let key = ClusterKey(secret: [UInt8](repeating: 7, count: 32), clusterName: "floor")

  /// Microseconds per seal and per open of one heartbeat, in a loop.
  static func sealingCost(count: Int = 20000) -> (seal: Double, open: Double) {
    let alpha = PacketSealer(protection: .encrypted, local: NodeID(1), current: key)
    let beta = PacketSealer(protection: .encrypted, local: NodeID(2), current: key)
    var datagrams: [[UInt8]] = []
    datagrams.reserveCapacity(count)
    let sealing = ContinuousClock.now
    for sequence in 1...count { datagrams.append(try! alpha.seal(heartbeat(from: 1, sequence: UInt64(sequence)))) }
    let sealed = ContinuousClock.now - sealing
    var opened = 0
    let opening = ContinuousClock.now
    for datagram in datagrams {
      if case .success = beta.open(datagram, peers: [NodeID(1)]) { opened += 1 }
    }
    let open = ContinuousClock.now - opening
    precondition(opened == count)
    return (sealed.seconds * 1e6 / Double(count), open.seconds * 1e6 / Double(count))
  }

  func run(seconds: Double) throws -> Figures {
    let leader = try Self.boundSocket()
    let follower = try Self.boundSocket()
    defer {
      close(leader.fd)
      close(follower.fd)
    }
    let key = Self.key
    let stop = Atomic<Bool>(false)
    let results = Mutex<[(cpu: Double, wakeups: Int)]>([])
    let done = DispatchGroup()
    for role in 0..<2 {
      done.enter()
      let thread = Thread {
        let sealer = PacketSealer(protection: .encrypted, local: NodeID(UInt32(role + 1)), current: key)
        let me = role == 0 ? leader : follower
        let peer = role == 0 ? follower.port : leader.port
        var wakeups = 0
        var sequence: UInt64 = 0
        var next = ContinuousClock.now + interval
        var buffer = [UInt8](repeating: 0, count: 2048)
        func send() {
          sequence += 1
          let bytes: [UInt8]
          if sealed {
            bytes = (try? sealer.seal(Self.heartbeat(from: role + 1, sequence: sequence))) ?? []
          } else {
            bytes = [UInt8](repeating: 0x41, count: 180)
          }
          var address = sockaddr_in()
          address.sin_family = sa_family_t(AF_INET)
          address.sin_port = peer.bigEndian
          address.sin_addr.s_addr = inet_addr("127.0.0.1")
          _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
              sendto(me.fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
          }
        }
        while !stop.load(ordering: .relaxed) {
          // The follower waits for the leader; the leader for its next beat.
          let left = (next - ContinuousClock.now).nanosecondsClamped
          let wait = role == 0 ? max(0, (left + 999_999) / 1_000_000) : 1000
          var poller = pollfd(fd: me.fd, events: Int16(POLLIN), revents: 0)
          let ready = poll(&poller, 1, Int32(min(wait, 1000)))
          wakeups += 1
          if ready > 0 {
            let count = recv(me.fd, &buffer, buffer.count, 0)
            if count > 0, sealed {
              _ = sealer.open(Array(buffer[0..<count]), peers: [NodeID(UInt32(2 - role))])
            }
            if role == 1 { send() }
          }
          if role == 0 && ContinuousClock.now >= next {
            send()
            next += interval
          }
        }
        var usage = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &usage)
        let cpu = Double(usage.tv_sec) + Double(usage.tv_nsec) / 1e9
        results.withLock { $0.append((cpu, wakeups)) }
        done.leave()
      }
      thread.start()
    }
    Thread.sleep(forTimeInterval: seconds)
    stop.store(true, ordering: .relaxed)
    done.wait()
    let all = results.withLock { $0 }
    let cpu = all.map(\.cpu).reduce(0, +) / 2
    let wakeups = Double(all.map(\.wakeups).reduce(0, +)) / 2
    return Figures(cpuPerHour: cpu / seconds * 3600, wakeupsPerSecond: wakeups / seconds)
  }
}

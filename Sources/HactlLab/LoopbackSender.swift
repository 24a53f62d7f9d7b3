import Foundation

/// A UDP socket that sends only to 127.0.0.1: what tests and benchmarks use
/// to put forged, garbled or replayed datagrams in front of a daemon.
public final class LoopbackSender: @unchecked Sendable {
  let fd: Int32

  public init() throws {
    fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw LocalCluster.LabError("socket(): \(String(cString: strerror(errno)))") }
  }

  deinit { close(fd) }

  /// True when the kernel took the datagram.
  @discardableResult
  public func send(_ bytes: [UInt8], to port: UInt16) -> Bool {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) > 0
      }
    }
  }
}

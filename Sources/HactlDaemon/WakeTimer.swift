import CHactlWakeTimer
import NIOCore
import NIOPosix

#if canImport(Glibc)
  import Glibc
#endif

/// The daemon's one timer: a timer descriptor of its own, watched by the
/// transport's event loop and moved in place whenever the controller's
/// deadline moves.
///
/// NIO's scheduled tasks would do, but they share one timer descriptor that
/// NIO only ever moves earlier: a task cancelled for a later one still wakes
/// the loop at the old moment. A follower's deadline moves later at every
/// heartbeat it hears, so it woke twice per interval, once for nothing.
/// Moving this timer costs one system call instead of a wake-up.
final class WakeTimer: Sendable {
  struct OpenError: Error, CustomStringConvertible {
    let description: String
  }

  private let descriptor: CInt
  private let channel: any Channel

  private init(descriptor: CInt, channel: any Channel) {
    self.descriptor = descriptor
    self.channel = channel
  }

  /// `fired` and `lost` run on `loop`. `lost` means the event loop no longer
  /// watches the descriptor (it closed on an error): the caller must wake
  /// some other way from then on.
  static func open(
    on loop: any EventLoop, fired: @escaping @Sendable () -> Void, lost: @escaping @Sendable () -> Void
  ) async throws -> WakeTimer {
    let descriptor = hactl_wake_timer_create()
    guard descriptor >= 0 else {
      throw OpenError(description: "timerfd_create: \(String(cString: strerror(errno)))")
    }
    do {
      let channel = try await NIOPipeBootstrap(group: loop)
        .channelInitializer { channel in
          channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ExpiryHandler(fired: fired, lost: lost))
          }
        }
        .takingOwnershipOfDescriptor(input: descriptor).get()
      return WakeTimer(descriptor: descriptor, channel: channel)
    } catch {
      // A failed bootstrap leaves the descriptor ours to close.
      Glibc.close(descriptor)
      throw OpenError(description: "cannot watch the timer descriptor: \(error)")
    }
  }

  /// Fires once after `delay` (at once if it is not positive), or never
  /// when `delay` is nil. Only on the loop, and never after `close`: NIO
  /// closes the descriptor with the channel, and its number may be reused.
  /// False if the kernel refused, which only a closed descriptor makes it do.
  func arm(in delay: Duration?) -> Bool {
    hactl_wake_timer_arm(descriptor, delay.map { max(0, $0.nanosecondsClamped) } ?? -1) == 0
  }

  func close() async {
    try? await channel.close()
  }
}

/// Each read of the descriptor is one expiry (its 8-byte count). NIO
/// expects every readable event to hold bytes, so the daemon never moves
/// the timer once its moment has passed (`DaemonCore.rearm`): the expiry
/// is read first, and the tick it calls moves it.
private final class ExpiryHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer

  let fired: @Sendable () -> Void
  let lost: @Sendable () -> Void

  init(fired: @escaping @Sendable () -> Void, lost: @escaping @Sendable () -> Void) {
    self.fired = fired
    self.lost = lost
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    fired()
  }

  func channelInactive(context: ChannelHandlerContext) {
    lost()
  }
}

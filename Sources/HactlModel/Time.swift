/// A point on a monotonic clock, as nanoseconds from an arbitrary origin.
///
/// Cores never read a clock: the shell (or the simulator) passes the current
/// `Instant` in with every input, which is what makes a whole cluster replayable.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var nanoseconds: Int64
  public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

  public static let zero = Instant(nanoseconds: 0)
  /// Later than any moment a clock will reach: "no deadline".
  public static let distantFuture = Instant(nanoseconds: .max)

  /// The first moment strictly after this one: a check written as
  /// `now - since > limit` first holds at `(since + limit).justAfter`.
  public var justAfter: Instant { Instant(nanoseconds: nanoseconds == .max ? .max : nanoseconds + 1) }

  public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

  public static func + (lhs: Instant, rhs: Duration) -> Instant {
    Instant(nanoseconds: lhs.nanoseconds &+ rhs.nanosecondsClamped)
  }

  public static func - (lhs: Instant, rhs: Instant) -> Duration {
    .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
  }

  public var description: String {
    let millis = nanoseconds / 1_000_000
    return "t+\(millis)ms"
  }
}

extension Duration {
  /// The duration in whole nanoseconds, saturating at `Int64` limits.
  public var nanosecondsClamped: Int64 {
    let (seconds, attoseconds) = components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return seconds < 0 ? .min : .max }
    let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
    if overflow2 { return seconds < 0 ? .min : .max }
    return total
  }

  /// The duration in whole milliseconds, as OCF's `*_meta_timeout` wants it.
  public var milliseconds: Int64 { nanosecondsClamped / 1_000_000 }

  /// Seconds as a `Double`, for display.
  public var seconds: Double { Double(nanosecondsClamped) / 1e9 }
}

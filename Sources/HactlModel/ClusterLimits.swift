/// What one heartbeat can describe, shared by the packet format (which
/// refuses larger lists before allocating anything) and the configuration
/// loader (which refuses a cluster the packets could not carry).
public enum ClusterLimits {
  public static let members = 64
  /// With every resource failed and assigned, ids of 64 characters and
  /// reasons at their limit, a leader's heartbeat still fits one datagram
  /// (a test encodes exactly that).
  public static let resources = 128
  /// Failure reasons travel in every heartbeat: the rest is in the log.
  public static let failureReasonBytes = 200
  /// Below this the daemon would spend its time ticking.
  public static let minimumHeartbeatInterval: Duration = .milliseconds(10)
  /// A replicated configuration travels in one datagram, with room for the
  /// header and the HMAC.
  public static let configurationBytes = 56_000
}

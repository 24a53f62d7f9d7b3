/// What one heartbeat can describe, shared by the packet format (which
/// refuses larger lists before allocating anything) and the configuration
/// loader (which refuses a cluster the packets could not carry).
public enum ClusterLimits {
  public static let members = 64
  public static let resources = 1024
  /// Below this the daemon would spend its time ticking.
  public static let minimumHeartbeatInterval: Duration = .milliseconds(10)
}

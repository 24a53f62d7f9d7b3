/// What one heartbeat can describe, shared by the packet format (which
/// refuses larger lists before allocating anything) and the configuration
/// loader (which refuses a cluster the packets could not carry).
public enum ClusterLimits {
  /// With every id at its largest, a heartbeat without its sections still
  /// fits one datagram (a test encodes exactly that).
  public static let members = 64
  /// With every resource failed, ids of 64 characters and reasons at their
  /// limit, a node's report still fits the parts one whole may have (a
  /// test encodes exactly that).
  public static let resources = 1_024
  /// Resources gone from the configuration that a node still reports until
  /// it has seen them stopped; a change that would leave more is refused.
  public static let retiringResources = 16
  /// Entries in one node's report: what it runs, and what it still stops.
  public static var reportedResources: Int { resources + retiringResources }
  /// Transient attributes one node carries in its report, and their sizes.
  public static let nodeAttributes = 64
  public static let attributeNameBytes = 64
  public static let attributeValueBytes = 128
  /// Cluster properties agents keep in the configuration (crm_config).
  public static let clusterProperties = 64
  public static let propertyValueBytes = 512
  /// Failure reasons travel in every heartbeat: the rest is in the log.
  public static let failureReasonBytes = 200
  /// The end of a failed call's output, kept on the node that ran it (never
  /// sent) and shown by `hactl status` there.
  public static let failureOutputBytes = 2_048
  /// Below this the daemon would spend its time ticking.
  public static let minimumHeartbeatInterval: Duration = .milliseconds(10)
  /// A replicated configuration, offered in parts: about 300 bytes for
  /// each resource at the limit.
  public static let configurationBytes = 320_000
  /// Operator requests (moves) a node carries in its heartbeats until the
  /// leader answers; more are refused at the control socket.
  public static let pendingRequests = 16
  /// Configuration changes a node forwards to the leader at once.
  public static let pendingProposals = 4
  /// Answers a leader keeps in its heartbeats for the nodes that asked.
  public static let answersKept = 16
  /// An answer's message travels in every leader heartbeat: longer ones
  /// (a long list of configuration errors) are cut; the asking node logs it whole.
  public static let answerBytes = 200
  /// Terms and configuration versions rise by one per election or change:
  /// nothing real reaches this, and values from peers or files above it are
  /// refused, so `term + 1` can never trap.
  public static let largestCounter: UInt64 = 1 << 48
}

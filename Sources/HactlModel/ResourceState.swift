/// An agent action, as OCF names it.
public enum AgentAction: String, Sendable, Hashable, Codable, CaseIterable {
  case start
  case stop
  case monitor
  case metaData = "meta-data"
  case validateAll = "validate-all"
  case promote
  case demote
  case notify
  /// OCF 1.1: take changed reloadable parameters without a restart.
  case reloadAgent = "reload-agent"
  /// The same for agents of the OCF 1.0 API (non-unique parameters).
  case reload

  /// A reload of either kind: called with the new definition.
  public var isReload: Bool { self == .reloadAgent || self == .reload }
}

/// How an agent call ended, before any OCF interpretation.
public enum AgentOutcome: Sendable, Hashable {
  case exited(Int32)
  /// Killed (the whole process group) after its timeout.
  case timedOut
  /// Killed by a signal the daemon did not send for a timeout (a crash, an
  /// out-of-memory kill, a cancellation): its effect on the resource is unknown.
  case signaled(Int32)
  /// The agent is missing or not executable: it cannot have started
  /// anything from here (OCF_ERR_INSTALLED, as pacemaker maps it).
  case notInstalled(String)
  /// The daemon could not start the agent at all (out of descriptors or
  /// processes): the agent never ran, so the resource is as it was.
  case couldNotSpawn(String)
}

/// OCF return codes (Resource Agent API, section "Return codes").
public enum OCFResult: Sendable, Hashable, CustomStringConvertible {
  case success
  case genericError
  case invalidArgument
  case unimplemented
  case insufficientPrivilege
  case notInstalled
  case notConfigured
  case notRunning
  case runningPromoted
  case failedPromoted
  case degraded
  case degradedPromoted
  case timedOut
  case other(Int32)

  public init(exitCode: Int32) {
    switch exitCode {
    case 0: self = .success
    case 1: self = .genericError
    case 2: self = .invalidArgument
    case 3: self = .unimplemented
    case 4: self = .insufficientPrivilege
    case 5: self = .notInstalled
    case 6: self = .notConfigured
    case 7: self = .notRunning
    case 8: self = .runningPromoted
    case 9: self = .failedPromoted
    case 190: self = .degraded
    case 191: self = .degradedPromoted
    default: self = .other(exitCode)
    }
  }

  public init(outcome: AgentOutcome) {
    switch outcome {
    case .exited(let code): self.init(exitCode: code)
    case .timedOut: self = .timedOut
    // Pacemaker maps an agent it cannot find or execute to "not installed".
    case .notInstalled: self = .notInstalled
    // Whatever the agent did before it died is unknown: a failure, never
    // "not running" (pacemaker's PCMK_EXEC_ERROR).
    case .signaled: self = .genericError
    // Never reported as a result: the controller retries the call (see
    // `NodeController.agentFinished`); should one get here, it is a failure.
    case .couldNotSpawn: self = .genericError
    }
  }

  public var description: String {
    switch self {
    case .success: return "ok"
    case .genericError: return "generic error"
    case .invalidArgument: return "invalid argument"
    case .unimplemented: return "unimplemented feature"
    case .insufficientPrivilege: return "insufficient privileges"
    case .notInstalled: return "not installed"
    case .notConfigured: return "not configured"
    case .notRunning: return "not running"
    case .runningPromoted: return "running promoted"
    case .failedPromoted: return "failed promoted"
    case .degraded: return "degraded"
    case .degradedPromoted: return "degraded promoted"
    case .timedOut: return "timed out"
    case .other(let code): return "unknown exit code \(code)"
    }
  }

  /// The exit code on the wire and in status; timeouts get pacemaker's 198.
  public var code: Int32 {
    switch self {
    case .success: return 0
    case .genericError: return 1
    case .invalidArgument: return 2
    case .unimplemented: return 3
    case .insufficientPrivilege: return 4
    case .notInstalled: return 5
    case .notConfigured: return 6
    case .notRunning: return 7
    case .runningPromoted: return 8
    case .failedPromoted: return 9
    case .degraded: return 190
    case .degradedPromoted: return 191
    case .timedOut: return OCFResult.timeoutCode
    case .other(let code): return code
    }
  }

  static let timeoutCode: Int32 = 198

  public init(code: Int32) {
    self = code == OCFResult.timeoutCode ? .timedOut : OCFResult(exitCode: code)
  }

  /// What a monitor (or probe) result says about the resource.
  public var monitorMeaning: MonitorMeaning {
    switch self {
    case .success, .degraded: return .running
    case .notRunning: return .stopped
    // A promotable result on a plain resource still means it runs.
    case .runningPromoted, .degradedPromoted: return .running
    default: return .failed
    }
  }

  /// OCF_RUNNING_PROMOTED or OCF_DEGRADED_PROMOTED.
  public var isPromoted: Bool { self == .runningPromoted || self == .degradedPromoted }

  public enum MonitorMeaning: Sendable, Equatable {
    case running
    case stopped
    case failed
  }
}

/// Where a resource is on one node, as that node's executor knows it.
public enum ResourceRole: String, Sendable, Hashable, Codable, CaseIterable {
  /// Not yet probed since this node's daemon started.
  case unknown
  case stopped
  case starting
  case started
  case stopping
  /// An operation failed; the node is stopping it to recover.
  case failed
  /// A stop failed: the resource may still be active and nothing will touch it
  /// until an operator cleans it up (pacemaker's "blocked", without fencing).
  case blocked

  /// Whether the resource may be active here: anything but a confirmed stop.
  public var mayBeActive: Bool { self != .stopped }
}

/// The last failure of a resource on a node.
public struct ResourceFailure: Sendable, Hashable, Codable {
  public var action: AgentAction
  public var code: Int32
  public var reason: String
  /// Seconds since the Unix epoch, from the node that saw it (display only).
  public var wallTime: Int64

  public init(action: AgentAction, code: Int32, reason: String, wallTime: Int64) {
    self.action = action
    self.code = code
    self.reason = String(reason.utf8Prefix(ClusterLimits.failureReasonBytes))
    self.wallTime = wallTime
  }
}

extension String {
  /// The text with every control character (escape sequences that would
  /// drive the terminal of whoever reads `hactl status`, bells, carriage
  /// returns that hide what came before, bidirectional overrides) shown as
  /// U+FFFD: an agent's words reach operators' screens and logs.
  public var withoutControlCharacters: String {
    String(
      String.UnicodeScalarView(
        unicodeScalars.map { scalar in
          let category = scalar.properties.generalCategory
          let hidden = category == .control || category == .format || scalar.value == 0x2028 || scalar.value == 0x2029
          return hidden ? "\u{FFFD}" : scalar
        }))
  }

  /// The last `bytes` of an agent's output at most, from the start of a
  /// line, each line without control characters: what an operator reads
  /// of a failed call.
  public func outputTail(_ bytes: Int) -> String {
    var lines: [Substring] = []
    var used = 0
    for raw in split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).reversed() {
      if lines.isEmpty && raw.allSatisfy(\.isWhitespace) { continue }
      // Filtered before it is measured: a control character shown as
      // U+FFFD takes three bytes.
      let line = String(raw).withoutControlCharacters[...]
      let length = line.utf8.count + (lines.isEmpty ? 0 : 1)
      guard used + length <= bytes else {
        if lines.isEmpty { lines.append(line.utf8Suffix(bytes)) }
        break
      }
      used += length
      lines.append(line)
    }
    return lines.reversed().joined(separator: "\n")
  }

  /// The longest prefix of at most `bytes` UTF-8 bytes that ends on a
  /// character boundary.
  public func utf8Prefix(_ bytes: Int) -> Substring {
    guard utf8.count > bytes else { return self[...] }
    var end = startIndex
    var used = 0
    for index in indices {
      let size = self[index].utf8.count
      if used + size > bytes { break }
      used += size
      end = self.index(after: index)
    }
    return self[..<end]
  }
}

extension Substring {
  /// The longest suffix of at most `bytes` UTF-8 bytes that starts on a
  /// character boundary.
  func utf8Suffix(_ bytes: Int) -> Substring {
    var start = endIndex
    var used = 0
    while start > startIndex {
      let before = index(before: start)
      used += self[before].utf8.count
      if used > bytes { break }
      start = before
    }
    return self[start...]
  }
}

/// One resource on one node, as that node reports it.
public struct ResourceReport: Sendable, Hashable {
  public var id: ResourceID
  public var role: ResourceRole
  public var failCount: Int
  public var lastFailure: ResourceFailure?
  /// The leader's decision this node last started it for: a node starts at
  /// most once per decision, and the leader decides anew when it sees one
  /// used up and the resource stopped.
  public var lastStartToken: UInt64?
  /// Running in the Promoted role (a promotable clone's instance), until
  /// a demote has completed.
  public var promoted: Bool
  /// A promote or demote is in flight: what is ordered after it waits.
  public var roleChanging: Bool
  /// An operation failed with on_fail: stop: it must not start anywhere
  /// until an operator cleans it up.
  public var halted: Bool
  /// The clone notification round this node last ran for it.
  public var notified: UInt64?
  /// Its Promoted role failed here with on_fail: demote: not to be
  /// promoted here until cleaned up.
  public var promotionFailed: Bool

  public init(
    id: ResourceID, role: ResourceRole, failCount: Int = 0, lastFailure: ResourceFailure? = nil,
    lastStartToken: UInt64? = nil, promoted: Bool = false, roleChanging: Bool = false, halted: Bool = false,
    notified: UInt64? = nil, promotionFailed: Bool = false
  ) {
    self.notified = notified
    self.promotionFailed = promotionFailed
    self.id = id
    self.role = role
    self.failCount = failCount
    self.lastFailure = lastFailure
    self.lastStartToken = lastStartToken
    self.promoted = promoted
    self.roleChanging = roleChanging
    self.halted = halted
  }
}

/// Everything a node tells the others about itself in each heartbeat.
public struct NodeReport: Sendable, Hashable {
  /// True once every configured resource was probed since this daemon started.
  public var probed: Bool
  public var mode: NodeMode
  /// Transient node attributes (set by agents through crm_attribute and
  /// crm_master, or by an operator), gone when this daemon restarts.
  public var attributes: [String: String] = [:]
  public var resources: [ResourceReport] {
    didSet { positions = resources.firstPositions(by: \.id) }
  }
  /// Where each resource is in `resources`: lookups stay cheap with a
  /// thousand resources (derived, so equality is unaffected).
  private var positions: [ResourceID: Int]

  public init(probed: Bool, mode: NodeMode, resources: [ResourceReport]) {
    self.probed = probed
    self.mode = mode
    self.resources = resources
    self.positions = resources.firstPositions(by: \.id)
  }

  public func resource(_ id: ResourceID) -> ResourceReport? { positions[id].map { resources[$0] } }
}

extension Array {
  /// The index of the first element with each key.
  public func firstPositions<Key: Hashable>(by key: (Element) -> Key) -> [Key: Int] {
    var positions: [Key: Int] = [:]
    for (index, element) in enumerated() where positions[key(element)] == nil { positions[key(element)] = index }
    return positions
  }
}

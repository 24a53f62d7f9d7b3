#if canImport(Glibc)
  import Glibc
#endif

/// What keeps hactld's own timing when the machine is busy, as corosync
/// does: real-time scheduling, so that ordinary busy processes never delay
/// a heartbeat, and locked memory, so that memory pressure never pages the
/// daemon out. Each is asked for and, when the system refuses (no
/// privilege, a container), the refusal is reported and the daemon goes on.
struct Protections: Sendable {
  /// What `hactl status` shows: "SCHED_RR priority 10", "off", or why refused.
  var realtime: String
  var memory: String
  var realtimeGranted: Bool

  /// Above every ordinary process, below the kernel's own real-time
  /// threads (interrupt threads run at 50) and watchdog daemons, which
  /// must stay able to preempt it.
  static let priority: Int32 = 10

  static func apply(realtime: Bool, lockMemory: Bool) -> Protections {
    var result = Protections(realtime: "off", memory: "off", realtimeGranted: false)
    if realtime {
      var failure: Int32 = 0
      // Every thread that exists now. Threads made later start without it
      // (SCHED_RESET_ON_FORK applies to threads too): one that handles an
      // input takes it then (`keepCurrentThread`), and the daemon sweeps
      // its threads every 10 s of timer wake-ups.
      for thread in threads() where !setRealtime(thread) { failure = errno }
      if failure == 0 {
        result.realtime = "SCHED_RR priority \(priority)"
        result.realtimeGranted = true
      } else {
        result.realtime = "refused: \(String(cString: strerror(failure)))"
      }
    }
    if lockMemory {
      // Pages are locked as they are touched (MCL_ONFAULT): thread stacks
      // and reserved heap are not filled in just to be locked.
      let onFault: Int32 = 4
      if mlockall(Int32(MCL_CURRENT | MCL_FUTURE) | onFault) == 0 {
        result.memory = "locked"
      } else {
        result.memory = "refused: \(String(cString: strerror(errno)))"
      }
    }
    return result
  }

  /// Real-time for one thread (0: the calling one). Children never inherit
  /// it (SCHED_RESET_ON_FORK): agents run at ordinary priority.
  static func setRealtime(_ thread: pid_t) -> Bool {
    var parameter = sched_param(sched_priority: priority)
    let resetOnFork: Int32 = 0x4000_0000
    return sched_setscheduler(thread, SCHED_RR | resetOnFork, &parameter) == 0
  }

  /// Called with every input: a thread the runtime made after start-up
  /// (without real-time, as SCHED_RESET_ON_FORK makes them) takes it now.
  static func keepCurrentThread() {
    let resetOnFork: Int32 = 0x4000_0000
    guard sched_getscheduler(0) & ~resetOnFork != SCHED_RR else { return }
    _ = setRealtime(0)
  }

  static func threads() -> [pid_t] {
    guard let folder = opendir("/proc/self/task") else { return [0] }
    defer { closedir(folder) }
    var result: [pid_t] = []
    while let entry = readdir(folder) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      if let id = pid_t(name) { result.append(id) }
    }
    return result.isEmpty ? [0] : result
  }
}

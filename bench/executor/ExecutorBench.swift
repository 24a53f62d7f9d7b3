import Foundation
import HactlConfig
import HactlLab
import HactlModel

/// Tables from one real `hactld` on 127.0.0.1 running resource-agents'
/// `ocf:heartbeat:Dummy` through a wrapper that stamps each call's begin
/// and end (bench/README.md, "executor"):
///
/// - the daemon's overhead per agent call: in a group, each member starts
///   once the one before it has started, so the gap between one start's
///   end and the next start's begin is the daemon's own time (reading the
///   result, deciding, spawning the next call);
/// - monitor throughput: N resources with a monitor every 10 s, the
///   daemon's CPU, and how late each monitor ran against its interval.
///
/// `executor-bench [RESOURCES] [SECONDS] [GROUP SIZE]` (default 500, 60, 50).
@main
struct ExecutorBench {
  static let dummy = "/usr/lib/ocf/resource.d/heartbeat/Dummy"

  static func main() async throws {
    let arguments = CommandLine.arguments.dropFirst().map { $0 }
    let resources = arguments.first.flatMap(Int.init) ?? 500
    let seconds = arguments.count > 1 ? Double(arguments[1]) ?? 60 : 60
    let groupSize = arguments.count > 2 ? Int(arguments[2]) ?? 50 : 50
    guard access(dummy, X_OK) == 0 else {
      print("\(dummy) is not installed (apt-get install resource-agents)")
      return
    }
    try await overhead(members: groupSize)
    try await monitors(resources: resources, seconds: seconds)
  }

  /// A folder with the wrapper agent and its log.
  struct Bench {
    let folder: String
    var log: String { folder + "/calls.log" }
    var wrapper: String { folder + "/stamped-dummy" }

    init() throws {
      var template = Array((NSTemporaryDirectory() + "hactl-executor-bench-XXXXXX").utf8CString)
      guard let made = mkdtemp(&template) else { throw LocalCluster.LabError("cannot make a folder") }
      folder = String(cString: made)
      // Stamps in nanoseconds from the shell's own clock (one `date` each).
      let script = """
        #!/bin/sh
        echo "$OCF_RESOURCE_INSTANCE $1 begin $(date +%s%N)" >> "\(log)"
        \(dummy) "$1"
        rc=$?
        echo "$OCF_RESOURCE_INSTANCE $1 end $(date +%s%N)" >> "\(log)"
        exit $rc
        """
      try script.write(toFile: wrapper, atomically: true, encoding: .utf8)
      chmod(wrapper, 0o755)
    }

    func resourceYAML(_ id: String, monitor: String) -> String {
      """
        - id: \(id)
          agent: "script:\(wrapper)"
          params: { state: "\(folder)/\(id).state" }
          monitor: { interval: \(monitor), timeout: 20s }

      """
    }

    /// (resource, action, begin or end, nanoseconds) per line of the log.
    func calls() -> [(resource: String, action: String, edge: String, at: Int64)] {
      let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
      return text.split(separator: "\n").compactMap { line in
        let fields = line.split(separator: " ")
        guard fields.count == 4, let at = Int64(fields[3]) else { return nil }
        return (String(fields[0]), String(fields[1]), String(fields[2]), at)
      }
    }

    func remove() { try? FileManager.default.removeItem(atPath: folder) }
  }

  static func singleNode(_ resourcesYAML: String) throws -> LocalCluster {
    var options = LocalCluster.Options(resourcesYAML: resourcesYAML)
    options.nodes = ["alpha"]
    options.witness = nil
    return try LocalCluster(options: options)
  }

  static func overhead(members: Int) async throws {
    let bench = try Bench()
    defer { bench.remove() }
    let ids = (1...members).map { String(format: "m%03d", $0) }
    let yaml =
      ids.map { bench.resourceYAML($0, monitor: "1h") }.joined()
      + "groups:\n  - { id: chain, members: [\(ids.joined(separator: ", "))] }\n"
    let cluster = try singleNode(yaml)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(120)) { status in
      ids.allSatisfy { status.resource($0)?.activeOn == ["alpha"] }
    }
    let calls = bench.calls().filter { $0.action == "start" }
    var gaps: [Double] = []
    var agentTimes: [Double] = []
    for (previous, next) in zip(ids, ids.dropFirst()) {
      guard let end = calls.first(where: { $0.resource == previous && $0.edge == "end" })?.at,
        let begin = calls.first(where: { $0.resource == next && $0.edge == "begin" })?.at
      else { continue }
      gaps.append(Double(begin - end) / 1e6)
    }
    for id in ids {
      if let begin = calls.first(where: { $0.resource == id && $0.edge == "begin" })?.at,
        let end = calls.first(where: { $0.resource == id && $0.edge == "end" })?.at
      {
        agentTimes.append(Double(end - begin) / 1e6)
      }
    }
    gaps.sort()
    agentTimes.sort()
    print("| per call, a group of \(members) started in order (ms) | n | median | p99 | max |")
    print("|---|---|---|---|---|")
    print(
      String(
        format: "| daemon: one start's end → the next start's begin | %d | %.2f | %.2f | %.2f |", gaps.count,
        Statistics.percentile(gaps, 50), Statistics.percentile(gaps, 99), gaps.last ?? 0))
    print(
      String(
        format: "| the agent itself: a Dummy start, with its stamps | %d | %.2f | %.2f | %.2f |", agentTimes.count,
        Statistics.percentile(agentTimes, 50), Statistics.percentile(agentTimes, 99), agentTimes.last ?? 0))
    print("")
  }

  static func monitors(resources: Int, seconds: Double) async throws {
    let bench = try Bench()
    defer { bench.remove() }
    let ids = (1...resources).map { String(format: "d%04d", $0) }
    let cluster = try singleNode(ids.map { bench.resourceYAML($0, monitor: "10s") }.joined())
    defer { cluster.shutdown() }
    let started = ContinuousClock.now
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(600)) { status in
      status.resources.filter { $0.activeOn == ["alpha"] }.count == resources
    }
    let settled = (ContinuousClock.now - started).seconds
    // Monitors begin one interval after each start: let them all begin.
    try await Task.sleep(for: .seconds(12))
    let cpuBefore = cluster.cpuSeconds("alpha") ?? 0
    let from = Int64(Date().timeIntervalSince1970 * 1e9)
    let measuring = ContinuousClock.now
    try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    let elapsed = (ContinuousClock.now - measuring).seconds
    let cpu = (cluster.cpuSeconds("alpha") ?? 0) - cpuBefore
    let to = Int64(Date().timeIntervalSince1970 * 1e9)
    let begins = bench.calls().filter { $0.action == "monitor" && $0.edge == "begin" }
    var byResource: [String: [Int64]] = [:]
    for call in begins { byResource[call.resource, default: []].append(call.at) }
    var lateness: [Double] = []
    for times in byResource.values {
      let sorted = times.sorted()
      for (earlier, later) in zip(sorted, sorted.dropFirst()) where later >= from && later <= to {
        lateness.append(Double(later - earlier) / 1e6 - 10_000)
      }
    }
    lateness.sort()
    let done = begins.filter { $0.at >= from && $0.at <= to }.count
    let expected = Double(resources) / 10 * elapsed
    print(
      "| \(resources) Dummy resources, monitor every 10 s | monitors/s done | expected | daemon CPU (% of a core) | late by (ms): median | p99 | max | later than 1 s | start to all running (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
      String(
        format: "| %.0f s measured | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f | %d of %d | %.0f |", elapsed,
        Double(done) / elapsed, expected / elapsed, cpu / elapsed * 100, Statistics.percentile(lateness, 50),
        Statistics.percentile(lateness, 99), lateness.last ?? 0, lateness.filter { $0 > 1000 }.count, lateness.count,
        settled))
  }
}

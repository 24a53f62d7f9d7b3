import Foundation
import HactlConfig
import HactlLab
import HactlModel
import Testing

/// An idle daemon wakes by itself no more often than its heartbeats need:
/// counted from its own timer firings (status `timing.wakeups`), so a daemon
/// that polled on a period (it ticked every 50 ms before) fails this at once;
/// and from the kernel's count of its threads' sleeps, which also sees the
/// wake-ups that run nothing (a follower's event loop woke at every old
/// deadline its timer had been moved from: twice per heartbeat).
@Suite(.serialized)
struct IdleWakeTests {
  @Test func anIdleDaemonWakesAboutOncePerHeartbeatInterval() async throws {
    var options = LocalCluster.Options(resourcesYAML: "")
    options.witness = nil
    let cluster = try LocalCluster(options: options)
    defer { cluster.shutdown() }
    try cluster.startAll()
    _ = try await cluster.waitFor(via: "alpha", timeout: .seconds(20)) { status in
      status.leader != nil && status.nodes.allSatisfy { $0.state == .online && $0.member }
    }
    let interval = try #require(DurationParsing.parse(options.heartbeatInterval))
    let leader = try #require(try await cluster.status(via: "alpha").leader)
    for node in ["alpha", "beta"] {
      // The daemon answers each status somewhere between the asking and
      // the answer reaching this process, which may wait for a core on a
      // loaded machine: its window lies between these two bounds.
      let firstAsked = ContinuousClock.now
      let statusBefore = try await cluster.status(via: node)
      let firstAnswered = ContinuousClock.now
      let before = try #require(statusBefore.timing)
      // The event loops' sleeps are counted in a window of their own: a
      // status request costs a few, and the runtime's threads come and go.
      let loopSleepsBefore = try #require(cluster.threadSleeps(node, namedLike: "NIO-"))
      // Threads renamed would count nothing, and pass for the wrong reason.
      try #require(!loopSleepsBefore.isEmpty, "no event-loop thread (NIO-*) found in \(node)")
      let sleptFrom = ContinuousClock.now
      try await Task.sleep(for: .seconds(3))
      let loopSleeps = LocalCluster.growth(
        from: loopSleepsBefore, to: try #require(cluster.threadSleeps(node, namedLike: "NIO-")))
      let sleptFor = ContinuousClock.now - sleptFrom
      let secondAsked = ContinuousClock.now
      let statusAfter = try await cluster.status(via: node)
      let elapsed = ContinuousClock.now - firstAsked
      let shortest = secondAsked - firstAnswered
      let after = try #require(statusAfter.timing)
      let wakeups = after.wakeups - before.wakeups
      let needed = Int((elapsed / interval).rounded(.up))
      // On a loaded machine a late echo lets a lease end pass between two
      // heartbeats, and a late leader's packet lets a follower's own timer
      // fire: each costs one wake-up. A quarter of the heartbeats is room
      // for that, while polling even at half the interval would need twice.
      let slack = needed / 4
      // The leader's loop wakes for its timer and for the answer to each
      // heartbeat; a follower's only for the leader's heartbeat, which it
      // answers at once. Four is room for the odd late packet.
      let heartbeatsSlept = Int((sleptFor / interval).rounded(.up))
      let loopWakes = node == leader ? 2 * heartbeatsSlept : heartbeatsSlept
      #expect(
        Int(loopSleeps) <= loopWakes + heartbeatsSlept / 4 + 4,
        "\(node)'s event loops slept and woke \(loopSleeps) times in \(sleptFor) (\(heartbeatsSlept) heartbeats)")
      if node == leader {
        // The leader's timer sends a heartbeat per interval; the peer's
        // packets wake it too, but as inputs, not as timer firings.
        #expect(wakeups <= needed + slack, "\(node) woke \(wakeups) times in \(elapsed) (\(needed) heartbeats)")
        #expect(wakeups >= needed / 2, "\(node) woke only \(wakeups) times: is it still sending heartbeats?")
      } else {
        // A follower sends its heartbeats as the leader's arrive: its own
        // timer, a little later than an interval, fires only when one is late.
        #expect(wakeups <= slack, "follower \(node) woke \(wakeups) times by itself in \(elapsed)")
      }
      let sent = (statusAfter.traffic?.sent ?? 0) - (statusBefore.traffic?.sent ?? 0)
      // At least one heartbeat per whole interval of the shortest window
      // (its ends are not the heartbeats' moments).
      let whole = Int((shortest / interval).rounded(.down))
      #expect(sent >= whole - 2, "\(node) sent \(sent) packets in at least \(shortest) (\(whole) whole intervals)")
      #expect(after.peersLost == 0)
      // Nothing changes in an idle cluster, so nothing is decided again
      // (a lease end between two heartbeats may ask for one or two).
      #expect(after.decisions - before.decisions <= 3, "\(node) decided \(after.decisions - before.decisions) times")
      #expect(after.decisionsSkipped - before.decisionsSkipped >= whole - 2)
      #expect(after.longestSilenceMilliseconds < DurationParsing.parse(options.deadTime)!.milliseconds)
    }
  }
}

import Foundation
import HactlAgents
import HactlControl
import HactlController
import HactlExecutor
import HactlMembership
import HactlModel
import HactlTransport
import HactlWire
import Logging
import NIOCore

/// The imperative shell around one `NodeController`: it feeds the controller
/// its inputs with the time, and performs the effects it returns, in order.
actor DaemonCore {
  /// The core runs on the transport's event loop: packets are handled as
  /// they are read, and what it sends is written without a hand-over.
  nonisolated var unownedExecutor: UnownedSerialExecutor { transport.loop.executor.asUnownedSerialExecutor() }

  var controller: NodeController
  let transport: UDPTransport
  let store: StateStore
  let logger: Logger
  let ocfRoot: String
  let agentRuntimeFolder: String?
  /// The compatibility commands agents call (crm_attribute, crm_master).
  let agentTools: AgentTools?
  let clock = ContinuousClock()
  let origin: ContinuousClock.Instant
  var sequence: UInt64 = 0
  var waiters: [UInt64: CheckedContinuation<ControlResponse, Never>] = [:]
  /// Waiters for configuration changes: their timeout means "outcome unknown".
  var configWaiters: Set<UInt64> = []
  var agentTasks: [UInt64: Task<Void, Never>] = [:]

  static let requestTimeout: Duration = .seconds(10)

  /// Real-time scheduling and locked memory, as granted at start-up.
  let protections: Protections

  init(
    controller: NodeController, transport: UDPTransport, store: StateStore, logger: Logger, ocfRoot: String,
    agentRuntimeFolder: String?, agentTools: AgentTools? = nil, origin: ContinuousClock.Instant,
    protections: Protections
  ) {
    self.controller = controller
    self.transport = transport
    self.store = store
    self.logger = logger
    self.ocfRoot = ocfRoot
    self.agentRuntimeFolder = agentRuntimeFolder
    self.agentTools = agentTools
    self.origin = origin
    self.protections = protections
  }

  var now: Instant { Instant(nanoseconds: (clock.now - origin).nanosecondsClamped) }

  func start() { perform(controller.start(now: now)) }
  func tick() {
    perform(controller.tick(now: now))
    warnAboutNewerPeers()
  }

  // MARK: Waking

  /// The one timer: set to the controller's deadline after every input
  /// (`NodeController.wakeAt`). Nothing else wakes the daemon but packets,
  /// agent results and requests: no period, no polling. It is a timer
  /// descriptor of the daemon's own (`WakeTimer`); where there is none, or
  /// once it is lost, an event-loop task.
  var wakeTimer: WakeTimer?
  /// The moment `wakeTimer` is set for (nil: not set, or its expiry read).
  var descriptorArmedFor: ContinuousClock.Instant?
  var timer: Scheduled<Void>?
  var timerDeadline: Instant?
  /// Timer firings since start (shown in status): an idle daemon wakes
  /// about once per heartbeat interval.
  var wakeups = 0
  var lastThreadSweep: ContinuousClock.Instant?

  func openWakeTimer() async {
    do {
      let opened = try await WakeTimer.open(
        on: transport.loop,
        fired: { [self] in assumeIsolated { $0.timerFired(nil) } },
        lost: { [self] in assumeIsolated { $0.wakeTimerLost() } })
      guard !timerStopped else { return await opened.close() }
      wakeTimer = opened
      timerDeadline = nil
      rearm()
    } catch {
      logger.notice("\(error): the event loop's tasks wake this daemon, sometimes for nothing")
    }
  }

  func wakeTimerLost() {
    guard !timerStopped, wakeTimer != nil else { return }
    logger.warning("the timer descriptor closed: the event loop's tasks wake this daemon from now on")
    wakeTimer = nil
    descriptorArmedFor = nil
    timerDeadline = nil
    rearm()
  }

  func rearm() {
    guard !timerStopped else { return }
    let wake = controller.wakeAt
    guard wake != timerDeadline else { return }
    timer?.cancel()
    timer = nil
    timerDeadline = wake
    let now = clock.now
    let delay = wake == .distantFuture ? nil : origin + .nanoseconds(wake.nanoseconds) - now
    if let descriptorTimer = wakeTimer {
      // Once the descriptor's moment has passed its expiry may already be
      // in the loop's current batch of events: moving it now would leave
      // NIO a readable event with nothing to read. It fires, and the tick
      // it calls moves it.
      if let armed = descriptorArmedFor, now >= armed { return }
      if descriptorTimer.arm(in: delay) {
        descriptorArmedFor = delay.map { now + $0 }
        return
      }
      wakeTimer = nil
      logger.warning("the timer descriptor refused its deadline: the event loop's tasks wake this daemon from now on")
    }
    guard let delay else { return }
    timer = transport.loop.scheduleTask(in: .nanoseconds(max(0, delay.nanosecondsClamped))) { [self] in
      assumeIsolated { $0.timerFired(wake) }
    }
  }

  /// `deadline` is the task's own (nil from the descriptor, which is moved
  /// in place and so never fires for an old one): a task cancelled too late
  /// to stop it must not take the place of the current one.
  func timerFired(_ deadline: Instant?) {
    if let deadline, deadline != timerDeadline { return }
    if deadline == nil { descriptorArmedFor = nil }
    timerDeadline = nil
    wakeups += 1
    if protections.realtimeGranted, lastThreadSweep.map({ clock.now - $0 >= .seconds(10) }) ?? true {
      // Threads the runtime made since start-up (without real-time) get it.
      lastThreadSweep = clock.now
      for thread in Protections.threads() { _ = Protections.setRealtime(thread) }
      realtimeThreads = []
    }
    tick()
  }

  /// Set once the daemon has left: nothing wakes it any more.
  var timerStopped = false

  func stopTimer() async {
    timerStopped = true
    timer?.cancel()
    timer = nil
    timerDeadline = nil
    await wakeTimer?.close()
    wakeTimer = nil
  }

  /// Whoever waits for the next input (`leaveAndWait`).
  var inputWaiter: CheckedContinuation<Void, Never>?

  func waitForAnInput() async {
    await withCheckedContinuation { inputWaiter = $0 }
  }

  func inputHappened() {
    inputWaiter?.resume()
    inputWaiter = nil
  }

  /// Packets this version cannot read (another format, unknown message
  /// kinds) come from a newer hactld: a mixed cluster is said out loud, at
  /// most once a minute, not only counted.
  var unsupportedSeen = 0
  var lastUnsupportedWarning: ContinuousClock.Instant?

  func warnAboutNewerPeers() {
    let unsupported = transport.statistics.unsupported
    guard unsupported > unsupportedSeen else { return }
    if let last = lastUnsupportedWarning, clock.now - last < .seconds(60) { return }
    let count = unsupported - unsupportedSeen
    logger.warning(
      "\(count) packets in a wire format or of a kind this hactld does not know: a newer version runs on another member; upgrade this one (docs/wire-format.md, Compatibility)"
    )
    unsupportedSeen = unsupported
    lastUnsupportedWarning = clock.now
  }
  /// Packets read in one turn of the event loop (a burst of heartbeats,
  /// the queue after a stall) get one decision, made once they are all in:
  /// NIO runs the task after the reads of its turn.
  func receive(_ packet: Packet, link: Int) {
    perform(controller.receiveDeferringDecision(packet, link: link, now: now))
    guard controller.decisionPending, !decisionScheduled else { return }
    decisionScheduled = true
    transport.loop.execute { [self] in
      assumeIsolated { core in
        core.decisionScheduled = false
        core.perform(core.controller.decidePending(now: core.now))
      }
    }
  }

  var decisionScheduled = false

  /// Stops every resource here and waits for the stops, as long as the
  /// slowest stop may take (of the resources it runs now, which a
  /// configuration change may have altered since the start) and a margin.
  /// Returns what may still be active when it gives up (a blocked stop, a
  /// stop still hanging): the daemon must not claim a clean exit then.
  func leaveAndWait() async -> [ResourceID] {
    perform(controller.leave(now: now))
    let deadline = ContinuousClock.now + controller.longestStopTimeout + Self.shutdownMargin
    // The timer goes on ticking meanwhile (a probe or a retry may be due);
    // every agent result is an input; one more wakes the wait at the end.
    let giveUp = Task {
      try? await Task.sleep(until: deadline, clock: .continuous)
      self.inputHappened()
    }
    defer { giveUp.cancel() }
    while !controller.isQuiescent && ContinuousClock.now < deadline {
      await waitForAnInput()
    }
    return controller.possiblyActive
  }

  /// Beyond the longest stop: the kill grace of a cancelled start, a probe.
  static let shutdownMargin: Duration = .seconds(5)

  /// Set once the daemon can no longer keep its promises (its state cannot
  /// be written): from then on it only stops what it runs, then exits.
  var failing: String?

  func agentFinished(_ call: AgentCall, _ run: AgentRun) {
    agentTasks[call.id] = nil
    let failed: Bool
    switch run.outcome {
    case .exited(let code): failed = !(code == 0 || (call.action == .monitor && code == 7))
    case .timedOut, .signaled, .notInstalled, .couldNotSpawn: failed = true
    }
    let elapsed = "\(run.elapsed.milliseconds) ms"
    if failed {
      logger.warning(
        "\(call.resource) \(call.action.rawValue) → \(run.outcome) after \(elapsed): \(run.output.trimmed)")
    } else if call.action != .monitor || call.isProbe {
      logger.info(
        "\(call.resource) \(call.action.rawValue)\(call.isProbe ? " (probe)" : "") → \(run.outcome) after \(elapsed)")
    }
    finishedAgents.append(
      NodeController.AgentResult(
        call: call, outcome: run.outcome, wallTime: Int64(Date().timeIntervalSince1970), exitReason: run.exitReason,
        output: run.output, reload: call.action == .metaData ? Self.reload(of: run) : nil))
    // Results that come in while this one waits for its turn on the loop
    // join it: one decision for all of them.
    if finishedAgents.count == 1 { Task { self.takeFinishedAgents() } }
  }

  var finishedAgents: [NodeController.AgentResult] = []

  /// What a meta-data call's answer says about reloading; nil when there
  /// is no whole answer to read (the controller then restarts).
  static func reload(of run: AgentRun) -> AgentReload? {
    guard case .exited(0) = run.outcome, !run.outputCut else { return nil }
    return try? AgentMetadata.parse(run.output).reload
  }

  func takeFinishedAgents() {
    let results = finishedAgents
    finishedAgents = []
    perform(controller.agentsFinished(results, now: now))
  }

  func control(_ request: ControlRequest) async -> ControlResponse {
    switch request {
    case .status:
      var status = controller.status(now: now)
      let wire = transport.statistics
      let counted = controller.counters
      let keys = transport.sealer.keyIDs
      status.traffic = TrafficStatus(
        sent: wire.sent, bytesSent: wire.bytesSent, received: wire.received,
        failedAuthentication: wire.failedAuthentication,
        malformed: wire.malformed, replayed: counted.packetsReplayed + counted.packetsStale,
        unknownSender: counted.packetsFromStrangers + wire.misdirected, unsupported: wire.unsupported,
        earlierBoot: counted.packetsBeforeHandshake, key: ClusterKey.hex(keys.current),
        nextKey: keys.next.map(ClusterKey.hex))
      status.timing = TimingStatus(
        wakeups: wakeups, peersLost: counted.peersLost,
        longestSilenceMilliseconds: controller.membership.longestSilence.milliseconds,
        realtime: protections.realtime, memory: protections.memory, decisions: counted.decisions,
        decisionsSkipped: counted.decisionsSkipped)
      return ControlResponse(ok: true, status: status)
    case .migrate(let resource, let node):
      return await wait(for: controller.requestMove(resource: resource, to: node, now: now))
    case .history:
      do {
        var response = ControlResponse(ok: true)
        response.history = try store.loadHistory()
        return response
      } catch {
        return .failure("\(error)")
      }
    case .fence(let node, let action, let confirm):
      return await wait(for: controller.requestFence(node: node, action: action, confirm: confirm, now: now))
    case .applyConfig(let text):
      return await wait(for: controller.requestConfigChange(text: text, now: now), isConfig: true)
    case .showConfig:
      let document = controller.document
      return ControlResponse(ok: true, message: document.text, configVersion: document.version.description)
    case .setAttribute(let name, let value, let node?) where node != controller.local.name:
      return await wait(for: controller.requestAttribute(node: node, name: name, value: value, now: now))
    case .setAttribute(let name, let value, _):
      let (result, effects) = controller.setAttribute(name, value, now: now)
      perform(effects)
      switch result {
      case .success(let message): return ControlResponse(ok: true, message: message)
      case .failure(let error): return .failure(error.description)
      }
    case .edit(let edit):
      return await wait(for: controller.requestOperatorEdit(edit, now: now), isConfig: true)
    case .cleanup(let resource, let node):
      return await wait(for: controller.requestCleanup(resource: resource, node: node, now: now))
    case .why(let resource):
      switch controller.explain(resource, now: now) {
      case .success(let text): return ControlResponse(ok: true, message: text)
      case .failure(let error): return .failure(error.description)
      }
    case .getProperty(let name):
      switch controller.property(name) {
      case .success(let value): return ControlResponse(ok: true, message: value)
      case .failure(let error): return .failure(error.description)
      }
    case .getAttribute(let name, let node):
      switch controller.attribute(name, node: node) {
      case .success(let value): return ControlResponse(ok: true, message: value)
      case .failure(let error): return .failure(error.description)
      }
    }
  }

  /// Performs a request's effects and waits for the leader's answer.
  func wait(
    for request: (Result<UInt64, NodeController.RequestError>, [ControllerEffect]), isConfig: Bool = false
  ) async -> ControlResponse {
    let (result, effects) = request
    switch result {
    case .failure(let error):
      perform(effects)
      return .failure(error.description)
    case .success(let id):
      return await withCheckedContinuation(isolation: self) { continuation in
        // Register first: when this node leads, the answer is among `effects`.
        waiters[id] = continuation
        if isConfig { configWaiters.insert(id) }
        perform(effects)
        Task {
          try? await Task.sleep(for: Self.requestTimeout)
          await self.expire(id)
        }
      }
    }
  }

  func expire(_ id: UInt64) {
    guard let waiter = waiters.removeValue(forKey: id) else { return }
    controller.cancelRequest(id)
    rearm()
    let why =
      configWaiters.remove(id) != nil
      ? "no leader confirmed the change within \(Self.requestTimeout): it may or may not have been applied "
        + "(compare the version in 'hactl status' with the one before)"
      : "no leader answered within \(Self.requestTimeout) (is this node in a quorate partition? see 'hactl status')"
    waiter.resume(returning: .failure(why))
  }

  /// Threads seen to run real-time: asking the kernel again at every input
  /// was two system calls per packet. A thread the runtime replaced is
  /// caught by the sweep every 10 s.
  var realtimeThreads: Set<UInt> = []

  /// Performs the effects of one input, in order, then sleeps until the
  /// controller's next deadline.
  func perform(_ effects: [ControllerEffect]) {
    if protections.realtimeGranted, realtimeThreads.insert(UInt(bitPattern: Int(bitPattern: pthread_self()))).inserted {
      Protections.keepCurrentThread()
    }
    defer {
      rearm()
      inputHappened()
    }
    for effect in effects {
      if failing != nil {
        // Nothing more may be promised to the peers (a vote, a stored
        // configuration) now that nothing can be stored: only stops run.
        switch effect {
        case .send, .persistElection, .persistConfig, .persistRetiring: continue
        default: break
        }
      }
      switch effect {
      case .send(let peer, let message):
        do {
          for datagram in try MessageParts.fit(message) {
            sequence += 1
            let header = PacketHeader(
              sender: controller.local.id, receiver: peer, incarnation: controller.incarnation,
              receiverIncarnation: controller.receiverIncarnation(for: peer), sequence: sequence,
              sentAt: now.nanoseconds)
            try transport.send(Packet(header: header, message: datagram))
          }
        } catch {
          logger.error("cannot encode a packet for \(peer): \(error)")
        }
      case .persistElection(let record):
        // Voting without a durable record could vote twice after a crash.
        durably("keep the one-vote-per-term promise") { try store.save(record) }
      case .persistConfig(let document):
        // Heartbeats would claim a configuration this node does not hold.
        durably("not claim a configuration it could not store") { try store.save(document) }
      case .persistRetiring(let definitions):
        // Without it, a restart could leave an old definition running unseen.
        durably("not lose track of resources it may still run") { try store.saveRetiring(definitions) }
      case .runAgent(let call):
        runAgent(call)
      case .runFence(let call):
        runFence(call)
      case .feedWatchdog:
        feedWatchdog()
      case .recordFencing(let event):
        // Not a safety promise: a history that cannot be written is said
        // in the log, and the fencing itself stands.
        do {
          try store.appendHistory(event)
        } catch {
          logger.error("fencing history: \(error)")
        }
      case .cancelAgent(let id):
        agentTasks.removeValue(forKey: id)?.cancel()
      case .requestAnswered(let answer):
        var response =
          answer.accepted ? ControlResponse(ok: true, message: answer.message) : .failure(answer.message)
        response.configVersion = answer.configVersion?.description
        configWaiters.remove(answer.id)
        waiters.removeValue(forKey: answer.id)?.resume(returning: response)
      case .log(let level, let message):
        logger.log(level: level.swiftLog, "\(message)")
      }
    }
  }

  /// Durable state that cannot be written leaves one safe answer: send
  /// nothing more (what follows the write relied on it), stop every
  /// resource here, then exit non-zero saying why.
  func durably(_ promise: String, _ write: () throws -> Void) {
    do {
      try write()
    } catch {
      guard failing == nil else { return }
      failing = "\(error)"
      logger.critical("\(error); to \(promise), this node stops its resources and exits")
      Task {
        let left = await leaveAndWait()
        let still = left.isEmpty ? "" : "; may still run here: \(left.map(\.rawValue).joined(separator: ", "))"
        logger.critical("exiting: durable state cannot be written\(still)")
        exit(70)
      }
    }
  }

  // MARK: Watchdog

  /// The watchdog device, open while the daemon runs (-1: none).
  var watchdog: Int32 = -1

  /// Opens the Linux watchdog device and sets its timeout (WDIOC_SETTIMEOUT);
  /// from then on the machine resets unless it is fed in time. A file that
  /// is not a watchdog (a test's stand-in) takes the bytes and no timeout.
  func openWatchdog(_ settings: FencingConfig.Watchdog) throws {
    // O_APPEND means nothing to a watchdog device; a stand-in file shared
    // by the nodes of a test keeps every node's bytes (the disarming 'V'
    // was overwritten by a peer's later feeds).
    let fd = open(settings.device, O_WRONLY | O_APPEND | O_CLOEXEC)
    guard fd >= 0 else {
      throw Daemon.StartupError(
        description: "cannot open the watchdog \(settings.device): \(String(cString: strerror(errno)))", exitCode: 1)
    }
    var seconds = Int32(settings.timeout.components.seconds)
    let setTimeout: UInt = 0xC004_5706  // WDIOC_SETTIMEOUT, _IOWR('W', 6, int)
    if ioctl(fd, setTimeout, &seconds) != 0 {
      logger.warning(
        "watchdog \(settings.device): cannot set its timeout (\(String(cString: strerror(errno)))): not a watchdog device?"
      )
    }
    watchdog = fd
    logger.notice("watchdog \(settings.device) armed: \(seconds) s without a feed resets this machine")
    feedWatchdog()
  }

  func feedWatchdog() {
    guard watchdog >= 0 else { return }
    var byte: UInt8 = 0
    if write(watchdog, &byte, 1) != 1 {
      logger.error("cannot feed the watchdog: \(String(cString: strerror(errno)))")
    }
  }

  /// At exit: disarmed (the magic 'V') when everything here is stopped;
  /// left armed otherwise, so a node that could not stop what it ran resets.
  func closeWatchdog(disarm: Bool) {
    guard watchdog >= 0 else { return }
    if disarm {
      var magic = UInt8(ascii: "V")
      _ = write(watchdog, &magic, 1)
    } else {
      logger.critical("exiting with resources it could not stop: the watchdog will reset this machine")
    }
    close(watchdog)
    watchdog = -1
  }

  func runFence(_ call: FenceCall) {
    logger.warning(
      "fencing \(call.targetName) (\(call.action.rawValue)) with \(call.device.id), at most \(call.device.timeout.milliseconds) ms"
    )
    Task {
      let attempt = await FenceRunner.run(
        call.device, target: call.targetName, action: call.action == .off ? .off : .reboot)
      await self.fenceFinished(call, attempt)
    }
  }

  func fenceFinished(_ call: FenceCall, _ attempt: FenceRunner.Attempt) {
    let result: FenceResult
    switch attempt.outcome {
    case .succeeded: result = .succeeded
    case .targetOff: result = .failed("the device answered 'off' to \(call.action.rawValue)")
    case .failed(let why):
      result = .failed(why)
      if !attempt.output.isEmpty { logger.warning("\(call.device.id) said: \(attempt.output.trimmed)") }
    }
    perform(controller.fenceFinished(call.id, result: result, now: now))
  }

  func runAgent(_ call: AgentCall) {
    let spec = call.definition
    var invocation = AgentClass.invocation(
      AgentClass.Call(
        spec: spec, action: call.action, timeout: call.timeout, interval: call.interval,
        nodeName: controller.local.name, nodeID: controller.local.id, runtimeFolder: agentRuntimeFolder,
        meta: call.meta, tools: agentTools),
      folders: AgentFolders(ocfRoot: ocfRoot), exists: { access($0, F_OK) == 0 })
    if call.action == .metaData {
      // The answer is the XML on stdout, whole or not at all.
      invocation.outputLimit = AgentMetadata.largestText
      invocation.keepsErrorOutput = false
    }
    agentTasks[call.id] = Task {
      var run = await AgentRunner.run(invocation)
      run.outcome = AgentClass.ocfOutcome(of: run, agent: spec.agent, action: call.action)
      await self.agentFinished(call, run)
    }
  }
}

extension LogLevel {
  var swiftLog: Logger.Level {
    switch self {
    case .debug: return .debug
    case .info: return .info
    case .notice: return .notice
    case .warning: return .warning
    case .error: return .error
    }
  }
}

extension String {
  var trimmed: String {
    let text = trimmingCharacters(in: .whitespacesAndNewlines)
    return text.count > 500 ? String(text.suffix(500)) : text
  }
}

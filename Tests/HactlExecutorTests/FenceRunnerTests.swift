import Foundation
import HactlAgents
import HactlExecutor
import HactlModel
import Testing

/// One fence attempt as the fence-agents API makes it: options on stdin,
/// secrets read when fencing and never shown, hooks called with the target
/// and action, every call bounded by its timeout; against Debian's real
/// fence_dummy too.
final class FenceRunnerTests {
  let folder: String

  init() throws {
    folder = NSTemporaryDirectory() + "hactl-fence-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: folder) }

  func script(_ name: String, _ body: String) throws -> String {
    let path = folder + "/" + name
    try ("#!/bin/sh\n" + body).write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    return path
  }

  @Test func anAgentReadsItsOptionsAndSecretsOnStdinAndNoSecretIsShown() async throws {
    let agent = try script(
      "fence_recorder",
      "cat > \"\(folder)/stdin\"\necho \"logged in with $(grep ^password=)\" >&2\necho 'login failed for password=s3cret!'\nexit 1\n"
    )
    try "s3cret!\nsecond line is not read\n".write(toFile: folder + "/pass", atomically: true, encoding: .utf8)
    let device = FenceDevice(
      id: "bmc", program: .agent(agent), targets: .hostMap(["alpha": "7"]),
      options: [FenceOption(name: "ip", value: "127.0.0.1"), FenceOption(name: "lanplus", value: "1")],
      secrets: [
        FenceSecret(name: "password", source: .file(folder + "/pass")),
        FenceSecret(name: "username", source: .command("echo admin; echo ignored")),
      ], action: .off, timeout: .seconds(10))
    let attempt = await FenceRunner.run(device, target: "alpha", action: .off)
    let stdin = try String(contentsOfFile: folder + "/stdin", encoding: .utf8)
    #expect(
      stdin == "action=off\nplug=7\nnodename=alpha\nip=127.0.0.1\nlanplus=1\npassword=s3cret!\nusername=admin\n")
    guard case .failed(let why) = attempt.outcome else {
      Issue.record("exit 1 is a failure: \(attempt.outcome)")
      return
    }
    #expect(why == "exit 1: login failed for password=********")
    #expect(!attempt.output.contains("s3cret") && attempt.output.contains("********"), "\(attempt.output)")
  }

  @Test func aSecretThatCannotBeReadStopsTheAttemptAndSaysWhereItLooked() async throws {
    let agent = try script("fence_never", "touch \"\(folder)/ran\"\n")
    let device = FenceDevice(
      id: "bmc", program: .agent(agent), targets: .nodes(["alpha"]),
      secrets: [FenceSecret(name: "password", source: .file(folder + "/missing"))])
    let attempt = await FenceRunner.run(device, target: "alpha", action: .reboot)
    #expect(attempt.outcome == .failed("cannot read secret password from \(folder)/missing: No such file or directory"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/ran"), "the agent never runs without its secret")
    let link = folder + "/link"
    try "x\n".write(toFile: folder + "/real", atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: folder + "/real")
    let linked = FenceDevice(
      id: "bmc", program: .agent(agent), targets: .nodes(["alpha"]),
      secrets: [FenceSecret(name: "password", source: .file(link))])
    guard case .failed(let why) = await FenceRunner.run(linked, target: "alpha", action: .reboot).outcome else {
      Issue.record("a secret behind a symbolic link was read")
      return
    }
    #expect(why.hasPrefix("cannot read secret password from \(link)"))
    // A FIFO would wait for a writer forever: refused at once.
    let fifo = folder + "/fifo"
    #expect(mkfifo(fifo, 0o600) == 0)
    let piped = FenceDevice(
      id: "bmc", program: .agent(agent), targets: .nodes(["alpha"]),
      secrets: [FenceSecret(name: "password", source: .file(fifo))])
    #expect(
      await FenceRunner.run(piped, target: "alpha", action: .reboot).outcome
        == .failed("cannot read secret password from \(fifo): not a regular file"))
  }

  @Test func aHookGetsTheTargetAndActionAndAHungOneIsKilledAtItsTimeout() async throws {
    let hook = try script("hook", "echo \"$1 $2\" > \"\(folder)/args\"\n")
    let device = FenceDevice(id: "api", program: .hook(hook), targets: .nodes(["alpha", "beta"]))
    #expect(await FenceRunner.run(device, target: "beta", action: .reboot).outcome == .succeeded)
    #expect(try String(contentsOfFile: folder + "/args", encoding: .utf8) == "beta reboot\n")
    #expect(
      await FenceRunner.run(device, target: "gamma", action: .reboot).outcome == .failed("api cannot fence gamma"))

    let hung = try script("hung", "sleep 600 &\nsleep 600\n")
    let slow = FenceDevice(id: "slow", program: .hook(hung), targets: .nodes(["alpha"]), timeout: .milliseconds(300))
    let attempt = await FenceRunner.run(slow, target: "alpha", action: .off)
    #expect(attempt.outcome == .failed("timed out after 300 ms"))
    #expect(attempt.elapsed < .seconds(5))
  }

  /// Debian's fence_dummy (fence-agents) in its file mode: reboot, then
  /// status says on; off, then status says off.
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/fence_dummy")))
  func debiansFenceDummySpeaksTheProtocol() async throws {
    let device = FenceDevice(
      id: "dummy", program: .agent("/usr/sbin/fence_dummy"), targets: .nodes(["alpha"]),
      options: [FenceOption(name: "type", value: "file"), FenceOption(name: "status_file", value: folder + "/power")],
      timeout: .seconds(30))
    #expect(await FenceRunner.run(device, target: "alpha", action: .reboot).outcome == .succeeded)
    #expect(await FenceRunner.run(device, target: "alpha", action: .status).outcome == .succeeded)
    #expect(await FenceRunner.run(device, target: "alpha", action: .off).outcome == .succeeded)
    #expect(await FenceRunner.run(device, target: "alpha", action: .status).outcome == .targetOff)
  }
}

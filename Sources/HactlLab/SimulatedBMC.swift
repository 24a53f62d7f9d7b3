import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A server's BMC for fencing tests and benchmarks: OpenIPMI's `ipmi_sim`
/// on 127.0.0.1 (real IPMI 2.0 over lanplus, what Debian's fence_ipmilan
/// speaks), whose "machine" is a process: powering it off kills the pid
/// written in `pidFile`. Its power state is a file the chassis control
/// script keeps, "1" or "0".
public final class SimulatedBMC: @unchecked Sendable {
  public static let programs = ["/usr/bin/ipmi_sim", "/usr/bin/ipmitool", "/usr/sbin/fence_ipmilan"]
  public static var available: Bool { programs.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) } }

  public let port: UInt16
  public let username = "hactl"
  /// A file holding the password, mode 0600 (a fence device's secret).
  public let passwordFile: String
  /// Where the pid of the process that stands for the machine goes.
  public let pidFile: String
  let powerFile: String
  let process: Process

  /// Starts a BMC keeping its files in `folder` (made if missing).
  public init(folder: String) throws {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    port = try LocalCluster.freeUDPPorts(count: 1)[0]
    passwordFile = folder + "/bmc.pass"
    pidFile = folder + "/machine.pid"
    powerFile = folder + "/bmc-power"
    let password = String(UInt64.random(in: 0 ... .max), radix: 36)
    try "\(password)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
    chmod(passwordFile, 0o600)
    try """
    name "hactl-lab-bmc"
    set_working_mc 0x20
      startlan 1
        addr 127.0.0.1 \(port)
        priv_limit admin
        allowed_auths_admin none md2 md5 straight
        guid 686163746c2d6c61622d626d63000001
      endlan
      chassis_control "\(folder)/chassis 0x20"
      user 2 true "\(username)" "\(password)" admin 10 none md2 md5 straight
    """.write(toFile: folder + "/lan.conf", atomically: true, encoding: .utf8)
    try """
    mc_setbmc 0x20
    mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
    mc_enable 0x20
    """.write(toFile: folder + "/bmc.emu", atomically: true, encoding: .utf8)
    // ipmi_sim calls it as `chassis DEVICE get PARM...` or `set PARM VALUE...`.
    try """
    #!/bin/sh
    power="\(powerFile)"
    [ -e "$power" ] || echo 1 > "$power"
    shift
    action="$1"; shift
    if [ "$action" = get ]; then
      for parm in "$@"; do [ "$parm" = power ] && echo "power:$(cat "$power")"; done
      exit 0
    fi
    while [ $# -ge 2 ]; do
      if [ "$1" = power ]; then
        [ "$2" = 0 ] && [ -s "\(pidFile)" ] && kill -KILL "$(cat "\(pidFile)")" 2>/dev/null
        echo "$2" > "$power"
      fi
      shift 2
    done
    exit 0
    """.write(toFile: folder + "/chassis", atomically: true, encoding: .utf8)
    chmod(folder + "/chassis", 0o755)
    process = Process()
    process.executableURL = URL(fileURLWithPath: Self.programs[0])
    process.arguments = ["-c", folder + "/lan.conf", "-f", folder + "/bmc.emu", "-n", "-s", folder + "/state"]
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
  }

  deinit { stop() }

  /// The machine is now this process.
  public func standFor(pid: Int32) throws {
    try String(pid).write(toFile: pidFile, atomically: true, encoding: .utf8)
  }

  /// "1" (on) or "0" (off), as the BMC last set it.
  public var power: String? {
    (try? String(contentsOfFile: powerFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// A `fencing.devices` entry (YAML, in a list indented by four spaces)
  /// for fence_ipmilan against this BMC, fencing `node`.
  public func deviceYAML(id: String, node: String, timeout: String = "30s") -> String {
    """
        - id: \(id)
          agent: fence_ipmilan
          params: { ip: 127.0.0.1, ipport: "\(port)", username: \(username), lanplus: "1", cipher: "3" }
          secrets: { password: { file: "\(passwordFile)" } }
          hosts: [\(node)]
          timeout: \(timeout)

    """
  }

  public func stop() {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
  }
}

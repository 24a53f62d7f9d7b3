import Foundation
import HactlExecutor
import HactlModel

/// The agents installed on this machine and what each takes. An agent's
/// meta-data is read once: its answer is kept in a cache file and reused
/// while the program's size, modification time and inode stay the same
/// (an upgraded resource-agents package is read again).
public struct AgentCatalog: Sendable {
  public var folders: AgentFolders
  /// Where answers are kept; nil keeps nothing (each run asks the agents).
  public var cacheFolder: String?

  public static let defaultCacheFolder = "/var/cache/hactl/meta-data"
  /// The agents' own advice for meta-data is 5 s; a busy machine gets more.
  public static let metadataTimeout: Duration = .seconds(10)

  public init(folders: AgentFolders, cacheFolder: String? = AgentCatalog.defaultCacheFolder) {
    self.folders = folders
    self.cacheFolder = cacheFolder
  }

  public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
  }

  // MARK: Listing

  /// Installed agents as configurations name them, sorted: all of them, or
  /// those of one class (`ocf`, `lsb`, `heartbeat`) or OCF provider
  /// (`ocf:heartbeat`).
  public func list(_ filter: String? = nil) throws(Failure) -> [String] {
    let parts = filter.map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
    guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }) else {
      throw Failure("'\(filter ?? "")' is not a class or class:provider (ocf, ocf:heartbeat, lsb, heartbeat)")
    }
    let standard = parts.first
    if let standard, !["ocf", "lsb", "heartbeat"].contains(standard) {
      throw Failure(
        standard == "script"
          ? "script agents are named by their path; there is nothing to list"
          : "unknown agent class '\(standard)' (ocf, lsb, heartbeat)")
    }
    if parts.count == 2, standard != "ocf" { throw Failure("only OCF agents have providers") }
    var names: [String] = []
    if standard == nil || standard == "ocf" {
      let root = folders.ocfRoot + "/resource.d"
      let providers = parts.count == 2 ? [parts[1]] : Self.entries(of: root).filter { Self.isFolder(root + "/" + $0) }
      for provider in providers {
        for type in Self.entries(of: root + "/" + provider) where Self.isProgram(root + "/" + provider + "/" + type) {
          names.append("ocf:\(provider):\(type)")
        }
      }
    }
    if standard == nil || standard == "lsb" {
      for name in Self.entries(of: folders.initScripts) where Self.isProgram(folders.initScripts + "/" + name) {
        names.append("lsb:\(name)")
      }
    }
    if standard == nil || standard == "heartbeat" {
      // Init scripts are heartbeat agents too, as a last resort; they are
      // listed once, as lsb.
      var seen: Set<String> = []
      for folder in folders.heartbeatScripts where folder != folders.initScripts {
        for name in Self.entries(of: folder) where Self.isProgram(folder + "/" + name) && seen.insert(name).inserted {
          names.append("heartbeat:\(name)")
        }
      }
    }
    return names.sorted()
  }

  static func entries(of folder: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { !$0.hasPrefix(".") }
  }

  static func isFolder(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
  }

  static func isProgram(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
  }

  // MARK: Meta-data

  /// The agent's meta-data, from the cache or from the agent itself.
  public func metadata(of agent: AgentRef) async -> Result<AgentMetadata, Failure> {
    guard agent.standard == .ocf else {
      return .failure(Failure("\(agent): \(agent.standard.rawValue) agents print no meta-data"))
    }
    guard let program = agent.programs(ocfRoot: folders.ocfRoot).first(where: Self.isProgram) else {
      return .failure(
        Failure("\(agent) is not installed (no executable \(agent.programs(ocfRoot: folders.ocfRoot)[0]))"))
    }
    let identity = Self.identity(of: program)
    let text: String
    if let identity, let cached = cachedText(for: agent.description, identity: identity) {
      text = cached
    } else {
      switch await ask(agent) {
      case .failure(let failure): return .failure(failure)
      case .success(let answer): text = answer
      }
      if let identity { keep(text, for: agent.description, identity: identity) }
    }
    do {
      return .success(try AgentMetadata.parse(text))
    } catch {
      return .failure(Failure("\(agent): \(error)"))
    }
  }

  /// A fence agent's meta-data (`AGENT -o metadata`, the fence-agents
  /// API), from the cache or from the agent itself.
  public func fenceMetadata(program: String) async -> Result<AgentMetadata, Failure> {
    guard Self.isProgram(program) else { return .failure(Failure("\(program) is not installed")) }
    let key = "fence:" + program
    let identity = Self.identity(of: program)
    let text: String
    if let identity, let cached = cachedText(for: key, identity: identity) {
      text = cached
    } else {
      var invocation = AgentInvocation(
        path: program, arguments: ["-o", "metadata"], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"],
        timeout: Self.metadataTimeout)
      invocation.outputLimit = AgentMetadata.largestText
      invocation.keepsErrorOutput = false
      let run = await AgentRunner.run(invocation)
      guard case .exited(0) = run.outcome, !run.outputCut else {
        return .failure(Failure("\(program) -o metadata: \(run.outcome)"))
      }
      text = run.output
      if let identity { keep(text, for: key, identity: identity) }
    }
    do {
      return .success(try AgentMetadata.parse(text))
    } catch {
      return .failure(Failure("\(program): \(error)"))
    }
  }

  func ask(_ agent: AgentRef) async -> Result<String, Failure> {
    // The environment the daemon gives any call of this agent.
    let spec = ResourceSpec(id: ResourceID("meta-data"), agent: agent)
    var invocation = AgentClass.invocation(
      AgentClass.Call(
        spec: spec, action: .metaData, timeout: Self.metadataTimeout, interval: .zero,
        nodeName: ProcessInfo.processInfo.hostName),
      folders: folders, exists: Self.isProgram)
    invocation.outputLimit = AgentMetadata.largestText
    invocation.keepsErrorOutput = false
    let run = await AgentRunner.run(invocation)
    guard case .exited(0) = run.outcome else {
      return .failure(Failure("\(agent) meta-data: \(run.outcome)"))
    }
    guard !run.outputCut else {
      return .failure(Failure("\(agent) meta-data is larger than \(AgentMetadata.largestText) bytes"))
    }
    return .success(run.output)
  }

  // MARK: Cache

  /// What changes when the program does (or when another OCF root's
  /// program of the same name is asked).
  static func identity(of program: String) -> String? {
    var status = stat()
    guard stat(program, &status) == 0 else { return nil }
    return "\(program) \(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec) \(status.st_ino)"
  }

  func cacheFile(for agent: String) -> String? {
    guard let cacheFolder else { return nil }
    let name = agent.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
    return cacheFolder + "/" + String(name) + ".xml"
  }

  /// A cache file is trusted only in a folder that is this user's own and
  /// writable by no one else, and only if it is a regular file (not a
  /// link): another local user must not answer for an agent.
  func cacheIsSafe(creating: Bool) -> Bool {
    guard let cacheFolder else { return false }
    if creating { try? FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true) }
    var status = stat()
    guard lstat(cacheFolder, &status) == 0 else { return false }
    return (status.st_mode & S_IFMT) == S_IFDIR && status.st_uid == geteuid() && status.st_mode & 0o022 == 0
  }

  func cachedText(for agent: String, identity: String) -> String? {
    guard cacheIsSafe(creating: false), let path = cacheFile(for: agent) else { return nil }
    let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    guard let data = try? handle.read(upToCount: AgentMetadata.largestText + 256) else { return nil }
    let text = String(decoding: data, as: UTF8.self)
    guard let newline = text.firstIndex(of: "\n"), text[..<newline] == identity else { return nil }
    return String(text[text.index(after: newline)...])
  }

  /// Written whole or not at all (a temporary file renamed over the old).
  func keep(_ text: String, for agent: String, identity: String) {
    guard cacheIsSafe(creating: true), let path = cacheFile(for: agent) else { return }
    let temporary = path + ".\(getpid()).tmp"
    let data = Data((identity + "\n" + text).utf8)
    // A full disk leaves a short temporary file: removed, never renamed.
    guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o644])
    else {
      unlink(temporary)
      return
    }
    if rename(temporary, path) != 0 { unlink(temporary) }
  }
}

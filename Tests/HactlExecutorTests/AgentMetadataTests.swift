import Foundation
import HactlAgents
import HactlConfig
import HactlExecutor
import HactlModel
import Testing

/// Agents' meta-data: read as OCF 1.1 writes it, refused when malformed or
/// huge, read once per program version, and used to check parameters.
struct AgentMetadataTests {
  static let sample = """
    <?xml version="1.0"?>
    <!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
    <resource-agent name="Web" version="2.1">
    <version>1.1</version>
    <longdesc lang="en"><![CDATA[Serves <pages>.]]> Really.</longdesc>
    <shortdesc lang="en">A web server</shortdesc>
    <parameters>
    <parameter name="port" required="1" unique="1">
    <shortdesc lang="en">TCP port</shortdesc>
    <content type="integer" default="80"/>
    </parameter>
    <parameter name="mode">
    <longdesc lang="en">How</longdesc>
    <shortdesc lang="en">Mode</shortdesc>
    <content type="select" default="fast"><option value="fast"/><option value="safe"/></content>
    </parameter>
    <parameter name="old_name"><deprecated><replaced-with name="mode"/></deprecated>
    <content type="string"/></parameter>
    <parameter name="legacy" deprecated="1"><content type="boolean" default="false"/></parameter>
    <something-newer/>
    </parameters>
    <actions>
    <action name="start" timeout="20s"/>
    <action name="monitor" timeout="20s" interval="10s" depth="0" role="Promoted"/>
    <action name="meta-data" timeout="5s"/>
    </actions>
    </resource-agent>
    """

  @Test func readsWhatAnOCFAgentSaysAboutItself() throws {
    let metadata = try AgentMetadata.parse(Self.sample)
    #expect(metadata.name == "Web")
    #expect(metadata.version == "2.1" && metadata.ocfVersion == "1.1")
    #expect(metadata.shortDescription == "A web server")
    #expect(metadata.longDescription == "Serves <pages>. Really.")
    #expect(metadata.parameters.map(\.name) == ["port", "mode", "old_name", "legacy"])
    let port = try #require(metadata.parameter("port"))
    #expect(port.required && port.unique && !port.deprecated)
    #expect(port.type == "integer" && port.defaultValue == "80" && port.shortDescription == "TCP port")
    #expect(metadata.parameter("mode")?.choices == ["fast", "safe"])
    #expect(metadata.parameter("mode")?.shortDescription == "Mode")
    #expect(metadata.parameter("old_name")?.deprecated == true)
    #expect(metadata.parameter("legacy")?.deprecated == true)
    #expect(metadata.actions.map(\.name) == ["start", "monitor", "meta-data"])
    #expect(metadata.actions[1].interval == "10s" && metadata.actions[1].role == "Promoted")
  }

  /// Which parameters change without a restart, as pacemaker reads it:
  /// OCF 1.1's reload-agent with `reloadable` ones, or an OCF 1.0 agent's
  /// legacy reload with every parameter not `unique`.
  @Test func saysWhichParametersReload() throws {
    func agent(_ version: String, _ actions: [String], _ parameters: String) throws -> AgentReload {
      let text = """
        <resource-agent name="A"><version>\(version)</version><parameters>\(parameters)</parameters>
        <actions>\(actions.map { "<action name=\"\($0)\" timeout=\"20s\"/>" }.joined())</actions></resource-agent>
        """
      return try AgentMetadata.parse(text).reload
    }
    let parameters = """
      <parameter name="ip" unique="1"/><parameter name="weight" reloadable="1"/><parameter name="mode"/>
      """
    #expect(
      try agent("1.1", ["start", "reload-agent"], parameters)
        == AgentReload(action: .reloadAgent, reloadable: ["weight"]))
    #expect(
      try agent("1.0", ["start", "reload"], parameters) == AgentReload(action: .reload, reloadable: ["weight", "mode"]))
    #expect(
      try agent("1.1", ["start", "reload"], parameters) == .none, "a 1.1 agent's reload is not a parameter reload")
    #expect(try agent("1.1", ["start"], parameters) == .none)
    let reload = AgentReload(action: .reloadAgent, reloadable: ["weight"])
    let old = ResourceSpec(id: "web", agent: AgentRef(provider: "acme", type: "A"), parameters: [("ip", "10.0.0.1")])
    var new = old
    new.parameters.append(("weight", "3"))
    #expect(reload.reloads(from: old, to: new))
    new.parameters[0].value = "10.0.0.2"
    #expect(!reload.reloads(from: old, to: new), "ip changed too")
    new = old
    new.agent = AgentRef(provider: "acme", type: "B")
    #expect(!reload.reloads(from: old, to: new), "another agent")
    #expect(!reload.reloads(from: old, to: old), "nothing to reload")
  }

  /// The Dummy agent Debian ships follows OCF 1.0 with a legacy reload:
  /// its `fake` parameter reloads, its `state` (unique) restarts.
  @Test func resourceAgentsDummyReloadsFake() throws {
    let path = "/usr/lib/ocf/resource.d/heartbeat/Dummy"
    try #require(FileManager.default.isExecutableFile(atPath: path), "resource-agents is not installed")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = ["meta-data"]
    process.environment = ["OCF_ROOT": "/usr/lib/ocf"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let reload = try AgentMetadata.parse(String(decoding: data, as: UTF8.self)).reload
    #expect(reload.action == .reload)
    #expect(reload.reloadable.contains("fake") && !reload.reloadable.contains("state"))
  }

  @Test func refusesWhatIsNotMetadata() {
    func failure(_ text: String) -> String? {
      do {
        _ = try AgentMetadata.parse(text)
        return nil
      } catch {
        return error.message
      }
    }
    #expect(failure("<resource-agent name='x'><parameters>") ?? "" != "")
    #expect(failure("not xml at all")?.contains("not well-formed") == true)
    #expect(failure("<html/>") == "meta-data's root element is <html>, not <resource-agent>")
    #expect(
      failure("<resource-agent><parameters><parameter><content/></parameter></parameters></resource-agent>")?
        .contains("without a name") == true)
    #expect(failure(String(repeating: " ", count: AgentMetadata.largestText + 1))?.contains("at most") == true)
    let many = (0...AgentMetadata.mostParameters).map { "<parameter name='p\($0)'/>" }.joined()
    #expect(
      failure("<resource-agent><parameters>\(many)</parameters></resource-agent>")
        == "more than \(AgentMetadata.mostParameters) parameters")
  }

  @Test func parametersAreCheckedAgainstTheAgent() throws {
    let metadata = try AgentMetadata.parse(Self.sample)
    let agent = try AgentRef.parse("ocf:acme:Web").get()
    var spec = ResourceSpec(id: ResourceID("web"), agent: agent)
    spec.parameters = [("prot", "8080"), ("mode", "quick"), ("legacy", "true")]
    let findings = ParameterCheck.findings(for: spec, metadata: metadata)
    #expect(findings.map(\.kind) == [.unknown, .notAChoice, .deprecated, .missing])
    #expect(findings[0].message.contains("takes no parameter 'prot' (did you mean 'port'?)"))
    #expect(findings[1].message == "'quick' is not one of ocf:acme:Web's values for 'mode': fast, safe")
    #expect(!findings[2].isError)
    #expect(findings[3].parameter == "port" && findings[3].message.contains("requires the parameter 'port' (TCP port)"))

    spec.parameters = [("port", "80")]
    #expect(ParameterCheck.findings(for: spec, metadata: metadata).isEmpty)
    // Heartbeat scripts take their parameters as arguments, by position.
    let positional = ResourceSpec(
      id: ResourceID("old"), agent: try AgentRef.parse("heartbeat:Web").get(), parameters: [("1", "x")])
    #expect(ParameterCheck.findings(for: positional, metadata: metadata).isEmpty)
  }

  @Test func theLoaderSaysWhereEachParameterIsWritten() {
    let text = """
      cluster: { name: x, key_file: k }
      nodes:
        - { name: a, id: 1, address: 127.0.0.1 }
      resources:
        - id: one
          agent: ocf:acme:Web
        - id: two
          agent: ocf:acme:Web
          params:
            port: 80
            mode: safe
      """
    let positions = ConfigLoader.resourcePositions(text, file: "f.yaml")
    #expect(positions["one"]?.index == 0 && positions["one"]?.params == nil)
    #expect(positions["one"]?.agent == ResourcePositions.Position(line: 6, column: 12))
    #expect(positions["two"]?.index == 1)
    #expect(positions["two"]?.parameters["port"] == ResourcePositions.Position(line: 10, column: 7))
    #expect(positions["two"]?.parameters["mode"] == ResourcePositions.Position(line: 11, column: 7))
  }
}

/// The catalog asks an agent for its meta-data once per version of the
/// program, and trusts a cache only where no one else can write.
@Suite(.serialized)
final class AgentCatalogTests {
  let folder: String

  init() throws {
    var template = Array((NSTemporaryDirectory() + "hactl-catalog-XXXXXX").utf8CString)
    folder = String(cString: mkdtemp(&template)!)
  }

  deinit {
    try? FileManager.default.removeItem(atPath: folder)
  }

  /// An agent that prints the sample and counts how often it was asked.
  func installAgent(provider: String = "acme", type: String = "Web") throws -> String {
    let providerFolder = folder + "/ocf/resource.d/" + provider
    try FileManager.default.createDirectory(atPath: providerFolder, withIntermediateDirectories: true)
    let path = providerFolder + "/" + type
    let script = """
      #!/bin/sh
      [ "$1" = meta-data ] || exit 3
      [ "$OCF_ROOT" = "\(folder)/ocf" ] || exit 5
      echo asked >> "\(folder)/asked"
      echo "this goes to stderr and is not meta-data" >&2
      cat <<'END'
      \(AgentMetadataTests.sample)
      END
      """
    try script.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
    return path
  }

  var timesAsked: Int {
    ((try? String(contentsOfFile: folder + "/asked", encoding: .utf8)) ?? "").split(separator: "\n").count
  }

  func catalog(cache: String?) -> AgentCatalog {
    AgentCatalog(
      folders: AgentFolders(
        ocfRoot: folder + "/ocf", initScripts: folder + "/init.d",
        heartbeatScripts: [folder + "/ha.d", folder + "/init.d"]),
      cacheFolder: cache)
  }

  @Test func metadataIsReadOncePerVersionOfTheAgent() async throws {
    let program = try installAgent()
    let agent = try AgentRef.parse("ocf:acme:Web").get()
    let catalog = catalog(cache: folder + "/cache")
    let first = try await catalog.metadata(of: agent).get()
    #expect(first.name == "Web" && first.parameters.count == 4)
    #expect(try await catalog.metadata(of: agent).get() == first)
    #expect(timesAsked == 1)
    // An upgraded agent (another size or modification time) is asked again.
    try (String(contentsOfFile: program, encoding: .utf8) + "\n# 2.2\n").write(
      toFile: program, atomically: false, encoding: .utf8)
    _ = try await catalog.metadata(of: agent).get()
    #expect(timesAsked == 2)
    // Without a cache, every run asks.
    _ = try await self.catalog(cache: nil).metadata(of: agent).get()
    #expect(timesAsked == 3)
  }

  @Test func aCacheOthersCanWriteIsNotTrusted() async throws {
    _ = try installAgent()
    let agent = try AgentRef.parse("ocf:acme:Web").get()
    let cache = folder + "/shared-cache"
    try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
    chmod(cache, 0o777)
    let catalog = catalog(cache: cache)
    _ = try await catalog.metadata(of: agent).get()
    _ = try await catalog.metadata(of: agent).get()
    #expect(timesAsked == 2)
    #expect((try FileManager.default.contentsOfDirectory(atPath: cache)).isEmpty)
  }

  @Test func whatCannotBeReadSaysWhy() async throws {
    let catalog = catalog(cache: nil)
    let missing = await catalog.metadata(of: try AgentRef.parse("ocf:acme:Nope").get())
    #expect(throws: AgentCatalog.Failure.self) { try missing.get() }
    let script = await catalog.metadata(of: try AgentRef.parse("lsb:web").get())
    #expect((try? script.get()) == nil)
    let broken = folder + "/ocf/resource.d/acme/Broken"
    try FileManager.default.createDirectory(atPath: folder + "/ocf/resource.d/acme", withIntermediateDirectories: true)
    try "#!/bin/sh\necho '<resource-agent'\nexit 0\n".write(toFile: broken, atomically: true, encoding: .utf8)
    chmod(broken, 0o755)
    switch await catalog.metadata(of: try AgentRef.parse("ocf:acme:Broken").get()) {
    case .success: Issue.record("malformed meta-data was accepted")
    case .failure(let failure): #expect(failure.message.contains("not well-formed"))
    }
  }

  @Test func listsInstalledAgentsByClassAndProvider() throws {
    _ = try installAgent()
    _ = try installAgent(provider: "other", type: "Thing")
    try FileManager.default.createDirectory(atPath: folder + "/init.d", withIntermediateDirectories: true)
    try "#!/bin/sh\n".write(toFile: folder + "/init.d/web", atomically: true, encoding: .utf8)
    chmod(folder + "/init.d/web", 0o755)
    try "not a program".write(toFile: folder + "/init.d/README", atomically: true, encoding: .utf8)
    let catalog = catalog(cache: nil)
    #expect(try catalog.list() == ["lsb:web", "ocf:acme:Web", "ocf:other:Thing"])
    #expect(try catalog.list("ocf:acme") == ["ocf:acme:Web"])
    #expect(try catalog.list("lsb") == ["lsb:web"])
    #expect(try catalog.list("heartbeat") == [])
    #expect(throws: AgentCatalog.Failure.self) { try catalog.list("systemd") }
    #expect(throws: AgentCatalog.Failure.self) { try catalog.list("lsb:x") }
  }
}

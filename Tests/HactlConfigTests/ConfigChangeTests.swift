import Foundation
import HactlConfig
import HactlModel
import Testing

/// What `hactl config apply` relies on: a configuration written back reads
/// the same, and the changes a running cluster cannot take are named.
struct ConfigChangeTests {
  static let examples: [String] = {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples").path
    return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
      .filter { $0.hasSuffix(".yaml") }.sorted().map { folder + "/" + $0 }
  }()

  @Test func theExamplesAreFound() { #expect(Self.examples.count >= 3) }

  @Test(arguments: examples)
  func writtenBackAConfigurationReadsTheSame(path: String) throws {
    let config = try ConfigLoader.load(path: path)
    let folder = ConfigLoader.folder(of: path)
    #expect(try ConfigLoader.parse(ConfigWriter.yaml(config), file: "written", relativeTo: folder) == config)
  }

  @Test func awkwardValuesSurviveWritingAndReading() throws {
    var config = try ConfigLoader.parse(ConfigLoaderTests.valid, file: "valid", relativeTo: "/etc/hactl")
    config.resources[0].parameters = [
      ("quote", "say \"hi\" \\ bye"), ("yaml", "- [a]: {b}, #c"), ("lines", "one\ntwo\tthree"), ("empty", ""),
      ("unicode", "naïve ✓"), ("number", "0012"), ("boolean", "yes"),
    ]
    config.resources[0].stickiness = .minusInfinity
    config.cluster.quorum = QuorumOptions(expectedVotes: 3, noQuorumPolicy: .ignore, waitForAll: true)
    let text = ConfigWriter.yaml(config)
    #expect(try ConfigLoader.parse(text, file: "written", relativeTo: "/etc/hactl") == config)
  }

  /// Any parameter text an operator can write survives the round trip: the
  /// simulator and tests write configurations with it. (A byte-order mark
  /// cannot be written: the YAML reader drops it wherever it appears.)
  @Test func randomParameterValuesSurviveWritingAndReading() throws {
    var config = try ConfigLoader.parse(ConfigLoaderTests.valid, file: "valid", relativeTo: "/etc/hactl")
    var random = SeededRandom(seed: 7)
    let alphabet =
      Array("aZ09 :#-[]{},&*!|>'\"%@`\\\n\t\r\u{1}\u{7f}é✓𝄞~?=") + [
        "\u{85}", "\u{2028}", "\u{2029}", "\u{9f}",
      ]
    for round in 0..<300 {
      let value = String((0..<Int.random(in: 0...24, using: &random)).map { _ in random.pick(alphabet) })
      config.resources[0].parameters = [("value", value)]
      let read = try ConfigLoader.parse(ConfigWriter.yaml(config), file: "written", relativeTo: "/etc/hactl")
      #expect(read.resources[0].parameters.first?.value == value, "round \(round): \(value.debugDescription)")
      if read != config { return }
    }
  }

  @Test func onlyMembershipTimingsAndQuorumNeedARestart() throws {
    let running = try ConfigLoader.parse(ConfigLoaderTests.valid, file: "valid")
    var live = running
    live.resources[0].stickiness = 7
    live.resources[0].parameters = [("ip", "10.0.0.11")]
    live.resources.removeLast()
    live.nodes[1].mode = .online
    #expect(live.changesNeedingRestart(from: running) == [])
    var restart = running
    restart.cluster.deadTime = .seconds(3)
    restart.cluster.quorum.noQuorumPolicy = .stop
    restart.nodes[0].links = [Endpoint(host: "10.0.0.9", port: 5405)]
    #expect(
      restart.changesNeedingRestart(from: running)
        == ["cluster.dead_time", "cluster.quorum", "nodes (ids, addresses or votes)"])
    var renamed = running
    renamed.witness = nil
    #expect(renamed.changesNeedingRestart(from: running) == ["nodes (arbiter)"])
  }

  @Test func liveChangesKeepTheRunningMembership() throws {
    let running = try ConfigLoader.parse(ConfigLoaderTests.valid, file: "valid")
    var proposed = running
    proposed.cluster.deadTime = .seconds(9)
    proposed.nodes[1].mode = .online
    proposed.resources = []
    let merged = proposed.liveParts(over: running)
    #expect(merged.cluster == running.cluster)
    #expect(merged.nodes[1].mode == .online)
    #expect(merged.resources.isEmpty)
  }

  @Test func aFileTooLargeToReplicateIsRefusedWithItsSize() {
    let padding = "\n" + String(repeating: "# padding\n", count: ClusterLimits.configurationBytes / 10)
    #expect {
      try ConfigLoader.parse(ConfigLoaderTests.valid + padding, file: "big.yaml")
    } throws: { error in
      let text = (error as? ConfigErrors)?.description ?? ""
      return text.hasPrefix("big.yaml:1:1") && text.contains("at most \(ClusterLimits.configurationBytes)")
    }
  }

  @Test func versionsOrderByEpochThenVersion() {
    let a = ConfigVersion(epoch: 2, version: 9)
    let b = ConfigVersion(epoch: 3, version: 1)
    #expect(a < b)
    #expect(ConfigVersion.initial < a)
    #expect(a.next(term: 2) == ConfigVersion(epoch: 2, version: 10))
    #expect(a.next(term: 5) == ConfigVersion(epoch: 5, version: 10))
    #expect(a.next(term: 5) > b)
    #expect(a.description == "2.9")
  }
}

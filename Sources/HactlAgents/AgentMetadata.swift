import Foundation
import HactlModel

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// What an OCF agent says about itself: the XML its `meta-data` action
/// prints (OCF resource agent API 1.1, "Metadata"). Only what operators and
/// the configuration check use is kept.
public struct AgentMetadata: Sendable, Equatable {
  public struct Parameter: Sendable, Equatable {
    public var name: String
    public var required = false
    public var unique = false
    /// OCF 1.1: a change of it is applied by `reload-agent`, no restart.
    public var reloadable = false
    /// The older parameter this one replaces (fence-agents' `obsoletes`).
    public var obsoletes: String?
    /// OCF 1.1's `<deprecated/>` (or the older `deprecated="1"`).
    public var deprecated = false
    public var type = "string"
    public var defaultValue: String?
    public var shortDescription = ""
    /// The values a `select` parameter takes.
    public var choices: [String] = []

    public init(name: String) { self.name = name }
  }

  public struct Action: Sendable, Equatable {
    public var name: String
    public var timeout: String?
    public var interval: String?
    public var depth: String?
    public var role: String?

    public init(name: String) { self.name = name }
  }

  public var name: String
  /// The agent's own version (the root element's attribute).
  public var version: String?
  /// The OCF API version it follows (the `<version>` element).
  public var ocfVersion: String?
  public var shortDescription = ""
  public var longDescription = ""
  public var parameters: [Parameter] = []
  public var actions: [Action] = []

  public init(name: String) { self.name = name }

  public func parameter(_ name: String) -> Parameter? { parameters.first { $0.name == name } }

  /// What it says about changing parameters while it runs.
  public var reload: AgentReload {
    let names = Set(actions.map(\.name))
    if names.contains(AgentAction.reloadAgent.rawValue) {
      return AgentReload(action: .reloadAgent, reloadable: Set(parameters.filter(\.reloadable).map(\.name)))
    }
    // An agent that says it follows OCF 1.1 and has only `reload` means
    // something else by it (a reload of its service): it restarts.
    let major = ocfVersion.map { Int($0.split(separator: ".").first ?? "") ?? 0 } ?? 1
    let minor = ocfVersion.map { Int($0.split(separator: ".").dropFirst().first ?? "") ?? 0 } ?? 0
    if names.contains(AgentAction.reload.rawValue), major < 1 || (major == 1 && minor < 1) {
      return AgentReload(action: .reload, reloadable: Set(parameters.filter { !$0.unique }.map(\.name)))
    }
    return .none
  }

  /// Larger meta-data is refused rather than read: the largest agent in
  /// resource-agents prints about 40 KB.
  public static let largestText = 1 << 20
  public static let mostParameters = 1000
  public static let mostActions = 100

  public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
  }

  public static func parse(_ text: String) throws(ParseError) -> AgentMetadata {
    guard text.utf8.count <= largestText else {
      throw ParseError(message: "meta-data of \(text.utf8.count) bytes; at most \(largestText) are read")
    }
    let reader = MetadataReader()
    let parser = XMLParser(data: Data(text.utf8))
    // The DOCTYPE names ra-api-1.dtd: nothing outside the text is fetched.
    parser.shouldResolveExternalEntities = false
    parser.delegate = reader
    let parsed = parser.parse()
    if let failure = reader.failure { throw ParseError(message: failure) }
    // A truncated text (an agent killed half-way) is not always an error to
    // the parser: the root element must have ended.
    guard parsed, reader.rootEnded, let metadata = reader.metadata else {
      let line = parser.lineNumber
      let why = parser.parserError.map { " (\($0.localizedDescription))" } ?? ""
      throw ParseError(message: "meta-data is not well-formed XML near line \(line)\(why)")
    }
    return metadata
  }
}

/// Collects `resource-agent`, its descriptions, `parameters/parameter` and
/// `actions/action` from the parser's events; ignores everything else (a
/// newer agent may add elements).
final class MetadataReader: NSObject, XMLParserDelegate {
  var metadata: AgentMetadata?
  var failure: String?
  var path: [String] = []
  var text = ""
  var parameter: AgentMetadata.Parameter?
  var rootEnded = false

  func parser(
    _ parser: XMLParser, didStartElement element: String, namespaceURI: String?, qualifiedName: String?,
    attributes: [String: String] = [:]
  ) {
    path.append(element)
    text = ""
    switch (path.count, element) {
    case (1, "resource-agent"):
      metadata = AgentMetadata(name: attributes["name"] ?? "")
      metadata?.version = attributes["version"]
    case (1, _):
      stop(parser, "meta-data's root element is <\(element)>, not <resource-agent>")
    case (3, "parameter") where path[1] == "parameters":
      guard let name = attributes["name"], !name.isEmpty else {
        return stop(parser, "a <parameter> without a name (line \(parser.lineNumber))")
      }
      guard (metadata?.parameters.count ?? 0) < AgentMetadata.mostParameters else {
        return stop(parser, "more than \(AgentMetadata.mostParameters) parameters")
      }
      var started = AgentMetadata.Parameter(name: name)
      started.required = Self.isTrue(attributes["required"])
      started.unique = Self.isTrue(attributes["unique"])
      started.reloadable = Self.isTrue(attributes["reloadable"])
      started.obsoletes = attributes["obsoletes"]
      started.deprecated = Self.isTrue(attributes["deprecated"])
      parameter = started
    case (4, "content") where parameter != nil:
      parameter?.type = attributes["type"] ?? "string"
      parameter?.defaultValue = attributes["default"]
    case (4, "deprecated") where parameter != nil:
      parameter?.deprecated = true
    case (5, "option") where parameter != nil && path[3] == "content":
      if let value = attributes["value"], (parameter?.choices.count ?? 0) < AgentMetadata.mostParameters {
        parameter?.choices.append(value)
      }
    case (3, "action") where path[1] == "actions":
      guard let name = attributes["name"], !name.isEmpty else { return }
      guard (metadata?.actions.count ?? 0) < AgentMetadata.mostActions else {
        return stop(parser, "more than \(AgentMetadata.mostActions) actions")
      }
      var action = AgentMetadata.Action(name: name)
      action.timeout = attributes["timeout"]
      action.interval = attributes["interval"]
      action.depth = attributes["depth"]
      action.role = attributes["role"]
      metadata?.actions.append(action)
    default:
      break
    }
  }

  func parser(_ parser: XMLParser, foundCharacters string: String) {
    // Only descriptions are kept, and they are short.
    if text.utf8.count < 64 * 1024 { text += string }
  }

  func parser(_ parser: XMLParser, foundCDATA block: Data) {
    if text.utf8.count < 64 * 1024 { text += String(decoding: block, as: UTF8.self) }
  }

  func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
    let described = text.trimmingCharacters(in: .whitespacesAndNewlines)
    switch (path.count, element) {
    case (2, "shortdesc"): metadata?.shortDescription = described
    case (2, "longdesc"): metadata?.longDescription = described
    case (2, "version"): metadata?.ocfVersion = described
    case (4, "shortdesc") where parameter != nil: parameter?.shortDescription = described
    case (3, "parameter"):
      if let parameter { metadata?.parameters.append(parameter) }
      parameter = nil
    case (1, _):
      rootEnded = true
    default: break
    }
    path.removeLast()
    text = ""
  }

  func stop(_ parser: XMLParser, _ why: String) {
    failure = failure ?? why
    parser.abortParsing()
  }

  static func isTrue(_ value: String?) -> Bool {
    guard let value = value?.lowercased() else { return false }
    return ["1", "true", "yes", "on"].contains(value)
  }
}

import CYaml
import HactlModel

/// A cheap pass over the YAML events before anything is built from them.
/// Aliases are refused: a few hundred bytes of nested aliases expand to
/// billions of nodes (each level multiplies the last), which froze a daemon
/// that checked such a text from the control socket or a peer. Nesting and
/// the number of nodes are bounded for the same reason.
enum YAMLGuard {
  static let maximumDepth = 32
  static let maximumEvents = 100_000

  /// The first thing refused, with its position; nil when the text may be
  /// composed (syntax errors are left to the composer, which reports them).
  static func check(_ text: String, file: String) -> ConfigError? {
    var parser = yaml_parser_t()
    guard yaml_parser_initialize(&parser) == 1 else {
      return ConfigError(file: file, line: 1, column: 1, field: "", message: "cannot start the YAML parser")
    }
    defer { yaml_parser_delete(&parser) }
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBufferPointer { buffer -> ConfigError? in
      yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
      var depth = 0
      var events = 0
      while true {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
        defer { yaml_event_delete(&event) }
        let line = Int(event.start_mark.line) + 1
        let column = Int(event.start_mark.column) + 1
        func refuse(_ message: String) -> ConfigError {
          ConfigError(file: file, line: line, column: column, field: "", message: message)
        }
        events += 1
        switch event.type {
        case YAML_STREAM_END_EVENT: return nil
        case YAML_ALIAS_EVENT:
          return refuse("YAML aliases (*name) are not accepted: write the value out where it is needed")
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
          depth += 1
          if depth > maximumDepth { return refuse("nested deeper than \(maximumDepth) levels") }
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
          depth -= 1
        default:
          break
        }
        if events > maximumEvents { return refuse("more than \(maximumEvents) YAML nodes") }
      }
    }
  }
}

/// One thing wrong with a configuration file, located precisely enough for an
/// operator to fix it without reading our source: file, line, column, field.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var column: Int
  /// The dotted path of the field, e.g. `resources[0].monitor.interval`.
  public var field: String
  public var message: String

  public init(file: String, line: Int, column: Int, field: String, message: String) {
    self.file = file
    self.line = line
    self.column = column
    self.field = field
    self.message = message
  }

  public var description: String {
    let location = "\(file):\(line):\(column)"
    return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
  }
}

/// Every error found in one file, in file order.
public struct ConfigErrors: Error, Sendable, Equatable, CustomStringConvertible {
  public var errors: [ConfigError]
  public init(_ errors: [ConfigError]) { self.errors = errors }
  public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Parses durations as operators write them: `200ms`, `1s`, `1.5s`, `2m`, `1h`,
/// or a bare number of seconds (pacemaker's convention).
public enum DurationParsing {
  /// The longest duration a configuration may hold.
  public static let longest: Duration = .seconds(365 * 24 * 3600)

  public static func parse(_ text: String) -> Duration? {
    let trimmed = text.trimmingWhitespace()
    guard !trimmed.isEmpty else { return nil }
    let units: [(suffix: String, nanoseconds: Double)] = [
      ("ms", 1e6), ("us", 1e3), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]
    var number = trimmed
    var scale = 1e9
    for unit in units where trimmed.hasSuffix(unit.suffix) {
      number = String(trimmed.dropLast(unit.suffix.count))
      scale = unit.nanoseconds
      break
    }
    guard number.allSatisfy({ $0.isNumber || $0 == "." }), number.first?.isNumber == true,
      let value = Double(number), value.isFinite, value >= 0, value * scale < 9e18
    else { return nil }
    return .nanoseconds(Int64((value * scale).rounded()))
  }

  /// The shortest exact rendering: `1500ms`, `2s`.
  public static func format(_ duration: Duration) -> String {
    let millis = duration.milliseconds
    if millis % 1000 == 0 { return "\(millis / 1000)s" }
    return "\(millis)ms"
  }
}

extension String {
  func trimmingWhitespace() -> String {
    var scalars = Substring(self)
    while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
    while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
    return String(scalars)
  }
}

/// A placement score, pacemaker style: an integer in which `infinity` and
/// `-infinity` absorb everything else, and `-infinity` beats `+infinity`
/// (a ban always wins over a preference).
public struct Score: Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
  ExpressibleByIntegerLiteral
{
  /// Pacemaker's value of INFINITY; finite scores are clamped inside it.
  public static let infinityValue = 1_000_000
  public static let infinity = Score(infinityValue)
  public static let minusInfinity = Score(-infinityValue)
  public static let zero = Score(0)

  public let value: Int

  public init(_ value: Int) {
    self.value = min(max(value, -Score.infinityValue), Score.infinityValue)
  }
  public init(integerLiteral value: Int) { self.init(value) }

  public static func < (lhs: Score, rhs: Score) -> Bool { lhs.value < rhs.value }

  /// Saturating addition with pacemaker's rule: -INFINITY + INFINITY = -INFINITY.
  public static func + (lhs: Score, rhs: Score) -> Score {
    if lhs == .minusInfinity || rhs == .minusInfinity { return .minusInfinity }
    if lhs == .infinity || rhs == .infinity { return .infinity }
    return Score(lhs.value + rhs.value)
  }

  public var description: String {
    switch self {
    case .infinity: return "INFINITY"
    case .minusInfinity: return "-INFINITY"
    default: return String(value)
    }
  }

  /// Parses an integer or `INFINITY`, `+INFINITY`, `-INFINITY` (any case).
  public init?(parsing text: String) {
    switch text.uppercased() {
    case "INFINITY", "+INFINITY", "INF", "+INF": self = .infinity
    case "-INFINITY", "-INF": self = .minusInfinity
    default:
      guard let value = Int(text) else { return nil }
      self.init(value)
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if let number = try? container.decode(Int.self) {
      self.init(number)
      return
    }
    let text = try container.decode(String.self)
    guard let parsed = Score(parsing: text) else {
      throw DecodingError.dataCorruptedError(
        in: container, debugDescription: "not a score: \(text)")
    }
    self = parsed
  }
}

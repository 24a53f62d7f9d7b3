/// Moments on the wall clock as operators write them: UTC, to the second,
/// `2026-11-29T10:00:00Z` (ISO 8601), and lifetimes as `90s`, `30m`, `2h`,
/// `1d` or ISO 8601's `PT1H30M`, `P1D` (what crm_resource takes).
public enum WallClockText {
  /// Latest moment written or read: the year 9999, so every text has four
  /// digits and no sum overflows.
  public static let latest: Int64 = 253_402_300_799

  public static func format(_ seconds: Int64) -> String {
    let clamped = min(max(seconds, 0), latest)
    let days = clamped / 86_400
    let time = clamped % 86_400
    let (year, month, day) = civil(fromDays: days)
    func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
    let yearText = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
    return "\(yearText)-\(two(month))-\(two(day))T\(two(time / 3600)):\(two(time / 60 % 60)):\(two(time % 60))Z"
  }

  /// `YYYY-MM-DDTHH:MM:SSZ` only: a moment without its zone is refused
  /// rather than guessed.
  public static func parse(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    guard bytes.count == 20, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84, bytes[13] == 58, bytes[16] == 58,
      bytes[19] == 90
    else { return nil }
    func number(_ range: Range<Int>) -> Int64? {
      var value: Int64 = 0
      for byte in bytes[range] {
        guard (48...57).contains(byte) else { return nil }
        value = value * 10 + Int64(byte - 48)
      }
      return value
    }
    guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
      let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
      (1970...9999).contains(year), (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute),
      (0...59).contains(second), (1...daysIn(month, of: year)).contains(day)
    else { return nil }
    return days(fromCivil: year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
  }

  /// Seconds in a lifetime: `90s`, `30m`, `2h`, `1d`, `1h30m`, or ISO 8601
  /// `PT1H30M`, `P1DT2H`. Nil when it is not one, is zero, or is beyond
  /// ten years.
  public static func lifetime(_ text: String) -> Int64? {
    var rest = Substring(text.uppercased())
    if rest.hasPrefix("P") {
      rest = rest.dropFirst()
      rest = Substring(rest.replacingT())
    }
    guard !rest.isEmpty else { return nil }
    let units: [Character: Int64] = ["D": 86_400, "H": 3600, "M": 60, "S": 1]
    var total: Int64 = 0
    var digits = ""
    for character in rest {
      if character.isASCII, character.isNumber {
        digits.append(character)
        guard digits.count <= 9 else { return nil }
      } else if let unit = units[character], let value = Int64(digits) {
        total += value * unit
        digits = ""
      } else {
        return nil
      }
    }
    guard digits.isEmpty, total > 0, total <= 10 * 366 * 86_400 else { return nil }
    return total
  }

  static func daysIn(_ month: Int64, of year: Int64) -> Int64 {
    switch month {
    case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
  /// algorithm, public domain).
  static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let monthIndex = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
    let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}

extension Substring {
  /// ISO 8601 separates days from time with `T`. Before it `M` would be
  /// months, which have no fixed length: refused. After it, `M` is minutes,
  /// as in the short form.
  fileprivate func replacingT() -> String {
    let datePart = firstIndex(of: "T").map { self[..<$0] } ?? self
    guard !datePart.contains("M") else { return "?" }
    guard let t = firstIndex(of: "T") else { return String(self) }
    return String(self[..<t]) + String(self[index(after: t)...])
  }
}

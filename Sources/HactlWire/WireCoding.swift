import HactlModel

/// Why a packet could not be decoded. Every malformed packet ends here: the
/// decoder never traps, whatever the bytes.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
  case truncated(needed: Int, remaining: Int)
  case badMagic
  case unsupportedVersion(UInt8)
  case unknownKind(UInt8)
  case lengthMismatch(declared: Int, actual: Int)
  case tooLarge(String, Int)
  case invalid(String)

  public var description: String {
    switch self {
    case .truncated(let needed, let remaining): return "truncated: needed \(needed) bytes, \(remaining) left"
    case .badMagic: return "not a hactl packet"
    case .unsupportedVersion(let version): return "unsupported packet version \(version)"
    case .unknownKind(let kind): return "unknown message kind \(kind)"
    case .lengthMismatch(let declared, let actual): return "payload length \(declared) but \(actual) bytes"
    case .tooLarge(let what, let count): return "\(what) too large (\(count))"
    case .invalid(let why): return why
    }
  }
}

/// Big-endian writer for the fixed header.
public struct WireWriter: Sendable {
  public private(set) var bytes: [UInt8] = []
  public init() {}

  public mutating func u8(_ value: UInt8) { bytes.append(value) }
  public mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }
  public mutating func u16(_ value: UInt16) { append(UInt64(value), width: 2) }
  public mutating func u32(_ value: UInt32) { append(UInt64(value), width: 4) }
  public mutating func u64(_ value: UInt64) { append(value, width: 8) }
  public mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
  public mutating func i64(_ value: Int64) { u64(UInt64(bitPattern: value)) }

  mutating func append(_ value: UInt64, width: Int) {
    for shift in stride(from: (width - 1) * 8, through: 0, by: -8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
  }
}

/// Big-endian reader for the fixed header; throws on every malformed input.
public struct WireReader: Sendable {
  let bytes: [UInt8]
  public private(set) var offset: Int

  public init(_ bytes: [UInt8], offset: Int = 0) {
    self.bytes = bytes
    self.offset = offset
  }

  public var remaining: Int { bytes.count - offset }

  mutating func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
    guard count >= 0, count <= remaining else { throw .truncated(needed: count, remaining: remaining) }
    defer { offset += count }
    return bytes[offset..<offset + count]
  }

  mutating func read(width: Int) throws(WireError) -> UInt64 {
    try take(width).reduce(0) { ($0 << 8) | UInt64($1) }
  }

  public mutating func u8() throws(WireError) -> UInt8 { try take(1).first! }
  public mutating func bool() throws(WireError) -> Bool {
    switch try u8() {
    case 0: return false
    case 1: return true
    case let other: throw .invalid("boolean byte \(other)")
    }
  }
  public mutating func u16() throws(WireError) -> UInt16 { UInt16(try read(width: 2)) }
  public mutating func u32() throws(WireError) -> UInt32 { UInt32(try read(width: 4)) }
  public mutating func u64() throws(WireError) -> UInt64 { try read(width: 8) }
  public mutating func i32() throws(WireError) -> Int32 { Int32(bitPattern: try u32()) }
  public mutating func i64() throws(WireError) -> Int64 { Int64(bitPattern: try u64()) }
}

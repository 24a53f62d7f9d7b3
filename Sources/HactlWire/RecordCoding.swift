import HactlModel

/// Records: the payload format of version 3 (docs/wire-format.md). A record
/// is a run of fields, each `tag (1 byte) | length (LEB128, at most 3 bytes) |
/// value`. A reader skips tags it does not know, so a newer daemon may add
/// fields without breaking an older one; a repeated tag is a list. Integers
/// are big-endian in as few bytes as they need (at most 8), signed ones
/// zigzag-encoded first; strings are UTF-8; a nested record is its fields.
public struct RecordWriter: Sendable {
  public private(set) var bytes: [UInt8] = []
  public init() {}

  /// The longest value a field may hold (3 LEB128 bytes).
  public static let longestValue = (1 << 21) - 1

  mutating func header(_ tag: UInt8, length: Int) {
    precondition(tag != 0, "tag 0 is reserved")
    bytes.append(tag)
    var rest = length
    repeat {
      var byte = UInt8(rest & 0x7f)
      rest >>= 7
      if rest > 0 { byte |= 0x80 }
      bytes.append(byte)
    } while rest > 0
  }

  public mutating func unsigned(_ tag: UInt8, _ value: UInt64) {
    let size = (64 - value.leadingZeroBitCount + 7) / 8
    header(tag, length: size)
    for shift in stride(from: (size - 1) * 8, through: 0, by: -8) {
      bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
  }

  public mutating func signed(_ tag: UInt8, _ value: Int64) {
    unsigned(tag, UInt64(bitPattern: (value << 1) ^ (value >> 63)))
  }

  public mutating func bool(_ tag: UInt8, _ value: Bool) { unsigned(tag, value ? 1 : 0) }

  public mutating func node(_ tag: UInt8, _ value: HactlModelNodeID?) {
    if let value { unsigned(tag, UInt64(value.rawValue)) }
  }

  /// A counter that only grows (a term, a version), refused above the limit
  /// the reader applies.
  public mutating func counter(_ tag: UInt8, _ value: UInt64, of what: String) throws(WireError) {
    guard value <= ClusterLimits.largestCounter else { throw .invalid("\(what) \(value) is beyond any real cluster") }
    unsigned(tag, value)
  }

  public mutating func string(_ tag: UInt8, _ value: String) throws(WireError) {
    let utf8 = Array(value.utf8)
    guard utf8.count <= Self.longestValue else { throw .tooLarge("string", utf8.count) }
    header(tag, length: utf8.count)
    bytes += utf8
  }

  /// Opaque bytes (a part of something larger).
  public mutating func data(_ tag: UInt8, _ value: [UInt8]) {
    header(tag, length: value.count)
    bytes += value
  }

  public mutating func record(_ tag: UInt8, _ body: (inout RecordWriter) throws(WireError) -> Void) throws(WireError) {
    var inner = RecordWriter()
    try body(&inner)
    guard inner.bytes.count <= Self.longestValue else { throw .tooLarge("record", inner.bytes.count) }
    header(tag, length: inner.bytes.count)
    bytes += inner.bytes
  }

  /// A list of records under one tag, refused above the limit the reader applies.
  public mutating func list<Element>(
    _ tag: UInt8, _ elements: [Element], limit: Int, of what: String,
    _ body: (inout RecordWriter, Element) throws(WireError) -> Void
  ) throws(WireError) {
    guard elements.count <= limit else { throw .tooLarge(what, elements.count) }
    for element in elements {
      try record(tag) { (inner: inout RecordWriter) throws(WireError) in try body(&inner, element) }
    }
  }

  /// A field exactly as it was read (a relay, or a test building a
  /// "newer" packet around known fields).
  public mutating func appendRaw(_ field: RecordField) {
    header(field.tag, length: field.range.count)
    bytes += field.bytes[field.range]
  }

  /// A list of node ids under one tag.
  public mutating func nodes(_ tag: UInt8, _ nodes: [HactlModelNodeID], of what: String) throws(WireError) {
    guard nodes.count <= ClusterLimits.members else { throw .tooLarge(what, nodes.count) }
    for node in nodes { unsigned(tag, UInt64(node.rawValue)) }
  }
}

/// One field as read: its tag and where its value lies.
public struct RecordField: Sendable {
  public var tag: UInt8
  let bytes: [UInt8]
  let range: Range<Int>

  public func unsigned() throws(WireError) -> UInt64 {
    guard range.count <= 8 else { throw .invalid("integer of \(range.count) bytes in field \(tag)") }
    return bytes[range].reduce(0) { ($0 << 8) | UInt64($1) }
  }

  public func unsigned<T: FixedWidthInteger & UnsignedInteger>(as type: T.Type) throws(WireError) -> T {
    let value = try unsigned()
    guard let narrowed = T(exactly: value) else { throw .invalid("value \(value) too large in field \(tag)") }
    return narrowed
  }

  public func signed() throws(WireError) -> Int64 {
    let zigzag = try unsigned()
    return Int64(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1)))
  }

  public func bool() throws(WireError) -> Bool {
    switch try unsigned() {
    case 0: return false
    case 1: return true
    case let other: throw .invalid("boolean \(other) in field \(tag)")
    }
  }

  public func node() throws(WireError) -> HactlModelNodeID {
    let raw = try unsigned(as: UInt32.self)
    guard raw != 0 else { throw .invalid("node id 0 in field \(tag)") }
    return HactlModelNodeID(raw)
  }

  public func counter(of what: String) throws(WireError) -> UInt64 {
    let value = try unsigned()
    guard value <= ClusterLimits.largestCounter else { throw .invalid("\(what) \(value) is beyond any real cluster") }
    return value
  }

  public func string() throws(WireError) -> String {
    guard let text = String(validating: bytes[range], as: UTF8.self) else {
      throw .invalid("field \(tag) is not UTF-8")
    }
    return text
  }

  public func record() -> RecordReader { RecordReader(bytes, range: range) }

  public func data() -> [UInt8] { Array(bytes[range]) }
}

/// Reads a record's fields in order; every malformed length is an error,
/// every unknown tag is the caller's to skip.
public struct RecordReader: Sendable {
  let bytes: [UInt8]
  var offset: Int
  let end: Int

  public init(_ bytes: [UInt8], range: Range<Int>? = nil) {
    self.bytes = bytes
    let range = range ?? 0..<bytes.count
    offset = range.lowerBound
    end = range.upperBound
  }

  public mutating func next() throws(WireError) -> RecordField? {
    guard offset < end else { return nil }
    let tag = bytes[offset]
    guard tag != 0 else { throw .invalid("field tag 0") }
    offset += 1
    var length = 0
    var shift = 0
    while true {
      guard offset < end else { throw .truncated(needed: 1, remaining: 0) }
      let byte = bytes[offset]
      offset += 1
      length |= Int(byte & 0x7f) << shift
      if byte & 0x80 == 0 { break }
      shift += 7
      guard shift < 21 else { throw .invalid("field length over 3 bytes") }
    }
    guard length <= end - offset else { throw .truncated(needed: length, remaining: end - offset) }
    defer { offset += length }
    return RecordField(tag: tag, bytes: bytes, range: offset..<(offset + length))
  }

  /// Every field, each handed to `body`; a list's elements are counted
  /// against `limits` (tag → most) before anything is kept.
  public mutating func readFields(
    limits: [UInt8: (Int, String)] = [:], _ body: (RecordField) throws(WireError) -> Void
  ) throws(WireError) {
    var counts: [UInt8: Int] = [:]
    while let field = try next() {
      if let (limit, what) = limits[field.tag] {
        let count = counts[field.tag, default: 0] + 1
        guard count <= limit else { throw .tooLarge(what, count) }
        counts[field.tag] = count
      }
      try body(field)
    }
  }
}

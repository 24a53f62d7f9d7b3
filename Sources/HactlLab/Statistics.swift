/// Summary statistics for the benchmarks' tables.
public enum Statistics {
  /// Nearest-rank percentile (`p` in 0...100) of values sorted ascending.
  public static func percentile(_ sorted: [Double], _ p: Double) -> Double {
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
  }
}

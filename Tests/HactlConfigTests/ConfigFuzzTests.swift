import HactlConfig
import HactlModel
import Testing

/// Random and mutated files: the loader never crashes, and every error it
/// gives has a location and a message.
struct ConfigFuzzTests {
  static let alphabet = Array("abcdefgxyz0123456789 :-[]{}#'\"\n\t,.&*!|>%@`?\\")

  @Test func mutatedConfigurationsGiveClearErrorsAndNeverCrash() {
    var random = SeededRandom(seed: 0x5EED)
    let lines = ConfigLoaderTests.valid.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var accepted = 0
    var rejected = 0
    for round in 0..<3000 {
      var text: String
      switch round % 5 {
      case 0:
        text = String(
          (0..<Int.random(in: 0..<300, using: &random)).map { _ in Self.alphabet.randomElement(using: &random)! })
      case 1:
        var mutated = lines
        for _ in 0..<Int.random(in: 1...3, using: &random) where !mutated.isEmpty {
          mutated.remove(at: Int.random(in: 0..<mutated.count, using: &random))
        }
        text = mutated.joined(separator: "\n")
      case 2:
        var mutated = lines
        let index = Int.random(in: 0..<mutated.count, using: &random)
        mutated.insert(mutated[index], at: Int.random(in: 0..<mutated.count, using: &random))
        text = mutated.joined(separator: "\n")
      default:
        var characters = Array(ConfigLoaderTests.valid)
        for _ in 0..<Int.random(in: 1...5, using: &random) {
          let index = Int.random(in: 0..<characters.count, using: &random)
          if random.next() % 2 == 0 {
            characters[index] = Self.alphabet.randomElement(using: &random)!
          } else {
            characters.remove(at: index)
          }
        }
        text = String(characters)
      }
      do {
        _ = try ConfigLoader.parse(text, file: "fuzz.yaml")
        accepted += 1
      } catch {
        rejected += 1
        #expect(!error.errors.isEmpty)
        for problem in error.errors {
          #expect(problem.line >= 1 && problem.column >= 1, "\(problem)")
          #expect(!problem.message.isEmpty)
          #expect(problem.description.hasPrefix("fuzz.yaml:"))
        }
      }
    }
    // Most mutations break something; a few land in comments or values.
    #expect(rejected > accepted)
  }
}

// Shared helpers of the libFuzzer harnesses (test/fuzz/README in the top README's
// testing section): a deterministic stream of choices drawn from the input, aligned
// copies of model bytes, and a check that aborts (so libFuzzer records a crash) when a
// harness's own assertion fails.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace recsys_fuzz {

// Aborts with a message: a failed harness assertion is a finding like a sanitizer report.
#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

// splitmix64: the choices a harness makes (k, indices, flags) from a seed taken from
// the input, so every run is reproducible from its input file alone.
class Choices {
 public:
  explicit Choices(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform-ish in [0, n); 0 when n <= 0.
  int64_t below(int64_t n) { return n <= 0 ? 0 : static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  bool coin() { return next() & 1; }

 private:
  uint64_t s_;
};

// Bytes in 8-byte-aligned storage, as PostgreSQL hands a detoasted value to the core.
struct Aligned {
  std::vector<uint64_t> words;
  uint64_t size = 0;
  Aligned(const uint8_t* data, uint64_t n) : words((n + 7) / 8 + 1, 0), size(n) {
    if (n) std::memcpy(words.data(), data, n);
  }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(words.data()); }
};

}  // namespace recsys_fuzz

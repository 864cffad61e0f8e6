// Top-K selection: the k largest scores, best first, ties broken by the lower index, in
// one pass with a small min-heap (most candidates are rejected by one comparison).
#pragma once
#include <cstdint>
#include <vector>

namespace recsys {

struct Scored {
  float score;
  int32_t index;
};

// True when a ranks before b: higher score, then lower index.
inline bool ranks_before(const Scored& a, const Scored& b) {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

// Selects up to k entries of scores[0, n) best first, skipping indices for which
// skip(index) is true. Writes into out (resized) and returns the count.
template <class Skip>
int64_t top_k(const float* scores, int64_t n, int64_t k, Skip skip, std::vector<Scored>& out);

// The reference: a full sort, for tests.
std::vector<Scored> top_k_by_sort(const float* scores, int64_t n, int64_t k, const std::vector<bool>& skip);

}  // namespace recsys

#include "topk_impl.h"

// The reference top-K: score every candidate, sort everything, keep the first k.
// Slow but obviously right; the tests compare top_k against it.
#include "topk.h"

#include <algorithm>

namespace recsys {

std::vector<Scored> top_k_by_sort(const float* scores, int64_t n, int64_t k, const std::vector<bool>& skip) {
  std::vector<Scored> all;
  if (k <= 0 || n <= 0) return all;
  all.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (static_cast<size_t>(i) < skip.size() && skip[static_cast<size_t>(i)]) continue;
    all.push_back(Scored{scores[i], static_cast<int32_t>(i)});
  }
  std::sort(all.begin(), all.end(), ranks_before);
  if (static_cast<int64_t>(all.size()) > k) all.resize(static_cast<size_t>(k));
  return all;
}

}  // namespace recsys

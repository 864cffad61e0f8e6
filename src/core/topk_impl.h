// Template implementation of top_k (included by topk.h).
#pragma once
#include <algorithm>

namespace recsys {

template <class Skip>
int64_t top_k(const float* scores, int64_t n, int64_t k, Skip skip, std::vector<Scored>& out) {
  out.clear();
  if (k <= 0 || n <= 0) return 0;
  if (k > n) k = n;
  out.reserve(static_cast<size_t>(k));
  // Min-heap on "ranks_before": the root is the worst of the current best k.
  auto worse_on_top = [](const Scored& a, const Scored& b) { return ranks_before(a, b); };
  int64_t i = 0;
  for (; i < n && static_cast<int64_t>(out.size()) < k; ++i) {
    if (skip(i)) continue;
    out.push_back(Scored{scores[i], static_cast<int32_t>(i)});
    std::push_heap(out.begin(), out.end(), worse_on_top);
  }
  if (static_cast<int64_t>(out.size()) == k) {
    float threshold = out.front().score;
    for (; i < n; ++i) {
      float s = scores[i];
      if (s < threshold) continue;  // the common case: rejected by one comparison
      Scored cand{s, static_cast<int32_t>(i)};
      if (!ranks_before(cand, out.front()) || skip(i)) continue;
      std::pop_heap(out.begin(), out.end(), worse_on_top);
      out.back() = cand;
      std::push_heap(out.begin(), out.end(), worse_on_top);
      threshold = out.front().score;
    }
  }
  std::sort(out.begin(), out.end(), ranks_before);
  return static_cast<int64_t>(out.size());
}

}  // namespace recsys

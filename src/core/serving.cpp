#include "serving.h"
#include "simd8.h"

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "content.h"
#include "knn.h"
#ifdef __AVX__
#include <immintrin.h>
#endif

namespace recsys {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;
using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;

// One scratch buffer per thread for the scores of all items (no allocation per call
// once warm).
std::vector<float>& scratch(int64_t n) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<size_t>(n));
  return buf;
}

// The shared 8-float SIMD layer (simd8.h), as the training kernels use it.
using simd::fmadd8;
using simd::hsum8;
using simd::load8;
using simd::v8f;

// out[i] = Y[i, :] . x for every row of a row-major n x f matrix: four rows at a time
// with one accumulator each, so the loads of four rows overlap. Serving is bound by
// reading Y, which this streams once.
// A row's score has the same bits whatever n, the row's position, the call site or the
// compiler's contraction settings: every row goes through the same four-row body (a
// last, partial group repeats its first row in the missing slots), and the f % 8 last
// factors go through the same vector FMA as the others, zero-padded (no scalar tail the
// compiler could fuse or not). The pruned recommend re-scores rows in other groupings
// and must match the exhaustive scores exactly.
__attribute__((noinline)) void score_rows(const float* __restrict Y, int64_t n, int f, const float* __restrict x,
                                          float* __restrict out) {
  const int nv = f / 8;
  const int rem = f - 8 * nv;
  float pad[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (rem) std::memcpy(pad, x + 8 * nv, sizeof(float) * static_cast<size_t>(rem));
  const v8f xt = load8(pad);
  auto tail8 = [&](const float* r) {
    float t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(t, r + 8 * nv, sizeof(float) * static_cast<size_t>(rem));
    return load8(t);
  };
  for (int64_t i = 0; i < n; i += 4) {
    const int64_t m = std::min<int64_t>(4, n - i);
    const float* r0 = Y + i * f;
    const float* r1 = m > 1 ? r0 + f : r0;
    const float* r2 = m > 2 ? r0 + 2 * f : r0;
    const float* r3 = m > 3 ? r0 + 3 * f : r0;
    v8f a0 = v8f{}, a1 = v8f{}, a2 = v8f{}, a3 = v8f{};
    for (int q = 0; q < nv; ++q) {
      const v8f xv = load8(x + 8 * q);
      a0 = fmadd8(load8(r0 + 8 * q), xv, a0);
      a1 = fmadd8(load8(r1 + 8 * q), xv, a1);
      a2 = fmadd8(load8(r2 + 8 * q), xv, a2);
      a3 = fmadd8(load8(r3 + 8 * q), xv, a3);
    }
    if (rem) {
      a0 = fmadd8(tail8(r0), xt, a0);
      a1 = fmadd8(tail8(r1), xt, a1);
      a2 = fmadd8(tail8(r2), xt, a2);
      a3 = fmadd8(tail8(r3), xt, a3);
    }
    const float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
    for (int64_t t = 0; t < m; ++t) out[i + t] = s[t];
  }
}

void require_factors(const ModelView& m, const char* what) {
  if (!m.user_factors() || !m.item_factors())
    fail(ErrorKind::NotSupported, std::string(what) + " needs a factor model; this model is " +
                                      model_kind_name(m.kind()) + " and has no learned factors");
}

// Excluding seen items needs them stored: refuse rather than silently return them.
void require_seen(const ModelView& m, const char* what) {
  if (!m.section(SectionTag::UserItems))
    fail(ErrorKind::InvalidParameter,
         std::string(what) + ": this model was trained with store_seen = false, so it cannot exclude each user's " +
             "seen items; pass exclude_seen => false (or retrain with store_seen = true)");
}

constexpr int64_t kBatchUsers = 64;     // users per task
constexpr int64_t kBatchItems = 512;    // items per score block (64 x 512 floats = 128 KB)

// A bounded min-heap keeping the best k (score desc, index asc) seen so far.
struct RunningTopK {
  std::vector<Scored> heap;
  int64_t k = 0;
  struct WorseOnTop {
    bool operator()(const Scored& a, const Scored& b) const { return ranks_before(a, b); }
  };
  void reset(int64_t kk) {
    heap.clear();
    k = kk;
  }
  float threshold() const { return static_cast<int64_t>(heap.size()) < k ? -INFINITY : heap.front().score; }
  void offer(float s, int32_t i) {
    Scored c{s, i};
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), WorseOnTop());
    } else if (ranks_before(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), WorseOnTop());
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), WorseOnTop());
    }
  }
};

std::atomic<int64_t> g_scored{0};
std::atomic<int64_t> g_exhaustive{0};

// ||[v, extra]|| in double, rounded to float: extra = 1 extends a user row and an item's
// bias its row when the model has item biases (score = [x, 1] . [y, b]), else 0.
inline float extended_norm(const float* v, int f, double extra) {
  double s = extra * extra;
  for (int c = 0; c < f; ++c) s += double(v[c]) * v[c];
  return static_cast<float>(std::sqrt(s));
}

// A computed dot product can exceed the exact one by a few units in the last place per
// term: ||x|| is widened by this factor so that pruning never drops an item whose
// computed score would have entered the list.
inline float rounding_slack(int f) { return 1.0f + 4e-7f * static_cast<float>(f + 8); }

// The first c >= from with s[c] >= th, or n: eight scores per comparison, since almost
// every score of a block falls below the running threshold.
inline int64_t next_at_least(const float* s, int64_t from, int64_t n, float th) {
  int64_t c = from;
#ifdef __AVX__
  const __m256 t = _mm256_set1_ps(th);
  for (; c + 8 <= n; c += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + c), t, _CMP_GE_OQ));
    if (mask) return c + __builtin_ctz(static_cast<unsigned>(mask));
  }
#endif
  for (; c < n; ++c)
    if (s[c] >= th) return c;
  return n;
}

}  // namespace

const char* serving_call_name(ServingCall call) {
  switch (call) {
    case ServingCall::Recommend: return "recommend";
    case ServingCall::RecommendAll: return "recommend_all";
    case ServingCall::SimilarItems: return "similar_items";
    case ServingCall::SimilarUsers: return "similar_users";
    case ServingCall::Score: return "score";
    case ServingCall::UserFactors: return "user_factors";
    case ServingCall::ItemFactors: return "item_factors";
    case ServingCall::RankingMetrics: return "ranking_metrics";
  }
  return "serving";
}

void check_serving_call(const ModelView& model, ServingCall call) {
  const std::string what = serving_call_name(call);
  switch (model.kind()) {
    case ModelKind::ItemKnn:
    case ModelKind::Ease:
      if (call == ServingCall::SimilarUsers || call == ServingCall::UserFactors || call == ServingCall::ItemFactors)
        fail(ErrorKind::NotSupported,
             std::string(model_kind_name(model.kind())) + " models have no factors, so " + what +
                 " has no answer: the model stores each item's weighted neighbours, not embeddings; use "
                 "similar_items or recommend, or train a factor model (train_als) for " +
                 (call == ServingCall::SimilarUsers ? "user similarities" : "embeddings"));
      return;
    case ModelKind::Content:
      if (call == ServingCall::Recommend || call == ServingCall::RecommendAll || call == ServingCall::Score ||
          call == ServingCall::RankingMetrics)
        fail(ErrorKind::NotSupported,
             "a content model has no users, so " + what +
                 " has no answer: use recsys.recommend_content(model, items[], k) to recommend from a list of "
                 "items (a basket, a session, a user's history), or similar_items");
      if (call != ServingCall::SimilarItems)
        fail(ErrorKind::NotSupported, "a content model has no users and no learned factors, so " + what +
                                          " has no answer: use similar_items or recsys.recommend_content(model, "
                                          "items[], k)");
      return;
    case ModelKind::KMeans:
      fail(ErrorKind::NotSupported,
           "a kmeans model assigns clusters: use recsys.cluster (" + what + " has no answer for a kmeans model)");
    default:
      return;
  }
}

SeenItems seen_items(const ModelView& model, int64_t user) {
  SeenItems s;
  const uint8_t* csr = model.section(SectionTag::UserItems);
  if (!csr || user < 0 || user >= model.n_users()) return s;
  const int64_t* indptr = reinterpret_cast<const int64_t*>(csr);
  const int32_t* items = reinterpret_cast<const int32_t*>(csr + 8 * (model.n_users() + 1));
  s.items = items + indptr[user];
  s.count = indptr[user + 1] - indptr[user];
  return s;
}

namespace {

// Popularity models: the most popular items, the user's seen items skipped.
int64_t recommend_popular_unseen(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                                 std::vector<Scored>& out) {
  out.clear();
  const int32_t* order = model.section_as<int32_t>(SectionTag::PopularOrder);
  const float* pop = model.section_as<float>(SectionTag::ItemPopularity);
  if (!order || !pop) fail(ErrorKind::InvalidModel, "popularity model without popularity sections");
  SeenItems seen = exclude_seen ? seen_items(model, user) : SeenItems{};
  const int32_t* end = seen.items + seen.count;
  for (int64_t r = 0; r < model.n_items() && static_cast<int64_t>(out.size()) < k; ++r) {
    int32_t i = order[r];
    if (seen.count && std::binary_search(seen.items, end, i)) continue;
    out.push_back(Scored{pop[i], i});
  }
  return static_cast<int64_t>(out.size());
}

}  // namespace

namespace {

bool order_fits(const ModelView& model, const ItemOrder* order) {
  return order && static_cast<int64_t>(order->item.size()) == model.n_items() &&
         static_cast<int64_t>(order->position.size()) == model.n_items() &&
         (order->factors.empty() ||
          static_cast<int64_t>(order->factors.size()) == model.n_items() * model.factors()) &&
         order->bias.empty() == (model.section(SectionTag::ItemBias) == nullptr);
}

// One user vector against the items in decreasing-norm order, a block at a time,
// stopping once the k-th best score beats ||x|| times the next block's largest norm.
// Each row is scored by the same kernel as the exhaustive path, so the list is identical
// to it. skip(item) leaves an item out (seen items, filters): skipping never breaks the
// bound, which holds for every item still to come.
template <class Skip>
int64_t recommend_pruned(const ModelView& model, const ItemOrder& order, const float* x, int64_t k, Skip skip,
                         std::vector<Scored>& out) {
  constexpr int64_t kBlock = 64;
  const int64_t n = model.n_items();
  const int f = model.factors();
  const float* bias = order.bias.empty() ? nullptr : order.bias.data();
  const float xnorm = extended_norm(x, f, bias ? 1.0 : 0.0) * rounding_slack(f);
  thread_local RunningTopK top;
  top.reset(std::min(k, n));
  float s[kBlock];
  for (int64_t p0 = 0; p0 < n; p0 += kBlock) {
    float th = top.threshold();
    if (th > xnorm * order.bound[p0]) break;
    const int64_t ni = std::min(kBlock, n - p0);
    if (!order.factors.empty()) {
      score_rows(order.factors.data() + p0 * f, ni, f, x, s);
    } else {
      const float* Y = model.item_factors();
      for (int64_t c = 0; c < ni; ++c) score_rows(Y + int64_t(order.item[p0 + c]) * f, 1, f, x, s + c);
    }
    if (bias)
      for (int64_t c = 0; c < ni; ++c) s[c] += bias[p0 + c];
    for (int64_t c = next_at_least(s, 0, ni, th); c < ni; c = next_at_least(s, c + 1, ni, th)) {
      const int32_t item = order.item[p0 + c];
      if (skip(item)) continue;
      top.offer(s[c], item);
      th = top.threshold();
    }
  }
  out.assign(top.heap.begin(), top.heap.end());
  std::sort(out.begin(), out.end(), ranks_before);
  return static_cast<int64_t>(out.size());
}

bool in_sorted(const int32_t* begin, const int32_t* end, int32_t i) {
  return begin != end && std::binary_search(begin, end, i);
}

// An include list against the pruned order: its items marked in a bitmap over positions
// and visited in decreasing-norm order, a few rows gathered per kernel call, stopping
// once the k-th best score beats ||x|| times the next item's norm. The same list (and
// bits) as scoring every included item.
template <class Skip>
int64_t recommend_included_pruned(const ModelView& model, const ItemOrder& order, const float* x, int64_t k,
                                  Skip skip, const ItemFilter& filter, std::vector<Scored>& out) {
  constexpr size_t kChunk = 8;
  const int64_t n = model.n_items();
  const int f = model.factors();
  const float* bias = order.bias.empty() ? nullptr : order.bias.data();
  const float xnorm = extended_norm(x, f, bias ? 1.0 : 0.0) * rounding_slack(f);
  const int32_t* ex0 = filter.exclude.data();
  const int32_t* ex1 = ex0 + filter.exclude.size();
  thread_local std::vector<uint64_t> marked;
  thread_local RunningTopK top;
  thread_local std::vector<float> rows;
  marked.assign(static_cast<size_t>((n + 63) / 64), 0);
  for (int32_t i : filter.include)
    if (!in_sorted(ex0, ex1, i)) {
      const int64_t p = order.position[i];
      marked[static_cast<size_t>(p >> 6)] |= uint64_t(1) << (p & 63);
    }
  top.reset(std::min(k, n));
  rows.resize(kChunk * static_cast<size_t>(std::max(f, 1)));
  int64_t pos[kChunk];
  size_t m = 0;
  float s[kChunk];
  auto flush = [&] {
    if (m == 0) return;
    score_rows(rows.data(), static_cast<int64_t>(m), f, x, s);
    for (size_t c = 0; c < m; ++c) top.offer(bias ? s[c] + bias[pos[c]] : s[c], order.item[pos[c]]);
    m = 0;
  };
  const float* Y = model.item_factors();
  for (size_t w = 0; w < marked.size(); ++w) {
    for (uint64_t bits = marked[w]; bits != 0; bits &= bits - 1) {
      const int64_t p = static_cast<int64_t>(w * 64) + __builtin_ctzll(bits);
      if (top.threshold() > xnorm * order.bound[p]) {  // nothing from here on can enter
        flush();
        if (top.threshold() > xnorm * order.bound[p]) goto done;
      }
      const int32_t item = order.item[p];
      if (skip(item)) continue;
      const float* row = order.factors.empty() ? Y + int64_t(item) * f : order.factors.data() + p * f;
      if (f > 0) std::memcpy(rows.data() + m * f, row, sizeof(float) * f);
      pos[m++] = p;
      if (m == kChunk) flush();
    }
  }
  flush();
done:
  out.assign(top.heap.begin(), top.heap.end());
  std::sort(out.begin(), out.end(), ranks_before);
  return static_cast<int64_t>(out.size());
}

// Factor models: the top-k of x . y_i (+ b_i) over the items skip() lets through; with an
// include list only its items are scored (each by the same kernel: the same bits).
template <class Skip>
int64_t recommend_vector_impl(const ModelView& model, const float* x, int64_t k, Skip skip,
                              const ItemFilter* filter, std::vector<Scored>& out, const ItemOrder* order) {
  require_factors(model, "recommend");
  const int64_t n = model.n_items();
  const int f = model.factors();
  const float* bias = model.section_as<float>(SectionTag::ItemBias);
  auto refused = [&](int32_t i) { return skip(i) || (filter && !filter->allows(i)); };
  if (filter && filter->has_include && k > 0 && order_fits(model, order))
    return recommend_included_pruned(model, *order, x, k, skip, *filter, out);
  if (filter && filter->has_include) {
    // The allowed rows gathered a block at a time and scored in one kernel call (a row's
    // score has the same bits in any grouping).
    constexpr size_t kBlock = 64;
    thread_local RunningTopK top;
    thread_local std::vector<float> rows;
    thread_local std::vector<int32_t> ids;
    top.reset(std::min<int64_t>(k, n));
    rows.resize(kBlock * static_cast<size_t>(std::max(f, 1)));
    ids.clear();
    float s[kBlock];
    auto flush = [&] {
      if (ids.empty()) return;
      score_rows(rows.data(), static_cast<int64_t>(ids.size()), f, x, s);
      for (size_t c = 0; c < ids.size(); ++c) top.offer(bias ? s[c] + bias[ids[c]] : s[c], ids[c]);
      ids.clear();
    };
    for (int32_t i : filter->include) {
      if (refused(i)) continue;
      if (f > 0) std::memcpy(rows.data() + ids.size() * f, model.item_factors() + int64_t(i) * f, sizeof(float) * f);
      ids.push_back(i);
      if (ids.size() == kBlock) flush();
    }
    flush();
    out.assign(top.heap.begin(), top.heap.end());
    std::sort(out.begin(), out.end(), ranks_before);
    return static_cast<int64_t>(out.size());
  }
  if (k > 0 && order_fits(model, order)) return recommend_pruned(model, *order, x, k, refused, out);
  std::vector<float>& scores = scratch(n);
  score_rows(model.item_factors(), n, f, x, scores.data());
  if (bias)
    for (int64_t i = 0; i < n; ++i) scores[i] += bias[i];
  return top_k(scores.data(), n, k, [&](int64_t i) { return refused(static_cast<int32_t>(i)); }, out);
}

}  // namespace

int64_t recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                       std::vector<Scored>& out, const ItemOrder* order, const ItemFilter* filter) {
  check_serving_call(model, ServingCall::Recommend);
  if (filter && !filter->active()) filter = nullptr;
  if (sums_neighbour_lists(model.kind())) {
    if (!filter) return knn_recommend_user(model, user, k, exclude_seen, out);
    // Every scored item, then the allowed ones in order (the same scores and ties).
    knn_recommend_user(model, user, model.n_items(), exclude_seen, out);
    return apply_filter(out, k, filter);
  }
  if (exclude_seen) require_seen(model, "recommend");
  if (model.kind() == ModelKind::Popularity && !filter)
    return recommend_popular_unseen(model, user, k, exclude_seen, out);
  const SeenItems seen = exclude_seen ? seen_items(model, user) : SeenItems{};
  const int32_t* seen_end = seen.items + seen.count;
  if (model.kind() == ModelKind::Popularity) {
    std::vector<int32_t> skip(seen.items, seen_end);
    return recommend_popular_filtered(model, k, skip, filter, out);
  }
  require_factors(model, "recommend");
  const float* x = model.user_factors() + user * model.factors();
  if (filter || (k > 0 && order_fits(model, order)))
    return recommend_vector_impl(model, x, k, [&](int32_t i) { return in_sorted(seen.items, seen_end, i); },
                                 filter, out, order);
  const int64_t n = model.n_items();
  const int f = model.factors();
  std::vector<float>& scores = scratch(n);
  score_rows(model.item_factors(), n, f, x, scores.data());
  if (const float* bias = model.section_as<float>(SectionTag::ItemBias))
    for (int64_t i = 0; i < n; ++i) scores[i] += bias[i];
  if (!exclude_seen) return top_k(scores.data(), n, k, [](int64_t) { return false; }, out);
  // Seen items are sorted: walk them alongside the candidate index.
  auto skip = [&](int64_t i) {
    const int32_t* pos = std::lower_bound(seen.items, seen_end, static_cast<int32_t>(i));
    return pos != seen_end && *pos == i;
  };
  return top_k(scores.data(), n, k, skip, out);
}

int64_t recommend_vector(const ModelView& model, const float* x, int64_t k, const std::vector<int32_t>& skip,
                         const ItemFilter* filter, std::vector<Scored>& out, const ItemOrder* order) {
  if (filter && !filter->active()) filter = nullptr;
  const int32_t* b = skip.data();
  const int32_t* e = b + skip.size();
  return recommend_vector_impl(model, x, k, [&](int32_t i) { return in_sorted(b, e, i); }, filter, out, order);
}

int64_t recommend_popular_filtered(const ModelView& model, int64_t k, const std::vector<int32_t>& skip,
                                   const ItemFilter* filter, std::vector<Scored>& out) {
  out.clear();
  if (filter && !filter->active()) filter = nullptr;
  const int32_t* order = model.section_as<int32_t>(SectionTag::PopularOrder);
  const float* pop = model.section_as<float>(SectionTag::ItemPopularity);
  if (!order || !pop || k <= 0) return 0;
  auto refused = [&](int32_t i) {
    return in_sorted(skip.data(), skip.data() + skip.size(), i) || (filter && !filter->allows(i));
  };
  if (filter && filter->has_include) {
    // Rank the allowed items as the popular order does (popularity, then its position).
    std::vector<Scored> cand;
    for (int32_t i : filter->include)
      if (!refused(i)) cand.push_back(Scored{pop[i], i});
    std::vector<int32_t> rank(static_cast<size_t>(model.n_items()));
    for (int64_t r = 0; r < model.n_items(); ++r) rank[order[r]] = static_cast<int32_t>(r);
    std::sort(cand.begin(), cand.end(), [&](const Scored& a, const Scored& b) { return rank[a.index] < rank[b.index]; });
    if (static_cast<int64_t>(cand.size()) > k) cand.resize(static_cast<size_t>(k));
    out = cand;
    return static_cast<int64_t>(out.size());
  }
  for (int64_t r = 0; r < model.n_items() && static_cast<int64_t>(out.size()) < k; ++r) {
    const int32_t i = order[r];
    if (refused(i)) continue;
    out.push_back(Scored{pop[i], i});
  }
  return static_cast<int64_t>(out.size());
}

int64_t apply_filter(std::vector<Scored>& list, int64_t k, const ItemFilter* filter) {
  size_t kept = 0;
  for (size_t r = 0; r < list.size() && static_cast<int64_t>(kept) < k; ++r)
    if (!filter || filter->allows(list[r].index)) list[kept++] = list[r];
  list.resize(kept);
  return static_cast<int64_t>(kept);
}

void ItemFilter::finish() {
  for (std::vector<int32_t>* v : {&include, &exclude}) {
    if (!std::is_sorted(v->begin(), v->end())) std::sort(v->begin(), v->end());  // a memoized list already is
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
}

bool ItemFilter::allows(int32_t item) const {
  if (has_include && !std::binary_search(include.begin(), include.end(), item)) return false;
  return exclude.empty() || !std::binary_search(exclude.begin(), exclude.end(), item);
}

int64_t recommend_popular(const ModelView& model, int64_t k, std::vector<Scored>& out) {
  out.clear();
  check_serving_call(model, ServingCall::Recommend);
  const int32_t* order = model.section_as<int32_t>(SectionTag::PopularOrder);
  const float* pop = model.section_as<float>(SectionTag::ItemPopularity);
  if (!order || !pop) return 0;
  int64_t n = std::max<int64_t>(0, std::min<int64_t>(k, model.n_items()));
  for (int64_t r = 0; r < n; ++r) out.push_back(Scored{pop[order[r]], order[r]});
  return n;
}

namespace {

int64_t cosine_neighbours(const float* factors, const float* norms, int64_t rows, int f, int64_t row, int64_t k,
                          std::vector<Scored>& out) {
  std::vector<float>& scores = scratch(rows);
  score_rows(factors, rows, f, factors + row * f, scores.data());
  float self = norms[row];
  for (int64_t i = 0; i < rows; ++i) {
    float d = norms[i] * self;
    scores[i] = d > 0 ? scores[i] / d : 0.0f;
  }
  return top_k(scores.data(), rows, k, [row](int64_t i) { return i == row; }, out);
}

}  // namespace

int64_t similar_list_length(int64_t requested, int64_t n_items, int factors) {
  if (factors <= 0 || n_items <= 1) return 0;
  if (requested < 0) requested = n_items <= kSimilarListsMaxItems ? kDefaultSimilarItems : 0;
  return std::min(requested, n_items - 1);
}

NeighbourLists similar_item_lists(const float* Y, const float* norms, int64_t n, int f, int64_t length, int threads,
                                  const CancelToken& cancel) {
  NeighbourLists out;
  length = std::min(length, n - 1);
  if (length <= 0 || f <= 0) return out;
  // A task scores q_block items against all n; its score matrix (q_block x n floats) is
  // at most ~16 MB. Rows go through the kernel r_block at a time, so they stay in cache
  // while every item of the task is scored against them.
  const int64_t q_block = std::max<int64_t>(1, std::min<int64_t>(64, (int64_t(4) << 20) / n));
  constexpr int64_t r_block = 256;
  const int64_t tasks = (n + q_block - 1) / q_block;
  out.indptr.resize(static_cast<size_t>(n) + 1);
  for (int64_t i = 0; i <= n; ++i) out.indptr[i] = i * length;
  out.indices.resize(static_cast<size_t>(n * length));
  out.scores.resize(static_cast<size_t>(n * length));
  parallel_for(tasks, resolve_threads(threads), cancel, [&](int64_t task, int) {
    const int64_t q0 = task * q_block, q1 = std::min(n, q0 + q_block);
    thread_local std::vector<float> block;
    block.resize(static_cast<size_t>((q1 - q0) * n));
    for (int64_t r0 = 0; r0 < n; r0 += r_block) {
      const int64_t rows = std::min(r_block, n - r0);
      for (int64_t q = q0; q < q1; ++q) score_rows(Y + r0 * f, rows, f, Y + q * f, block.data() + (q - q0) * n + r0);
    }
    std::vector<Scored> top;
    for (int64_t q = q0; q < q1; ++q) {
      float* s = block.data() + (q - q0) * n;
      const float self = norms[q];
      for (int64_t i = 0; i < n; ++i) {  // the cosine exactly as cosine_neighbours forms it
        const float d = norms[i] * self;
        s[i] = d > 0 ? s[i] / d : 0.0f;
      }
      top.clear();
      top_k(s, n, length, [q](int64_t i) { return i == q; }, top);
      for (int64_t e = 0; e < length; ++e) {
        out.indices[static_cast<size_t>(q * length + e)] = top[static_cast<size_t>(e)].index;
        out.scores[static_cast<size_t>(q * length + e)] = top[static_cast<size_t>(e)].score;
      }
    }
  });
  return out;
}

void add_similar_sections(ModelBuilder& builder, NeighbourLists&& lists) {
  if (lists.indices.empty()) return;
  builder.add_array(SectionTag::SimilarIndptr, lists.indptr);
  builder.add_array(SectionTag::SimilarIndices, lists.indices);
  builder.add_array(SectionTag::SimilarScores, lists.scores);
  lists = NeighbourLists();
}

namespace {

// A factor model's stored list of `item`, when it answers the call exactly: the first k
// entries (k at most the list's length, or the list holds every other item); with a
// filter, the first k allowed entries, if the list holds k of them or every other item.
// Returns false when the caller must score.
bool similar_from_list(const ModelView& model, int64_t item, int64_t k, const ItemFilter* filter,
                       std::vector<Scored>& out) {
  const int64_t* indptr = model.section_as<int64_t>(SectionTag::SimilarIndptr);
  if (!indptr) return false;
  const int32_t* indices = model.section_as<int32_t>(SectionTag::SimilarIndices);
  const float* scores = model.section_as<float>(SectionTag::SimilarScores);
  const int64_t b = indptr[item], e = indptr[item + 1];
  const bool complete = e - b >= model.n_items() - 1;
  out.clear();
  for (int64_t p = b; p < e && static_cast<int64_t>(out.size()) < k; ++p)
    if (!filter || filter->allows(indices[p])) out.push_back(Scored{scores[p], indices[p]});
  if (static_cast<int64_t>(out.size()) >= k || complete) return true;
  out.clear();
  return false;
}

}  // namespace

int64_t similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out,
                      const ItemFilter* filter) {
  check_serving_call(model, ServingCall::SimilarItems);
  if (filter && !filter->active()) filter = nullptr;
  if (sums_neighbour_lists(model.kind())) {
    if (!filter) return knn_similar_items(model, item, k, out);
    knn_similar_items(model, item, model.n_items(), out);
    return apply_filter(out, k, filter);
  }
  if (model.kind() == ModelKind::Content) {
    if (!filter) return content_similar_items(model, item, k, out);
    const int64_t stored = content_similar_items(model, item, model.n_items(), out);
    apply_filter(out, k, filter);
    // The stored list is every item with a positive similarity or a truncated top-N:
    // when it runs out before k allowed items, score every allowed item.
    if (static_cast<int64_t>(out.size()) >= k || stored == 0) return static_cast<int64_t>(out.size());
    const int64_t n = model.n_items();
    std::vector<float>& scores = scratch(n);
    for (int64_t i = 0; i < n; ++i)
      scores[i] = i == item || !filter->allows(static_cast<int32_t>(i)) ? 0.0f : content_similarity(model, item, i);
    top_k(scores.data(), n, k,
          [&](int64_t i) { return i == item || !filter->allows(static_cast<int32_t>(i)) || !(scores[i] > 0); }, out);
    return static_cast<int64_t>(out.size());
  }
  const float* norms = model.section_as<float>(SectionTag::ItemNorms);
  if (!model.item_factors() || !norms)
    fail(ErrorKind::NotSupported,
         std::string("similar_items needs item factors; this model is ") + model_kind_name(model.kind()));
  if (similar_from_list(model, item, k, filter, out)) return static_cast<int64_t>(out.size());
  if (!filter) return cosine_neighbours(model.item_factors(), norms, model.n_items(), model.factors(), item, k, out);
  const int f = model.factors();
  const float* Y = model.item_factors();
  const float* x = Y + item * f;
  auto cosine = [&](int64_t i, float dotp) {
    const float d = norms[i] * norms[item];
    return d > 0 ? dotp / d : 0.0f;
  };
  if (filter->has_include) {
    RunningTopK top;
    top.reset(k);
    for (int32_t i : filter->include) {
      if (i == item || !filter->allows(i)) continue;
      float s;
      score_rows(Y + int64_t(i) * f, 1, f, x, &s);
      top.offer(cosine(i, s), i);
    }
    out.assign(top.heap.begin(), top.heap.end());
    std::sort(out.begin(), out.end(), ranks_before);
    return static_cast<int64_t>(out.size());
  }
  const int64_t n = model.n_items();
  std::vector<float>& scores = scratch(n);
  score_rows(Y, n, f, x, scores.data());
  for (int64_t i = 0; i < n; ++i) scores[i] = cosine(i, scores[i]);
  return top_k(scores.data(), n, k,
               [&](int64_t i) { return i == item || !filter->allows(static_cast<int32_t>(i)); }, out);
}

int64_t similar_users(const ModelView& model, int64_t user, int64_t k, std::vector<Scored>& out) {
  check_serving_call(model, ServingCall::SimilarUsers);
  const float* norms = model.section_as<float>(SectionTag::UserNorms);
  if (!model.user_factors() || !norms)
    fail(ErrorKind::NotSupported,
         std::string("similar_users needs user factors; this model is ") + model_kind_name(model.kind()));
  return cosine_neighbours(model.user_factors(), norms, model.n_users(), model.factors(), user, k, out);
}

float score_pair(const ModelView& model, int64_t user, int64_t item) {
  check_serving_call(model, ServingCall::Score);
  if (sums_neighbour_lists(model.kind())) return knn_score_pair(model, user, item);
  if (model.kind() == ModelKind::Popularity) {
    const float* pop = model.section_as<float>(SectionTag::ItemPopularity);
    return pop ? pop[item] : 0.0f;
  }
  require_factors(model, "score");
  const int f = model.factors();
  float s = ConstVecMap(model.user_factors() + user * f, f).dot(ConstVecMap(model.item_factors() + item * f, f));
  if (const float* bias = model.section_as<float>(SectionTag::ItemBias)) s += bias[item];
  return s;
}

std::vector<float> row_norms(const float* factors, int64_t rows, int f) {
  std::vector<float> norms(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) norms[i] = ConstVecMap(factors + i * f, f).norm();
  return norms;
}

std::vector<int32_t> popularity_order(const std::vector<float>& popularity) {
  std::vector<int32_t> order(popularity.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return popularity[a] > popularity[b]; });
  return order;
}

}  // namespace recsys

namespace recsys {

BatchStats batch_stats() { return BatchStats{g_scored.load(), g_exhaustive.load()}; }

bool has_item_order(const ModelView& model) {
  return (model.kind() == ModelKind::ImplicitAls || model.kind() == ModelKind::BiasedMf) && model.user_factors() &&
         model.item_factors();
}

void build_item_order(const ModelView& model, ItemOrder& order, bool copy_factors) {
  require_factors(model, "recommend_all");
  const int64_t n = model.n_items();
  const int f = model.factors();
  const float* Y = model.item_factors();
  const float* bias = model.section_as<float>(SectionTag::ItemBias);
  std::vector<float> norm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) norm[i] = extended_norm(Y + i * f, f, bias ? bias[i] : 0.0);
  order.item.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order.item[i] = static_cast<int32_t>(i);
  std::stable_sort(order.item.begin(), order.item.end(), [&](int32_t a, int32_t b) { return norm[a] > norm[b]; });
  order.position.resize(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) order.position[order.item[p]] = static_cast<int32_t>(p);
  order.factors.assign(copy_factors ? static_cast<size_t>(n) * f : 0, 0.0f);
  order.bound.resize(static_cast<size_t>(n));
  order.bias.assign(bias ? static_cast<size_t>(n) : 0, 0.0f);
  for (int64_t p = 0; p < n; ++p) {
    const int32_t i = order.item[p];
    if (copy_factors && f > 0) std::memcpy(order.factors.data() + p * f, Y + int64_t(i) * f, sizeof(float) * f);
    order.bound[p] = norm[i];
    if (bias) order.bias[p] = bias[i];
  }
}

void recommend_batch(const ModelView& model, const std::vector<int64_t>& users, int64_t k, bool exclude_seen,
                     int threads, const CancelToken& cancel, std::vector<std::vector<Scored>>& out,
                     const ItemOrder* order, const ItemFilter* filter) {
  out.assign(users.size(), {});
  check_serving_call(model, ServingCall::RecommendAll);
  if (users.empty() || k <= 0) return;
  if (filter && !filter->active()) filter = nullptr;
  // Item-kNN scores a user from the neighbour lists of the user's items: no dense
  // product to batch, so users are handed out one by one, each scored exactly as
  // recommend does (equal lists).
  if (!sums_neighbour_lists(model.kind()) && exclude_seen) require_seen(model, "recommend_all");
  // An include list is scored item by item for each user (as recommend does).
  if (model.kind() == ModelKind::Popularity || sums_neighbour_lists(model.kind()) ||
      (filter && filter->has_include)) {
    parallel_for(static_cast<int64_t>(users.size()), threads, cancel, [&](int64_t j, int) {
      recommend_user(model, users[j], k, exclude_seen, out[j], order, filter);
    });
    return;
  }
  require_factors(model, "recommend_all");
  ItemOrder local;
  if (!order_fits(model, order)) {
    build_item_order(model, local);
    order = &local;
  }
  const int64_t n_items = model.n_items();
  const int f = model.factors();
  const float* X = model.user_factors();
  // Item rows in order: the copy, or (without one) gathered per block into a buffer.
  const float* Yo = order->factors.empty() ? nullptr : order->factors.data();
  const float* Y = model.item_factors();
  const float* bo = order->bias.empty() ? nullptr : order->bias.data();
  const float* bound = order->bound.data();
  const int32_t* item_at = order->item.data();
  const int32_t* position = order->position.data();
  const float slack = rounding_slack(f);
  const int64_t tasks = (static_cast<int64_t>(users.size()) + kBatchUsers - 1) / kBatchUsers;
  std::atomic<int64_t> scored{0};
  parallel_for(tasks, threads, cancel, [&](int64_t task, int) {
    const int64_t j0 = task * kBatchUsers;
    const int64_t nb = std::min<int64_t>(kBatchUsers, static_cast<int64_t>(users.size()) - j0);
    // Fixed-capacity buffers viewed at the batch's current size: the active users shrink
    // block by block, and resizing Eigen matrices would reallocate (and fault in) each time.
    thread_local std::vector<float> xa_buf, scores_buf, y_buf;
    xa_buf.resize(static_cast<size_t>(kBatchUsers * std::max(f, 1)));
    scores_buf.resize(static_cast<size_t>(kBatchUsers * kBatchItems));
    if (!Yo) y_buf.resize(static_cast<size_t>(kBatchItems * std::max(f, 1)));
    int64_t gathered = -1;  // the block whose rows y_buf holds
    thread_local std::vector<RunningTopK> tops;
    thread_local std::vector<float> xnorm;
    thread_local std::vector<int32_t> active;
    // Seen items as bits over item positions, one row of words per user of the batch:
    // a candidate that beats the threshold is checked with one load.
    thread_local std::vector<uint64_t> seen_bits;
    const int64_t words = (n_items + 63) / 64;
    const bool use_bits = exclude_seen || filter;
    if (use_bits) seen_bits.assign(static_cast<size_t>(nb * words), 0);
    tops.resize(static_cast<size_t>(nb));
    xnorm.resize(static_cast<size_t>(nb));
    active.resize(static_cast<size_t>(nb));
    for (int64_t r = 0; r < nb; ++r) {
      tops[r].reset(std::min(k, n_items));
      if (exclude_seen) {
        const SeenItems sv = seen_items(model, users[j0 + r]);
        uint64_t* bits = seen_bits.data() + r * words;
        for (int64_t e = 0; e < sv.count; ++e) {
          const int32_t p = position[sv.items[e]];
          bits[p >> 6] |= uint64_t{1} << (p & 63);
        }
      }
      if (filter) {  // excluded items are "seen" by every user of the batch
        uint64_t* bits = seen_bits.data() + r * words;
        for (int32_t i : filter->exclude) {
          const int32_t p = position[i];
          bits[p >> 6] |= uint64_t{1} << (p & 63);
        }
      }
      xnorm[r] = extended_norm(X + users[j0 + r] * f, f, bo ? 1.0 : 0.0) * slack;
      active[r] = static_cast<int32_t>(r);
    }
    bool regather = true;
    int64_t done = 0;
    for (int64_t p0 = 0; p0 < n_items; p0 += kBatchItems) {
      // Users whose k-th best beats every item still to come leave the batch.
      const float cap = bound[p0];
      size_t kept = 0;
      for (int32_t r : active)
        if (!(tops[r].threshold() > xnorm[r] * cap)) active[kept++] = r;
      if (kept != active.size()) {
        active.resize(kept);
        regather = true;
      }
      if (active.empty()) break;
      const int64_t na = static_cast<int64_t>(active.size());
      if (regather) {
        for (int64_t a = 0; a < na; ++a)
          if (f > 0) std::memcpy(xa_buf.data() + a * f, X + users[j0 + active[a]] * f, sizeof(float) * f);
        regather = false;
      }
      const int64_t ni = std::min(kBatchItems, n_items - p0);
      Eigen::Map<RowMatrix> scores(scores_buf.data(), na, ni);
      if (f > 0) {
        const float* block = Yo ? Yo + p0 * f : nullptr;
        if (!block) {
          if (gathered != p0) {
            for (int64_t c = 0; c < ni; ++c)
              std::memcpy(y_buf.data() + c * f, Y + int64_t(item_at[p0 + c]) * f, sizeof(float) * f);
            gathered = p0;
          }
          block = y_buf.data();
        }
        scores.noalias() = ConstRowMap(xa_buf.data(), na, f) * ConstRowMap(block, ni, f).transpose();
      } else {
        scores.setZero();
      }
      done += na * ni;
      for (int64_t a = 0; a < na; ++a) {
        const int32_t r = active[a];
        float* s = scores.data() + a * ni;
        if (bo)
          for (int64_t c = 0; c < ni; ++c) s[c] += bo[p0 + c];
        const uint64_t* bits = use_bits ? seen_bits.data() + r * words : nullptr;
        RunningTopK& top = tops[r];
        float th = top.threshold();
        for (int64_t c = next_at_least(s, 0, ni, th); c < ni; c = next_at_least(s, c + 1, ni, th)) {
          const int64_t p = p0 + c;
          if (bits && (bits[p >> 6] >> (p & 63) & 1)) continue;
          top.offer(s[c], item_at[p]);
          th = top.threshold();
        }
      }
    }
    scored += done;
    for (int64_t r = 0; r < nb; ++r) {
      std::vector<Scored>& dst = out[j0 + r];
      dst = tops[r].heap;
      std::sort(dst.begin(), dst.end(), ranks_before);
    }
  });
  g_scored += scored.load();
  g_exhaustive += static_cast<int64_t>(users.size()) * n_items;
}

}  // namespace recsys

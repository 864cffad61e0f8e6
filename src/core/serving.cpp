#include "serving.h"

#include <Eigen/Core>
#include <algorithm>
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

typedef float v8f __attribute__((vector_size(32)));

inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline v8f fmadd8(v8f a, v8f b, v8f c) {
#ifdef __FMA__
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

inline float hsum8(v8f v) {
#ifdef __AVX__
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
#else
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
#endif
}

// out[i] = Y[i, :] . x for every row of a row-major n x f matrix: four rows at a time
// with one accumulator each, so the loads of four rows overlap. Serving is bound by
// reading Y, which this streams once.
void score_rows(const float* __restrict Y, int64_t n, int f, const float* __restrict x, float* __restrict out) {
  const int nv = f / 8;
  const int tail = nv * 8;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float* r0 = Y + i * f;
    const float* r1 = r0 + f;
    const float* r2 = r1 + f;
    const float* r3 = r2 + f;
    v8f a0 = v8f{}, a1 = v8f{}, a2 = v8f{}, a3 = v8f{};
    for (int q = 0; q < nv; ++q) {
      const v8f xv = load8(x + 8 * q);
      a0 = fmadd8(load8(r0 + 8 * q), xv, a0);
      a1 = fmadd8(load8(r1 + 8 * q), xv, a1);
      a2 = fmadd8(load8(r2 + 8 * q), xv, a2);
      a3 = fmadd8(load8(r3 + 8 * q), xv, a3);
    }
    float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
    for (int j = tail; j < f; ++j) {
      s0 += r0[j] * x[j];
      s1 += r1[j] * x[j];
      s2 += r2[j] * x[j];
      s3 += r3[j] * x[j];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
  for (; i < n; ++i) {
    const float* r = Y + i * f;
    v8f a = v8f{};
    for (int q = 0; q < nv; ++q) a = fmadd8(load8(r + 8 * q), load8(x + 8 * q), a);
    float s = hsum8(a);
    for (int j = tail; j < f; ++j) s += r[j] * x[j];
    out[i] = s;
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
      if (call == ServingCall::SimilarUsers || call == ServingCall::UserFactors || call == ServingCall::ItemFactors)
        fail(ErrorKind::NotSupported,
             "item_knn models have no factors, so " + what +
                 " has no answer: an item-kNN model stores each item's nearest neighbours, not embeddings; use "
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

int64_t recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                       std::vector<Scored>& out) {
  check_serving_call(model, ServingCall::Recommend);
  if (model.kind() == ModelKind::ItemKnn) return knn_recommend_user(model, user, k, exclude_seen, out);
  if (exclude_seen) require_seen(model, "recommend");
  if (model.kind() == ModelKind::Popularity) return recommend_popular_unseen(model, user, k, exclude_seen, out);
  require_factors(model, "recommend");
  const int64_t n = model.n_items();
  const int f = model.factors();
  std::vector<float>& scores = scratch(n);
  score_rows(model.item_factors(), n, f, model.user_factors() + user * f, scores.data());
  if (const float* bias = model.section_as<float>(SectionTag::ItemBias))
    for (int64_t i = 0; i < n; ++i) scores[i] += bias[i];
  if (!exclude_seen) return top_k(scores.data(), n, k, [](int64_t) { return false; }, out);
  SeenItems seen = seen_items(model, user);
  // Seen items are sorted: walk them alongside the candidate index.
  const int32_t* it = seen.items;
  const int32_t* end = seen.items + seen.count;
  auto skip = [&](int64_t i) {
    const int32_t* pos = std::lower_bound(it, end, static_cast<int32_t>(i));
    return pos != end && *pos == i;
  };
  return top_k(scores.data(), n, k, skip, out);
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

int64_t similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out) {
  check_serving_call(model, ServingCall::SimilarItems);
  if (model.kind() == ModelKind::ItemKnn) return knn_similar_items(model, item, k, out);
  if (model.kind() == ModelKind::Content) return content_similar_items(model, item, k, out);
  const float* norms = model.section_as<float>(SectionTag::ItemNorms);
  if (!model.item_factors() || !norms)
    fail(ErrorKind::NotSupported,
         std::string("similar_items needs item factors; this model is ") + model_kind_name(model.kind()));
  return cosine_neighbours(model.item_factors(), norms, model.n_items(), model.factors(), item, k, out);
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
  if (model.kind() == ModelKind::ItemKnn) return knn_score_pair(model, user, item);
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
namespace {

constexpr int64_t kBatchUsers = 64;     // users per task
constexpr int64_t kBatchItems = 2048;   // items per score block (64 x 2048 floats = 512 KB)

// A bounded min-heap keeping the best k (score desc, index asc) seen so far.
struct RunningTopK {
  std::vector<Scored> heap;
  int64_t k = 0;
  static bool worse_on_top(const Scored& a, const Scored& b) { return ranks_before(a, b); }
  void reset(int64_t kk) {
    heap.clear();
    k = kk;
  }
  float threshold() const { return static_cast<int64_t>(heap.size()) < k ? -INFINITY : heap.front().score; }
  void offer(float s, int32_t i) {
    Scored c{s, i};
    if (static_cast<int64_t>(heap.size()) < k) {
      heap.push_back(c);
      std::push_heap(heap.begin(), heap.end(), worse_on_top);
    } else if (ranks_before(c, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), worse_on_top);
      heap.back() = c;
      std::push_heap(heap.begin(), heap.end(), worse_on_top);
    }
  }
};

}  // namespace

void recommend_batch(const ModelView& model, const std::vector<int64_t>& users, int64_t k, bool exclude_seen,
                     int threads, const CancelToken& cancel, std::vector<std::vector<Scored>>& out) {
  out.assign(users.size(), {});
  check_serving_call(model, ServingCall::RecommendAll);
  if (users.empty() || k <= 0) return;
  // Item-kNN scores a user from the neighbour lists of the user's items: no dense
  // product to batch, so users are handed out one by one, each scored exactly as
  // recommend does (equal lists).
  if (model.kind() != ModelKind::ItemKnn && exclude_seen) require_seen(model, "recommend_all");
  if (model.kind() == ModelKind::Popularity || model.kind() == ModelKind::ItemKnn) {
    parallel_for(static_cast<int64_t>(users.size()), threads, cancel, [&](int64_t j, int) {
      recommend_user(model, users[j], k, exclude_seen, out[j]);
    });
    return;
  }
  require_factors(model, "recommend_all");
  const int64_t n_items = model.n_items();
  const int f = model.factors();
  const float* X = model.user_factors();
  const float* Y = model.item_factors();
  const float* bias = model.section_as<float>(SectionTag::ItemBias);
  const int64_t tasks = (static_cast<int64_t>(users.size()) + kBatchUsers - 1) / kBatchUsers;
  parallel_for(tasks, threads, cancel, [&](int64_t task, int) {
    const int64_t j0 = task * kBatchUsers;
    const int64_t nb = std::min<int64_t>(kBatchUsers, static_cast<int64_t>(users.size()) - j0);
    thread_local RowMatrix xb, scores;
    thread_local std::vector<RunningTopK> tops;
    thread_local std::vector<SeenItems> seen;
    thread_local std::vector<int64_t> seen_pos;
    xb.resize(nb, f);
    for (int64_t r = 0; r < nb; ++r)
      for (int c = 0; c < f; ++c) xb(r, c) = X[users[j0 + r] * f + c];
    tops.resize(static_cast<size_t>(nb));
    seen.assign(static_cast<size_t>(nb), SeenItems{});
    seen_pos.assign(static_cast<size_t>(nb), 0);
    for (int64_t r = 0; r < nb; ++r) {
      tops[r].reset(std::min(k, n_items));
      if (exclude_seen) seen[r] = seen_items(model, users[j0 + r]);
    }
    for (int64_t i0 = 0; i0 < n_items; i0 += kBatchItems) {
      const int64_t ni = std::min(kBatchItems, n_items - i0);
      if (f > 0) {
        scores.noalias() = xb * ConstRowMap(Y + i0 * f, ni, f).transpose();
      } else {
        scores.setZero(nb, ni);
      }
      for (int64_t r = 0; r < nb; ++r) {
        float* s = scores.data() + r * ni;
        if (bias)
          for (int64_t c = 0; c < ni; ++c) s[c] += bias[i0 + c];
        // Seen items of this block (sorted lists, walked once per user).
        const SeenItems& sv = seen[r];
        int64_t& p = seen_pos[r];
        while (p < sv.count && sv.items[p] < i0 + ni) s[sv.items[p++] - i0] = -INFINITY;
        RunningTopK& top = tops[r];
        float th = top.threshold();
        for (int64_t c = 0; c < ni; ++c) {
          if (s[c] < th || s[c] == -INFINITY) continue;
          top.offer(s[c], static_cast<int32_t>(i0 + c));
          th = top.threshold();
        }
      }
    }
    for (int64_t r = 0; r < nb; ++r) {
      std::vector<Scored>& dst = out[j0 + r];
      dst = tops[r].heap;
      std::sort(dst.begin(), dst.end(), ranks_before);
    }
  });
}

}  // namespace recsys

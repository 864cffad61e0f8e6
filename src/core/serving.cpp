#include "serving.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

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

void require_factors(const ModelView& m, const char* what) {
  if (!m.user_factors() || !m.item_factors())
    fail(ErrorKind::NotSupported, std::string(what) + " needs a factor model; this model is " +
                                      model_kind_name(m.kind()) + " and has no learned factors");
}

}  // namespace

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

int64_t recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                       std::vector<Scored>& out) {
  require_factors(model, "recommend");
  const int64_t n = model.n_items();
  const int f = model.factors();
  std::vector<float>& scores = scratch(n);
  Eigen::Map<Eigen::VectorXf> s(scores.data(), n);
  s.noalias() = ConstRowMap(model.item_factors(), n, f) * ConstVecMap(model.user_factors() + user * f, f);
  if (const float* bias = model.section_as<float>(SectionTag::ItemBias)) s += ConstVecMap(bias, n);
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
  Eigen::Map<Eigen::VectorXf> s(scores.data(), rows);
  s.noalias() = ConstRowMap(factors, rows, f) * ConstVecMap(factors + row * f, f);
  float self = norms[row];
  for (int64_t i = 0; i < rows; ++i) {
    float d = norms[i] * self;
    scores[i] = d > 0 ? scores[i] / d : 0.0f;
  }
  return top_k(scores.data(), rows, k, [row](int64_t i) { return i == row; }, out);
}

}  // namespace

int64_t similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out) {
  const float* norms = model.section_as<float>(SectionTag::ItemNorms);
  if (!model.item_factors() || !norms)
    fail(ErrorKind::NotSupported,
         std::string("similar_items needs item factors; this model is ") + model_kind_name(model.kind()));
  return cosine_neighbours(model.item_factors(), norms, model.n_items(), model.factors(), item, k, out);
}

int64_t similar_users(const ModelView& model, int64_t user, int64_t k, std::vector<Scored>& out) {
  const float* norms = model.section_as<float>(SectionTag::UserNorms);
  if (!model.user_factors() || !norms)
    fail(ErrorKind::NotSupported,
         std::string("similar_users needs user factors; this model is ") + model_kind_name(model.kind()));
  return cosine_neighbours(model.user_factors(), norms, model.n_users(), model.factors(), user, k, out);
}

float score_pair(const ModelView& model, int64_t user, int64_t item) {
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

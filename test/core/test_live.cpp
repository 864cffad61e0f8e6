// Live serving in the core: fold-in (implicit ALS equals the training's user step, biased
// MF equals a direct ridge solve), candidate filters (equal to brute force on random
// models: include, exclude, both, duplicates, unknown-free indices, k >= allowed) and the
// ALS explanation (contributions sum to the folded-in user's score).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "als.h"
#include "fold_in.h"
#include "keys.h"
#include "knn.h"
#include "model_bytes.h"
#include "model_format.h"
#include "serving.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {

struct Built {
  Model model;
  std::vector<float> user_factors, item_factors, bias;
  std::vector<std::vector<int32_t>> seen;
};

// A factor model (ALS, or biased MF with item biases) with Gaussian factors, the seen
// items of every user, popularity sections, and the rating range / mean of MF.
// With similar > 0, the model also stores that many similar items per item.
Built random_model(ModelKind kind, int64_t users, int64_t items, int f, uint64_t seed, int64_t similar = 0) {
  Built out;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 0.5f);
  out.user_factors.resize(static_cast<size_t>(users * f));
  out.item_factors.resize(static_cast<size_t>(items * f));
  for (auto& v : out.user_factors) v = g(rng);
  for (auto& v : out.item_factors) v = g(rng);
  out.bias.resize(static_cast<size_t>(items));
  for (auto& v : out.bias) v = g(rng);
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> all;
  std::vector<float> pop(static_cast<size_t>(items), 0.0f);
  for (int64_t u = 0; u < users; ++u) {
    std::vector<int32_t> mine;
    for (int e = 0, n = static_cast<int>(rng() % 20); e < n; ++e) mine.push_back(static_cast<int32_t>(rng() % items));
    std::sort(mine.begin(), mine.end());
    mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
    for (int32_t i : mine) pop[i] += 1;
    all.insert(all.end(), mine.begin(), mine.end());
    indptr.push_back(static_cast<int64_t>(all.size()));
    out.seen.push_back(mine);
  }
  std::vector<uint8_t> csr(indptr.size() * 8 + all.size() * 4);
  std::memcpy(csr.data(), indptr.data(), indptr.size() * 8);
  if (!all.empty()) std::memcpy(csr.data() + indptr.size() * 8, all.data(), all.size() * 4);
  ModelBuilder b;
  b.header.kind = static_cast<uint16_t>(kind);
  b.header.user_key_kind = static_cast<uint8_t>(KeyKind::Int);
  b.header.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  b.header.user_type_oid = 20;
  b.header.item_type_oid = 20;
  b.header.factors = static_cast<uint32_t>(f);
  b.header.n_users = static_cast<uint64_t>(users);
  b.header.n_items = static_cast<uint64_t>(items);
  b.header.global_mean = 3.5;
  b.header.rating_min = 1;
  b.header.rating_max = 5;
  b.add_array(SectionTag::UserFactors, out.user_factors);
  b.add_array(SectionTag::ItemFactors, out.item_factors);
  b.add_array(SectionTag::UserNorms, row_norms(out.user_factors.data(), users, f));
  b.add_array(SectionTag::ItemNorms, row_norms(out.item_factors.data(), items, f));
  if (kind == ModelKind::BiasedMf) b.add_array(SectionTag::ItemBias, out.bias);
  b.add_array(SectionTag::ItemPopularity, pop);
  b.add_array(SectionTag::PopularOrder, popularity_order(pop));
  b.add(SectionTag::UserItems, std::move(csr));
  CancelToken never;
  add_similar_sections(b, similar_item_lists(out.item_factors.data(), row_norms(out.item_factors.data(), items, f).data(),
                                             items, f, similar, 2, never));
  out.model = write_model(b);
  return out;
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t j = 0; j < a.size(); ++j) {
    num += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
    den += double(b[j]) * b[j];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

// The training's user step (cg_solve_row, run to convergence from zero) for the same
// item factors, alpha and lambda: fold-in gives the same vector to 1e-4 relative.
TEST(FoldIn, AlsEqualsTheTrainingUserStep) {
  const int f = 16;
  Built b = random_model(ModelKind::ImplicitAls, 30, 200, f, 3);
  const ModelView v = b.model.view();
  const float alpha = 2.5f, lambda = 0.3f;
  const std::vector<double> gram = item_gram(v.item_factors(), v.n_items(), f);
  std::vector<float> yty(static_cast<size_t>(f * f));
  for (int a = 0; a < f; ++a)
    for (int c = 0; c < f; ++c) yty[a * f + c] = static_cast<float>(gram[a * f + c] + (a == c ? lambda : 0.0));
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 20; ++trial) {
    // Distinct items with weights (some negative: p = 0 but confidence > 1), as training sees them.
    std::vector<int32_t> items;
    for (int e = 0; e < 5 + trial; ++e) items.push_back(static_cast<int32_t>(rng() % 200));
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    std::vector<float> w;
    for (size_t e = 0; e < items.size(); ++e) w.push_back(e % 4 == 3 ? -1.0f : 1.0f + static_cast<float>(rng() % 5));
    std::vector<float> cg(f, 0.0f);
    cg_solve_row(yty.data(), v.item_factors(), f, items.data(), w.data(), static_cast<int64_t>(items.size()), alpha,
                 200, cg.data());
    History h;
    for (int32_t i : items) h.items.push_back(i);
    h.weights = w;
    std::vector<float> x(f);
    als_fold_in(v, gram.data(), alpha, lambda, h, x.data());
    EXPECT_LT(rel_diff(x, cg), 1e-4) << "trial " << trial;
    // Without the cached gram: the same vector.
    std::vector<float> x2(f);
    als_fold_in(v, nullptr, alpha, lambda, h, x2.data());
    EXPECT_LT(rel_diff(x2, x), 1e-6);
  }
}

// Duplicates add up (as the training matrix sums them); weights summing to 0 drop out.
TEST(FoldIn, AlsDuplicatesAddUp) {
  const int f = 8;
  Built b = random_model(ModelKind::ImplicitAls, 10, 50, f, 4);
  const ModelView v = b.model.view();
  History dup, merged, cancelled;
  dup.items = {3, 7, 3, 9, 9};
  dup.weights = {1, 2, 2, 1, -1};
  merged.items = {3, 7};
  merged.weights = {3, 2};
  std::vector<float> a(f), c(f);
  als_fold_in(v, nullptr, 1.0, 0.1, dup, a.data());
  als_fold_in(v, nullptr, 1.0, 0.1, merged, c.data());
  EXPECT_LT(rel_diff(a, c), 1e-6);
  History none;
  als_fold_in(v, nullptr, 1.0, 0.1, none, a.data());
  for (float t : a) EXPECT_EQ(t, 0.0f);
  cancelled.items = {4};
  cancelled.weights = {std::nanf("")};
  EXPECT_THROW(als_fold_in(v, nullptr, 1.0, 0.1, cancelled, a.data()), Error);
  History bad;
  bad.items = {1, 2};
  bad.weights = {1};
  EXPECT_THROW(als_fold_in(v, nullptr, 1.0, 0.1, bad, a.data()), Error);
}

// Biased MF: the bias and factors equal the normal-equation solution of the ridge
// objective, written out here independently; the solution is a stationary point.
TEST(FoldIn, MfEqualsADirectRidgeSolve) {
  const int f = 6;
  Built b = random_model(ModelKind::BiasedMf, 10, 80, f, 5);
  const ModelView v = b.model.view();
  MfFoldParams p;
  p.reg_bias = 0.05;
  p.reg_factors = 0.7;
  p.reg_exponent = 0.5;
  p.sigma = 1.1;
  History h;
  h.items = {1, 5, 9, 20, 33, 40, 41, 60, 5};
  h.weights = {5, 4, 3, 1, 2, 5, 4, 3, 2};  // item 5 twice: averaged to 3
  float bias = 0;
  std::vector<float> x(f);
  mf_fold_in(v, p, h, &bias, x.data());
  // Direct: distinct items, averaged ratings.
  std::vector<std::pair<int, double>> r = {{1, 5}, {5, 3}, {9, 3}, {20, 1}, {33, 2}, {40, 5}, {41, 4}, {60, 3}};
  const double n = static_cast<double>(r.size());
  Eigen::MatrixXd D(r.size(), f + 1);
  Eigen::VectorXd t(r.size());
  for (size_t e = 0; e < r.size(); ++e) {
    D(e, 0) = 1;
    for (int j = 0; j < f; ++j) D(e, j + 1) = b.item_factors[r[e].first * f + j];
    t[e] = r[e].second - 3.5 - b.bias[r[e].first];
  }
  Eigen::MatrixXd P = Eigen::MatrixXd::Zero(f + 1, f + 1);
  P(0, 0) = n * p.reg_bias;
  for (int j = 1; j <= f; ++j) P(j, j) = n * p.reg_factors * std::pow(n, -p.reg_exponent) * p.sigma;
  Eigen::VectorXd z = (D.transpose() * D + P).colPivHouseholderQr().solve(D.transpose() * t);
  EXPECT_NEAR(bias, z[0], 1e-4 * std::max(1.0, std::fabs(z[0])));
  for (int j = 0; j < f; ++j) EXPECT_NEAR(x[j], z[j + 1], 1e-4 * std::max(1.0, std::fabs(z[j + 1])));
  // Gradient of the objective at the solution is ~0.
  Eigen::VectorXd zf(f + 1);
  zf[0] = bias;
  for (int j = 0; j < f; ++j) zf[j + 1] = x[j];
  Eigen::VectorXd grad = D.transpose() * (D * zf - t) + P * zf;
  EXPECT_LT(grad.norm(), 1e-3);
  // The baseline rule.
  MfFoldParams base;
  base.baseline = true;
  base.reg_user = 4;
  mf_fold_in(v, base, h, &bias, x.data());
  double s = 0;
  for (auto& [i, rr] : r) s += rr - 3.5 - b.bias[i];
  EXPECT_NEAR(bias, s / (4 + n), 1e-5);
}

namespace {

// Brute force: every item's score, the allowed ones ranked (score desc, index asc).
std::vector<Scored> brute(const std::vector<float>& scores, int64_t k, const std::vector<bool>& refused) {
  std::vector<Scored> all;
  for (size_t i = 0; i < scores.size(); ++i)
    if (!refused[i]) all.push_back(Scored{scores[i], static_cast<int32_t>(i)});
  std::sort(all.begin(), all.end(), ranks_before);
  if (static_cast<int64_t>(all.size()) > k) all.resize(static_cast<size_t>(k));
  return all;
}

// Same items in the same order; the same scores (to float rounding for the batch, whose
// GEMM sums in another order: `exact` = false).
void expect_same(const std::vector<Scored>& got, const std::vector<Scored>& want, const char* what,
                 bool exact = true) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t r = 0; r < got.size(); ++r) {
    EXPECT_EQ(got[r].index, want[r].index) << what << " rank " << r;
    if (exact)
      EXPECT_EQ(got[r].score, want[r].score) << what << " rank " << r;
    else
      EXPECT_NEAR(got[r].score, want[r].score, 1e-5) << what << " rank " << r;
  }
}

ItemFilter random_filter(std::mt19937_64& rng, int64_t items, int mode) {
  ItemFilter f;
  if (mode & 1) {
    f.has_include = true;
    const int n = static_cast<int>(rng() % 40);
    for (int e = 0; e < n; ++e) f.include.push_back(static_cast<int32_t>(rng() % items));  // duplicates likely
  }
  if (mode & 2) {
    const int n = static_cast<int>(rng() % 60);
    for (int e = 0; e < n; ++e) f.exclude.push_back(static_cast<int32_t>(rng() % items));
  }
  f.finish();
  return f;
}

}  // namespace

// recommend_user, recommend_vector, recommend_batch and similar_items with include,
// exclude and both equal brute force, with and without the pruned item order, for k
// below and above the number of allowed items.
TEST(Filters, EqualBruteForceOnRandomModels) {
  for (ModelKind kind : {ModelKind::ImplicitAls, ModelKind::BiasedMf}) {
    const int f = 12;
    const int64_t n_items = 300;
    Built b = random_model(kind, 40, n_items, f, kind == ModelKind::BiasedMf ? 7 : 8);
    const ModelView v = b.model.view();
    ItemOrder order;
    build_item_order(v, order);
    std::mt19937_64 rng(21);
    for (int trial = 0; trial < 60; ++trial) {
      const int mode = 1 + trial % 3;
      const ItemFilter filter = random_filter(rng, n_items, mode);
      const int64_t user = static_cast<int64_t>(rng() % 40);
      const int64_t k = trial % 4 == 0 ? 500 : 1 + static_cast<int64_t>(rng() % 15);
      // Every item's score by the serving kernel (score_pair rounds differently in the
      // last bit), from the unfiltered exhaustive list.
      std::vector<float> scores(n_items);
      std::vector<Scored> every;
      recommend_user(v, user, n_items, false, every);
      ASSERT_EQ(static_cast<int64_t>(every.size()), n_items);
      for (const Scored& s : every) {
        scores[s.index] = s.score;
        EXPECT_NEAR(s.score, score_pair(v, user, s.index), 1e-5);
      }
      std::vector<bool> refused(n_items);
      for (int64_t i = 0; i < n_items; ++i)
        refused[i] = !filter.allows(static_cast<int32_t>(i)) ||
                     std::binary_search(b.seen[user].begin(), b.seen[user].end(), static_cast<int32_t>(i));
      const std::vector<Scored> want = brute(scores, k, refused);
      std::vector<Scored> got;
      recommend_user(v, user, k, true, got, nullptr, &filter);
      expect_same(got, want, "recommend_user");
      recommend_user(v, user, k, true, got, &order, &filter);
      expect_same(got, want, "recommend_user pruned");
      recommend_vector(v, v.user_factors() + user * f, k, b.seen[user], &filter, got, &order);
      expect_same(got, want, "recommend_vector");
      std::vector<std::vector<Scored>> batch;
      CancelToken never;
      recommend_batch(v, {user, (user + 1) % 40}, k, true, 2, never, batch, &order, &filter);
      expect_same(batch[0], want, "recommend_batch", false);
      // similar_items: cosine to the item, the item itself left out.
      const int64_t item = static_cast<int64_t>(rng() % n_items);
      std::vector<float> cos(n_items);
      const float* Y = v.item_factors();
      const float* norms = v.section_as<float>(SectionTag::ItemNorms);
      std::vector<Scored> unfiltered;
      similar_items(v, item, n_items, unfiltered);
      for (const Scored& s : unfiltered) cos[s.index] = s.score;
      std::vector<bool> refused_sim(n_items);
      for (int64_t i = 0; i < n_items; ++i) refused_sim[i] = i == item || !filter.allows(static_cast<int32_t>(i));
      similar_items(v, item, k, got, &filter);
      const std::vector<Scored> want_sim = brute(cos, k, refused_sim);
      ASSERT_EQ(got.size(), want_sim.size());
      for (size_t r = 0; r < got.size(); ++r) {
        EXPECT_EQ(got[r].index, want_sim[r].index);
        double dotp = 0;
        for (int j = 0; j < f; ++j) dotp += double(Y[item * f + j]) * Y[got[r].index * f + j];
        EXPECT_NEAR(got[r].score, dotp / (double(norms[item]) * norms[got[r].index]), 1e-5);
      }
      // k >= allowed: every allowed item comes back.
      if (k == 500) {
        int64_t allowed = 0;
        for (int64_t i = 0; i < n_items; ++i) allowed += !refused[i];
        EXPECT_EQ(static_cast<int64_t>(want.size()), allowed);
      }
    }
  }
}

TEST(Filters, PopularityFiltered) {
  Built b = random_model(ModelKind::ImplicitAls, 40, 100, 4, 12);
  const ModelView v = b.model.view();
  const float* pop = v.section_as<float>(SectionTag::ItemPopularity);
  const int32_t* order = v.section_as<int32_t>(SectionTag::PopularOrder);
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 30; ++trial) {
    const ItemFilter filter = random_filter(rng, 100, 1 + trial % 3);
    std::vector<int32_t> skip = {1, 2, 3};
    std::vector<Scored> got;
    const int64_t k = 1 + trial;
    recommend_popular_filtered(v, k, skip, &filter, got);
    std::vector<Scored> want;
    for (int r = 0; r < 100 && static_cast<int64_t>(want.size()) < k; ++r) {
      const int32_t i = order[r];
      if (filter.allows(i) && !std::binary_search(skip.begin(), skip.end(), i)) want.push_back(Scored{pop[i], i});
    }
    expect_same(got, want, "popular");
  }
}

// The explanation's contributions sum to the folded-in user's score of the item.
TEST(Explain, AlsContributionsSumToTheScore) {
  const int f = 10;
  Built b = random_model(ModelKind::ImplicitAls, 10, 120, f, 13);
  const ModelView v = b.model.view();
  History h;
  h.items = {4, 8, 15, 16, 23, 42, 8};
  h.weights = {1, 2, 3, 1, 1, 2, 1};
  std::vector<float> x(f);
  als_fold_in(v, nullptr, 1.5, 0.2, h, x.data());
  for (int64_t item : {0, 7, 42, 100}) {
    std::vector<std::pair<int32_t, double>> parts;
    const double total = als_explain(v, nullptr, 1.5, 0.2, h, item, parts);
    EXPECT_EQ(parts.size(), 6u);  // distinct items
    double sum = 0;
    for (auto& p : parts) sum += p.second;
    double score = 0;
    for (int j = 0; j < f; ++j) score += double(x[j]) * v.item_factors()[item * f + j];
    EXPECT_NEAR(sum, total, 1e-9);
    EXPECT_NEAR(sum, score, 1e-4 * std::max(1.0, std::fabs(score)));
  }
}

// ---------------------------------------------------------------- stored similar-item lists

// The lists are what similar_items computes by scoring every item: the same items, the
// same order, the same score bits, for any thread count.
TEST(SimilarLists, AreTheScoredTopNToTheBit) {
  for (int f : {5, 12, 64}) {
    const int64_t n = 230;  // not a multiple of the row block or of 4
    Built plain = random_model(ModelKind::ImplicitAls, 10, n, f, 40 + f);
    const ModelView v = plain.model.view();
    const float* norms = v.section_as<float>(SectionTag::ItemNorms);
    CancelToken never;
    for (int64_t length : {1, 17, 229, 500}) {
      const NeighbourLists one = similar_item_lists(v.item_factors(), norms, n, f, length, 1, never);
      const NeighbourLists two = similar_item_lists(v.item_factors(), norms, n, f, length, 2, never);
      EXPECT_EQ(one.indptr, two.indptr);
      EXPECT_EQ(one.indices, two.indices);
      EXPECT_EQ(one.scores, two.scores);
      const int64_t per = std::min<int64_t>(length, n - 1);
      ASSERT_EQ(one.indptr.back(), n * per);
      std::vector<Scored> want;
      for (int64_t i = 0; i < n; ++i) {
        similar_items(v, i, per, want);
        ASSERT_EQ(one.indptr[i + 1] - one.indptr[i], per);
        std::vector<Scored> got;
        for (int64_t p = one.indptr[i]; p < one.indptr[i + 1]; ++p) got.push_back(Scored{one.scores[p], one.indices[p]});
        expect_same(got, want, "stored list");
      }
    }
  }
}

// similar_items on a model with lists equals the model without them for every item, k
// below, at and above the list's length, with include / exclude / both filters (the
// list is filtered, and scoring takes over when it runs out).
TEST(SimilarLists, ServeExactlyWhatScoringGives) {
  for (ModelKind kind : {ModelKind::ImplicitAls, ModelKind::BiasedMf}) {
    for (int64_t length : {3, 20, 299}) {
      const int64_t n = 300;
      Built with = random_model(kind, 10, n, 12, 77, length);
      Built without = random_model(kind, 10, n, 12, 77);
      ASSERT_NE(with.model.view().section(SectionTag::SimilarIndptr), nullptr);
      ASSERT_EQ(without.model.view().section(SectionTag::SimilarIndptr), nullptr);
      std::mt19937_64 rng(length);
      std::vector<Scored> a, b;
      for (int64_t item = 0; item < n; item += 7) {
        for (int64_t k : {int64_t(1), length - 1, length, length + 1, int64_t(500)}) {
          if (k <= 0) continue;
          similar_items(with.model.view(), item, k, a);
          similar_items(without.model.view(), item, k, b);
          expect_same(a, b, "unfiltered");
          for (int mode = 1; mode <= 3; ++mode) {
            const ItemFilter filter = random_filter(rng, n, mode);
            similar_items(with.model.view(), item, k, a, &filter);
            similar_items(without.model.view(), item, k, b, &filter);
            expect_same(a, b, "filtered");
          }
        }
      }
    }
  }
}

// The call reads the stored list (an altered entry shows up), and the default length
// follows the catalogue size.
TEST(SimilarLists, AreReadAndSizedByTheCatalogue) {
  Built b = random_model(ModelKind::ImplicitAls, 5, 50, 8, 3, 10);
  const ModelView v = b.model.view();
  int32_t* indices = const_cast<int32_t*>(v.section_as<int32_t>(SectionTag::SimilarIndices));
  std::vector<Scored> out;
  similar_items(v, 0, 1, out);
  ASSERT_EQ(out.size(), 1u);
  const int32_t stored = out[0].index;
  indices[0] = stored == 1 ? 2 : 1;  // what scoring could not give
  similar_items(v, 0, 1, out);
  EXPECT_EQ(out[0].index, indices[0]);
  similar_items(v, 0, 11, out);  // beyond the list: scored, so the true first item again
  EXPECT_EQ(out[0].index, stored);

  EXPECT_EQ(similar_list_length(-1, 1000, 64), kDefaultSimilarItems);
  EXPECT_EQ(similar_list_length(-1, 40, 64), 39);
  EXPECT_EQ(similar_list_length(-1, kSimilarListsMaxItems + 1, 64), 0);
  EXPECT_EQ(similar_list_length(500, kSimilarListsMaxItems + 1, 64), 500);
  EXPECT_EQ(similar_list_length(7, 1000, 0), 0);  // no factors, no cosine
  EXPECT_EQ(similar_list_length(0, 1000, 64), 0);
  EXPECT_EQ(similar_list_length(-1, 1, 64), 0);
}

TEST(SimilarLists, ACancelledBuildThrows) {
  Built b = random_model(ModelKind::ImplicitAls, 5, 400, 8, 3);
  const ModelView v = b.model.view();
  CancelToken cancelled;
  cancelled.cancel();
  try {
    similar_item_lists(v.item_factors(), v.section_as<float>(SectionTag::ItemNorms), 400, 8, 10, 2, cancelled);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
}

// The reader refuses lists that list an item beside itself, out of order, or of the
// wrong size.
TEST(SimilarLists, MalformedListsAreRejected) {
  const int64_t n = 4;
  auto build = [&](std::vector<int64_t> indptr, std::vector<int32_t> idx, std::vector<float> sc) {
    Built base = random_model(ModelKind::ImplicitAls, 3, n, 4, 9);
    const ModelView v = base.model.view();
    ModelBuilder b;
    b.header = *v.header;
    for (SectionTag t : {SectionTag::UserFactors, SectionTag::ItemFactors, SectionTag::UserNorms, SectionTag::ItemNorms,
                         SectionTag::ItemPopularity, SectionTag::PopularOrder, SectionTag::UserItems}) {
      uint64_t len = 0;
      const uint8_t* p = v.section(t, &len);
      b.add(t, std::vector<uint8_t>(p, p + len));
    }
    for (auto [tag, count] : {std::pair{SectionTag::UserKeys, 3}, std::pair{SectionTag::ItemKeys, int(n)}}) {
      KeyInterner keys(KeyKind::Int);
      for (int i = 0; i < count; ++i) keys.intern_int(i);
      b.add(tag, keys.dictionary_bytes(keys.sorted_order()));
    }
    NeighbourLists l{std::move(indptr), std::move(idx), std::move(sc)};
    add_similar_sections(b, std::move(l));
    Model m = write_model(b);
    try {
      validate_model(m.data(), m.size);
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  EXPECT_EQ(build({0, 1, 2, 3, 4}, {1, 0, 3, 2}, {0.5f, 0.5f, 0.1f, 0.1f}), "");
  EXPECT_NE(build({0, 1, 2, 3, 4}, {0, 0, 3, 2}, {0.5f, 0.5f, 0.1f, 0.1f}).find("own neighbour"), std::string::npos);
  EXPECT_NE(build({0, 2, 2, 3, 4}, {2, 1, 3, 2}, {0.1f, 0.5f, 0.1f, 0.1f}).find("sorted"), std::string::npos);
  EXPECT_NE(build({0, 1, 2, 3, 4}, {1, 0, 3, 9}, {0.5f, 0.5f, 0.1f, 0.1f}).find("range"), std::string::npos);
  EXPECT_NE(build({0, 1, 2, 3}, {1, 0, 3}, {0.5f, 0.5f, 0.1f}).find("size"), std::string::npos);
  EXPECT_NE(build({0, 1, 2, 3, 4}, {1, 0, 3, 2}, {0.5f, NAN, 0.1f, 0.1f}).find("non-finite"), std::string::npos);
}

// An include list on the pruned order (items visited by decreasing norm, stopping at the
// bound) gives the same list, to the bit, as scoring every included item, on a catalogue
// whose norms fall steeply (where the bound stops early) and with seen items skipped.
TEST(Filters, PrunedIncludeEqualsScoringEveryIncludedItem) {
  for (ModelKind kind : {ModelKind::ImplicitAls, ModelKind::BiasedMf}) {
    const int64_t n = 3000, users = 30;
    const int f = 16;
    Built b = random_model(kind, users, n, f, 5);
    // Steeply falling norms: item i scaled by 1 / (1 + i / 50), the factors rewritten in place.
    ModelView v = b.model.view();
    float* Y = const_cast<float*>(v.item_factors());
    float* norms = const_cast<float*>(v.section_as<float>(SectionTag::ItemNorms));
    for (int64_t i = 0; i < n; ++i) {
      const float scale = 1.0f / (1.0f + static_cast<float>(i) / 50.0f);
      for (int j = 0; j < f; ++j) Y[i * f + j] *= scale;
      norms[i] *= scale;
    }
    ItemOrder order;
    build_item_order(v, order);
    std::mt19937_64 rng(13);
    for (int trial = 0; trial < 40; ++trial) {
      ItemFilter filter;
      filter.has_include = true;
      for (int e = 0; e < 800; ++e) filter.include.push_back(static_cast<int32_t>(rng() % n));
      if (trial % 2) for (int e = 0; e < 100; ++e) filter.exclude.push_back(static_cast<int32_t>(rng() % 200));
      filter.finish();
      const int64_t user = static_cast<int64_t>(rng() % users);
      const int64_t k = trial % 3 == 0 ? 1 : trial % 3 == 1 ? 10 : 60;
      std::vector<Scored> pruned, every;
      recommend_user(v, user, k, true, pruned, &order, &filter);
      recommend_user(v, user, k, true, every, nullptr, &filter);
      expect_same(pruned, every, "pruned include");
    }
  }
}

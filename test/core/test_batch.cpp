// recommend_batch (recommend_all) and recommend_user with an ItemOrder on factor models: items go in decreasing-norm order and
// a user stops once its k-th best beats every remaining bound, so these tests check that
// the pruned lists are exactly the exhaustive ones (recommend_user scores every item),
// ties and seen items included, and that the pruning really skips work on skewed models.
//
// Factors here are small multiples of 1/4, so every dot product is exact in float32 in
// any summation order: GEMM and the per-user kernel agree to the bit, ties are frequent
// and their order (lower item index first) is checked exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "model_bytes.h"
#include "model_format.h"
#include "serving.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {


template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct Spec {
  int64_t users = 120;
  int64_t items = 600;
  int factors = 8;
  bool bias = false;
  bool skewed = true;       // item norms scaled by 1, 2, 4 or 8 (few large, many small)
  bool duplicates = false;  // every third item repeats the previous one (exact ties)
  bool zero_users = false;  // every fifth user has a zero vector (all scores tie)
  bool real_values = false; // Gaussian factors instead of multiples of 1/4
  uint64_t seed = 1;
};

// A factor model with the sections serving reads: factors, optional item biases, and the
// seen items (each user saw 0..30 items, the popular large-norm ones more often).
Model factor_model(const Spec& s) {
  std::mt19937_64 rng(s.seed);
  auto quarter = [&](int lo, int hi) { return static_cast<float>(lo + static_cast<int>(rng() % (hi - lo + 1))) / 4.0f; };
  std::vector<float> uf(static_cast<size_t>(s.users * s.factors)), itf(static_cast<size_t>(s.items * s.factors));
  for (int64_t u = 0; u < s.users; ++u)
    for (int c = 0; c < s.factors; ++c)
      uf[u * s.factors + c] = (s.zero_users && u % 5 == 0) ? 0.0f : quarter(-4, 4);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (int64_t i = 0; i < s.items; ++i) {
    const uint64_t r = rng() % 100;
    const float scale = !s.skewed ? 1.0f : r < 3 ? 8.0f : r < 10 ? 4.0f : r < 30 ? 2.0f : 1.0f;
    for (int c = 0; c < s.factors; ++c) {
      const float v = s.real_values ? gauss(rng) : quarter(-2, 2);
      itf[i * s.factors + c] = (s.duplicates && i % 3 == 2) ? itf[(i - 1) * s.factors + c] : scale * v;
    }
  }
  if (s.real_values)
    for (auto& v : uf) v = (v == 0.0f) ? 0.0f : gauss(rng);

  std::vector<float> bias(static_cast<size_t>(s.items));
  for (auto& b : bias) b = quarter(-8, 8);
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> seen;
  for (int64_t u = 0; u < s.users; ++u) {
    std::vector<int32_t> mine;
    const int count = static_cast<int>(rng() % 31);
    for (int e = 0; e < count; ++e) mine.push_back(static_cast<int32_t>(rng() % std::max<int64_t>(1, s.items / 8) * (rng() % 2 ? 1 : 8) % s.items));
    std::sort(mine.begin(), mine.end());
    mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
    seen.insert(seen.end(), mine.begin(), mine.end());
    indptr.push_back(static_cast<int64_t>(seen.size()));
  }
  std::vector<uint8_t> csr = bytes_of(indptr);
  std::vector<uint8_t> items = bytes_of(seen);
  csr.insert(csr.end(), items.begin(), items.end());

  ModelBuilder b;
  b.header.kind = static_cast<uint16_t>(s.bias ? ModelKind::BiasedMf : ModelKind::ImplicitAls);
  b.header.user_key_kind = static_cast<uint8_t>(KeyKind::Int);
  b.header.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  b.header.user_type_oid = 20;
  b.header.item_type_oid = 20;
  b.header.factors = static_cast<uint32_t>(s.factors);
  b.header.n_users = static_cast<uint64_t>(s.users);
  b.header.n_items = static_cast<uint64_t>(s.items);
  b.add_array(SectionTag::UserFactors, uf);
  b.add_array(SectionTag::ItemFactors, itf);
  if (s.bias) b.add_array(SectionTag::ItemBias, bias);
  b.add(SectionTag::UserItems, std::move(csr));
  return write_model(b);
}

std::vector<int64_t> all_users(const ModelView& v) {
  std::vector<int64_t> u(static_cast<size_t>(v.n_users()));
  for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<int64_t>(i);
  return u;
}

// Every user's batch list equals recommend_user's, index by index and score by score.
void expect_batch_equals_per_user(const ModelView& v, int64_t k, bool exclude_seen, int threads,
                                  const ItemOrder* order = nullptr) {
  std::vector<std::vector<Scored>> batch;
  CancelToken never;
  recommend_batch(v, all_users(v), k, exclude_seen, threads, never, batch, order);
  ASSERT_EQ(static_cast<int64_t>(batch.size()), v.n_users());
  // The same with an order that does not copy the factors (rows read by index).
  ItemOrder compact;
  build_item_order(v, compact, false);
  ASSERT_TRUE(compact.factors.empty());
  std::vector<std::vector<Scored>> batch_compact;
  recommend_batch(v, all_users(v), k, exclude_seen, threads, never, batch_compact, &compact);
  // The single-user pruned path (recommend with a cached order) must agree too.
  ItemOrder own;
  build_item_order(v, own);
  std::vector<Scored> one, pruned, pruned_compact;
  for (int64_t u = 0; u < v.n_users(); ++u) {
    recommend_user(v, u, k, exclude_seen, one);
    recommend_user(v, u, k, exclude_seen, pruned, &own);
    recommend_user(v, u, k, exclude_seen, pruned_compact, &compact);
    ASSERT_EQ(batch[u].size(), one.size()) << "user " << u << " k " << k;
    ASSERT_EQ(batch_compact[u].size(), one.size()) << "user " << u << " k " << k;
    ASSERT_EQ(pruned.size(), one.size()) << "user " << u << " k " << k;
    ASSERT_EQ(pruned_compact.size(), one.size()) << "user " << u << " k " << k;
    for (size_t r = 0; r < one.size(); ++r) {
      ASSERT_EQ(batch[u][r].index, one[r].index) << "user " << u << " rank " << r << " k " << k;
      ASSERT_EQ(batch[u][r].score, one[r].score) << "user " << u << " rank " << r;
      ASSERT_EQ(batch_compact[u][r].index, one[r].index) << "compact batch, user " << u << " rank " << r;
      ASSERT_EQ(batch_compact[u][r].score, one[r].score) << "compact batch, user " << u << " rank " << r;
      ASSERT_EQ(pruned[r].index, one[r].index) << "pruned recommend, user " << u << " rank " << r << " k " << k;
      ASSERT_EQ(pruned[r].score, one[r].score) << "pruned recommend, user " << u << " rank " << r;
      ASSERT_EQ(pruned_compact[r].index, one[r].index) << "compact pruned, user " << u << " rank " << r;
      ASSERT_EQ(pruned_compact[r].score, one[r].score) << "compact pruned, user " << u << " rank " << r;
    }
  }
}

double scored_fraction(const ModelView& v, int64_t k) {
  std::vector<std::vector<Scored>> batch;
  CancelToken never;
  const BatchStats before = batch_stats();
  recommend_batch(v, all_users(v), k, true, 2, never, batch);
  const BatchStats after = batch_stats();
  return static_cast<double>(after.scored - before.scored) / static_cast<double>(after.exhaustive - before.exhaustive);
}

}  // namespace

TEST(RecommendBatch, EqualsPerUserOnSkewedModels) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    Spec s;
    s.seed = seed;
    s.factors = static_cast<int>(4 + seed * 5);  // 9, 14, 19: not multiples of the vector width
    const Model m = factor_model(s);
    for (int64_t k : {1, 10, 37})
      for (bool excl : {true, false}) expect_batch_equals_per_user(m.view(), k, excl, 2);
  }
}

TEST(RecommendBatch, EqualsPerUserWithItemBiases) {
  Spec s;
  s.bias = true;
  s.factors = 16;
  const Model m = factor_model(s);
  for (int64_t k : {1, 5, 50}) expect_batch_equals_per_user(m.view(), k, true, 3);
  s.skewed = false;
  const Model flat = factor_model(s);
  expect_batch_equals_per_user(flat.view(), 10, true, 1);
}

TEST(RecommendBatch, TiesGoToTheLowerItemIndex) {
  Spec s;
  s.duplicates = true;
  s.zero_users = true;  // a zero vector scores every item 0: the k lowest unseen indices
  s.factors = 3;
  const Model m = factor_model(s);
  expect_batch_equals_per_user(m.view(), 10, true, 2);
  expect_batch_equals_per_user(m.view(), 10, false, 2);
  std::vector<std::vector<Scored>> batch;
  CancelToken never;
  recommend_batch(m.view(), {0}, 4, false, 1, never, batch);
  ASSERT_EQ(batch[0].size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(batch[0][r].index, r);
    EXPECT_EQ(batch[0][r].score, 0.0f);
  }
}

TEST(RecommendBatch, KAtOrAboveTheCatalogReturnsEveryUnseenItem) {
  Spec s;
  s.items = 40;
  s.users = 30;
  const Model m = factor_model(s);
  expect_batch_equals_per_user(m.view(), 40, true, 2);
  expect_batch_equals_per_user(m.view(), 45, false, 2);
  std::vector<std::vector<Scored>> batch;
  CancelToken never;
  recommend_batch(m.view(), all_users(m.view()), 1000, true, 2, never, batch);
  for (int64_t u = 0; u < 30; ++u) EXPECT_EQ(static_cast<int64_t>(batch[u].size()), 40 - seen_items(m.view(), u).count);
}

TEST(RecommendBatch, ZeroFactorsStillRankByBias) {
  Spec s;
  s.factors = 0;
  s.bias = true;
  const Model m = factor_model(s);
  expect_batch_equals_per_user(m.view(), 7, true, 2);
}

TEST(RecommendBatch, SkipsMostOfASkewedCatalogButNotOfAFlatOne) {
  // 3% of the items have 8x the norm of the tail: a top-5 is settled long before the tail.
  Spec s;
  s.items = 4000;
  s.users = 200;
  s.factors = 16;
  const Model skewed = factor_model(s);
  const double f_skewed = scored_fraction(skewed.view(), 5);
  EXPECT_LT(f_skewed, 0.5);
  EXPECT_GT(f_skewed, 0.0);
  // Equal norms: no bound ever beats the k-th score, every item is scored.
  s.skewed = false;
  const Model flat = factor_model(s);
  EXPECT_GT(scored_fraction(flat.view(), 5), 0.9);
}

TEST(RecommendBatch, AnOrderBuiltOnceServesEveryChunkAndAForeignOneIsIgnored) {
  Spec s;
  const Model m = factor_model(s);
  ItemOrder order;
  build_item_order(m.view(), order);
  ASSERT_EQ(static_cast<int64_t>(order.item.size()), s.items);
  for (size_t p = 1; p < order.bound.size(); ++p) ASSERT_GE(order.bound[p - 1], order.bound[p]);
  for (size_t p = 0; p < order.item.size(); ++p) ASSERT_EQ(order.position[order.item[p]], static_cast<int32_t>(p));
  expect_batch_equals_per_user(m.view(), 10, true, 2, &order);
  Spec other;
  other.items = 300;
  const Model o = factor_model(other);
  ItemOrder foreign;
  build_item_order(o.view(), foreign);
  expect_batch_equals_per_user(m.view(), 10, true, 2, &foreign);
  // recommend_user ignores an order built for another model (it scores every item).
  std::vector<Scored> with_foreign, plain;
  for (int64_t u = 0; u < s.users; ++u) {
    recommend_user(m.view(), u, 10, true, with_foreign, &foreign);
    recommend_user(m.view(), u, 10, true, plain);
    ASSERT_EQ(with_foreign.size(), plain.size());
    for (size_t r = 0; r < plain.size(); ++r) ASSERT_EQ(with_foreign[r].index, plain[r].index);
  }
}

TEST(RecommendBatch, ACancelledBatchThrowsCancelled) {
  Spec s;
  const Model m = factor_model(s);
  std::vector<std::vector<Scored>> batch;
  CancelToken cancelled;
  cancelled.cancel();
  try {
    recommend_batch(m.view(), all_users(m.view()), 10, true, 2, cancelled, batch);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
}

TEST(RecommendPruned, BitIdenticalToScoringEveryItemWithRealValuedFactors) {
  // Gaussian factors: any change of summation order would show in the last bits. The
  // pruned path scores rows in other groups of four than the exhaustive one.
  for (int f : {13, 32, 70}) {
    for (bool bias : {false, true}) {
      Spec s;
      s.real_values = true;
      s.factors = f;
      s.bias = bias;
      s.items = 997;  // not a multiple of 4 or of the pruning block
      const Model m = factor_model(s);
      const ModelView v = m.view();
      ItemOrder order, compact;
      build_item_order(v, order);
      build_item_order(v, compact, false);
      std::vector<Scored> plain, pruned;
      for (const ItemOrder* o : {&order, &compact})
        for (int64_t u = 0; u < v.n_users(); ++u)
          for (bool excl : {true, false}) {
            recommend_user(v, u, 10, excl, plain);
            recommend_user(v, u, 10, excl, pruned, o);
            ASSERT_EQ(pruned.size(), plain.size());
            for (size_t r = 0; r < plain.size(); ++r) {
              ASSERT_EQ(pruned[r].index, plain[r].index) << "f " << f << " user " << u << " rank " << r;
              ASSERT_EQ(pruned[r].score, plain[r].score) << "f " << f << " user " << u << " rank " << r;
            }
          }
    }
  }
}

// The hybrid cold-start step on planted data: two groups of users and items; new items
// of a group, known only by their metadata, land among that group's items.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "hybrid.h"
#include "model_bytes.h"
#include "serving.h"
#include "training.h"

namespace {

recsys_test::Model planted_als() {
  recsys::TrainingState st(recsys::KeyKind::Text, 25, recsys::KeyKind::Text, 25);
  for (int u = 0; u < 60; ++u)
    for (int k = 0; k < 6; ++k) {
      const std::string user = "u" + std::to_string(u);
      const std::string item = std::string(u % 2 ? "b" : "a") + std::to_string((u * 7 + k) % 10);
      const uint32_t ui = st.users.intern_bytes(reinterpret_cast<const uint8_t*>(user.data()), user.size());
      const uint32_t ii = st.items.intern_bytes(reinterpret_cast<const uint8_t*>(item.data()), item.size());
      st.add(ui, ii, 1.0);
    }
  recsys::AlsTrainingOptions o;
  o.als.factors = 8;
  o.als.seed = 1;
  recsys::CancelToken cancel;
  recsys::build_als_model(st, o, 1, cancel, [](const std::string&) {});
  return recsys_test::write_model(*st.result);
}

void add_item(recsys::ContentState& meta, const std::string& id, const char* group) {
  const uint32_t i = meta.items.intern_bytes(reinterpret_cast<const uint8_t*>(id.data()), id.size());
  if (group) meta.add_token(i, "group", group);
}

}  // namespace

TEST(Hybrid, NewItemsLandAmongTheirGroup) {
  const recsys_test::Model als = planted_als();
  recsys::ContentState meta(recsys::KeyKind::Text, 25);
  for (int n = 0; n < 10; ++n) {
    add_item(meta, "a" + std::to_string(n), "A");
    add_item(meta, "b" + std::to_string(n), "B");
  }
  add_item(meta, "a-new", "A");
  add_item(meta, "b-new", "B");
  add_item(meta, "bare", nullptr);
  recsys::CancelToken cancel;
  auto builder = recsys::build_hybrid_model(als.view(), meta, recsys::HybridSide::Items, recsys::HybridOptions{},
                                            cancel, [](const std::string&) {});
  const recsys_test::Model hy = recsys_test::write_model(*builder);
  ASSERT_NO_THROW(recsys::validate_model(hy.data(), hy.size));
  const recsys::ModelView v = hy.view();
  recsys::HybridCounts c;
  ASSERT_TRUE(recsys::hybrid_counts(v, &c));
  EXPECT_EQ(c.warm_items, 20);
  EXPECT_EQ(c.feature_only_items, 3);
  const recsys::KeyDictionary items = v.item_keys(), old_items = als.view().item_keys();
  auto find = [](const recsys::KeyDictionary& d, const std::string& k) {
    return d.find_bytes(reinterpret_cast<const uint8_t*>(k.data()), k.size());
  };
  // Warm items keep their factors bit for bit.
  for (int n = 0; n < 10; ++n) {
    const std::string k = "a" + std::to_string(n);
    EXPECT_EQ(0, std::memcmp(v.item_factors() + find(items, k) * 8, als.view().item_factors() + find(old_items, k) * 8,
                             8 * sizeof(float)));
  }
  // The new items' nearest items are their group's.
  for (const char* g : {"a", "b"}) {
    const int64_t item = find(items, std::string(g) + "-new");
    const float* y = v.item_factors() + item * 8;
    int same = 0;
    float best_other = -1e30f, worst_same = 1e30f;
    for (int n = 0; n < 10; ++n)
      for (const char* h : {"a", "b"}) {
        const float* z = v.item_factors() + find(items, std::string(h) + std::to_string(n)) * 8;
        float dot = 0, nz = 0, ny = 0;
        for (int f = 0; f < 8; ++f) dot += y[f] * z[f], nz += z[f] * z[f], ny += y[f] * y[f];
        const float cos = dot / std::sqrt(nz * ny);
        if (*h == *g) {
          worst_same = std::min(worst_same, cos);
          ++same;
        } else {
          best_other = std::max(best_other, cos);
        }
      }
    EXPECT_EQ(same, 10);
    EXPECT_GT(worst_same, best_other) << g;
  }
}

// The dense (Cholesky) and the iterative (CG) ridge solves give the same mapping, on
// more features than items (group tags plus many unique ones).
TEST(Hybrid, DenseAndIterativeRidgeSolvesAgree) {
  const recsys_test::Model als = planted_als();
  recsys::ContentState meta(recsys::KeyKind::Text, 25);
  for (int n = 0; n < 10; ++n)
    for (const char* g : {"a", "b"}) {
      const std::string id = g + std::to_string(n);
      const uint32_t i = meta.items.intern_bytes(reinterpret_cast<const uint8_t*>(id.data()), id.size());
      meta.add_token(i, "group", *g == 'a' ? "A" : "B");
      for (int t = 0; t < 30; ++t) meta.add_token(i, "tag", id + "-" + std::to_string(t) + "-" + std::to_string(t % 3));
      meta.add_token(i, "shared", "s" + std::to_string(n % 4));
    }
  for (const char* id : {"a-new", "b-new"}) {
    const uint32_t i = meta.items.intern_bytes(reinterpret_cast<const uint8_t*>(id), std::strlen(id));
    meta.add_token(i, "group", id[0] == 'a' ? "A" : "B");
    meta.add_token(i, "shared", "s1");
  }
  recsys::CancelToken cancel;
  recsys::HybridOptions dense, iterative;
  iterative.dense_max_features = 0;
  const recsys_test::Model a = recsys_test::write_model(*recsys::build_hybrid_model(
      als.view(), meta, recsys::HybridSide::Items, dense, cancel, [](const std::string&) {}));
  const recsys_test::Model b = recsys_test::write_model(*recsys::build_hybrid_model(
      als.view(), meta, recsys::HybridSide::Items, iterative, cancel, [](const std::string&) {}));
  const recsys::ModelView va = a.view(), vb = b.view();
  ASSERT_EQ(va.n_items(), vb.n_items());
  double num = 0, den = 0;
  for (int64_t k = 0; k < va.n_items() * 8; ++k) {
    const double d = double(va.item_factors()[k]) - vb.item_factors()[k];
    num += d * d;
    den += double(va.item_factors()[k]) * va.item_factors()[k];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5);
  EXPECT_GT(den, 0);
}

TEST(Hybrid, RejectsHostileFlags) {
  const recsys_test::Model als = planted_als();
  recsys::ContentState meta(recsys::KeyKind::Text, 25);
  add_item(meta, "a1", "A");
  add_item(meta, "zz", "A");
  recsys::CancelToken cancel;
  auto builder = recsys::build_hybrid_model(als.view(), meta, recsys::HybridSide::Items, recsys::HybridOptions{},
                                            cancel, [](const std::string&) {});
  recsys_test::Model hy = recsys_test::write_model(*builder);
  uint64_t len = 0;
  const uint8_t* flags = hy.view().section(recsys::SectionTag::ItemFeatureOnly, &len);
  ASSERT_NE(flags, nullptr);
  const_cast<uint8_t*>(flags)[0] = 7;
  EXPECT_THROW(recsys::validate_model(hy.data(), hy.size), recsys::Error);
}

// The shared model store's file layout: a planned file, written piece by piece into
// page-aligned memory, opens to the same model and the same derived serving data
// (recommendations through the borrowed item order equal those through an owned one);
// a file that does not match the value's header, is cut short, or has altered bytes is
// refused (altered model or derived bytes by the full check).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "fold_in.h"
#include "model_bytes.h"
#include "model_format.h"
#include "model_store.h"
#include "serving.h"

using namespace recsys;

namespace {

recsys_test::Model small_factor_model(bool bias, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t users = 50, items = 300;
  const int f = 6;
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> uf(users * f), itf(items * f), b(items);
  for (auto& v : uf) v = g(rng);
  for (auto& v : itf) v = g(rng) * (1 + static_cast<float>(rng() % 4));
  for (auto& v : b) v = g(rng);
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> seen;
  for (int64_t u = 0; u < users; ++u) {
    for (int32_t i = static_cast<int32_t>(u % 7); i < items; i += 37) seen.push_back(i);
    indptr.push_back(static_cast<int64_t>(seen.size()));
  }
  std::vector<uint8_t> csr(indptr.size() * 8 + seen.size() * 4);
  std::memcpy(csr.data(), indptr.data(), indptr.size() * 8);
  std::memcpy(csr.data() + indptr.size() * 8, seen.data(), seen.size() * 4);
  ModelBuilder mb;
  mb.header.kind = static_cast<uint16_t>(bias ? ModelKind::BiasedMf : ModelKind::ImplicitAls);
  mb.header.user_key_kind = static_cast<uint8_t>(KeyKind::Int);
  mb.header.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  mb.header.factors = f;
  mb.header.n_users = users;
  mb.header.n_items = items;
  mb.add_array(SectionTag::UserFactors, uf);
  mb.add_array(SectionTag::ItemFactors, itf);
  if (bias) mb.add_array(SectionTag::ItemBias, b);
  mb.add(SectionTag::UserItems, std::move(csr));
  recsys_test::Model m = recsys_test::write_model(mb);
  const uint32_t word = static_cast<uint32_t>(m.size << 2);  // as PostgreSQL's 4-byte header
  std::memcpy(m.data(), &word, 4);
  return m;
}

struct PageBuffer {
  std::unique_ptr<uint8_t, void (*)(void*)> p{nullptr, std::free};
  uint64_t size = 0;
};

PageBuffer write_file(const StorePlan& plan) {
  PageBuffer b;
  b.size = plan.header.file_bytes;
  b.p.reset(static_cast<uint8_t*>(std::aligned_alloc(4096, (b.size + 4095) / 4096 * 4096)));
  std::memset(b.p.get(), 0, b.size);
  std::memcpy(b.p.get(), &plan.header, sizeof plan.header);
  for (const StorePiece& piece : plan.pieces) std::memcpy(b.p.get() + piece.offset, piece.data, piece.length);
  return b;
}

}  // namespace

TEST(ModelStore, RoundTripServesTheSameLists) {
  for (bool bias : {false, true}) {
    for (bool copy : {true, false}) {
      recsys_test::Model m = small_factor_model(bias, bias ? 3 : 4);
      const ModelView v = m.view();
      ItemOrder order;
      build_item_order(v, order, copy);
      const std::vector<double> gram = item_gram(v.item_factors(), v.n_items(), v.factors());
      const StorePlan plan = plan_store_file(m.data(), m.size, &order, &gram);
      ASSERT_EQ(plan.header.file_bytes % kStorePartAlignment, 0u);
      EXPECT_LE(plan.header.file_bytes, store_file_bound(*v.header, true));
      PageBuffer file = write_file(plan);
      StoreView sv;
      open_store_file(file.p.get(), file.size, m.data(), true, &sv);
      ASSERT_TRUE(sv.has_order);
      EXPECT_TRUE(sv.order.item.borrowed());
      EXPECT_EQ(sv.order.factors.empty(), !copy);
      EXPECT_EQ(sv.model.size, m.size);
      EXPECT_EQ(std::memcmp(sv.model.base, m.data(), m.size), 0);
      ASSERT_NE(sv.gram, nullptr);
      EXPECT_EQ(std::memcmp(sv.gram, gram.data(), gram.size() * 8), 0);
      for (int64_t u = 0; u < v.n_users(); ++u) {
        std::vector<Scored> a, b, c;
        recommend_user(v, u, 10, true, a, &order);
        recommend_user(sv.model, u, 10, true, b, &sv.order);
        recommend_user(v, u, 10, true, c, nullptr);
        ASSERT_EQ(a.size(), b.size());
        ASSERT_EQ(a.size(), c.size());
        for (size_t j = 0; j < a.size(); ++j) {
          EXPECT_EQ(a[j].index, b[j].index);
          EXPECT_EQ(a[j].index, c[j].index);
          EXPECT_EQ(a[j].score, b[j].score);
        }
      }
      EXPECT_EQ(store_file_name(*v.header).size(), 16 + 1 + 16 + 1 + std::to_string(m.size).size() + 6);
    }
  }
}

TEST(ModelStore, RefusesFilesThatDoNotMatch) {
  recsys_test::Model m = small_factor_model(false, 5);
  const ModelView v = m.view();
  ItemOrder order;
  build_item_order(v, order, true);
  const StorePlan plan = plan_store_file(m.data(), m.size, &order, nullptr);
  PageBuffer file = write_file(plan);
  StoreView sv;
  // Another model's header expected (another fingerprint).
  recsys_test::Model other = small_factor_model(false, 6);
  EXPECT_THROW(open_store_file(file.p.get(), file.size, other.data(), false, &sv), Error);
  // Cut short.
  EXPECT_THROW(open_store_file(file.p.get(), file.size - 64, m.data(), false, &sv), Error);
  EXPECT_THROW(open_store_file(file.p.get(), 100, m.data(), false, &sv), Error);
  // A header byte changed: caught by the header hash.
  file.p.get()[20] ^= 1;
  EXPECT_THROW(open_store_file(file.p.get(), file.size, m.data(), false, &sv), Error);
  file.p.get()[20] ^= 1;
  open_store_file(file.p.get(), file.size, m.data(), true, &sv);
  // A factor byte of the model changed: only the full check reads it.
  const uint64_t factor_at = static_cast<uint64_t>(v.item_factors() - reinterpret_cast<const float*>(m.data())) * 4;
  file.p.get()[kStoreHeaderBytes + factor_at + 1] ^= 0x10;
  EXPECT_NO_THROW(open_store_file(file.p.get(), file.size, m.data(), false, &sv));
  EXPECT_THROW(open_store_file(file.p.get(), file.size, m.data(), true, &sv), Error);
  file.p.get()[kStoreHeaderBytes + factor_at + 1] ^= 0x10;
  // A byte of the derived item order changed.
  file.p.get()[plan.header.bound_offset + 2] ^= 0x40;
  EXPECT_THROW(open_store_file(file.p.get(), file.size, m.data(), true, &sv), Error);
}

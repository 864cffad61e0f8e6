// TrainingState (add / merge / serialize / deserialize), build_interaction_matrix, the
// ALS pipeline's independence from row order and plan shape, and serving on the
// trained model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "json_options.h"
#include "model_format.h"
#include "serving.h"
#include "training.h"

using recsys::ErrorKind;
using recsys::KeyKind;
using recsys::ModelView;
using recsys::Scored;
using recsys::SectionTag;
using recsys::TrainingState;

namespace {

using Bytes = std::vector<uint8_t>;

struct Row {
  int64_t user;
  std::string item;
  double weight;
};

const uint32_t kInt8Oid = 20, kTextOid = 25;

std::unique_ptr<TrainingState> new_state() {
  return std::make_unique<TrainingState>(KeyKind::Int, kInt8Oid, KeyKind::Text, kTextOid);
}

void add_row(TrainingState& st, const Row& r) {
  uint32_t u = st.users.intern_int(r.user);
  uint32_t i = st.items.intern_bytes(reinterpret_cast<const uint8_t*>(r.item.data()), r.item.size());
  st.add(u, i, r.weight);
}

void add_rows(TrainingState& st, const std::vector<Row>& rows, size_t begin, size_t end) {
  for (size_t r = begin; r < end; ++r) add_row(st, rows[r]);
}

// Random rows over 25 users and 16 items (one with a zero byte), weights exactly
// representable so sums are exact, plus duplicates that cancel out.
std::vector<Row> dataset(uint64_t seed = 11, int n = 400) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> items;
  for (char c = 'a'; c < 'a' + 15; ++c) items.push_back(std::string("item-") + c);
  items.push_back(std::string("item-\0z", 7));
  const double weights[] = {1, 2, 3, 0.5, -1, 1, 1};
  std::vector<Row> rows;
  for (int r = 0; r < n; ++r) {
    int64_t user = static_cast<int64_t>(rng() % 25) * 37 % 101 - 50;
    rows.push_back(Row{user, items[rng() % items.size()], weights[rng() % 7]});
  }
  // Pairs whose weights sum to zero (dropped from the matrix).
  rows.push_back(Row{1000, "item-a", 2.0});
  rows.push_back(Row{1000, "item-b", 1.0});
  rows.push_back(Row{1000, "item-a", -2.0});
  rows.push_back(Row{-1000, "item-c", 1.0});
  rows.push_back(Row{-1000, "item-c", 1.0});
  rows.push_back(Row{-1000, "item-c", -2.0});
  rows.push_back(Row{-1000, "item-d", 4.0});
  return rows;
}

recsys::AlsTrainingOptions small_options(bool store_seen = true) {
  auto o = recsys::parse_als_options("{\"factors\": 6, \"iterations\": 4, \"regularization\": 0.05}");
  o.store_seen = store_seen;
  return o;
}

// Trains and writes the model (8-byte aligned, exact size).
Bytes train(TrainingState& st, const recsys::AlsTrainingOptions& o, int threads = 1) {
  recsys::CancelToken cancel;
  recsys::build_als_model(st, o, threads, cancel, [](const std::string&) {});
  EXPECT_TRUE(st.result != nullptr);
  if (!st.result) return {};
  Bytes out(st.result->total_size());
  st.result->write(out.data());
  return out;
}

uint64_t fingerprint(const Bytes& b) {
  recsys::ModelHeader h;
  std::memcpy(&h, b.data(), sizeof h);
  return h.fingerprint;
}

uint64_t fingerprint_of_rows(const std::vector<Row>& rows, uint64_t skipped = 0) {
  auto st = new_state();
  add_rows(*st, rows, 0, rows.size());
  st->rows_skipped = skipped;
  return fingerprint(train(*st, small_options()));
}

Bytes serialize(const TrainingState& st) {
  Bytes b(st.serialized_size());
  st.serialize(b.data());
  return b;
}

template <class Fn>
void expect_error_kind(Fn fn, ErrorKind kind, const std::string& needle = "") {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const recsys::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    if (!needle.empty()) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a recsys::Error: " << e.what();
  }
}

// The expected matrix: summed weights by (user key, item key), zero sums removed.
std::map<std::pair<int64_t, std::string>, double> expected_sums(const std::vector<Row>& rows) {
  std::map<std::pair<int64_t, std::string>, double> sums;
  for (const Row& r : rows) sums[{r.user, r.item}] += static_cast<float>(r.weight);
  for (auto it = sums.begin(); it != sums.end();) it = it->second == 0 ? sums.erase(it) : std::next(it);
  return sums;
}

}  // namespace

// ---------------------------------------------------------------- adding rows

TEST(TrainingState, AddRejectsNonFiniteAndOutOfRangeWeights) {
  auto st = new_state();
  uint32_t u = st->users.intern_int(1);
  uint32_t i = st->items.intern_bytes(reinterpret_cast<const uint8_t*>("x"), 1);
  st->add(u, i, 1.5);
  expect_error_kind([&] { st->add(u, i, std::numeric_limits<double>::quiet_NaN()); }, ErrorKind::DataException,
                    "NaN");
  expect_error_kind([&] { st->add(u, i, std::numeric_limits<double>::infinity()); }, ErrorKind::DataException,
                    "Infinity");
  expect_error_kind([&] { st->add(u, i, -std::numeric_limits<double>::infinity()); }, ErrorKind::DataException,
                    "-Infinity");
  expect_error_kind([&] { st->add(u, i, 1e39); }, ErrorKind::DataException);
  expect_error_kind([&] { st->add(u, i, -1e300); }, ErrorKind::DataException);
  EXPECT_EQ(st->log.size(), 1u);  // nothing was added by the failed calls
  st->add(u, i, -3e38);           // large but representable as real
  st->add(u, i, 0.0);
  EXPECT_EQ(st->log.size(), 3u);
  EXPECT_EQ(st->log[0].weight, 1.5f);
  EXPECT_EQ(st->log[2].weight, 0.0f);
}

TEST(TrainingState, InteractionLogCrossesChunks) {
  recsys::InteractionLog log;
  const uint64_t n = recsys::InteractionLog::kChunk * 2 + 17;
  for (uint64_t r = 0; r < n; ++r) log.add(static_cast<uint32_t>(r), static_cast<uint32_t>(r % 7), float(r % 5));
  ASSERT_EQ(log.size(), n);
  for (uint64_t r = 0; r < n; r += 4099) {
    EXPECT_EQ(log[r].user, r);
    EXPECT_EQ(log[r].item, r % 7);
    EXPECT_EQ(log[r].weight, float(r % 5));
  }
  EXPECT_EQ(log[n - 1].user, n - 1);
  EXPECT_GE(log.memory_bytes(), n * sizeof(recsys::Triplet));
  log.clear();
  EXPECT_EQ(log.size(), 0u);
  log.add(1, 2, 3);
  EXPECT_EQ(log[0].item, 2u);
}

// ---------------------------------------------------------------- interaction matrix

TEST(InteractionMatrix, SumsDuplicatesDropsZerosSortsColumns) {
  const std::vector<Row> rows = dataset();
  auto st = new_state();
  add_rows(*st, rows, 0, rows.size());
  std::vector<uint32_t> uorder = st->users.sorted_order(), iorder = st->items.sorted_order();
  recsys::CancelToken cancel;
  recsys::CsrMatrix m = recsys::build_interaction_matrix(*st, recsys::KeyInterner::invert(uorder),
                                                         recsys::KeyInterner::invert(iorder), cancel);
  auto want = expected_sums(rows);
  ASSERT_EQ(m.rows, static_cast<int64_t>(uorder.size()));
  ASSERT_EQ(m.cols, static_cast<int64_t>(iorder.size()));
  ASSERT_EQ(m.indptr.size(), static_cast<size_t>(m.rows) + 1);
  EXPECT_EQ(m.indptr[0], 0);
  EXPECT_EQ(m.nnz(), static_cast<int64_t>(want.size()));
  EXPECT_EQ(m.values.size(), m.indices.size());
  std::map<std::pair<int64_t, std::string>, double> got;
  for (int64_t u = 0; u < m.rows; ++u) {
    for (int64_t k = m.indptr[u]; k < m.indptr[u + 1]; ++k) {
      if (k > m.indptr[u]) {
        EXPECT_LT(m.indices[k - 1], m.indices[k]) << "row " << u;
      }
      ASSERT_GE(m.indices[k], 0);
      ASSERT_LT(m.indices[k], m.cols);
      EXPECT_NE(m.values[k], 0.0f);
      uint64_t len;
      const uint8_t* p = st->items.bytes_key(iorder[m.indices[k]], &len);
      got[{st->users.int_key(uorder[u]), std::string(reinterpret_cast<const char*>(p), len)}] = m.values[k];
    }
  }
  EXPECT_EQ(got, want);
  // The cancelling pairs are gone; their users' other items remain.
  EXPECT_EQ(got.count({1000, "item-a"}), 0u);
  EXPECT_EQ(got.count({-1000, "item-c"}), 0u);
  EXPECT_EQ(got.at({1000, "item-b"}), 1.0);
  EXPECT_EQ(got.at({-1000, "item-d"}), 4.0);
}

TEST(InteractionMatrix, ExplicitSmallExample) {
  auto st = new_state();
  // user 7: b twice (1 + 2), a once; user -3: c (+1, -1 -> dropped), a; user 5 only zeros.
  const std::vector<Row> rows = {{7, "b", 1}, {-3, "c", 1}, {7, "a", 0.5}, {7, "b", 2},
                                 {-3, "a", -4}, {-3, "c", -1}, {5, "b", 0}};
  add_rows(*st, rows, 0, rows.size());
  std::vector<uint32_t> uo = st->users.sorted_order(), io = st->items.sorted_order();
  recsys::CancelToken cancel;
  recsys::CsrMatrix m =
      recsys::build_interaction_matrix(*st, recsys::KeyInterner::invert(uo), recsys::KeyInterner::invert(io), cancel);
  // Users sorted -3, 5, 7; items a, b, c.
  EXPECT_EQ(m.rows, 3);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.indptr, (std::vector<int64_t>{0, 1, 1, 3}));
  EXPECT_EQ(m.indices, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(m.values, (std::vector<float>{-4.0f, 0.5f, 3.0f}));
}

TEST(InteractionMatrix, AscendingRowsTakeTheFastPathWithTheSameResult) {
  // User 1 arrives already sorted by item (the fast path) with a zero and a -0 weight to
  // drop; user 2 is unsorted with a duplicate; user 3 is sorted but repeats an item.
  auto st = new_state();
  const std::vector<Row> rows = {{1, "a", 1}, {1, "b", 0}, {1, "c", 2}, {1, "d", -0.0}, {1, "e", -3},
                                 {2, "c", 1}, {2, "a", 1}, {2, "c", 0.5},
                                 {3, "a", 1}, {3, "b", 1}, {3, "b", -1}, {3, "e", 4}};
  add_rows(*st, rows, 0, rows.size());
  std::vector<uint32_t> uo = st->users.sorted_order(), io = st->items.sorted_order();
  recsys::CancelToken cancel;
  recsys::CsrMatrix m =
      recsys::build_interaction_matrix(*st, recsys::KeyInterner::invert(uo), recsys::KeyInterner::invert(io), cancel);
  // Items a..e are indices 0..4.
  EXPECT_EQ(m.indptr, (std::vector<int64_t>{0, 3, 5, 7}));
  EXPECT_EQ(m.indices, (std::vector<int32_t>{0, 2, 4, 0, 2, 0, 4}));
  EXPECT_EQ(m.values, (std::vector<float>{1.0f, 2.0f, -3.0f, 1.0f, 1.5f, 1.0f, 4.0f}));
}

TEST(TrainingState, InteractionLogMovesLeaveAnEmptyLog) {
  recsys::InteractionLog a;
  for (uint32_t r = 0; r < 10; ++r) a.add(r, r + 1, 1.0f);
  recsys::InteractionLog b(std::move(a));
  EXPECT_EQ(b.size(), 10u);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  a.add(7, 8, 9.0f);        // a moved-from log is usable and does not write into b
  b.add(10, 11, 1.0f);
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].user, 7u);
  EXPECT_EQ(b.size(), 11u);
  EXPECT_EQ(b[9].item, 10u);
  EXPECT_EQ(b[10].user, 10u);
}

TEST(InteractionMatrix, SumIsIndependentOfRowOrder) {
  // Weights whose float sum depends on the order; the matrix must not.
  std::vector<Row> rows = {{1, "x", 1e8}, {1, "x", 1}, {1, "x", -1e8}, {1, "x", 0.25}, {1, "x", 3e-3}};
  std::vector<float> results;
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.weight < b.weight; });
  do {
    auto st = new_state();
    add_rows(*st, rows, 0, rows.size());
    recsys::CancelToken cancel;
    recsys::CsrMatrix m = recsys::build_interaction_matrix(*st, {0}, {0}, cancel);
    ASSERT_EQ(m.nnz(), 1);
    results.push_back(m.values[0]);
  } while (std::next_permutation(rows.begin(), rows.end(),
                                 [](const Row& a, const Row& b) { return a.weight < b.weight; }));
  EXPECT_EQ(results.size(), 120u);
  for (float v : results) EXPECT_EQ(v, results[0]);
  EXPECT_NEAR(results[0], 1.253f, 1e-3f);
}

TEST(InteractionMatrix, HonoursCancellation) {
  auto st = new_state();
  add_row(*st, {1, "a", 1});
  recsys::CancelToken cancel;
  cancel.cancel();
  expect_error_kind([&] { recsys::build_interaction_matrix(*st, {0}, {0}, cancel); }, ErrorKind::Cancelled);
  expect_error_kind(
      [&] {
        recsys::build_als_model(*st, small_options(), 1, cancel, [](const std::string&) {});
      },
      ErrorKind::Cancelled);
}

// ---------------------------------------------------------------- model identity

TEST(TrainingPipeline, ModelCountsMatchTheData) {
  const std::vector<Row> rows = dataset();
  auto st = new_state();
  add_rows(*st, rows, 0, rows.size());
  st->rows_skipped = 4;
  Bytes b = train(*st, small_options());
  ASSERT_NO_THROW(recsys::validate_model(b.data(), b.size()));
  ModelView v = ModelView::open(b.data(), b.size());
  auto sums = expected_sums(rows);
  std::set<int64_t> users;
  std::set<std::string> items;
  for (const Row& r : rows) {
    users.insert(r.user);
    items.insert(r.item);
  }
  EXPECT_EQ(v.header->n_interactions, sums.size());
  EXPECT_EQ(v.n_users(), static_cast<int64_t>(users.size()));
  EXPECT_EQ(v.n_items(), static_cast<int64_t>(items.size()));
  EXPECT_EQ(v.factors(), 6);
  EXPECT_EQ(v.header->user_type_oid, kInt8Oid);
  EXPECT_EQ(v.header->item_type_oid, kTextOid);
  std::string params = v.params_json();
  EXPECT_NE(params.find("\"rows\": " + std::to_string(rows.size())), std::string::npos) << params;
  EXPECT_NE(params.find("\"rows_skipped\": 4"), std::string::npos) << params;
  int64_t negatives = 0;
  for (auto& kv : sums) negatives += kv.second < 0;
  EXPECT_NE(params.find("\"negative_pairs\": " + std::to_string(negatives)), std::string::npos) << params;
  int64_t iters = 0;
  v.history(&iters);
  EXPECT_EQ(iters, 4);
  // Seen items are exactly the non-zero pairs, by key.
  recsys::KeyDictionary ud = v.user_keys(), idict = v.item_keys();
  int64_t total_seen = 0;
  for (int64_t u = 0; u < v.n_users(); ++u) {
    recsys::SeenItems s = recsys::seen_items(v, u);
    total_seen += s.count;
    for (int64_t k = 0; k < s.count; ++k) {
      uint64_t len;
      const uint8_t* p = idict.bytes_key(s.items[k], &len);
      EXPECT_EQ(sums.count({ud.int_key(u), std::string(reinterpret_cast<const char*>(p), len)}), 1u);
    }
  }
  EXPECT_EQ(total_seen, static_cast<int64_t>(sums.size()));
}

TEST(TrainingPipeline, ShuffledRowsGiveTheSameFingerprint) {
  std::vector<Row> rows = dataset();
  const uint64_t fp = fingerprint_of_rows(rows);
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 3; ++trial) {
    std::shuffle(rows.begin(), rows.end(), rng);
    EXPECT_EQ(fingerprint_of_rows(rows), fp) << trial;
  }
  std::reverse(rows.begin(), rows.end());
  EXPECT_EQ(fingerprint_of_rows(rows), fp);
  // A real change does change it.
  rows.push_back(Row{-50, "item-a", 1.0});
  EXPECT_NE(fingerprint_of_rows(rows), fp);
}

TEST(TrainingPipeline, MergingHalvesInEitherOrderMatchesOneState) {
  const std::vector<Row> rows = dataset();
  const size_t half = rows.size() / 2;
  const uint64_t fp = fingerprint_of_rows(rows, 5);

  auto a = new_state(), b = new_state();
  add_rows(*a, rows, 0, half);
  add_rows(*b, rows, half, rows.size());
  a->rows_skipped = 2;
  b->rows_skipped = 3;
  b->options_bytes = "{\"factors\": 6}";
  auto a2 = new_state(), b2 = new_state();
  add_rows(*a2, rows, 0, half);
  add_rows(*b2, rows, half, rows.size());
  a2->rows_skipped = 2;
  b2->rows_skipped = 3;

  a->merge(*b);
  EXPECT_EQ(a->log.size(), rows.size());
  EXPECT_EQ(a->rows_skipped, 5u);
  EXPECT_EQ(a->options_bytes, "{\"factors\": 6}");  // taken from the first state that had any
  EXPECT_EQ(fingerprint(train(*a, small_options())), fp);

  b2->merge(*a2);
  EXPECT_EQ(b2->log.size(), rows.size());
  EXPECT_EQ(fingerprint(train(*b2, small_options())), fp);
}

TEST(TrainingState, MergingAStateWithItselfIsRefused) {
  auto st = new_state();
  const std::vector<Row> rows = dataset(3, 20);
  add_rows(*st, rows, 0, rows.size());
  const uint64_t before = st->log.size();
  expect_error_kind([&] { st->merge(*st); }, ErrorKind::Internal);
  EXPECT_EQ(st->log.size(), before);
}

TEST(TrainingPipeline, MergingManyPartsAndEmptyStates) {
  const std::vector<Row> rows = dataset();
  const uint64_t fp = fingerprint_of_rows(rows);
  // Interleaved parts (each part sees users and items in a different order).
  std::vector<std::unique_ptr<TrainingState>> parts;
  for (int p = 0; p < 5; ++p) parts.push_back(new_state());
  for (size_t r = 0; r < rows.size(); ++r) add_row(*parts[(r * 7) % 5], rows[r]);
  auto total = new_state();
  total->merge(*new_state());  // empty into empty
  for (int p = 4; p >= 0; --p) total->merge(*parts[p]);
  total->merge(*new_state());
  EXPECT_EQ(fingerprint(train(*total, small_options())), fp);
  // Merging states of different key kinds is a bug in the caller.
  auto other = std::make_unique<TrainingState>(KeyKind::Text, kTextOid, KeyKind::Text, kTextOid);
  auto st = new_state();
  expect_error_kind([&] { st->merge(*other); }, ErrorKind::Internal);
}

TEST(TrainingPipeline, ThreadCountDoesNotChangeTheModel) {
  const std::vector<Row> rows = dataset(19, 2000);
  auto a = new_state(), b = new_state();
  add_rows(*a, rows, 0, rows.size());
  add_rows(*b, rows, 0, rows.size());
  EXPECT_EQ(fingerprint(train(*a, small_options(), 1)), fingerprint(train(*b, small_options(), 2)));
}

TEST(TrainingPipeline, VerboseLogsProgress) {
  const std::vector<Row> rows = dataset();
  auto st = new_state();
  add_rows(*st, rows, 0, rows.size());
  auto o = small_options();
  o.verbose = true;
  std::vector<std::string> lines;
  recsys::CancelToken cancel;
  recsys::build_als_model(*st, o, 1, cancel, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_EQ(lines.size(), 6u);  // one summary line, one per iteration, the similar-item lists
  EXPECT_NE(lines[0].find("rows"), std::string::npos) << lines[0];
  EXPECT_NE(lines[4].find("iteration 4/4"), std::string::npos) << lines[4];
  EXPECT_NE(lines[5].find("similar-item lists"), std::string::npos) << lines[5];
}

// ---------------------------------------------------------------- serialize / deserialize

TEST(TrainingStateSerialization, RoundTripGivesTheSameModel) {
  const std::vector<Row> rows = dataset();
  const uint64_t fp = fingerprint_of_rows(rows, 9);
  auto st = new_state();
  add_rows(*st, rows, 0, rows.size());
  st->rows_skipped = 9;
  st->options_bytes = "{\"iterations\": 4}";
  Bytes bytes = serialize(*st);
  auto back = TrainingState::deserialize(bytes.data(), bytes.size());
  ASSERT_TRUE(back != nullptr);
  EXPECT_EQ(back->users.kind(), KeyKind::Int);
  EXPECT_EQ(back->items.kind(), KeyKind::Text);
  EXPECT_EQ(back->user_type_oid, kInt8Oid);
  EXPECT_EQ(back->item_type_oid, kTextOid);
  EXPECT_EQ(back->options_bytes, "{\"iterations\": 4}");
  EXPECT_EQ(back->rows_skipped, 9u);
  EXPECT_EQ(back->log.size(), rows.size());
  EXPECT_EQ(back->users.size(), st->users.size());
  EXPECT_EQ(back->items.size(), st->items.size());
  EXPECT_EQ(serialize(*back), bytes);  // stable
  EXPECT_EQ(fingerprint(train(*back, small_options())), fp);
  // Merge of deserialized halves too.
  auto a = new_state(), b = new_state();
  add_rows(*a, rows, 0, 100);
  add_rows(*b, rows, 100, rows.size());
  b->rows_skipped = 9;
  Bytes ab = serialize(*a), bb = serialize(*b);
  auto a2 = TrainingState::deserialize(ab.data(), ab.size());
  auto b2 = TrainingState::deserialize(bb.data(), bb.size());
  b2->merge(*a2);
  EXPECT_EQ(fingerprint(train(*b2, small_options())), fp);
}

TEST(TrainingStateSerialization, AllKeyKindsAndEmptyStates) {
  for (KeyKind uk : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    for (KeyKind ik : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
      TrainingState st(uk, 1, ik, 2);
      Bytes empty = serialize(st);
      auto e = TrainingState::deserialize(empty.data(), empty.size());
      EXPECT_EQ(e->users.kind(), uk);
      EXPECT_EQ(e->items.kind(), ik);
      EXPECT_EQ(e->log.size(), 0u);
      auto intern = [](recsys::KeyInterner& in, int v) {
        if (in.kind() == KeyKind::Int) return in.intern_int(v);
        uint8_t key[16] = {0};
        key[3] = static_cast<uint8_t>(v);
        return in.intern_bytes(key, in.kind() == KeyKind::Uuid ? 16 : 1 + v % 5);
      };
      for (int r = 0; r < 50; ++r) st.add(intern(st.users, r % 7), intern(st.items, r % 11), r - 25);
      Bytes full = serialize(st);
      auto back = TrainingState::deserialize(full.data(), full.size());
      EXPECT_EQ(serialize(*back), full);
      EXPECT_EQ(back->log.size(), 50u);
      EXPECT_EQ(back->log[49].weight, 24.0f);
    }
  }
}

TEST(TrainingStateSerialization, RejectsTruncationAndGarbage) {
  auto st = new_state();
  const std::vector<Row> rows = dataset(4, 30);
  add_rows(*st, rows, 0, rows.size());
  st->options_bytes = "{\"alpha\": 2}";
  const Bytes good = serialize(*st);
  // Every truncation, from an exact-size heap copy.
  for (size_t len = 0; len < good.size(); ++len) {
    std::unique_ptr<uint8_t[]> cut(new uint8_t[len ? len : 1]);
    if (len) std::memcpy(cut.get(), good.data(), len);
    expect_error_kind([&] { TrainingState::deserialize(cut.get(), len); }, ErrorKind::InvalidModel);
  }
  // Trailing bytes.
  Bytes longer = good;
  longer.push_back(0);
  expect_error_kind([&] { TrainingState::deserialize(longer.data(), longer.size()); }, ErrorKind::InvalidModel);
  // Header fields.
  auto patched = [&](size_t offset, auto value) {
    Bytes b = good;
    std::memcpy(b.data() + offset, &value, sizeof value);
    return b;
  };
  for (const Bytes& b : {patched(0, uint32_t(0)), patched(4, uint32_t(2)), patched(8, uint8_t(0)),
                         patched(9, uint8_t(4)), patched(24, uint64_t(rows.size() + 1)),
                         patched(24, uint64_t(rows.size() - 1)), patched(24, ~uint64_t(0)),
                         patched(24, uint64_t(1) << 62), patched(40, uint64_t(good.size())),
                         patched(40, ~uint64_t(0))}) {
    expect_error_kind([&] { TrainingState::deserialize(b.data(), b.size()); }, ErrorKind::InvalidModel);
  }
  // A triplet pointing past the interned keys.
  {
    Bytes b = good;
    recsys::Triplet t;
    std::memcpy(&t, b.data() + b.size() - sizeof t, sizeof t);
    t.item = st->items.size();
    std::memcpy(b.data() + b.size() - sizeof t, &t, sizeof t);
    expect_error_kind([&] { TrainingState::deserialize(b.data(), b.size()); }, ErrorKind::InvalidModel);
    t.item = 0;
    t.user = 0xFFFFFFFFu;
    std::memcpy(b.data() + b.size() - sizeof t, &t, sizeof t);
    expect_error_kind([&] { TrainingState::deserialize(b.data(), b.size()); }, ErrorKind::InvalidModel);
    // A non-finite weight (the transition function never stores one).
    t.user = 0;
    for (float w : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
      t.weight = w;
      std::memcpy(b.data() + b.size() - sizeof t, &t, sizeof t);
      expect_error_kind([&] { TrainingState::deserialize(b.data(), b.size()); }, ErrorKind::InvalidModel);
    }
  }
  // Random garbage.
  std::mt19937_64 rng(8);
  for (int trial = 0; trial < 3000; ++trial) {
    Bytes b(rng() % 160);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    if (trial % 2 && b.size() >= 12) std::memcpy(b.data(), good.data(), 12);  // plausible header start
    std::unique_ptr<uint8_t[]> exact(new uint8_t[b.size() ? b.size() : 1]);
    if (!b.empty()) std::memcpy(exact.get(), b.data(), b.size());
    try {
      TrainingState::deserialize(exact.get(), b.size());
    } catch (const recsys::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
    }
  }
}

TEST(TrainingStateSerialization, EveryByteFlipIsRejectedOrHarmless) {
  auto st = new_state();
  const std::vector<Row> rows = dataset(6, 12);
  add_rows(*st, rows, 0, rows.size());
  st->options_bytes = "{}";
  const Bytes good = serialize(*st);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[good.size()]);
  int accepted = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t(0xFF), uint8_t(0x01), uint8_t(0x10), uint8_t(0x80)}) {
      std::memcpy(buf.get(), good.data(), good.size());
      buf[i] ^= mask;
      try {
        auto back = TrainingState::deserialize(buf.get(), good.size());
        ++accepted;
        // Whatever was accepted is self-consistent.
        for (uint64_t r = 0; r < back->log.size(); ++r) {
          ASSERT_LT(back->log[r].user, back->users.size());
          ASSERT_LT(back->log[r].item, back->items.size());
        }
      } catch (const recsys::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
      }
    }
  }
  EXPECT_GT(accepted, 0);  // e.g. a changed weight or oid is still a valid state
}

// ---------------------------------------------------------------- serving

namespace {

struct Trained {
  std::vector<Row> rows;
  Bytes bytes;
  ModelView view;
};

Trained trained_model(bool store_seen = true) {
  Trained t;
  t.rows = dataset(21, 600);
  auto st = new_state();
  add_rows(*st, t.rows, 0, t.rows.size());
  t.bytes = train(*st, small_options(store_seen));
  t.view = ModelView::open(t.bytes.data(), t.bytes.size());
  return t;
}

double dot(const float* a, const float* b, int f) {
  double s = 0;
  for (int i = 0; i < f; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

void expect_ranked(const std::vector<Scored>& out) {
  for (size_t i = 1; i < out.size(); ++i)
    EXPECT_TRUE(recsys::ranks_before(out[i - 1], out[i]))
        << "rank " << i << ": (" << out[i - 1].score << ", " << out[i - 1].index << ") then (" << out[i].score
        << ", " << out[i].index << ")";
}

}  // namespace

TEST(Serving, RecommendUserExcludesSeenAndRanksByScore) {
  Trained t = trained_model();
  const ModelView& v = t.view;
  const int f = v.factors();
  const int64_t ni = v.n_items();
  std::vector<Scored> out;
  int users_with_seen = 0;
  for (int64_t u = 0; u < v.n_users(); ++u) {
    recsys::SeenItems seen = recsys::seen_items(v, u);
    std::set<int32_t> seen_set(seen.items, seen.items + seen.count);
    users_with_seen += seen.count > 0;
    for (int64_t k : {int64_t(1), int64_t(5), ni, ni + 10}) {
      int64_t n = recsys::recommend_user(v, u, k, true, out);
      ASSERT_EQ(n, static_cast<int64_t>(out.size()));
      EXPECT_EQ(n, std::min<int64_t>(k, ni - static_cast<int64_t>(seen_set.size())));
      expect_ranked(out);
      float worst = std::numeric_limits<float>::infinity();
      std::set<int32_t> returned;
      for (const Scored& s : out) {
        EXPECT_EQ(seen_set.count(s.index), 0u) << "user " << u << " was recommended seen item " << s.index;
        EXPECT_NEAR(s.score, dot(v.user_factors() + u * f, v.item_factors() + s.index * f, f), 1e-5);
        EXPECT_NEAR(s.score, recsys::score_pair(v, u, s.index), 1e-5);
        worst = std::min(worst, s.score);
        returned.insert(s.index);
      }
      // Nothing left out scores better than what was returned.
      for (int32_t i = 0; i < ni; ++i) {
        if (returned.count(i) || seen_set.count(i)) continue;
        EXPECT_LE(dot(v.user_factors() + u * f, v.item_factors() + i * f, f), worst + 1e-5)
            << "user " << u << " item " << i;
      }
    }
    // Without exclusion: the full ranking, seen items included.
    int64_t n = recsys::recommend_user(v, u, ni, false, out);
    EXPECT_EQ(n, ni);
    expect_ranked(out);
  }
  EXPECT_GT(users_with_seen, 10);
  EXPECT_EQ(recsys::recommend_user(v, 0, 0, true, out), 0);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(recsys::recommend_user(v, 0, -3, false, out), 0);
}

TEST(Serving, RecommendUserMatchesFullSortReference) {
  Trained t = trained_model();
  const ModelView& v = t.view;
  const int f = v.factors();
  const int64_t ni = v.n_items();
  std::vector<Scored> out;
  for (int64_t u = 0; u < v.n_users(); u += 3) {
    // Reference: scores from score_pair, seen items skipped, full sort.
    std::vector<float> scores(ni);
    for (int64_t i = 0; i < ni; ++i) scores[i] = recsys::score_pair(v, u, i);
    std::vector<bool> skip(ni, false);
    recsys::SeenItems seen = recsys::seen_items(v, u);
    for (int64_t k = 0; k < seen.count; ++k) skip[seen.items[k]] = true;
    auto want = recsys::top_k_by_sort(scores.data(), ni, 4, skip);
    recsys::recommend_user(v, u, 4, true, out);
    ASSERT_EQ(out.size(), want.size());
    for (size_t r = 0; r < out.size(); ++r) {
      EXPECT_NEAR(out[r].score, want[r].score, 1e-6);
      // Indices agree unless two scores are within rounding of each other.
      if (out[r].index != want[r].index) {
        EXPECT_NEAR(scores[out[r].index], scores[want[r].index], 1e-6) << "user " << u << " rank " << r;
      }
    }
    (void)f;
  }
}

TEST(Serving, WithoutStoredSeenItemsExclusionIsRefused) {
  Trained t = trained_model(false);
  const ModelView& v = t.view;
  EXPECT_EQ(v.section(SectionTag::UserItems), nullptr);
  recsys::SeenItems s = recsys::seen_items(v, 0);
  EXPECT_EQ(s.count, 0);
  std::vector<Scored> out;
  // Asked to exclude seen items it does not have, the model refuses rather than
  // silently returning them.
  expect_error_kind([&] { recsys::recommend_user(v, 0, v.n_items(), true, out); }, ErrorKind::InvalidParameter,
                    "store_seen");
  EXPECT_EQ(recsys::recommend_user(v, 0, v.n_items(), false, out), v.n_items());
  expect_ranked(out);
  // Seen items of a model that stores them, for out-of-range users: empty.
  Trained t2 = trained_model(true);
  EXPECT_EQ(recsys::seen_items(t2.view, -1).count, 0);
  EXPECT_EQ(recsys::seen_items(t2.view, t2.view.n_users()).count, 0);
}

TEST(Serving, RecommendPopularIsInPopularityOrder) {
  Trained t = trained_model();
  const ModelView& v = t.view;
  // Popularity: users whose summed weight for the item is positive.
  auto sums = expected_sums(t.rows);
  std::map<std::string, int> pop;
  for (auto& kv : sums)
    if (kv.second > 0) ++pop[kv.first.second];
  recsys::KeyDictionary items = v.item_keys();
  std::vector<Scored> out;
  int64_t n = recsys::recommend_popular(v, v.n_items() + 5, out);
  ASSERT_EQ(n, v.n_items());
  ASSERT_EQ(out.size(), static_cast<size_t>(n));
  expect_ranked(out);  // popularity descending, ties by index
  std::set<int32_t> all;
  for (const Scored& s : out) {
    uint64_t len;
    const uint8_t* p = items.bytes_key(s.index, &len);
    std::string key(reinterpret_cast<const char*>(p), len);
    EXPECT_EQ(s.score, static_cast<float>(pop[key])) << key;
    all.insert(s.index);
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(n));
  // Smaller k is a prefix.
  std::vector<Scored> top3;
  EXPECT_EQ(recsys::recommend_popular(v, 3, top3), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(top3[i].index, out[i].index);
  EXPECT_EQ(recsys::recommend_popular(v, 0, top3), 0);
  EXPECT_TRUE(top3.empty());
  EXPECT_EQ(recsys::recommend_popular(v, -1, top3), 0);
  EXPECT_TRUE(top3.empty());
}

TEST(Serving, PopularityOrderHelper) {
  EXPECT_EQ(recsys::popularity_order({1, 3, 3, 0, 2}), (std::vector<int32_t>{1, 2, 4, 0, 3}));
  EXPECT_TRUE(recsys::popularity_order({}).empty());
  std::vector<float> rows = {3, 4, 0, 0, 0, 0};
  std::vector<float> norms = recsys::row_norms(rows.data(), 3, 2);
  EXPECT_EQ(norms, (std::vector<float>{5, 0, 0}));
}

TEST(Serving, SimilarItemsMatchesBruteForceCosine) {
  Trained t = trained_model();
  const ModelView& v = t.view;
  const int f = v.factors();
  const int64_t ni = v.n_items();
  const float* y = v.item_factors();
  std::vector<Scored> out;
  for (int64_t item = 0; item < ni; ++item) {
    auto cosine = [&](int64_t j) {
      double d = std::sqrt(dot(y + item * f, y + item * f, f)) * std::sqrt(dot(y + j * f, y + j * f, f));
      return d > 0 ? dot(y + item * f, y + j * f, f) / d : 0.0;
    };
    for (int64_t k : {int64_t(1), int64_t(4), ni - 1, ni + 3}) {
      int64_t n = recsys::similar_items(v, item, k, out);
      EXPECT_EQ(n, std::min<int64_t>(k, ni - 1));
      expect_ranked(out);
      std::set<int32_t> returned;
      float worst = 2;
      for (const Scored& s : out) {
        EXPECT_NE(s.index, item) << "the item itself was returned";
        EXPECT_NEAR(s.score, cosine(s.index), 1e-5);
        EXPECT_LE(s.score, 1.0f + 1e-5f);
        EXPECT_GE(s.score, -1.0f - 1e-5f);
        returned.insert(s.index);
        worst = std::min(worst, s.score);
      }
      for (int64_t j = 0; j < ni; ++j)
        if (j != item && !returned.count(static_cast<int32_t>(j))) {
          EXPECT_LE(cosine(j), worst + 1e-5);
        }
    }
  }
}

TEST(Serving, SimilarUsersMatchesBruteForceCosine) {
  Trained t = trained_model();
  const ModelView& v = t.view;
  const int f = v.factors();
  const float* x = v.user_factors();
  std::vector<Scored> out;
  for (int64_t user = 0; user < v.n_users(); user += 2) {
    int64_t n = recsys::similar_users(v, user, 5, out);
    EXPECT_EQ(n, 5);
    expect_ranked(out);
    for (const Scored& s : out) {
      EXPECT_NE(s.index, user);
      double c = dot(x + user * f, x + s.index * f, f) /
                 (std::sqrt(dot(x + user * f, x + user * f, f)) * std::sqrt(dot(x + s.index * f, x + s.index * f, f)));
      EXPECT_NEAR(s.score, c, 1e-5);
    }
  }
}

TEST(Serving, ScorePairIsTheDotProduct) {
  Trained t = trained_model();
  const ModelView& v = t.view;
  const int f = v.factors();
  for (int64_t u = 0; u < v.n_users(); ++u)
    for (int64_t i = 0; i < v.n_items(); ++i) {
      double want = dot(v.user_factors() + u * f, v.item_factors() + i * f, f);
      EXPECT_NEAR(recsys::score_pair(v, u, i), want, 1e-6 + 1e-5 * std::fabs(want));
    }
  // Trained factors are not all zero: the scores carry information.
  double total = 0;
  for (int64_t i = 0; i < v.n_items(); ++i) total += std::fabs(recsys::score_pair(v, 0, i));
  EXPECT_GT(total, 1e-3);
}

namespace {

// A model of the given kind with dictionaries and popularity but no factors.
Bytes factorless_model(recsys::ModelKind kind) {
  recsys::ModelBuilder b;
  b.header.kind = static_cast<uint16_t>(kind);
  b.header.user_key_kind = static_cast<uint8_t>(KeyKind::Int);
  b.header.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  b.header.n_users = 2;
  b.header.n_items = 3;
  b.add_array(SectionTag::UserKeys, std::vector<int64_t>{1, 2});
  b.add_array(SectionTag::ItemKeys, std::vector<int64_t>{10, 20, 30});
  b.add_array(SectionTag::ItemPopularity, std::vector<float>{1, 3, 2});
  b.add_array(SectionTag::PopularOrder, recsys::popularity_order({1, 3, 2}));
  // User 0 has seen item 1 (the most popular one).
  std::vector<uint8_t> csr(8 * 3 + 4);
  const int64_t indptr[3] = {0, 1, 1};
  const int32_t items[1] = {1};
  std::memcpy(csr.data(), indptr, sizeof indptr);
  std::memcpy(csr.data() + 24, items, sizeof items);
  b.add(SectionTag::UserItems, csr);
  Bytes bytes(b.total_size());
  b.write(bytes.data());
  return bytes;
}

}  // namespace

TEST(Serving, KindsWithoutFactorsAreNotSupported) {
  // item_knn without neighbour sections is structurally openable (validate_model would
  // refuse it); the factor-based serving functions must refuse it, naming the kind.
  Bytes bytes = factorless_model(recsys::ModelKind::ItemKnn);
  ModelView v = ModelView::open(bytes.data(), bytes.size());
  std::vector<Scored> out;
  expect_error_kind([&] { recsys::recommend_user(v, 0, 3, true, out); }, ErrorKind::NotSupported, "item_knn");
  expect_error_kind([&] { recsys::score_pair(v, 0, 0); }, ErrorKind::NotSupported, "item_knn");
  expect_error_kind([&] { recsys::similar_items(v, 0, 3, out); }, ErrorKind::NotSupported, "item_knn");
  expect_error_kind([&] { recsys::similar_users(v, 0, 3, out); }, ErrorKind::NotSupported, "item_knn");
  // The popularity answer needs no factors.
  EXPECT_EQ(recsys::recommend_popular(v, 10, out), 3);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].index, 1);
  EXPECT_EQ(out[0].score, 3.0f);
  EXPECT_EQ(out[2].index, 0);
}

TEST(Serving, PopularityModelsServeByPopularity) {
  Bytes bytes = factorless_model(recsys::ModelKind::Popularity);
  ASSERT_NO_THROW(recsys::validate_model(bytes.data(), bytes.size()));
  ModelView v = ModelView::open(bytes.data(), bytes.size());
  std::vector<Scored> out;
  EXPECT_EQ(recsys::recommend_user(v, 0, 3, true, out), 2);  // item 1 seen
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].index, 2);
  EXPECT_EQ(out[1].index, 0);
  EXPECT_EQ(recsys::recommend_user(v, 0, 3, false, out), 3);
  EXPECT_EQ(out[0].index, 1);
  EXPECT_EQ(recsys::recommend_user(v, 1, 2, true, out), 2);
  EXPECT_EQ(out[1].index, 2);
  EXPECT_EQ(recsys::recommend_user(v, 1, -1, true, out), 0);
  EXPECT_EQ(recsys::score_pair(v, 0, 2), 2.0f);
  expect_error_kind([&] { recsys::similar_items(v, 0, 3, out); }, ErrorKind::NotSupported, "popularity");
  expect_error_kind([&] { recsys::similar_users(v, 0, 3, out); }, ErrorKind::NotSupported, "popularity");
}

TEST(Serving, UnknownKindsNeverOpen) {
  Bytes bytes = factorless_model(recsys::ModelKind::Popularity);
  for (uint16_t kind : {uint16_t(0), uint16_t(8), uint16_t(42), uint16_t(0xFFFF)}) {
    Bytes b = bytes;
    std::memcpy(b.data() + offsetof(recsys::ModelHeader, kind), &kind, 2);
    expect_error_kind([&] { ModelView::open(b.data(), b.size()); }, ErrorKind::InvalidModel, "kind");
    expect_error_kind([&] { recsys::validate_model(b.data(), b.size()); }, ErrorKind::InvalidModel, "kind");
  }
  EXPECT_STREQ(recsys::model_kind_name(static_cast<recsys::ModelKind>(42)), "unknown");
}

// Item-kNN: similarities against a brute-force dense computation (cosine, BM25, TF-IDF,
// shrinkage, min_support), top-N truncation, planted item groups, recommend against the
// brute-force sum of similarities, determinism across thread counts, cancellation,
// options, and the model's validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "json_options.h"
#include "knn.h"
#include "model_bytes.h"
#include "model_format.h"
#include "serving.h"
#include "training.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {

struct Row {
  int64_t user;
  int64_t item;
  double weight;
};

// A written model in an 8-byte aligned buffer of exactly its size.


std::unique_ptr<TrainingState> state_of(const std::vector<Row>& rows) {
  auto st = std::make_unique<TrainingState>(KeyKind::Int, 20, KeyKind::Int, 20);
  for (const Row& r : rows) st->add(st->users.intern_int(r.user), st->items.intern_int(r.item), r.weight);
  return st;
}

Model train(const std::vector<Row>& rows, const ItemKnnOptions& o, int threads = 2) {
  auto st = state_of(rows);
  CancelToken cancel;
  build_item_knn_model(*st, o, threads, cancel, [](const std::string&) {});
  return write_model(*st->result);
}

std::vector<Row> random_rows(uint64_t seed, int users, int items, int n, bool negatives = true) {
  std::mt19937_64 rng(seed);
  const double weights[] = {1, 2, 3, 0.5, 1.5, 4, 1};
  std::vector<Row> rows;
  for (int r = 0; r < n; ++r) {
    // Skewed items: lower ids are more popular.
    int64_t item = static_cast<int64_t>(std::pow(double(rng() % 10000) / 10000.0, 1.7) * items);
    rows.push_back(Row{static_cast<int64_t>(rng() % users), item * 7 + 3, weights[rng() % 7]});
  }
  if (negatives) {
    for (int r = 0; r < n / 20; ++r) rows.push_back(Row{static_cast<int64_t>(rng() % users), int64_t(rng() % items) * 7 + 3, -2.5});
  }
  return rows;
}

// The dense reference: user x item matrix in the model's index space.
struct Dense {
  int64_t nu = 0, ni = 0;
  std::vector<double> x;  // summed weights
  double& at(int64_t u, int64_t i) { return x[u * ni + i]; }
  double at(int64_t u, int64_t i) const { return x[u * ni + i]; }
};

Dense dense_of(const ModelView& m, const std::vector<Row>& rows) {
  Dense d;
  d.nu = m.n_users();
  d.ni = m.n_items();
  d.x.assign(d.nu * d.ni, 0.0);
  KeyDictionary uk = m.user_keys(), ik = m.item_keys();
  for (const Row& r : rows) d.at(uk.find_int(r.user), ik.find_int(r.item)) += r.weight;
  return d;
}

// Weighted matrix as implicit computes it, in double, from the dense sums.
Dense weighted_reference(const Dense& raw, const ItemKnnOptions& o) {
  Dense w = raw;
  for (double& v : w.x) v = v > 0 ? (o.binary ? 1.0 : v) : 0.0;
  if (o.similarity == KnnSimilarity::Cosine) return w;
  const double N = static_cast<double>(w.ni);
  std::vector<double> idf(w.nu);
  for (int64_t u = 0; u < w.nu; ++u) {
    int df = 0;
    for (int64_t i = 0; i < w.ni; ++i) df += w.at(u, i) > 0;
    idf[u] = std::log(N) - std::log1p(df);
  }
  if (o.similarity == KnnSimilarity::Tfidf) {
    for (int64_t u = 0; u < w.nu; ++u)
      for (int64_t i = 0; i < w.ni; ++i)
        if (w.at(u, i) > 0) w.at(u, i) = std::sqrt(w.at(u, i)) * idf[u];
    return w;
  }
  std::vector<double> len(w.ni, 0.0);
  for (int64_t u = 0; u < w.nu; ++u)
    for (int64_t i = 0; i < w.ni; ++i) len[i] += w.at(u, i);
  double avg = 0;
  for (double l : len) avg += l;
  avg /= N;
  for (int64_t u = 0; u < w.nu; ++u)
    for (int64_t i = 0; i < w.ni; ++i) {
      double x = w.at(u, i);
      if (x > 0) w.at(u, i) = x * (o.k1 + 1) / (o.k1 * (1 - o.b + o.b * len[i] / avg) + x) * idf[u];
    }
  return w;
}

struct RefSim {
  std::vector<double> sim;  // ni x ni, NaN where not eligible
  int64_t ni;
  double at(int64_t a, int64_t b) const { return sim[a * ni + b]; }
};

RefSim reference_similarity(const Dense& raw, const ItemKnnOptions& o) {
  Dense w = weighted_reference(raw, o);
  RefSim r;
  r.ni = w.ni;
  r.sim.assign(w.ni * w.ni, NAN);
  // Item columns: (user, weight) of the positive raw entries, users ascending.
  std::vector<std::vector<std::pair<int64_t, double>>> col(w.ni);
  std::vector<double> norm(w.ni, 0.0);
  for (int64_t u = 0; u < w.nu; ++u)
    for (int64_t i = 0; i < w.ni; ++i)
      if (raw.at(u, i) > 0) {
        col[i].push_back({u, w.at(u, i)});
        norm[i] += w.at(u, i) * w.at(u, i);
      }
  for (double& n : norm) n = std::sqrt(n);
  for (int64_t a = 0; a < w.ni; ++a)
    for (int64_t b = 0; b < w.ni; ++b) {
      if (a == b) continue;
      double dot = 0;
      int support = 0;
      size_t p = 0, q = 0;
      while (p < col[a].size() && q < col[b].size()) {
        if (col[a][p].first < col[b][q].first) {
          ++p;
        } else if (col[a][p].first > col[b][q].first) {
          ++q;
        } else {
          ++support;
          dot += col[a][p++].second * col[b][q++].second;
        }
      }
      if (support == 0 || support < o.min_support) continue;
      double s = dot / (norm[a] * norm[b] + o.shrinkage);
      if (s > 0) r.sim[a * w.ni + b] = s;
    }
  return r;
}

// Checks every stored list against the reference: right scores, the best ones, sorted.
void expect_matches_reference(const ModelView& m, const RefSim& ref, int64_t keep) {
  std::vector<Scored> got;
  int64_t total = 0;
  for (int64_t a = 0; a < ref.ni; ++a) {
    knn_similar_items(m, a, 1 << 30, got);
    std::vector<double> eligible;
    for (int64_t b = 0; b < ref.ni; ++b)
      if (!std::isnan(ref.at(a, b))) eligible.push_back(ref.at(a, b));
    std::sort(eligible.rbegin(), eligible.rend());
    ASSERT_EQ(static_cast<int64_t>(got.size()), std::min<int64_t>(keep, eligible.size())) << "item " << a;
    for (size_t q = 0; q < got.size(); ++q) {
      const double want = ref.at(a, got[q].index);
      ASSERT_FALSE(std::isnan(want)) << "item " << a << " lists ineligible " << got[q].index;
      EXPECT_NEAR(got[q].score, want, 2e-5 * std::max(1.0, std::fabs(want))) << a << " -> " << got[q].index;
      // The q-th stored score is the q-th best one (up to float rounding).
      EXPECT_NEAR(got[q].score, eligible[q], 2e-5 * std::max(1.0, std::fabs(eligible[q])));
      if (q > 0) {
        EXPECT_TRUE(ranks_before(got[q - 1], got[q]));
      }
      EXPECT_NE(got[q].index, a);
    }
    total += static_cast<int64_t>(got.size());
  }
  EXPECT_GT(total, 0);
}

ItemKnnOptions opts(const std::string& json) { return parse_item_knn_options(json); }

}  // namespace

TEST(ItemKnn, DefaultsAreBm25WithShrinkage10) {
  // The defaults chosen by test/eval_defaults.sh (issue 15).
  ItemKnnOptions o = opts("{}");
  EXPECT_EQ(o.similarity, KnnSimilarity::Bm25);
  EXPECT_EQ(o.shrinkage, 10.0);
  EXPECT_EQ(o.neighbours, 200);
  const ItemKnnOptions s;
  EXPECT_EQ(s.similarity, o.similarity);
  EXPECT_EQ(s.shrinkage, o.shrinkage);
  auto rows = random_rows(5, 70, 45, 800);
  Model m = train(rows, o);
  Dense raw = dense_of(m.view(), rows);
  expect_matches_reference(m.view(), reference_similarity(raw, o), o.neighbours);
}

TEST(ItemKnn, CosineMatchesBruteForce) {
  auto rows = random_rows(1, 80, 50, 900);
  ItemKnnOptions o = opts("{\"similarity\": \"cosine\", \"shrinkage\": 0}");
  Model m = train(rows, o);
  validate_model(m.data(), m.size);
  Dense raw = dense_of(m.view(), rows);
  expect_matches_reference(m.view(), reference_similarity(raw, o), o.neighbours);
}

TEST(ItemKnn, Bm25MatchesBruteForce) {
  auto rows = random_rows(2, 70, 45, 800);
  ItemKnnOptions o = opts("{\"similarity\": \"bm25\", \"shrinkage\": 0}");
  EXPECT_EQ(o.k1, 1.2);
  EXPECT_EQ(o.b, 0.75);
  Model m = train(rows, o);
  Dense raw = dense_of(m.view(), rows);
  expect_matches_reference(m.view(), reference_similarity(raw, o), o.neighbours);
  ItemKnnOptions o2 = opts("{\"similarity\": \"bm25\", \"k1\": 3, \"b\": 0.3, \"shrinkage\": 0}");
  Model m2 = train(rows, o2);
  expect_matches_reference(m2.view(), reference_similarity(raw, o2), o2.neighbours);
}

TEST(ItemKnn, TfidfMatchesBruteForce) {
  auto rows = random_rows(3, 70, 45, 800);
  ItemKnnOptions o = opts("{\"similarity\": \"tfidf\", \"shrinkage\": 0}");
  Model m = train(rows, o);
  Dense raw = dense_of(m.view(), rows);
  expect_matches_reference(m.view(), reference_similarity(raw, o), o.neighbours);
}

TEST(ItemKnn, BinaryShrinkageAndMinSupport) {
  auto rows = random_rows(4, 60, 30, 900);
  for (const char* json : {"{\"shrinkage\": 10}", "{\"min_support\": 3}", "{\"binary\": true, \"min_support\": 2}",
                           "{\"similarity\": \"tfidf\", \"shrinkage\": 5, \"min_support\": 2}"}) {
    SCOPED_TRACE(json);
    ItemKnnOptions o = opts(json);
    Model m = train(rows, o);
    Dense raw = dense_of(m.view(), rows);
    expect_matches_reference(m.view(), reference_similarity(raw, o), o.neighbours);
  }
  // Shrinkage lowers every similarity and pushes low-support pairs down the list.
  ItemKnnOptions plain = opts("{\"shrinkage\": 0}"), shrunk = opts("{\"shrinkage\": 50}");
  Model a = train(rows, plain), b = train(rows, shrunk);
  std::vector<Scored> la, lb;
  knn_similar_items(a.view(), 0, 1000, la);
  knn_similar_items(b.view(), 0, 1000, lb);
  ASSERT_EQ(la.size(), lb.size());
  std::map<int32_t, float> sa;
  for (auto& s : la) sa[s.index] = s.score;
  for (auto& s : lb) EXPECT_LT(s.score, sa[s.index]);
  // min_support removes every pair with fewer common users.
  ItemKnnOptions strict = opts("{\"min_support\": 1000}");
  Model c = train(rows, strict);
  std::vector<Scored> lc;
  for (int64_t i = 0; i < c.view().n_items(); ++i) EXPECT_EQ(knn_similar_items(c.view(), i, 100, lc), 0);
}

TEST(ItemKnn, SparseAndDenseItemsMatchBruteForce) {
  // Many items and short user histories: rare items take the touched-list path, the
  // popular ones the dense scan; both must agree with the reference.
  auto rows = random_rows(12, 500, 1200, 4000, false);
  for (const char* json : {"{\"neighbours\": 30}", "{\"neighbours\": 30, \"min_support\": 2}",
                           "{\"similarity\": \"bm25\", \"shrinkage\": 2}"}) {
    SCOPED_TRACE(json);
    ItemKnnOptions o = opts(json);
    Model m = train(rows, o);
    Dense raw = dense_of(m.view(), rows);
    expect_matches_reference(m.view(), reference_similarity(raw, o), o.neighbours);
  }
}

TEST(ItemKnn, TopNTruncation) {
  auto rows = random_rows(5, 80, 40, 1200);
  Model full = train(rows, opts("{\"neighbours\": 1000}"));
  Model cut = train(rows, opts("{\"neighbours\": 5}"));
  std::vector<Scored> lf, lc;
  int64_t truncated = 0;
  for (int64_t i = 0; i < full.view().n_items(); ++i) {
    knn_similar_items(full.view(), i, 1000, lf);
    knn_similar_items(cut.view(), i, 1000, lc);
    ASSERT_EQ(lc.size(), std::min<size_t>(5, lf.size()));
    for (size_t q = 0; q < lc.size(); ++q) {
      EXPECT_EQ(lc[q].index, lf[q].index);
      EXPECT_EQ(lc[q].score, lf[q].score);
    }
    truncated += lf.size() > 5;
    // k smaller than the stored list returns its prefix.
    std::vector<Scored> l2;
    knn_similar_items(full.view(), i, 2, l2);
    ASSERT_EQ(l2.size(), std::min<size_t>(2, lf.size()));
  }
  EXPECT_GT(truncated, 10);
}

TEST(ItemKnn, PlantedGroups) {
  // 5 groups of 40 items; each user shops mostly (90%) in one group.
  std::mt19937_64 rng(77);
  const int groups = 5, per = 40, users = 3000;
  std::vector<Row> rows;
  for (int u = 0; u < users; ++u) {
    int g = u % groups;
    int n = 8 + static_cast<int>(rng() % 12);
    for (int r = 0; r < n; ++r) {
      int item = (rng() % 10 == 0) ? static_cast<int>(rng() % (groups * per)) : g * per + static_cast<int>(rng() % per);
      rows.push_back(Row{u, item, 1.0 + double(rng() % 3)});
    }
  }
  for (const char* json : {"{}", "{\"similarity\": \"bm25\"}", "{\"similarity\": \"tfidf\"}"}) {
    SCOPED_TRACE(json);
    Model m = train(rows, opts(json));
    ModelView v = m.view();
    KeyDictionary ik = v.item_keys();
    std::vector<Scored> out;
    for (int64_t i = 0; i < v.n_items(); ++i) {
      ASSERT_EQ(knn_similar_items(v, i, 10, out), 10);
      int same = 0;
      for (auto& s : out) same += ik.int_key(s.index) / per == ik.int_key(i) / per;
      EXPECT_GE(same, 9) << "item " << ik.int_key(i);
    }
  }
}

TEST(ItemKnn, RecommendEqualsBruteForceSumAndExcludesSeen) {
  auto rows = random_rows(6, 60, 40, 900);
  for (const char* json : {"{\"neighbours\": 8}", "{\"binary\": true, \"neighbours\": 1000}"}) {
    SCOPED_TRACE(json);
    ItemKnnOptions o = opts(json);
    Model m = train(rows, o);
    ModelView v = m.view();
    Dense raw = dense_of(v, rows);
    // Stored similarity lists as a dense matrix.
    std::vector<double> S(v.n_items() * v.n_items(), 0.0);
    std::vector<Scored> l;
    for (int64_t j = 0; j < v.n_items(); ++j) {
      knn_similar_items(v, j, 1 << 30, l);
      for (auto& s : l) S[j * v.n_items() + s.index] = s.score;
    }
    std::vector<Scored> got;
    for (int64_t u = 0; u < v.n_users(); ++u) {
      std::vector<double> score(v.n_items(), 0.0);
      std::set<int64_t> seen;
      for (int64_t j = 0; j < v.n_items(); ++j) {
        double x = raw.at(u, j);
        if (std::fabs(x) > 1e-12) seen.insert(j);
        if (x > 0) {
          double w = o.binary ? 1.0 : x;
          for (int64_t i = 0; i < v.n_items(); ++i) score[i] += w * S[j * v.n_items() + i];
        }
      }
      // seen_items() of the model holds exactly the nonzero pairs, negatives included.
      SeenItems si = seen_items(v, u);
      ASSERT_EQ(static_cast<size_t>(si.count), seen.size());
      for (bool exclude : {true, false}) {
        knn_recommend_user(v, u, 10, exclude, got);
        std::vector<std::pair<double, int64_t>> want;
        for (int64_t i = 0; i < v.n_items(); ++i)
          if (score[i] > 0 && !(exclude && seen.count(i))) want.push_back({-score[i], i});
        std::sort(want.begin(), want.end());
        ASSERT_EQ(got.size(), std::min<size_t>(10, want.size())) << "user " << u;
        for (size_t q = 0; q < got.size(); ++q) {
          EXPECT_NEAR(got[q].score, score[got[q].index], 1e-4 * std::max(1.0, score[got[q].index]));
          EXPECT_NEAR(got[q].score, -want[q].first, 1e-4 * std::max(1.0, -want[q].first));
          if (exclude) {
            EXPECT_EQ(seen.count(got[q].index), 0u) << "seen item recommended";
          }
        }
      }
    }
  }
}

TEST(ItemKnn, RecommendFromItems) {
  auto rows = random_rows(7, 60, 40, 900);
  Model m = train(rows, opts("{}"));
  ModelView v = m.view();
  std::vector<Scored> a, b, l;
  std::vector<int64_t> basket = {3, 9, 3};
  knn_recommend_from_items(v, basket, {}, 1000, true, a);
  std::map<int32_t, double> want;
  for (int64_t j : basket) {
    knn_similar_items(v, j, 1 << 30, l);
    for (auto& s : l) want[s.index] += s.score;
  }
  for (auto& s : a) {
    EXPECT_NE(s.index, 3);
    EXPECT_NE(s.index, 9);
    EXPECT_NEAR(s.score, want[s.index], 1e-5);
  }
  knn_recommend_from_items(v, {3, 9}, {2.0f, 0.0f}, 1000, false, b);
  knn_similar_items(v, 3, 1 << 30, l);
  ASSERT_EQ(b.size(), l.size());
  for (size_t q = 0; q < b.size(); ++q) {
    EXPECT_EQ(b[q].index, l[q].index);
    EXPECT_FLOAT_EQ(b[q].score, 2 * l[q].score);
  }
  EXPECT_THROW(knn_recommend_from_items(v, {v.n_items()}, {}, 5, true, b), Error);
  EXPECT_THROW(knn_recommend_from_items(v, {1, 2}, {1.0f}, 5, true, b), Error);
  EXPECT_THROW(knn_similar_items(v, -1, 5, b), Error);
}

TEST(ItemKnn, NegativeWeightsAreAbsentButSeen) {
  // User 1 dislikes item 30; items 10 and 20 co-occur only through user 2's positives.
  std::vector<Row> rows = {{1, 10, 1}, {1, 30, -1}, {2, 10, 1}, {2, 20, 1}, {3, 30, 1}, {3, 20, 1},
                           {4, 40, 2}, {4, 40, -2}, {4, 10, 1}};
  Model m = train(rows, opts("{}"));
  ModelView v = m.view();
  KeyDictionary ik = v.item_keys(), uk = v.user_keys();
  std::vector<Scored> out;
  knn_similar_items(v, ik.find_int(30), 10, out);
  ASSERT_EQ(out.size(), 1u);  // only item 20 (user 3); not item 10 through user 1's dislike
  EXPECT_EQ(ik.int_key(out[0].index), 20);
  // Item 40's weights summed to zero: no pair, no neighbours, not seen.
  EXPECT_EQ(knn_similar_items(v, ik.find_int(40), 10, out), 0);
  // User 1: item 30 is seen (excluded), 10 is seen; 20 is recommended through 10.
  knn_recommend_user(v, uk.find_int(1), 10, true, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(ik.int_key(out[0].index), 20);
  EXPECT_EQ(seen_items(v, uk.find_int(4)).count, 1);
}

TEST(ItemKnn, DeterministicAcrossThreadCounts) {
  auto rows = random_rows(8, 300, 200, 6000);
  for (const char* json : {"{\"neighbours\": 20}", "{\"similarity\": \"bm25\", \"min_support\": 2}"}) {
    Model m1 = train(rows, opts(json), 1);
    Model m2 = train(rows, opts(json), 2);
    Model m5 = train(rows, opts(json), 5);
    EXPECT_EQ(m1.view().header->fingerprint, m2.view().header->fingerprint);
    EXPECT_EQ(m1.view().header->fingerprint, m5.view().header->fingerprint);
    ASSERT_EQ(m1.size, m5.size);
    // Everything but train_seconds (and the whole-value checksum over it) is identical.
    auto b1 = m1.bytes(), b5 = m5.bytes();
    for (auto* b : {&b1, &b5}) {
      std::memset(b->data() + offsetof(ModelHeader, train_seconds), 0, 8);
      std::memset(b->data() + offsetof(ModelHeader, checksum_lo), 0, 8);
    }
    EXPECT_TRUE(b1 == b5);
  }
  // Row order does not matter either.
  auto shuffled = rows;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(3));
  EXPECT_EQ(train(rows, opts("{}")).view().header->fingerprint,
            train(shuffled, opts("{}")).view().header->fingerprint);
}

TEST(ItemKnn, Cancellation) {
  auto rows = random_rows(9, 200, 100, 3000);
  auto st = state_of(rows);
  CancelToken cancel;
  cancel.cancel();
  try {
    build_item_knn_model(*st, opts("{}"), 2, cancel, [](const std::string&) {});
    FAIL() << "returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  // Cancelled between preparation and the neighbour lists (from the progress callback,
  // as the PostgreSQL layer's interrupt poll would): the parallel loop stops.
  auto st2 = state_of(rows);
  CancelToken later;
  int lines = 0;
  try {
    build_item_knn_model(*st2, opts("{\"verbose\": true}"), 2, later, [&](const std::string&) {
      ++lines;
      later.cancel();
    });
    FAIL() << "returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  EXPECT_EQ(lines, 1);
  EXPECT_FALSE(st2->result);
}

TEST(ItemKnn, Options) {
  ItemKnnOptions d = opts("");
  EXPECT_EQ(d.similarity, KnnSimilarity::Bm25);  // test/eval_defaults.sh (issue 15)
  EXPECT_EQ(d.neighbours, 200);
  EXPECT_EQ(d.min_support, 1);
  EXPECT_EQ(d.shrinkage, 10);
  EXPECT_FALSE(d.binary);
  EXPECT_TRUE(d.store_seen);
  auto bad = [](const char* json) {
    try {
      parse_item_knn_options(json);
      return std::string("accepted");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
      return std::string(e.what());
    }
  };
  EXPECT_NE(bad("{\"similarity\": \"jaccard\"}").find("similarity"), std::string::npos);
  EXPECT_NE(bad("{\"neighbours\": 0}").find("neighbours"), std::string::npos);
  EXPECT_NE(bad("{\"shrinkage\": -1}").find("shrinkage"), std::string::npos);
  EXPECT_NE(bad("{\"b\": 2}").find("\"b\""), std::string::npos);
  EXPECT_NE(bad("{\"neighbors\": 5}").find("unknown option"), std::string::npos);
}

TEST(ItemKnn, StoreSeenFalse) {
  auto rows = random_rows(10, 40, 20, 300);
  Model m = train(rows, opts("{\"store_seen\": false}"));
  validate_model(m.data(), m.size);
  std::vector<Scored> out;
  try {
    knn_recommend_user(m.view(), 0, 5, true, out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotSupported);
  }
  EXPECT_GT(knn_recommend_from_items(m.view(), {0}, {}, 5, true, out), 0);
  // The factor-model serving functions refuse the kind cleanly.
  EXPECT_THROW(recommend_user(m.view(), 0, 5, true, out), Error);
  EXPECT_GT(recommend_popular(m.view(), 5, out), 0);
}

// ------------------------------------------------------------------ validation

namespace {

SectionEntry entry_of(const std::vector<uint8_t>& b, SectionTag tag) {
  ModelHeader h;
  std::memcpy(&h, b.data(), sizeof h);
  for (uint32_t i = 0; i < h.n_sections; ++i) {
    SectionEntry e;
    std::memcpy(&e, b.data() + sizeof(ModelHeader) + i * sizeof(SectionEntry), sizeof e);
    if (e.tag == static_cast<uint32_t>(tag)) return e;
  }
  ADD_FAILURE() << "no section " << static_cast<uint32_t>(tag);
  return SectionEntry{0, 0, 0, 0};
}

std::string validation_error(std::vector<uint8_t> b, bool resign) {
  if (resign) {
    uint64_t fp = compute_fingerprint(b.data(), b.size());
    std::memcpy(b.data() + offsetof(ModelHeader, fingerprint), &fp, 8);
    const uint64_t cs = compute_checksum(b.data(), b.size());
    const uint32_t lo = static_cast<uint32_t>(cs), hi = static_cast<uint32_t>(cs >> 32);
    std::memcpy(b.data() + offsetof(ModelHeader, checksum_lo), &lo, 4);
    std::memcpy(b.data() + offsetof(ModelHeader, checksum_hi), &hi, 4);
  }
  Model m;
  m.size = b.size();
  m.words.assign((b.size() + 7) / 8, 0);
  std::memcpy(m.data(), b.data(), b.size());
  try {
    validate_model(m.data(), m.size);
    return "";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
    return e.what();
  }
}

template <class T>
void put(std::vector<uint8_t>& b, uint64_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

}  // namespace

TEST(ItemKnn, ModelRoundTripAndValidation) {
  auto rows = random_rows(11, 50, 30, 600);
  Model m = train(rows, opts("{}"));
  const std::vector<uint8_t> good = m.bytes();
  EXPECT_EQ(validation_error(good, false), "");
  ModelView v = m.view();
  EXPECT_EQ(v.kind(), ModelKind::ItemKnn);
  EXPECT_NE(v.params_json().find("\"similarity\": \"bm25\""), std::string::npos);

  // Any flipped byte fails (the checksum at least).
  std::mt19937_64 rng(5);
  for (int t = 0; t < 200; ++t) {
    auto b = good;
    b[4 + rng() % (b.size() - 4)] ^= static_cast<uint8_t>(1 + rng() % 255);
    EXPECT_NE(validation_error(b, false), "");
  }
  const SectionEntry ind = entry_of(good, SectionTag::NeighbourIndices);
  const SectionEntry sc = entry_of(good, SectionTag::NeighbourScores);
  const SectionEntry ptr = entry_of(good, SectionTag::NeighbourIndptr);
  const SectionEntry uw = entry_of(good, SectionTag::UserWeights);
  ASSERT_GE(ind.length, 8u);
  {
    auto b = good;
    put<int32_t>(b, ind.offset, static_cast<int32_t>(v.n_items()));
    EXPECT_NE(validation_error(b, true).find("out of range"), std::string::npos);
  }
  {
    auto b = good;
    put<int32_t>(b, ind.offset, -1);
    EXPECT_NE(validation_error(b, true).find("out of range"), std::string::npos);
  }
  {
    auto b = good;
    put<float>(b, sc.offset, NAN);
    EXPECT_NE(validation_error(b, true).find("non-finite"), std::string::npos);
  }
  {
    // Raise the second score of the first row with two entries above the first.
    const int64_t* p = reinterpret_cast<const int64_t*>(good.data() + ptr.offset);
    int64_t r = 0;
    while (p[r + 1] - p[r] < 2) ++r;
    auto b = good;
    put<float>(b, sc.offset + 4 * (p[r] + 1), 1e9f);
    EXPECT_NE(validation_error(b, true).find("not sorted"), std::string::npos);
    auto c = good;
    put<int32_t>(c, ind.offset + 4 * p[r], static_cast<int32_t>(r));
    EXPECT_NE(validation_error(c, true).find("own neighbour"), std::string::npos);
    // Equal scores with the higher index first, and an item listed twice in a row (both
    // found by test/fuzz/fuzz_model: similar_items returned them as stored).
    const int32_t* idx = reinterpret_cast<const int32_t*>(good.data() + ind.offset);
    const float* s = reinterpret_cast<const float*>(good.data() + sc.offset);
    auto d = good;
    put<float>(d, sc.offset + 4 * (p[r] + 1), s[p[r]]);
    put<int32_t>(d, ind.offset + 4 * p[r], std::max(idx[p[r]], idx[p[r] + 1]));
    put<int32_t>(d, ind.offset + 4 * (p[r] + 1), std::min(idx[p[r]], idx[p[r] + 1]));
    EXPECT_NE(validation_error(d, true).find("not sorted"), std::string::npos);
    // (the row's last entry, its score halved so it stays strictly the lowest, set to
    // the row's first item)
    const int64_t last = p[r + 1] - 1;
    auto e = good;
    put<float>(e, sc.offset + 4 * last, s[last] * 0.5f);
    put<int32_t>(e, ind.offset + 4 * last, idx[p[r]]);
    EXPECT_NE(validation_error(e, true).find("twice"), std::string::npos);
  }
  {
    auto b = good;
    put<int64_t>(b, ptr.offset + 8, -5);
    EXPECT_NE(validation_error(b, true).find("not ascending"), std::string::npos);
  }
  {
    auto b = good;
    put<int64_t>(b, ptr.offset + 8 * v.n_items(), static_cast<int64_t>(ind.length / 4 + 1));
    EXPECT_NE(validation_error(b, true), "");
  }
  {
    auto b = good;
    put<float>(b, uw.offset, -1.0f);
    EXPECT_NE(validation_error(b, true).find("user weights"), std::string::npos);
  }
  {
    // A neighbour section retagged away: an item_knn model without lists.
    auto b = good;
    ModelHeader h;
    std::memcpy(&h, b.data(), sizeof h);
    for (uint32_t i = 0; i < h.n_sections; ++i) {
      uint64_t off = sizeof(ModelHeader) + i * sizeof(SectionEntry);
      uint32_t tag;
      std::memcpy(&tag, b.data() + off, 4);
      if (tag == static_cast<uint32_t>(SectionTag::NeighbourScores)) put<uint32_t>(b, off, 60);
    }
    EXPECT_NE(validation_error(b, true).find("incomplete"), std::string::npos);
  }
  // Text form round trip.
  std::string text(model_text_size(m.size) + 1, '\0');
  model_to_text(m.data(), m.size, text.data());
  text.resize(model_text_size(m.size));
  Model back;
  back.size = model_text_decoded_size(text.data(), text.size());
  back.words.assign((back.size + 7) / 8, 0);
  model_from_text(text.data(), text.size(), back.data(), back.size);
  ASSERT_EQ(back.size, m.size);
  EXPECT_EQ(std::memcmp(back.data() + 4, m.data() + 4, m.size - 4), 0);
  validate_model(back.data(), back.size);
}

TEST(ItemKnn, EmptyAndTinyInputs) {
  // No rows (or only pairs whose weights sum to 0): no model, the aggregate's NULL.
  for (const std::vector<Row>& none : {std::vector<Row>{}, std::vector<Row>{{1, 10, 2.0}, {1, 10, -2.0}}}) {
    auto st = state_of(none);
    CancelToken cancel;
    build_item_knn_model(*st, opts("{}"), 2, cancel, [](const std::string&) {});
    EXPECT_EQ(st->result, nullptr);
  }
  // One user, one item: no pairs, no neighbours, nothing to recommend.
  Model one = train({{1, 10, 1.0}}, opts("{}"));
  validate_model(one.data(), one.size);
  std::vector<Scored> out;
  EXPECT_EQ(knn_similar_items(one.view(), 0, 10, out), 0);
  EXPECT_EQ(knn_recommend_user(one.view(), 0, 10, true, out), 0);
  EXPECT_EQ(knn_recommend_user(one.view(), 0, 0, false, out), 0);
  EXPECT_THROW(knn_recommend_user(one.view(), 1, 10, true, out), Error);
}

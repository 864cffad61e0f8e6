// k-means: recovery of well-separated clusters, determinism for a seed across thread
// counts, k-means++ seeding, n_init, standardization, input errors, the aggregate state,
// and the model round trip / validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "json_options.h"
#include "kmeans.h"
#include "model_bytes.h"
#include "model_format.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {



// Gaussian blobs around well-separated centres; label[i] = true blob.
struct Blobs {
  int64_t n = 0, d = 0;
  std::vector<float> x;
  std::vector<int> label;
  std::vector<std::vector<float>> centres;
};

// Centres are at least min_sep standard deviations apart (0: anywhere, overlapping).
Blobs blobs(int k, int per, int d, double spread, double sd, uint64_t seed, double offset = 0, double min_sep = 20) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, sd);
  std::uniform_real_distribution<double> pos(-spread, spread);
  Blobs b;
  b.d = d;
  for (int c = 0; c < k; ++c) {
    std::vector<float> ctr(d);
    for (int j = 0; j < d; ++j) ctr[j] = static_cast<float>(pos(rng) + offset);
    // Keep the centres far apart.
    bool ok = true;
    for (auto& o : b.centres) {
      double dist = 0;
      for (int j = 0; j < d; ++j) dist += (o[j] - ctr[j]) * (o[j] - ctr[j]);
      ok = ok && std::sqrt(dist) > min_sep * sd;
    }
    if (!ok) {
      --c;
      continue;
    }
    b.centres.push_back(ctr);
  }
  for (int i = 0; i < k * per; ++i) {
    int c = i % k;
    for (int j = 0; j < d; ++j) b.x.push_back(static_cast<float>(b.centres[c][j] + noise(rng)));
    b.label.push_back(c);
  }
  b.n = k * per;
  return b;
}

// True when two labelings agree up to a permutation of the labels.
bool same_partition(const std::vector<int>& a, const std::vector<int32_t>& b) {
  std::map<int, int32_t> fwd;
  std::map<int32_t, int> back;
  for (size_t i = 0; i < a.size(); ++i) {
    auto f = fwd.emplace(a[i], b[i]);
    auto g = back.emplace(b[i], a[i]);
    if (f.first->second != b[i] || g.first->second != a[i]) return false;
  }
  return true;
}

KMeansOptions opts(const std::string& json) { return parse_kmeans_options(json); }

KMeansState state_of(const Blobs& b) {
  KMeansState st;
  for (int64_t i = 0; i < b.n; ++i) st.add(b.x.data() + i * b.d, b.d);
  return st;
}

Model train(KMeansState& st, const std::string& json, int threads = 2) {
  CancelToken cancel;
  build_kmeans_model(st, opts(json), threads, cancel, [](const std::string&) {});
  Model m = write_model(*st.result);
  validate_model(m.data(), m.size);
  return m;
}

double inertia_of(const Blobs& b, const std::vector<float>& C, int k) {
  double s = 0;
  for (int64_t i = 0; i < b.n; ++i) {
    double best = INFINITY;
    for (int c = 0; c < k; ++c) {
      double d2 = 0;
      for (int64_t j = 0; j < b.d; ++j) d2 += (b.x[i * b.d + j] - C[c * b.d + j]) * (b.x[i * b.d + j] - C[c * b.d + j]);
      best = std::min(best, d2);
    }
    s += best;
  }
  return s;
}

}  // namespace

TEST(KMeans, RecoversSeparatedClusters) {
  for (int d : {2, 5, 19}) {
    SCOPED_TRACE(d);
    Blobs b = blobs(6, 150, d, 100, 1.0, 10 + d, 1000);  // far from the origin as well
    CancelToken cancel;
    KMeansResult r = kmeans_fit(b.x.data(), b.n, b.d, opts("{\"k\": 6, \"n_init\": 2}"), 2, cancel,
                                [](const std::string&) {});
    EXPECT_TRUE(same_partition(b.label, r.labels));
    for (int64_t s : r.sizes) EXPECT_EQ(s, 150);
    // Centres close to the true ones; inertia about n * d * sd^2.
    for (int c = 0; c < 6; ++c) {
      double best = INFINITY;
      for (auto& t : b.centres) {
        double dist = 0;
        for (int j = 0; j < d; ++j) dist += (t[j] - r.centroids[c * d + j]) * (t[j] - r.centroids[c * d + j]);
        best = std::min(best, std::sqrt(dist));
      }
      EXPECT_LT(best, 0.5);
    }
    EXPECT_NEAR(r.inertia / (b.n * d), 1.0, 0.2);
    EXPECT_NEAR(r.inertia, inertia_of(b, r.centroids, 6), 1e-3 * r.inertia);
  }
}

TEST(KMeans, ModelAssignsLikeTraining) {
  Blobs b = blobs(4, 100, 3, 50, 1.0, 4, -300);
  KMeansState st = state_of(b);
  Model m = train(st, "{\"k\": 4, \"seed\": 7}");
  ModelView v = m.view();
  EXPECT_EQ(v.kind(), ModelKind::KMeans);
  EXPECT_EQ(kmeans_clusters(v), 4);
  EXPECT_EQ(kmeans_dimension(v), 3);
  EXPECT_EQ(v.n_users(), 0);
  EXPECT_EQ(v.n_items(), 0);
  std::vector<int32_t> got;
  for (int64_t i = 0; i < b.n; ++i) got.push_back(kmeans_assign(v, b.x.data() + i * 3, 3));
  EXPECT_TRUE(same_partition(b.label, got));
  // Sizes sum to the rows; centres in original units.
  const int64_t* sizes = v.section_as<int64_t>(SectionTag::ClusterSizes);
  int64_t total = 0;
  for (int c = 0; c < 4; ++c) total += sizes[c];
  EXPECT_EQ(total, b.n);
  float c0[3];
  kmeans_centroid(v, got[0], true, c0);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(c0[j], b.centres[b.label[0]][j], 0.5);
  float dist = -1;
  EXPECT_EQ(kmeans_assign(v, c0, 3, &dist), got[0]);
  EXPECT_NEAR(dist, 0.0f, 1e-3);
  EXPECT_NE(v.params_json().find("\"inertia\": "), std::string::npos);
  EXPECT_NE(v.params_json().find("\"iterations\": "), std::string::npos);
  // Errors of assign.
  try {
    kmeans_assign(v, c0, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
  }
  float nan3[3] = {0, NAN, 0};
  try {
    kmeans_assign(v, nan3, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::DataException);
  }
  EXPECT_THROW(kmeans_centroid(v, 4, true, c0), Error);
}

TEST(KMeans, DeterministicForSeedAcrossThreads) {
  Blobs b = blobs(8, 400, 6, 10, 3.0, 99, 0, 0);  // overlapping: many iterations
  std::vector<uint64_t> fp;
  std::vector<double> inertia;
  for (int threads : {1, 2, 3, 8}) {
    KMeansState st = state_of(b);
    Model m = train(st, "{\"k\": 8, \"seed\": 5, \"n_init\": 3}", threads);
    fp.push_back(m.view().header->fingerprint);
  }
  for (uint64_t f : fp) EXPECT_EQ(f, fp[0]);
  // Another seed gives another (valid) model.
  KMeansState st = state_of(b);
  EXPECT_NE(train(st, "{\"k\": 8, \"seed\": 6, \"n_init\": 3}").view().header->fingerprint, fp[0]);
}

TEST(KMeans, SameModelForAnyRowOrder) {
  // Overlapping blobs with duplicated rows: seeding and Lloyd sums would both notice the
  // order; the canonical row order makes the model a function of the multiset of rows.
  Blobs b = blobs(6, 300, 5, 10, 3.0, 21, 0, 0);
  for (int64_t i = 0; i < 40; ++i) {  // duplicates of early rows at the end
    for (int j = 0; j < 5; ++j) b.x.push_back(b.x[i * 5 + j]);
    b.label.push_back(b.label[i]);
  }
  b.n += 40;
  std::vector<uint64_t> fp;
  std::mt19937_64 rng(8);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<int64_t> perm(static_cast<size_t>(b.n));
    for (int64_t i = 0; i < b.n; ++i) perm[i] = i;
    if (trial == 1) std::reverse(perm.begin(), perm.end());
    if (trial >= 2) std::shuffle(perm.begin(), perm.end(), rng);
    for (const char* json : {"{\"k\": 6, \"seed\": 3, \"n_init\": 2}", "{\"k\": 6, \"seed\": 3, \"standardize\": true}"}) {
      KMeansState st;
      for (int64_t i : perm) st.add(b.x.data() + i * 5, 5);
      Model m = train(st, json, 1 + trial % 3);
      fp.push_back(m.view().header->fingerprint);
    }
  }
  for (size_t t = 2; t < fp.size(); t += 2) {
    EXPECT_EQ(fp[t], fp[0]) << "row order " << t / 2 << " changed the model";
    EXPECT_EQ(fp[t + 1], fp[1]) << "row order " << t / 2 << " changed the standardized model";
  }
  EXPECT_NE(fp[0], fp[1]);
}

TEST(KMeans, CanonicalRowOrderIsAPermutationGivenByContents) {
  std::vector<float> a = {3, 1, 2, 2, 3, 1, 2, 2, -0.0f, 0.0f, 5, 5};  // 6 rows of 2, one duplicate
  std::vector<float> b = {5, 5, 2, 2, -0.0f, 0.0f, 3, 1, 2, 2, 3, 1};
  canonical_row_order(a, 6, 2);
  canonical_row_order(b, 6, 2);
  ASSERT_EQ(a.size(), 12u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(std::memcmp(&a[i], &b[i], 4), 0) << i;
  // Still the same multiset of rows.
  std::vector<std::pair<float, float>> rows, want = {{3, 1}, {2, 2}, {3, 1}, {2, 2}, {-0.0f, 0.0f}, {5, 5}};
  for (int r = 0; r < 6; ++r) rows.emplace_back(a[2 * r], a[2 * r + 1]);
  std::sort(rows.begin(), rows.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(rows, want);
}

TEST(KMeans, PlusPlusSeeding) {
  // Tight, far-apart blobs: the k seeds land in k different blobs, for every seed.
  Blobs b = blobs(10, 50, 4, 1000, 0.5, 3);
  CancelToken cancel;
  std::set<std::vector<int64_t>> distinct_choices;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<int64_t> c = kmeans_plus_plus(b.x.data(), b.n, b.d, 10, seed, 2, cancel);
    ASSERT_EQ(c.size(), 10u);
    std::set<int> blobs_hit;
    for (int64_t i : c) blobs_hit.insert(b.label[i]);
    EXPECT_EQ(blobs_hit.size(), 10u) << "seed " << seed;
    EXPECT_EQ(c, kmeans_plus_plus(b.x.data(), b.n, b.d, 10, seed, 1, cancel));  // thread count
    distinct_choices.insert(c);
  }
  EXPECT_GT(distinct_choices.size(), 10u);  // seeds matter
  // D^2 sampling never picks a point equal to a chosen centre: 3 distinct points
  // repeated give exactly those 3 for k = 3, and k = 4 fails.
  std::vector<float> x;
  for (int r = 0; r < 30; ++r) {
    x.push_back(static_cast<float>(r % 3));
    x.push_back(1.0f);
  }
  std::vector<int64_t> c = kmeans_plus_plus(x.data(), 30, 2, 3, 1, 2, cancel);
  std::set<float> firsts;
  for (int64_t i : c) firsts.insert(x[2 * i]);
  EXPECT_EQ(firsts.size(), 3u);
  try {
    kmeans_plus_plus(x.data(), 30, 2, 4, 1, 2, cancel);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
    EXPECT_NE(std::string(e.what()).find("3 distinct"), std::string::npos) << e.what();
  }
}

TEST(KMeans, MoreRestartsNeverWorse) {
  Blobs b = blobs(12, 60, 3, 20, 2.5, 8, 0, 0);
  CancelToken cancel;
  auto log = [](const std::string&) {};
  KMeansResult one = kmeans_fit(b.x.data(), b.n, b.d, opts("{\"k\": 12, \"n_init\": 1, \"seed\": 3}"), 2, cancel, log);
  KMeansResult ten = kmeans_fit(b.x.data(), b.n, b.d, opts("{\"k\": 12, \"n_init\": 10, \"seed\": 3}"), 2, cancel, log);
  ASSERT_EQ(ten.run_inertia.size(), 10u);
  EXPECT_EQ(ten.run_inertia[0], one.inertia);  // run 0 is the same run
  EXPECT_LE(ten.inertia, one.inertia);
  EXPECT_EQ(ten.inertia, *std::min_element(ten.run_inertia.begin(), ten.run_inertia.end()));
  // The runs differ (different seeds), and Lloyd improves on the seeding.
  std::set<double> values(ten.run_inertia.begin(), ten.run_inertia.end());
  EXPECT_GT(values.size(), 1u);
}

TEST(KMeans, Standardize) {
  // Two clusters separated only along a small-scale dimension; the other dimension has a
  // huge spread of pure noise. Raw distances see the noise; standardized ones the clusters.
  std::mt19937_64 rng(2);
  std::normal_distribution<double> small(0.0, 0.05), big(0.0, 1000.0);
  KMeansState st;
  std::vector<int> truth;
  for (int i = 0; i < 400; ++i) {
    int c = i % 2;
    float x[2] = {static_cast<float>(c + small(rng)), static_cast<float>(big(rng))};
    st.add(x, 2);
    truth.push_back(c);
  }
  KMeansState st2;
  st2.merge(st);
  Model raw = train(st, "{\"k\": 2}");
  Model z = train(st2, "{\"k\": 2, \"standardize\": true}");
  EXPECT_EQ(raw.view().section(SectionTag::FeatureMean), nullptr);
  ASSERT_NE(z.view().section(SectionTag::FeatureMean), nullptr);
  std::mt19937_64 rng2(2);
  std::normal_distribution<double> small2(0.0, 0.05), big2(0.0, 1000.0);
  std::vector<int32_t> lz, lr;
  for (int i = 0; i < 400; ++i) {
    float x[2] = {static_cast<float>(i % 2 + small2(rng2)), static_cast<float>(big2(rng2))};
    lz.push_back(kmeans_assign(z.view(), x, 2));
    lr.push_back(kmeans_assign(raw.view(), x, 2));
  }
  EXPECT_TRUE(same_partition(truth, lz));
  EXPECT_FALSE(same_partition(truth, lr));
  // The stored transform: mean ~ (0.5, 0), scale ~ (0.5, 1000); centres in original units.
  const float* mean = z.view().section_as<float>(SectionTag::FeatureMean);
  const float* scale = z.view().section_as<float>(SectionTag::FeatureScale);
  EXPECT_NEAR(mean[0], 0.5, 0.01);
  EXPECT_NEAR(scale[0], 0.5, 0.02);
  EXPECT_NEAR(scale[1], 1000, 100);
  float c[2];
  kmeans_centroid(z.view(), lz[0], true, c);
  EXPECT_NEAR(c[0], 0.0, 0.05);
  kmeans_centroid(z.view(), lz[0], false, c);
  EXPECT_NEAR(c[0], -1.0, 0.1);
  // A constant dimension gets scale 1.
  KMeansState st3;
  for (int i = 0; i < 10; ++i) {
    float x[2] = {static_cast<float>(i), 7.0f};
    st3.add(x, 2);
  }
  Model m3 = train(st3, "{\"k\": 2, \"standardize\": true}");
  EXPECT_EQ(m3.view().section_as<float>(SectionTag::FeatureScale)[1], 1.0f);
}

TEST(KMeans, InputErrors) {
  KMeansState st;
  float a[3] = {1, 2, 3}, b[2] = {1, 2};
  st.add(a, 3);
  try {
    st.add(b, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::DataException);
  }
  float n[3] = {1, NAN, 3};
  try {
    st.add(n, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::DataException);
  }
  double inf[3] = {1, 2, INFINITY};
  EXPECT_THROW(st.add(inf, 3), Error);
  double huge[3] = {1, 2, 1e300};
  EXPECT_THROW(st.add(huge, 3), Error);
  EXPECT_THROW(st.add(a, 0), Error);
  EXPECT_EQ(st.rows(), 1);
  // k > rows, k > distinct rows, no rows.
  st.add(a, 3);
  double c[3] = {4, 5, 6};
  st.add(c, 3);
  CancelToken cancel;
  auto log = [](const std::string&) {};
  try {
    KMeansState s2;
    s2.merge(st);
    build_kmeans_model(s2, opts("{\"k\": 4}"), 1, cancel, log);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
    EXPECT_NE(std::string(e.what()).find("3 rows"), std::string::npos) << e.what();
  }
  try {
    KMeansState s2;
    s2.merge(st);
    build_kmeans_model(s2, opts("{\"k\": 3}"), 1, cancel, log);  // rows a, a, c: 2 distinct
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
    EXPECT_NE(std::string(e.what()).find("2 distinct"), std::string::npos) << e.what();
  }
  KMeansState empty;
  EXPECT_THROW(build_kmeans_model(empty, opts("{\"k\": 1}"), 1, cancel, log), Error);
  // Options.
  EXPECT_THROW(parse_kmeans_options("{}"), Error);
  EXPECT_THROW(parse_kmeans_options("{\"k\": 0}"), Error);
  EXPECT_THROW(parse_kmeans_options("{\"k\": 2, \"n_init\": 0}"), Error);
  EXPECT_THROW(parse_kmeans_options("{\"k\": 2, \"clusters\": 3}"), Error);
  KMeansOptions d = parse_kmeans_options("{\"k\": 3}");
  EXPECT_EQ(d.n_init, 4);
  EXPECT_EQ(d.max_iter, 100);
  EXPECT_DOUBLE_EQ(d.tol, 1e-4);
  EXPECT_FALSE(d.standardize);
  // k = 1: the mean; k = n with distinct rows: every row its own cluster, inertia 0.
  KMeansState s1;
  s1.merge(st);
  Model m1 = train(s1, "{\"k\": 1}");
  float centre[3];
  kmeans_centroid(m1.view(), 0, true, centre);
  EXPECT_NEAR(centre[0], 2.0, 1e-5);
  KMeansState s4;
  for (int i = 0; i < 5; ++i) {
    float x[1] = {static_cast<float>(i * i)};
    s4.add(x, 1);
  }
  Model m4 = train(s4, "{\"k\": 5}");
  EXPECT_NE(m4.view().params_json().find("\"inertia\": 0,"), std::string::npos) << m4.view().params_json();
}

TEST(KMeans, StateMergeSerialize) {
  Blobs b = blobs(3, 50, 4, 30, 1.0, 1);
  KMeansState whole = state_of(b);
  KMeansState p1, p2;
  for (int64_t i = 0; i < b.n; ++i) (i < 70 ? p1 : p2).add(b.x.data() + i * 4, 4);
  p2.options_bytes = "{\"k\": 3}";
  auto round_trip = [](const KMeansState& s) {
    std::vector<uint8_t> bytes(s.serialized_size());
    s.serialize(bytes.data());
    return KMeansState::deserialize(bytes.data(), bytes.size());
  };
  auto a = round_trip(p1);
  a->merge(*round_trip(p2));
  EXPECT_EQ(a->options_bytes, "{\"k\": 3}");
  ASSERT_EQ(a->rows(), b.n);
  EXPECT_EQ(a->matrix(), whole.matrix());
  EXPECT_EQ(train(*a, "{\"k\": 3}").view().header->fingerprint, train(whole, "{\"k\": 3}").view().header->fingerprint);
  // Merging a state of another dimension fails; an empty state merges as nothing.
  KMeansState other;
  float x[2] = {1, 2};
  other.add(x, 2);
  KMeansState p3 = state_of(b);
  EXPECT_THROW(p3.merge(other), Error);
  KMeansState none;
  p3.merge(none);
  EXPECT_EQ(p3.rows(), b.n);
  // Malformed bytes.
  std::vector<uint8_t> bytes(p1.serialized_size());
  p1.serialize(bytes.data());
  EXPECT_THROW(KMeansState::deserialize(bytes.data(), bytes.size() - 4), Error);
  auto bad = bytes;
  float nan = NAN;
  std::memcpy(bad.data() + bad.size() - 4, &nan, 4);
  EXPECT_THROW(KMeansState::deserialize(bad.data(), bad.size()), Error);
  // Large states span several chunks.
  KMeansState big;
  std::vector<float> row(300);
  for (int r = 0; r < 1000; ++r) {
    for (int j = 0; j < 300; ++j) row[j] = static_cast<float>(r * 300 + j);
    big.add(row.data(), 300);
  }
  auto big2 = round_trip(big);
  EXPECT_EQ(big2->matrix(), big.matrix());
  EXPECT_EQ(big.row(999)[299], 999.0f * 300 + 299);
}

TEST(KMeans, Cancellation) {
  Blobs b = blobs(5, 200, 3, 30, 1.0, 6);
  KMeansState st = state_of(b);
  CancelToken cancel;
  cancel.cancel();
  try {
    build_kmeans_model(st, opts("{\"k\": 5}"), 2, cancel, [](const std::string&) {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  // From the progress callback after the first run: the second run does not start.
  KMeansState st2 = state_of(b);
  CancelToken later;
  int runs = 0;
  EXPECT_THROW(build_kmeans_model(st2, opts("{\"k\": 5, \"n_init\": 3, \"verbose\": true}"), 2, later,
                                  [&](const std::string&) {
                                    ++runs;
                                    later.cancel();
                                  }),
               Error);
  EXPECT_EQ(runs, 1);
}

TEST(KMeans, ModelValidation) {
  Blobs b = blobs(3, 30, 4, 30, 1.0, 12);
  KMeansState st = state_of(b);
  Model m = train(st, "{\"k\": 3, \"standardize\": true}");
  const std::vector<uint8_t> good = m.bytes();
  ModelView v = m.view();
  auto check = [](std::vector<uint8_t> bytes, bool resign) -> std::string {
    if (resign) {
      uint64_t fp = compute_fingerprint(bytes.data(), bytes.size());
      std::memcpy(bytes.data() + offsetof(ModelHeader, fingerprint), &fp, 8);
      const uint64_t cs = compute_checksum(bytes.data(), bytes.size());
      const uint32_t lo = static_cast<uint32_t>(cs), hi = static_cast<uint32_t>(cs >> 32);
      std::memcpy(bytes.data() + offsetof(ModelHeader, checksum_lo), &lo, 4);
      std::memcpy(bytes.data() + offsetof(ModelHeader, checksum_hi), &hi, 4);
    }
    Model c;
    c.size = bytes.size();
    c.words.assign((bytes.size() + 7) / 8, 0);
    std::memcpy(c.data(), bytes.data(), bytes.size());
    try {
      validate_model(c.data(), c.size);
      return "";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
      return e.what();
    }
  };
  EXPECT_EQ(check(good, false), "");
  auto entry = [&](SectionTag tag) {
    for (uint32_t i = 0; i < v.header->n_sections; ++i) {
      SectionEntry e;
      std::memcpy(&e, good.data() + sizeof(ModelHeader) + i * sizeof(SectionEntry), sizeof e);
      if (e.tag == static_cast<uint32_t>(tag)) return e;
    }
    ADD_FAILURE();
    return SectionEntry{};
  };
  std::mt19937_64 rng(4);
  for (int t = 0; t < 100; ++t) {
    auto x = good;
    x[4 + rng() % (x.size() - 4)] ^= 0x40;
    EXPECT_NE(check(x, false), "");
  }
  {
    auto x = good;
    float nan = NAN;
    std::memcpy(x.data() + entry(SectionTag::Centroids).offset, &nan, 4);
    EXPECT_NE(check(x, true).find("non-finite"), std::string::npos);
  }
  {
    auto x = good;
    int64_t s = 1000;
    std::memcpy(x.data() + entry(SectionTag::ClusterSizes).offset, &s, 8);
    EXPECT_NE(check(x, true).find("cluster size"), std::string::npos);
  }
  {
    auto x = good;
    float zero = 0;
    std::memcpy(x.data() + entry(SectionTag::FeatureScale).offset, &zero, 4);
    EXPECT_NE(check(x, true).find("scales"), std::string::npos);
  }
  {
    // The dimension in the header no longer matches the centroids.
    auto x = good;
    uint32_t f = 5;
    std::memcpy(x.data() + offsetof(ModelHeader, factors), &f, 4);
    EXPECT_NE(check(x, true), "");
  }
}

// Tests of the biased matrix factorization for explicit ratings (mf.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "json_options.h"
#include "metrics.h"
#include "mf.h"
#include "model_format.h"
#include "serving.h"
#include "training.h"

namespace recsys {
namespace {

// Ratings drawn from a known model: r = 3.5 + b_u + b_i + x_u . y_i + N(0, noise²).
struct Planted {
  int64_t users = 0, items = 0;
  int rank = 0;
  std::vector<double> bu, bi, x, y;
  double truth(int64_t u, int64_t i) const {
    double s = 3.5 + bu[u] + bi[i];
    for (int j = 0; j < rank; ++j) s += x[u * rank + j] * y[i * rank + j];
    return s;
  }
};

struct PlantedData {
  Planted model;
  CsrMatrix train;
  std::vector<std::tuple<int64_t, int64_t, double>> test;  // fresh pairs, not in train
};

// `n` distinct training pairs and `n_test` further distinct pairs, uniform over the grid.
PlantedData planted(int64_t users, int64_t items, int64_t n, int64_t n_test, int rank, double noise, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  PlantedData d;
  Planted& p = d.model;
  p.users = users;
  p.items = items;
  p.rank = rank;
  const double s = std::sqrt(0.7 / std::sqrt(static_cast<double>(rank)));  // x.y has std 0.7
  for (int64_t u = 0; u < users; ++u) p.bu.push_back(0.4 * n01(rng));
  for (int64_t i = 0; i < items; ++i) p.bi.push_back(0.4 * n01(rng));
  for (int64_t k = 0; k < users * rank; ++k) p.x.push_back(s * n01(rng));
  for (int64_t k = 0; k < items * rank; ++k) p.y.push_back(s * n01(rng));
  std::set<std::pair<int64_t, int64_t>> pairs;
  std::uniform_int_distribution<int64_t> pu(0, users - 1), pi(0, items - 1);
  while (static_cast<int64_t>(pairs.size()) < n + n_test) pairs.emplace(pu(rng), pi(rng));
  std::vector<std::pair<int64_t, int64_t>> all(pairs.begin(), pairs.end());
  std::shuffle(all.begin(), all.end(), rng);
  std::vector<std::pair<int64_t, int64_t>> train(all.begin(), all.begin() + n);
  std::sort(train.begin(), train.end());
  CsrMatrix& m = d.train;
  m.rows = users;
  m.cols = items;
  m.indptr.assign(static_cast<size_t>(users) + 1, 0);
  for (auto& [u, i] : train) {
    m.indices.push_back(static_cast<int32_t>(i));
    m.values.push_back(static_cast<float>(p.truth(u, i) + noise * n01(rng)));
    ++m.indptr[u + 1];
  }
  for (int64_t u = 0; u < users; ++u) m.indptr[u + 1] += m.indptr[u];
  for (int64_t k = n; k < n + n_test; ++k) {
    auto [u, i] = all[k];
    d.test.emplace_back(u, i, p.truth(u, i) + noise * n01(rng));
  }
  return d;
}

// One shared data set: 2000 users x 1000 items, 100k ratings, rank 3, noise 0.5.
const PlantedData& big_data() {
  static const PlantedData d = planted(2000, 1000, 100000, 20000, 3, 0.5, 11);
  return d;
}

// A small data set for fast tests.
const PlantedData& small_data() {
  static const PlantedData d = planted(300, 200, 8000, 1000, 3, 0.5, 5);
  return d;
}

double test_rmse(const MfModel& m, const PlantedData& d) {
  RatingMetrics r;
  for (auto& [u, i, v] : d.test) r.add(predict_rating(m, u, i), v);
  return r.rmse();
}

MfModel train(const CsrMatrix& ratings, const MfParams& p, int threads, std::vector<MfEpochStats>* stats = nullptr) {
  CancelToken cancel;
  return train_biased_mf(ratings, p, threads, cancel, [&](const MfEpochStats& s) {
    if (stats) stats->push_back(s);
  });
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

bool same_model(const MfModel& a, const MfModel& b) {
  return same_bits(a.user_factors, b.user_factors) && same_bits(a.item_factors, b.item_factors) &&
         same_bits(a.user_bias, b.user_bias) && same_bits(a.item_bias, b.item_bias) &&
         a.global_mean == b.global_mean;
}

// ------------------------------------------------------------------------ accuracy

TEST(BiasedMf, RecoversPlantedStructureToNoiseLevel) {
  const PlantedData& d = big_data();
  // Cleaner than MovieLens, so a lighter penalty than the default fits best.
  MfParams p;
  p.factors = 16;
  p.reg_factors = 0.25f;
  p.learning_rate = 0.03f;
  p.epochs = 100;
  std::vector<MfEpochStats> stats;
  const MfModel m = train(d.train, p, 2, &stats);
  ASSERT_EQ(stats.size(), static_cast<size_t>(p.epochs));
  const double rmse = test_rmse(m, d);
  // Noise sigma = 0.5: the test RMSE must be within 10% of it; the baseline alone
  // (no interaction term) cannot get below ~0.86.
  EXPECT_LT(rmse, 0.55) << "test RMSE " << rmse;
  CancelToken cancel;
  const MfModel base = train_baseline(d.train, BaselineParams(), 2, cancel);
  EXPECT_GT(test_rmse(base, d), 0.8);
  // Learned biases track the planted ones.
  double num = 0, da = 0, db = 0;
  for (int64_t i = 0; i < d.model.items; ++i) {
    num += m.item_bias[i] * d.model.bi[i];
    da += m.item_bias[i] * m.item_bias[i];
    db += d.model.bi[i] * d.model.bi[i];
  }
  EXPECT_GT(num / std::sqrt(da * db), 0.9);
  EXPECT_NEAR(m.global_mean, 3.5, 0.1);
}

TEST(BiasedMf, TrainRmseDecreasesOverEarlyEpochs) {
  MfParams p;
  p.factors = 8;
  p.epochs = 8;
  std::vector<MfEpochStats> stats;
  train(small_data().train, p, 2, &stats);
  ASSERT_EQ(stats.size(), 8u);
  for (size_t e = 1; e < stats.size(); ++e) {
    EXPECT_LT(stats[e].train_rmse, stats[e - 1].train_rmse) << "epoch " << e + 1;
    EXPECT_EQ(stats[e].epoch, static_cast<int>(e + 1));
    EXPECT_TRUE(std::isnan(stats[e].validation_rmse));
    EXPECT_GE(stats[e].seconds, 0.0);
  }
}

TEST(BiasedMf, AllSchedulesAndFactorSizesTrain) {
  const PlantedData& d = small_data();
  CancelToken cancel;
  const double baseline = test_rmse(train_baseline(d.train, BaselineParams(), 1, cancel), d);
  for (LrSchedule s : {LrSchedule::Constant, LrSchedule::Decay, LrSchedule::AdaGrad}) {
    for (int f : {3, 8, 13, 64, 136}) {  // generic, fixed-size and > 128 kernels
      MfParams p;
      p.factors = f;
      p.epochs = 30;
      p.schedule = s;
      if (s == LrSchedule::AdaGrad) p.learning_rate = 0.05f;
      const MfModel m = train(d.train, p, 2);
      ASSERT_EQ(m.user_factors.size(), static_cast<size_t>(300 * f));
      ASSERT_EQ(m.item_factors.size(), static_cast<size_t>(200 * f));
      EXPECT_LT(test_rmse(m, d), baseline) << lr_schedule_name(s) << " f=" << f;
    }
  }
}

// --------------------------------------------------------------------- determinism

TEST(BiasedMf, BitIdenticalForSameSeedAndAcrossThreadCounts) {
  const CsrMatrix& r = small_data().train;
  MfParams p;
  p.factors = 16;
  p.epochs = 5;
  p.min_ratings_per_thread = 1;  // really use every thread on this small matrix
  const MfModel a = train(r, p, 2);
  const MfModel b = train(r, p, 2);
  EXPECT_TRUE(same_model(a, b));
  // The grid (16 blocks) does not depend on the thread count up to 8 threads.
  const MfModel c = train(r, p, 1);
  const MfModel e = train(r, p, 3);
  EXPECT_TRUE(same_model(a, c));
  EXPECT_TRUE(same_model(a, e));
  for (size_t k = 0; k < a.history.size(); ++k) EXPECT_EQ(a.history[k].train_rmse, c.history[k].train_rmse);
  p.seed = 43;
  const MfModel s = train(r, p, 2);
  EXPECT_FALSE(same_bits(a.user_factors, s.user_factors));
  EXPECT_FALSE(same_bits(a.item_bias, s.item_bias));
  // A different grid is a different (equally valid) schedule.
  p.seed = 42;
  p.blocks = 5;
  const MfModel g = train(r, p, 2);
  EXPECT_FALSE(same_bits(a.user_factors, g.user_factors));
  EXPECT_EQ(g.blocks, 5);
}

// -------------------------------------------------------------------- cancellation

TEST(BiasedMf, ManyThreadsOnManyBlocksMatchOneThread) {
  // More threads than cores and a fine grid: blocks of consecutive rounds overlap in
  // time and threads wait on each other; the model must not change.
  const CsrMatrix& r = big_data().train;
  MfParams p;
  p.factors = 8;
  p.epochs = 3;
  p.blocks = 24;
  p.min_ratings_per_thread = 1;
  const MfModel one = train(r, p, 1);
  for (int threads : {2, 5, 12}) {
    const MfModel many = train(r, p, threads);
    EXPECT_TRUE(same_model(one, many)) << threads << " threads";
    for (size_t e = 0; e < one.history.size(); ++e)
      EXPECT_EQ(one.history[e].train_rmse, many.history[e].train_rmse);
  }
}

TEST(BiasedMf, CancelledTokenThrowsCancelled) {
  CancelToken cancel;
  cancel.cancel();
  MfParams p;
  p.epochs = 3;
  try {
    train_biased_mf(small_data().train, p, 2, cancel, nullptr);
    FAIL() << "expected Cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
}

TEST(BiasedMf, CancelFromCallbackStopsAfterThatEpoch) {
  CancelToken cancel;
  MfParams p;
  p.factors = 8;
  p.epochs = 50;
  int epochs_seen = 0;
  try {
    train_biased_mf(small_data().train, p, 2, cancel, [&](const MfEpochStats& s) {
      ++epochs_seen;
      if (s.epoch == 2) cancel.cancel();
    });
    FAIL() << "expected Cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  EXPECT_EQ(epochs_seen, 2);
}

TEST(BiasedMf, CancelFromAnotherThreadStopsWithinAnEpoch) {
  CancelToken cancel;
  MfParams p;
  p.factors = 32;
  p.epochs = 100000;  // would run for a very long time
  p.min_ratings_per_thread = 1;
  std::atomic<int> epochs_seen{0};
  std::thread canceller([&] {
    while (epochs_seen.load() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    cancel.cancel();
  });
  const auto t0 = std::chrono::steady_clock::now();
  try {
    train_biased_mf(big_data().train, p, 2, cancel, [&](const MfEpochStats&) { ++epochs_seen; });
    ADD_FAILURE() << "expected Cancelled";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  canceller.join();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
}

// ------------------------------------------------------------------ early stopping

TEST(BiasedMf, EarlyStoppingKeepsTheBestEpoch) {
  const CsrMatrix& r = small_data().train;
  // Many factors, no regularization, a high constant rate: overfits within a few epochs.
  MfParams p;
  p.factors = 64;
  p.epochs = 200;
  p.reg_factors = 0;
  p.reg_bias = 0;
  p.learning_rate = 0.03f;
  p.schedule = LrSchedule::Constant;
  p.init_scale = 0.1f;
  p.holdout_fraction = 0.1;
  p.patience = 3;
  std::vector<MfEpochStats> stats;
  const MfModel a = train(r, p, 2, &stats);
  ASSERT_LT(stats.size(), 200u) << "validation RMSE never stopped improving";
  EXPECT_EQ(a.validation_ratings, 800);
  EXPECT_EQ(a.train_ratings, 7200);
  int best = 0;
  double best_rmse = 1e300;
  for (const MfEpochStats& s : stats) {
    ASSERT_FALSE(std::isnan(s.validation_rmse));
    if (s.validation_rmse < best_rmse) {
      best_rmse = s.validation_rmse;
      best = s.epoch;
    }
  }
  EXPECT_EQ(a.best_epoch, best);
  EXPECT_EQ(a.validation_rmse, best_rmse);
  EXPECT_EQ(static_cast<int>(stats.size()), best + p.patience);  // stopped after `patience` bad epochs
  ASSERT_LT(a.best_epoch, static_cast<int>(stats.size()));
  // The kept parameters are those of the best epoch: a run that ends there matches.
  p.epochs = best;
  const MfModel b = train(r, p, 2);
  EXPECT_EQ(b.best_epoch, best);
  EXPECT_TRUE(same_model(a, b));
  // And they differ from the last epoch's.
  p.epochs = static_cast<int>(stats.size());
  p.patience = 1000;
  p.holdout_fraction = 0.1;
  const MfModel c = train(r, p, 2);
  EXPECT_TRUE(same_model(a, c));  // restored even when the epoch budget runs out first
  EXPECT_EQ(c.history.size(), stats.size());
}

TEST(BiasedMf, RatingScaleDoesNotMatter) {
  // Ratings are standardized internally: r' = 10 r + 3 gives the same model in r' units.
  const PlantedData& d = small_data();
  CsrMatrix scaled = d.train;
  for (float& v : scaled.values) v = 10.0f * v + 3.0f;
  MfParams p;
  p.factors = 8;
  p.epochs = 10;
  const MfModel a = train(d.train, p, 2);
  const MfModel b = train(scaled, p, 2);
  EXPECT_NEAR(b.global_mean, 10 * a.global_mean + 3, 1e-3);
  EXPECT_NEAR(b.rating_max, 10 * a.rating_max + 3, 1e-3);
  for (int64_t u = 0; u < 300; u += 7)
    for (int64_t i = 0; i < 200; i += 11) EXPECT_NEAR(predict_rating(b, u, i), 10 * predict_rating(a, u, i) + 3, 1e-2);
  for (size_t e = 0; e < a.history.size(); ++e)
    EXPECT_NEAR(b.history[e].train_rmse, 10 * a.history[e].train_rmse, 1e-3);
}

TEST(BiasedMf, GlobalMeanIsTheMeanOfTrainingRatings) {
  CsrMatrix m;
  m.rows = 2;
  m.cols = 2;
  m.indptr = {0, 2, 3};
  m.indices = {0, 1, 1};
  m.values = {1, 2, 5};
  MfParams p;
  p.factors = 2;
  p.epochs = 1;
  const MfModel a = train(m, p, 1);
  EXPECT_DOUBLE_EQ(a.global_mean, 8.0 / 3.0);
  EXPECT_EQ(a.rating_min, 1.0);
  EXPECT_EQ(a.rating_max, 5.0);
}

// ------------------------------------------------------------------------ predict

MfModel hand_model() {
  MfModel m;
  m.factors = 2;
  m.n_users = 2;
  m.n_items = 2;
  m.user_factors = {1, 2, 0.5f, -1};
  m.item_factors = {0.5f, 0.25f, 3, 3};
  m.user_bias = {0.5f, -0.25f};
  m.item_bias = {-1, 0.75f};
  m.global_mean = 3;
  m.rating_min = 1;
  m.rating_max = 5;
  return m;
}

TEST(BiasedMf, PredictFallbacksAndClipping) {
  const MfModel m = hand_model();
  // Known pair: 3 + 0.5 - 1 + (0.5 + 0.5) = 3.5.
  EXPECT_DOUBLE_EQ(predict_rating(m, 0, 0), 3.5);
  // 3 + 0.5 + 0.75 + (3 + 6) = 13.25 → clipped to 5.
  EXPECT_DOUBLE_EQ(predict_rating(m, 0, 1), 5.0);
  // 3 - 0.25 - 1 + (0.25 - 0.25) = 1.75.
  EXPECT_DOUBLE_EQ(predict_rating(m, 1, 0), 1.75);
  EXPECT_DOUBLE_EQ(predict_rating(m, -1, 1), 3.75);  // unknown user: μ + b_i
  EXPECT_DOUBLE_EQ(predict_rating(m, 1, -1), 2.75);  // unknown item: μ + b_u
  EXPECT_DOUBLE_EQ(predict_rating(m, -1, -1), 3.0);  // both unknown: μ
  MfModel low = m;
  low.global_mean = 1.2;
  low.item_bias[0] = -2;
  EXPECT_DOUBLE_EQ(predict_rating(low, -1, 0), 1.0);  // clipped below
  EXPECT_THROW(predict_rating(m, 2, 0), Error);
  EXPECT_THROW(predict_rating(m, 0, 2), Error);
}

// ------------------------------------------------------------------ the baseline

TEST(BiasedMfBaseline, MatchesClosedFormAlternation) {
  // 2 users, 2 items; one epoch by hand with reg_user = 1, reg_item = 2.
  CsrMatrix m;
  m.rows = 2;
  m.cols = 2;
  m.indptr = {0, 2, 3};
  m.indices = {0, 1, 0};
  m.values = {4, 2, 5};  // μ = 11/3
  BaselineParams p;
  p.epochs = 1;
  p.reg_user = 1;
  p.reg_item = 2;
  CancelToken cancel;
  const MfModel b = train_baseline(m, p, 1, cancel);
  const double mu = 11.0 / 3.0;
  const double bi0 = ((4 - mu) + (5 - mu)) / (2 + 2), bi1 = (2 - mu) / (2 + 1);
  const double bu0 = ((4 - mu - bi0) + (2 - mu - bi1)) / (1 + 2), bu1 = (5 - mu - bi0) / (1 + 1);
  EXPECT_EQ(b.factors, 0);
  EXPECT_NEAR(b.item_bias[0], bi0, 1e-6);
  EXPECT_NEAR(b.item_bias[1], bi1, 1e-6);
  EXPECT_NEAR(b.user_bias[0], bu0, 1e-6);
  EXPECT_NEAR(b.user_bias[1], bu1, 1e-6);
  EXPECT_NEAR(predict_rating(b, 0, 1), mu + bu0 + bi1, 1e-6);
  ASSERT_EQ(b.history.size(), 1u);
}

TEST(BiasedMfBaseline, ImprovesOnTheGlobalMeanAndFactorsZeroSgdWorks) {
  const PlantedData& d = small_data();
  CancelToken cancel;
  const MfModel base = train_baseline(d.train, BaselineParams(), 2, cancel);
  // The alternation lowers the regularized objective every epoch; the plain training
  // RMSE follows it (up to rounding once converged).
  double train_rmse_prev = 1e300;
  for (auto& s : base.history) {
    EXPECT_LE(s.train_rmse, train_rmse_prev + 1e-6);
    train_rmse_prev = s.train_rmse;
  }
  EXPECT_LT(base.history.back().train_rmse, base.history.front().train_rmse);
  RatingMetrics mean_only;
  for (auto& [u, i, v] : d.test) mean_only.add(base.global_mean, v);
  const double base_rmse = test_rmse(base, d);
  EXPECT_LT(base_rmse, mean_only.rmse() - 0.05);
  // SGD with no factors fits the same biased model.
  MfParams p;
  p.factors = 0;
  p.epochs = 30;
  const MfModel sgd = train(d.train, p, 2);
  EXPECT_TRUE(sgd.user_factors.empty());
  EXPECT_NEAR(test_rmse(sgd, d), base_rmse, 0.03);
}

// ---------------------------------------------- rating matrix, options, models

TEST(BiasedMfPipeline, RatingMatrixAveragesDuplicatesAndKeepsZeros) {
  TrainingState st(KeyKind::Int, 20, KeyKind::Int, 20);
  auto add = [&](int64_t u, int64_t i, double r) { st.add(st.users.intern_int(u), st.items.intern_int(i), r); };
  add(7, 100, 4);
  add(3, 200, 0);
  add(7, 100, 2);
  add(7, 100, 5);
  add(3, 100, 1);
  CancelToken cancel;
  uint64_t dups = 0;
  const auto uo = st.users.sorted_order(), io = st.items.sorted_order();
  const CsrMatrix m = build_rating_matrix(st, KeyInterner::invert(uo), KeyInterner::invert(io), cancel, &dups);
  EXPECT_EQ(dups, 2u);
  ASSERT_EQ(m.rows, 2);  // users 3, 7
  ASSERT_EQ(m.cols, 2);  // items 100, 200
  EXPECT_EQ(m.indptr, (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(m.indices, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_EQ(m.values, (std::vector<float>{1, 0, 11.0f / 3.0f}));
}

TEST(BiasedMfPipeline, ParsesOptions) {
  const MfTrainingOptions d = parse_mf_options("");
  EXPECT_EQ(d.mf.factors, MfParams().factors);
  EXPECT_EQ(d.mf.epochs, MfParams().epochs);
  EXPECT_FLOAT_EQ(d.mf.init_scale, static_cast<float>(0.1 / std::sqrt(MfParams().factors)));
  EXPECT_FLOAT_EQ(d.mf.bias_learning_rate, d.mf.learning_rate / 4);
  EXPECT_DOUBLE_EQ(d.mf.reg_exponent, 0.5);
  EXPECT_TRUE(d.store_seen);
  const MfTrainingOptions o = parse_mf_options(
      R"({"factors": 0, "epochs": 7, "learning_rate": 0.02, "lr_schedule": "adagrad", "reg_bias": 0.1,
          "reg_factors": 0.2, "init_scale": 0.3, "seed": 9, "holdout_fraction": 0.05, "patience": 2,
          "blocks": 4, "store_seen": false, "verbose": true, "threads": 1, "lr_decay": 0.5,
          "bias_learning_rate": 0.001, "reg_exponent": 0})");
  EXPECT_EQ(o.mf.factors, 0);
  EXPECT_EQ(o.mf.epochs, 7);
  EXPECT_FLOAT_EQ(o.mf.learning_rate, 0.02f);
  EXPECT_FLOAT_EQ(o.mf.bias_learning_rate, 0.001f);
  EXPECT_EQ(o.mf.schedule, LrSchedule::AdaGrad);
  EXPECT_FLOAT_EQ(o.mf.reg_bias, 0.1f);
  EXPECT_FLOAT_EQ(o.mf.reg_factors, 0.2f);
  EXPECT_FLOAT_EQ(o.mf.init_scale, 0.3f);
  EXPECT_EQ(o.mf.seed, 9u);
  EXPECT_DOUBLE_EQ(o.mf.holdout_fraction, 0.05);
  EXPECT_EQ(o.mf.patience, 2);
  EXPECT_EQ(o.mf.blocks, 4);
  EXPECT_FLOAT_EQ(o.mf.lr_decay, 0.5f);
  EXPECT_DOUBLE_EQ(o.mf.reg_exponent, 0.0);
  EXPECT_FALSE(o.store_seen);
  EXPECT_TRUE(o.verbose);
  EXPECT_EQ(o.threads, 1);
  auto message = [](const std::string& json) {
    try {
      parse_mf_options(json);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"factor": 3})").find("\"factor\""), std::string::npos);
  EXPECT_NE(message(R"({"learning_rate": -1})").find("learning_rate"), std::string::npos);
  EXPECT_NE(message(R"({"lr_schedule": "cosine"})").find("lr_schedule"), std::string::npos);
  EXPECT_NE(message(R"({"holdout_fraction": 1})").find("holdout_fraction"), std::string::npos);
  EXPECT_NE(message(R"({"epochs": 1.5})").find("epochs"), std::string::npos);
  EXPECT_NE(message(R"({"reg_exponent": 3})").find("reg_exponent"), std::string::npos);
  const BaselineTrainingOptions b = parse_baseline_options(R"({"epochs": 3, "reg_user": 5, "reg_item": 2})");
  EXPECT_EQ(b.baseline.epochs, 3);
  EXPECT_EQ(b.baseline.reg_user, 5);
  EXPECT_EQ(b.baseline.reg_item, 2);
  EXPECT_THROW(parse_baseline_options(R"({"factors": 3})"), Error);
}

TEST(BiasedMf, RejectsBadParametersAndDivergence) {
  const CsrMatrix& r = small_data().train;
  auto kind_of = [&](MfParams p) {
    try {
      train(r, p, 1);
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::Internal;
  };
  MfParams p;
  p.learning_rate = 0;
  EXPECT_EQ(kind_of(p), ErrorKind::InvalidParameter);
  p = MfParams();
  p.holdout_fraction = 1.0;
  EXPECT_EQ(kind_of(p), ErrorKind::InvalidParameter);
  p = MfParams();
  p.factors = -1;
  EXPECT_EQ(kind_of(p), ErrorKind::InvalidParameter);
  p = MfParams();
  p.learning_rate = 5;  // diverges
  p.schedule = LrSchedule::Constant;
  p.epochs = 50;
  EXPECT_EQ(kind_of(p), ErrorKind::InvalidParameter);
  CsrMatrix bad = r;
  bad.values[3] = std::nanf("");
  EXPECT_THROW(train(bad, MfParams(), 1), Error);
}

TEST(BiasedMf, EmptyAndTinyInputs) {
  CsrMatrix empty;
  empty.rows = 3;
  empty.cols = 2;
  empty.indptr = {0, 0, 0, 0};
  MfParams p;
  p.epochs = 2;
  p.holdout_fraction = 0.5;
  const MfModel m = train(empty, p, 2);
  EXPECT_EQ(m.global_mean, 0.0);
  EXPECT_EQ(m.user_bias.size(), 3u);
  EXPECT_EQ(predict_rating(m, 0, 1), 0.0);
  CsrMatrix one;
  one.rows = 1;
  one.cols = 1;
  one.indptr = {0, 1};
  one.indices = {0};
  one.values = {4};
  const MfModel o = train(one, p, 2);  // one rating: nothing can be held out
  EXPECT_EQ(o.validation_ratings, 0);
  EXPECT_DOUBLE_EQ(predict_rating(o, 0, 0), 4.0);
}

// Writes a builder into an 8-byte aligned buffer.
std::vector<uint64_t> write_model(const ModelBuilder& b, uint64_t* size) {
  *size = b.total_size();
  std::vector<uint64_t> buf((*size + 7) / 8, 0);
  b.write(reinterpret_cast<uint8_t*>(buf.data()));
  return buf;
}

std::unique_ptr<TrainingState> state_from(const CsrMatrix& m) {
  auto st = std::make_unique<TrainingState>(KeyKind::Int, 20, KeyKind::Int, 20);
  // Keys 1000 + index in reverse arrival order, so interning order differs from key order.
  for (int64_t u = m.rows - 1; u >= 0; --u)
    for (int64_t k = m.indptr[u]; k < m.indptr[u + 1]; ++k)
      st->add(st->users.intern_int(1000 + u), st->items.intern_int(1000 + m.indices[k]), m.values[k]);
  return st;
}

TEST(BiasedMfPipeline, BuildsAValidBiasedMfModel) {
  const CsrMatrix& r = small_data().train;
  auto st = state_from(r);
  st->rows_skipped = 4;
  MfTrainingOptions o = parse_mf_options(R"({"factors": 8, "epochs": 6, "holdout_fraction": 0.05, "verbose": true})");
  std::vector<std::string> lines;
  CancelToken cancel;
  build_mf_model(*st, o, 2, cancel, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(st->result);
  EXPECT_GE(lines.size(), 7u);
  uint64_t size = 0;
  const auto buf = write_model(*st->result, &size);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(buf.data());
  ASSERT_NO_THROW(validate_model(bytes, size));
  const ModelView v = ModelView::open(bytes, size);
  EXPECT_EQ(v.kind(), ModelKind::BiasedMf);
  EXPECT_EQ(v.factors(), 8);
  EXPECT_EQ(v.n_users(), r.rows);
  EXPECT_EQ(v.n_items(), r.cols);
  EXPECT_EQ(v.header->n_interactions, static_cast<uint64_t>(r.nnz()));
  EXPECT_EQ(v.header->rating_min, *std::min_element(r.values.begin(), r.values.end()));
  EXPECT_EQ(v.header->rating_max, *std::max_element(r.values.begin(), r.values.end()));
  EXPECT_NEAR(v.header->global_mean, 3.5, 0.2);
  for (SectionTag t : {SectionTag::Params, SectionTag::UserKeys, SectionTag::ItemKeys, SectionTag::UserFactors,
                       SectionTag::ItemFactors, SectionTag::UserBias, SectionTag::ItemBias, SectionTag::UserNorms,
                       SectionTag::ItemNorms, SectionTag::UserItems, SectionTag::ItemPopularity,
                       SectionTag::PopularOrder, SectionTag::History})
    EXPECT_NE(v.section(t), nullptr) << static_cast<int>(t);
  const std::string params = v.params_json();
  for (const char* key : {"\"best_epoch\"", "\"validation_rmse\"", "\"rows\": 8000", "\"rows_skipped\": 4",
                          "\"factors\": 8", "\"lr_schedule\": \"decay\"", "\"validation_ratings\": 400"})
    EXPECT_NE(params.find(key), std::string::npos) << key << " in " << params;
  int64_t epochs = 0;
  v.history(&epochs);
  EXPECT_GE(epochs, 1);
  EXPECT_LE(epochs, 6);
  // Popularity = ratings per item.
  const float* pop = v.section_as<float>(SectionTag::ItemPopularity);
  std::vector<float> count(static_cast<size_t>(r.cols), 0);
  for (int32_t i : r.indices) count[i] += 1;
  for (int64_t i = 0; i < r.cols; ++i) EXPECT_EQ(pop[i], count[i]);
  // Key lookups: key 1000 + k is index k.
  EXPECT_EQ(v.user_keys().find_int(1000 + 17), 17);
  // predict_pair = μ + b_u + b_i + p.q, with the fallbacks.
  const float* P = v.user_factors();
  const float* Q = v.item_factors();
  const float* ub = v.section_as<float>(SectionTag::UserBias);
  const float* ib = v.section_as<float>(SectionTag::ItemBias);
  double dot = 0;
  for (int j = 0; j < 8; ++j) dot += static_cast<double>(P[5 * 8 + j]) * Q[7 * 8 + j];
  const double mu = v.header->global_mean;
  auto clip = [&](double x) { return std::min(std::max(x, v.header->rating_min), v.header->rating_max); };
  EXPECT_NEAR(predict_pair(v, 5, 7), clip(mu + ub[5] + ib[7] + dot), 1e-9);
  EXPECT_NEAR(predict_pair(v, -1, 7), clip(mu + ib[7]), 1e-9);
  EXPECT_NEAR(predict_pair(v, 5, -1), clip(mu + ub[5]), 1e-9);
  EXPECT_NEAR(predict_pair(v, -1, -1), mu, 1e-9);
  EXPECT_THROW(predict_pair(v, r.rows, 0), Error);
  // Serving ranks by p.q + b_i (μ + b_u is constant per user): the top item has the
  // highest prediction among unseen items (before clipping).
  std::vector<Scored> top;
  ASSERT_EQ(recommend_user(v, 5, 1, true, top), 1);
  EXPECT_NEAR(score_pair(v, 5, top[0].index) + mu + ub[5],
              mu + ub[5] + ib[top[0].index] +
                  [&] {
                    double s = 0;
                    for (int j = 0; j < 8; ++j) s += static_cast<double>(P[5 * 8 + j]) * Q[top[0].index * 8 + j];
                    return s;
                  }(),
              1e-4);
}

TEST(BiasedMfPipeline, BaselineModelHasZeroFactorsAndServes) {
  const CsrMatrix& r = small_data().train;
  auto st = state_from(r);
  BaselineTrainingOptions o = parse_baseline_options(R"({"store_seen": true})");
  CancelToken cancel;
  build_baseline_model(*st, o, 2, cancel, [](const std::string&) {});
  uint64_t size = 0;
  const auto buf = write_model(*st->result, &size);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(buf.data());
  ASSERT_NO_THROW(validate_model(bytes, size));
  const ModelView v = ModelView::open(bytes, size);
  EXPECT_EQ(v.kind(), ModelKind::BiasedMf);
  EXPECT_EQ(v.factors(), 0);
  uint64_t len = 1;
  EXPECT_NE(v.section(SectionTag::UserFactors, &len), nullptr);
  EXPECT_EQ(len, 0u);
  EXPECT_NE(v.params_json().find("\"model\": \"baseline\""), std::string::npos);
  const float* ub = v.section_as<float>(SectionTag::UserBias);
  const float* ib = v.section_as<float>(SectionTag::ItemBias);
  const double mu = v.header->global_mean;
  auto clip = [&](double x) { return std::min(std::max(x, v.header->rating_min), v.header->rating_max); };
  EXPECT_NEAR(predict_pair(v, 3, 4), clip(mu + ub[3] + ib[4]), 1e-9);
  // Recommendation ranks unseen items by item bias; scores are the item biases.
  std::vector<Scored> top;
  ASSERT_EQ(recommend_user(v, 3, 5, true, top), 5);
  for (size_t k = 1; k < top.size(); ++k) EXPECT_GE(top[k - 1].score, top[k].score);
  EXPECT_FLOAT_EQ(top[0].score, ib[top[0].index]);
  EXPECT_FLOAT_EQ(score_pair(v, 3, 4), ib[4]);
  std::vector<Scored> sim;
  EXPECT_NO_THROW(similar_items(v, 0, 3, sim));  // all-zero factors: cosine 0 everywhere
}

TEST(BiasedMfPipeline, PredictPairRejectsOtherModelKinds) {
  ModelBuilder b;
  b.header.kind = static_cast<uint16_t>(ModelKind::ImplicitAls);
  b.header.user_key_kind = b.header.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  uint64_t size = 0;
  const auto buf = write_model(b, &size);
  const ModelView v = ModelView::open(reinterpret_cast<const uint8_t*>(buf.data()), size);
  try {
    predict_pair(v, -1, -1);
    FAIL() << "expected NotSupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotSupported);
  }
}

}  // namespace
}  // namespace recsys

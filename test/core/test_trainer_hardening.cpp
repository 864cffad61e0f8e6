// Issue 10, defects 2 and 9 in the core: trainers compute in a safe range or fail with
// a clear error, never leaving a model that the model reader refuses; weights that sum
// to zero leave no model at all (the aggregate returns NULL).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "json_options.h"
#include "model_bytes.h"
#include "model_format.h"

using recsys::ErrorKind;
using recsys::KeyKind;
using recsys::TrainingState;

namespace {

const auto no_log = [](const std::string&) {};

struct Row {
  int64_t user, item;
  double weight;
};

std::unique_ptr<TrainingState> state_of(const std::vector<Row>& rows) {
  auto st = std::make_unique<TrainingState>(KeyKind::Int, 20, KeyKind::Int, 20);
  for (const Row& r : rows) st->add(st->users.intern_int(r.user), st->items.intern_int(r.item), r.weight);
  return st;
}

// Runs fn, expects Error(kind) whose message holds every needle.
template <class Fn>
void expect_error(Fn fn, ErrorKind kind, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const recsys::Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
}

// The model left in the state, written and re-validated as the type's input would.
recsys_test::Model written(TrainingState& st) {
  EXPECT_TRUE(st.result != nullptr);
  recsys_test::Model m = recsys_test::write_model(*st.result);
  recsys::validate_model(m.data(), m.size);
  recsys::check_trained_model(m.data(), m.size, "test");
  return m;
}

}  // namespace

TEST(SafeRange, ScaleIsExactAndOnlyWhenNeeded) {
  std::vector<float> normal = {1.0f, -3.5f, 1e12f, 0.0f};
  const std::vector<float> before = normal;
  EXPECT_EQ(recsys::scale_into_safe_range(normal, 40), 1.0);
  EXPECT_EQ(normal, before);  // ordinary inputs untouched

  std::vector<float> huge = {3e38f, -1e38f, 1.0f, 0.0f};
  const double f = recsys::scale_into_safe_range(huge, 40);
  EXPECT_LT(f, 1.0);
  int e = 0;
  EXPECT_EQ(std::frexp(f, &e), 0.5);  // a power of two
  EXPECT_LE(std::fabs(huge[0]), std::ldexp(1.0, 40));
  EXPECT_GT(std::fabs(huge[0]), std::ldexp(1.0, 39));
  EXPECT_EQ(huge[0] / huge[1], 3e38f / -1e38f);  // ratios kept exactly
  EXPECT_EQ(huge[2], static_cast<float>(f));
  EXPECT_EQ(huge[3], 0.0f);

  std::vector<double> sums = {6e38, 3e38};
  const double g = recsys::scale_into_safe_range(sums, 126);
  EXPECT_LT(g, 1.0);
  EXPECT_TRUE(std::isfinite(static_cast<float>(sums[0])));
  EXPECT_EQ(sums[0] / sums[1], 2.0);
}

TEST(SafeRange, FactorRangeCheck) {
  const std::vector<float> x = {1, 2, 3, 4}, y = {0.5f, 0.5f};
  EXPECT_NO_THROW(recsys::check_factor_range(x.data(), 2, y.data(), 1, 2, "train_x"));
  const std::vector<float> big = {1e20f, 1e20f};
  expect_error([&] { recsys::check_factor_range(big.data(), 1, big.data(), 1, 2, "train_x"); },
               ErrorKind::DataException, {"train_x", "weights too large"});
  const std::vector<float> nan = {std::numeric_limits<float>::quiet_NaN(), 0};
  expect_error([&] { recsys::check_factor_range(nan.data(), 1, y.data(), 1, 2, "train_x"); },
               ErrorKind::DataException, {"train_x"});
}

TEST(SafeRange, TrainedModelCheckNamesTheTrainer) {
  auto st = state_of({{1, 1, 1}, {2, 1, 1}, {2, 2, 1}});
  recsys::build_popularity_model(*st, recsys::PopularityOptions{}, recsys::CancelToken(), no_log);
  recsys_test::Model m = written(*st);
  // A corrupted copy (a non-finite popularity) fails with the trainer's name.
  uint64_t len = 0;
  recsys::ModelView v = m.view();
  const uint8_t* pop = v.section(recsys::SectionTag::ItemPopularity, &len);
  ASSERT_NE(pop, nullptr);
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(m.data() + (pop - m.data()), &inf, 4);
  expect_error([&] { recsys::check_trained_model(m.data(), m.size, "train_popularity"); }, ErrorKind::DataException,
               {"train_popularity", "failed validation", "too large"});
}

TEST(SafeRange, PairSumBeyondRealIsAClearError) {
  auto st = state_of({{1, 1, 3e38}, {1, 1, 3e38}, {1, 2, 1}, {2, 2, 1}});
  expect_error(
      [&] {
        recsys::build_item_knn_model(*st, recsys::parse_item_knn_options(R"({"similarity": "cosine", "shrinkage": 0})"), 1,
                                 recsys::CancelToken(), no_log);
      },
      ErrorKind::DataException, {"train_item_knn", "weights too large"});
}

TEST(SafeRange, PopularityByHugeWeightIsScaledAndValid) {
  auto st = state_of({{1, 1, 3e38}, {2, 1, 3e38}, {1, 2, 1e38}});
  recsys::build_popularity_model(*st, recsys::parse_popularity_options(R"({"measure": "weight"})"),
                                 recsys::CancelToken(), no_log);
  recsys_test::Model m = written(*st);
  const float* pop = m.view().section_as<float>(recsys::SectionTag::ItemPopularity);
  EXPECT_TRUE(std::isfinite(pop[0]));
  EXPECT_FLOAT_EQ(pop[0] / pop[1], 6.0f);
  EXPECT_NE(m.view().params_json().find("\"weight_scale\""), std::string::npos);
}

TEST(SafeRange, ItemKnnWithHugeWeightsKeepsItsCosines) {
  // The same data at two scales, 2^126 apart (item 1's norm, 4.7 x 2^126, is beyond
  // real; every weight is not): the neighbour scores agree bit for bit (the cosine is
  // scale-free; bm25, the default, saturates and shrinkage is absolute, so both are off).
  const double s = std::ldexp(1.0, 126);
  auto small = state_of({{1, 1, 3}, {1, 2, 3}, {2, 2, 2}, {2, 1, 2}, {3, 1, 3}});
  auto huge = state_of({{1, 1, 3 * s}, {1, 2, 3 * s}, {2, 2, 2 * s}, {2, 1, 2 * s}, {3, 1, 3 * s}});
  for (auto* st : {small.get(), huge.get()})
    recsys::build_item_knn_model(*st, recsys::parse_item_knn_options(R"({"similarity": "cosine", "shrinkage": 0})"), 1,
                                 recsys::CancelToken(), no_log);
  recsys_test::Model a = written(*small), b = written(*huge);
  uint64_t la = 0, lb = 0;
  const uint8_t* sa = a.view().section(recsys::SectionTag::NeighbourScores, &la);
  const uint8_t* sb = b.view().section(recsys::SectionTag::NeighbourScores, &lb);
  ASSERT_EQ(la, lb);
  ASSERT_GT(la, 0u);
  EXPECT_EQ(std::memcmp(sa, sb, la), 0);
  EXPECT_EQ(a.view().params_json().find("weight_scale"), std::string::npos);  // ordinary input: unchanged
  EXPECT_NE(b.view().params_json().find("\"weight_scale\""), std::string::npos);
}

// The float solve of huge confidences overflows or not depending on the build's
// kernels (FMA, vector width): either way the outcome is a clear error or a model that
// validates and whose every score is finite, never an invalid model.
TEST(SafeRange, AlsWithHugeWeightsFailsClearlyOrStaysValid) {
  int errors = 0;
  for (double w : {1e15, 1e25}) {
    auto st = state_of({{1, 1, w}, {2, 1, 1}, {2, 2, 1}, {3, 2, 1}});
    try {
      recsys::build_als_model(*st, recsys::parse_als_options(R"({"factors": 2, "iterations": 2})"), 1,
                              recsys::CancelToken(), no_log);
    } catch (const recsys::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::DataException) << e.what();
      EXPECT_NE(std::string(e.what()).find("train_als"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("weights too large"), std::string::npos) << e.what();
      ++errors;
      continue;
    }
    recsys_test::Model m = written(*st);
    const recsys::ModelView v = m.view();
    const float* x = v.user_factors();
    const float* y = v.item_factors();
    ASSERT_TRUE(x && y);
    for (int64_t u = 0; u < v.n_users(); ++u)
      for (int64_t i = 0; i < v.n_items(); ++i) {
        float s = 0;
        for (int j = 0; j < v.factors(); ++j) s += x[u * v.factors() + j] * y[i * v.factors() + j];
        EXPECT_TRUE(std::isfinite(s)) << "w = " << w;
      }
  }
  EXPECT_GE(errors, 1);  // 1e25 overflows every float solve
}

TEST(SafeRange, KMeansDistancesBeyondRealFailClearly) {
  recsys::KMeansState st;
  const float rows[4][2] = {{3.4e38f, -3.4e38f}, {-3.4e38f, 3.4e38f}, {1, 1}, {2, 3.4e38f}};
  for (auto& r : rows) st.add(r, 2);
  expect_error(
      [&] {
        recsys::build_kmeans_model(st, recsys::parse_kmeans_options(R"({"k": 3})"), 1, recsys::CancelToken(), no_log);
      },
      ErrorKind::DataException, {"kmeans", "too large", "standardize"});
}

TEST(ZeroSum, NoUsableRowLeavesNoModel) {
  const std::vector<Row> rows = {{1, 1, 2.0}, {1, 1, -2.0}, {2, 3, 0.0}};
  auto a = state_of(rows), p = state_of(rows), k = state_of(rows);
  recsys::build_als_model(*a, recsys::parse_als_options(R"({"factors": 2, "iterations": 1})"), 1,
                          recsys::CancelToken(), no_log);
  recsys::build_popularity_model(*p, recsys::PopularityOptions{}, recsys::CancelToken(), no_log);
  recsys::build_item_knn_model(*k, recsys::parse_item_knn_options(""), 1, recsys::CancelToken(), no_log);
  EXPECT_EQ(a->result, nullptr);
  EXPECT_EQ(p->result, nullptr);
  EXPECT_EQ(k->result, nullptr);
}

// Tests of the implicit-feedback ALS trainer (als.h) and the CSR transpose (sparse.h).
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <tuple>
#include <vector>

#include "als.h"
#include "sparse.h"

namespace recsys {
namespace {

// Builds a CSR matrix from (row, col, weight) triples; duplicates are summed.
CsrMatrix from_triples(int64_t rows, int64_t cols, std::vector<std::tuple<int64_t, int32_t, float>> triples) {
  std::sort(triples.begin(), triples.end(),
            [](const auto& a, const auto& b) { return std::tie(std::get<0>(a), std::get<1>(a)) < std::tie(std::get<0>(b), std::get<1>(b)); });
  CsrMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.indptr.assign(static_cast<size_t>(rows) + 1, 0);
  for (size_t k = 0; k < triples.size(); ++k) {
    const auto& [r, c, w] = triples[k];
    if (k > 0 && std::get<0>(triples[k - 1]) == r && std::get<1>(triples[k - 1]) == c) {
      m.values.back() += w;
      continue;
    }
    m.indices.push_back(c);
    m.values.push_back(w);
    ++m.indptr[static_cast<size_t>(r) + 1];
  }
  for (int64_t r = 0; r < rows; ++r) m.indptr[static_cast<size_t>(r) + 1] += m.indptr[static_cast<size_t>(r)];
  return m;
}

// A random users x items matrix with Zipf-like item popularity and uneven user
// activity; weights in 1..5, and a fraction of negative (disliked) entries.
CsrMatrix skewed_data(int64_t users, int64_t items, double mean_per_user, uint64_t seed, double negative_share = 0.0) {
  std::mt19937_64 rng(seed);
  std::vector<double> popularity(static_cast<size_t>(items));
  for (int64_t i = 0; i < items; ++i) popularity[static_cast<size_t>(i)] = 1.0 / std::pow(i + 1.0, 0.8);
  std::shuffle(popularity.begin(), popularity.end(), rng);
  std::discrete_distribution<int32_t> pick_item(popularity.begin(), popularity.end());
  std::exponential_distribution<double> activity(1.0 / mean_per_user);
  std::uniform_int_distribution<int> weight(1, 5);
  std::bernoulli_distribution negative(negative_share);
  std::vector<std::tuple<int64_t, int32_t, float>> triples;
  for (int64_t u = 0; u < users; ++u) {
    const int n = static_cast<int>(std::min<double>(activity(rng), static_cast<double>(items)));
    for (int k = 0; k < n; ++k) {
      const float w = static_cast<float>(weight(rng));
      triples.emplace_back(u, pick_item(rng), negative(rng) ? -w : w);
    }
  }
  CsrMatrix m = from_triples(users, items, std::move(triples));
  // Summed duplicates of mixed sign may cancel to 0, which the caller never passes.
  for (float& v : m.values)
    if (v == 0.0f) v = 1.0f;
  return m;
}

// Dense copy of a CSR matrix (rows x cols, row-major).
std::vector<float> dense(const CsrMatrix& m) {
  std::vector<float> d(static_cast<size_t>(m.rows * m.cols), 0.0f);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t k = m.indptr[r]; k < m.indptr[r + 1]; ++k) d[static_cast<size_t>(r * m.cols + m.indices[k])] = m.values[k];
  return d;
}

// Trained factors and the per-iteration statistics of one training run.
struct Trained {
  std::vector<float> users, items;
  std::vector<IterationStats> stats;
};

// Trains on ui with the given parameters and thread count.
Trained train(const CsrMatrix& ui, const AlsParams& params, int threads) {
  const CsrMatrix iu = transpose(ui);
  Trained t;
  t.users.assign(static_cast<size_t>(ui.rows * params.factors), -1.0f);
  t.items.assign(static_cast<size_t>(ui.cols * params.factors), -1.0f);
  CancelToken cancel;
  train_implicit_als(ui, iu, params, threads, cancel, t.users.data(), t.items.data(),
                     [&](const IterationStats& s) { t.stats.push_back(s); });
  return t;
}

// ---------------------------------------------------------------- transpose (g)

TEST(SparseTranspose, MatchesDenseTransposeAndKeepsRowsSorted) {
  // 23 x 17 with empty rows and columns, so every corner of the counting sort runs.
  const CsrMatrix m = skewed_data(23, 17, 3.0, 5);
  const CsrMatrix t = transpose(m);
  ASSERT_EQ(t.rows, m.cols);
  ASSERT_EQ(t.cols, m.rows);
  ASSERT_EQ(t.nnz(), m.nnz());
  ASSERT_EQ(static_cast<int64_t>(t.indptr.size()), t.rows + 1);
  const std::vector<float> dm = dense(m), dt = dense(t);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c)
      EXPECT_EQ(dm[static_cast<size_t>(r * m.cols + c)], dt[static_cast<size_t>(c * m.rows + r)]) << r << "," << c;
  for (int64_t r = 0; r < t.rows; ++r)
    for (int64_t k = t.indptr[r] + 1; k < t.indptr[r + 1]; ++k) EXPECT_LT(t.indices[k - 1], t.indices[k]);

  const CsrMatrix back = transpose(t);
  EXPECT_EQ(back.indptr, m.indptr);
  EXPECT_EQ(back.indices, m.indices);
  EXPECT_EQ(back.values, m.values);
}

TEST(SparseTranspose, ThreadsGiveTheSameMatrix) {
  // Enough entries (> 65536) for the threaded path; ranges of columns split by entries.
  const CsrMatrix m = skewed_data(3000, 700, 40.0, 11);
  ASSERT_GT(m.nnz(), 65536);
  const CsrMatrix one = transpose(m, 1);
  for (int threads : {2, 3, 7}) {
    const CsrMatrix t = transpose(m, threads);
    EXPECT_EQ(t.rows, one.rows);
    EXPECT_EQ(t.cols, one.cols);
    EXPECT_EQ(t.indptr, one.indptr) << threads;
    EXPECT_EQ(t.indices, one.indices) << threads;
    EXPECT_EQ(t.values, one.values) << threads;
  }
  const CsrMatrix back = transpose(one, 2);
  EXPECT_EQ(back.indptr, m.indptr);
  EXPECT_EQ(back.indices, m.indices);
  EXPECT_EQ(back.values, m.values);
}

TEST(SparseTranspose, HandlesEmptyMatrices) {
  CsrMatrix m;
  m.rows = 3;
  m.cols = 4;
  m.indptr.assign(4, 0);
  const CsrMatrix t = transpose(m);
  EXPECT_EQ(t.rows, 4);
  EXPECT_EQ(t.cols, 3);
  EXPECT_EQ(t.indptr, std::vector<int64_t>(5, 0));
  EXPECT_EQ(t.nnz(), 0);
}

TEST(SparseTranspose, RejectsOutOfRangeColumn) {
  CsrMatrix m = from_triples(2, 3, {{0, 1, 1.0f}, {1, 2, 2.0f}});
  m.cols = 2;  // column 2 is now out of range
  EXPECT_THROW(transpose(m), Error);
}

// ------------------------------------------------------------- CG solve (b)

// Dense reference: A = YtY + lambda I + sum (c-1) y y^T, b = sum c p y, solved by LLT.
Eigen::VectorXd reference_solve(const std::vector<float>& y, int f, const std::vector<int32_t>& items,
                                const std::vector<float>& weights, double lambda, double alpha, int n_items) {
  Eigen::MatrixXd Y(n_items, f);
  for (int i = 0; i < n_items; ++i)
    for (int j = 0; j < f; ++j) Y(i, j) = y[static_cast<size_t>(i * f + j)];
  Eigen::MatrixXd A = Y.transpose() * Y + lambda * Eigen::MatrixXd::Identity(f, f);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(f);
  for (size_t k = 0; k < items.size(); ++k) {
    const Eigen::VectorXd yi = Y.row(items[k]).transpose();
    const double c = 1.0 + alpha * std::fabs(weights[k]);
    const double p = weights[k] > 0 ? 1.0 : 0.0;
    A += (c - 1.0) * yi * yi.transpose();
    b += c * p * yi;
  }
  return A.llt().solve(b);
}

class CgSolve : public ::testing::TestWithParam<int> {};

TEST_P(CgSolve, ConvergesToCholeskySolution) {
  const int f = GetParam();
  const int n_items = 2 * f + 5;
  const float lambda = 0.5f, alpha = 3.0f;
  std::mt19937 rng(11 + f);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  std::vector<float> y(static_cast<size_t>(n_items * f));
  for (float& v : y) v = normal(rng);
  // Six observed items, one of them disliked (negative weight: p = 0, c = 1 + alpha*2).
  const std::vector<int32_t> items = {0, 2, 3, 7, 9, static_cast<int32_t>(n_items - 1)};
  const std::vector<float> weights = {1.0f, 4.0f, -2.0f, 1.5f, 2.0f, 3.0f};

  Eigen::MatrixXf Ym = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      y.data(), n_items, f);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> yty =
      Ym.transpose() * Ym + lambda * Eigen::MatrixXf::Identity(f, f);

  const Eigen::VectorXd expected = reference_solve(y, f, items, weights, lambda, alpha, n_items);
  ASSERT_GT(expected.norm(), 0.1);
  std::vector<float> start(static_cast<size_t>(f));
  for (float& v : start) v = normal(rng);  // a warm start far from the solution
  // f steps solve the system in exact arithmetic; float32 round-off leaves ~1e-4, and
  // a few more steps remove it.
  for (int steps : {f, 2 * f}) {
    const double tolerance = (steps == f ? 2e-3 : 2e-5) * (1.0 + expected.norm());
    std::vector<float> x = start;
    cg_solve_row(yty.data(), y.data(), f, items.data(), weights.data(), static_cast<int64_t>(items.size()), alpha,
                 steps, x.data());
    for (int j = 0; j < f; ++j)
      EXPECT_NEAR(x[static_cast<size_t>(j)], expected(j), tolerance) << "steps " << steps << ", j " << j;
  }

  // One step from the start must move toward, but not reach, the solution.
  std::vector<float> x1(static_cast<size_t>(f), 0.0f);
  cg_solve_row(yty.data(), y.data(), f, items.data(), weights.data(), static_cast<int64_t>(items.size()), alpha, 1,
               x1.data());
  double err1 = 0;
  for (int j = 0; j < f; ++j) err1 += std::pow(x1[static_cast<size_t>(j)] - expected(j), 2);
  EXPECT_LT(std::sqrt(err1), expected.norm());
  EXPECT_GT(std::sqrt(err1), 1e-3);
}

// Sizes that hit the generic kernel (5, 13) and the fixed-size ones (8, 16, 64).
INSTANTIATE_TEST_SUITE_P(FactorSizes, CgSolve, ::testing::Values(5, 8, 13, 16, 64));

TEST(CgSolveRow, EmptyRowGivesZero) {
  const int f = 8;
  std::vector<float> yty(f * f, 0.0f), x(f, 0.7f);
  for (int j = 0; j < f; ++j) yty[static_cast<size_t>(j * f + j)] = 1.0f;
  cg_solve_row(yty.data(), nullptr, f, nullptr, nullptr, 0, 1.0f, 3, x.data());
  for (float v : x) EXPECT_EQ(v, 0.0f);
}

// ------------------------------------------------------------------- loss (c)

// The objective by brute force over every (user, item) pair.
double brute_force_loss(const CsrMatrix& ui, const std::vector<float>& x, const std::vector<float>& y, int f,
                        double lambda, double alpha) {
  const std::vector<float> d = dense(ui);
  double num = 0, den = 0;
  for (int64_t u = 0; u < ui.rows; ++u) {
    for (int64_t i = 0; i < ui.cols; ++i) {
      double s = 0;
      for (int j = 0; j < f; ++j) s += static_cast<double>(x[static_cast<size_t>(u * f + j)]) * y[static_cast<size_t>(i * f + j)];
      const double w = d[static_cast<size_t>(u * ui.cols + i)];
      const double c = 1.0 + alpha * std::fabs(w);
      const double p = w > 0 ? 1.0 : 0.0;
      num += c * (p - s) * (p - s);
      den += c;
    }
  }
  double norms = 0;
  for (float v : x) norms += static_cast<double>(v) * v;
  for (float v : y) norms += static_cast<double>(v) * v;
  return (num + lambda * norms) / den;
}

TEST(ImplicitAlsLoss, MatchesBruteForce) {
  for (int f : {3, 8, 16}) {
    const CsrMatrix ui = skewed_data(31, 19, 4.0, 3 + f, 0.2);
    ASSERT_GT(ui.nnz(), 40);
    ASSERT_TRUE(std::any_of(ui.values.begin(), ui.values.end(), [](float v) { return v < 0; }));
    std::mt19937 rng(f);
    std::normal_distribution<float> normal(0.0f, 0.5f);
    std::vector<float> x(static_cast<size_t>(ui.rows * f)), y(static_cast<size_t>(ui.cols * f));
    for (float& v : x) v = normal(rng);
    for (float& v : y) v = normal(rng);
    AlsParams params;
    params.factors = f;
    params.regularization = 0.3f;
    params.alpha = 2.5f;
    CancelToken cancel;
    const double got = implicit_als_loss(ui, params, 2, cancel, x.data(), y.data());
    const double want = brute_force_loss(ui, x, y, f, params.regularization, params.alpha);
    EXPECT_NEAR(got, want, 1e-6 * std::fabs(want)) << "f=" << f;
  }
}

// ---------------------------------------------------- training objective (a)

TEST(TrainImplicitAls, ObjectiveDecreasesEveryIteration) {
  const CsrMatrix ui = skewed_data(400, 150, 8.0, 21, 0.1);
  AlsParams params;
  params.factors = 16;
  params.iterations = 12;
  params.cg_steps = 3;
  params.regularization = 0.1f;
  params.alpha = 2.0f;

  // The objective at the initial factors (zero iterations only initialises them).
  AlsParams init_only = params;
  init_only.iterations = 0;
  const Trained start = train(ui, init_only, 2);
  EXPECT_TRUE(start.stats.empty());
  CancelToken cancel;
  const double initial = implicit_als_loss(ui, params, 1, cancel, start.users.data(), start.items.data());

  const Trained t = train(ui, params, 2);
  ASSERT_EQ(t.stats.size(), static_cast<size_t>(params.iterations));
  double previous = initial;
  for (size_t k = 0; k < t.stats.size(); ++k) {
    EXPECT_EQ(t.stats[k].iteration, static_cast<int>(k + 1));
    EXPECT_GE(t.stats[k].seconds, 0.0);
    ASSERT_TRUE(std::isfinite(t.stats[k].loss));
    EXPECT_LT(t.stats[k].loss, previous) << "iteration " << k + 1;
    previous = t.stats[k].loss;
  }
  // Training must make real progress, not just tiny steps.
  EXPECT_LT(t.stats.back().loss, 0.8 * initial);
  // The reported loss is exactly the objective of the final factors (any thread count).
  EXPECT_EQ(t.stats.back().loss, implicit_als_loss(ui, params, 3, cancel, t.users.data(), t.items.data()));

  // Without compute_loss the callback still runs, with a NaN loss.
  params.compute_loss = false;
  params.iterations = 2;
  const Trained quiet = train(ui, params, 1);
  ASSERT_EQ(quiet.stats.size(), 2u);
  EXPECT_TRUE(std::isnan(quiet.stats[1].loss));
}

// -------------------------------------------------------------- determinism (d)

TEST(TrainImplicitAls, InitialisesUniformFactorsFromTheSeed) {
  const CsrMatrix ui = skewed_data(3000, 500, 4.0, 8);
  AlsParams params;
  params.factors = 16;
  params.iterations = 0;
  params.init_scale = 0.5f;
  const Trained a = train(ui, params, 1), b = train(ui, params, 3);
  EXPECT_EQ(a.users, b.users);
  EXPECT_EQ(a.items, b.items);
  double sum = 0;
  for (float v : a.users) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 0.5f);
    sum += v;
  }
  EXPECT_NEAR(sum / static_cast<double>(a.users.size()), 0.25, 0.005);
  // Users and items draw from different streams.
  EXPECT_FALSE(std::equal(a.items.begin(), a.items.end(), a.users.begin()));
}

TEST(TrainImplicitAls, BitIdenticalForAnyThreadCount) {
  // More than one 4096-row Gram block, many solve tasks and some empty users/items.
  const CsrMatrix ui = skewed_data(9000, 700, 6.0, 77, 0.05);
  AlsParams params;
  params.factors = 16;
  params.iterations = 3;
  params.seed = 1234;
  const Trained t1 = train(ui, params, 1);
  const Trained t2 = train(ui, params, 2);
  const Trained t3 = train(ui, params, 3);
  ASSERT_EQ(t1.stats.size(), 3u);
  for (const Trained* other : {&t2, &t3}) {
    EXPECT_EQ(0, std::memcmp(t1.users.data(), other->users.data(), t1.users.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(t1.items.data(), other->items.data(), t1.items.size() * sizeof(float)));
    for (size_t k = 0; k < t1.stats.size(); ++k) EXPECT_EQ(t1.stats[k].loss, other->stats[k].loss);
  }
  // Factors were really written (the buffers started at -1).
  EXPECT_TRUE(std::none_of(t1.items.begin(), t1.items.end(), [](float v) { return v == -1.0f || !std::isfinite(v); }));

  params.seed = 1235;
  const Trained other_seed = train(ui, params, 2);
  EXPECT_NE(0, std::memcmp(t1.users.data(), other_seed.users.data(), t1.users.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(t1.items.data(), other_seed.items.data(), t1.items.size() * sizeof(float)));
}

TEST(TrainImplicitAls, FixedAndGenericFactorSizesTrain) {
  // Sizes off the fixed-size kernels (12, 20) and beyond them (136) must train too.
  const CsrMatrix ui = skewed_data(300, 120, 8.0, 5);
  for (int f : {12, 20, 136}) {
    AlsParams params;
    params.factors = f;
    params.iterations = 4;
    const Trained t1 = train(ui, params, 1);
    const Trained t2 = train(ui, params, 2);
    ASSERT_EQ(t1.stats.size(), 4u);
    EXPECT_LT(t1.stats.back().loss, t1.stats.front().loss) << "f=" << f;
    EXPECT_EQ(0, std::memcmp(t1.users.data(), t2.users.data(), t1.users.size() * sizeof(float))) << "f=" << f;
  }
}

// ------------------------------------------------------------- cancellation (e)

TEST(TrainImplicitAls, CancelledTokenThrowsCancelled) {
  const CsrMatrix ui = skewed_data(500, 100, 5.0, 9);
  const CsrMatrix iu = transpose(ui);
  AlsParams params;
  params.factors = 8;
  std::vector<float> x(static_cast<size_t>(ui.rows * params.factors)), y(static_cast<size_t>(ui.cols * params.factors));
  CancelToken cancel;
  cancel.cancel();
  int calls = 0;
  try {
    train_implicit_als(ui, iu, params, 2, cancel, x.data(), y.data(), [&](const IterationStats&) { ++calls; });
    FAIL() << "training with a cancelled token returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  EXPECT_EQ(calls, 0);
}

TEST(TrainImplicitAls, CancelFromCallbackStopsAfterThatIteration) {
  const CsrMatrix ui = skewed_data(500, 100, 5.0, 9);
  const CsrMatrix iu = transpose(ui);
  AlsParams params;
  params.factors = 8;
  params.iterations = 10;
  std::vector<float> x(static_cast<size_t>(ui.rows * params.factors)), y(static_cast<size_t>(ui.cols * params.factors));
  CancelToken cancel;
  int calls = 0;
  try {
    train_implicit_als(ui, iu, params, 2, cancel, x.data(), y.data(), [&](const IterationStats& s) {
      ++calls;
      if (s.iteration == 1) cancel.cancel();
    });
    FAIL() << "training continued after cancellation";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
  EXPECT_EQ(calls, 1);
}

TEST(TrainImplicitAls, RejectsBadParameters) {
  const CsrMatrix ui = skewed_data(20, 10, 3.0, 1);
  const CsrMatrix iu = transpose(ui);
  std::vector<float> x(20 * 8), y(10 * 8);
  CancelToken cancel;
  // The kind of Error training throws, or nothing when it succeeds.
  auto kind_of = [&](AlsParams p, const CsrMatrix& other) -> std::optional<ErrorKind> {
    try {
      train_implicit_als(ui, other, p, 1, cancel, x.data(), y.data(), nullptr);
    } catch (const Error& e) {
      return e.kind();
    }
    return std::nullopt;
  };
  AlsParams p;
  p.factors = 8;
  AlsParams bad = p;
  bad.factors = 0;
  EXPECT_EQ(kind_of(bad, iu), ErrorKind::InvalidParameter);
  bad = p;
  bad.cg_steps = 0;
  EXPECT_EQ(kind_of(bad, iu), ErrorKind::InvalidParameter);
  bad = p;
  bad.regularization = -1.0f;
  EXPECT_EQ(kind_of(bad, iu), ErrorKind::InvalidParameter);
  bad = p;
  bad.alpha = std::nanf("");
  EXPECT_EQ(kind_of(bad, iu), ErrorKind::InvalidParameter);
  EXPECT_EQ(kind_of(p, ui), ErrorKind::Internal);  // not the transpose
  EXPECT_EQ(kind_of(p, iu), std::nullopt);
}

// --------------------------------------------------------- planted structure (f)

TEST(TrainImplicitAls, RecoversPlantedGroups) {
  const int groups = 4, users_per_group = 60, items_per_group = 25;
  const int users = groups * users_per_group, items = groups * items_per_group;
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> in_group(0, items_per_group - 1), any_item(0, items - 1);
  std::uniform_real_distribution<float> coin(0.0f, 1.0f);
  std::vector<std::tuple<int64_t, int32_t, float>> triples;
  for (int u = 0; u < users; ++u) {
    const int g = u % groups;
    for (int k = 0; k < 10; ++k) {
      const int item = coin(rng) < 0.9f ? g * items_per_group + in_group(rng) : any_item(rng);
      triples.emplace_back(u, item, 1.0f + static_cast<float>(k % 3));
    }
  }
  const CsrMatrix ui = from_triples(users, items, std::move(triples));
  AlsParams params;
  params.factors = 8;
  params.iterations = 15;
  params.regularization = 0.1f;
  params.alpha = 5.0f;
  const Trained t = train(ui, params, 2);

  const std::vector<float> d = dense(ui);
  const int top_n = 5;
  int hits = 0, total = 0;
  for (int u = 0; u < users; ++u) {
    std::vector<std::pair<float, int>> scored;
    for (int i = 0; i < items; ++i) {
      if (d[static_cast<size_t>(u * items + i)] != 0.0f) continue;  // seen
      float s = 0;
      for (int j = 0; j < params.factors; ++j)
        s += t.users[static_cast<size_t>(u * params.factors + j)] * t.items[static_cast<size_t>(i * params.factors + j)];
      scored.emplace_back(-s, i);
    }
    std::partial_sort(scored.begin(), scored.begin() + top_n, scored.end());
    for (int k = 0; k < top_n; ++k) {
      hits += scored[static_cast<size_t>(k)].second / items_per_group == u % groups;
      ++total;
    }
  }
  const double precision = static_cast<double>(hits) / total;
  EXPECT_GT(precision, 0.8) << hits << " of " << total;
}

}  // namespace
}  // namespace recsys

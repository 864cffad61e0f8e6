// EASE: the blocked parallel SPD inverse against Eigen's, B against the dense closed form
// (with and without pruning, zero diagonal), recommend against X B, the pruned lists'
// contents and order, determinism across thread counts, negative weights, options, the
// memory limit and cancellation.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ease.h"
#include "json_options.h"
#include "model_bytes.h"
#include "model_format.h"
#include "serving.h"
#include "sparse.h"
#include "training.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {

struct Data {
  int64_t nu, ni;
  Eigen::MatrixXd x;  // users x items, the summed weights
};

// Every user and item has at least one positive entry, so model indices equal the keys.
Data random_data(uint64_t seed, int64_t nu, int64_t ni, double density, bool negatives = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u01(0, 1);
  Data d{nu, ni, Eigen::MatrixXd::Zero(nu, ni)};
  for (int64_t u = 0; u < nu; ++u)
    for (int64_t i = 0; i < ni; ++i)
      if (u01(rng) < density * (1.5 - double(i) / ni)) d.x(u, i) = 1 + std::floor(u01(rng) * 3);
  for (int64_t u = 0; u < nu; ++u) d.x(u, u % ni) = 1;
  for (int64_t i = 0; i < ni; ++i) d.x(i % nu, i) = 2;
  if (negatives)
    for (int64_t u = 0; u < nu; u += 7) d.x(u, (u * 13 + 5) % ni) = -3;
  return d;
}

std::unique_ptr<TrainingState> state_of(const Data& d) {
  auto st = std::make_unique<TrainingState>(KeyKind::Int, 20, KeyKind::Int, 20);
  for (int64_t u = 0; u < d.nu; ++u)
    for (int64_t i = 0; i < d.ni; ++i)
      if (d.x(u, i) != 0) st->add(st->users.intern_int(u), st->items.intern_int(i), d.x(u, i));
  return st;
}

CsrMatrix csr_of(const Eigen::MatrixXd& x) {
  CsrMatrix m;
  m.rows = x.rows();
  m.cols = x.cols();
  m.indptr.assign(static_cast<size_t>(m.rows) + 1, 0);
  for (int64_t u = 0; u < m.rows; ++u) {
    for (int64_t i = 0; i < m.cols; ++i)
      if (x(u, i) != 0) {
        m.indices.push_back(static_cast<int32_t>(i));
        m.values.push_back(static_cast<float>(x(u, i)));
      }
    m.indptr[u + 1] = static_cast<int64_t>(m.indices.size());
  }
  return m;
}

// The closed form, densely: B = I - P diag(1/diag P) over X's positive part.
Eigen::MatrixXd dense_ease(const Eigen::MatrixXd& x, double lambda) {
  const Eigen::MatrixXd pos = x.cwiseMax(0.0);
  Eigen::MatrixXd g = pos.transpose() * pos;
  g.diagonal().array() += lambda;
  const Eigen::MatrixXd p = g.inverse();
  Eigen::MatrixXd b(p.rows(), p.cols());
  for (int64_t j = 0; j < p.cols(); ++j)
    for (int64_t i = 0; i < p.rows(); ++i) b(i, j) = i == j ? 0.0 : -p(i, j) / p(j, j);
  return b;
}

Model train(const Data& d, const std::string& options, int threads = 2) {
  auto st = state_of(d);
  CancelToken cancel;
  build_ease_model(*st, parse_ease_options(test_support::json_options(options)), threads, cancel,
                   [](const std::string&) {});
  return write_model(*st->result);
}

TEST(Ease, SpdInverseMatchesEigenAcrossBlockBoundaries) {
  for (int64_t n : {1, 7, 256, 257, 600}) {
    std::mt19937_64 rng(n);
    std::normal_distribution<double> nd;
    Eigen::MatrixXd a(n + 5, n);
    for (int64_t r = 0; r < a.rows(); ++r)
      for (int64_t c = 0; c < n; ++c) a(r, c) = nd(rng);
    Eigen::MatrixXd g = a.transpose() * a;
    g.diagonal().array() += 0.5;
    const Eigen::MatrixXd want = g.inverse();
    std::vector<double> buf(g.data(), g.data() + n * n);
    for (int64_t c = 0; c < n; ++c)  // only the lower triangle may be read
      for (int64_t r = 0; r < c; ++r) buf[c * n + r] = 1e300;
    CancelToken cancel;
    spd_inverse(buf, n, 2, cancel);
    const Eigen::Map<Eigen::MatrixXd> got(buf.data(), n, n);
    const double scale = want.cwiseAbs().maxCoeff();
    EXPECT_LT((got - want).cwiseAbs().maxCoeff(), 1e-9 * scale) << "n = " << n;
    EXPECT_EQ((got - got.transpose()).cwiseAbs().maxCoeff(), 0.0) << "P is exactly symmetric, n = " << n;
  }
}

TEST(Ease, WeightsEqualTheDenseClosedForm) {
  const Data d = random_data(3, 120, 300, 0.05, true);
  for (double lambda : {0.5, 10.0, 400.0}) {
    CancelToken cancel;
    const std::vector<double> b = ease_weights(csr_of(d.x), lambda, 2, cancel);
    const Eigen::Map<const Eigen::MatrixXd> got(b.data(), d.ni, d.ni);
    const Eigen::MatrixXd want = dense_ease(d.x, lambda);
    EXPECT_LT((got - want).cwiseAbs().maxCoeff(), 1e-9 * (1 + want.cwiseAbs().maxCoeff())) << lambda;
    EXPECT_EQ(got.diagonal().cwiseAbs().maxCoeff(), 0.0);
  }
}

TEST(Ease, UnprunedModelScoresAreXB) {
  const Data d = random_data(5, 80, 150, 0.08);
  const Model m = train(d, "{\"lambda\": 20, \"neighbours\": 100000, \"binary\": false}");
  const ModelView v = m.view();
  ASSERT_EQ(v.kind(), ModelKind::Ease);
  ASSERT_EQ(v.n_items(), d.ni);
  const Eigen::MatrixXd scores = d.x * dense_ease(d.x, 20);
  std::vector<Scored> out;
  for (int64_t u = 0; u < d.nu; u += 9) {
    recommend_user(v, u, d.ni, false, out);
    ASSERT_FALSE(out.empty());
    for (const Scored& s : out) EXPECT_NEAR(s.score, scores(u, s.index), 1e-4 * (1 + std::fabs(scores(u, s.index))));
    // every item with a positive score is returned, best first
    int64_t positive = 0;
    for (int64_t i = 0; i < d.ni; ++i) positive += scores(u, i) > 1e-4;
    EXPECT_GE(static_cast<int64_t>(out.size()), positive);
    for (size_t r = 1; r < out.size(); ++r) EXPECT_TRUE(ranks_before(out[r - 1], out[r]));
    for (int64_t i = 0; i < d.ni; i += 11) EXPECT_NEAR(score_pair(v, u, i), scores(u, i), 1e-4 * (1 + std::fabs(scores(u, i))));
  }
}

TEST(Ease, PrunedListsKeepTheLargestWeightsInOrder) {
  const Data d = random_data(7, 150, 200, 0.06);
  const int keep = 15;
  const Model m = train(d, "{\"lambda\": 50, \"neighbours\": " + std::to_string(keep) + "}");
  const ModelView v = m.view();
  validate_model(m.data(), m.size);
  Eigen::MatrixXd bin = (d.x.array() > 0).cast<double>();
  const Eigen::MatrixXd b = dense_ease(bin, 50);
  std::vector<Scored> out;
  for (int64_t i = 0; i < d.ni; ++i) {
    similar_items(v, i, 1000, out);
    ASSERT_EQ(static_cast<int>(out.size()), keep);
    std::vector<double> mags;
    for (int64_t j = 0; j < d.ni; ++j)
      if (j != i) mags.push_back(std::fabs(b(i, j)));
    std::sort(mags.rbegin(), mags.rend());
    for (size_t r = 0; r < out.size(); ++r) {
      EXPECT_NE(out[r].index, i);
      EXPECT_NEAR(out[r].score, b(i, out[r].index), 1e-6);
      EXPECT_GE(std::fabs(b(i, out[r].index)), mags[keep - 1] - 1e-9);  // among the largest |B_ij|
      if (r) {
        EXPECT_TRUE(ranks_before(out[r - 1], out[r]));
      }
    }
  }
}

TEST(Ease, DeterministicAcrossThreadCounts) {
  const Data d = random_data(11, 200, 520, 0.03);
  const Model a = train(d, "{}", 1), b = train(d, "{}", 2), c = train(d, "{}", 3);
  EXPECT_EQ(a.view().header->fingerprint, b.view().header->fingerprint);
  EXPECT_EQ(a.view().header->fingerprint, c.view().header->fingerprint);
}

TEST(Ease, NegativePairsAreSeenButNotInTheGram) {
  const Data d = random_data(13, 60, 90, 0.1, true);
  const Model m = train(d, "{\"lambda\": 5, \"neighbours\": 1000}");
  const ModelView v = m.view();
  Eigen::MatrixXd bin = (d.x.array() > 0).cast<double>();
  const Eigen::MatrixXd scores = bin * dense_ease(bin, 5);
  std::vector<Scored> out;
  for (int64_t u = 0; u < d.nu; u += 7) {
    recommend_user(v, u, d.ni, true, out);
    for (const Scored& s : out) {
      EXPECT_EQ(d.x(u, s.index), 0.0) << "a seen item (negative ones too) is never recommended";
      EXPECT_NEAR(s.score, scores(u, s.index), 1e-4 * (1 + std::fabs(scores(u, s.index))));
    }
  }
}

TEST(Ease, Options) {
  auto parse = [](const std::string& j) { return parse_ease_options(test_support::json_options(j)); };
  const EaseOptions o = parse("{}");
  EXPECT_EQ(o.lambda, 400.0);
  EXPECT_EQ(o.neighbours, 500);
  EXPECT_TRUE(o.binary);
  EXPECT_THROW(parse("{\"lambda\": 0}"), Error);
  EXPECT_THROW(parse("{\"lambda\": -1}"), Error);
  EXPECT_THROW(parse("{\"neighbours\": 0}"), Error);
  EXPECT_THROW(parse("{\"factors\": 8}"), Error);
  try {
    parse("{\"lamda\": 10}");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
    EXPECT_NE(std::string(e.what()).find("lamda"), std::string::npos);
  }
}

TEST(Ease, TooManyItemsFailsBeforeAllocating) {
  auto st = std::make_unique<TrainingState>(KeyKind::Int, 20, KeyKind::Int, 20);
  for (int64_t i = 0; i < 200001; ++i) st->add(st->users.intern_int(i % 1000), st->items.intern_int(i), 1.0);
  CancelToken cancel;
  try {
    build_ease_model(*st, EaseOptions(), 2, cancel, [](const std::string&) {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::ProgramLimit);
    EXPECT_NE(std::string(e.what()).find("train_item_knn"), std::string::npos);
  }
  EXPECT_EQ(st->result, nullptr);
}

TEST(Ease, CancelStopsTraining) {
  const Data d = random_data(17, 300, 700, 0.03);
  auto st = state_of(d);
  CancelToken cancel;
  cancel.cancel();
  try {
    build_ease_model(*st, EaseOptions(), 2, cancel, [](const std::string&) {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Cancelled);
  }
}

}  // namespace

#include "fold_in.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <string>

#include "content.h"

namespace recsys {
namespace {

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// The user's f x f system: symmetric, so the storage order is free; column-major is the
// one Eigen's Cholesky is fastest on.
using SystemMatrix = Eigen::MatrixXd;

// (item, weight) pairs sorted by item, duplicates merged: summed (average = false) or
// averaged; pairs whose merged weight is 0 are dropped when drop_zero.
std::vector<std::pair<int32_t, double>> merged(const ModelView& model, const History& h, bool average,
                                               bool drop_zero, double default_weight) {
  if (!h.weights.empty() && h.weights.size() != h.items.size())
    fail(ErrorKind::InvalidParameter, "fold-in: " + std::to_string(h.weights.size()) + " weights for " +
                                          std::to_string(h.items.size()) + " items");
  std::vector<std::pair<int32_t, double>> pairs;
  pairs.reserve(h.items.size());
  for (size_t p = 0; p < h.items.size(); ++p) {
    const int64_t i = h.items[p];
    if (i < 0 || i >= model.n_items()) fail(ErrorKind::InvalidParameter, "fold-in: item index out of range");
    const double w = h.weights.empty() ? default_weight : static_cast<double>(h.weights[p]);
    if (!std::isfinite(w)) fail(ErrorKind::DataException, "fold-in: weights must be finite numbers");
    pairs.emplace_back(static_cast<int32_t>(i), w);
  }
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<int32_t, double>> out;
  for (size_t a = 0; a < pairs.size();) {
    size_t b = a;
    double s = 0;
    while (b < pairs.size() && pairs[b].first == pairs[a].first) s += pairs[b++].second;
    if (average) s /= static_cast<double>(b - a);
    if (!(drop_zero && s == 0.0)) out.emplace_back(pairs[a].first, s);
    a = b;
  }
  return out;
}

void require_item_factors(const ModelView& model, const char* what) {
  if (!model.item_factors() && model.factors() > 0)
    fail(ErrorKind::NotSupported, std::string(what) + " needs item factors; this model is " +
                                      model_kind_name(model.kind()));
}

// The user's ALS system A (f x f) and right-hand side b, in double.
void als_system(const ModelView& model, const double* gram, double alpha, double lambda,
                const std::vector<std::pair<int32_t, double>>& hist, SystemMatrix& A, Eigen::VectorXd& b) {
  const int f = model.factors();
  const float* Y = model.item_factors();
  std::vector<double> local;
  if (gram == nullptr) {
    local = item_gram(Y, model.n_items(), f);
    gram = local.data();
  }
  A = Eigen::Map<const SystemMatrix>(gram, f, f);  // symmetric
  for (int j = 0; j < f; ++j) A(j, j) += lambda;
  // sum_i (c_i - 1) y_i y_i^T as one product S^T S, rows s_i = sqrt(c_i - 1) y_i, and
  // b = sum_i c_i p_i y_i = H^T t.
  const int64_t nh = static_cast<int64_t>(hist.size());
  RowMatrixD H(nh, f), S(nh, f);
  Eigen::VectorXd t(nh);
  for (int64_t r = 0; r < nh; ++r) {
    const auto& [i, w] = hist[static_cast<size_t>(r)];
    const double c1 = alpha * std::fabs(w);  // c - 1
    const double root = std::sqrt(c1);
    for (int j = 0; j < f; ++j) {
      H(r, j) = Y[int64_t(i) * f + j];
      S(r, j) = root * H(r, j);
    }
    t[r] = w > 0 ? 1.0 + c1 : 0.0;
  }
  A.selfadjointView<Eigen::Lower>().rankUpdate(S.transpose());  // the lower triangle: all the solve reads
  b.noalias() = H.transpose() * t;
}

// Solves A x = b for the user's system (only its lower triangle is filled): Cholesky,
// positive definite whenever lambda > 0 or the history spans the factors; otherwise the
// pivoted LDLT, whose non-finite solution the callers refuse.
Eigen::VectorXd solve_system(const SystemMatrix& A, const Eigen::VectorXd& b) {
  Eigen::LLT<SystemMatrix, Eigen::Lower> llt(A);
  if (llt.info() == Eigen::Success) return llt.solve(b);
  return Eigen::LDLT<SystemMatrix, Eigen::Lower>(A).solve(b);
}

}  // namespace

std::vector<double> item_gram(const float* factors, int64_t rows, int f) {
  std::vector<double> g(static_cast<size_t>(f) * f, 0.0);
  if (f == 0 || rows == 0) return g;
  Eigen::Map<RowMatrixD> G(g.data(), f, f);
  // Blocks of rows converted to double, accumulated in a fixed order.
  constexpr int64_t kBlock = 1024;
  RowMatrixD block;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t nr = std::min(kBlock, rows - r0);
    block = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
                factors + r0 * f, nr, f)
                .cast<double>();
    G.noalias() += block.transpose() * block;
  }
  return g;
}

void als_fold_in(const ModelView& model, const double* gram, double alpha, double lambda, const History& h,
                 float* x) {
  require_item_factors(model, "fold-in");
  const int f = model.factors();
  const auto hist = merged(model, h, false, true, 1.0);
  for (int j = 0; j < f; ++j) x[j] = 0.0f;
  if (hist.empty() || f == 0) return;
  SystemMatrix A;
  Eigen::VectorXd b;
  als_system(model, gram, alpha, lambda, hist, A, b);
  const Eigen::VectorXd sol = solve_system(A, b);
  for (int j = 0; j < f; ++j) {
    if (!std::isfinite(sol[j]))
      fail(ErrorKind::DataException, "fold-in: the user's system is singular (regularization 0?)");
    x[j] = static_cast<float>(sol[j]);
  }
}

void mf_fold_in(const ModelView& model, const MfFoldParams& p, const History& h, float* bias, float* x) {
  const int f = model.factors();
  require_item_factors(model, "fold-in");
  const float* Q = model.item_factors();
  const float* bi = model.section_as<float>(SectionTag::ItemBias);
  if (!bi) fail(ErrorKind::InvalidModel, "biased_mf model without item biases");
  const auto hist = merged(model, h, true, false, model.header->rating_max);
  *bias = 0.0f;
  for (int j = 0; j < f; ++j) x[j] = 0.0f;
  if (hist.empty()) return;
  const double mu = model.header->global_mean;
  const double n = static_cast<double>(hist.size());
  if (p.baseline || f == 0) {
    double s = 0;
    for (const auto& [i, r] : hist) s += r - mu - bi[i];
    *bias = static_cast<float>(p.baseline ? s / (p.reg_user + n) : s / (p.reg_bias * n + n));
    return;
  }
  // Unknowns z = [b, p]; rows [1, q_i]; targets r_i - mu - b_i; ridge penalties.
  const int d = f + 1;
  RowMatrixD A = RowMatrixD::Zero(d, d);
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(d);
  Eigen::VectorXd row(d);
  for (const auto& [i, r] : hist) {
    row[0] = 1.0;
    for (int j = 0; j < f; ++j) row[j + 1] = Q[int64_t(i) * f + j];
    A.noalias() += row * row.transpose();
    rhs += (r - mu - bi[i]) * row;
  }
  const double lambda_u = p.reg_factors * std::pow(std::max(1.0, n), -p.reg_exponent);
  A(0, 0) += n * p.reg_bias;
  for (int j = 1; j < d; ++j) A(j, j) += n * lambda_u * p.sigma;
  Eigen::VectorXd z = A.ldlt().solve(rhs);
  for (int j = 0; j < d; ++j)
    if (!std::isfinite(z[j])) fail(ErrorKind::DataException, "fold-in: the user's system is singular");
  *bias = static_cast<float>(z[0]);
  for (int j = 0; j < f; ++j) x[j] = static_cast<float>(z[j + 1]);
}

std::vector<int32_t> history_items(const History& h) {
  std::vector<int32_t> v;
  v.reserve(h.items.size());
  for (int64_t i : h.items) v.push_back(static_cast<int32_t>(i));
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

double als_explain(const ModelView& model, const double* gram, double alpha, double lambda, const History& h,
                   int64_t item, std::vector<std::pair<int32_t, double>>& out) {
  require_item_factors(model, "explain");
  out.clear();
  const int f = model.factors();
  if (item < 0 || item >= model.n_items()) fail(ErrorKind::InvalidParameter, "explain: item index out of range");
  const auto hist = merged(model, h, false, true, 1.0);
  if (hist.empty() || f == 0) return 0.0;
  SystemMatrix A;
  Eigen::VectorXd b;
  als_system(model, gram, alpha, lambda, hist, A, b);
  const float* Y = model.item_factors();
  Eigen::VectorXd yi(f);
  for (int j = 0; j < f; ++j) yi[j] = Y[item * f + j];
  const Eigen::VectorXd v = solve_system(A, yi);  // A symmetric: y_item . A^-1 y_j = (A^-1 y_item) . y_j
  double total = 0;
  for (const auto& [j, w] : hist) {
    if (!(w > 0)) continue;
    double dotp = 0;
    for (int c = 0; c < f; ++c) dotp += v[c] * Y[int64_t(j) * f + c];
    const double contribution = (1.0 + alpha * std::fabs(w)) * dotp;
    out.emplace_back(j, contribution);
    total += contribution;
  }
  return total;
}

double knn_explain(const ModelView& model, const History& h, int64_t item,
                   std::vector<std::pair<int32_t, double>>& out) {
  out.clear();
  const int64_t* indptr = model.section_as<int64_t>(SectionTag::NeighbourIndptr);
  const int32_t* indices = model.section_as<int32_t>(SectionTag::NeighbourIndices);
  const float* scores = model.section_as<float>(SectionTag::NeighbourScores);
  if (!indptr || !indices || !scores) fail(ErrorKind::InvalidModel, "item_knn model without neighbour lists");
  if (item < 0 || item >= model.n_items()) fail(ErrorKind::InvalidParameter, "explain: item index out of range");
  // Entries with a positive weight only (as recommend scores them), merged per item.
  History positive;
  for (size_t p = 0; p < h.items.size(); ++p) {
    const float w = h.weights.empty() ? 1.0f : h.weights[p];
    if (!(w > 0)) continue;
    positive.items.push_back(h.items[p]);
    positive.weights.push_back(w);
  }
  const auto hist = merged(model, positive, false, true, 1.0);
  double total = 0;
  for (const auto& [j, w] : hist) {
    double sim = 0;
    for (int64_t q = indptr[j]; q < indptr[j + 1]; ++q)
      if (indices[q] == item) {
        sim = scores[q];
        break;
      }
    out.emplace_back(j, w * sim);
    total += w * sim;
  }
  return total;
}

double content_explain(const ModelView& model, const History& h, int64_t item,
                       std::vector<std::pair<int32_t, double>>& out) {
  out.clear();
  if (item < 0 || item >= model.n_items()) fail(ErrorKind::InvalidParameter, "explain: item index out of range");
  const auto hist = merged(model, h, false, false, 1.0);
  // ||profile||^2 = sum_j sum_l w_j w_l (v_j . v_l): the history is small.
  double norm2 = 0;
  for (const auto& [a, wa] : hist)
    for (const auto& [b, wb] : hist) norm2 += wa * wb * content_similarity(model, a, b);
  const double norm = norm2 > 0 ? std::sqrt(norm2) : 0.0;
  double total = 0;
  for (const auto& [j, w] : hist) {
    const double c = norm > 0 ? w * content_similarity(model, j, item) / norm : 0.0;
    out.emplace_back(j, c);
    total += c;
  }
  return total;
}

}  // namespace recsys

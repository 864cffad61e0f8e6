#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace recsys {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

void RatingMetrics::add(double predicted, double actual) {
  if (!std::isfinite(predicted) || !std::isfinite(actual)) {
    ++skipped_;
    return;
  }
  const double d = predicted - actual;
  sum_sq_ += d * d;
  sum_abs_ += std::fabs(d);
  ++n_;
}

void RatingMetrics::merge(const RatingMetrics& other) {
  sum_sq_ += other.sum_sq_;
  sum_abs_ += other.sum_abs_;
  n_ += other.n_;
  skipped_ += other.skipped_;
}

double RatingMetrics::mse() const { return n_ ? sum_sq_ / static_cast<double>(n_) : kNaN; }
double RatingMetrics::rmse() const { return n_ ? std::sqrt(sum_sq_ / static_cast<double>(n_)) : kNaN; }
double RatingMetrics::mae() const { return n_ ? sum_abs_ / static_cast<double>(n_) : kNaN; }

RankingMetrics ranking_metrics(const int64_t* recommended, int64_t n_recommended, const int64_t* relevant,
                               int64_t n_relevant, int64_t k) {
  if (k < 1) fail(ErrorKind::InvalidParameter, "ranking metrics: k must be at least 1, got " + std::to_string(k));
  if (n_recommended < 0 || n_relevant < 0) fail(ErrorKind::InvalidParameter, "ranking metrics: negative length");
  std::vector<int64_t> rel(relevant, relevant + n_relevant);
  std::sort(rel.begin(), rel.end());
  rel.erase(std::unique(rel.begin(), rel.end()), rel.end());
  if (rel.empty()) fail(ErrorKind::InvalidParameter, "ranking metrics: the relevant set is empty");
  std::vector<bool> found(rel.size(), false);

  RankingMetrics m;
  const int64_t n = std::min(k, n_recommended);
  double ap_sum = 0, dcg = 0;
  for (int64_t pos = 1; pos <= n; ++pos) {
    const auto it = std::lower_bound(rel.begin(), rel.end(), recommended[pos - 1]);
    if (it == rel.end() || *it != recommended[pos - 1]) continue;
    const size_t idx = static_cast<size_t>(it - rel.begin());
    if (found[idx]) continue;  // a repeated item is not a second hit
    found[idx] = true;
    ++m.hits;
    ap_sum += static_cast<double>(m.hits) / static_cast<double>(pos);
    dcg += 1.0 / std::log2(static_cast<double>(pos) + 1.0);
    if (m.hits == 1) m.reciprocal_rank = 1.0 / static_cast<double>(pos);
  }
  const int64_t n_rel = static_cast<int64_t>(rel.size());
  const int64_t ideal = std::min(k, n_rel);
  double idcg = 0;
  for (int64_t pos = 1; pos <= ideal; ++pos) idcg += 1.0 / std::log2(static_cast<double>(pos) + 1.0);
  m.precision = static_cast<double>(m.hits) / static_cast<double>(k);
  m.recall = static_cast<double>(m.hits) / static_cast<double>(n_rel);
  m.average_precision = ap_sum / static_cast<double>(ideal);
  m.ndcg = dcg / idcg;
  m.hit_rate = m.hits > 0 ? 1.0 : 0.0;
  return m;
}

RankingAccumulator::RankingAccumulator(int64_t k, int64_t catalogue_size) : k_(k), catalogue_(catalogue_size) {
  if (k < 1) fail(ErrorKind::InvalidParameter, "ranking metrics: k must be at least 1, got " + std::to_string(k));
}

bool RankingAccumulator::add(const int64_t* recommended, int64_t n_recommended, const int64_t* relevant,
                             int64_t n_relevant) {
  const int64_t n = std::min(k_, std::max<int64_t>(n_recommended, 0));
  for (int64_t i = 0; i < n; ++i) distinct_.insert(recommended[i]);
  if (n_relevant <= 0) {
    ++skipped_;
    return false;
  }
  const RankingMetrics m = ranking_metrics(recommended, n_recommended, relevant, n_relevant, k_);
  sum_.precision += m.precision;
  sum_.recall += m.recall;
  sum_.average_precision += m.average_precision;
  sum_.ndcg += m.ndcg;
  sum_.hit_rate += m.hit_rate;
  sum_.reciprocal_rank += m.reciprocal_rank;
  sum_.hits += m.hits;
  ++users_;
  return true;
}

void RankingAccumulator::merge(const RankingAccumulator& other) {
  if (other.k_ != k_ || other.catalogue_ != catalogue_)
    fail(ErrorKind::Internal, "ranking metrics: cannot merge accumulators with different k or catalogue");
  sum_.precision += other.sum_.precision;
  sum_.recall += other.sum_.recall;
  sum_.average_precision += other.sum_.average_precision;
  sum_.ndcg += other.sum_.ndcg;
  sum_.hit_rate += other.sum_.hit_rate;
  sum_.reciprocal_rank += other.sum_.reciprocal_rank;
  sum_.hits += other.sum_.hits;
  users_ += other.users_;
  skipped_ += other.skipped_;
  distinct_.insert(other.distinct_.begin(), other.distinct_.end());
}

RankingMetrics RankingAccumulator::mean() const {
  RankingMetrics m;
  m.hits = sum_.hits;
  if (users_ == 0) {
    m.precision = m.recall = m.average_precision = m.ndcg = m.hit_rate = m.reciprocal_rank = kNaN;
    return m;
  }
  const double n = static_cast<double>(users_);
  m.precision = sum_.precision / n;
  m.recall = sum_.recall / n;
  m.average_precision = sum_.average_precision / n;
  m.ndcg = sum_.ndcg / n;
  m.hit_rate = sum_.hit_rate / n;
  m.reciprocal_rank = sum_.reciprocal_rank / n;
  return m;
}

double RankingAccumulator::coverage() const {
  if (catalogue_ <= 0) return kNaN;
  return static_cast<double>(distinct_.size()) / static_cast<double>(catalogue_);
}

}  // namespace recsys

// Evaluation metrics: rating-prediction errors and top-K ranking quality.
//
// ---- Rating metrics (RatingMetrics) -------------------------------------------------
// Over the n pairs with a finite prediction p_j and rating r_j:
//   MSE  = (1/n) Σ (p_j - r_j)²
//   RMSE = sqrt(MSE)
//   MAE  = (1/n) Σ |p_j - r_j|
// count = n; skipped = pairs given without a finite prediction (or rating) — they do not
// enter the averages. With n = 0 every average is NaN (SQL NULL).
//
// ---- Ranking metrics at K for one user (ranking_metrics) ----------------------------
// Input: the recommendation list L (item ids, best first, as ranked by the caller — ties
// were broken by whoever produced the list) and the set R of relevant (held-out) items,
// |R| > 0 (duplicate ids in R count once). Only the first K positions of L are looked
// at; L may be shorter than K (or empty). Position i (1-based) is a hit when L_i ∈ R and
// L_i did not already occur at an earlier position (a repeated item is never a second
// hit, but it does use up its position). With hits = number of hits in positions 1..K:
//   precision@K = hits / K                (K, not |L|: a list shorter than K is penalized)
//   recall@K    = hits / |R|              (the usual definition; it cannot reach 1 when
//                                          |R| > K)
//   AP@K        = (1 / min(K, |R|)) Σ_{hit positions i ≤ K} precision@i,
//                 precision@i = (hits in positions 1..i) / i        (MAP@K = mean of AP@K)
//   NDCG@K      = DCG@K / IDCG@K, binary gains, log2 discount:
//                 DCG@K  = Σ_{hit positions i ≤ K} 1 / log2(i + 1)
//                 IDCG@K = Σ_{i = 1..min(K, |R|)} 1 / log2(i + 1)
//   hit rate@K  = 1 if hits ≥ 1, else 0
//   RR@K        = 1 / (position of the first hit) if hits ≥ 1, else 0   (MRR@K = mean)
// All lie in [0, 1].
//
// ---- Averages over users (RankingAccumulator) ----------------------------------------
// Each metric is the plain mean over the users added with |R| > 0; users with no
// relevant item are skipped (not averaged, counted in skipped_users). Averages are NaN
// with no user.
//   coverage@K = |distinct items among the first K positions of every list added
//                (skipped users' lists included)| / catalogue_size
#pragma once
#include <cstdint>
#include <limits>
#include <unordered_set>
#include <vector>

#include "common.h"

namespace recsys {

class RatingMetrics {
 public:
  // Adds one pair; a non-finite prediction or rating counts as skipped.
  void add(double predicted, double actual);
  // Counts pairs that could not be predicted at all.
  void add_skipped(uint64_t n = 1) { skipped_ += n; }
  void merge(const RatingMetrics& other);

  uint64_t count() const { return n_; }
  uint64_t skipped() const { return skipped_; }
  double mse() const;
  double rmse() const;
  double mae() const;

 private:
  double sum_sq_ = 0;
  double sum_abs_ = 0;
  uint64_t n_ = 0;
  uint64_t skipped_ = 0;
};

struct RankingMetrics {
  double precision = 0;
  double recall = 0;
  double average_precision = 0;
  double ndcg = 0;
  double hit_rate = 0;
  double reciprocal_rank = 0;
  int64_t hits = 0;  // for one user; for an average, the total over users
};

// The metrics of one user (definitions above). Throws InvalidParameter for k < 1 or an
// empty relevant set (the accumulator skips such users instead).
RankingMetrics ranking_metrics(const int64_t* recommended, int64_t n_recommended, const int64_t* relevant,
                               int64_t n_relevant, int64_t k);
inline RankingMetrics ranking_metrics(const std::vector<int64_t>& recommended, const std::vector<int64_t>& relevant,
                                      int64_t k) {
  return ranking_metrics(recommended.data(), static_cast<int64_t>(recommended.size()), relevant.data(),
                         static_cast<int64_t>(relevant.size()), k);
}

class RankingAccumulator {
 public:
  // k >= 1; catalogue_size = number of items that could be recommended (<= 0: coverage NaN).
  RankingAccumulator(int64_t k, int64_t catalogue_size);

  // Adds one user's list and relevant set. Returns false (user skipped, list still
  // counted for coverage) when the relevant set is empty.
  bool add(const int64_t* recommended, int64_t n_recommended, const int64_t* relevant, int64_t n_relevant);
  bool add(const std::vector<int64_t>& recommended, const std::vector<int64_t>& relevant) {
    return add(recommended.data(), static_cast<int64_t>(recommended.size()), relevant.data(),
               static_cast<int64_t>(relevant.size()));
  }
  // Combines another accumulator with the same k and catalogue size.
  void merge(const RankingAccumulator& other);

  int64_t k() const { return k_; }
  int64_t users() const { return users_; }
  int64_t skipped_users() const { return skipped_; }
  // Means over users (hits = total hits); NaN fields when no user was added.
  RankingMetrics mean() const;
  double coverage() const;
  int64_t distinct_recommended() const { return static_cast<int64_t>(distinct_.size()); }

 private:
  int64_t k_;
  int64_t catalogue_;
  int64_t users_ = 0;
  int64_t skipped_ = 0;
  RankingMetrics sum_;
  std::unordered_set<int64_t> distinct_;
};

}  // namespace recsys

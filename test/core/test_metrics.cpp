// Tests of the evaluation metrics (metrics.h), against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "metrics.h"

namespace recsys {
namespace {

using V = std::vector<int64_t>;

const double kLog3 = std::log2(3.0), kLog5 = std::log2(5.0), kLog6 = std::log2(6.0);

// ------------------------------------------------------------------ rating metrics

TEST(MetricsRating, HandComputed) {
  RatingMetrics r;
  r.add(3, 4);  // error -1
  r.add(5, 3);  // +2
  r.add(2, 2);  // 0
  EXPECT_EQ(r.count(), 3u);
  EXPECT_EQ(r.skipped(), 0u);
  EXPECT_DOUBLE_EQ(r.mse(), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.rmse(), std::sqrt(5.0 / 3.0));
  EXPECT_DOUBLE_EQ(r.mae(), 1.0);
}

TEST(MetricsRating, SkipsNonFiniteAndCountsUnpredictable) {
  RatingMetrics r;
  r.add(std::nan(""), 3);
  r.add(2, INFINITY);
  r.add_skipped(2);
  r.add(1.5, 1);
  EXPECT_EQ(r.count(), 1u);
  EXPECT_EQ(r.skipped(), 4u);
  EXPECT_DOUBLE_EQ(r.rmse(), 0.5);
  EXPECT_DOUBLE_EQ(r.mae(), 0.5);
}

TEST(MetricsRating, EmptyIsNaNAndMergeAdds) {
  RatingMetrics empty;
  EXPECT_TRUE(std::isnan(empty.rmse()));
  EXPECT_TRUE(std::isnan(empty.mse()));
  EXPECT_TRUE(std::isnan(empty.mae()));
  RatingMetrics a, b, all;
  a.add(1, 2);
  b.add(4, 2);
  b.add_skipped();
  all.add(1, 2);
  all.add(4, 2);
  a.merge(b);
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.skipped(), 1u);
  EXPECT_DOUBLE_EQ(a.mse(), all.mse());  // (1 + 4) / 2
  EXPECT_DOUBLE_EQ(a.mae(), 1.5);
}

// ----------------------------------------------------------------- ranking metrics

TEST(MetricsRanking, HitsAtPositionsTwoAndFive) {
  // List 1..5, relevant {2, 5, 9}, K = 5: hits at positions 2 and 5.
  const RankingMetrics m = ranking_metrics(V{1, 2, 3, 4, 5}, V{2, 5, 9}, 5);
  EXPECT_EQ(m.hits, 2);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(m.recall, 2.0 / 3.0);
  // AP = (P@2 + P@5) / min(5, 3) = (1/2 + 2/5) / 3.
  EXPECT_DOUBLE_EQ(m.average_precision, (0.5 + 0.4) / 3.0);
  // DCG = 1/log2(3) + 1/log2(6); IDCG = 1/log2(2) + 1/log2(3) + 1/log2(4).
  EXPECT_DOUBLE_EQ(m.ndcg, (1.0 / kLog3 + 1.0 / kLog6) / (1.0 + 1.0 / kLog3 + 0.5));
  EXPECT_DOUBLE_EQ(m.hit_rate, 1.0);
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.5);
}

TEST(MetricsRanking, OnlyTheFirstKPositionsCount) {
  // Same list at K = 3: one hit (position 2).
  const RankingMetrics m = ranking_metrics(V{1, 2, 3, 4, 5}, V{2, 5, 9}, 3);
  EXPECT_EQ(m.hits, 1);
  EXPECT_DOUBLE_EQ(m.precision, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.average_precision, 0.5 / 3.0);
  EXPECT_DOUBLE_EQ(m.ndcg, (1.0 / kLog3) / (1.0 + 1.0 / kLog3 + 0.5));
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.5);
  // At K = 1 nothing is hit.
  const RankingMetrics m1 = ranking_metrics(V{1, 2, 3, 4, 5}, V{2, 5, 9}, 1);
  EXPECT_EQ(m1.hits, 0);
  EXPECT_EQ(m1.precision, 0.0);
  EXPECT_EQ(m1.average_precision, 0.0);
  EXPECT_EQ(m1.ndcg, 0.0);
  EXPECT_EQ(m1.hit_rate, 0.0);
  EXPECT_EQ(m1.reciprocal_rank, 0.0);
}

TEST(MetricsRanking, KLargerThanTheList) {
  // Two recommendations, K = 10, one relevant item at position 2.
  const RankingMetrics m = ranking_metrics(V{7, 8}, V{8}, 10);
  EXPECT_EQ(m.hits, 1);
  EXPECT_DOUBLE_EQ(m.precision, 0.1);  // divided by K, not by the list length
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.average_precision, 0.5);  // P@2 / min(10, 1)
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0 / kLog3);       // IDCG = 1
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.5);
}

TEST(MetricsRanking, PerfectListScoresOne) {
  const RankingMetrics m = ranking_metrics(V{4, 2, 9}, V{2, 4, 9}, 3);
  EXPECT_DOUBLE_EQ(m.precision, 1.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);
  EXPECT_DOUBLE_EQ(m.average_precision, 1.0);
  EXPECT_DOUBLE_EQ(m.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 1.0);
  // More relevant items than K: precision, AP and NDCG can still reach 1, recall cannot.
  const RankingMetrics m2 = ranking_metrics(V{1, 2}, V{1, 2, 3, 4}, 2);
  EXPECT_DOUBLE_EQ(m2.precision, 1.0);
  EXPECT_DOUBLE_EQ(m2.recall, 0.5);
  EXPECT_DOUBLE_EQ(m2.average_precision, 1.0);
  EXPECT_DOUBLE_EQ(m2.ndcg, 1.0);
}

TEST(MetricsRanking, EmptyListScoresZero) {
  const RankingMetrics m = ranking_metrics(V{}, V{3}, 5);
  EXPECT_EQ(m.hits, 0);
  EXPECT_EQ(m.precision, 0.0);
  EXPECT_EQ(m.recall, 0.0);
  EXPECT_EQ(m.average_precision, 0.0);
  EXPECT_EQ(m.ndcg, 0.0);
  EXPECT_EQ(m.hit_rate, 0.0);
  EXPECT_EQ(m.reciprocal_rank, 0.0);
}

TEST(MetricsRanking, TiesAreTheCallersOrder) {
  // Items 10 and 11 had equal scores; whichever order the caller chose is what counts.
  const RankingMetrics a = ranking_metrics(V{10, 11}, V{11}, 2);
  const RankingMetrics b = ranking_metrics(V{11, 10}, V{11}, 2);
  EXPECT_DOUBLE_EQ(a.reciprocal_rank, 0.5);
  EXPECT_DOUBLE_EQ(b.reciprocal_rank, 1.0);
  EXPECT_DOUBLE_EQ(a.ndcg, 1.0 / kLog3);
  EXPECT_DOUBLE_EQ(b.ndcg, 1.0);
  EXPECT_DOUBLE_EQ(a.precision, b.precision);  // set-based metrics do not see the order
  EXPECT_DOUBLE_EQ(a.recall, b.recall);
}

TEST(MetricsRanking, RepeatedItemsAndRelevantDuplicates) {
  // 3 appears twice: the second occurrence is no hit but uses up position 2.
  const RankingMetrics m = ranking_metrics(V{3, 3, 4}, V{3, 4, 4}, 3);
  EXPECT_EQ(m.hits, 2);
  EXPECT_DOUBLE_EQ(m.precision, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.recall, 1.0);  // |R| = 2 after removing the duplicate 4
  EXPECT_DOUBLE_EQ(m.average_precision, (1.0 + 2.0 / 3.0) / 2.0);
  EXPECT_DOUBLE_EQ(m.ndcg, (1.0 + 0.5) / (1.0 + 1.0 / kLog3));
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 1.0);
}

TEST(MetricsRanking, HitAtFourthPosition) {
  const RankingMetrics m = ranking_metrics(V{9, 8, 7, 6}, V{6, 1}, 4);
  EXPECT_DOUBLE_EQ(m.average_precision, 0.25 / 2.0);
  EXPECT_DOUBLE_EQ(m.ndcg, (1.0 / kLog5) / (1.0 + 1.0 / kLog3));
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.25);
}

TEST(MetricsRanking, RejectsBadArguments) {
  EXPECT_THROW(ranking_metrics(V{1}, V{1}, 0), Error);
  EXPECT_THROW(ranking_metrics(V{1}, V{}, 3), Error);
  EXPECT_THROW(RankingAccumulator(0, 10), Error);
}

// ------------------------------------------------------------------- accumulator

TEST(MetricsRanking, AccumulatorAveragesUsersAndSkipsThoseWithoutRelevantItems) {
  RankingAccumulator acc(5, 20);
  EXPECT_TRUE(acc.add(V{1, 2, 3, 4, 5}, V{2, 5, 9}));  // the first example above
  EXPECT_TRUE(acc.add(V{10, 11}, V{12}));             // no hit
  EXPECT_FALSE(acc.add(V{1, 13}, V{}));               // skipped, but its list counts for coverage
  EXPECT_EQ(acc.users(), 2);
  EXPECT_EQ(acc.skipped_users(), 1);
  const RankingMetrics m = acc.mean();
  EXPECT_EQ(m.hits, 2);
  EXPECT_DOUBLE_EQ(m.precision, 0.4 / 2.0);
  EXPECT_DOUBLE_EQ(m.recall, (2.0 / 3.0) / 2.0);
  EXPECT_DOUBLE_EQ(m.average_precision, 0.3 / 2.0);
  EXPECT_DOUBLE_EQ(m.ndcg, (1.0 / kLog3 + 1.0 / kLog6) / (1.0 + 1.0 / kLog3 + 0.5) / 2.0);
  EXPECT_DOUBLE_EQ(m.hit_rate, 0.5);
  EXPECT_DOUBLE_EQ(m.reciprocal_rank, 0.25);
  // Distinct items in the first 5 positions: 1..5, 10, 11, 13 = 8 of 20.
  EXPECT_EQ(acc.distinct_recommended(), 8);
  EXPECT_DOUBLE_EQ(acc.coverage(), 0.4);
}

TEST(MetricsRanking, CoverageLooksAtTheFirstKOnly) {
  RankingAccumulator acc(2, 10);
  acc.add(V{1, 2, 3, 4}, V{1});
  acc.add(V{2, 5}, V{7});
  EXPECT_EQ(acc.distinct_recommended(), 3);  // 1, 2, 5
  EXPECT_DOUBLE_EQ(acc.coverage(), 0.3);
  RankingAccumulator no_catalogue(2, 0);
  EXPECT_TRUE(std::isnan(no_catalogue.coverage()));
}

TEST(MetricsRanking, EmptyAccumulatorIsNaNAndMergeMatchesOneAccumulator) {
  RankingAccumulator empty(3, 10);
  const RankingMetrics e = empty.mean();
  EXPECT_TRUE(std::isnan(e.precision));
  EXPECT_TRUE(std::isnan(e.ndcg));
  EXPECT_TRUE(std::isnan(e.reciprocal_rank));
  EXPECT_EQ(e.hits, 0);
  EXPECT_DOUBLE_EQ(empty.coverage(), 0.0);

  RankingAccumulator a(3, 10), b(3, 10), all(3, 10);
  a.add(V{1, 2, 3}, V{3});
  all.add(V{1, 2, 3}, V{3});
  b.add(V{4, 1}, V{4, 5});
  all.add(V{4, 1}, V{4, 5});
  b.add(V{6}, V{});
  all.add(V{6}, V{});
  a.merge(b);
  const RankingMetrics x = a.mean(), y = all.mean();
  EXPECT_DOUBLE_EQ(x.precision, y.precision);
  EXPECT_DOUBLE_EQ(x.recall, y.recall);
  EXPECT_DOUBLE_EQ(x.average_precision, y.average_precision);
  EXPECT_DOUBLE_EQ(x.ndcg, y.ndcg);
  EXPECT_DOUBLE_EQ(x.hit_rate, y.hit_rate);
  EXPECT_DOUBLE_EQ(x.reciprocal_rank, y.reciprocal_rank);
  EXPECT_EQ(a.users(), 2);
  EXPECT_EQ(a.skipped_users(), 1);
  EXPECT_DOUBLE_EQ(a.coverage(), all.coverage());
  RankingAccumulator other_k(4, 10);
  EXPECT_THROW(a.merge(other_k), Error);
}

}  // namespace
}  // namespace recsys

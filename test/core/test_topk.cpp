// top_k (one pass with a min-heap) against top_k_by_sort (the full-sort reference).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "topk.h"

using recsys::Scored;

namespace {

std::vector<Scored> run_top_k(const std::vector<float>& scores, int64_t k, const std::vector<bool>& skip) {
  std::vector<Scored> out;
  // Pre-fill to check that top_k replaces, not appends.
  out.push_back(Scored{123.0f, 999});
  int64_t n = recsys::top_k(
      scores.data(), static_cast<int64_t>(scores.size()), k,
      [&](int64_t i) { return !skip.empty() && skip[static_cast<size_t>(i)]; }, out);
  EXPECT_EQ(n, static_cast<int64_t>(out.size()));
  return out;
}

void expect_same(const std::vector<Scored>& got, const std::vector<Scored>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index, want[i].index) << what << " at rank " << i;
    EXPECT_EQ(got[i].score, want[i].score) << what << " at rank " << i;
  }
}

// Best first: score descending, then index ascending; no index twice.
void expect_well_ordered(const std::vector<Scored>& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    bool ok = v[i - 1].score > v[i].score || (v[i - 1].score == v[i].score && v[i - 1].index < v[i].index);
    EXPECT_TRUE(ok) << "rank " << i - 1 << " (" << v[i - 1].score << ", " << v[i - 1].index << ") vs rank " << i
                    << " (" << v[i].score << ", " << v[i].index << ")";
  }
}

// Scores drawn from a few distinct values so ties are everywhere.
std::vector<float> tie_heavy(std::mt19937_64& rng, int64_t n, int distinct) {
  std::uniform_int_distribution<int> d(0, distinct - 1);
  std::vector<float> s(static_cast<size_t>(n));
  for (auto& x : s) x = static_cast<float>(d(rng)) * 0.5f - 3.0f;
  return s;
}

}  // namespace

TEST(TopKReference, SortsByScoreThenIndex) {
  std::vector<float> s = {1.0f, 3.0f, 3.0f, -2.0f, 5.0f, 1.0f};
  auto r = recsys::top_k_by_sort(s.data(), 6, 6, {});
  ASSERT_EQ(r.size(), 6u);
  int want[] = {4, 1, 2, 0, 5, 3};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r[i].index, want[i]) << i;
  EXPECT_EQ(r[0].score, 5.0f);
  EXPECT_EQ(r[5].score, -2.0f);
}

TEST(TopKReference, SkipAndLimits) {
  std::vector<float> s = {1.0f, 3.0f, 3.0f, -2.0f, 5.0f, 1.0f};
  std::vector<bool> skip = {false, true, false, false, true, false};
  auto r = recsys::top_k_by_sort(s.data(), 6, 2, skip);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].index, 2);
  EXPECT_EQ(r[1].index, 0);
  EXPECT_TRUE(recsys::top_k_by_sort(s.data(), 6, 0, {}).empty());
  EXPECT_TRUE(recsys::top_k_by_sort(s.data(), 6, -3, {}).empty());
  EXPECT_TRUE(recsys::top_k_by_sort(s.data(), 0, 5, {}).empty());
  EXPECT_EQ(recsys::top_k_by_sort(s.data(), 6, 100, skip).size(), 4u);
}

TEST(TopK, SmallHandExample) {
  std::vector<float> s = {0.5f, 2.0f, 2.0f, 7.0f, -1.0f, 2.0f};
  auto r = run_top_k(s, 3, {});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].index, 3);
  EXPECT_EQ(r[1].index, 1);
  EXPECT_EQ(r[2].index, 2);
}

TEST(TopK, MatchesReferenceOnRandomTieHeavyData) {
  std::mt19937_64 rng(20240601);
  const int64_t sizes[] = {1, 2, 3, 7, 16, 100, 1000, 5000};
  for (int64_t n : sizes) {
    for (int distinct : {1, 2, 5, 50, 100000}) {
      std::vector<float> s = tie_heavy(rng, n, distinct);
      for (int64_t k : {int64_t(1), int64_t(2), int64_t(5), n / 2, n - 1, n, n + 1, n * 3}) {
        if (k < 1) continue;
        auto want = recsys::top_k_by_sort(s.data(), n, k, {});
        auto got = run_top_k(s, k, {});
        EXPECT_EQ(static_cast<int64_t>(got.size()), std::min(k, n));
        expect_well_ordered(got);
        expect_same(got, want, "n=" + std::to_string(n) + " k=" + std::to_string(k) +
                                   " distinct=" + std::to_string(distinct));
      }
    }
  }
}

TEST(TopK, MatchesReferenceWithSkipPredicate) {
  std::mt19937_64 rng(7);
  std::bernoulli_distribution coin(0.3);
  for (int trial = 0; trial < 200; ++trial) {
    int64_t n = 1 + static_cast<int64_t>(rng() % 300);
    std::vector<float> s = tie_heavy(rng, n, 1 + static_cast<int>(rng() % 10));
    std::vector<bool> skip(static_cast<size_t>(n));
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      skip[static_cast<size_t>(i)] = coin(rng);
      kept += !skip[static_cast<size_t>(i)];
    }
    for (int64_t k : {int64_t(1), int64_t(3), kept, kept + 1, n, n + 5}) {
      if (k < 1) continue;
      auto want = recsys::top_k_by_sort(s.data(), n, k, skip);
      auto got = run_top_k(s, k, skip);
      EXPECT_EQ(static_cast<int64_t>(got.size()), std::min(k, kept));
      for (auto& e : got) EXPECT_FALSE(skip[static_cast<size_t>(e.index)]) << "skipped index " << e.index;
      expect_well_ordered(got);
      expect_same(got, want, "trial " + std::to_string(trial) + " k=" + std::to_string(k));
    }
  }
}

TEST(TopK, KEqualsOneIsTheLowestIndexOfTheMaximum) {
  std::vector<float> s = {1, 9, 3, 9, 9, 0};
  auto r = run_top_k(s, 1, {});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].index, 1);
  EXPECT_EQ(r[0].score, 9.0f);
  // Skipping the first maximum moves to the next one.
  auto r2 = run_top_k(s, 1, {false, true, false, false, false, false});
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_EQ(r2[0].index, 3);
}

TEST(TopK, KAtLeastNReturnsEverythingSorted) {
  std::vector<float> s = {0.25f, -1.0f, 4.0f, 0.25f, 4.0f};
  for (int64_t k : {5, 6, 1000}) {
    auto r = run_top_k(s, k, {});
    ASSERT_EQ(r.size(), 5u) << k;
    int want[] = {2, 4, 0, 3, 1};
    for (int i = 0; i < 5; ++i) EXPECT_EQ(r[i].index, want[i]) << "k=" << k << " rank " << i;
  }
}

TEST(TopK, NonPositiveKAndEmptyInputGiveNothing) {
  std::vector<float> s = {1, 2, 3};
  for (int64_t k : {int64_t(0), int64_t(-1), std::numeric_limits<int64_t>::min()}) {
    auto r = run_top_k(s, k, {});
    EXPECT_TRUE(r.empty()) << k;
  }
  std::vector<float> empty;
  std::vector<Scored> out = {Scored{1.0f, 1}};
  EXPECT_EQ(recsys::top_k(empty.data(), 0, 10, [](int64_t) { return false; }, out), 0);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(recsys::top_k(s.data(), -5, 10, [](int64_t) { return false; }, out), 0);
  EXPECT_TRUE(out.empty());
}

TEST(TopK, EverythingSkippedGivesNothing) {
  std::vector<float> s = {1, 2, 3, 4};
  std::vector<bool> all(4, true);
  EXPECT_TRUE(run_top_k(s, 2, all).empty());
  EXPECT_TRUE(recsys::top_k_by_sort(s.data(), 4, 2, all).empty());
}

TEST(TopK, HandlesInfinitiesAndSignedZero) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> s = {0.0f, -inf, inf, -0.0f, 1.0f, inf, -inf};
  for (int64_t k = 1; k <= 8; ++k) {
    auto got = run_top_k(s, k, {});
    auto want = recsys::top_k_by_sort(s.data(), 7, k, {});
    expect_same(got, want, "k=" + std::to_string(k));
  }
  auto r = run_top_k(s, 7, {});
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].index, 2);
  EXPECT_EQ(r[1].index, 5);
  // 0.0 == -0.0: tie broken by index.
  EXPECT_EQ(r[3].index, 0);
  EXPECT_EQ(r[4].index, 3);
  EXPECT_EQ(r[5].index, 1);
  EXPECT_EQ(r[6].index, 6);
}

TEST(TopK, AscendingAndDescendingInputs) {
  // Ascending scores make every candidate replace the heap root; descending ones make
  // every candidate after the first k get rejected.
  const int64_t n = 2000;
  std::vector<float> up(n), down(n);
  for (int64_t i = 0; i < n; ++i) {
    up[i] = static_cast<float>(i);
    down[i] = static_cast<float>(n - i);
  }
  for (int64_t k : {1, 10, 999, 2000}) {
    expect_same(run_top_k(up, k, {}), recsys::top_k_by_sort(up.data(), n, k, {}), "up");
    expect_same(run_top_k(down, k, {}), recsys::top_k_by_sort(down.data(), n, k, {}), "down");
    auto r = run_top_k(up, k, {});
    EXPECT_EQ(r.front().index, n - 1);
    EXPECT_EQ(r.back().index, n - k);
  }
}

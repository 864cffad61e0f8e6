// The serving entry points (recommend_user, recommend_batch, similar_items,
// similar_users, score_pair, check_serving_call) on the model kinds without factors:
// item_knn routes to the neighbour-list functions with identical results, content models
// answer similar_items only, kmeans models refuse every serving call, each in plain words.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "json_options.h"
#include "content.h"
#include "kmeans.h"
#include "knn.h"
#include "model_bytes.h"
#include "model_format.h"
#include "serving.h"
#include "training.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {



// 80 users, 50 items in 5 groups of 10; each user mostly picks items of one group.
Model knn_model(const std::string& json) {
  TrainingState st(KeyKind::Int, 20, KeyKind::Int, 20);
  std::mt19937_64 rng(11);
  for (int u = 0; u < 80; ++u) {
    const int g = u % 5;
    for (int r = 0; r < 12; ++r) {
      const int item = (rng() % 10 < 8) ? g * 10 + static_cast<int>(rng() % 10) : static_cast<int>(rng() % 50);
      st.add(st.users.intern_int(u), st.items.intern_int(item), 1.0 + static_cast<double>(rng() % 3));
    }
  }
  CancelToken cancel;
  build_item_knn_model(st, parse_item_knn_options(json), 2, cancel, [](const std::string&) {});
  return write_model(*st.result);
}

// Runs f and returns the NotSupported error's message ("" when nothing was thrown).
template <class F>
std::string not_supported(F f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotSupported) << e.what();
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(ServingKinds, ItemKnnRecommendRoutesToNeighbourLists) {
  Model m = knn_model("{\"neighbours\": 15}");
  ModelView v = m.view();
  std::vector<Scored> a, b;
  int64_t nonempty = 0;
  for (int64_t u = 0; u < v.n_users(); ++u) {
    for (bool exclude : {true, false}) {
      recommend_user(v, u, 10, exclude, a);
      knn_recommend_user(v, u, 10, exclude, b);
      ASSERT_EQ(a.size(), b.size());
      for (size_t q = 0; q < a.size(); ++q) {
        EXPECT_EQ(a[q].index, b[q].index);
        EXPECT_EQ(a[q].score, b[q].score);
        // score_pair gives the same number recommend ranked by.
        EXPECT_NEAR(score_pair(v, u, a[q].index), a[q].score, 1e-5f * std::max(1.0f, a[q].score));
      }
      if (exclude) {
        SeenItems seen = seen_items(v, u);
        for (const Scored& s : a) EXPECT_FALSE(std::binary_search(seen.items, seen.items + seen.count, s.index));
      }
      nonempty += !a.empty();
    }
  }
  EXPECT_EQ(nonempty, 2 * v.n_users());
  // An item that no list of the user's items holds scores 0.
  std::vector<Scored> all;
  recommend_user(v, 0, v.n_items(), false, all);
  for (int64_t i = 0; i < v.n_items(); ++i) {
    bool listed = std::any_of(all.begin(), all.end(), [&](const Scored& s) { return s.index == i; });
    if (!listed) {
      EXPECT_EQ(score_pair(v, 0, i), 0.0f) << "item " << i;
    }
  }
}

TEST(ServingKinds, ItemKnnBatchEqualsPerUser) {
  Model m = knn_model("{\"neighbours\": 20, \"similarity\": \"bm25\"}");
  ModelView v = m.view();
  std::vector<int64_t> users;
  for (int64_t u = v.n_users() - 1; u >= 0; u -= 2) users.push_back(u);
  for (bool exclude : {true, false}) {
    std::vector<std::vector<Scored>> batch;
    CancelToken never;
    recommend_batch(v, users, 7, exclude, 2, never, batch);
    ASSERT_EQ(batch.size(), users.size());
    std::vector<Scored> one;
    for (size_t j = 0; j < users.size(); ++j) {
      recommend_user(v, users[j], 7, exclude, one);
      ASSERT_EQ(batch[j].size(), one.size());
      for (size_t q = 0; q < one.size(); ++q) {
        EXPECT_EQ(batch[j][q].index, one[q].index);
        EXPECT_EQ(batch[j][q].score, one[q].score);
      }
    }
  }
}

TEST(ServingKinds, ItemKnnSimilarItemsAreTheStoredLists) {
  Model m = knn_model("{\"neighbours\": 6}");
  ModelView v = m.view();
  std::vector<Scored> a, b;
  for (int64_t i = 0; i < v.n_items(); ++i) {
    similar_items(v, i, 4, a);
    knn_similar_items(v, i, 4, b);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_LE(a.size(), 4u);
    for (size_t q = 0; q < a.size(); ++q) {
      EXPECT_EQ(a[q].index, b[q].index);
      EXPECT_NE(a[q].index, i);
    }
    similar_items(v, i, 1000, a);  // never more than the stored neighbours
    EXPECT_LE(a.size(), 6u);
  }
}

TEST(ServingKinds, ItemKnnHasNoFactors) {
  Model m = knn_model("{}");
  ModelView v = m.view();
  std::vector<Scored> out;
  std::string e = not_supported([&] { similar_users(v, 0, 5, out); });
  EXPECT_TRUE(contains(e, "item_knn models have no factors")) << e;
  EXPECT_TRUE(contains(e, "similar_users")) << e;
  e = not_supported([&] { check_serving_call(v, ServingCall::UserFactors); });
  EXPECT_TRUE(contains(e, "item_knn models have no factors")) << e;
  e = not_supported([&] { check_serving_call(v, ServingCall::ItemFactors); });
  EXPECT_TRUE(contains(e, "item_factors")) << e;
  for (ServingCall ok : {ServingCall::Recommend, ServingCall::RecommendAll, ServingCall::SimilarItems,
                         ServingCall::Score, ServingCall::RankingMetrics})
    EXPECT_NO_THROW(check_serving_call(v, ok)) << serving_call_name(ok);
  // Without stored users' items, recommend and score say so.
  Model ns = knn_model("{\"store_seen\": false}");
  e = not_supported([&] { recommend_user(ns.view(), 0, 5, false, out); });
  EXPECT_TRUE(contains(e, "store_seen")) << e;
  e = not_supported([&] { score_pair(ns.view(), 0, 0); });
  EXPECT_TRUE(contains(e, "store_seen")) << e;
  std::vector<std::vector<Scored>> batch;
  CancelToken never;
  e = not_supported([&] { recommend_batch(ns.view(), {0, 1}, 5, true, 2, never, batch); });
  EXPECT_TRUE(contains(e, "store_seen")) << e;
  EXPECT_GT(recommend_popular(ns.view(), 5, out), 0);  // the cold-start answer still works
}

TEST(ServingKinds, ContentAnswersSimilarItemsOnly) {
  ContentState st(KeyKind::Text, 25);
  const char* names[] = {"a", "b", "c", "d"};
  const char* cats[] = {"tea", "tea", "coffee", "coffee"};
  for (int i = 0; i < 4; ++i) {
    uint32_t id = st.items.intern_bytes(reinterpret_cast<const uint8_t*>(names[i]), 1);
    st.add_token(id, "category", cats[i]);
    st.add_token(id, "brand", "acme");
  }
  CancelToken cancel;
  build_content_model(st, parse_content_options("{}"), 2, cancel, [](const std::string&) {});
  Model m = write_model(*st.result);
  ModelView v = m.view();
  std::vector<Scored> a, b;
  similar_items(v, 0, 3, a);
  content_similar_items(v, 0, 3, b);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a[0].index, 1);  // the other tea
  for (size_t q = 0; q < a.size(); ++q) EXPECT_EQ(a[q].index, b[q].index);
  std::string e = not_supported([&] { recommend_user(v, 0, 5, true, a); });
  EXPECT_TRUE(contains(e, "recsys.recommend_content(model, items[], k)")) << e;
  e = not_supported([&] { recommend_popular(v, 5, a); });
  EXPECT_TRUE(contains(e, "recommend_content")) << e;
  e = not_supported([&] { score_pair(v, 0, 0); });
  EXPECT_TRUE(contains(e, "no users")) << e;
  std::vector<std::vector<Scored>> batch;
  CancelToken never;
  e = not_supported([&] { recommend_batch(v, {0}, 5, true, 2, never, batch); });
  EXPECT_TRUE(contains(e, "recommend_all")) << e;
  e = not_supported([&] { similar_users(v, 0, 5, a); });
  EXPECT_TRUE(contains(e, "no learned factors")) << e;
  e = not_supported([&] { check_serving_call(v, ServingCall::ItemFactors); });
  EXPECT_TRUE(contains(e, "item_factors")) << e;
}

TEST(ServingKinds, KMeansRefusesEveryServingCall) {
  KMeansState st;
  const float pts[6][2] = {{0, 0}, {0, 1}, {1, 0}, {10, 10}, {10, 11}, {11, 10}};
  for (auto& p : pts) st.add(p, 2);
  CancelToken cancel;
  build_kmeans_model(st, parse_kmeans_options("{\"k\": 2}"), 2, cancel, [](const std::string&) {});
  Model m = write_model(*st.result);
  ModelView v = m.view();
  std::vector<Scored> out;
  for (ServingCall c : {ServingCall::Recommend, ServingCall::RecommendAll, ServingCall::SimilarItems,
                        ServingCall::SimilarUsers, ServingCall::Score, ServingCall::UserFactors,
                        ServingCall::ItemFactors, ServingCall::RankingMetrics}) {
    std::string e = not_supported([&] { check_serving_call(v, c); });
    EXPECT_TRUE(contains(e, "a kmeans model assigns clusters: use recsys.cluster")) << e;
    EXPECT_TRUE(contains(e, serving_call_name(c))) << e;
  }
  EXPECT_FALSE(not_supported([&] { recommend_user(v, 0, 3, false, out); }).empty());
  EXPECT_FALSE(not_supported([&] { recommend_popular(v, 3, out); }).empty());
  EXPECT_FALSE(not_supported([&] { similar_items(v, 0, 3, out); }).empty());
  EXPECT_FALSE(not_supported([&] { score_pair(v, 0, 0); }).empty());
}

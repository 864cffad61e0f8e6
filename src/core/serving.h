// Serving on an opened model: top-K recommendations, similar items and users, scores.
// Everything reads the model in place; results go to caller-provided vectors.
#pragma once
#include <cstdint>
#include <vector>

#include "model_format.h"
#include "parallel.h"
#include "topk.h"

namespace recsys {

// Items of a user's training history (sorted item indices), or an empty span.
struct SeenItems {
  const int32_t* items = nullptr;
  int64_t count = 0;
};
SeenItems seen_items(const ModelView& model, int64_t user);

// Top-k items for a known user, best first; seen items skipped when exclude_seen.
// Throws NotSupported for model kinds without user factors.
int64_t recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                       std::vector<Scored>& out);

// The k most popular items (cold-start answer for unknown users); score = popularity.
int64_t recommend_popular(const ModelView& model, int64_t k, std::vector<Scored>& out);

// Top-k items by cosine similarity of factors to `item`, the item itself excluded.
int64_t similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out);
int64_t similar_users(const ModelView& model, int64_t user, int64_t k, std::vector<Scored>& out);

// The model's score of one (user, item) pair (the same number recommend ranks by).
float score_pair(const ModelView& model, int64_t user, int64_t item);

// Fills norms[i] = ||factors row i||.
std::vector<float> row_norms(const float* factors, int64_t rows, int factors_count);

// Items by decreasing popularity (ties: lower index first).
std::vector<int32_t> popularity_order(const std::vector<float>& popularity);

}  // namespace recsys

namespace recsys {

// Top-k for many users at once (recommend_all): blocked matrix products of a batch of
// users against blocks of items (Eigen GEMM), a running top-k per user, seen items
// excluded; multi-threaded over chunks of users. Memory: threads x chunk x item-block
// scores plus the results of the given users, never users x items.
// out[j] receives user users[j]'s list, best first (resized to users.size()).
void recommend_batch(const ModelView& model, const std::vector<int64_t>& users, int64_t k, bool exclude_seen,
                     int threads, const CancelToken& cancel, std::vector<std::vector<Scored>>& out);

}  // namespace recsys

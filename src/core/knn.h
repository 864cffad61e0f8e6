// Item-to-item collaborative filtering ("people who bought this also bought"), as
// Amazon's item-based recommender and the `implicit` library's CosineRecommender,
// TFIDFRecommender and BM25Recommender.
//
// Training. The user x item matrix (duplicate rows summed, as for ALS) is filtered and
// weighted:
//   * pairs whose summed weight is negative (or zero) are absent for the similarity and
//     for scoring ("disliked" is not evidence of similarity), but they stay in the
//     user's seen list, so recommend never returns an item the user disliked;
//   * binary = true replaces every positive weight by 1 (default false: weights are
//     used as given, e.g. purchase counts or event strengths);
//   * similarity = "cosine" uses the weights as they are; "tfidf" and "bm25" reweight
//     exactly as implicit's tfidf_weight / bm25_weight on the item x user matrix (items
//     are the documents, users the terms; N = number of items in the model, df(u) =
//     number of items of user u, idf(u) = ln N - ln(1 + df(u))):
//       tfidf: x' = sqrt(x) * idf(u)
//       bm25 : x' = x (K1 + 1) / (K1 * (1 - B + B * len(i) / avglen) + x) * idf(u),
//              len(i) = sum of item i's weights, avglen = mean over all items.
// Then, for every pair of items a, b sharing at least min_support users,
//   sim(a, b) = dot(a, b) / (|a| |b| + shrinkage)
// over the weighted item columns: the cosine when shrinkage = 0 (which is what implicit's
// Cosine and TFIDF recommenders compute; its BM25Recommender ranks by the raw dot product
// of BM25 weights, here it is normalized like the other two). Each item keeps its best
// `neighbours` items with sim > 0 (score desc, then index asc), never itself.
//
// It is the sparse product X^T X restricted to the top N of each row, computed item by
// item: for item a, its users' rows are accumulated into a dense per-thread array of
// length n_items plus a touched list, so memory is O(n_items x neighbours + nnz), never
// n_items^2. Items are handed out dynamically to the threads; every item's list depends
// only on the data, so the model does not depend on the thread count.
//
// Serving. recommend scores an item i by sum over the user's items j of
// w(u, j) * sim(j, i), where sim(j, i) is i's score in j's stored list and w(u, j) is the
// user's (binarized) positive weight of j: the product of the user's row with the
// truncated similarity matrix, as implicit's NearestNeighboursScorer. The weights are
// kept in the UserWeights section (float32, one per UserItems entry, 0 for negative
// pairs) so that a purchase pulls harder than a view, exactly as at training time; with
// binary = true they are 1 (or 0). Only items with a positive score are returned, so a
// user with few, rare items may get fewer than k rows (the SQL layer may pad with
// recommend_popular).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model_format.h"
#include "parallel.h"
#include "sparse.h"
#include "topk.h"
#include "training.h"

namespace recsys {

enum class KnnSimilarity { Cosine, Bm25, Tfidf };
const char* knn_similarity_name(KnnSimilarity s);

struct ItemKnnOptions {
  KnnSimilarity similarity = KnnSimilarity::Bm25;
  double k1 = 1.2;          // BM25 K1
  double b = 0.75;          // BM25 B
  double shrinkage = 10.0;  // sim = dot / (|a| |b| + shrinkage)
  int64_t min_support = 1;  // minimum number of users who have both items
  int64_t neighbours = 200; // items kept per item
  bool binary = false;      // every positive weight counts as 1
  bool store_seen = true;   // UserItems + UserWeights: needed by recommend
  bool verbose = false;
  int threads = 0;          // 0 = the caller's default
};
// Parses train_item_knn options ("similarity", "k1", "b", "shrinkage", "min_support",
// "neighbours", "binary", "store_seen", "verbose", "threads"); throws InvalidParameter
// naming the bad option.
ItemKnnOptions parse_item_knn_options(const OptionList& options);

// Leaves a ModelKind::ItemKnn model in state.result: Params, UserKeys, ItemKeys,
// NeighbourIndptr/Indices/Scores, ItemPopularity, PopularOrder and, if store_seen,
// UserItems + UserWeights. `threads` 0 = all hardware threads.
void build_item_knn_model(TrainingState& state, const ItemKnnOptions& options, int threads,
                          const CancelToken& cancel, const std::function<void(const std::string&)>& log_line);

// ---- building blocks (also used by the content model, the tests and the benchmark) ----

// Top-N neighbour lists of n rows as a CSR: row r's entries sorted by score desc, index asc.
struct NeighbourLists {
  std::vector<int64_t> indptr;   // rows + 1
  std::vector<int32_t> indices;
  std::vector<float> scores;
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
};

// The user x item matrix kNN works on: only positive entries, binarized if asked, then
// TF-IDF / BM25 weighted as described above. Same shape as ui.
CsrMatrix knn_weighted_matrix(const CsrMatrix& ui, const ItemKnnOptions& options);

// Neighbour lists of every item of the weighted user x item matrix `wui` (and its
// transpose `wiu`); only similarity-independent options are read (shrinkage,
// min_support, neighbours). Parallel over items; checks `cancel`.
NeighbourLists item_neighbours(const CsrMatrix& wui, const CsrMatrix& wiu, const ItemKnnOptions& options,
                               int threads, const CancelToken& cancel);

// The engine behind item_neighbours and the content model: the best `keep` neighbours of
// every item of a sparse item x dimension matrix (given as both `dim_items`, dim x item,
// and its transpose `item_dims`), with
//   sim(a, b) = (dot(a, b) + extra(a, b)) / (norms[a] norms[b] + shrinkage)
// over the pairs sharing at least max(1, min_support) dimensions; `extra` (may be null)
// adds a term computed outside the matrix (the content model's common features). Lists
// keep sim > 0 only, best first (score desc, index asc). Parallel over items, each item's
// list computed on its own; deterministic for any thread count.
using PairExtra = std::function<float(int32_t a, int32_t b)>;
NeighbourLists sparse_neighbours(const CsrMatrix& dim_items, const CsrMatrix& item_dims,
                                 const std::vector<float>& norms, float shrinkage, int64_t min_support, int64_t keep,
                                 const PairExtra* extra, int threads, const CancelToken& cancel);

// Keeps the best n of `cand` (ranks_before order) and sorts them; n <= 0 clears.
void keep_best(std::vector<Scored>& cand, int64_t n);

// Adds NeighbourIndptr / NeighbourIndices / NeighbourScores sections.
void add_neighbour_sections(ModelBuilder& builder, NeighbourLists&& lists);

// The model every neighbour-list recommender (item_knn, ease) emits: the header, keys,
// `lists`, popularity and, with store_seen, each user's items with the weight recommend
// multiplies their lists by (the positive weight, 1 when binary, 0 for a negative pair,
// which stays seen). `params` is the trainer's JSON members without the braces.
// Throws ProgramLimit naming `trainer` beyond PostgreSQL's 1 GB value limit.
std::unique_ptr<ModelBuilder> neighbour_model(ModelKind kind, const TrainingState& state,
                                              const std::vector<uint32_t>& user_order,
                                              const std::vector<uint32_t>& item_order, const CsrMatrix& ui,
                                              const std::vector<float>& popularity, NeighbourLists&& lists,
                                              bool binary, bool store_seen, std::string params, const char* trainer);

// ---- serving ----

// The first k entries of an item's stored neighbour list (ItemKnn and Content models).
// Throws NotSupported for models without neighbour lists, InvalidParameter for an item
// index out of range.
int64_t stored_neighbours(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out);

// The item's k most similar items from the stored lists (ItemKnn models).
int64_t knn_similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out);

// Top-k items for a user of the training data: score(i) = sum_j w(u, j) sim(j, i); seen
// items (all of UserItems, including negative pairs) skipped when exclude_seen. Throws
// NotSupported when the model was trained with store_seen = false.
int64_t knn_recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                           std::vector<Scored>& out);

// Top-k items for an ad-hoc basket (an anonymous session, a cart): score(i) =
// sum_j weights[j] * sim(items[j], i); `weights` empty means all 1, otherwise one per
// item (finite; non-positive weights contribute nothing). Duplicate items add up. The
// given items are skipped when exclude_given. Item indices must be in range.
int64_t knn_recommend_from_items(const ModelView& model, const std::vector<int64_t>& items,
                                 const std::vector<float>& weights, int64_t k, bool exclude_given,
                                 std::vector<Scored>& out);

// The score knn_recommend_user gives `item` for `user`: sum over the user's items j of
// w(u, j) * sim(j, item), summed in the same order, so it equals the recommended score
// exactly (0 when no list of the user's items holds the item). Throws NotSupported
// without the users' items (store_seen = false).
float knn_score_pair(const ModelView& model, int64_t user, int64_t item);

}  // namespace recsys

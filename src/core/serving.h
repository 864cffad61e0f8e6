// Serving on an opened model: top-K recommendations, similar items and users, scores.
// Everything reads the model in place; results go to caller-provided vectors.
#pragma once
#include <cstdint>
#include <vector>

#include "model_format.h"
#include "parallel.h"
#include "topk.h"

namespace recsys {

struct NeighbourLists;  // knn.h

// The serving calls of the SQL API, for check_serving_call.
enum class ServingCall { Recommend, RecommendAll, SimilarItems, SimilarUsers, Score, UserFactors, ItemFactors,
                         RankingMetrics };
const char* serving_call_name(ServingCall call);

// Throws NotSupported, in words that say what to use instead, when the model's kind has
// no answer to `call`: item_knn models have no factors (similar_users, user_factors,
// item_factors); content models have no users (recommend, recommend_all, score,
// ranking_metrics, similar_users, factors: use recommend_content); kmeans models assign
// clusters (every serving call: use cluster). Other combinations return; the serving
// functions themselves check what a factor or popularity model lacks.
void check_serving_call(const ModelView& model, ServingCall call);

// Items of a user's training history (sorted item indices), or an empty span.
struct SeenItems {
  const int32_t* items = nullptr;
  int64_t count = 0;
};
SeenItems seen_items(const ModelView& model, int64_t user);

// Top-k items for a known user, best first; seen items skipped when exclude_seen.
// Factor models score by dot products, popularity models by popularity, item_knn models
// by the sum of the user's items' stored similarities (knn_recommend_user: only items
// with a positive score, so possibly fewer than k). Throws NotSupported for content and
// kmeans models (check_serving_call).
// With `order` (build_item_order on this model, kept by the caller's model cache), a
// factor model's items are scored in decreasing-norm order and scoring stops once no
// item left can enter the list (the same list, fewer items read).
struct ItemOrder;

// Candidate filters of a serving call: with has_include, only the items of `include` may
// be returned; the items of `exclude` never are. Both sorted and distinct (finish()).
// Results stay exact: the top-k of the allowed items.
struct ItemFilter {
  bool has_include = false;
  std::vector<int32_t> include;
  std::vector<int32_t> exclude;
  void finish();  // sorts and removes duplicates
  bool active() const { return has_include || !exclude.empty(); }
  bool allows(int32_t item) const;
};

int64_t recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                       std::vector<Scored>& out, const ItemOrder* order = nullptr,
                       const ItemFilter* filter = nullptr);

// Top-k items for a user vector x of a factor model (ALS, biased MF) that need not be a
// stored user (a folded-in history): score = x . y_i (+ b_i), the same kernel and bits as
// recommend_user; items of `skip` (sorted) and those the filter refuses are left out.
// With `order`, pruned exactly as recommend_user.
int64_t recommend_vector(const ModelView& model, const float* x, int64_t k, const std::vector<int32_t>& skip,
                         const ItemFilter* filter, std::vector<Scored>& out, const ItemOrder* order = nullptr);

// Popularity models (and the cold-start answer): the most popular allowed items not in
// `skip` (sorted).
int64_t recommend_popular_filtered(const ModelView& model, int64_t k, const std::vector<int32_t>& skip,
                                   const ItemFilter* filter, std::vector<Scored>& out);

// Keeps the first k entries of a ranked list that the filter allows.
int64_t apply_filter(std::vector<Scored>& list, int64_t k, const ItemFilter* filter);

// The k most popular items (cold-start answer for unknown users); score = popularity.
int64_t recommend_popular(const ModelView& model, int64_t k, std::vector<Scored>& out);

// Top-k items by cosine similarity of factors to `item`, the item itself excluded; for
// item_knn and content models, the first k entries of the item's stored neighbour list.
// With a filter: the top-k allowed items (factor models score the allowed items; stored
// lists are filtered, and a content model's list that runs out falls back to scoring
// every allowed item; an item_knn model has no similarity outside its stored lists).
int64_t similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out,
                      const ItemFilter* filter = nullptr);
int64_t similar_users(const ModelView& model, int64_t user, int64_t k, std::vector<Scored>& out);

// The model's score of one (user, item) pair (the same number recommend ranks by; for
// item_knn, 0 when none of the user's items lists the item as a neighbour).
float score_pair(const ModelView& model, int64_t user, int64_t item);

// Stored similar-item lists of factor models (SectionTag::Similar*).
// Entries per item: `requested` (-1: the default, kDefaultSimilarItems when the catalogue
// has at most kSimilarListsMaxItems items, else 0; building costs n_items^2 x factors),
// at most n_items - 1; 0 without factors.
constexpr int64_t kDefaultSimilarItems = 100;
constexpr int64_t kSimilarListsMaxItems = 100000;
int64_t similar_list_length(int64_t requested, int64_t n_items, int factors);
// Each item's `length` most similar items, exactly what similar_items returns by scoring
// (same scores, to the bit, same order): the cosine of every pair is computed with the
// serving kernel, a block of rows (kept in cache) against a block of items per task.
// Threads and cancellation as parallel_for.
NeighbourLists similar_item_lists(const float* Y, const float* norms, int64_t n, int f, int64_t length, int threads,
                                  const CancelToken& cancel);
// Adds the lists as the three Similar* sections (nothing for an empty CSR).
void add_similar_sections(ModelBuilder& builder, NeighbourLists&& lists);

// Fills norms[i] = ||factors row i||.
std::vector<float> row_norms(const float* factors, int64_t rows, int factors_count);

// Items by decreasing popularity (ties: lower index first).
std::vector<int32_t> popularity_order(const std::vector<float>& popularity);

}  // namespace recsys

namespace recsys {

// Items of a factor model in decreasing order of the bound on their score: ||y_i||, or
// ||[y_i, b_i]|| when the model has item biases (score = [x, 1] . [y_i, b_i]), with the
// factors and biases copied in that order. Built once per model (a sort and a copy of
// the item factors) and shared by every batch of a recommend_all call.
// A column of an ItemOrder: its own vector, or (borrow) read-only memory owned by someone
// else (the shared model store's mapped file), read through the same const accessors.
template <class T>
class OrderColumn {
 public:
  size_t size() const { return ext_ ? n_ : v_.size(); }
  bool empty() const { return size() == 0; }
  const T* data() const { return ext_ ? ext_ : v_.data(); }
  const T& operator[](size_t i) const { return data()[i]; }
  // Writers (build_item_order) work on owned columns only.
  T* data() { return v_.data(); }
  T& operator[](size_t i) { return v_[i]; }
  typename std::vector<T>::iterator begin() { return v_.begin(); }
  typename std::vector<T>::iterator end() { return v_.end(); }
  void resize(size_t n) { drop_borrow(); v_.resize(n); }
  void assign(size_t n, T value) { drop_borrow(); v_.assign(n, value); }
  // Reads n values at p from now on (p must outlive this column's use).
  void borrow(const T* p, size_t n) {
    std::vector<T>().swap(v_);
    ext_ = n ? p : nullptr;
    n_ = n;
  }
  bool borrowed() const { return ext_ != nullptr; }

 private:
  void drop_borrow() { ext_ = nullptr; n_ = 0; }
  std::vector<T> v_;
  const T* ext_ = nullptr;
  size_t n_ = 0;
};

struct ItemOrder {
  OrderColumn<int32_t> item;      // position -> item index
  OrderColumn<int32_t> position;  // item index -> position
  OrderColumn<float> factors;  // the item factors, row-major, in that order (empty when not copied)
  OrderColumn<float> bias;     // the item biases in that order (empty without biases)
  OrderColumn<float> bound;    // the norms above in that order (non-increasing)
};
// copy_factors = false keeps 12 bytes per item instead of also copying the factors
// (for large catalogues under a tight cache): rows are then read in place, by index.
void build_item_order(const ModelView& model, ItemOrder& order, bool copy_factors = true);
// True for the models build_item_order takes (ALS and biased MF with factors).
bool has_item_order(const ModelView& model);

// Top-k for many users at once (recommend_all): blocked matrix products of a batch of
// users against blocks of items (Eigen GEMM), a running top-k per user, seen items
// excluded; multi-threaded over chunks of users. Memory: threads x chunk x item-block
// scores plus the results of the given users, never users x items.
// Factor models are scored exactly but not exhaustively: items go in ItemOrder order,
// and a user leaves its batch as soon as its k-th best score beats ||x|| times the
// largest item norm still to come (Cauchy-Schwarz), so no unscored item could enter its
// list. The lists equal those of scoring every item (recommend_user).
// out[j] receives user users[j]'s list, best first (resized to users.size()). `order`
// may be null (it is then built here) or come from build_item_order on the same model.
void recommend_batch(const ModelView& model, const std::vector<int64_t>& users, int64_t k, bool exclude_seen,
                     int threads, const CancelToken& cancel, std::vector<std::vector<Scored>>& out,
                     const ItemOrder* order = nullptr, const ItemFilter* filter = nullptr);

// Counters of the last recommend_batch calls on this thread's process (for benchmarks):
// items scored vs users x items.
struct BatchStats {
  int64_t scored = 0;
  int64_t exhaustive = 0;
};
BatchStats batch_stats();

}  // namespace recsys

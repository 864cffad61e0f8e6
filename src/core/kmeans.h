// Customer segments: k-means over dense feature vectors (RFM figures, spend per
// category, user factors of an ALS model, ...).
//
// Training: optional standardization (z-score per dimension over the training rows;
// a constant dimension gets scale 1), then n_init runs of greedy k-means++ seeding
// (each new centre is the best of 2 + ln k candidates drawn with probability
// proportional to the squared distance to the nearest chosen centre, as scikit-learn)
// followed by Lloyd iterations until the centres move less than tol x (mean variance of
// the dimensions) in total squared distance, the assignment stops changing, or max_iter.
// The run with the lowest inertia (sum of squared distances to the assigned centres)
// wins. An emptied cluster is re-seeded with the point farthest from its centre.
//
// Determinism: run r uses a seed derived from (seed, r), so n_init = 10 contains the
// n_init = 1 run and never ends with a higher inertia; assignments are computed per row
// (chunks of fixed size), sums per cluster in row order and chunk sums in chunk order, so
// a seed gives the same model for any thread count; and build_kmeans_model first sorts
// the rows into an order given by their contents, so also for any arrival order.
//
// k must be between 1 and the number of rows, and at most the number of distinct rows:
// with fewer distinct points than k, k-means++ cannot place k different centres and
// training fails with InvalidParameter naming both numbers (a model with duplicate,
// forever-empty clusters would be misleading).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model_format.h"
#include "options.h"
#include "parallel.h"

namespace recsys {

// The state of the recsys.kmeans aggregate: the rows' feature vectors, all of one
// dimension, with combine / serialize for parallel aggregation.
class KMeansState {
 public:
  KMeansState() = default;

  // Adds one row. Throws DataException for an empty vector, a dimension different from
  // the first row's, a NaN or infinite value, or (double) a value out of float range.
  void add(const float* x, int64_t d);
  void add(const double* x, int64_t d);

  int64_t dimension() const { return d_; }  // 0 before the first row
  int64_t rows() const { return rows_; }
  const float* row(int64_t r) const { return chunks_[r / rows_per_chunk_].data() + (r % rows_per_chunk_) * d_; }
  // The rows as one row-major rows() x dimension() array.
  std::vector<float> matrix() const;
  void clear();

  // The options of the first row that had any, as the SQL layer encoded them (opaque to
  // the core; see TrainingState::options_bytes), and k, the aggregate's own argument.
  std::string options_bytes;
  int64_t k = 0;
  uint64_t rows_skipped = 0;  // rows with a NULL vector

  void merge(const KMeansState& other);  // DataException when the dimensions differ
  uint64_t serialized_size() const;
  void serialize(uint8_t* dst) const;  // exactly serialized_size() bytes
  static std::unique_ptr<KMeansState> deserialize(const uint8_t* src, uint64_t size);

  std::unique_ptr<BackgroundJob> job;
  std::unique_ptr<ModelBuilder> result;
  bool finalized = false;

 private:
  float* next_row(int64_t d);
  int64_t d_ = 0;
  int64_t rows_ = 0;
  int64_t rows_per_chunk_ = 0;
  std::vector<std::vector<float>> chunks_;  // fixed-size chunks: no copies while growing
};

struct KMeansOptions {
  int64_t k = 0;          // required
  int64_t n_init = 4;
  int64_t max_iter = 100;
  double tol = 1e-4;
  uint64_t seed = 42;
  bool standardize = false;
  bool verbose = false;
  int threads = 0;
};
// Parses recsys.kmeans options ("k" required; "n_init", "max_iter", "tol", "seed",
// "standardize", "verbose", "threads"); throws InvalidParameter naming the bad option.
KMeansOptions parse_kmeans_options(const OptionList& options);

struct KMeansResult {
  std::vector<float> centroids;   // k x d, in the (standardized) training space
  std::vector<int64_t> sizes;     // rows per cluster
  std::vector<int32_t> labels;    // per row
  double inertia = 0;
  int64_t iterations = 0;         // Lloyd iterations of the best run
  int64_t best_run = 0;
  std::vector<double> run_inertia;
};

// k-means on a row-major n x d array (already standardized if wanted).
KMeansResult kmeans_fit(const float* x, int64_t n, int64_t d, const KMeansOptions& options, int threads,
                        const CancelToken& cancel, const std::function<void(const std::string&)>& log_line);

// Greedy k-means++: the row indices of the k initial centres for a seed. Throws
// InvalidParameter when the data has fewer than k distinct rows.
std::vector<int64_t> kmeans_plus_plus(const float* x, int64_t n, int64_t d, int64_t k, uint64_t seed, int threads,
                                      const CancelToken& cancel);

// Reorders the rows of a row-major n x d array into an order that depends only on their
// contents (a hash of each row's bits, ties by the bytes): any permutation of the same
// rows gives the same array.
void canonical_row_order(std::vector<float>& x, int64_t n, int64_t d);

// Leaves a ModelKind::KMeans model in state.result (and frees the rows): Params (with
// inertia, iterations, run inertias), empty UserKeys / ItemKeys (Int, n_users = n_items
// = 0), Centroids, ClusterSizes and, with standardize, FeatureMean / FeatureScale.
// header.factors = d, header.n_interactions = rows. The rows are first put in
// canonical_row_order, so the model does not depend on their arrival order.
void build_kmeans_model(KMeansState& state, const KMeansOptions& options, int threads, const CancelToken& cancel,
                        const std::function<void(const std::string&)>& log_line);

// ---- serving ----
int64_t kmeans_dimension(const ModelView& model);
int64_t kmeans_clusters(const ModelView& model);
// The nearest centre of x (standardized first if the model was); ties go to the lower
// cluster. Throws InvalidParameter when d differs from the model's dimension,
// DataException for a non-finite value, NotSupported for other model kinds.
int32_t kmeans_assign(const ModelView& model, const float* x, int d);
// The same, also giving the squared Euclidean distance to that centre (in the
// standardized space when the model standardizes).
int32_t kmeans_assign(const ModelView& model, const float* x, int d, float* squared_distance);
// A centre as d floats, in original units (undoing the standardization) or as stored.
void kmeans_centroid(const ModelView& model, int32_t cluster, bool original_units, float* out);

}  // namespace recsys

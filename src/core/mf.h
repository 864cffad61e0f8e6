// Biased matrix factorization for explicit ratings (Koren's "SVD" / Funk SVD, as in
// Surprise's SVD and LibMF):
//
//   r̂(u, i) = μ + b_u + b_i + p_u · q_i
//
// fitted by stochastic gradient descent on the squared error with L2 penalties applied
// at every update (as Surprise and LibMF do). Per training rating, in float32:
//   e   = r - r̂
//   b_u += η_b (e - λ_b b_u)            b_i += η_b (e - λ_b b_i)
//   p_u += η (e q_i - λ_u p_u)          q_i += η (e p_u - λ_i q_i)   (simultaneously)
// with λ_u = reg_factors / n_u^reg_exponent, n_u = the user's number of training ratings
// (λ_i likewise). reg_exponent = 0 is the classic constant per-update penalty (a user's
// total penalty grows with n_u); 0.5 is MyMediaLite's "frequency regularization" (total
// penalty ∝ sqrt(n_u)) and generalizes better on MovieLens; 1 penalizes every row once
// per epoch regardless of its count. μ is the mean of the training ratings, fixed.
//
// Parallel SGD in the style of LibMF's FPSGD, made deterministic: users and items are
// renumbered by seeded random permutations and cut into B contiguous ranges each, giving
// a B x B grid of blocks. Every epoch runs B rounds; round r processes blocks
// (t, (t + r) mod B), t = 0..B-1 — blocks sharing no user and no item — in parallel, with
// a barrier after each round. Within a block the ratings are grouped by user (users in
// permuted order, so the user rows stream through memory, as in LibMF) and each user's
// ratings are in an order shuffled once from the seed. No two threads ever touch the
// same parameter, so the model depends only on the data, the parameters, the seed and B:
// never on thread timing, nor on the thread count (B defaults to max(16, 2 * threads),
// so every thread count up to 8 gives a bit-identical model).
//
// Training runs on standardized ratings (r - μ) / σ, σ = the standard deviation of the
// training ratings (as LibMF does), so learning rates, penalties and init_scale mean
// the same on a 1-5 and on a 0-100 scale; the model is converted back to rating units.
//
// Factors are float32; rows are padded to a multiple of 8 floats internally.
// factors = 0 is allowed everywhere (a pure bias model; factor sections are then empty).
//
// Defaults were chosen by test/eval_defaults.sh over four rating sets (MovieLens-100K
// u1..u5 and ua/ub, the benchmark generator at 1M and 300k rows): reg_factors 1.2 is
// within 2 % of the best RMSE of the grid on each (mean test RMSE 0.9119 on u1..u5;
// Surprise: SVD 0.934, SVD++ 0.919, baseline 0.944; 0.9 gave 0.9046 there but was 5 %
// behind on the generated sets). On much cleaner data a lighter reg_factors fits better;
// holdout_fraction + patience pick the number of epochs automatically.
//
// Duplicates: a rating matrix holds one value per (user, item); build_rating_matrix
// AVERAGES duplicate (user, item) rows (a re-rated item counts once, with the mean
// rating), and keeps ratings of 0 (unlike the implicit interaction matrix, which sums
// and drops zero sums).
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "model_format.h"
#include "options.h"
#include "parallel.h"
#include "sparse.h"

namespace recsys {

class TrainingState;

enum class LrSchedule {
  Constant,  // η_t = η
  Decay,     // η_t = η / (1 + lr_decay * t), t = 0-based epoch
  AdaGrad,   // LibMF-style: per-row step η / sqrt(G), G = 1 + Σ mean squared gradient
};
const char* lr_schedule_name(LrSchedule s);

struct MfParams {
  int factors = 64;
  int epochs = 50;
  float learning_rate = 0.05f;       // η for the factors (η_t under the schedule)
  float bias_learning_rate = -1.0f;  // η_b; < 0 means learning_rate / 4
  LrSchedule schedule = LrSchedule::Decay;
  float lr_decay = 0.2f;
  float reg_bias = 0.02f;     // λ_b, per update
  float reg_factors = 1.2f;   // λ_f (see reg_exponent; default: test/eval_defaults.sh)
  double reg_exponent = 0.5;  // λ_u = reg_factors / n_u^reg_exponent (see above)
  float init_scale = 0.0f;    // std of the N(0, init_scale²) factor init (standardized units);
                              // 0 = 0.1 / sqrt(factors)
  uint64_t seed = 42;
  // Early stopping: a seeded random fraction of the ratings is held out; training stops
  // when the validation RMSE has not improved for `patience` epochs, and the parameters
  // of the best epoch are returned. 0 = train on everything for `epochs` epochs.
  double holdout_fraction = 0.0;
  int patience = 3;
  int blocks = 0;  // grid side B; 0 = max(16, 2 * threads)
  // Not an SQL option: fewer threads are used when a round (1/B of the ratings) has less
  // than this many ratings per thread. Tests set 1 to exercise threading on small data.
  int64_t min_ratings_per_thread = 8192;
};

struct MfEpochStats {
  int epoch = 0;          // 1-based
  double train_rmse = 0;  // RMS of the errors e seen by the updates during the epoch
                          // (an online estimate, free to compute; rating units)
  double validation_rmse = std::numeric_limits<double>::quiet_NaN();  // of clipped predictions on the
                                                                       // holdout; NaN without holdout
  double seconds = 0;     // wall time of the epoch (updates + validation)
  double learning_rate = 0;  // η_t used in the epoch (the base η for AdaGrad)
};

// A trained rating model: row-major float32 factors (no padding), biases, statistics.
struct MfModel {
  int factors = 0;
  int64_t n_users = 0;
  int64_t n_items = 0;
  std::vector<float> user_factors;  // n_users x factors
  std::vector<float> item_factors;  // n_items x factors
  std::vector<float> user_bias;     // n_users
  std::vector<float> item_bias;     // n_items
  double global_mean = 0;           // μ: mean of the training ratings
  double rating_min = 0;            // smallest / largest rating in the input (holdout included)
  double rating_max = 0;
  std::vector<MfEpochStats> history;  // every epoch run
  int best_epoch = 0;                 // epoch whose parameters were kept (= last epoch without holdout)
  double validation_rmse = std::numeric_limits<double>::quiet_NaN();  // at best_epoch
  int64_t train_ratings = 0;
  int64_t validation_ratings = 0;
  int blocks = 0;                     // B used (0 for the baseline)
};

// Trains on a users x items matrix of ratings (one value per pair; see
// build_rating_matrix). Throws InvalidParameter for bad parameters or when training
// diverges (non-finite errors: lower the learning rate), Error(Cancelled) when cancel is
// set (checked between rounds). on_epoch runs on the calling thread after every epoch.
MfModel train_biased_mf(const CsrMatrix& ratings, const MfParams& params, int threads, const CancelToken& cancel,
                        const std::function<void(const MfEpochStats&)>& on_epoch);

// Baseline "μ + b_u + b_i" (Surprise's BaselineOnly with ALS, Koren 2010 §2.1):
// alternately, for `epochs` epochs,
//   b_i = Σ_{u ∈ R(i)} (r_ui - μ - b_u) / (reg_item + |R(i)|)   for every item, then
//   b_u = Σ_{i ∈ R(u)} (r_ui - μ - b_i) / (reg_user + |R(u)|)   for every user.
// The regularization is per user / item (a count of pseudo-ratings at μ), not per
// rating. The result is an MfModel with factors = 0; it is stored as a BiasedMf model
// with 0 factors, so prediction, scoring and recommendation (by item bias) work
// unchanged.
struct BaselineParams {
  int epochs = 10;
  double reg_user = 15.0;
  double reg_item = 10.0;
};
MfModel train_baseline(const CsrMatrix& ratings, const BaselineParams& params, int threads,
                       const CancelToken& cancel);

// The model's rating for a pair, each side given by its factors and bias, or nullptr
// when the user (item) is unknown: unknown user → μ + b_i; unknown item → μ + b_u; both
// unknown → μ. The result is clipped to [rating_min, rating_max].
double predict_rating(double global_mean, double rating_min, double rating_max, int factors,
                      const float* user_factors_row, const float* user_bias,
                      const float* item_factors_row, const float* item_bias);
// The same on an MfModel; user / item < 0 means unknown. Throws InvalidParameter for an
// index past the end.
double predict_rating(const MfModel& model, int64_t user, int64_t item);
// The same on a stored BiasedMf model (for SQL predict()); user / item = -1 when the key
// is not in the model. Throws NotSupported for other model kinds.
double predict_pair(const ModelView& model, int64_t user, int64_t item);

// The users x items rating matrix of a training state: duplicate (user, item) rows are
// AVERAGED (summed in double in a sorted order, so row order never changes the result);
// zero ratings are kept. Rows and columns are the final (sorted-key) indices.
// *duplicate_rows (if given) receives the number of rows merged into an earlier one.
CsrMatrix build_rating_matrix(const TrainingState& state, const std::vector<uint32_t>& user_rank,
                              const std::vector<uint32_t>& item_rank, const CancelToken& cancel,
                              uint64_t* duplicate_rows = nullptr);

struct MfTrainingOptions {
  MfParams mf;
  int64_t similar_items = -1;  // stored similar-item lists per item (-1: similar_list_length's default)
  bool store_seen = true;
  bool verbose = false;
  int threads = 0;  // 0 = the caller's default
};
// Parses train_mf options: "factors", "epochs", "learning_rate", "bias_learning_rate",
// "lr_schedule" ("constant" | "decay" | "adagrad"), "lr_decay", "reg_bias",
// "reg_factors", "reg_exponent", "init_scale", "seed", "holdout_fraction", "patience",
// "blocks", "similar_items", "store_seen", "verbose", "threads"; throws InvalidParameter
// naming the bad option. Fills init_scale (0.1 / sqrt(factors)) and bias_learning_rate
// (learning_rate / 4) when not given.
MfTrainingOptions parse_mf_options(const OptionList& options);

struct BaselineTrainingOptions {
  BaselineParams baseline;
  bool store_seen = true;
  bool verbose = false;
  int threads = 0;
};
// Parses train_baseline options: "epochs", "reg_user", "reg_item", "store_seen",
// "verbose", "threads".
BaselineTrainingOptions parse_baseline_options(const OptionList& options);

// Runs the whole pipeline on the state and leaves a ModelKind::BiasedMf model in
// state.result. log_line receives progress lines (when verbose). Sections: Params (JSON:
// the options plus rows, rows_skipped, duplicate_rows, ratings, train_ratings,
// validation_ratings, epochs_run, best_epoch, train_rmse, validation_rmse), UserKeys,
// ItemKeys, UserFactors, ItemFactors (empty with 0 factors), UserBias, ItemBias,
// UserNorms, ItemNorms, UserItems (every rated item, if store_seen), ItemPopularity
// (number of ratings per item), PopularOrder, History ((train RMSE, seconds) per epoch
// run). Header: factors, n_interactions = distinct (user, item) ratings, global_mean,
// rating_min, rating_max, train_seconds.
void build_mf_model(TrainingState& state, const MfTrainingOptions& options, int threads, const CancelToken& cancel,
                    const std::function<void(const std::string&)>& log_line);
// The baseline as a BiasedMf model with factors = 0 (same sections, factor sections empty).
void build_baseline_model(TrainingState& state, const BaselineTrainingOptions& options, int threads,
                          const CancelToken& cancel, const std::function<void(const std::string&)>& log_line);

}  // namespace recsys

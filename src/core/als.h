// Weighted implicit-feedback ALS (Hu, Koren & Volinsky 2008) solved per row with a few
// conjugate-gradient steps warm-started from the previous factors (Takacs et al. 2011,
// as the `implicit` library does). float32, multi-threaded, deterministic for a seed:
// every row's solve is independent, and every reduction runs over fixed blocks in a
// fixed order, so the model does not depend on the thread count either.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "parallel.h"
#include "sparse.h"

namespace recsys {

struct AlsParams {
  int factors = 64;
  int iterations = 15;
  float regularization = 20.0f;  // lambda on ||x_u||^2 and ||y_i||^2 (default: test/eval_defaults.sh)
  float alpha = 1.0f;            // confidence c = 1 + alpha * |w|; p = 1 if w > 0, else 0
  int cg_steps = 3;
  uint64_t seed = 42;
  float init_scale = 0.01f;      // initial factors ~ U(0, 1) * init_scale
  bool compute_loss = true;
};

struct IterationStats {
  int iteration = 0;   // 1-based
  double loss = 0;     // normalized training loss after this iteration (NaN if not computed)
  double seconds = 0;  // wall seconds of this iteration (solves + loss)
};

// Trains factors in place. user_items is users x items with summed weights; item_users
// is its transpose. user_factors (rows x factors) and item_factors (cols x factors) are
// row-major float32 and are initialised here from the seed. on_iteration is called from
// the training thread after each iteration. Throws Error(Cancelled) when cancel is set.
void train_implicit_als(const CsrMatrix& user_items, const CsrMatrix& item_users, const AlsParams& params,
                        int threads, const CancelToken& cancel, float* user_factors, float* item_factors,
                        const std::function<void(const IterationStats&)>& on_iteration);

// The normalized implicit-ALS objective for given factors:
//   [sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + lambda (sum ||x_u||^2 + sum ||y_i||^2)] / sum_{u,i} c_ui
// (unobserved pairs have c = 1, p = 0), computed without visiting unobserved pairs.
double implicit_als_loss(const CsrMatrix& user_items, const AlsParams& params, int threads,
                         const CancelToken& cancel, const float* user_factors, const float* item_factors);

// One row's CG solve, exposed for tests: improves x (length f) for the system
//   (YtY + lambda I + sum_i (c_i - 1) y_i y_i^T) x = sum_i c_i p_i y_i
// where yty already includes lambda I, using `steps` CG iterations from the given x.
void cg_solve_row(const float* yty, const float* item_factors, int factors, const int32_t* items,
                  const float* weights, int64_t count, float alpha, int steps, float* x);

}  // namespace recsys

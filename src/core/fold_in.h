// Fold-in: a user vector for a history the model was not trained on (a user who signed
// up after training, or events newer than the model), with the item side fixed. The
// parameters are passed typed: the PostgreSQL layer reads them from the model's
// parameters section.
#pragma once
#include <cstdint>
#include <vector>

#include "model_format.h"

namespace recsys {

// A user's history as (item index, weight) pairs; duplicates allowed (merged here the way
// the model kind's training merges them).
struct History {
  std::vector<int64_t> items;
  std::vector<float> weights;  // empty = every weight 1
};

// Y^T Y (f x f, row-major, double) of a row-major n x f factor matrix.
std::vector<double> item_gram(const float* factors, int64_t rows, int f);

// Implicit ALS, the exact user step of training (src/core/als.cpp) for fixed item factors:
//   x = (Y^T Y + lambda I + sum_i alpha |w_i| y_i y_i^T)^-1 sum_{i: w_i > 0} (1 + alpha |w_i|) y_i
// (confidence c = 1 + alpha |w|, preference p = [w > 0], lambda not scaled), solved to
// convergence by a Cholesky (LDL^T) factorization in double. Duplicate items add up and
// items whose weights sum to 0 drop out, as in training. gram = item_gram of the item
// factors (null: computed here). An empty history gives x = 0.
void als_fold_in(const ModelView& model, const double* gram, double alpha, double lambda, const History& h,
                 float* x);

// Biased MF (src/core/mf.h): the user's bias b and factors p minimizing the objective the
// SGD updates descend for one user with the items fixed, in rating units:
//   sum_i (r_i - mu - b_i - b - p.q_i)^2 + n reg_bias b^2 + n lambda_u sigma ||p||^2,
//   lambda_u = reg_factors / n^reg_exponent,
// n = the number of distinct items (duplicate ratings averaged, as build_rating_matrix
// does), sigma = the training ratings' standard deviation (training runs on
// standardized ratings). The baseline model (factors = 0, `baseline`) uses its own rule:
// b = sum_i (r_i - mu - b_i) / (reg_user + n). Without weights every rating is
// rating_max. An empty history gives b = 0, p = 0.
struct MfFoldParams {
  double reg_bias = 0.02;
  double reg_factors = 0.9;
  double reg_exponent = 0.5;
  double sigma = 1.0;
  bool baseline = false;
  double reg_user = 15.0;
};
void mf_fold_in(const ModelView& model, const MfFoldParams& p, const History& h, float* bias, float* x);

// The items of a history that the fold-in uses (distinct, sorted), for exclude_given.
std::vector<int32_t> history_items(const History& h);

// Explanation of a factor model's score for an item through the implicit-ALS user step
// (as `implicit`'s explain): with A the user's system matrix above and b = sum_j
// c_j p_j y_j, score = y_item . A^-1 b = sum_j c_j p_j (y_item . A^-1 y_j); out receives
// (history item, contribution) for every distinct history item with a nonzero
// preference, unsorted. Returns the score (the folded-in user's).
double als_explain(const ModelView& model, const double* gram, double alpha, double lambda, const History& h,
                   int64_t item, std::vector<std::pair<int32_t, double>>& out);

// Item-kNN: score(item) = sum_j w_j sim(j, item) over the history entries with w_j > 0
// (the stored neighbour lists; weights empty = 1), so contribution_j = w_j sim(j, item),
// duplicates merged. Content: score = profile . v_item / ||profile|| with profile =
// sum_j w_j v_j, so contribution_j = w_j (v_j . v_item) / ||profile||. Returns the score.
double knn_explain(const ModelView& model, const History& h, int64_t item,
                   std::vector<std::pair<int32_t, double>>& out);
double content_explain(const ModelView& model, const History& h, int64_t item,
                       std::vector<std::pair<int32_t, double>>& out);

}  // namespace recsys

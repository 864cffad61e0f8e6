// EASE: Embarrassingly Shallow Autoencoders (Steck, WWW 2019), the closed-form item-item
// model that is among the strongest simple top-N baselines (Rendle et al. 2021, "Revisiting
// the Performance of iALS on Item Recommendation Benchmarks").
//
// Training. X is the user x item matrix (duplicate rows summed, as for ALS and item-kNN):
// pairs whose summed weight is not positive are absent from X but stay in the user's seen
// list (recommend never returns an item the user disliked); binary = true (the default, as
// in the paper) sets every positive weight to 1. Then
//   G = X^T X + lambda I,   P = G^-1,   B_ij = -P_ij / P_jj  (i != j),  B_jj = 0,
// the minimiser of |X - XB|^2 + lambda |B|^2 subject to diag(B) = 0. G is dense
// (n_items x n_items, double): it is built item by item in parallel from the sparse
// matrix, factorized by a blocked, multi-threaded Cholesky (G = L L^T), inverted through
// W = L^-1 (parallel over column blocks) and P = W^T W (parallel over tiles). Memory is
// 16 n_items^2 bytes, checked before anything is allocated against the machine's memory.
//
// The model. Row i of B says how much having item i adds to every other item's score. Each
// item keeps the `neighbours` entries of its row with the largest |B_ij| (negative ones
// too: they carry "people who have i rarely want j"), sorted by B_ij descending, and
// serving is item-kNN's: score(u, j) = sum over the user's items i of x_ui B_ij, so
// recommend, fold-in (recommend_for_items), filters, similar_items (row i of B),
// recommend_all, explain and the metrics need nothing new. With neighbours >= n_items - 1
// the scores are exactly X B.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "knn.h"
#include "options.h"
#include "parallel.h"
#include "training.h"

namespace recsys {

struct EaseOptions {
  double lambda = 400.0;      // L2 regularization added to the Gram diagonal
  int64_t neighbours = 500;   // entries of B kept per item (largest |B_ij|)
  bool binary = true;         // every positive weight counts as 1
  bool store_seen = true;     // UserItems + UserWeights: needed by recommend
  bool verbose = false;
  int threads = 0;            // 0 = the caller's default
};
// Parses train_ease options ("lambda", "neighbours", "binary", "store_seen", "verbose",
// "threads"); throws InvalidParameter naming the bad option.
EaseOptions parse_ease_options(const OptionList& options);

// Bytes of working memory EASE needs for n items (the dense Gram matrix and its inverse).
uint64_t ease_working_bytes(int64_t n_items);

// P = G^-1 for a symmetric positive definite n x n matrix held column-major in `g`
// (n * n doubles; only its lower triangle is read). On return `g` holds P, full and
// symmetric. Blocked Cholesky, triangular inverse and W^T W on `threads` threads; checks
// `cancel` between blocks; throws DataException when G is not positive definite.
void spd_inverse(std::vector<double>& g, int64_t n, int threads, const CancelToken& cancel);

// The dense EASE weight matrix of an item x user matrix's columns: B (n x n,
// column-major, B(i, j) = B_ij, zero diagonal) for X given as its user rows `ui`
// (positive values only are used, as given). For tests and for the trainer.
std::vector<double> ease_weights(const CsrMatrix& ui, double lambda, int threads, const CancelToken& cancel);

// Leaves a ModelKind::Ease model in state.result: Params, UserKeys, ItemKeys, the
// neighbour lists of B, ItemPopularity, PopularOrder and, if store_seen, UserItems +
// UserWeights. Throws ProgramLimit (naming the limit and train_item_knn) when the dense
// matrices do not fit in memory.
void build_ease_model(TrainingState& state, const EaseOptions& options, int threads, const CancelToken& cancel,
                      const std::function<void(const std::string&)>& log_line);

}  // namespace recsys

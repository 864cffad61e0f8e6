#include "ease.h"

#include <unistd.h>

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "serving.h"

namespace recsys {

namespace {

using MapMat = Eigen::Map<Eigen::MatrixXd>;
constexpr int64_t kBlock = 256;  // tile size of the blocked factorization

int64_t block_start(int64_t b) { return b * kBlock; }
int64_t block_size(int64_t b, int64_t n) { return std::min(kBlock, n - b * kBlock); }

// Tiles (i, j) with first <= j <= i < n_blocks of the lower triangle.
std::vector<std::pair<int32_t, int32_t>> lower_tiles(int64_t first, int64_t n_blocks) {
  std::vector<std::pair<int32_t, int32_t>> tiles;
  for (int64_t i = first; i < n_blocks; ++i)
    for (int64_t j = first; j <= i; ++j) tiles.emplace_back(static_cast<int32_t>(i), static_cast<int32_t>(j));
  return tiles;
}

// In place: the lower triangle of A becomes L with A = L L^T (right-looking, by blocks:
// the diagonal block, then the panel below it and the trailing update in parallel).
void blocked_cholesky(MapMat& a, int64_t n, int threads, const CancelToken& cancel) {
  const int64_t nb = (n + kBlock - 1) / kBlock;
  for (int64_t k = 0; k < nb; ++k) {
    cancel.check();
    const int64_t k0 = block_start(k), kn = block_size(k, n);
    Eigen::Ref<Eigen::MatrixXd> diag = a.block(k0, k0, kn, kn);
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(diag);
    if (llt.info() != Eigen::Success)
      fail(ErrorKind::DataException, "train_ease: the regularized Gram matrix is not positive definite (raise \"lambda\")");
    if (k + 1 == nb) break;
    const auto l11 = a.block(k0, k0, kn, kn).triangularView<Eigen::Lower>();
    parallel_for(nb - k - 1, threads, cancel, [&](int64_t t, int) {
      const int64_t r0 = block_start(k + 1 + t), rn = block_size(k + 1 + t, n);
      auto panel = a.block(r0, k0, rn, kn);
      l11.transpose().solveInPlace<Eigen::OnTheRight>(panel);  // panel := panel L11^-T
    });
    const std::vector<std::pair<int32_t, int32_t>> tiles = lower_tiles(k + 1, nb);
    parallel_for(static_cast<int64_t>(tiles.size()), threads, cancel, [&](int64_t t, int) {
      const int64_t i0 = block_start(tiles[t].first), in = block_size(tiles[t].first, n);
      const int64_t j0 = block_start(tiles[t].second), jn = block_size(tiles[t].second, n);
      a.block(i0, j0, in, jn).noalias() -= a.block(i0, k0, in, kn) * a.block(j0, k0, jn, kn).transpose();
    });
  }
}

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return UINT64_MAX;  // unknown: no limit of our own
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

std::string gigabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

// G = X^T X + lambda I (lower triangle, column-major) for X's positive entries: column i
// of G sums x_ui x_u over i's users, item by item in parallel (each column is written by
// one thread only).
void gram_lower(const CsrMatrix& ui, const CsrMatrix& iu, double lambda, std::vector<double>& g, int threads,
                const CancelToken& cancel) {
  const int64_t n = ui.cols;
  parallel_for(n, threads, cancel, [&](int64_t i, int) {
    double* col = g.data() + i * n;
    for (int64_t p = iu.indptr[i]; p < iu.indptr[i + 1]; ++p) {
      const int64_t u = iu.indices[p];
      const double xi = iu.values[p];
      const int32_t* b = ui.indices.data() + ui.indptr[u];
      const int32_t* e = ui.indices.data() + ui.indptr[u + 1];
      for (const int32_t* q = std::lower_bound(b, e, static_cast<int32_t>(i)); q < e; ++q)
        col[*q] += xi * ui.values[static_cast<size_t>(q - ui.indices.data())];
    }
    col[i] += lambda;
  });
}

// The positive part of X (binarized if asked), as ui rows and iu columns.
CsrMatrix positive_part(const CsrMatrix& ui, bool binary) {
  ItemKnnOptions o;
  o.similarity = KnnSimilarity::Cosine;  // the weights as they are (not item-kNN's default bm25)
  o.binary = binary;
  return knn_weighted_matrix(ui, o);
}

std::vector<double> ease_inverse(const CsrMatrix& x, double lambda, int threads, const CancelToken& cancel) {
  const int64_t n = x.cols;
  std::vector<double> g(static_cast<size_t>(n) * static_cast<size_t>(n), 0.0);
  const CsrMatrix xt = transpose(x);
  gram_lower(x, xt, lambda, g, threads, cancel);
  spd_inverse(g, n, threads, cancel);
  return g;
}

}  // namespace

EaseOptions parse_ease_options(const OptionList& options) {
  OptionReader r(options, "train_ease");
  EaseOptions o;
  o.lambda = r.get_double("lambda", o.lambda, 1e-6, 1e15);
  o.neighbours = r.get_int("neighbours", o.neighbours, 1, 1000000);
  o.binary = r.get_bool("binary", o.binary);
  o.store_seen = r.get_bool("store_seen", o.store_seen);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();
  return o;
}

uint64_t ease_working_bytes(int64_t n_items) {
  const uint64_t n = static_cast<uint64_t>(std::max<int64_t>(n_items, 0));
  return 16 * n * n;
}

void spd_inverse(std::vector<double>& g, int64_t n, int threads, const CancelToken& cancel) {
  if (n == 0) return;
  MapMat a(g.data(), n, n);
  blocked_cholesky(a, n, threads, cancel);
  const int64_t nb = (n + kBlock - 1) / kBlock;

  // W = L^-1, lower triangular: column block j solves L[j0:, j0:] W[j0:, block] = I.
  std::vector<double> wbuf(static_cast<size_t>(n) * static_cast<size_t>(n), 0.0);
  MapMat w(wbuf.data(), n, n);
  parallel_for(nb, threads, cancel, [&](int64_t j, int) {
    const int64_t j0 = block_start(j), jn = block_size(j, n), m = n - j0;
    auto y = w.block(j0, j0, m, jn);
    y.topRows(jn).setIdentity();
    a.block(j0, j0, m, m).triangularView<Eigen::Lower>().solveInPlace(y);
  });
  cancel.check();

  // P = W^T W into a (L is no longer needed), both triangles: tile (i, j), i >= j, sums
  // over the rows k >= i0 where both W columns can be non-zero.
  const std::vector<std::pair<int32_t, int32_t>> tiles = lower_tiles(0, nb);
  parallel_for(static_cast<int64_t>(tiles.size()), threads, cancel, [&](int64_t t, int) {
    const int64_t i0 = block_start(tiles[t].first), in = block_size(tiles[t].first, n);
    const int64_t j0 = block_start(tiles[t].second), jn = block_size(tiles[t].second, n);
    auto tile = a.block(i0, j0, in, jn);
    tile.noalias() = w.block(i0, i0, n - i0, in).transpose() * w.block(i0, j0, n - i0, jn);
    if (i0 != j0) a.block(j0, i0, jn, in) = tile.transpose();
  });
}

std::vector<double> ease_weights(const CsrMatrix& ui, double lambda, int threads, const CancelToken& cancel) {
  const int64_t n = ui.cols;
  std::vector<double> b = ease_inverse(positive_part(ui, false), lambda, threads, cancel);
  std::vector<double> diag(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) diag[j] = b[j * n + j];
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i) b[j * n + i] = i == j ? 0.0 : -b[j * n + i] / diag[j];
  return b;
}

void build_ease_model(TrainingState& state, const EaseOptions& options, int threads, const CancelToken& cancel,
                      const std::function<void(const std::string&)>& log_line) {
  auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  threads = resolve_threads(threads);
  const uint64_t rows_in = state.log.size();

  // The limit first: the item count is known before any matrix is built.
  const int64_t ni = static_cast<int64_t>(state.items.size());
  const uint64_t need = ease_working_bytes(ni), have = physical_memory_bytes();
  if (ni > 200000 || need > have / 2)
    fail(ErrorKind::ProgramLimit,
         "train_ease: " + std::to_string(ni) + " items need " + gigabytes(need) +
             " of working memory (two dense items x items matrices), more than half of this machine's " +
             gigabytes(have) +
             "; use train_item_knn for a catalogue this large, or train EASE on the most popular items (for example "
             "WHERE item IN (SELECT item FROM ... GROUP BY item ORDER BY count(*) DESC LIMIT 20000))");

  std::vector<uint32_t> user_order = state.users.sorted_order();
  std::vector<uint32_t> item_order = state.items.sorted_order();
  CsrMatrix ui = build_interaction_matrix(state, KeyInterner::invert(user_order), KeyInterner::invert(item_order),
                                          cancel, "train_ease");
  state.log.clear();
  if (ui.nnz() == 0) return;  // every weight summed to 0: no usable row, NULL
  if (ni > INT32_MAX || ui.rows > INT32_MAX) fail(ErrorKind::ProgramLimit, "train_ease: too many users or items");
  uint64_t negatives = 0;
  for (float v : ui.values) negatives += v < 0;

  const CsrMatrix x = positive_part(ui, options.binary);
  if (x.nnz() == 0) return;  // no positive pair: nothing to learn from, NULL
  std::vector<float> popularity(static_cast<size_t>(ni), 0.0f);
  for (int32_t i : x.indices) popularity[i] += 1.0f;
  if (options.verbose) {
    const double gflop = static_cast<double>(ni) * ni * ni / 1e9;  // n^3/3 each: Cholesky, L^-1, W^T W
    log_line("train_ease: " + std::to_string(rows_in) + " rows, " + std::to_string(ui.rows) + " users, " +
             std::to_string(ni) + " items, " + std::to_string(x.nnz()) + " positive pairs; " + gigabytes(need) +
             " of dense matrices, about " + std::to_string(static_cast<int64_t>(gflop)) + " GFLOP on " +
             std::to_string(threads) + " threads");
  }
  std::vector<double> p = ease_inverse(x, options.lambda, threads, cancel);
  if (options.verbose) log_line("train_ease: inverse done after " + std::to_string(seconds()) + " s");

  // Row i of B: B_ij = -P_ji / P_jj (P symmetric: column i of P), the `neighbours` largest
  // |B_ij| kept, sorted by B_ij descending then j ascending.
  std::vector<double> diag(static_cast<size_t>(ni));
  for (int64_t j = 0; j < ni; ++j) diag[j] = p[j * ni + j];
  const int64_t keep = std::min<int64_t>(options.neighbours, ni - 1);
  std::vector<std::vector<Scored>> rows(static_cast<size_t>(ni));
  std::vector<std::vector<Scored>> scratch(static_cast<size_t>(threads));
  parallel_for(ni, threads, cancel, [&](int64_t i, int t) {
    std::vector<Scored>& cand = scratch[t];
    cand.clear();
    const double* col = p.data() + i * ni;
    for (int64_t j = 0; j < ni; ++j) {
      if (j == i) continue;
      const float v = static_cast<float>(-col[j] / diag[j]);
      if (v != 0.0f) cand.push_back(Scored{v, static_cast<int32_t>(j)});
    }
    auto by_magnitude = [](const Scored& a, const Scored& b) {
      const float ma = std::fabs(a.score), mb = std::fabs(b.score);
      return ma > mb || (ma == mb && a.index < b.index);
    };
    if (static_cast<int64_t>(cand.size()) > keep) {
      std::nth_element(cand.begin(), cand.begin() + keep, cand.end(), by_magnitude);
      cand.resize(static_cast<size_t>(keep));
    }
    std::sort(cand.begin(), cand.end(),
              [](const Scored& a, const Scored& b) { return a.score > b.score || (a.score == b.score && a.index < b.index); });
    for (const Scored& s : cand)
      if (!std::isfinite(s.score))
        fail(ErrorKind::DataException, "train_ease: the weights are too large for the model (lower them or use binary)");
    rows[i] = cand;
  });
  std::vector<double>().swap(p);
  NeighbourLists lists;
  lists.indptr.assign(static_cast<size_t>(ni) + 1, 0);
  for (int64_t i = 0; i < ni; ++i) lists.indptr[i + 1] = lists.indptr[i] + static_cast<int64_t>(rows[i].size());
  lists.indices.reserve(static_cast<size_t>(lists.indptr[ni]));
  lists.scores.reserve(static_cast<size_t>(lists.indptr[ni]));
  for (auto& r : rows) {
    for (const Scored& s : r) {
      lists.indices.push_back(s.index);
      lists.scores.push_back(s.score);
    }
    std::vector<Scored>().swap(r);
  }
  const int64_t pairs = lists.nnz();

  std::string params = "\"lambda\": " + json_number(options.lambda) +
                       ", \"neighbours\": " + std::to_string(options.neighbours) +
                       ", \"binary\": " + (options.binary ? "true" : "false") +
                       ", \"store_seen\": " + (options.store_seen ? "true" : "false") +
                       ", \"rows\": " + std::to_string(rows_in) +
                       ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
                       ", \"negative_pairs\": " + std::to_string(negatives) +
                       ", \"neighbour_pairs\": " + std::to_string(pairs);
  std::unique_ptr<ModelBuilder> builder =
      neighbour_model(ModelKind::Ease, state, user_order, item_order, ui, popularity, std::move(lists), options.binary,
                      options.store_seen, std::move(params), "train_ease");
  builder->header.train_seconds = seconds();
  if (options.verbose) log_line("train_ease: done in " + std::to_string(builder->header.train_seconds) + " s");
  state.result = std::move(builder);
}

}  // namespace recsys

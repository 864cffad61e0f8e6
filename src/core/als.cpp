#include "als.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "simd8.h"

namespace recsys {

namespace {

// Rows per Gram block. Reductions run over fixed blocks (or single rows) and add the
// partial results in order, so nothing depends on the number of threads.
constexpr int64_t kGramBlockRows = 4096;
// Most rows one solve task takes (fewer when the rows are heavy).
constexpr int64_t kMaxChunkRows = 256;
// How many entries ahead the row loops prefetch the other side's factor rows.
constexpr int64_t kPrefetchAhead = 8;
// CG stops once r.r falls below this, as implicit does.
constexpr float kCgEpsilon = 1e-20f;
// Largest f / 8 with a fixed-size kernel instance (f = 8, 16, ..., 128).
constexpr int kMaxFixedVectors = 16;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The shared 8-float SIMD layer (simd8.h).
using namespace simd;  // NOLINT(google-build-using-namespace): the 8-float helpers

// The kernels take V = f / 8 as a compile-time constant (V > 0), which unrolls them and
// keeps accumulators in registers, or V = 0 for any f (8-float blocks, scalar tail).

// a.b in float.
template <int V>
inline float dot(const float* __restrict a, const float* __restrict b, int f) {
  const int nv = V > 0 ? V : f / 8;
  float s = simd::dot8_blocks<V>(a, b, nv);
  if (V == 0)
    for (int j = 8 * nv; j < f; ++j) s += a[j] * b[j];
  return s;
}

// a.b in double (products of floats are exact in double).
template <int V>
inline double dot_double(const float* __restrict a, const float* __restrict b, int f) {
  const int n4 = V > 0 ? 2 * V : f / 4;  // blocks of 4
  double s;
#ifdef __AVX__
  auto widen = [](const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); };
  auto fmadd = [](__m256d x, __m256d y, __m256d z) {
#ifdef __FMA__
    return _mm256_fmadd_pd(x, y, z);
#else
    return _mm256_add_pd(_mm256_mul_pd(x, y), z);
#endif
  };
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int q = 0;
  for (; q + 1 < n4; q += 2) {
    acc0 = fmadd(widen(a + 4 * q), widen(b + 4 * q), acc0);
    acc1 = fmadd(widen(a + 4 * q + 4), widen(b + 4 * q + 4), acc1);
  }
  if (q < n4) acc0 = fmadd(widen(a + 4 * q), widen(b + 4 * q), acc0);
  const __m256d acc = _mm256_add_pd(acc0, acc1);
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
  s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
#else
  double acc[4] = {0, 0, 0, 0};
  for (int q = 0; q < n4; ++q)
    for (int l = 0; l < 4; ++l) acc[l] += static_cast<double>(a[4 * q + l]) * b[4 * q + l];
  s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
#endif
  if (V == 0)
    for (int j = 4 * n4; j < f; ++j) s += static_cast<double>(a[j]) * b[j];
  return s;
}

// out = A v for the symmetric f x f row-major matrix A, computed as the sum of A's rows
// scaled by v (rows in order 0..f-1), in column tiles of up to 64 held in registers.
template <int V>
inline void symv(const float* __restrict a, const float* __restrict v, float* __restrict out, int f) {
  const int nv = V > 0 ? V : f / 8;
  constexpr int kTile = 8;  // vectors per tile
  for (int t0 = 0; t0 < nv; t0 += kTile) {
    const int width = std::min(kTile, nv - t0);
    v8f acc[kTile];
    for (int q = 0; q < width; ++q) acc[q] = v8f{};
    for (int k = 0; k < f; ++k) {
      const v8f vk = splat8(v[k]);
      const float* row = a + static_cast<int64_t>(k) * f + 8 * t0;
      for (int q = 0; q < width; ++q) acc[q] = fmadd8(vk, load8(row + 8 * q), acc[q]);
    }
    for (int q = 0; q < width; ++q) store8(out + 8 * (t0 + q), acc[q]);
  }
  if (V == 0 && 8 * nv < f) {
    for (int j = 8 * nv; j < f; ++j) out[j] = 0.0f;
    for (int k = 0; k < f; ++k) {
      const float* row = a + static_cast<int64_t>(k) * f;
      for (int j = 8 * nv; j < f; ++j) out[j] += v[k] * row[j];
    }
  }
}

// Hints the cache to fetch one factor row of f floats (all lines it may touch).
inline void prefetch_row(const float* row, int f) {
  for (int j = 0; j < f; j += 16) __builtin_prefetch(row + j, 0, 3);
  __builtin_prefetch(row + f - 1, 0, 3);
}

// out += sum_k coef(w_k, y_k.v) * y_k over one row's entries, y_k the other side's
// factor row of entry k. With V > 0 the output stays in registers for the whole row.
template <int V, class Coef>
inline void accumulate_items(const float* __restrict y_all, int f, const int32_t* __restrict items,
                             const float* __restrict weights, int64_t count, const float* __restrict v,
                             float* __restrict out, Coef coef) {
  auto row_of = [&](int64_t k) { return y_all + static_cast<int64_t>(items[k]) * f; };
  if constexpr (V > 0) {
    v8f acc[V];
    for (int q = 0; q < V; ++q) acc[q] = load8(out + 8 * q);
    for (int64_t k = 0; k < count; ++k) {
      if (k + kPrefetchAhead < count) prefetch_row(row_of(k + kPrefetchAhead), f);
      const float* y = row_of(k);
      const v8f s = splat8(coef(weights[k], dot<V>(y, v, f)));
      for (int q = 0; q < V; ++q) acc[q] = fmadd8(s, load8(y + 8 * q), acc[q]);
    }
    for (int q = 0; q < V; ++q) store8(out + 8 * q, acc[q]);
  } else {
    const int nv = f / 8;
    for (int64_t k = 0; k < count; ++k) {
      if (k + kPrefetchAhead < count) prefetch_row(row_of(k + kPrefetchAhead), f);
      const float* y = row_of(k);
      const float s = coef(weights[k], dot<0>(y, v, f));
      const v8f s8 = splat8(s);
      for (int q = 0; q < nv; ++q) store8(out + 8 * q, fmadd8(s8, load8(y + 8 * q), load8(out + 8 * q)));
      for (int j = 8 * nv; j < f; ++j) out[j] += s * y[j];
    }
  }
}

// One row's CG solve (see cg_solve_row in als.h) with scratch of 3 * f floats.
template <int V>
void cg_row(const float* __restrict yty, const float* __restrict y_all, int f, const int32_t* __restrict items,
            const float* __restrict weights, int64_t count, float alpha, int steps, float* __restrict x,
            float* __restrict scratch) {
  if (V > 0) f = 8 * V;
  if (count == 0) {
    // No observations: b = 0, so the exact solution is x = 0.
    for (int j = 0; j < f; ++j) x[j] = 0.0f;
    return;
  }
  float* __restrict r = scratch;
  float* __restrict p = scratch + f;
  float* __restrict ap = scratch + 2 * f;

  // r = b - A x = -(YtY + lambda I) x + sum_i (c_i p_i - (c_i - 1) y_i.x) y_i.
  symv<V>(yty, x, r, f);
  for (int j = 0; j < f; ++j) r[j] = -r[j];
  accumulate_items<V>(y_all, f, items, weights, count, x, r, [alpha](float w, float s) {
    const float c1 = alpha * std::fabs(w);  // c - 1
    return (w > 0 ? 1.0f + c1 : 0.0f) - c1 * s;
  });
  float rs = dot<V>(r, r, f);
  if (rs < kCgEpsilon) return;
  for (int j = 0; j < f; ++j) p[j] = r[j];

  for (int step = 0; step < steps; ++step) {
    // ap = A p = (YtY + lambda I) p + sum_i (c_i - 1) (y_i.p) y_i.
    symv<V>(yty, p, ap, f);
    accumulate_items<V>(y_all, f, items, weights, count, p, ap,
                        [alpha](float w, float s) { return alpha * std::fabs(w) * s; });
    const float pap = dot<V>(p, ap, f);
    if (!(pap > 0.0f)) break;  // only when A is singular along p (lambda = 0)
    const float step_len = rs / pap;
    for (int j = 0; j < f; ++j) {
      x[j] += step_len * p[j];
      r[j] -= step_len * ap[j];
    }
    const float rs_new = dot<V>(r, r, f);
    if (rs_new < kCgEpsilon) break;
    const float beta = rs_new / rs;
    for (int j = 0; j < f; ++j) p[j] = r[j] + beta * p[j];
    rs = rs_new;
  }
}

// Loss terms of one item's observed entries (x is the item's factor row, y_all the user
// factors): *loss = sum c (p - s)^2 - s^2 and *conf = sum (c - 1), with s = x_u.y_i.
template <int V>
void row_loss_terms(const float* __restrict x, const float* __restrict y_all, int f, const int32_t* __restrict idx,
                    const float* __restrict weights, int64_t count, double alpha, double* loss, double* conf) {
  double l = 0, c = 0;
  for (int64_t k = 0; k < count; ++k) {
    if (k + kPrefetchAhead < count) prefetch_row(y_all + static_cast<int64_t>(idx[k + kPrefetchAhead]) * f, f);
    const double s = dot_double<V>(y_all + static_cast<int64_t>(idx[k]) * f, x, f);
    const double w = weights[k];
    const double c1 = alpha * std::fabs(static_cast<double>(w));
    const double p = w > 0 ? 1.0 : 0.0;
    l += (1.0 + c1) * (p - s) * (p - s) - s * s;
    c += c1;
  }
  *loss = l;
  *conf = c;
}

// The per-row kernels for one factor count.
struct RowKernels {
  decltype(&cg_row<0>) solve;
  decltype(&row_loss_terms<0>) loss;
};

// Fixed-size kernels when f is a multiple of 8 up to 8 * kMaxFixedVectors, else generic.
template <int... Vs>
RowKernels pick_kernels(int v, std::integer_sequence<int, Vs...>) {
  RowKernels k{&cg_row<0>, &row_loss_terms<0>};
  ((v == Vs + 1 ? (k = RowKernels{&cg_row<Vs + 1>, &row_loss_terms<Vs + 1>}, 0) : 0), ...);
  return k;
}

// The kernels for f factors.
RowKernels kernels_for(int f) {
  return pick_kernels(f % 8 == 0 ? f / 8 : 0, std::make_integer_sequence<int, kMaxFixedVectors>{});
}

// Scratch floats per thread for the row solver, padded so that no two threads' blocks
// share a cache line.
int64_t scratch_stride(int f) { return static_cast<int64_t>(align_up(static_cast<uint64_t>(3 * f), 16)) + 16; }

// Splits rows into solve tasks of roughly equal cost (at most kMaxChunkRows rows each),
// so a few very active users or popular items do not leave threads idle. Returns the
// task boundaries. Task layout never affects results: every row is solved on its own.
std::vector<int64_t> plan_chunks(const CsrMatrix& m, int f, int threads) {
  const auto row_cost = [&](int64_t r) {
    return static_cast<double>(f) + 2.0 * static_cast<double>(m.indptr[r + 1] - m.indptr[r]);
  };
  double total = 0;
  for (int64_t r = 0; r < m.rows; ++r) total += row_cost(r);
  const double target = std::max(total / (32.0 * threads), 1.0);
  std::vector<int64_t> bounds{0};
  double acc = 0;
  for (int64_t r = 0; r < m.rows; ++r) {
    acc += row_cost(r);
    if (acc >= target || r + 1 - bounds.back() >= kMaxChunkRows) {
      bounds.push_back(r + 1);
      acc = 0;
    }
  }
  if (bounds.back() != m.rows) bounds.push_back(m.rows);
  return bounds;
}

// Solves every row of `m` for `x` (m.rows x f) against the fixed other side `y`
// (m.cols x f); yty = Y^T Y + lambda I as float f x f. With row_loss/row_conf set, it
// also stores each solved row's loss terms while the row's entries are in cache.
void solve_side(const CsrMatrix& m, const std::vector<int64_t>& chunks, const float* yty, const float* y, int f,
                float alpha, int steps, int threads, const CancelToken& cancel, float* x, double* row_loss,
                double* row_conf) {
  const RowKernels kernels = kernels_for(f);
  const int64_t stride = scratch_stride(f);
  std::vector<float> scratch(static_cast<size_t>(stride * threads));  // one block per thread
  const int64_t n_tasks = static_cast<int64_t>(chunks.size()) - 1;
  parallel_for(n_tasks, threads, cancel, [&](int64_t task, int thread) {
    float* buf = scratch.data() + stride * thread;
    for (int64_t row = chunks[task]; row < chunks[task + 1]; ++row) {
      const int64_t begin = m.indptr[row], count = m.indptr[row + 1] - begin;
      const int32_t* idx = m.indices.data() + begin;
      const float* w = m.values.data() + begin;
      kernels.solve(yty, y, f, idx, w, count, alpha, steps, x + row * f, buf);
      if (row_loss) kernels.loss(x + row * f, y, f, idx, w, count, alpha, row_loss + row, row_conf + row);
    }
  });
}

// M^T M (f x f, double) of the row-major rows x f matrix M: float GEMMs over fixed
// kGramBlockRows-row blocks, added in block order; exactly symmetric.
Eigen::MatrixXd gram(const float* m, int64_t rows, int f, int threads, const CancelToken& cancel) {
  Eigen::MatrixXd total = Eigen::MatrixXd::Zero(f, f);
  const int64_t n_blocks = (rows + kGramBlockRows - 1) / kGramBlockRows;
  // Blocks are computed in parallel a group at a time and summed in order; the group
  // size only bounds memory and does not change the result.
  const int64_t group = std::max<int64_t>(1, 2 * threads);
  std::vector<Eigen::MatrixXf> partial(static_cast<size_t>(std::min(group, std::max<int64_t>(n_blocks, 1))));
  for (int64_t g0 = 0; g0 < n_blocks; g0 += group) {
    const int64_t count = std::min(group, n_blocks - g0);
    parallel_for(count, threads, cancel, [&](int64_t t, int) {
      const int64_t b0 = (g0 + t) * kGramBlockRows;
      const int64_t nb = std::min(kGramBlockRows, rows - b0);
      Eigen::Map<const RowMajorF> block(m + b0 * f, nb, f);
      partial[static_cast<size_t>(t)].noalias() = block.transpose() * block;
    });
    for (int64_t t = 0; t < count; ++t) total += partial[static_cast<size_t>(t)].cast<double>();
  }
  return (total + total.transpose()) * 0.5;
}

// G + lambda I as float: the system matrix shared by every row of a half-sweep.
std::vector<float> regularized(const Eigen::MatrixXd& g, double lambda) {
  const int f = static_cast<int>(g.rows());
  std::vector<float> out(static_cast<size_t>(f) * f);
  for (int a = 0; a < f; ++a)
    for (int b = 0; b < f; ++b)
      out[static_cast<size_t>(a) * f + b] = static_cast<float>(g(a, b) + (a == b ? lambda : 0.0));
  return out;
}

// The normalized objective from gx = X^T X, gy = Y^T Y and the per-item loss terms:
// the sum of s^2 over all pairs is trace(gx gy), the observed pairs add their terms,
// and lambda (||X||^2 + ||Y||^2) = lambda (tr gx + tr gy). Items are added in order.
double combine_loss(int64_t n_users, int64_t n_items, double lambda, const Eigen::MatrixXd& gx,
                    const Eigen::MatrixXd& gy, const std::vector<double>& item_loss,
                    const std::vector<double>& item_conf) {
  double observed = 0, extra_conf = 0;
  for (size_t i = 0; i < item_loss.size(); ++i) {
    observed += item_loss[i];
    extra_conf += item_conf[i];
  }
  const double all_pairs = gx.cwiseProduct(gy).sum();
  const double norms = gx.trace() + gy.trace();
  const double total_conf = static_cast<double>(n_users) * static_cast<double>(n_items) + extra_conf;
  if (!(total_conf > 0)) return 0.0;
  return (all_pairs + observed + lambda * norms) / total_conf;
}

// Throws InvalidParameter (or Internal for malformed matrices) unless params and the
// matrices fit together.
void validate(const CsrMatrix& ui, const CsrMatrix* iu, const AlsParams& params) {
  if (params.factors < 1 || params.factors > 4096)
    fail(ErrorKind::InvalidParameter, "factors must be between 1 and 4096, got " + std::to_string(params.factors));
  if (params.iterations < 0) fail(ErrorKind::InvalidParameter, "iterations must not be negative");
  if (params.cg_steps < 1) fail(ErrorKind::InvalidParameter, "cg_steps must be at least 1");
  if (!(params.regularization >= 0) || !std::isfinite(params.regularization))
    fail(ErrorKind::InvalidParameter, "regularization must be a finite number >= 0");
  if (!(params.alpha >= 0) || !std::isfinite(params.alpha))
    fail(ErrorKind::InvalidParameter, "alpha must be a finite number >= 0");
  if (!std::isfinite(params.init_scale)) fail(ErrorKind::InvalidParameter, "init_scale must be finite");
  auto check_shape = [](const CsrMatrix& m, const char* name) {
    if (m.rows < 0 || m.cols < 0 || m.cols > int64_t{INT32_MAX} + 1 ||
        static_cast<int64_t>(m.indptr.size()) != m.rows + 1 || m.values.size() != m.indices.size() ||
        m.indptr.front() != 0 || m.indptr.back() != m.nnz())
      fail(ErrorKind::Internal, std::string("malformed CSR matrix ") + name);
  };
  check_shape(ui, "user_items");
  if (iu) {
    check_shape(*iu, "item_users");
    if (iu->rows != ui.cols || iu->cols != ui.rows || iu->nnz() != ui.nnz())
      fail(ErrorKind::Internal, "item_users is not the transpose of user_items");
  }
}

// The SplitMix64 output function: a bijective 64-bit mixer.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Fills a rows x f matrix with U[0,1) * scale. Each row has its own SplitMix64 stream
// keyed by (seed, matrix id, row), so every value is fixed by the seed alone.
void init_factors(float* m, int64_t rows, int f, uint64_t seed, uint64_t matrix_id, float scale, int threads,
                  const CancelToken& cancel) {
  constexpr int64_t kRowsPerTask = 1024;
  constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ULL;
  const uint64_t key = mix64(mix64(seed) ^ mix64(matrix_id + 1));
  parallel_for((rows + kRowsPerTask - 1) / kRowsPerTask, threads, cancel, [&](int64_t task, int) {
    const int64_t end = std::min(rows, (task + 1) * kRowsPerTask);
    for (int64_t r = task * kRowsPerTask; r < end; ++r) {
      uint64_t state = mix64(key ^ mix64(static_cast<uint64_t>(r) + 1));
      float* row = m + r * f;
      for (int j = 0; j < f; ++j) {
        state += kGamma;
        row[j] = static_cast<float>(mix64(state) >> 40) * (1.0f / 16777216.0f) * scale;  // 24 random bits
      }
    }
  });
}

}  // namespace

void cg_solve_row(const float* yty, const float* item_factors, int factors, const int32_t* items,
                  const float* weights, int64_t count, float alpha, int steps, float* x) {
  if (factors < 1) fail(ErrorKind::InvalidParameter, "factors must be positive");
  std::vector<float> scratch(static_cast<size_t>(scratch_stride(factors)));
  kernels_for(factors).solve(yty, item_factors, factors, items, weights, count, alpha, steps, x, scratch.data());
}

double implicit_als_loss(const CsrMatrix& user_items, const AlsParams& params, int threads,
                         const CancelToken& cancel, const float* user_factors, const float* item_factors) {
  validate(user_items, nullptr, params);
  threads = resolve_threads(threads);
  const int f = params.factors;
  // Item by item, exactly as training computes it, so both give the very same number.
  const CsrMatrix item_users = transpose(user_items);
  const RowKernels kernels = kernels_for(f);
  std::vector<double> item_loss(static_cast<size_t>(item_users.rows)), item_conf(item_loss.size());
  constexpr int64_t kItemsPerTask = 64;
  parallel_for((item_users.rows + kItemsPerTask - 1) / kItemsPerTask, threads, cancel, [&](int64_t task, int) {
    const int64_t end = std::min(item_users.rows, (task + 1) * kItemsPerTask);
    for (int64_t i = task * kItemsPerTask; i < end; ++i) {
      const int64_t begin = item_users.indptr[i];
      kernels.loss(item_factors + i * f, user_factors, f, item_users.indices.data() + begin,
                   item_users.values.data() + begin, item_users.indptr[i + 1] - begin, params.alpha,
                   &item_loss[static_cast<size_t>(i)], &item_conf[static_cast<size_t>(i)]);
    }
  });
  const Eigen::MatrixXd gx = gram(user_factors, user_items.rows, f, threads, cancel);
  const Eigen::MatrixXd gy = gram(item_factors, user_items.cols, f, threads, cancel);
  return combine_loss(user_items.rows, user_items.cols, params.regularization, gx, gy, item_loss, item_conf);
}

void train_implicit_als(const CsrMatrix& user_items, const CsrMatrix& item_users, const AlsParams& params,
                        int threads, const CancelToken& cancel, float* user_factors, float* item_factors,
                        const std::function<void(const IterationStats&)>& on_iteration) {
  validate(user_items, &item_users, params);
  threads = resolve_threads(threads);
  const int f = params.factors;
  const double lambda = params.regularization;
  cancel.check();

  init_factors(user_factors, user_items.rows, f, params.seed, 0, params.init_scale, threads, cancel);
  init_factors(item_factors, user_items.cols, f, params.seed, 1, params.init_scale, threads, cancel);
  const std::vector<int64_t> user_chunks = plan_chunks(user_items, f, threads);
  const std::vector<int64_t> item_chunks = plan_chunks(item_users, f, threads);

  // Per-item loss terms, filled during the item half-sweep when the loss is wanted.
  std::vector<double> item_loss(params.compute_loss ? static_cast<size_t>(user_items.cols) : 0);
  std::vector<double> item_conf(item_loss.size());
  Eigen::MatrixXd gy = gram(item_factors, user_items.cols, f, threads, cancel);
  for (int iter = 1; iter <= params.iterations; ++iter) {
    cancel.check();
    const auto start = std::chrono::steady_clock::now();

    // Users against fixed items, then items against the new users.
    std::vector<float> a = regularized(gy, lambda);
    solve_side(user_items, user_chunks, a.data(), item_factors, f, params.alpha, params.cg_steps, threads, cancel,
               user_factors, nullptr, nullptr);
    cancel.check();
    const Eigen::MatrixXd gx = gram(user_factors, user_items.rows, f, threads, cancel);
    a = regularized(gx, lambda);
    solve_side(item_users, item_chunks, a.data(), user_factors, f, params.alpha, params.cg_steps, threads, cancel,
               item_factors, params.compute_loss ? item_loss.data() : nullptr, item_conf.data());
    cancel.check();
    gy = gram(item_factors, user_items.cols, f, threads, cancel);

    IterationStats stats;
    stats.iteration = iter;
    stats.loss = params.compute_loss ? combine_loss(user_items.rows, user_items.cols, lambda, gx, gy, item_loss, item_conf)
                                     : std::numeric_limits<double>::quiet_NaN();
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (on_iteration) on_iteration(stats);
  }
}

}  // namespace recsys

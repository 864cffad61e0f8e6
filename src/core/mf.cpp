#include "mf.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "knn.h"
#include "options.h"
#include "serving.h"
#include "simd8.h"
#include "training.h"

namespace recsys {

const char* lr_schedule_name(LrSchedule s) {
  switch (s) {
    case LrSchedule::Constant: return "constant";
    case LrSchedule::Decay: return "decay";
    case LrSchedule::AdaGrad: return "adagrad";
  }
  return "unknown";
}

namespace {

// The shared 8-float SIMD layer (simd8.h); rows are padded to blocks of 8, so a dot
// product has no scalar tail.
using namespace simd;  // NOLINT(google-build-using-namespace): the 8-float helpers

template <int V>
inline float dot_padded(const float* __restrict a, const float* __restrict b, int nv) {
  return simd::dot8_blocks<V>(a, b, nv);
}

// ---- Seeded random streams: every stream is keyed by (seed, purpose, index), so no
// random number depends on which thread draws it.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum StreamPurpose : uint64_t {
  kUserInit = 1,
  kItemInit = 2,
  kUserSpread = 3,
  kItemSpread = 4,
  kHoldout = 5,
  kBlockShuffle = 6,
};

struct Rng {
  uint64_t state;
  Rng(uint64_t seed, uint64_t purpose, uint64_t index) {
    uint64_t s = seed ^ (purpose * 0xD1B54A32D192ED03ULL);
    uint64_t t = splitmix64(s) ^ (index * 0xA0761D6478BD642FULL);
    state = splitmix64(t);
  }
  uint64_t next() { return splitmix64(state); }
  // Uniform in [0, n) (multiply-shift; the bias is below n / 2^64).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64); }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

struct Rating {
  int32_t u;
  int32_t i;
  float r;
};

constexpr int64_t kRowsPerTask = 2048;
constexpr int64_t kValidationChunk = 16384;
constexpr int64_t kPrefetchAhead = 6;  // ratings ahead whose factor rows are prefetched

// A hint to the CPU inside a spin-wait.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void check_csr(const CsrMatrix& m, const char* who) {
  if (m.rows < 0 || m.cols < 0 || static_cast<int64_t>(m.indptr.size()) != m.rows + 1 ||
      m.values.size() != m.indices.size() || m.indptr[0] != 0 || m.indptr.back() != m.nnz())
    fail(ErrorKind::Internal, std::string(who) + ": malformed rating matrix");
  if (m.rows > INT32_MAX || m.cols > INT32_MAX)
    fail(ErrorKind::ProgramLimit, std::string(who) + ": too many users or items");
  for (int64_t u = 0; u < m.rows; ++u)
    if (m.indptr[u + 1] < m.indptr[u]) fail(ErrorKind::Internal, std::string(who) + ": malformed rating matrix");
  for (size_t k = 0; k < m.indices.size(); ++k) {
    if (m.indices[k] < 0 || m.indices[k] >= m.cols)
      fail(ErrorKind::Internal, std::string(who) + ": item index out of range");
    if (!std::isfinite(m.values[k])) fail(ErrorKind::DataException, std::string(who) + ": ratings must be finite");
  }
}

void validate_params(const MfParams& p) {
  auto bad = [](const std::string& what) { fail(ErrorKind::InvalidParameter, "train_mf: " + what); };
  if (p.factors < 0 || p.factors > 4096) bad("factors must be between 0 and 4096");
  if (p.epochs < 0) bad("epochs must not be negative");
  if (!(p.learning_rate > 0) || !std::isfinite(p.learning_rate)) bad("learning_rate must be a finite number > 0");
  if (!std::isfinite(p.bias_learning_rate)) bad("bias_learning_rate must be finite");
  if (!(p.lr_decay >= 0) || !std::isfinite(p.lr_decay)) bad("lr_decay must be a finite number >= 0");
  if (!(p.reg_bias >= 0) || !std::isfinite(p.reg_bias)) bad("reg_bias must be a finite number >= 0");
  if (!(p.reg_factors >= 0) || !std::isfinite(p.reg_factors)) bad("reg_factors must be a finite number >= 0");
  if (!(p.reg_exponent >= 0 && p.reg_exponent <= 2)) bad("reg_exponent must be between 0 and 2");
  if (!(p.init_scale >= 0) || !std::isfinite(p.init_scale)) bad("init_scale must be a finite number >= 0");
  if (!(p.holdout_fraction >= 0 && p.holdout_fraction < 1)) bad("holdout_fraction must be in [0, 1)");
  if (p.patience < 1) bad("patience must be at least 1");
  if (p.blocks < 0 || p.blocks > 4096) bad("blocks must be between 0 and 4096");
}

// Fills rows x stride with N(0, scale^2) in the first f columns and zeros in the padding,
// from one stream per row (Marsaglia's polar method: one log and no trigonometry per
// pair; each 64-bit draw gives both uniforms).
void init_normal(float* m, int64_t rows, int f, int stride, float scale, uint64_t seed, uint64_t purpose,
                 int threads, const CancelToken& cancel) {
  parallel_for((rows + kRowsPerTask - 1) / kRowsPerTask, threads, cancel, [&](int64_t task, int) {
    const int64_t end = std::min(rows, (task + 1) * kRowsPerTask);
    for (int64_t r = task * kRowsPerTask; r < end; ++r) {
      Rng rng(seed, purpose, static_cast<uint64_t>(r));
      float* row = m + r * stride;
      for (int j = 0; j < f; j += 2) {
        float a, b, s;
        do {
          const uint64_t bits = rng.next();
          a = static_cast<float>(bits >> 40) * 0x1.0p-23f - 1.0f;  // [-1, 1), 24 bits
          b = static_cast<float>((bits >> 8) & 0xFFFFFFu) * 0x1.0p-23f - 1.0f;
          s = a * a + b * b;
        } while (s >= 1.0f || s == 0.0f);
        const float k = std::sqrt(-2.0f * std::log(s) / s) * scale;
        row[j] = a * k;
        if (j + 1 < f) row[j + 1] = b * k;
      }
      for (int j = f; j < stride; ++j) row[j] = 0.0f;
    }
  });
}

// A seeded random permutation of [0, n).
std::vector<int32_t> permutation(int64_t n, uint64_t seed, uint64_t purpose) {
  std::vector<int32_t> perm(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) perm[k] = static_cast<int32_t>(k);
  Rng rng(seed, purpose, 0);
  for (int64_t k = n - 1; k > 0; --k) std::swap(perm[k], perm[rng.below(static_cast<uint64_t>(k + 1))]);
  return perm;
}

std::vector<int32_t> inverse(const std::vector<int32_t>& perm) {
  std::vector<int32_t> inv(perm.size());
  for (size_t k = 0; k < perm.size(); ++k) inv[perm[k]] = static_cast<int32_t>(k);
  return inv;
}

// ---- The SGD kernels over one block.
struct SgdArgs {
  float* P;  // users x fp
  float* Q;  // items x fp
  float* bu;
  float* bi;
  float* gu;  // AdaGrad accumulators (per user / item row and per bias)
  float* gi;
  float* gbu;
  float* gbi;
  const float* reg_u;  // per-visit factor regularization of each user / item
  const float* reg_i;
  int fp;  // padded factors (multiple of 8)
  int f;   // real factors
  float mu, lr, lr_b, reg_f, reg_b;
};

// Processes n ratings in order; returns the sum of squared errors seen.
template <int V>
double sgd_block(const Rating* __restrict rs, int64_t n, const SgdArgs& a) {
  const int fp = V > 0 ? 8 * V : a.fp;
  const int nv = fp / 8;
  float* __restrict P = a.P;
  float* __restrict Q = a.Q;
  float* __restrict bu = a.bu;
  float* __restrict bi = a.bi;
  const float mu = a.mu, lr = a.lr, lr_b = a.lr_b, reg_b = a.reg_b;
  const float* __restrict reg_u = a.reg_u;
  const float* __restrict reg_i = a.reg_i;
  double sq = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (fp > 0 && k + kPrefetchAhead < n) {
      const float* pn = P + static_cast<int64_t>(rs[k + kPrefetchAhead].u) * fp;
      const float* qn = Q + static_cast<int64_t>(rs[k + kPrefetchAhead].i) * fp;
      for (int b = 0; b < fp; b += 16) {
        __builtin_prefetch(pn + b, 1, 3);
        __builtin_prefetch(qn + b, 1, 3);
      }
    }
    const Rating x = rs[k];
    float* __restrict p = P + static_cast<int64_t>(x.u) * fp;
    float* __restrict q = Q + static_cast<int64_t>(x.i) * fp;
    const float e = x.r - (mu + bu[x.u] + bi[x.i] + dot_padded<V>(p, q, nv));
    sq += static_cast<double>(e) * e;
    bu[x.u] += lr_b * (e - reg_b * bu[x.u]);
    bi[x.i] += lr_b * (e - reg_b * bi[x.i]);
    const v8f le = splat8(lr * e);
    const v8f shrink_p = splat8(1.0f - lr * reg_u[x.u]), shrink_q = splat8(1.0f - lr * reg_i[x.i]);
    for (int v = 0; v < nv; ++v) {
      const v8f pv = load8(p + 8 * v), qv = load8(q + 8 * v);
      store8(p + 8 * v, fmadd8(le, qv, pv * shrink_p));
      store8(q + 8 * v, fmadd8(le, pv, qv * shrink_q));
    }
  }
  return sq;
}

// AdaGrad variant (LibMF's): each user / item row keeps G (initially 1); a step uses
// η / sqrt(G), then G grows by the mean squared gradient of the row. Biases likewise,
// with their own G.
template <int V>
double sgd_block_adagrad(const Rating* __restrict rs, int64_t n, const SgdArgs& a) {
  const int fp = V > 0 ? 8 * V : a.fp;
  const int nv = fp / 8;
  float* __restrict P = a.P;
  float* __restrict Q = a.Q;
  float* __restrict bu = a.bu;
  float* __restrict bi = a.bi;
  float* __restrict gu = a.gu;
  float* __restrict gi = a.gi;
  float* __restrict gbu = a.gbu;
  float* __restrict gbi = a.gbi;
  const float mu = a.mu, lr = a.lr, lr_b = a.lr_b, reg_b = a.reg_b;
  const float* __restrict reg_u = a.reg_u;
  const float* __restrict reg_i = a.reg_i;
  const float inv_f = a.f > 0 ? 1.0f / static_cast<float>(a.f) : 0.0f;
  double sq = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (fp > 0 && k + kPrefetchAhead < n) {
      const float* pn = P + static_cast<int64_t>(rs[k + kPrefetchAhead].u) * fp;
      const float* qn = Q + static_cast<int64_t>(rs[k + kPrefetchAhead].i) * fp;
      for (int b = 0; b < fp; b += 16) {
        __builtin_prefetch(pn + b, 1, 3);
        __builtin_prefetch(qn + b, 1, 3);
      }
    }
    const Rating x = rs[k];
    float* __restrict p = P + static_cast<int64_t>(x.u) * fp;
    float* __restrict q = Q + static_cast<int64_t>(x.i) * fp;
    const float e = x.r - (mu + bu[x.u] + bi[x.i] + dot_padded<V>(p, q, nv));
    sq += static_cast<double>(e) * e;
    const float g_bu = e - reg_b * bu[x.u], g_bi = e - reg_b * bi[x.i];
    bu[x.u] += lr_b / std::sqrt(gbu[x.u]) * g_bu;
    bi[x.i] += lr_b / std::sqrt(gbi[x.i]) * g_bi;
    gbu[x.u] += g_bu * g_bu;
    gbi[x.i] += g_bi * g_bi;
    const v8f ev = splat8(e);
    const v8f lam_p = splat8(reg_u[x.u]), lam_q = splat8(reg_i[x.i]);
    const v8f sp = splat8(lr / std::sqrt(gu[x.u])), sqq = splat8(lr / std::sqrt(gi[x.i]));
    v8f accp = v8f{}, accq = v8f{};
    for (int v = 0; v < nv; ++v) {
      const v8f pv = load8(p + 8 * v), qv = load8(q + 8 * v);
      const v8f gp = ev * qv - lam_p * pv;  // descent directions
      const v8f gq = ev * pv - lam_q * qv;
      accp = fmadd8(gp, gp, accp);
      accq = fmadd8(gq, gq, accq);
      store8(p + 8 * v, fmadd8(sp, gp, pv));
      store8(q + 8 * v, fmadd8(sqq, gq, qv));
    }
    gu[x.u] += hsum8(accp) * inv_f;
    gi[x.i] += hsum8(accq) * inv_f;
  }
  return sq;
}

using BlockKernel = double (*)(const Rating*, int64_t, const SgdArgs&);

BlockKernel kernel_for(int fp, bool adagrad) {
#define RECSYS_MF_CASE(v) \
  case v: return adagrad ? &sgd_block_adagrad<v> : &sgd_block<v>;
  switch (fp / 8 <= 16 ? fp / 8 : -1) {
    RECSYS_MF_CASE(1)
    RECSYS_MF_CASE(2)
    RECSYS_MF_CASE(3)
    RECSYS_MF_CASE(4)
    RECSYS_MF_CASE(5)
    RECSYS_MF_CASE(6)
    RECSYS_MF_CASE(7)
    RECSYS_MF_CASE(8)
    RECSYS_MF_CASE(9)
    RECSYS_MF_CASE(10)
    RECSYS_MF_CASE(11)
    RECSYS_MF_CASE(12)
    RECSYS_MF_CASE(13)
    RECSYS_MF_CASE(14)
    RECSYS_MF_CASE(15)
    RECSYS_MF_CASE(16)
    default: return adagrad ? &sgd_block_adagrad<0> : &sgd_block<0>;
  }
#undef RECSYS_MF_CASE
}

inline double clip(double v, double lo, double hi) { return lo <= hi ? std::min(std::max(v, lo), hi) : v; }

// RMSE, in the caller's units, of the clipped predictions μ + scale * (b_u + b_i + p.q)
// over `ratings` (which hold standardized values: r = μ + scale * x.r), summed over
// fixed chunks in order.
double rmse_of(const std::vector<Rating>& ratings, const float* P, const float* Q, const float* bu, const float* bi,
               int stride, double mu, double scale, double lo, double hi, int threads, const CancelToken& cancel) {
  const int64_t n = static_cast<int64_t>(ratings.size());
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t chunks = (n + kValidationChunk - 1) / kValidationChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  parallel_for(chunks, threads, cancel, [&](int64_t c, int) {
    const int64_t end = std::min(n, (c + 1) * kValidationChunk);
    double s = 0;
    for (int64_t k = c * kValidationChunk; k < end; ++k) {
      const Rating& x = ratings[k];
      const float* p = P + static_cast<int64_t>(x.u) * stride;
      const float* q = Q + static_cast<int64_t>(x.i) * stride;
      double raw = static_cast<double>(bu[x.u]) + bi[x.i];
      for (int j = 0; j < stride; ++j) raw += static_cast<double>(p[j]) * q[j];
      const double d = clip(mu + scale * raw, lo, hi) - (mu + scale * x.r);
      s += d * d;
    }
    part[c] = s;
  });
  double total = 0;
  for (double s : part) total += s;
  return std::sqrt(total / static_cast<double>(n));
}

}  // namespace

// ---------------------------------------------------------------------------------------

double predict_rating(double global_mean, double rating_min, double rating_max, int factors,
                      const float* user_factors_row, const float* user_bias, const float* item_factors_row,
                      const float* item_bias) {
  double s = global_mean;
  if (user_bias) s += *user_bias;
  if (item_bias) s += *item_bias;
  if (user_factors_row && item_factors_row) {
    double d = 0;
    for (int j = 0; j < factors; ++j) d += static_cast<double>(user_factors_row[j]) * item_factors_row[j];
    s += d;
  }
  return clip(s, rating_min, rating_max);
}

double predict_rating(const MfModel& m, int64_t user, int64_t item) {
  if (user >= m.n_users || item >= m.n_items)
    fail(ErrorKind::InvalidParameter, "predict_rating: user or item index out of range");
  const bool ku = user >= 0, ki = item >= 0;
  const int f = m.factors;
  return predict_rating(m.global_mean, m.rating_min, m.rating_max, f,
                        ku && f > 0 ? m.user_factors.data() + user * f : nullptr,
                        ku ? m.user_bias.data() + user : nullptr,
                        ki && f > 0 ? m.item_factors.data() + item * f : nullptr,
                        ki ? m.item_bias.data() + item : nullptr);
}

double predict_pair(const ModelView& model, int64_t user, int64_t item) {
  if (model.kind() != ModelKind::BiasedMf)
    fail(ErrorKind::NotSupported, std::string("predict needs a biased_mf model; this model is ") +
                                      model_kind_name(model.kind()));
  if (user >= model.n_users() || item >= model.n_items())
    fail(ErrorKind::InvalidParameter, "predict: user or item index out of range");
  const bool ku = user >= 0, ki = item >= 0;
  const int f = model.factors();
  const float* P = model.user_factors();
  const float* Q = model.item_factors();
  const float* ub = model.section_as<float>(SectionTag::UserBias);
  const float* ib = model.section_as<float>(SectionTag::ItemBias);
  const ModelHeader& h = *model.header;
  return predict_rating(h.global_mean, h.rating_min, h.rating_max, f,
                        ku && P && f > 0 ? P + user * f : nullptr, ku && ub ? ub + user : nullptr,
                        ki && Q && f > 0 ? Q + item * f : nullptr, ki && ib ? ib + item : nullptr);
}

namespace {

// train_biased_mf, phase 1: the holdout, exactly round(fraction * nnz) ratings (at least
// 1, and at least 1 left for training) chosen by selection sampling (Knuth's algorithm
// S) in CSR order. Returns the number held out.
int64_t select_holdout(int64_t nnz, const MfParams& params, std::vector<uint8_t>& held) {
  const uint64_t seed = params.seed;
  held.assign(static_cast<size_t>(nnz), 0);
  int64_t n_hold = 0;
  if (params.holdout_fraction > 0 && nnz >= 2) {
    n_hold = std::min<int64_t>(nnz - 1, std::max<int64_t>(1, std::llround(params.holdout_fraction * nnz)));
    Rng rng(seed, kHoldout, 0);
    int64_t chosen = 0;
    for (int64_t k = 0; k < nnz && chosen < n_hold; ++k) {
      if (rng.uniform() * static_cast<double>(nnz - k) < static_cast<double>(n_hold - chosen)) {
        held[k] = 1;
        ++chosen;
      }
    }
  }
  return n_hold;
}

// Phase 2: the grid of B x B blocks of training ratings (and the validation ratings).
struct MfGrid {
  std::vector<int32_t> uperm, upos, ipos;
  std::vector<int64_t> start;  // per block, into train
  std::vector<Rating> train, valid;
};

MfGrid build_grid(const CsrMatrix& m, std::vector<uint8_t>& held, int64_t n_train, int64_t n_hold, double mu,
                  float inv_sigma, int B, uint64_t seed, int threads, const CancelToken& cancel) {
  const int64_t nu = m.rows, ni = m.cols;
  MfGrid g;
  // The grid. Users and items are renumbered by seeded random permutations (internal
  // index = position in the permutation), and internal row r belongs to block r * B / n,
  // so a block's rows are a contiguous range of the factor matrices. Ratings are grouped
  // by block (row block * B + column block); within a block by internal user (ascending,
  // so the user rows stream through memory, as LibMF does), each user's ratings in an
  // order shuffled from the seed.
  g.uperm = permutation(nu, seed, kUserSpread);
  const std::vector<int32_t> iperm = permutation(ni, seed, kItemSpread);
  g.upos = inverse(g.uperm);
  g.ipos = inverse(iperm);
  const std::vector<int32_t>& uperm = g.uperm;
  const std::vector<int32_t>& upos = g.upos;
  const std::vector<int32_t>& ipos = g.ipos;
  std::vector<int32_t> user_block(static_cast<size_t>(nu)), item_block(static_cast<size_t>(ni));
  for (int64_t u = 0; u < nu; ++u) user_block[u] = static_cast<int32_t>((static_cast<int64_t>(upos[u]) * B) / nu);
  for (int64_t i = 0; i < ni; ++i) item_block[i] = static_cast<int32_t>((static_cast<int64_t>(ipos[i]) * B) / ni);
  const int64_t n_blocks = static_cast<int64_t>(B) * B;
  std::vector<int64_t>& start = g.start;
  start.assign(static_cast<size_t>(n_blocks) + 1, 0);
  for (int64_t u = 0; u < nu; ++u) {
    int64_t* row = start.data() + static_cast<int64_t>(user_block[u]) * B + 1;
    for (int64_t k = m.indptr[u]; k < m.indptr[u + 1]; ++k)
      if (!held[k]) ++row[item_block[m.indices[k]]];
  }
  for (int64_t b = 0; b < n_blocks; ++b) start[b + 1] += start[b];
  std::vector<Rating>& train = g.train;
  std::vector<Rating>& valid = g.valid;
  train.resize(static_cast<size_t>(n_train));
  valid.reserve(static_cast<size_t>(n_hold));
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t pos = 0; pos < nu; ++pos) {
      if (pos + 4 < nu) {  // rows are read in permuted order: fetch ahead
        const int64_t ahead = m.indptr[uperm[pos + 4]];
        __builtin_prefetch(m.indices.data() + ahead);
        __builtin_prefetch(m.values.data() + ahead);
        __builtin_prefetch(held.data() + ahead);
      }
      const int64_t u = uperm[pos];
      int64_t* row_fill = fill.data() + static_cast<int64_t>(user_block[u]) * B;
      for (int64_t k = m.indptr[u]; k < m.indptr[u + 1]; ++k) {
        const int32_t i = m.indices[k];
        const Rating x{static_cast<int32_t>(pos), ipos[i], static_cast<float>((m.values[k] - mu)) * inv_sigma};
        if (held[k])
          valid.push_back(x);
        else
          train[row_fill[item_block[i]]++] = x;
      }
    }
  }
  held = {};
  parallel_for(n_blocks, threads, cancel, [&](int64_t b, int) {
    Rng rng(seed, kBlockShuffle, static_cast<uint64_t>(b));
    Rating* r = train.data() + start[b];
    const int64_t n = start[b + 1] - start[b];
    for (int64_t run = 0; run < n;) {
      int64_t end = run + 1;
      while (end < n && r[end].u == r[run].u) ++end;
      for (int64_t k = end - run - 1; k > 0; --k) std::swap(r[run + k], r[run + rng.below(static_cast<uint64_t>(k + 1))]);
      run = end;
    }
  });

  return g;
}

// Phase 3: per-visit factor regularization, lambda_f * n^-alpha for a user / item with n
// training ratings.
void visit_regularization(const std::vector<Rating>& train, int64_t nu, int64_t ni, const MfParams& params,
                          std::vector<float>& reg_u, std::vector<float>& reg_i) {
  reg_u.resize(static_cast<size_t>(nu));
  reg_i.resize(static_cast<size_t>(ni));
  std::vector<int64_t> nu_count(static_cast<size_t>(nu), 0), ni_count(static_cast<size_t>(ni), 0);
  for (const Rating& x : train) {
    ++nu_count[x.u];
    ++ni_count[x.i];
  }
  const double alpha = params.reg_exponent;
  for (int64_t u = 0; u < nu; ++u)
    reg_u[u] = static_cast<float>(params.reg_factors * std::pow(std::max<double>(1, nu_count[u]), -alpha));
  for (int64_t i = 0; i < ni; ++i)
    reg_i[i] = static_cast<float>(params.reg_factors * std::pow(std::max<double>(1, ni_count[i]), -alpha));
}

// Phase 4, one epoch: the B rounds over the grid, each block's squared error in block_sq.
void run_epoch_rounds(int B, int workers, const MfGrid& grid, std::vector<Rating>& train, BlockKernel kernel,
                      const SgdArgs& args, std::vector<double>& block_sq, std::atomic<int>* row_done,
                      std::atomic<int>* col_done, const CancelToken& cancel) {
  const int64_t n_blocks = static_cast<int64_t>(B) * B;
  const std::vector<int64_t>& start = grid.start;
  // The B rounds of the epoch. Tickets 0 .. B*B-1 are handed out in round order; ticket
  // (r, t) is block (t, (t + r) mod B), which may start once row block t and column
  // block (t + r) mod B have finished round r - 1. That is all a barrier after each
  // round would guarantee for this block (each row and column block still sees its
  // rounds in order, and a block touches nothing else), so the result is the same as
  // with a barrier, while a slow block holds up only the two blocks that need it. The
  // holder of the lowest unfinished ticket never waits, so this always progresses,
  // also when parallel_for runs fewer threads than asked.
  for (int b = 0; b < B; ++b) {
    row_done[b].store(0, std::memory_order_relaxed);
    col_done[b].store(0, std::memory_order_relaxed);
  }
  std::atomic<int64_t> next_ticket{0};
  parallel_for(workers, workers, cancel, [&](int64_t, int) {
    for (;;) {
      if (cancel.cancelled()) return;
      const int64_t ticket = next_ticket.fetch_add(1, std::memory_order_relaxed);
      if (ticket >= n_blocks) return;
      const int r = static_cast<int>(ticket / B), t = static_cast<int>(ticket % B), c = (t + r) % B;
      for (int spins = 0; row_done[t].load(std::memory_order_acquire) < r ||
                          col_done[c].load(std::memory_order_acquire) < r;
           ++spins) {
        if (cancel.cancelled()) return;
        if (spins < 256)
          cpu_relax();
        else
          std::this_thread::yield();
      }
      const int64_t b = static_cast<int64_t>(t) * B + c;
      block_sq[b] = kernel(train.data() + start[b], start[b + 1] - start[b], args);
      row_done[t].store(r + 1, std::memory_order_release);
      col_done[c].store(r + 1, std::memory_order_release);
    }
  });
}

// Phase 5: the output in the caller's numbering and units, without padding.
void write_mf_output(MfModel& out, std::vector<float>& P, const std::vector<float>& Q, const std::vector<float>& bu,
                     const std::vector<float>& bi, const MfGrid& grid, double sigma, int f, int fp) {
  const int64_t nu = out.n_users, ni = out.n_items;
  const std::vector<int32_t>& upos = grid.upos;
  const std::vector<int32_t>& ipos = grid.ipos;
  for (float v : bu)
    if (!std::isfinite(v)) fail(ErrorKind::InvalidParameter, "train_mf: training diverged; lower learning_rate");
  for (float v : bi)
    if (!std::isfinite(v)) fail(ErrorKind::InvalidParameter, "train_mf: training diverged; lower learning_rate");

  out.user_factors.resize(static_cast<size_t>(nu) * f);
  out.item_factors.resize(static_cast<size_t>(ni) * f);
  out.user_bias.resize(static_cast<size_t>(nu));
  out.item_bias.resize(static_cast<size_t>(ni));
  const float root = static_cast<float>(std::sqrt(sigma));
  for (int64_t u = 0; u < nu; ++u) {
    const float* src = P.data() + static_cast<int64_t>(upos[u]) * fp;
    for (int j = 0; j < f; ++j) out.user_factors[u * f + j] = src[j] * root;
    out.user_bias[u] = static_cast<float>(bu[upos[u]] * sigma);
  }
  P = {};
  for (int64_t i = 0; i < ni; ++i) {
    const float* src = Q.data() + static_cast<int64_t>(ipos[i]) * fp;
    for (int j = 0; j < f; ++j) out.item_factors[i * f + j] = src[j] * root;
    out.item_bias[i] = static_cast<float>(bi[ipos[i]] * sigma);
  }
  for (float v : out.user_factors)
    if (!std::isfinite(v)) fail(ErrorKind::InvalidParameter, "train_mf: training diverged; lower learning_rate");
  for (float v : out.item_factors)
    if (!std::isfinite(v)) fail(ErrorKind::InvalidParameter, "train_mf: training diverged; lower learning_rate");
}

}  // namespace

MfModel train_biased_mf(const CsrMatrix& m, const MfParams& params, int threads, const CancelToken& cancel,
                        const std::function<void(const MfEpochStats&)>& on_epoch) {
  validate_params(params);
  check_csr(m, "train_mf");
  threads = resolve_threads(threads);
  cancel.check();
  const int f = params.factors;
  const int fp = static_cast<int>(align_up(static_cast<uint64_t>(f), 8));
  const int B = params.blocks > 0 ? params.blocks : std::max(16, 2 * threads);
  const int64_t nu = m.rows, ni = m.cols, nnz = m.nnz();
  const uint64_t seed = params.seed;
  const float init_scale =
      params.init_scale > 0 ? params.init_scale : static_cast<float>(0.1 / std::sqrt(std::max(f, 1)));

  MfModel out;
  out.factors = f;
  out.n_users = nu;
  out.n_items = ni;
  out.blocks = B;

  // Range of the ratings.
  if (nnz > 0) {
    out.rating_min = out.rating_max = m.values[0];
    for (float v : m.values) {
      out.rating_min = std::min<double>(out.rating_min, v);
      out.rating_max = std::max<double>(out.rating_max, v);
    }
  }

  std::vector<uint8_t> held;
  const int64_t n_hold = select_holdout(nnz, params, held);
  const int64_t n_train = nnz - n_hold;
  out.train_ratings = n_train;
  out.validation_ratings = n_hold;

  double sum = 0;
  for (int64_t k = 0; k < nnz; ++k)
    if (!held[k]) sum += m.values[k];
  const double mu = n_train > 0 ? sum / static_cast<double>(n_train) : 0.0;
  out.global_mean = mu;
  // Training runs on standardized ratings (r - μ) / σ (σ = the standard deviation of the
  // training ratings, 1 if they are all equal), as LibMF does, so learning rates and
  // penalties mean the same on any rating scale. In these units b' = b / σ and
  // p' = p / sqrt(σ), q' = q / sqrt(σ); the output is converted back.
  double var = 0;
  for (int64_t k = 0; k < nnz; ++k)
    if (!held[k]) var += (m.values[k] - mu) * (m.values[k] - mu);
  double sigma = n_train > 0 ? std::sqrt(var / static_cast<double>(n_train)) : 0.0;
  if (!(sigma > 1e-12) || !std::isfinite(sigma)) sigma = 1.0;
  const float inv_sigma = static_cast<float>(1.0 / sigma);
  cancel.check();

  MfGrid grid = build_grid(m, held, n_train, n_hold, mu, inv_sigma, B, seed, threads, cancel);
  held = {};
  std::vector<Rating>& train = grid.train;
  const std::vector<Rating>& valid = grid.valid;
  const int64_t n_blocks = static_cast<int64_t>(B) * B;

  // Parameters.
  std::vector<float> P(static_cast<size_t>(nu) * fp), Q(static_cast<size_t>(ni) * fp);
  std::vector<float> bu(static_cast<size_t>(nu), 0.0f), bi(static_cast<size_t>(ni), 0.0f);
  init_normal(P.data(), nu, f, fp, init_scale, seed, kUserInit, threads, cancel);
  init_normal(Q.data(), ni, f, fp, init_scale, seed, kItemInit, threads, cancel);
  const bool adagrad = params.schedule == LrSchedule::AdaGrad;
  std::vector<float> gu, gi, gbu, gbi;
  if (adagrad) {
    gu.assign(static_cast<size_t>(nu), 1.0f);
    gi.assign(static_cast<size_t>(ni), 1.0f);
    gbu.assign(static_cast<size_t>(nu), 1.0f);
    gbi.assign(static_cast<size_t>(ni), 1.0f);
  }
  std::vector<float> bestP, bestQ, best_bu, best_bi;
  double best_rmse = std::numeric_limits<double>::infinity();
  int best_epoch = 0;

  std::vector<float> reg_u, reg_i;
  visit_regularization(train, nu, ni, params, reg_u, reg_i);
  const BlockKernel kernel = kernel_for(fp, adagrad);
  SgdArgs args{P.data(), Q.data(), bu.data(), bi.data(), gu.data(), gi.data(), gbu.data(), gbi.data(),
               reg_u.data(), reg_i.data(), fp, f, 0.0f, 0, 0, params.reg_factors, params.reg_bias};
  const float lr_b0 = params.bias_learning_rate >= 0 ? params.bias_learning_rate : params.learning_rate / 4;
  std::vector<double> block_sq(static_cast<size_t>(n_blocks), 0.0);

  // Threads: each works through the blocks of a round in turn, so a round with few
  // ratings gains nothing from many threads; use at most one thread per
  // min_ratings_per_thread ratings of a round. (The thread count never changes the result.)
  const int workers = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(threads, n_train / (B * std::max<int64_t>(1, params.min_ratings_per_thread)))));
  // Rounds finished in the current epoch, per row block and per column block.
  std::unique_ptr<std::atomic<int>[]> row_done(new std::atomic<int>[static_cast<size_t>(B)]);
  std::unique_ptr<std::atomic<int>[]> col_done(new std::atomic<int>[static_cast<size_t>(B)]);
  int epoch = 0;
  for (epoch = 1; epoch <= params.epochs; ++epoch) {
    cancel.check();
    const auto t0 = std::chrono::steady_clock::now();
    const float scale =
        params.schedule == LrSchedule::Decay ? 1.0f / (1.0f + params.lr_decay * static_cast<float>(epoch - 1)) : 1.0f;
    args.lr = params.learning_rate * scale;
    args.lr_b = lr_b0 * scale;
    run_epoch_rounds(B, workers, grid, train, kernel, args, block_sq, row_done.get(), col_done.get(), cancel);
    cancel.check();
    double sq = 0;
    for (double s : block_sq) sq += s;
    if (!std::isfinite(sq))
      fail(ErrorKind::InvalidParameter, "train_mf: training diverged in epoch " + std::to_string(epoch) +
                                            " (the errors grew without bound); lower learning_rate");
    MfEpochStats st;
    st.epoch = epoch;
    st.train_rmse =
        n_train > 0 ? sigma * std::sqrt(sq / static_cast<double>(n_train)) : std::numeric_limits<double>::quiet_NaN();
    st.learning_rate = args.lr;
    if (n_hold > 0)
      st.validation_rmse = rmse_of(valid, P.data(), Q.data(), bu.data(), bi.data(), fp, mu, sigma, out.rating_min,
                                   out.rating_max, threads, cancel);
    st.seconds = seconds_since(t0);
    out.history.push_back(st);
    if (on_epoch) on_epoch(st);

    if (n_hold == 0) {
      best_epoch = epoch;
      continue;
    }
    if (st.validation_rmse < best_rmse) {
      best_rmse = st.validation_rmse;
      best_epoch = epoch;
      if (epoch < params.epochs) {  // the last epoch's parameters are kept in place
        bestP = P;
        bestQ = Q;
        best_bu = bu;
        best_bi = bi;
      }
    } else if (epoch - best_epoch >= params.patience) {
      break;
    }
  }
  cancel.check();
  const int last = static_cast<int>(out.history.size());
  if (n_hold > 0 && best_epoch > 0 && best_epoch != last) {
    P.swap(bestP);
    Q.swap(bestQ);
    bu.swap(best_bu);
    bi.swap(best_bi);
  }
  out.best_epoch = best_epoch;
  if (n_hold > 0 && best_epoch > 0) out.validation_rmse = best_rmse;

  write_mf_output(out, P, Q, bu, bi, grid, sigma, f, fp);
  return out;
}

MfModel train_baseline(const CsrMatrix& m, const BaselineParams& params, int threads, const CancelToken& cancel) {
  if (params.epochs < 0) fail(ErrorKind::InvalidParameter, "train_baseline: epochs must not be negative");
  if (!(params.reg_user >= 0) || !std::isfinite(params.reg_user) || !(params.reg_item >= 0) ||
      !std::isfinite(params.reg_item))
    fail(ErrorKind::InvalidParameter, "train_baseline: reg_user and reg_item must be finite numbers >= 0");
  check_csr(m, "train_baseline");
  threads = resolve_threads(threads);
  cancel.check();
  const int64_t nu = m.rows, ni = m.cols, nnz = m.nnz();
  MfModel out;
  out.factors = 0;
  out.n_users = nu;
  out.n_items = ni;
  out.train_ratings = nnz;
  double sum = 0;
  for (float v : m.values) sum += v;
  const double mu = nnz > 0 ? sum / static_cast<double>(nnz) : 0.0;
  out.global_mean = mu;
  if (nnz > 0) {
    out.rating_min = *std::min_element(m.values.begin(), m.values.end());
    out.rating_max = *std::max_element(m.values.begin(), m.values.end());
  }
  const CsrMatrix t = transpose(m);
  std::vector<double> bu(static_cast<size_t>(nu), 0.0), bi(static_cast<size_t>(ni), 0.0);

  // One side's update: b_row = Σ (r - μ - b_other[col]) / (reg + count).
  auto solve = [&](const CsrMatrix& a, const std::vector<double>& other, double reg, std::vector<double>& b) {
    parallel_for((a.rows + kRowsPerTask - 1) / kRowsPerTask, threads, cancel, [&](int64_t task, int) {
      const int64_t end = std::min(a.rows, (task + 1) * kRowsPerTask);
      for (int64_t r = task * kRowsPerTask; r < end; ++r) {
        double dev = 0;
        for (int64_t k = a.indptr[r]; k < a.indptr[r + 1]; ++k) dev += a.values[k] - mu - other[a.indices[k]];
        const double den = reg + static_cast<double>(a.indptr[r + 1] - a.indptr[r]);
        b[r] = den > 0 ? dev / den : 0.0;
      }
    });
  };
  for (int epoch = 1; epoch <= params.epochs; ++epoch) {
    cancel.check();
    const auto t0 = std::chrono::steady_clock::now();
    solve(t, bu, params.reg_item, bi);
    solve(m, bi, params.reg_user, bu);
    // Exact training RMSE (unclipped), in fixed row chunks.
    const int64_t chunks = (nu + kRowsPerTask - 1) / kRowsPerTask;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    parallel_for(chunks, threads, cancel, [&](int64_t task, int) {
      const int64_t end = std::min(nu, (task + 1) * kRowsPerTask);
      double s = 0;
      for (int64_t u = task * kRowsPerTask; u < end; ++u)
        for (int64_t k = m.indptr[u]; k < m.indptr[u + 1]; ++k) {
          const double e = m.values[k] - (mu + bu[u] + bi[m.indices[k]]);
          s += e * e;
        }
      part[task] = s;
    });
    double sq = 0;
    for (double s : part) sq += s;
    MfEpochStats st;
    st.epoch = epoch;
    st.train_rmse = nnz > 0 ? std::sqrt(sq / static_cast<double>(nnz)) : std::numeric_limits<double>::quiet_NaN();
    st.seconds = seconds_since(t0);
    out.history.push_back(st);
  }
  out.best_epoch = params.epochs;
  out.user_bias.assign(bu.begin(), bu.end());
  out.item_bias.assign(bi.begin(), bi.end());
  return out;
}

// ---------------------------------------------------------------------------------------

CsrMatrix build_rating_matrix(const TrainingState& state, const std::vector<uint32_t>& user_rank,
                              const std::vector<uint32_t>& item_rank, const CancelToken& cancel,
                              uint64_t* duplicate_rows) {
  const uint64_t n = state.log.size();
  const int64_t rows = static_cast<int64_t>(user_rank.size());
  CsrMatrix m;
  m.rows = rows;
  m.cols = static_cast<int64_t>(item_rank.size());
  // Counting sort of the rows by user.
  std::vector<int64_t> start(static_cast<size_t>(rows) + 1, 0);
  for (uint64_t r = 0; r < n; ++r) ++start[user_rank[state.log[r].user] + 1];
  for (int64_t u = 0; u < rows; ++u) start[u + 1] += start[u];
  std::vector<std::pair<int32_t, float>> entries(n);
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (uint64_t r = 0; r < n; ++r) {
      if ((r & 0xFFFFF) == 0) cancel.check();
      const Triplet& t = state.log[r];
      entries[fill[user_rank[t.user]]++] = {static_cast<int32_t>(item_rank[t.item]), t.weight};
    }
  }
  // Sort each row by (item, rating) and average duplicates in double: independent of
  // arrival order.
  uint64_t duplicates = 0;
  m.indptr.assign(static_cast<size_t>(rows) + 1, 0);
  m.indices.reserve(n);
  m.values.reserve(n);
  for (int64_t u = 0; u < rows; ++u) {
    if ((u & 0x3FFF) == 0) cancel.check();
    auto b = entries.begin() + start[u], e = entries.begin() + start[u + 1];
    std::sort(b, e);
    for (auto it = b; it != e;) {
      const int32_t item = it->first;
      double s = 0;
      int64_t count = 0;
      for (; it != e && it->first == item; ++it, ++count) s += it->second;
      duplicates += static_cast<uint64_t>(count - 1);
      m.indices.push_back(item);
      m.values.push_back(static_cast<float>(s / static_cast<double>(count)));
    }
    m.indptr[u + 1] = static_cast<int64_t>(m.indices.size());
  }
  if (duplicate_rows) *duplicate_rows = duplicates;
  return m;
}

MfTrainingOptions parse_mf_options(const OptionList& options) {
  OptionReader r(options, "train_mf");
  const MfParams d;
  MfTrainingOptions o;
  MfParams& p = o.mf;
  p.factors = static_cast<int>(r.get_int("factors", d.factors, 0, 1024));
  p.epochs = static_cast<int>(r.get_int("epochs", d.epochs, 0, 100000));
  p.learning_rate = static_cast<float>(r.get_double("learning_rate", d.learning_rate, 1e-9, 10));
  p.bias_learning_rate = static_cast<float>(r.get_double("bias_learning_rate", p.learning_rate / 4, 0, 10));
  const std::string schedule = r.get_string("lr_schedule", lr_schedule_name(d.schedule), {"constant", "decay", "adagrad"});
  p.schedule = schedule == "constant" ? LrSchedule::Constant
               : schedule == "decay"  ? LrSchedule::Decay
                                      : LrSchedule::AdaGrad;
  p.lr_decay = static_cast<float>(r.get_double("lr_decay", d.lr_decay, 0, 1e6));
  p.reg_bias = static_cast<float>(r.get_double("reg_bias", d.reg_bias, 0, 1e6));
  p.reg_factors = static_cast<float>(r.get_double("reg_factors", d.reg_factors, 0, 1e6));
  p.reg_exponent = r.get_double("reg_exponent", d.reg_exponent, 0, 2);
  p.init_scale = static_cast<float>(r.get_double("init_scale", 0, 0, 100));
  if (p.init_scale == 0) p.init_scale = static_cast<float>(0.1 / std::sqrt(std::max(p.factors, 1)));
  p.seed = static_cast<uint64_t>(r.get_int("seed", static_cast<int64_t>(d.seed), 0, (int64_t(1) << 53)));
  p.holdout_fraction = r.get_double("holdout_fraction", d.holdout_fraction, 0, 0.9);
  p.patience = static_cast<int>(r.get_int("patience", d.patience, 1, 100000));
  p.blocks = static_cast<int>(r.get_int("blocks", d.blocks, 0, 4096));
  o.similar_items = r.get_int("similar_items", -1, 0, 100000);
  o.store_seen = r.get_bool("store_seen", true);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();
  return o;
}

BaselineTrainingOptions parse_baseline_options(const OptionList& options) {
  OptionReader r(options, "train_baseline");
  const BaselineParams d;
  BaselineTrainingOptions o;
  o.baseline.epochs = static_cast<int>(r.get_int("epochs", d.epochs, 0, 100000));
  o.baseline.reg_user = r.get_double("reg_user", d.reg_user, 0, 1e9);
  o.baseline.reg_item = r.get_double("reg_item", d.reg_item, 0, 1e9);
  o.store_seen = r.get_bool("store_seen", true);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();
  return o;
}

namespace {

template <class T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// Builds the BiasedMf model from a trained MfModel. Sections: Params, UserKeys,
// ItemKeys, UserNorms, ItemNorms, UserFactors, ItemFactors (empty with 0 factors),
// UserBias, ItemBias, UserItems (if store_seen), PopularOrder, ItemPopularity (number
// of ratings per item), History ((train RMSE, seconds) per epoch).
std::unique_ptr<ModelBuilder> assemble(const TrainingState& state, const CsrMatrix& ui, MfModel& model,
                                       const std::string& params, bool store_seen,
                                       const std::vector<uint32_t>& user_order,
                                       const std::vector<uint32_t>& item_order) {
  const int64_t nu = ui.rows, ni = ui.cols;
  const int f = model.factors;
  auto builder = std::make_unique<ModelBuilder>();
  ModelHeader& h = builder->header;
  h.kind = static_cast<uint16_t>(ModelKind::BiasedMf);
  h.user_key_kind = static_cast<uint8_t>(state.users.kind());
  h.item_key_kind = static_cast<uint8_t>(state.items.kind());
  h.user_type_oid = state.user_type_oid;
  h.item_type_oid = state.item_type_oid;
  h.factors = static_cast<uint32_t>(f);
  h.n_users = static_cast<uint64_t>(nu);
  h.n_items = static_cast<uint64_t>(ni);
  h.n_interactions = static_cast<uint64_t>(ui.nnz());
  h.global_mean = model.global_mean;
  h.rating_min = model.rating_min;
  h.rating_max = model.rating_max;

  std::vector<float> popularity(static_cast<size_t>(ni), 0.0f);
  for (int32_t i : ui.indices) popularity[i] += 1.0f;
  std::vector<double> history;
  for (const MfEpochStats& s : model.history) {
    history.push_back(s.train_rmse);
    history.push_back(s.seconds);
  }

  builder->add(SectionTag::Params, std::vector<uint8_t>(params.begin(), params.end()));
  builder->add(SectionTag::UserKeys, state.users.dictionary_bytes(user_order));
  builder->add(SectionTag::ItemKeys, state.items.dictionary_bytes(item_order));
  builder->add(SectionTag::UserNorms, to_bytes(row_norms(model.user_factors.data(), nu, f)));
  builder->add(SectionTag::ItemNorms, to_bytes(row_norms(model.item_factors.data(), ni, f)));
  builder->add(SectionTag::UserFactors, to_bytes(model.user_factors));
  model.user_factors = {};
  builder->add(SectionTag::ItemFactors, to_bytes(model.item_factors));
  model.item_factors = {};
  builder->add(SectionTag::UserBias, to_bytes(model.user_bias));
  builder->add(SectionTag::ItemBias, to_bytes(model.item_bias));
  if (store_seen) {
    std::vector<uint8_t> csr(8 * ui.indptr.size() + 4 * ui.indices.size());
    std::memcpy(csr.data(), ui.indptr.data(), 8 * ui.indptr.size());
    if (!ui.indices.empty()) std::memcpy(csr.data() + 8 * ui.indptr.size(), ui.indices.data(), 4 * ui.indices.size());
    builder->add(SectionTag::UserItems, std::move(csr));
  }
  builder->add(SectionTag::PopularOrder, to_bytes(popularity_order(popularity)));
  builder->add(SectionTag::ItemPopularity, to_bytes(popularity));
  builder->add(SectionTag::History, to_bytes(history));
  return builder;
}

std::string prepared_line(const char* who, uint64_t rows_in, const CsrMatrix& ui, uint64_t duplicates,
                          double seconds) {
  return std::string(who) + ": " + std::to_string(rows_in) + " rows, " + std::to_string(ui.rows) + " users, " +
         std::to_string(ui.cols) + " items, " + std::to_string(ui.nnz()) + " distinct ratings (" +
         std::to_string(duplicates) + " duplicate rows averaged); prepared in " + std::to_string(seconds) + " s";
}

}  // namespace

void build_mf_model(TrainingState& state, const MfTrainingOptions& options, int threads, const CancelToken& cancel,
                    const std::function<void(const std::string&)>& log_line) {
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t rows_in = state.log.size();
  const std::vector<uint32_t> user_order = state.users.sorted_order();
  const std::vector<uint32_t> item_order = state.items.sorted_order();
  uint64_t duplicates = 0;
  const CsrMatrix ui = build_rating_matrix(state, KeyInterner::invert(user_order), KeyInterner::invert(item_order),
                                           cancel, &duplicates);
  state.log.clear();
  if (options.verbose) log_line(prepared_line("train_mf", rows_in, ui, duplicates, seconds_since(t0)));

  const MfParams& p = options.mf;
  MfModel model = train_biased_mf(ui, p, threads, cancel, [&](const MfEpochStats& s) {
    if (!options.verbose) return;
    char buf[200];
    if (std::isnan(s.validation_rmse))
      std::snprintf(buf, sizeof buf, "train_mf: epoch %d/%d train RMSE %.6f (%.3f s)", s.epoch, p.epochs,
                    s.train_rmse, s.seconds);
    else
      std::snprintf(buf, sizeof buf, "train_mf: epoch %d/%d train RMSE %.6f validation RMSE %.6f (%.3f s)", s.epoch,
                    p.epochs, s.train_rmse, s.validation_rmse, s.seconds);
    log_line(buf);
  });
  cancel.check();
  check_factor_range(model.user_factors.data(), model.n_users, model.item_factors.data(), model.n_items,
                     model.factors, "train_mf");
  if (options.verbose && model.validation_ratings > 0)
    log_line("train_mf: kept epoch " + std::to_string(model.best_epoch) + " (validation RMSE " +
             json_number(model.validation_rmse) + ")");

  const float lr_b = p.bias_learning_rate >= 0 ? p.bias_learning_rate : p.learning_rate / 4;
  const float init_scale = p.init_scale > 0 ? p.init_scale : static_cast<float>(0.1 / std::sqrt(std::max(p.factors, 1)));
  const double last_train = model.history.empty() ? std::numeric_limits<double>::quiet_NaN()
                                                  : model.history[model.best_epoch > 0 ? model.best_epoch - 1 : 0].train_rmse;
  // Similar-item lists from the item factors (before assemble takes them).
  const int64_t similar = similar_list_length(options.similar_items, model.n_items, model.factors);
  NeighbourLists similar_lists =
      similar_item_lists(model.item_factors.data(), row_norms(model.item_factors.data(), model.n_items, model.factors).data(),
                         model.n_items, model.factors, similar, threads, cancel);
  const std::string params =
      "{\"model\": \"biased_mf\", \"factors\": " + std::to_string(p.factors) +
      ", \"epochs\": " + std::to_string(p.epochs) + ", \"learning_rate\": " + json_number(p.learning_rate) +
      ", \"bias_learning_rate\": " + json_number(lr_b) + ", \"lr_schedule\": \"" + lr_schedule_name(p.schedule) +
      "\", \"lr_decay\": " + json_number(p.lr_decay) + ", \"reg_bias\": " + json_number(p.reg_bias) +
      ", \"reg_factors\": " + json_number(p.reg_factors) + ", \"reg_exponent\": " + json_number(p.reg_exponent) +
      ", \"init_scale\": " + json_number(init_scale) +
      ", \"seed\": " + std::to_string(p.seed) + ", \"holdout_fraction\": " + json_number(p.holdout_fraction) +
      ", \"patience\": " + std::to_string(p.patience) + ", \"blocks\": " + std::to_string(model.blocks) +
      ", \"similar_items\": " + std::to_string(similar) + ", \"store_seen\": " + (options.store_seen ? "true" : "false") + ", \"rows\": " + std::to_string(rows_in) +
      ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
      ", \"duplicate_rows\": " + std::to_string(duplicates) + ", \"ratings\": " + std::to_string(ui.nnz()) +
      ", \"train_ratings\": " + std::to_string(model.train_ratings) +
      ", \"validation_ratings\": " + std::to_string(model.validation_ratings) +
      ", \"epochs_run\": " + std::to_string(model.history.size()) +
      ", \"best_epoch\": " + std::to_string(model.best_epoch) + ", \"train_rmse\": " + json_number(last_train) +
      ", \"validation_rmse\": " + json_number(model.validation_rmse) + "}";
  std::unique_ptr<ModelBuilder> builder =
      assemble(state, ui, model, params, options.store_seen, user_order, item_order);
  add_similar_sections(*builder, std::move(similar_lists));
  builder->header.train_seconds = seconds_since(t0);
  state.result = std::move(builder);
}

void build_baseline_model(TrainingState& state, const BaselineTrainingOptions& options, int threads,
                          const CancelToken& cancel, const std::function<void(const std::string&)>& log_line) {
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t rows_in = state.log.size();
  const std::vector<uint32_t> user_order = state.users.sorted_order();
  const std::vector<uint32_t> item_order = state.items.sorted_order();
  uint64_t duplicates = 0;
  const CsrMatrix ui = build_rating_matrix(state, KeyInterner::invert(user_order), KeyInterner::invert(item_order),
                                           cancel, &duplicates);
  state.log.clear();
  if (options.verbose) log_line(prepared_line("train_baseline", rows_in, ui, duplicates, seconds_since(t0)));
  const BaselineParams& p = options.baseline;
  MfModel model = train_baseline(ui, p, threads, cancel);
  cancel.check();
  if (options.verbose)
    for (const MfEpochStats& s : model.history) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "train_baseline: epoch %d/%d train RMSE %.6f (%.3f s)", s.epoch, p.epochs,
                    s.train_rmse, s.seconds);
      log_line(buf);
    }
  const double last_train = model.history.empty() ? std::numeric_limits<double>::quiet_NaN()
                                                  : model.history.back().train_rmse;
  const std::string params =
      "{\"model\": \"baseline\", \"factors\": 0, \"epochs\": " + std::to_string(p.epochs) +
      ", \"reg_user\": " + json_number(p.reg_user) + ", \"reg_item\": " + json_number(p.reg_item) +
      ", \"store_seen\": " + (options.store_seen ? "true" : "false") + ", \"rows\": " + std::to_string(rows_in) +
      ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
      ", \"duplicate_rows\": " + std::to_string(duplicates) + ", \"ratings\": " + std::to_string(ui.nnz()) +
      ", \"train_rmse\": " + json_number(last_train) + "}";
  std::unique_ptr<ModelBuilder> builder =
      assemble(state, ui, model, params, options.store_seen, user_order, item_order);
  builder->header.train_seconds = seconds_since(t0);
  state.result = std::move(builder);
}

}  // namespace recsys

#include "kmeans.h"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "options.h"

namespace recsys {

namespace {

constexpr int64_t kMaxDimension = 65536;  // the model header's factor limit
constexpr int64_t kChunkRows = 256;       // rows per task: fixed, so results never depend on threads

[[noreturn]] void bad_value(int64_t j, double v) {
  fail(ErrorKind::DataException, "feature vector element " + std::to_string(j + 1) + " must be a finite number, got " +
                                     (std::isnan(v) ? "NaN" : (v > 0 ? "Infinity" : "-Infinity")));
}

}  // namespace

// ---------------------------------------------------------------- state

float* KMeansState::next_row(int64_t d) {
  if (d <= 0) fail(ErrorKind::DataException, "feature vectors must not be empty");
  if (d > kMaxDimension)
    fail(ErrorKind::ProgramLimit, "feature vectors are limited to " + std::to_string(kMaxDimension) + " elements");
  if (d_ == 0) {
    d_ = d;
    rows_per_chunk_ = std::max<int64_t>(1, 65536 / d);
  } else if (d != d_) {
    fail(ErrorKind::DataException, "all feature vectors must have the same length: got " + std::to_string(d) +
                                       " after " + std::to_string(d_));
  }
  if (rows_ % rows_per_chunk_ == 0) chunks_.emplace_back(static_cast<size_t>(rows_per_chunk_ * d_));
  float* dst = chunks_.back().data() + (rows_ % rows_per_chunk_) * d_;
  ++rows_;
  return dst;
}

void KMeansState::add(const float* x, int64_t d) {
  for (int64_t j = 0; j < d; ++j)
    if (!std::isfinite(x[j])) bad_value(j, x[j]);
  float* dst = next_row(d);
  std::memcpy(dst, x, sizeof(float) * static_cast<size_t>(d));
}

void KMeansState::add(const double* x, int64_t d) {
  for (int64_t j = 0; j < d; ++j) {
    if (!std::isfinite(x[j])) bad_value(j, x[j]);
    if (std::fabs(x[j]) > 3.0e38)
      fail(ErrorKind::DataException, "feature vector element " + std::to_string(j + 1) + " is out of range for real");
  }
  float* dst = next_row(d);
  for (int64_t j = 0; j < d; ++j) dst[j] = static_cast<float>(x[j]);
}

std::vector<float> KMeansState::matrix() const {
  std::vector<float> out(static_cast<size_t>(rows_ * d_));
  for (int64_t r = 0; r < rows_; r += rows_per_chunk_) {
    const int64_t n = std::min(rows_per_chunk_, rows_ - r);
    std::memcpy(out.data() + r * d_, chunks_[r / rows_per_chunk_].data(), sizeof(float) * static_cast<size_t>(n * d_));
  }
  return out;
}

void KMeansState::clear() {
  chunks_.clear();
  chunks_.shrink_to_fit();
  rows_ = 0;
}

void KMeansState::merge(const KMeansState& other) {
  if (other.rows_ > 0 && d_ != 0 && other.d_ != d_)
    fail(ErrorKind::DataException, "all feature vectors must have the same length: got " + std::to_string(other.d_) +
                                       " and " + std::to_string(d_));
  for (int64_t r = 0; r < other.rows_; ++r) {
    float* dst = next_row(other.d_);
    std::memcpy(dst, other.row(r), sizeof(float) * static_cast<size_t>(other.d_));
  }
  if (options_bytes.empty()) options_bytes = other.options_bytes;
  if (k == 0) k = other.k;
  rows_skipped += other.rows_skipped;
}

namespace {
constexpr uint32_t kKMeansStateMagic = 0x4B4D5352u;  // "RSMK"
constexpr uint32_t kKMeansStateVersion = 2;
struct KMeansStateHeader {
  uint32_t magic, version;
  int64_t d, rows;
  uint64_t rows_skipped, options_len;
  int64_t k;
};
}  // namespace

uint64_t KMeansState::serialized_size() const {
  return sizeof(KMeansStateHeader) + options_bytes.size() + sizeof(float) * static_cast<uint64_t>(rows_ * d_);
}

void KMeansState::serialize(uint8_t* dst) const {
  KMeansStateHeader h{kKMeansStateMagic, kKMeansStateVersion, d_, rows_, rows_skipped, options_bytes.size(), k};
  std::memcpy(dst, &h, sizeof h);
  dst += sizeof h;
  if (!options_bytes.empty()) std::memcpy(dst, options_bytes.data(), options_bytes.size());
  dst += options_bytes.size();
  for (int64_t r = 0; r < rows_; r += rows_per_chunk_) {
    const int64_t n = std::min(rows_per_chunk_, rows_ - r);
    std::memcpy(dst, chunks_[r / rows_per_chunk_].data(), sizeof(float) * static_cast<size_t>(n * d_));
    dst += sizeof(float) * n * d_;
  }
}

std::unique_ptr<KMeansState> KMeansState::deserialize(const uint8_t* src, uint64_t size) {
  auto bad = []() { fail(ErrorKind::InvalidModel, "malformed kmeans aggregate state"); };
  KMeansStateHeader h;
  if (size < sizeof h) bad();
  std::memcpy(&h, src, sizeof h);
  if (h.magic != kKMeansStateMagic || h.version != kKMeansStateVersion) bad();
  if (h.d < 0 || h.d > kMaxDimension || h.rows < 0 || (h.rows > 0 && h.d == 0) || h.k < 0) bad();
  const uint64_t left = size - sizeof h;
  if (h.options_len > left) bad();
  const uint64_t data = left - h.options_len;
  if (h.d > 0 && (static_cast<uint64_t>(h.rows) > data / (4 * static_cast<uint64_t>(h.d)) ||
                  data != 4 * static_cast<uint64_t>(h.rows) * static_cast<uint64_t>(h.d)))
    bad();
  if (h.d == 0 && data != 0) bad();
  auto st = std::make_unique<KMeansState>();
  const uint8_t* p = src + sizeof h;
  st->options_bytes.assign(reinterpret_cast<const char*>(p), h.options_len);
  p += h.options_len;
  std::vector<float> row(static_cast<size_t>(h.d));
  for (int64_t r = 0; r < h.rows; ++r) {
    std::memcpy(row.data(), p + 4 * r * h.d, 4 * static_cast<size_t>(h.d));
    for (float v : row)
      if (!std::isfinite(v)) bad();
    st->add(row.data(), h.d);
  }
  st->rows_skipped = h.rows_skipped;
  st->k = h.k;
  return st;
}

// ---------------------------------------------------------------- options

KMeansOptions parse_kmeans_options(const OptionList& options) {
  OptionReader r(options, "kmeans");
  KMeansOptions o;
  if (!r.has("k")) fail(ErrorKind::InvalidParameter, "kmeans: option \"k\" (the number of clusters) is required");
  o.k = r.get_int("k", 0, 1, 1000000);
  o.n_init = r.get_int("n_init", 4, 1, 1000);
  o.max_iter = r.get_int("max_iter", 100, 1, 1000000);
  o.tol = r.get_double("tol", 1e-4, 0, 1e9);
  o.seed = static_cast<uint64_t>(r.get_int("seed", 42, 0, (int64_t(1) << 53)));
  o.standardize = r.get_bool("standardize", false);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();
  return o;
}

// ---------------------------------------------------------------- algorithm

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

// Squared distance with eight fixed partial sums (vectorizes; the same result wherever
// it runs).
inline float sqdist(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const float t = a[j + l] - b[j + l];
      acc[l] += t * t;
    }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; j < d; ++j) {
    const float t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

// splitmix64: a small seeded generator whose sequence is the same everywhere.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

uint64_t run_seed(uint64_t seed, int64_t run) {
  Rng r{seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(run + 1))};
  return r.next();
}

int64_t chunks_of(int64_t n) { return (n + kChunkRows - 1) / kChunkRows; }

double ordered_sum(const std::vector<double>& parts) {
  double s = 0;
  for (double p : parts) s += p;
  return s;
}

// Samples a row with probability proportional to w (chunk sums given), or -1.
int64_t sample_row(const std::vector<float>& w, const std::vector<double>& chunk_sum, double total, Rng& rng) {
  double r = rng.uniform() * total;
  const int64_t n = static_cast<int64_t>(w.size());
  int64_t last_positive = -1;
  for (size_t c = 0; c < chunk_sum.size(); ++c) {
    const int64_t r0 = static_cast<int64_t>(c) * kChunkRows, r1 = std::min(n, r0 + kChunkRows);
    if (r >= chunk_sum[c]) {
      r -= chunk_sum[c];
      for (int64_t i = r1 - 1; i >= r0; --i)
        if (w[i] > 0) {
          last_positive = i;
          break;
        }
      continue;
    }
    for (int64_t i = r0; i < r1; ++i) {
      if (w[i] <= 0) continue;
      last_positive = i;
      if (r < w[i]) return i;
      r -= w[i];
    }
  }
  return last_positive;  // rounding ran past the end
}

}  // namespace

std::vector<int64_t> kmeans_plus_plus(const float* x, int64_t n, int64_t d, int64_t k, uint64_t seed, int threads,
                                      const CancelToken& cancel) {
  threads = resolve_threads(threads);
  if (k < 1 || k > n) fail(ErrorKind::InvalidParameter, "kmeans: k must be between 1 and the number of rows");
  Rng rng{seed};
  const int64_t nc = chunks_of(n);
  std::vector<int64_t> centres;
  centres.push_back(static_cast<int64_t>(rng.uniform() * static_cast<double>(n)));
  std::vector<float> closest(static_cast<size_t>(n));
  std::vector<double> chunk_sum(static_cast<size_t>(nc));
  auto update = [&](int64_t c) {
    const float* cx = x + c * d;
    const bool first = centres.size() == 1;
    parallel_for(nc, threads, cancel, [&](int64_t t, int) {
      const int64_t r0 = t * kChunkRows, r1 = std::min(n, r0 + kChunkRows);
      double s = 0;
      for (int64_t i = r0; i < r1; ++i) {
        const float dist = sqdist(x + i * d, cx, d);
        closest[i] = first ? dist : std::min(closest[i], dist);
        s += closest[i];
      }
      chunk_sum[t] = s;
    });
  };
  update(centres[0]);
  const int64_t trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  std::vector<int64_t> cand(static_cast<size_t>(trials));
  std::vector<double> pot(static_cast<size_t>(nc * trials));
  while (static_cast<int64_t>(centres.size()) < k) {
    const double total = ordered_sum(chunk_sum);
    if (!(total > 0))
      fail(ErrorKind::InvalidParameter, "kmeans: k = " + std::to_string(k) + " is more than the " +
                                            std::to_string(centres.size()) + " distinct rows of the data");
    for (int64_t t = 0; t < trials; ++t) cand[t] = sample_row(closest, chunk_sum, total, rng);
    // The candidate that leaves the smallest potential.
    parallel_for(nc, threads, cancel, [&](int64_t t, int) {
      const int64_t r0 = t * kChunkRows, r1 = std::min(n, r0 + kChunkRows);
      for (int64_t c = 0; c < trials; ++c) {
        const float* cx = x + cand[c] * d;
        double s = 0;
        for (int64_t i = r0; i < r1; ++i) s += std::min(closest[i], sqdist(x + i * d, cx, d));
        pot[t * trials + c] = s;
      }
    });
    int64_t best = 0;
    double best_pot = 0;
    for (int64_t c = 0; c < trials; ++c) {
      double s = 0;
      for (int64_t t = 0; t < nc; ++t) s += pot[t * trials + c];
      if (c == 0 || s < best_pot) {
        best = c;
        best_pot = s;
      }
    }
    centres.push_back(cand[best]);
    update(cand[best]);
  }
  return centres;
}

KMeansResult kmeans_fit(const float* x, int64_t n, int64_t d, const KMeansOptions& options, int threads,
                        const CancelToken& cancel, const std::function<void(const std::string&)>& log_line) {
  threads = resolve_threads(threads);
  const int64_t k = options.k;
  if (n < 1) fail(ErrorKind::InvalidParameter, "kmeans: no rows to cluster");
  if (k < 1 || k > n)
    fail(ErrorKind::InvalidParameter,
         "kmeans: k = " + std::to_string(k) + " must be between 1 and the number of rows (" + std::to_string(n) + ")");
  const int64_t nc = chunks_of(n);

  // tol is relative to the data's mean variance per dimension.
  double mean_var = 0;
  {
    std::vector<double> mean(static_cast<size_t>(d), 0.0), sq(static_cast<size_t>(d), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) mean[j] += x[i * d + j];
    for (double& m : mean) m /= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) sq[j] += (x[i * d + j] - mean[j]) * (x[i * d + j] - mean[j]);
    for (double s : sq) mean_var += s / static_cast<double>(n);
    mean_var /= static_cast<double>(d);
  }
  const double tol = options.tol * mean_var;

  std::vector<int32_t> labels(static_cast<size_t>(n));
  std::vector<float> dist(static_cast<size_t>(n));
  std::vector<double> chunk_inertia(static_cast<size_t>(nc));
  std::vector<int64_t> chunk_changed(static_cast<size_t>(nc));

  // Assigns every row to its nearest centre: the cross products by blocks (Eigen), the
  // distance of the winner recomputed exactly.
  auto assign = [&](const std::vector<float>& C) {
    std::vector<float> cn(static_cast<size_t>(k));
    for (int64_t c = 0; c < k; ++c) {
      float s = 0;
      for (int64_t j = 0; j < d; ++j) s += C[c * d + j] * C[c * d + j];
      cn[c] = s;
    }
    ConstRowMap cm(C.data(), k, d);
    parallel_for(nc, threads, cancel, [&](int64_t t, int) {
      const int64_t r0 = t * kChunkRows, r1 = std::min(n, r0 + kChunkRows);
      thread_local RowMatrix dots;
      dots.noalias() = ConstRowMap(x + r0 * d, r1 - r0, d) * cm.transpose();
      double s = 0;
      int64_t changed = 0;
      for (int64_t i = r0; i < r1; ++i) {
        const float* dr = dots.data() + (i - r0) * k;
        int32_t best = 0;
        float best_v = cn[0] - 2 * dr[0];
        for (int64_t c = 1; c < k; ++c) {
          const float v = cn[c] - 2 * dr[c];
          if (v < best_v) {
            best_v = v;
            best = static_cast<int32_t>(c);
          }
        }
        changed += labels[i] != best;
        labels[i] = best;
        dist[i] = sqdist(x + i * d, C.data() + best * d, d);
        s += dist[i];
      }
      chunk_inertia[t] = s;
      chunk_changed[t] = changed;
    });
    int64_t changed = 0;
    for (int64_t c : chunk_changed) changed += c;
    return std::make_pair(ordered_sum(chunk_inertia), changed);
  };

  // Means of the clusters: rows bucketed by label, summed in row order (in double).
  std::vector<int64_t> start(static_cast<size_t>(k) + 1), order(static_cast<size_t>(n));
  std::vector<int64_t> sizes(static_cast<size_t>(k));
  auto update = [&](std::vector<float>& C) {
    std::fill(start.begin(), start.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++start[labels[i] + 1];
    for (int64_t c = 0; c < k; ++c) start[c + 1] += start[c];
    {
      std::vector<int64_t> fill(start.begin(), start.end() - 1);
      for (int64_t i = 0; i < n; ++i) order[fill[labels[i]]++] = i;
    }
    std::vector<float> next(C.size());
    parallel_for(k, threads, cancel, [&](int64_t c, int) {
      const int64_t cnt = start[c + 1] - start[c];
      if (cnt == 0) {
        std::memcpy(next.data() + c * d, C.data() + c * d, sizeof(float) * static_cast<size_t>(d));
        return;
      }
      std::vector<double> sum(static_cast<size_t>(d), 0.0);
      for (int64_t q = start[c]; q < start[c + 1]; ++q) {
        const float* xi = x + order[q] * d;
        for (int64_t j = 0; j < d; ++j) sum[j] += xi[j];
      }
      for (int64_t j = 0; j < d; ++j) next[c * d + j] = static_cast<float>(sum[j] / static_cast<double>(cnt));
    });
    // Emptied clusters take the rows farthest from their centres.
    std::vector<int64_t> empty;
    for (int64_t c = 0; c < k; ++c)
      if (start[c + 1] == start[c]) empty.push_back(c);
    if (!empty.empty()) {
      std::vector<int64_t> far(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) far[i] = i;
      auto farther = [&](int64_t a, int64_t b) { return dist[a] > dist[b] || (dist[a] == dist[b] && a < b); };
      const size_t m = std::min(empty.size(), far.size());
      std::partial_sort(far.begin(), far.begin() + static_cast<int64_t>(m), far.end(), farther);
      for (size_t e = 0; e < m; ++e)
        std::memcpy(next.data() + empty[e] * d, x + far[e] * d, sizeof(float) * static_cast<size_t>(d));
    }
    double shift = 0;
    for (size_t q = 0; q < C.size(); ++q) shift += (double(next[q]) - C[q]) * (double(next[q]) - C[q]);
    C.swap(next);
    return shift;
  };

  KMeansResult best;
  for (int64_t run = 0; run < options.n_init; ++run) {
    cancel.check();
    const std::vector<int64_t> init = kmeans_plus_plus(x, n, d, k, run_seed(options.seed, run), threads, cancel);
    std::vector<float> C(static_cast<size_t>(k * d));
    for (int64_t c = 0; c < k; ++c)
      std::memcpy(C.data() + c * d, x + init[c] * d, sizeof(float) * static_cast<size_t>(d));
    std::fill(labels.begin(), labels.end(), -1);
    int64_t iterations = 0;
    for (int64_t it = 1; it <= options.max_iter; ++it) {
      const auto [inertia, changed] = assign(C);
      (void)inertia;
      if (it > 1 && changed == 0) break;  // the centres are already the means of this assignment
      const double shift = update(C);
      iterations = it;
      if (shift <= tol) break;
    }
    const auto [inertia, changed] = assign(C);
    (void)changed;
    if (options.verbose) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "kmeans: run %lld/%lld inertia %.8g after %lld iterations",
                    static_cast<long long>(run + 1), static_cast<long long>(options.n_init), inertia,
                    static_cast<long long>(iterations));
      log_line(buf);
    }
    best.run_inertia.push_back(inertia);
    if (run == 0 || inertia < best.inertia) {
      best.centroids = C;
      best.labels = labels;
      best.inertia = inertia;
      best.iterations = iterations;
      best.best_run = run;
    }
  }
  best.sizes.assign(static_cast<size_t>(k), 0);
  for (int32_t l : best.labels) ++best.sizes[l];
  return best;
}

void canonical_row_order(std::vector<float>& x, int64_t n, int64_t d) {
  if (n < 2 || d <= 0) return;
  // A 64-bit hash of each row's bit patterns, then the bytes themselves on a collision:
  // a total order on contents, so equal multisets of rows sort to the same array.
  std::vector<uint64_t> key(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(d);
    for (int64_t j = 0; j < d; ++j) {
      uint32_t bits;
      std::memcpy(&bits, &x[i * d + j], 4);
      h = (h ^ bits) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
    }
    key[i] = h;
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (key[a] != key[b]) return key[a] < key[b];
    return std::memcmp(&x[a * d], &x[b * d], sizeof(float) * static_cast<size_t>(d)) < 0;
  });
  std::vector<float> sorted(x.size());
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(&sorted[r * d], &x[order[r] * d], sizeof(float) * static_cast<size_t>(d));
  x.swap(sorted);
}

namespace {

// The centred (or standardized) rows must keep every squared distance, and so the
// float arithmetic of training and of cluster(), inside the range of real: the bound is
// the sum over dimensions of the squared value range, in double.
void require_distances_in_range(const std::vector<float>& X, int64_t n, int64_t d, bool standardized) {
  double bound = 0;
  for (int64_t j = 0; j < d; ++j) {
    double lo = 0, hi = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = X[i * d + j];
      if (!std::isfinite(v)) {
        lo = -std::numeric_limits<double>::infinity();
        break;
      }
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    bound += (hi - lo) * (hi - lo);
  }
  if (!(bound <= 1e37))
    fail(ErrorKind::DataException,
         std::string("kmeans: feature values are too large: distances between feature vectors exceed the range of "
                     "real; scale the features down") +
             (standardized ? "" : " or pass {\"standardize\": true}"));
}

}  // namespace

void build_kmeans_model(KMeansState& state, const KMeansOptions& options, int threads, const CancelToken& cancel,
                        const std::function<void(const std::string&)>& log_line) {
  auto t0 = std::chrono::steady_clock::now();
  threads = resolve_threads(threads);
  const int64_t n = state.rows(), d = state.dimension();
  if (n == 0) fail(ErrorKind::InvalidParameter, "kmeans: no rows to cluster");
  if (options.k > n)
    fail(ErrorKind::InvalidParameter, "kmeans: k = " + std::to_string(options.k) + " is more than the " +
                                          std::to_string(n) + " rows");
  std::vector<float> X = state.matrix();
  state.clear();
  // Rows in an order given by their contents alone: the model then depends on which
  // rows were aggregated, not on the order they arrived in (a parallel plan, a table
  // rewritten by VACUUM FULL, another join order).
  canonical_row_order(X, n, d);
  cancel.check();

  // Standardize (x - mean) / scale with float mean and scale, exactly as kmeans_assign
  // will; otherwise only centre the data for precision and shift the centres back.
  std::vector<double> mean(static_cast<size_t>(d), 0.0), var(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += X[i * d + j];
  for (double& m : mean) m /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) var[j] += (X[i * d + j] - mean[j]) * (X[i * d + j] - mean[j]);
  std::vector<float> fmean(static_cast<size_t>(d)), fscale(static_cast<size_t>(d), 1.0f);
  for (int64_t j = 0; j < d; ++j) {
    fmean[j] = static_cast<float>(mean[j]);
    const double sd = std::sqrt(var[j] / static_cast<double>(n));
    if (options.standardize && sd > 0 && std::isfinite(static_cast<float>(sd))) fscale[j] = static_cast<float>(sd);
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) X[i * d + j] = (X[i * d + j] - fmean[j]) / fscale[j];
  require_distances_in_range(X, n, d, options.standardize);
  cancel.check();

  KMeansResult res = kmeans_fit(X.data(), n, d, options, threads, cancel, log_line);
  X = {};
  if (!options.standardize)
    for (int64_t c = 0; c < options.k; ++c)
      for (int64_t j = 0; j < d; ++j) res.centroids[c * d + j] += fmean[j];

  auto builder = std::make_unique<ModelBuilder>();
  ModelHeader& h = builder->header;
  h.kind = static_cast<uint16_t>(ModelKind::KMeans);
  h.user_key_kind = static_cast<uint8_t>(KeyKind::Int);
  h.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  h.factors = static_cast<uint32_t>(d);
  h.n_users = 0;
  h.n_items = 0;
  h.n_interactions = static_cast<uint64_t>(n);
  std::string runs;
  for (double r : res.run_inertia) runs += (runs.empty() ? "" : ", ") + json_number(r);
  std::string params = "{\"k\": " + std::to_string(options.k) + ", \"n_init\": " + std::to_string(options.n_init) +
                       ", \"max_iter\": " + std::to_string(options.max_iter) + ", \"tol\": " + json_number(options.tol) +
                       ", \"seed\": " + std::to_string(options.seed) +
                       ", \"standardize\": " + (options.standardize ? "true" : "false") +
                       ", \"rows\": " + std::to_string(n) + ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
                       ", \"dimension\": " + std::to_string(d) + ", \"inertia\": " + json_number(res.inertia) +
                       ", \"iterations\": " + std::to_string(res.iterations) +
                       ", \"best_run\": " + std::to_string(res.best_run) + ", \"run_inertia\": [" + runs + "]}";
  builder->add(SectionTag::Params, std::vector<uint8_t>(params.begin(), params.end()));
  builder->add(SectionTag::UserKeys, {});
  builder->add(SectionTag::ItemKeys, {});
  builder->add_array(SectionTag::Centroids, res.centroids);
  builder->add_array(SectionTag::ClusterSizes, res.sizes);
  if (options.standardize) {
    builder->add_array(SectionTag::FeatureMean, fmean);
    builder->add_array(SectionTag::FeatureScale, fscale);
  }
  h.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (options.verbose) log_line("kmeans: done in " + std::to_string(h.train_seconds) + " s");
  state.result = std::move(builder);
}

// ---------------------------------------------------------------- serving

namespace {

struct KMeansView {
  const float* centroids;
  const float* mean;
  const float* scale;
  int64_t k, d;
};

KMeansView kmeans_view(const ModelView& m) {
  if (m.kind() != ModelKind::KMeans)
    fail(ErrorKind::NotSupported, std::string("this needs a kmeans model; this model is ") + model_kind_name(m.kind()));
  uint64_t len = 0;
  KMeansView v{};
  v.centroids = m.section_as<float>(SectionTag::Centroids);
  m.section(SectionTag::ClusterSizes, &len);
  v.k = static_cast<int64_t>(len / 8);
  v.d = m.factors();
  v.mean = m.section_as<float>(SectionTag::FeatureMean);
  v.scale = m.section_as<float>(SectionTag::FeatureScale);
  if (!v.centroids || v.k < 1 || v.d < 1) fail(ErrorKind::InvalidModel, "kmeans model without centroids");
  return v;
}

}  // namespace

int64_t kmeans_dimension(const ModelView& model) { return kmeans_view(model).d; }
int64_t kmeans_clusters(const ModelView& model) { return kmeans_view(model).k; }

int32_t kmeans_assign(const ModelView& model, const float* x, int d, float* squared_distance) {
  KMeansView v = kmeans_view(model);
  if (d != v.d)
    fail(ErrorKind::InvalidParameter, "the feature vector has " + std::to_string(d) + " elements; the model expects " +
                                          std::to_string(v.d));
  for (int j = 0; j < d; ++j)
    if (!std::isfinite(x[j])) bad_value(j, x[j]);
  thread_local std::vector<float> buf;
  const float* p = x;
  if (v.mean && v.scale) {
    buf.resize(static_cast<size_t>(d));
    for (int j = 0; j < d; ++j) buf[j] = (x[j] - v.mean[j]) / v.scale[j];
    p = buf.data();
  }
  int32_t best = 0;
  float best_d = sqdist(p, v.centroids, d);
  for (int64_t c = 1; c < v.k; ++c) {
    const float dd = sqdist(p, v.centroids + c * d, d);
    if (dd < best_d) {
      best_d = dd;
      best = static_cast<int32_t>(c);
    }
  }
  if (squared_distance) *squared_distance = best_d;
  return best;
}

int32_t kmeans_assign(const ModelView& model, const float* x, int d) { return kmeans_assign(model, x, d, nullptr); }

void kmeans_centroid(const ModelView& model, int32_t cluster, bool original_units, float* out) {
  KMeansView v = kmeans_view(model);
  if (cluster < 0 || cluster >= v.k)
    fail(ErrorKind::InvalidParameter, "cluster " + std::to_string(cluster) + " is out of range");
  const float* c = v.centroids + cluster * v.d;
  for (int64_t j = 0; j < v.d; ++j)
    out[j] = (original_units && v.mean && v.scale) ? c[j] * v.scale[j] + v.mean[j] : c[j];
}

}  // namespace recsys

// Standalone benchmark of the core ALS trainer on synthetic skewed data (not a unit test).
// Build and run from the repository root:
//   g++ -std=c++17 -O3 -march=native -DEIGEN_DONT_PARALLELIZE -DEIGEN_NO_DEBUG -I/usr/include/eigen3 -Isrc/core
//       test/bench_als_core.cpp src/core/als.cpp src/core/sparse.cpp src/core/parallel.cpp -pthread -o /tmp/bench_als
//   /tmp/bench_als [users=50000] [items=10000] [nnz=1000000] [factors=64] [iterations=15] [threads=2] [loss=0]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "als.h"
#include "sparse.h"

using namespace recsys;

// Builds a users x items CSR matrix with Zipf-like item popularity (exponent 0.9) and
// log-normal user activity; weights are integers 1..4.
static CsrMatrix make_data(int64_t users, int64_t items, int64_t nnz, uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Item popularity ~ 1 / rank^0.9, items in shuffled order.
  std::vector<double> item_w(static_cast<size_t>(items));
  for (int64_t i = 0; i < items; ++i) item_w[i] = 1.0 / std::pow(static_cast<double>(i + 1), 0.9);
  std::shuffle(item_w.begin(), item_w.end(), rng);
  std::discrete_distribution<int32_t> pick_item(item_w.begin(), item_w.end());
  // User activity ~ log-normal, normalized to the requested total.
  std::lognormal_distribution<double> activity(0.0, 1.2);
  std::vector<double> act(static_cast<size_t>(users));
  double sum = 0;
  for (auto& a : act) sum += (a = activity(rng));
  std::uniform_real_distribution<float> weight(1.0f, 5.0f);

  CsrMatrix m;
  m.rows = users;
  m.cols = items;
  m.indptr.push_back(0);
  std::vector<std::pair<int32_t, float>> row;
  std::vector<int64_t> seen(static_cast<size_t>(items), -1);  // last user that picked each item
  for (int64_t u = 0; u < users; ++u) {
    // Distinct items per user, so the matrix has close to nnz entries.
    const int64_t n = std::min<int64_t>(items / 2, std::max<int64_t>(1, std::llround(act[u] / sum * nnz)));
    row.clear();
    while (static_cast<int64_t>(row.size()) < n) {
      const int32_t i = pick_item(rng);
      if (seen[i] == u) continue;
      seen[i] = u;
      row.emplace_back(i, std::floor(weight(rng)));
    }
    std::sort(row.begin(), row.end());
    for (const auto& [i, w] : row) {
      m.indices.push_back(i);
      m.values.push_back(w);
    }
    m.indptr.push_back(m.nnz());
  }
  return m;
}

int main(int argc, char** argv) {
  auto arg = [&](int i, int64_t fallback) { return argc > i ? std::atoll(argv[i]) : fallback; };
  const int64_t users = arg(1, 50000), items = arg(2, 10000), nnz = arg(3, 1000000);
  AlsParams params;
  params.factors = static_cast<int>(arg(4, 64));
  params.iterations = static_cast<int>(arg(5, 15));
  const int threads = static_cast<int>(arg(6, 2));
  params.compute_loss = arg(7, 0) != 0;

  const CsrMatrix ui = make_data(users, items, nnz, 7);
  int64_t max_row = 0;
  for (int64_t u = 0; u < ui.rows; ++u) max_row = std::max(max_row, ui.indptr[u + 1] - ui.indptr[u]);
  auto t0 = std::chrono::steady_clock::now();
  const CsrMatrix iu = transpose(ui);
  auto t1 = std::chrono::steady_clock::now();
  int64_t max_col = 0;
  for (int64_t i = 0; i < iu.rows; ++i) max_col = std::max(max_col, iu.indptr[i + 1] - iu.indptr[i]);
  std::printf("data: %lld users x %lld items, nnz %lld (max per user %lld, per item %lld); transpose %.3f s\n",
              (long long)users, (long long)items, (long long)ui.nnz(), (long long)max_row, (long long)max_col,
              std::chrono::duration<double>(t1 - t0).count());

  std::vector<float> x(static_cast<size_t>(users * params.factors)), y(static_cast<size_t>(items * params.factors));
  CancelToken cancel;
  double iter_sum = 0;
  t0 = std::chrono::steady_clock::now();
  train_implicit_als(ui, iu, params, threads, cancel, x.data(), y.data(), [&](const IterationStats& s) {
    iter_sum += s.seconds;
    if (params.compute_loss) std::printf("  iteration %2d loss %.6f  %.3f s\n", s.iteration, s.loss, s.seconds);
  });
  t1 = std::chrono::steady_clock::now();
  std::printf("train: factors %d, iterations %d, threads %d, loss %s: %.3f s total (%.3f s in iterations)\n",
              params.factors, params.iterations, threads, params.compute_loss ? "on" : "off",
              std::chrono::duration<double>(t1 - t0).count(), iter_sum);
  const double final_loss = implicit_als_loss(ui, params, threads, cancel, x.data(), y.data());
  std::printf("final loss %.6f\n", final_loss);
  return 0;
}

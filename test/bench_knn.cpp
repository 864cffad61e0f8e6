// Item-kNN benchmark of the core alone: training time and peak memory on generated skewed
// interactions, then knn_recommend_user / knn_similar_items latency. The same through SQL
// (and MovieLens-100K quality): test/bench_knn.sh.
//
//   g++ -O3 -march=native -std=c++17 -DEIGEN_DONT_PARALLELIZE -isystem /usr/include/eigen3 -Isrc/core \
//       test/bench_knn.cpp src/core/{knn,keys,model_format,training,options,serving,sparse,parallel,topk,als,content}.cpp \
//       -pthread -o /tmp/bench_knn
//   /tmp/bench_knn 1000000 50000 10000          # interactions users items [threads=2] [options json]
//   /tmp/bench_knn 10000000 200000 50000
//
// Items follow a Zipf(0.9) popularity, users a log-normal(0, 1) activity, weights 1..5.
// Peak RSS is the process's VmHWM (run one size per process). CPU time is reported beside
// wall time because the machine may be shared.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "knn.h"
#include "model_format.h"
#include "training.h"

using namespace recsys;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

static long status_kb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}

static std::vector<double> cdf(std::vector<double> w) {
  double s = 0;
  for (double& x : w) x = (s += x);
  for (double& x : w) x /= s;
  return w;
}

static int64_t draw(const std::vector<double>& c, std::mt19937_64& rng) {
  double u = (rng() >> 11) * 0x1.0p-53;
  return std::min<int64_t>(std::lower_bound(c.begin(), c.end(), u) - c.begin(), int64_t(c.size()) - 1);
}

static void percentiles(const char* what, std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))]; };
  std::printf("%-22s p50 %8.1f us   p99 %8.1f us   max %8.1f us  (%zu calls)\n", what, at(0.5), at(0.99), us.back(),
              us.size());
}

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const int64_t nu = argc > 2 ? std::atoll(argv[2]) : 50000;
  const int64_t ni = argc > 3 ? std::atoll(argv[3]) : 10000;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  const std::string json = argc > 5 ? argv[5] : "{\"verbose\": true}";

  std::mt19937_64 rng(12345);
  std::vector<double> iw(ni), uw(nu);
  for (int64_t i = 0; i < ni; ++i) iw[i] = std::pow(double(i + 1), -0.9);
  std::lognormal_distribution<double> act(0.0, 1.0);
  for (int64_t u = 0; u < nu; ++u) uw[u] = act(rng);
  const std::vector<double> ic = cdf(iw), uc = cdf(uw);
  // Item ids scattered so popularity is not correlated with the key order.
  std::vector<int64_t> item_id(ni);
  for (int64_t i = 0; i < ni; ++i) item_id[i] = i;
  std::shuffle(item_id.begin(), item_id.end(), rng);

  auto t0 = Clock::now();
  TrainingState st(KeyKind::Int, 20, KeyKind::Int, 20);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t u = draw(uc, rng), i = item_id[draw(ic, rng)];
    st.add(st.users.intern_int(u), st.items.intern_int(i), double(1 + rng() % 5));
  }
  const double ingest = since(t0);
  const long rss_before = status_kb("VmHWM:");
  std::printf("data: %lld interactions, %u users, %u items; ingest %.2f s; VmHWM after ingest %.0f MB\n",
              static_cast<long long>(n), st.users.size(), st.items.size(), ingest, rss_before / 1024.0);

  ItemKnnOptions o = parse_item_knn_options(json);
  CancelToken cancel;
  t0 = Clock::now();
  const std::clock_t c0 = std::clock();
  build_item_knn_model(st, o, threads, cancel, [](const std::string& l) { std::printf("  %s\n", l.c_str()); });
  const double train = since(t0);
  const double train_cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
  const long hwm_built = status_kb("VmHWM:");
  std::printf("VmHWM after building the model (before writing it out): %.0f MB\n", hwm_built / 1024.0);
  const uint64_t size = st.result->total_size();
  std::vector<uint64_t> words((size + 7) / 8);
  uint8_t* bytes = reinterpret_cast<uint8_t*>(words.data());
  st.result->write(bytes);
  st.result.reset();
  const long rss_after = status_kb("VmHWM:");
  std::printf("train_item_knn (%s, %d threads): %.2f s wall, %.2f s CPU (all threads); model %.1f MB; VmHWM %.0f MB\n",
              json.c_str(), threads, train, train_cpu, size / 1048576.0, rss_after / 1024.0);

  t0 = Clock::now();
  validate_model(bytes, size);
  std::printf("validate_model: %.3f s\n", since(t0));

  ModelView m = ModelView::open(bytes, size);
  std::vector<Scored> out;
  std::vector<double> us;
  const int calls = 20000;
  for (int c = 0; c < calls; ++c) {
    int64_t u = static_cast<int64_t>(rng() % m.n_users());
    auto t = Clock::now();
    knn_recommend_user(m, u, 10, true, out);
    us.push_back(since(t) * 1e6);
  }
  percentiles("knn_recommend_user", us);
  us.clear();
  for (int c = 0; c < calls; ++c) {
    int64_t i = static_cast<int64_t>(rng() % m.n_items());
    auto t = Clock::now();
    knn_similar_items(m, i, 10, out);
    us.push_back(since(t) * 1e6);
  }
  percentiles("knn_similar_items", us);
  return 0;
}

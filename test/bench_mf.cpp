// Standalone benchmark of the biased-MF trainer (not a unit test).
// Build from the repository root:
//   g++ -O3 -march=native -std=c++17 -isystem /usr/include/eigen3 -Isrc/core test/bench_mf.cpp src/core/*.cpp -pthread -o /tmp/bench_mf
// Modes (the first argument; the rest are key=value overrides of MfParams):
//   /tmp/bench_mf ml100k [dir=../shared/data/ml-100k]   the 5 official folds u1..u5 (.base / .test):
//                                                       mean test RMSE / MAE and training time
//   /tmp/bench_mf file=ratings.tsv [test_fraction=0.1]  a "user item rating [ts]" file (tab or space),
//                                                       seeded random split
//   /tmp/bench_mf generated [users=50000 items=10000 nnz=1000000 rank=10 noise=0.5]
//                                                       true low rank + biases + Gaussian noise; RMSE
//                                                       on 100k fresh ratings of the same model
//                                                       (epochs defaults to 20 here)
// Overrides (the train_mf option names): factors= epochs= learning_rate= bias_learning_rate= lr_schedule=
//   lr_decay= reg_factors= reg_exponent= reg_bias= init_scale= seed= holdout_fraction= patience= blocks=
// and threads= (default 2), verbose=1 (per-epoch lines), baseline=1 (train_baseline instead),
// curve=N (ml100k: mean test RMSE after every N epochs, to pick `epochs`).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "metrics.h"
#include "mf.h"

using namespace recsys;

namespace {

struct Triple {
  int64_t user, item;
  float rating;
};

std::map<std::string, std::string> g_args;

std::string arg(const std::string& key, const std::string& fallback) {
  auto it = g_args.find(key);
  return it == g_args.end() ? fallback : it->second;
}
double argd(const std::string& key, double fallback) {
  auto it = g_args.find(key);
  return it == g_args.end() ? fallback : std::atof(it->second.c_str());
}

// The train_mf option names (see mf.h), as key=value arguments.
MfParams params_from_args() {
  MfParams p;
  p.factors = static_cast<int>(argd("factors", p.factors));
  p.epochs = static_cast<int>(argd("epochs", p.epochs));
  p.learning_rate = static_cast<float>(argd("learning_rate", p.learning_rate));
  p.bias_learning_rate = static_cast<float>(argd("bias_learning_rate", p.bias_learning_rate));
  p.reg_factors = static_cast<float>(argd("reg_factors", p.reg_factors));
  p.reg_exponent = argd("reg_exponent", p.reg_exponent);
  p.reg_bias = static_cast<float>(argd("reg_bias", p.reg_bias));
  p.lr_decay = static_cast<float>(argd("lr_decay", p.lr_decay));
  p.init_scale = static_cast<float>(argd("init_scale", p.init_scale));
  p.seed = static_cast<uint64_t>(argd("seed", static_cast<double>(p.seed)));
  p.holdout_fraction = argd("holdout_fraction", p.holdout_fraction);
  p.patience = static_cast<int>(argd("patience", p.patience));
  p.blocks = static_cast<int>(argd("blocks", p.blocks));
  const std::string s = arg("lr_schedule", lr_schedule_name(p.schedule));
  p.schedule = s == "constant" ? LrSchedule::Constant : s == "adagrad" ? LrSchedule::AdaGrad : LrSchedule::Decay;
  return p;
}

std::vector<Triple> read_ratings(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    std::exit(1);
  }
  std::vector<Triple> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    Triple t;
    if (ls >> t.user >> t.item >> t.rating) out.push_back(t);
  }
  return out;
}

// Index maps built from the training triples; unknown test keys map to -1.
struct Dataset {
  std::unordered_map<int64_t, int64_t> users, items;
  CsrMatrix ratings;
};

Dataset build(const std::vector<Triple>& train) {
  Dataset d;
  std::vector<int64_t> ukeys, ikeys;
  for (auto& t : train) {
    ukeys.push_back(t.user);
    ikeys.push_back(t.item);
  }
  auto index = [](std::vector<int64_t>& keys, std::unordered_map<int64_t, int64_t>& map) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    for (size_t k = 0; k < keys.size(); ++k) map[keys[k]] = static_cast<int64_t>(k);
  };
  index(ukeys, d.users);
  index(ikeys, d.items);
  // (user, item) -> averaged rating, as build_rating_matrix does.
  std::vector<std::tuple<int64_t, int64_t, float>> e;
  e.reserve(train.size());
  for (auto& t : train) e.emplace_back(d.users[t.user], d.items[t.item], t.rating);
  std::sort(e.begin(), e.end());
  CsrMatrix& m = d.ratings;
  m.rows = static_cast<int64_t>(ukeys.size());
  m.cols = static_cast<int64_t>(ikeys.size());
  m.indptr.assign(static_cast<size_t>(m.rows) + 1, 0);
  for (size_t k = 0; k < e.size();) {
    size_t j = k;
    double s = 0;
    for (; j < e.size() && std::get<0>(e[j]) == std::get<0>(e[k]) && std::get<1>(e[j]) == std::get<1>(e[k]); ++j)
      s += std::get<2>(e[j]);
    m.indices.push_back(static_cast<int32_t>(std::get<1>(e[k])));
    m.values.push_back(static_cast<float>(s / static_cast<double>(j - k)));
    m.indptr[std::get<0>(e[k]) + 1] = m.nnz();
    k = j;
  }
  for (int64_t u = 0; u < m.rows; ++u) m.indptr[u + 1] = std::max(m.indptr[u + 1], m.indptr[u]);
  return d;
}

RatingMetrics evaluate(const MfModel& model, const Dataset& d, const std::vector<Triple>& test) {
  RatingMetrics r;
  for (auto& t : test) {
    auto u = d.users.find(t.user);
    auto i = d.items.find(t.item);
    r.add(predict_rating(model, u == d.users.end() ? -1 : u->second, i == d.items.end() ? -1 : i->second), t.rating);
  }
  return r;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Outcome {
  double rmse, mae, seconds;
  int best_epoch;
};

Outcome run(const std::vector<Triple>& train, const std::vector<Triple>& test, const MfParams& p, int threads,
            bool baseline, bool verbose) {
  const double t0 = now();
  const Dataset d = build(train);
  const double t1 = now();
  CancelToken cancel;
  MfModel model;
  if (baseline) {
    model = train_baseline(d.ratings, BaselineParams(), threads, cancel);
  } else {
    model = train_biased_mf(d.ratings, p, threads, cancel, [&](const MfEpochStats& s) {
      if (verbose)
        std::printf("    epoch %3d  lr %.5f  train %.5f  valid %.5f  %.3f s\n", s.epoch, s.learning_rate, s.train_rmse,
                    s.validation_rmse, s.seconds);
    });
  }
  const double t2 = now();
  const RatingMetrics r = evaluate(model, d, test);
  (void)t0;
  return Outcome{r.rmse(), r.mae(), t2 - t1, model.best_epoch};
}

void print_params(const MfParams& p, int threads) {
  std::printf("params: factors=%d epochs=%d learning_rate=%g bias_learning_rate=%g lr_schedule=%s lr_decay=%g "
              "reg_factors=%g reg_exponent=%g reg_bias=%g init_scale=%g seed=%llu holdout_fraction=%g patience=%d "
              "blocks=%d threads=%d  (negative bias_learning_rate = learning_rate/4, init_scale 0 = 0.1/sqrt(f))\n",
              p.factors, p.epochs, p.learning_rate, p.bias_learning_rate, lr_schedule_name(p.schedule), p.lr_decay,
              p.reg_factors, p.reg_exponent, p.reg_bias, p.init_scale, static_cast<unsigned long long>(p.seed),
              p.holdout_fraction, p.patience, p.blocks, threads);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "generated";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (eq == std::string::npos)
      mode = a;
    else
      g_args[a.substr(0, eq)] = a.substr(eq + 1);
  }
  if (g_args.count("file")) mode = "file";
  const MfParams p = params_from_args();
  const int threads = static_cast<int>(argd("threads", 2));
  const bool verbose = argd("verbose", 0) != 0;
  const bool baseline = argd("baseline", 0) != 0;
  if (!baseline && mode != "generated") print_params(p, threads);

  if (mode == "ml100k" && g_args.count("curve")) {
    // Mean test RMSE after every `curve` epochs (a run of E epochs is a prefix of a longer
    // run: the schedule depends only on the epoch index).
    const std::string dir = arg("dir", "../shared/data/ml-100k");
    const int step = static_cast<int>(argd("curve", 10));
    std::vector<std::vector<Triple>> trains, tests;
    for (int fold = 1; fold <= 5; ++fold) {
      trains.push_back(read_ratings(dir + "/u" + std::to_string(fold) + ".base"));
      tests.push_back(read_ratings(dir + "/u" + std::to_string(fold) + ".test"));
    }
    for (int e = step; e <= p.epochs; e += step) {
      MfParams q = p;
      q.epochs = e;
      double rmse = 0;
      for (int fold = 0; fold < 5; ++fold) rmse += run(trains[fold], tests[fold], q, threads, false, false).rmse / 5;
      std::printf("  epochs %4d: mean RMSE %.4f\n", e, rmse);
    }
    return 0;
  }
  if (mode == "ml100k") {
    const std::string dir = arg("dir", "../shared/data/ml-100k");
    double rmse = 0, mae = 0, secs = 0;
    for (int fold = 1; fold <= 5; ++fold) {
      const auto train = read_ratings(dir + "/u" + std::to_string(fold) + ".base");
      const auto test = read_ratings(dir + "/u" + std::to_string(fold) + ".test");
      const Outcome o = run(train, test, p, threads, baseline, verbose);
      std::printf("  u%d: %zu train, %zu test: RMSE %.4f MAE %.4f (%.3f s, best epoch %d)\n", fold, train.size(),
                  test.size(), o.rmse, o.mae, o.seconds, o.best_epoch);
      rmse += o.rmse / 5;
      mae += o.mae / 5;
      secs += o.seconds / 5;
    }
    std::printf("%s ml-100k u1..u5: mean RMSE %.4f  mean MAE %.4f  mean train time %.3f s\n",
                baseline ? "baseline" : "biased_mf", rmse, mae, secs);
    return 0;
  }

  if (mode == "file") {
    auto all = read_ratings(arg("file", ""));
    std::mt19937_64 rng(static_cast<uint64_t>(argd("split_seed", 1)));
    std::shuffle(all.begin(), all.end(), rng);
    const size_t n_test = static_cast<size_t>(argd("test_fraction", 0.1) * static_cast<double>(all.size()));
    std::vector<Triple> test(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n_test));
    std::vector<Triple> train(all.begin() + static_cast<std::ptrdiff_t>(n_test), all.end());
    const Outcome o = run(train, test, p, threads, baseline, verbose);
    std::printf("%s: %zu train, %zu test: RMSE %.4f MAE %.4f, train %.3f s\n", arg("file", "").c_str(), train.size(),
                test.size(), o.rmse, o.mae, o.seconds);
    return 0;
  }

  // Generated: r = 3.5 + b_u + b_i + x_u . y_i + noise (continuous, unclipped); b ~ N(0, 0.5²),
  // x_u . y_i with std 0.7.
  const int64_t users = static_cast<int64_t>(argd("users", 50000)), items = static_cast<int64_t>(argd("items", 10000));
  const int64_t nnz = static_cast<int64_t>(argd("nnz", 1000000));
  const int rank = static_cast<int>(argd("rank", 10));
  const double noise = argd("noise", 0.5);
  std::mt19937_64 rng(7);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::vector<float> bu(users), bi(items), X(users * rank), Y(items * rank);
  for (auto& v : bu) v = 0.5f * n01(rng);
  for (auto& v : bi) v = 0.5f * n01(rng);
  const float fs = std::sqrt(0.7f / std::sqrt(static_cast<float>(rank)));  // x.y has std 0.7
  for (auto& v : X) v = n01(rng) * fs;
  for (auto& v : Y) v = n01(rng) * fs;
  std::uniform_int_distribution<int64_t> pu(0, users - 1), pi(0, items - 1);
  std::normal_distribution<double> eps(0.0, noise);
  auto rating = [&](int64_t u, int64_t i) {
    double s = 3.5 + bu[u] + bi[i];
    for (int j = 0; j < rank; ++j) s += X[u * rank + j] * Y[i * rank + j];
    return static_cast<float>(s + eps(rng));
  };
  std::vector<Triple> train, test;
  train.reserve(nnz);
  for (int64_t k = 0; k < nnz; ++k) {
    const int64_t u = pu(rng), i = pi(rng);
    train.push_back(Triple{u, i, rating(u, i)});
  }
  for (int64_t k = 0; k < 100000; ++k) {
    const int64_t u = pu(rng), i = pi(rng);
    test.push_back(Triple{u, i, rating(u, i)});
  }
  const double t0 = now();
  const Dataset d = build(train);
  const double t1 = now();
  CancelToken cancel;
  double epoch_sum = 0;
  MfParams pg = p;
  if (!g_args.count("epochs")) pg.epochs = 20;  // the LibMF comparison: 20 epochs
  print_params(pg, threads);
  const MfModel model = train_biased_mf(d.ratings, pg, threads, cancel, [&](const MfEpochStats& s) {
    epoch_sum += s.seconds;
    if (verbose) std::printf("    epoch %3d  train %.5f  %.3f s\n", s.epoch, s.train_rmse, s.seconds);
  });
  const double t2 = now();
  const RatingMetrics r = evaluate(model, d, test);
  const RatingMetrics rb = evaluate(train_baseline(d.ratings, BaselineParams(), threads, cancel), d, test);
  std::printf("generated: %lld users x %lld items, %lld ratings (%lld distinct), rank %d, noise %.2f\n",
              (long long)users, (long long)items, (long long)nnz, (long long)d.ratings.nnz(), rank, noise);
  std::printf("  CSR build %.3f s; train_biased_mf %.3f s (epochs %.3f s); last train RMSE %.4f; test RMSE %.4f "
              "MAE %.4f\n",
              t1 - t0, t2 - t1, epoch_sum, model.history.empty() ? NAN : model.history.back().train_rmse, r.rmse(),
              r.mae());
  std::printf("  (noise floor %.2f; baseline mu + b_u + b_i: test RMSE %.4f)\n", noise, rb.rmse());
  return 0;
}

// Helper program of the benchmark suite (test/bench_suite.sh); not a unit test.
//
//   bench_tool gen ROWS [SEED]      writes a MovieLens-20M-shaped interaction table as
//                                   COPY text (user_id, item_id, weight) to stdout
//   bench_tool gemm [THREADS]       the machine's float32 matrix-multiply rate (Eigen GEMM)
//   bench_tool serve FILE [THREADS] the core serving kernels on a model exported with
//                                   COPY (SELECT model ...) TO FILE (FORMAT binary)
//
// Output lines are "key value" pairs the suite reads with awk.
//
// The generated data imitates MovieLens-20M (138,493 users, 26,744 movies, 20,000,263
// ratings) scaled to ROWS: users = 138,493 * ROWS / 20M, items = 26,744 * sqrt(ROWS / 20M)
// (at least 100 each); every user has at least 20 / (20M / ROWS) rows, activity is
// 20 + log-normal (median 68 and mean 144 ratings per user at full scale, as in ML-20M),
// capped at a third of the catalogue; item popularity falls off as (rank + 100)^-1.4
// (the top item gets ~0.45 % of all rows, ML-20M's gets 0.33 %); no user rates an item
// twice; ratings 0.5..5 in half steps with ML-20M's frequencies; item IDs are distinct
// random numbers in [1, 5 * items] (ML's movieIds reach 131,262), user IDs 1..users,
// rows grouped by user as in ratings.csv.
#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "knn.h"
#include "model_format.h"
#include "parallel.h"
#include "serving.h"

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// xoshiro256** seeded by splitmix64: fast and good enough for synthetic data.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& v : s) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      v = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  uint64_t below(uint64_t n) { return static_cast<uint64_t>(uniform() * static_cast<double>(n)); }
};

// Walker's alias table: O(1) draws from a discrete distribution.
struct AliasTable {
  std::vector<double> prob;
  std::vector<uint32_t> alias;
  explicit AliasTable(const std::vector<double>& w) : prob(w.size()), alias(w.size()) {
    const size_t n = w.size();
    double sum = 0;
    for (double x : w) sum += x;
    std::vector<double> p(n);
    std::vector<uint32_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      p[i] = w[i] * static_cast<double>(n) / sum;
      (p[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
    }
    while (!small.empty() && !large.empty()) {
      uint32_t s = small.back(), l = large.back();
      small.pop_back();
      prob[s] = p[s];
      alias[s] = l;
      p[l] -= 1.0 - p[s];
      if (p[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (uint32_t i : large) prob[i] = 1.0, alias[i] = i;
    for (uint32_t i : small) prob[i] = 1.0, alias[i] = i;
  }
  uint32_t draw(Rng& rng) const {
    const double u = rng.uniform() * static_cast<double>(prob.size());
    const uint32_t i = static_cast<uint32_t>(u);
    return (u - i) < prob[i] ? i : alias[i];
  }
};

// Appends the decimal form of v.
char* put_uint(char* p, uint64_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

int generate(int64_t rows, uint64_t seed) {
  const double scale = static_cast<double>(rows) / 20e6;
  const int64_t users = std::max<int64_t>(100, std::llround(138493 * scale));
  const int64_t items = std::max<int64_t>(100, std::llround(26744 * std::sqrt(scale)));
  Rng rng(seed);
  std::mt19937_64 mt(seed);

  // Activity: 20 + log-normal(median 48, mean 124), scaled to `rows`, capped.
  std::lognormal_distribution<double> excess(3.87, 1.378);
  std::vector<double> raw(static_cast<size_t>(users));
  double raw_sum = 0;
  for (auto& a : raw) raw_sum += (a = 20.0 + excess(mt));
  const int64_t cap = std::max<int64_t>(1, items / 3);
  std::vector<int64_t> count(static_cast<size_t>(users));
  int64_t total = 0;
  for (int64_t u = 0; u < users; ++u) {
    count[u] = std::min(cap, std::max<int64_t>(1, std::llround(raw[u] * static_cast<double>(rows) / raw_sum)));
    total += count[u];
  }
  // Hit `rows` exactly: add or remove single rows at random users.
  while (total != rows) {
    const int64_t u = static_cast<int64_t>(rng.below(static_cast<uint64_t>(users)));
    if (total < rows && count[u] < cap) ++count[u], ++total;
    if (total > rows && count[u] > 1) --count[u], --total;
  }

  // Popularity by rank; ranks are assigned to random distinct item IDs.
  std::vector<double> w(static_cast<size_t>(items));
  for (int64_t r = 0; r < items; ++r) w[r] = std::pow(static_cast<double>(r) + 100.0, -1.4);
  AliasTable pick(w);
  std::vector<uint32_t> ids;
  {
    std::vector<uint32_t> all(static_cast<size_t>(5 * items));
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint32_t>(i + 1);
    std::shuffle(all.begin(), all.end(), mt);
    ids.assign(all.begin(), all.begin() + items);
  }
  // ML-20M's rating frequencies for 0.5, 1.0, ..., 5.0.
  AliasTable rating({1.1, 3.3, 1.4, 7.2, 4.4, 21.3, 10.5, 27.7, 7.7, 14.5});
  static const char* kRatingText[] = {"0.5", "1", "1.5", "2", "2.5", "3", "3.5", "4", "4.5", "5"};

  std::vector<int64_t> last_user(static_cast<size_t>(items), -1);
  std::vector<uint32_t> row_items;
  std::vector<char> buf(1 << 20);
  char* p = buf.data();
  char* const flush_at = buf.data() + buf.size() - 64;
  for (int64_t u = 0; u < users; ++u) {
    row_items.clear();
    while (static_cast<int64_t>(row_items.size()) < count[u]) {
      const uint32_t r = pick.draw(rng);
      if (last_user[r] == u) continue;
      last_user[r] = u;
      row_items.push_back(ids[r]);
    }
    std::sort(row_items.begin(), row_items.end());
    for (uint32_t id : row_items) {
      p = put_uint(p, static_cast<uint64_t>(u + 1));
      *p++ = '\t';
      p = put_uint(p, id);
      *p++ = '\t';
      const char* t = kRatingText[rating.draw(rng)];
      while (*t) *p++ = *t++;
      *p++ = '\n';
      if (p >= flush_at) {
        if (std::fwrite(buf.data(), 1, p - buf.data(), stdout) != static_cast<size_t>(p - buf.data())) return 1;
        p = buf.data();
      }
    }
  }
  if (std::fwrite(buf.data(), 1, p - buf.data(), stdout) != static_cast<size_t>(p - buf.data())) return 1;
  std::fprintf(stderr, "generated %lld rows, %lld users, %lld items\n", static_cast<long long>(rows),
               static_cast<long long>(users), static_cast<long long>(items));
  return std::fflush(stdout) == 0 ? 0 : 1;
}

// Best single-thread GFLOP/s of an n x n x n float GEMM over `reps` runs.
double gemm_rate(int n, int reps) {
  Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n), c(n, n);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = now_seconds();
    c.noalias() = a * b;
    best = std::min(best, now_seconds() - t0);
  }
  volatile float sink = c(0, 0);
  (void)sink;
  return 2.0 * n * n * n / best / 1e9;
}

int gemm(int threads) {
  const int n = 1024;
  const double one = gemm_rate(n, 6);
  std::vector<double> rates(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { rates[t] = gemm_rate(n, 6); });
  for (auto& th : pool) th.join();
  double all = 0;
  for (double r : rates) all += r;
  std::printf("gemm_gflops_1thread %.2f\n", one);
  std::printf("gemm_gflops_all %.2f\n", all);
  std::printf("gemm_threads %d\n", threads);
  return 0;
}

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

int serve(const char* path, int threads) {
  FILE* f = std::fopen(path, "rb");
  if (!f) {
    std::perror(path);
    return 1;
  }
  std::vector<uint8_t> file;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) file.insert(file.end(), chunk, chunk + got);
  std::fclose(f);
  // Binary COPY: 11-byte signature, flags, extension length; a tuple of one field.
  if (file.size() < 25 || std::memcmp(file.data(), "PGCOPY\n\377\r\n", 11) != 0) {
    std::fprintf(stderr, "%s is not a binary COPY file\n", path);
    return 1;
  }
  size_t pos = 19 + be32(file.data() + 15);
  pos += 2;  // field count
  const uint32_t len = be32(file.data() + pos);
  pos += 4;
  const uint64_t size = uint64_t(len) + 4;
  std::vector<uint64_t> storage((size + 7) / 8);
  uint8_t* bytes = reinterpret_cast<uint8_t*>(storage.data());
  const uint32_t header = static_cast<uint32_t>(size) << 2;  // a 4-byte varlena header (little-endian)
  std::memcpy(bytes, &header, 4);
  std::memcpy(bytes + 4, file.data() + pos, len);
  const recsys::ModelView m = recsys::ModelView::open(bytes, size);
  const int64_t nu = m.n_users(), ni = m.n_items();
  const int fac = m.factors();
  // The same model with its stored similar-item lists hidden (their section tags moved
  // out of the known range), so similar_items scores every item: the yardstick the
  // lists are measured against (and what a model trained with similar_items 0 does).
  std::vector<uint64_t> scored_storage = storage;
  uint8_t* scored_bytes = reinterpret_cast<uint8_t*>(scored_storage.data());
  auto* table = reinterpret_cast<recsys::SectionEntry*>(scored_bytes + sizeof(recsys::ModelHeader));
  for (uint32_t s = 0; s < m.header->n_sections; ++s)
    if (table[s].tag >= uint32_t(recsys::SectionTag::SimilarIndptr) &&
        table[s].tag <= uint32_t(recsys::SectionTag::SimilarScores))
      table[s].tag += 1000;
  const recsys::ModelView scored = recsys::ModelView::open(scored_bytes, size);
  std::vector<recsys::Scored> out;
  Rng rng(7);
  const int calls = 3000;
  std::vector<double> t(calls);
  for (int c = 0; c < 200; ++c) recsys::recommend_user(m, static_cast<int64_t>(rng.below(nu)), 10, true, out);
  for (int c = 0; c < calls; ++c) {
    const int64_t u = static_cast<int64_t>(rng.below(nu));
    const double t0 = now_seconds();
    recsys::recommend_user(m, u, 10, true, out);
    t[c] = now_seconds() - t0;
  }
  std::printf("core_recommend_p50_ms %.4f\ncore_recommend_p99_ms %.4f\ncore_recommend_mean_ms %.4f\n",
              1e3 * percentile(t, 0.5), 1e3 * percentile(t, 0.99), 1e3 * mean(t));
  // recommend as served from the model cache: items in decreasing-norm order, stopping
  // once no item left can enter the top 10 (the same lists).
  recsys::ItemOrder order;
  recsys::build_item_order(m, order);
  for (int c = 0; c < calls; ++c) {
    const int64_t u = static_cast<int64_t>(rng.below(nu));
    const double t0 = now_seconds();
    recsys::recommend_user(m, u, 10, true, out, &order);
    t[c] = now_seconds() - t0;
  }
  std::printf("core_pruned_p50_ms %.4f\ncore_pruned_p99_ms %.4f\ncore_pruned_mean_ms %.4f\n",
              1e3 * percentile(t, 0.5), 1e3 * percentile(t, 0.99), 1e3 * mean(t));
  for (int c = 0; c < calls; ++c) {
    const int64_t i = static_cast<int64_t>(rng.below(ni));
    const double t0 = now_seconds();
    recsys::similar_items(scored, i, 10, out);
    t[c] = now_seconds() - t0;
  }
  std::printf("core_similar_p50_ms %.4f\ncore_similar_p99_ms %.4f\ncore_similar_mean_ms %.4f\n",
              1e3 * percentile(t, 0.5), 1e3 * percentile(t, 0.99), 1e3 * mean(t));
  // similar_items as served: the stored list (when the model has one).
  const bool has_lists = m.section(recsys::SectionTag::SimilarIndptr) != nullptr;
  for (int c = 0; c < calls; ++c) {
    const int64_t i = static_cast<int64_t>(rng.below(ni));
    const double t0 = now_seconds();
    recsys::similar_items(m, i, 10, out);
    t[c] = now_seconds() - t0;
  }
  std::printf("core_similar_lists %d\ncore_similar_list_p50_ms %.5f\ncore_similar_list_mean_ms %.5f\n",
              has_lists ? 1 : 0, 1e3 * percentile(t, 0.5), 1e3 * mean(t));
  // Building the lists (what training adds at its end), 100 per item, on the threads given.
  {
    const int64_t length = recsys::similar_list_length(-1, ni, fac);
    const std::vector<float> norms = recsys::row_norms(m.item_factors(), ni, fac);
    recsys::CancelToken never;
    const double t0 = now_seconds();
    const recsys::NeighbourLists lists =
        recsys::similar_item_lists(m.item_factors(), norms.data(), ni, fac, length, threads, never);
    std::printf("core_similar_build_s %.3f\ncore_similar_build_length %lld\n", now_seconds() - t0,
                static_cast<long long>(length));
    // The built lists must be what the model stores (the same function at training).
    const int64_t* ip = m.section_as<int64_t>(recsys::SectionTag::SimilarIndptr);
    const int32_t* ix = m.section_as<int32_t>(recsys::SectionTag::SimilarIndices);
    const int64_t built = static_cast<int64_t>(lists.indices.size());
    int64_t differ = ip && ip[ni] == built ? 0 : -1;  // -1: no lists stored, or of another length
    for (int64_t k = 0; differ >= 0 && k < built; ++k) differ += ix[k] != lists.indices[k];
    std::printf("core_similar_build_differ %lld\n", static_cast<long long>(differ));
  }
  // The same calls with the CPU caches flushed before each (64 MB written in between), as
  // when other work runs between requests: the cost of reading the factors from memory.
  {
    std::vector<char> sweep(64 << 20, 1);
    auto flush = [&](int c) {
      for (size_t b = 0; b < sweep.size(); b += 64) sweep[b] = static_cast<char>(sweep[b] + c);
    };
    const int cold_calls = 300;
    std::vector<double> ts(cold_calls), tr(cold_calls), tp(cold_calls);
    for (int c = 0; c < cold_calls; ++c) {
      flush(c);
      double t0 = now_seconds();
      recsys::similar_items(scored, static_cast<int64_t>(rng.below(ni)), 10, out);
      ts[c] = now_seconds() - t0;
      flush(c);
      const int64_t u = static_cast<int64_t>(rng.below(nu));
      t0 = now_seconds();
      recsys::recommend_user(m, u, 10, true, out);
      tr[c] = now_seconds() - t0;
      flush(c);
      t0 = now_seconds();
      recsys::recommend_user(m, u, 10, true, out, &order);
      tp[c] = now_seconds() - t0;
    }
    std::printf("core_similar_cold_p50_ms %.4f\ncore_recommend_cold_p50_ms %.4f\ncore_pruned_cold_p50_ms %.4f\n",
                1e3 * percentile(ts, 0.5), 1e3 * percentile(tr, 0.5), 1e3 * percentile(tp, 0.5));
    volatile char sink = sweep[12345];
    (void)sink;
  }
  std::vector<int64_t> users(static_cast<size_t>(nu));
  for (int64_t u = 0; u < nu; ++u) users[u] = u;
  std::vector<std::vector<recsys::Scored>> lists;
  recsys::CancelToken never;
  const recsys::BatchStats before = recsys::batch_stats();
  const double t0 = now_seconds();
  recsys::recommend_batch(m, users, 10, true, threads, never, lists);
  const double secs = now_seconds() - t0;
  const recsys::BatchStats after = recsys::batch_stats();
  // GFLOP/s of the exhaustive product (users x items x factors) the batch answers: the
  // rate it would need to score every pair in the same time.
  std::printf("core_batch_seconds %.4f\ncore_batch_gflops %.2f\n", secs,
              2.0 * double(nu) * double(ni) * fac / secs / 1e9);
  std::printf("core_batch_scored_fraction %.4f\n",
              double(after.scored - before.scored) / double(std::max<int64_t>(1, after.exhaustive - before.exhaustive)));
  // The batch lists must equal recommend's, which scores every item: checked on a sample.
  int64_t differ = 0;
  const int checks = 2000;
  for (int c = 0; c < checks; ++c) {
    const int64_t u = static_cast<int64_t>(rng.below(nu));
    recsys::recommend_user(m, u, 10, true, out);
    const auto& l = lists[static_cast<size_t>(u)];
    bool same = l.size() == out.size();
    for (size_t r = 0; same && r < l.size(); ++r) same = l[r].index == out[r].index;
    differ += same ? 0 : 1;
  }
  std::printf("core_batch_checked_users %d\ncore_batch_lists_differing %lld\n", checks, static_cast<long long>(differ));
  std::printf("model_users %lld\nmodel_items %lld\nmodel_factors %d\n", static_cast<long long>(nu),
              static_cast<long long>(ni), fac);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "gen" && argc >= 3) return generate(std::atoll(argv[2]), argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 42);
    if (cmd == "gemm") return gemm(argc > 2 ? std::atoi(argv[2]) : recsys::resolve_threads(0));
    if (cmd == "serve" && argc >= 3) return serve(argv[2], argc > 3 ? std::atoi(argv[3]) : recsys::resolve_threads(0));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tool: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: bench_tool gen ROWS [SEED] | gemm [THREADS] | serve FILE [THREADS]\n");
  return 2;
}

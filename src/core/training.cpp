#include "training.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include "knn.h"
#include "options.h"
#include "serving.h"

namespace recsys {

TrainingState::TrainingState(KeyKind user_kind, uint32_t user_oid, KeyKind item_kind, uint32_t item_oid)
    : users(user_kind), items(item_kind), user_type_oid(user_oid), item_type_oid(item_oid) {}

void TrainingState::reject_weight(double weight) {
  if (!std::isfinite(weight))
    fail(ErrorKind::DataException, std::string("weight must be a finite number, got ") +
                                       (std::isnan(weight) ? "NaN" : (weight > 0 ? "Infinity" : "-Infinity")));
  fail(ErrorKind::DataException, "weight " + json_number(weight) + " is out of range for real");
}

void TrainingState::merge(const TrainingState& other) {
  if (&other == this) fail(ErrorKind::Internal, "cannot combine a training state with itself");
  if (other.users.kind() != users.kind() || other.items.kind() != items.kind())
    fail(ErrorKind::Internal, "cannot combine training states of different ID types");
  std::vector<uint32_t> umap(other.users.size()), imap(other.items.size());
  for (uint32_t i = 0; i < other.users.size(); ++i) {
    if (users.kind() == KeyKind::Int) {
      umap[i] = users.intern_int(other.users.int_key(i));
    } else {
      uint64_t len;
      const uint8_t* p = other.users.bytes_key(i, &len);
      umap[i] = users.intern_bytes(p, len);
    }
  }
  for (uint32_t i = 0; i < other.items.size(); ++i) {
    if (items.kind() == KeyKind::Int) {
      imap[i] = items.intern_int(other.items.int_key(i));
    } else {
      uint64_t len;
      const uint8_t* p = other.items.bytes_key(i, &len);
      imap[i] = items.intern_bytes(p, len);
    }
  }
  other.log.for_each_chunk([&](const Triplet* t, uint64_t count) {
    for (uint64_t k = 0; k < count; ++k) log.add(umap[t[k].user], imap[t[k].item], t[k].weight);
  });
  if (options_bytes.empty()) options_bytes = other.options_bytes;
  rows_skipped += other.rows_skipped;
}

namespace {
constexpr uint32_t kStateMagic = 0x54535352u;  // "RSST"
constexpr uint32_t kStateVersion = 1;

struct StateHeader {
  uint32_t magic, version;
  uint8_t user_kind, item_kind, pad[2];
  uint32_t user_oid, item_oid, pad2;
  uint64_t rows, rows_skipped, options_len;
};
}  // namespace

uint64_t TrainingState::serialized_size() const {
  return sizeof(StateHeader) + options_bytes.size() + users.state_size() + items.state_size() +
         log.size() * sizeof(Triplet);
}

void TrainingState::serialize(uint8_t* dst) const {
  StateHeader h{};
  h.magic = kStateMagic;
  h.version = kStateVersion;
  h.user_kind = static_cast<uint8_t>(users.kind());
  h.item_kind = static_cast<uint8_t>(items.kind());
  h.user_oid = user_type_oid;
  h.item_oid = item_type_oid;
  h.rows = log.size();
  h.rows_skipped = rows_skipped;
  h.options_len = options_bytes.size();
  std::memcpy(dst, &h, sizeof h);
  dst += sizeof h;
  if (!options_bytes.empty()) std::memcpy(dst, options_bytes.data(), options_bytes.size());
  dst += options_bytes.size();
  dst = users.write_state(dst);
  dst = items.write_state(dst);
  log.for_each_chunk([&](const Triplet* t, uint64_t count) {
    std::memcpy(dst, t, count * sizeof(Triplet));
    dst += count * sizeof(Triplet);
  });
}

std::unique_ptr<TrainingState> TrainingState::deserialize(const uint8_t* src, uint64_t size) {
  auto bad = []() { fail(ErrorKind::InvalidModel, "malformed aggregate state"); };
  const uint8_t* end = src + size;
  StateHeader h;
  if (size < sizeof h) bad();
  std::memcpy(&h, src, sizeof h);
  src += sizeof h;
  if (h.magic != kStateMagic || h.version != kStateVersion) bad();
  if (h.user_kind < 1 || h.user_kind > 3 || h.item_kind < 1 || h.item_kind > 3) bad();
  if (h.options_len > static_cast<uint64_t>(end - src)) bad();
  auto st = std::make_unique<TrainingState>(static_cast<KeyKind>(h.user_kind), h.user_oid,
                                            static_cast<KeyKind>(h.item_kind), h.item_oid);
  st->options_bytes.assign(reinterpret_cast<const char*>(src), h.options_len);
  src += h.options_len;
  src = st->users.read_state(src, end);
  src = st->items.read_state(src, end);
  if (h.rows > static_cast<uint64_t>(end - src) / sizeof(Triplet) ||
      static_cast<uint64_t>(end - src) != h.rows * sizeof(Triplet))
    bad();
  const uint32_t n_users = st->users.size(), n_items = st->items.size();
  st->log.append_bytes(src, h.rows, [&](const Triplet* t, uint64_t count) {
    for (uint64_t k = 0; k < count; ++k)
      if (t[k].user >= n_users || t[k].item >= n_items || !std::isfinite(t[k].weight)) bad();
  });
  st->rows_skipped = h.rows_skipped;
  return st;
}

CsrMatrix build_interaction_matrix(const TrainingState& state, const std::vector<uint32_t>& user_rank,
                                   const std::vector<uint32_t>& item_rank, const CancelToken& cancel,
                                   const char* trainer) {
  const uint64_t n = state.log.size();
  const int64_t rows = static_cast<int64_t>(user_rank.size());
  CsrMatrix m;
  m.rows = rows;
  m.cols = static_cast<int64_t>(item_rank.size());
  // Counting sort of the rows by user, straight into the output arrays (no pair buffer:
  // the peak is the log plus 8 bytes per row).
  std::vector<int64_t> start(static_cast<size_t>(rows) + 1, 0);
  state.log.for_each_chunk([&](const Triplet* t, uint64_t count) {
    for (uint64_t k = 0; k < count; ++k) ++start[user_rank[t[k].user] + 1];
  });
  for (int64_t u = 0; u < rows; ++u) start[u + 1] += start[u];
  m.indices.resize(n);
  m.values.resize(n);
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    state.log.for_each_chunk([&](const Triplet* t, uint64_t count) {
      cancel.check();
      for (uint64_t k = 0; k < count; ++k) {
        const int64_t pos = fill[user_rank[t[k].user]]++;
        m.indices[pos] = static_cast<int32_t>(item_rank[t[k].item]);
        m.values[pos] = t[k].weight;
      }
    });
  }
  // Per user: sort by (item, weight) and sum duplicates in double, so the result does not
  // depend on arrival order; rows already strictly ascending (each pair once, as tables
  // usually hold it) skip the sort. Rows are compacted in place.
  m.indptr.assign(static_cast<size_t>(rows) + 1, 0);
  std::vector<std::pair<int32_t, float>> row;
  int64_t out = 0;
  int32_t* idx = m.indices.data();
  float* val = m.values.data();
  for (int64_t u = 0; u < rows; ++u) {
    if ((u & 0x3FFF) == 0) cancel.check();
    const int64_t b = start[u], e = start[u + 1];
    bool ascending = true;
    for (int64_t k = b + 1; k < e && ascending; ++k) ascending = idx[k - 1] < idx[k];
    if (ascending) {
      for (int64_t k = b; k < e; ++k) {
        if (val[k] == 0.0f) continue;
        idx[out] = idx[k];
        val[out] = val[k];
        ++out;
      }
    } else {
      row.clear();
      for (int64_t k = b; k < e; ++k) row.emplace_back(idx[k], val[k]);
      std::sort(row.begin(), row.end());
      for (auto it = row.begin(); it != row.end();) {
        const int32_t item = it->first;
        double sum = 0;
        for (; it != row.end() && it->first == item; ++it) sum += it->second;
        if (!(std::fabs(sum) <= std::numeric_limits<float>::max()))
          fail(ErrorKind::DataException, std::string(trainer) + ": the weights of one (user, item) pair sum to " +
                                             json_number(sum) +
                                             ", beyond the range of real (weights too large); scale the weights down");
        if (sum != 0.0) {
          idx[out] = item;
          val[out] = static_cast<float>(sum);
          ++out;
        }
      }
    }
    m.indptr[u + 1] = out;
  }
  m.indices.resize(static_cast<size_t>(out));
  m.values.resize(static_cast<size_t>(out));
  if (static_cast<uint64_t>(out) < n - n / 8) {  // many duplicates: return the spare memory
    m.indices.shrink_to_fit();
    m.values.shrink_to_fit();
  }
  return m;
}

namespace {

template <class T>
double scale_values(std::vector<T>& values, int max_exponent) {
  double largest = 0;
  for (T v : values) largest = std::max(largest, std::fabs(static_cast<double>(v)));
  if (!(largest > std::ldexp(1.0, max_exponent)) || !std::isfinite(largest)) return 1.0;
  int e = 0;
  (void)std::frexp(largest, &e);  // largest < 2^e
  const double factor = std::ldexp(1.0, max_exponent - e);
  for (T& v : values) v = static_cast<T>(static_cast<double>(v) * factor);
  return factor;
}

}  // namespace

double scale_into_safe_range(std::vector<float>& values, int max_exponent) {
  return scale_values(values, max_exponent);
}
double scale_into_safe_range(std::vector<double>& values, int max_exponent) {
  return scale_values(values, max_exponent);
}

void check_factor_range(const float* user_factors, int64_t n_users, const float* item_factors, int64_t n_items,
                        int factors, const char* trainer) {
  auto largest_norm = [&](const float* m, int64_t rows) {
    double best = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int j = 0; j < factors; ++j) s += static_cast<double>(m[r * factors + j]) * m[r * factors + j];
      if (!std::isfinite(s)) return std::numeric_limits<double>::infinity();
      best = std::max(best, s);
    }
    return std::sqrt(best);
  };
  const double bound = largest_norm(user_factors, n_users) * largest_norm(item_factors, n_items);
  // Scores are sums of float products: keep a margin below the float limit.
  if (!(bound <= 1e36))
    fail(ErrorKind::DataException,
         std::string(trainer) + ": the learned factors overflow the range of real (weights too large for the float "
                                "solve); scale the weights down, e.g. ln(1 + w)");
}

void check_trained_model(const uint8_t* bytes, uint64_t size, const char* trainer) {
  try {
    validate_model(bytes, size);
  } catch (const Error& e) {
    fail(ErrorKind::DataException, std::string(trainer) + ": the trained model failed validation (" + e.what() +
                                       "); the input values are probably too large (weights, ratings or features "
                                       "near the range of real): scale them down");
  }
}

AlsTrainingOptions parse_als_options(const OptionList& options) {
  OptionReader r(options, "train_als");
  AlsTrainingOptions o;
  o.als.factors = static_cast<int>(r.get_int("factors", 64, 1, 1024));
  o.als.iterations = static_cast<int>(r.get_int("iterations", 15, 0, 10000));
  o.als.regularization = static_cast<float>(r.get_double("regularization", 20.0, 0, 1e9));
  o.als.alpha = static_cast<float>(r.get_double("alpha", 1.0, 0, 1e9));
  o.als.cg_steps = static_cast<int>(r.get_int("cg_steps", 3, 1, 1000));
  o.als.seed = static_cast<uint64_t>(r.get_int("seed", 42, 0, (int64_t(1) << 53)));
  o.als.init_scale = static_cast<float>(r.get_double("init_scale", 0.01, 1e-9, 100));
  o.als.compute_loss = r.get_bool("calculate_loss", true);
  o.similar_items = r.get_int("similar_items", -1, 0, 100000);
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

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void build_als_model(TrainingState& state, const AlsTrainingOptions& options, int threads,
                     const CancelToken& cancel, const std::function<void(const std::string&)>& log_line) {
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t rows_in = state.log.size();
  std::vector<uint32_t> user_order = state.users.sorted_order();
  std::vector<uint32_t> item_order = state.items.sorted_order();
  CsrMatrix ui = build_interaction_matrix(state, KeyInterner::invert(user_order), KeyInterner::invert(item_order),
                                          cancel, "train_als");
  state.log.clear();
  if (ui.nnz() == 0) return;  // every weight summed to 0: no usable row, NULL
  CsrMatrix iu = transpose(ui, threads);
  const int64_t nu = ui.rows, ni = ui.cols;
  const int f = options.als.factors;
  uint64_t negatives = 0;
  for (float w : ui.values) negatives += w < 0;
  if (options.verbose)
    log_line("train_als: " + std::to_string(rows_in) + " rows, " + std::to_string(nu) + " users, " +
             std::to_string(ni) + " items, " + std::to_string(ui.nnz()) + " distinct pairs; prepared in " +
             std::to_string(seconds_since(t0)) + " s");

  std::vector<float> X(static_cast<size_t>(nu) * f), Y(static_cast<size_t>(ni) * f);
  std::vector<double> history;
  train_implicit_als(ui, iu, options.als, threads, cancel, X.data(), Y.data(), [&](const IterationStats& s) {
    history.push_back(s.loss);
    history.push_back(s.seconds);
    if (options.verbose) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "train_als: iteration %d/%d loss %.6g (%.3f s)", s.iteration,
                    options.als.iterations, s.loss, s.seconds);
      log_line(buf);
    }
  });
  cancel.check();
  check_factor_range(X.data(), nu, Y.data(), ni, f, "train_als");

  std::vector<float> popularity(static_cast<size_t>(ni));
  for (int64_t i = 0; i < ni; ++i) {
    int64_t positive = 0;  // users with positive feedback on the item
    for (int64_t k = iu.indptr[i]; k < iu.indptr[i + 1]; ++k) positive += iu.values[k] > 0;
    popularity[i] = static_cast<float>(positive);
  }
  iu = CsrMatrix();

  auto builder = std::make_unique<ModelBuilder>();
  ModelHeader& h = builder->header;
  h.kind = static_cast<uint16_t>(ModelKind::ImplicitAls);
  h.user_key_kind = static_cast<uint8_t>(state.users.kind());
  h.item_key_kind = static_cast<uint8_t>(state.items.kind());
  h.user_type_oid = state.user_type_oid;
  h.item_type_oid = state.item_type_oid;
  h.factors = static_cast<uint32_t>(f);
  h.n_users = static_cast<uint64_t>(nu);
  h.n_items = static_cast<uint64_t>(ni);
  h.n_interactions = static_cast<uint64_t>(ui.nnz());

  const AlsParams& p = options.als;
  std::string params = "{\"factors\": " + std::to_string(p.factors) +
                       ", \"iterations\": " + std::to_string(p.iterations) +
                       ", \"regularization\": " + json_number(p.regularization) +
                       ", \"alpha\": " + json_number(p.alpha) + ", \"cg_steps\": " + std::to_string(p.cg_steps) +
                       ", \"seed\": " + std::to_string(p.seed) + ", \"init_scale\": " + json_number(p.init_scale) +
                       ", \"similar_items\": " + std::to_string(similar_list_length(options.similar_items, ni, f)) +
                       ", \"store_seen\": " + (options.store_seen ? "true" : "false") +
                       ", \"rows\": " + std::to_string(rows_in) +
                       ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
                       ", \"negative_pairs\": " + std::to_string(negatives) + "}";
  builder->add(SectionTag::Params, std::vector<uint8_t>(params.begin(), params.end()));
  builder->add(SectionTag::UserKeys, state.users.dictionary_bytes(user_order));
  builder->add(SectionTag::ItemKeys, state.items.dictionary_bytes(item_order));
  const std::vector<float> item_norms = row_norms(Y.data(), ni, f);
  const int64_t similar = similar_list_length(options.similar_items, ni, f);
  const auto t_similar = std::chrono::steady_clock::now();
  add_similar_sections(*builder, similar_item_lists(Y.data(), item_norms.data(), ni, f, similar, threads, cancel));
  if (options.verbose && similar > 0)
    log_line("train_als: similar-item lists (" + std::to_string(similar) + " per item) in " +
             std::to_string(seconds_since(t_similar)) + " s");
  builder->add(SectionTag::UserNorms, to_bytes(row_norms(X.data(), nu, f)));
  builder->add(SectionTag::ItemNorms, to_bytes(item_norms));
  builder->add(SectionTag::UserFactors, to_bytes(X));
  X = {};
  builder->add(SectionTag::ItemFactors, to_bytes(Y));
  Y = {};
  if (options.store_seen) {
    std::vector<uint8_t> csr(8 * (ui.indptr.size()) + 4 * ui.indices.size());
    std::memcpy(csr.data(), ui.indptr.data(), 8 * ui.indptr.size());
    if (!ui.indices.empty())
      std::memcpy(csr.data() + 8 * ui.indptr.size(), ui.indices.data(), 4 * ui.indices.size());
    builder->add(SectionTag::UserItems, std::move(csr));
  }
  builder->add(SectionTag::PopularOrder, to_bytes(popularity_order(popularity)));
  builder->add(SectionTag::ItemPopularity, to_bytes(popularity));
  builder->add(SectionTag::History, to_bytes(history));
  h.train_seconds = seconds_since(t0);
  state.result = std::move(builder);
}

}  // namespace recsys

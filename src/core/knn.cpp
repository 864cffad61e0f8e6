#include "knn.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>

#include "options.h"
#include "serving.h"

namespace recsys {

const char* knn_similarity_name(KnnSimilarity s) {
  switch (s) {
    case KnnSimilarity::Cosine: return "cosine";
    case KnnSimilarity::Bm25: return "bm25";
    case KnnSimilarity::Tfidf: return "tfidf";
  }
  return "unknown";
}

ItemKnnOptions parse_item_knn_options(const OptionList& options) {
  OptionReader r(options, "train_item_knn");
  ItemKnnOptions o;
  const std::string sim = r.get_string("similarity", "bm25", {"cosine", "bm25", "tfidf"});
  o.similarity = sim == "bm25" ? KnnSimilarity::Bm25 : sim == "tfidf" ? KnnSimilarity::Tfidf : KnnSimilarity::Cosine;
  o.k1 = r.get_double("k1", 1.2, 0, 1e6);
  o.b = r.get_double("b", 0.75, 0, 1);
  o.shrinkage = r.get_double("shrinkage", 10.0, 0, 1e12);
  o.min_support = r.get_int("min_support", 1, 1, INT32_MAX);
  o.neighbours = r.get_int("neighbours", 200, 1, 100000);
  o.binary = r.get_bool("binary", false);
  o.store_seen = r.get_bool("store_seen", true);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();  // k1 and b are accepted (and ignored) for other similarities: parameter grids
  return o;
}

CsrMatrix knn_weighted_matrix(const CsrMatrix& ui, const ItemKnnOptions& options) {
  CsrMatrix w;
  w.rows = ui.rows;
  w.cols = ui.cols;
  w.indptr.assign(static_cast<size_t>(ui.rows) + 1, 0);
  w.indices.reserve(ui.indices.size());
  w.values.reserve(ui.values.size());
  for (int64_t u = 0; u < ui.rows; ++u) {
    for (int64_t k = ui.indptr[u]; k < ui.indptr[u + 1]; ++k) {
      if (!(ui.values[k] > 0)) continue;
      w.indices.push_back(ui.indices[k]);
      w.values.push_back(options.binary ? 1.0f : ui.values[k]);
    }
    w.indptr[u + 1] = static_cast<int64_t>(w.indices.size());
  }
  if (options.similarity == KnnSimilarity::Cosine) return w;

  // implicit's weighting of the item x user matrix: items are documents, users terms.
  const double n_docs = static_cast<double>(w.cols);
  std::vector<double> idf(static_cast<size_t>(w.rows));
  for (int64_t u = 0; u < w.rows; ++u)
    idf[u] = std::log(n_docs) - std::log1p(static_cast<double>(w.indptr[u + 1] - w.indptr[u]));
  if (options.similarity == KnnSimilarity::Tfidf) {
    for (int64_t u = 0; u < w.rows; ++u)
      for (int64_t k = w.indptr[u]; k < w.indptr[u + 1]; ++k)
        w.values[k] = static_cast<float>(std::sqrt(static_cast<double>(w.values[k])) * idf[u]);
    return w;
  }
  std::vector<double> length(static_cast<size_t>(w.cols), 0.0);
  for (int64_t k = 0; k < w.nnz(); ++k) length[w.indices[k]] += w.values[k];
  double total = 0;
  for (double l : length) total += l;
  const double avg = w.cols > 0 ? total / static_cast<double>(w.cols) : 0.0;
  const double k1 = options.k1, b = options.b;
  for (int64_t u = 0; u < w.rows; ++u)
    for (int64_t k = w.indptr[u]; k < w.indptr[u + 1]; ++k) {
      const double x = w.values[k];
      const double norm = (1.0 - b) + (avg > 0 ? b * length[w.indices[k]] / avg : 0.0);
      w.values[k] = static_cast<float>(x * (k1 + 1.0) / (k1 * norm + x) * idf[u]);
    }
  return w;
}

void keep_best(std::vector<Scored>& cand, int64_t n) {
  if (n <= 0) {
    cand.clear();
    return;
  }
  if (static_cast<int64_t>(cand.size()) > n) {
    std::nth_element(cand.begin(), cand.begin() + (n - 1), cand.end(), ranks_before);
    cand.resize(static_cast<size_t>(n));
  }
  std::sort(cand.begin(), cand.end(), ranks_before);
}

namespace {

// A neighbour candidate as one 64-bit key that orders like ranks_before: the bits of its
// positive float score above the complement of its item index.
inline uint64_t neighbour_key(float score, int32_t index) {
  uint32_t bits;
  std::memcpy(&bits, &score, 4);
  return (uint64_t(bits) << 32) | uint32_t(~uint32_t(index));
}

inline Scored neighbour_of(uint64_t key) {
  const uint32_t bits = static_cast<uint32_t>(key >> 32);
  float s;
  std::memcpy(&s, &bits, 4);
  return Scored{s, static_cast<int32_t>(~static_cast<uint32_t>(key))};
}

// Bounded selection of the best `keep` keys of one item's candidates. Keys go to a
// buffer; when it holds 4 x keep they are cut to the best keep and the worst survivor
// becomes the bar every later key must beat, so most candidates cost one comparison.
class TopKeys {
 public:
  void reset(int64_t keep) {
    keep_ = static_cast<size_t>(keep);
    cap_ = std::max<size_t>(4 * keep_, 64);
    bar_ = 0;
    buf_.clear();
  }
  // The score a candidate must reach to have a chance (0 until keep candidates were cut).
  float bar_score() const { return neighbour_of(bar_).score; }
  void offer(uint64_t k) {
    if (k <= bar_) return;
    buf_.push_back(k);
    if (buf_.size() >= cap_) cut();
  }
  // The kept entries, best first.
  void finish(std::vector<Scored>& out) {
    if (buf_.size() > keep_) cut();
    std::sort(buf_.begin(), buf_.end(), std::greater<uint64_t>());
    out.resize(buf_.size());
    for (size_t q = 0; q < buf_.size(); ++q) out[q] = neighbour_of(buf_[q]);
  }

 private:
  void cut() {
    std::nth_element(buf_.begin(), buf_.begin() + (keep_ - 1), buf_.end(), std::greater<uint64_t>());
    buf_.resize(keep_);
    bar_ = buf_[keep_ - 1];
  }
  size_t keep_ = 1, cap_ = 64;
  uint64_t bar_ = 0;
  std::vector<uint64_t> buf_;
};

// Concatenates per-item lists into a CSR, freeing them as it goes.
NeighbourLists assemble(std::vector<std::vector<Scored>>& rows) {
  NeighbourLists out;
  out.indptr.assign(rows.size() + 1, 0);
  uint64_t total = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    total += rows[r].size();
    out.indptr[r + 1] = static_cast<int64_t>(total);
  }
  out.indices.reserve(total);
  out.scores.reserve(total);
  for (auto& row : rows) {
    for (const Scored& s : row) {
      out.indices.push_back(s.index);
      out.scores.push_back(s.score);
    }
    std::vector<Scored>().swap(row);
  }
  return out;
}

}  // namespace

// One function of about 160 lines on purpose: the rank renumbering, the per-thread
// accumulators and the two candidate paths (dense scan, touched list) share the hot
// loop's state, and splitting them would pass that state through every call.
NeighbourLists sparse_neighbours(const CsrMatrix& dim_items, const CsrMatrix& item_dims,
                                 const std::vector<float>& norms, float shrinkage, int64_t min_support, int64_t keep,
                                 const PairExtra* extra, int threads, const CancelToken& cancel) {
  threads = resolve_threads(threads);
  const int64_t nd = dim_items.rows, ni = item_dims.rows;
  if (dim_items.cols != ni || item_dims.cols != nd || static_cast<int64_t>(norms.size()) != ni || keep < 1)
    fail(ErrorKind::Internal, "sparse_neighbours: inconsistent arguments");
  const int32_t min_sup = static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(min_support, 1), INT32_MAX));
  const float shrink = static_cast<float>(shrinkage);

  // Items are numbered by decreasing number of dimensions (popularity) inside: most
  // updates then hit a small, cache-resident part of the accumulator, and the expensive
  // items come first so that dynamic scheduling ends on cheap ones. by_rank[r] = item.
  // Each item's list is computed on its own: a pair is computed from both sides, with the
  // same products summed in the same (dimension) order, so sim(a, b) == sim(b, a) exactly.
  std::vector<int32_t> by_rank(static_cast<size_t>(ni)), rank(static_cast<size_t>(ni));
  for (int64_t i = 0; i < ni; ++i) by_rank[i] = static_cast<int32_t>(i);
  std::stable_sort(by_rank.begin(), by_rank.end(), [&](int32_t a, int32_t b) {
    return item_dims.indptr[a + 1] - item_dims.indptr[a] > item_dims.indptr[b + 1] - item_dims.indptr[b];
  });
  for (int64_t r = 0; r < ni; ++r) rank[by_rank[r]] = static_cast<int32_t>(r);
  std::vector<float> rnorm(static_cast<size_t>(ni));
  for (int64_t r = 0; r < ni; ++r) rnorm[r] = norms[by_rank[r]];
  // dim x item with ranks for columns, each row sorted by rank, and every value divided
  // by its item's norm: a pair's dot product is then its cosine, and the similarity is
  // (cos |a||b| + extra) / (|a||b| + shrinkage), which is the cosine itself by default.
  const int64_t* dptr = dim_items.indptr.data();
  std::vector<int32_t> ritems(dim_items.indices.size());
  std::vector<float> rvals(dim_items.values.size());
  constexpr int64_t kDimsPerTask = 4096;
  parallel_for((nd + kDimsPerTask - 1) / kDimsPerTask, threads, cancel, [&](int64_t task, int) {
    std::vector<std::pair<int32_t, float>> tmp;
    const int64_t d1 = std::min(nd, (task + 1) * kDimsPerTask);
    for (int64_t d = task * kDimsPerTask; d < d1; ++d) {
      tmp.clear();
      for (int64_t k = dptr[d]; k < dptr[d + 1]; ++k) {
        const int32_t i = dim_items.indices[k];
        tmp.push_back({rank[i], norms[i] > 0 ? dim_items.values[k] / norms[i] : 0.0f});
      }
      std::sort(tmp.begin(), tmp.end(), [](const std::pair<int32_t, float>& x, const std::pair<int32_t, float>& y) {
        return x.first < y.first;
      });
      for (size_t q = 0; q < tmp.size(); ++q) {
        ritems[dptr[d] + static_cast<int64_t>(q)] = tmp[q].first;
        rvals[dptr[d] + static_cast<int64_t>(q)] = tmp[q].second;
      }
    }
  });
  const bool support = min_sup > 1;
  const bool plain = !extra && shrink == 0.0f;  // the similarity is the accumulated cosine

  struct PerThread {
    std::vector<float> score;      // cosine so far, by rank
    std::vector<uint8_t> mark;     // touched (sparse items)
    std::vector<int32_t> count;    // common dimensions so far (min_support > 1 only)
    std::vector<int32_t> touched;  // marked ranks
    TopKeys top;
    std::vector<Scored> row;
  };
  std::vector<PerThread> scratch(static_cast<size_t>(threads));
  std::vector<std::vector<Scored>> rows(static_cast<size_t>(ni));
  constexpr int64_t kBlock = 8;
  parallel_for((ni + kBlock - 1) / kBlock, threads, cancel, [&](int64_t task, int thread) {
    PerThread& t = scratch[thread];
    if (static_cast<int64_t>(t.score.size()) != ni) {
      t.score.assign(static_cast<size_t>(ni), 0.0f);
      t.mark.assign(static_cast<size_t>(ni), 0);
      if (support) t.count.assign(static_cast<size_t>(ni), 0);
    }
    float* __restrict score = t.score.data();
    uint8_t* __restrict mark = t.mark.data();
    int32_t* __restrict count = t.count.data();
    std::vector<int32_t>& touched = t.touched;
    TopKeys& top = t.top;
    const int64_t end = std::min(ni, (task + 1) * kBlock);
    for (int64_t r = task * kBlock; r < end; ++r) {
      const int32_t item = by_rank[r];
      const float own_norm = rnorm[r];
      if (!(own_norm > 0.0f)) continue;
      const int64_t k0 = item_dims.indptr[item], k1 = item_dims.indptr[item + 1];
      // Updates this item will make. When they are many compared with the number of
      // items, a large share of them gets touched: no touched list then, all cells are
      // scanned, in order. (Never with `extra`, whose candidates are the touched items.)
      int64_t work = 0;
      for (int64_t k = k0; k < k1; ++k) work += dptr[item_dims.indices[k] + 1] - dptr[item_dims.indices[k]];
      const bool dense = !extra && 8 * work > ni;
      touched.clear();
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t d = item_dims.indices[k];
        const float w = item_dims.values[k] / own_norm;
        const int32_t* __restrict js = ritems.data() + dptr[d];
        const float* __restrict vs = rvals.data() + dptr[d];
        const int64_t n = dptr[d + 1] - dptr[d];
        if (dense) {
          for (int64_t p = 0; p < n; ++p) score[js[p]] += w * vs[p];
        } else {
          for (int64_t p = 0; p < n; ++p) {
            const int32_t j = js[p];
            if (!mark[j]) {
              mark[j] = 1;
              touched.push_back(j);
            }
            score[j] += w * vs[p];
          }
        }
        if (support)
          for (int64_t p = 0; p < n; ++p) count[js[p]] += 1;
      }
      // Candidates. Without `extra` the similarity never exceeds the cosine, so a cosine
      // below the current bar is out before any further work.
      top.reset(keep);
      float bar = 0.0f;
      auto offer = [&](int32_t j, float cos) {
        float s = cos;
        if (!plain) {
          const float ab = own_norm * rnorm[j];
          s = (cos * ab + (extra ? (*extra)(item, by_rank[j]) : 0.0f)) / (ab + shrink);
        }
        if (s > 0.0f && s <= 3.0e38f) {
          top.offer(neighbour_key(s, by_rank[j]));
          bar = top.bar_score();
        }
      };
      if (dense) {
        // Blocks of 64 cells with no cosine at the bar are skipped after one vectorized
        // test; the bar is kept strictly positive so that one comparison also drops zeros.
        constexpr float kTiny = 1.0e-30f;
        for (int64_t j0 = 0; j0 < ni; j0 += 64) {
          const int64_t j1 = std::min<int64_t>(ni, j0 + 64);
          const float b = std::max(bar, kTiny);
          int any = 0;
          for (int64_t j = j0; j < j1; ++j) any |= score[j] >= b;
          if (!any) continue;
          for (int64_t j = j0; j < j1; ++j) {
            const float c = score[j];
            if (c < std::max(bar, kTiny) || j == r || (support && count[j] < min_sup)) continue;
            offer(static_cast<int32_t>(j), c);
          }
        }
        std::memset(score, 0, sizeof(float) * static_cast<size_t>(ni));
        if (support) std::memset(count, 0, sizeof(int32_t) * static_cast<size_t>(ni));
      } else {
        for (int32_t j : touched) {
          const float c = score[j];
          score[j] = 0.0f;
          mark[j] = 0;
          if (support) {
            const int32_t n = count[j];
            count[j] = 0;
            if (n < min_sup) continue;
          }
          if (j == r || (!extra && !(c > 0.0f && c >= bar))) continue;
          offer(j, c);
        }
      }
      top.finish(t.row);
      rows[item].assign(t.row.begin(), t.row.end());
    }
  });
  return assemble(rows);
}

NeighbourLists item_neighbours(const CsrMatrix& wui, const CsrMatrix& wiu, const ItemKnnOptions& options,
                               int threads, const CancelToken& cancel) {
  const int64_t ni = wui.cols;
  std::vector<float> norm(static_cast<size_t>(ni), 0.0f);
  for (int64_t i = 0; i < ni; ++i) {
    double s = 0;
    for (int64_t k = wiu.indptr[i]; k < wiu.indptr[i + 1]; ++k) s += double(wiu.values[k]) * wiu.values[k];
    norm[i] = static_cast<float>(std::sqrt(s));
  }
  return sparse_neighbours(wui, wiu, norm, options.shrinkage, options.min_support, options.neighbours, nullptr,
                           threads, cancel);
}

void add_neighbour_sections(ModelBuilder& builder, NeighbourLists&& lists) {
  builder.add_array(SectionTag::NeighbourIndptr, lists.indptr);
  std::vector<int64_t>().swap(lists.indptr);
  builder.add_array(SectionTag::NeighbourIndices, lists.indices);
  std::vector<int32_t>().swap(lists.indices);
  builder.add_array(SectionTag::NeighbourScores, lists.scores);
  std::vector<float>().swap(lists.scores);
}

std::unique_ptr<ModelBuilder> neighbour_model(ModelKind kind, const TrainingState& state,
                                              const std::vector<uint32_t>& user_order,
                                              const std::vector<uint32_t>& item_order, const CsrMatrix& ui,
                                              const std::vector<float>& popularity, NeighbourLists&& lists,
                                              bool binary, bool store_seen, std::string params, const char* trainer) {
  // What recommend multiplies each seen item's neighbours by: the positive (binarized)
  // weight of the pair, 0 for negative pairs, which are still seen.
  std::vector<float> user_weights;
  if (store_seen) {
    user_weights.resize(ui.values.size());
    for (size_t k = 0; k < ui.values.size(); ++k)
      user_weights[k] = ui.values[k] > 0 ? (binary ? 1.0f : ui.values[k]) : 0.0f;
  }
  // recommend sums weight x similarity over a user's items: the same safe range (one
  // user's scores keep their order).
  const double seen_scale = scale_into_safe_range(user_weights, 100);
  if (seen_scale != 1.0) params += ", \"seen_weight_scale\": " + json_number(seen_scale);
  params = "{" + params + "}";

  auto builder = std::make_unique<ModelBuilder>();
  ModelHeader& h = builder->header;
  h.kind = static_cast<uint16_t>(kind);
  h.user_key_kind = static_cast<uint8_t>(state.users.kind());
  h.item_key_kind = static_cast<uint8_t>(state.items.kind());
  h.user_type_oid = state.user_type_oid;
  h.item_type_oid = state.item_type_oid;
  h.factors = 0;
  h.n_users = static_cast<uint64_t>(ui.rows);
  h.n_items = static_cast<uint64_t>(ui.cols);
  h.n_interactions = static_cast<uint64_t>(ui.nnz());
  builder->add(SectionTag::Params, std::vector<uint8_t>(params.begin(), params.end()));
  builder->add(SectionTag::UserKeys, state.users.dictionary_bytes(user_order));
  builder->add(SectionTag::ItemKeys, state.items.dictionary_bytes(item_order));
  add_neighbour_sections(*builder, std::move(lists));
  if (store_seen) {
    std::vector<uint8_t> csr(8 * ui.indptr.size() + 4 * ui.indices.size());
    std::memcpy(csr.data(), ui.indptr.data(), 8 * ui.indptr.size());
    if (!ui.indices.empty())
      std::memcpy(csr.data() + 8 * ui.indptr.size(), ui.indices.data(), 4 * ui.indices.size());
    builder->add(SectionTag::UserItems, std::move(csr));
    builder->add_array(SectionTag::UserWeights, user_weights);
  }
  builder->add_array(SectionTag::PopularOrder, popularity_order(popularity));
  builder->add_array(SectionTag::ItemPopularity, popularity);
  if (builder->total_size() > kMaxModelBytes)
    fail(ErrorKind::ProgramLimit, std::string(trainer) + ": the model would take " +
                                      std::to_string(builder->total_size()) +
                                      " bytes, more than PostgreSQL's 1 GB limit for one value; lower \"neighbours\" "
                                      "or set \"store_seen\" to false");
  return builder;
}

void build_item_knn_model(TrainingState& state, const ItemKnnOptions& options, int threads,
                          const CancelToken& cancel, const std::function<void(const std::string&)>& log_line) {
  auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  threads = resolve_threads(threads);
  const uint64_t rows_in = state.log.size();
  std::vector<uint32_t> user_order = state.users.sorted_order();
  std::vector<uint32_t> item_order = state.items.sorted_order();
  CsrMatrix ui = build_interaction_matrix(state, KeyInterner::invert(user_order), KeyInterner::invert(item_order),
                                          cancel, "train_item_knn");
  state.log.clear();
  if (ui.nnz() == 0) return;  // every weight summed to 0: no usable row, NULL
  const int64_t nu = ui.rows, ni = ui.cols;
  if (ni > INT32_MAX || nu > INT32_MAX) fail(ErrorKind::ProgramLimit, "train_item_knn: too many users or items");
  uint64_t negatives = 0;
  for (float w : ui.values) negatives += w < 0;

  CsrMatrix wui = knn_weighted_matrix(ui, options);
  // Weights beyond 2^40 are scaled by a power of two: the cosine is unchanged (bit for
  // bit) and the norms and their products stay inside the float range.
  const double sim_scale = scale_into_safe_range(wui.values, 40);
  CsrMatrix wiu = transpose(wui);
  cancel.check();
  if (options.verbose)
    log_line("train_item_knn: " + std::to_string(rows_in) + " rows, " + std::to_string(nu) + " users, " +
             std::to_string(ni) + " items, " + std::to_string(wui.nnz()) + " positive pairs; prepared in " +
             std::to_string(seconds()) + " s");

  std::vector<float> popularity(static_cast<size_t>(ni));
  for (int64_t i = 0; i < ni; ++i) popularity[i] = static_cast<float>(wiu.indptr[i + 1] - wiu.indptr[i]);

  NeighbourLists lists = item_neighbours(wui, wiu, options, threads, cancel);
  const int64_t pairs = lists.nnz();
  if (options.verbose)
    log_line("train_item_knn: " + std::to_string(pairs) + " neighbour pairs after " + std::to_string(seconds()) +
             " s");

  wui = CsrMatrix();
  wiu = CsrMatrix();
  std::string params = std::string("\"similarity\": \"") + knn_similarity_name(options.similarity) + "\"";
  if (options.similarity == KnnSimilarity::Bm25)
    params += ", \"k1\": " + json_number(options.k1) + ", \"b\": " + json_number(options.b);
  params += ", \"shrinkage\": " + json_number(options.shrinkage) +
            ", \"min_support\": " + std::to_string(options.min_support) +
            ", \"neighbours\": " + std::to_string(options.neighbours) +
            ", \"binary\": " + (options.binary ? "true" : "false") +
            ", \"store_seen\": " + (options.store_seen ? "true" : "false") + ", \"rows\": " + std::to_string(rows_in) +
            ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
            ", \"negative_pairs\": " + std::to_string(negatives) +
            ", \"neighbour_pairs\": " + std::to_string(pairs);
  if (sim_scale != 1.0) params += ", \"weight_scale\": " + json_number(sim_scale);
  std::unique_ptr<ModelBuilder> builder =
      neighbour_model(ModelKind::ItemKnn, state, user_order, item_order, ui, popularity, std::move(lists),
                      options.binary, options.store_seen, std::move(params), "train_item_knn");
  ModelHeader& h = builder->header;
  h.train_seconds = seconds();
  if (options.verbose) log_line("train_item_knn: done in " + std::to_string(h.train_seconds) + " s");
  state.result = std::move(builder);
}

// ---------------------------------------------------------------- serving

namespace {

struct NeighbourView {
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* scores = nullptr;
};

NeighbourView neighbour_view(const ModelView& model, const char* what) {
  NeighbourView v;
  v.indptr = model.section_as<int64_t>(SectionTag::NeighbourIndptr);
  v.indices = model.section_as<int32_t>(SectionTag::NeighbourIndices);
  v.scores = model.section_as<float>(SectionTag::NeighbourScores);
  if (!v.indptr || !v.indices || !v.scores)
    fail(ErrorKind::NotSupported, std::string(what) + " needs stored neighbour lists; this model is " +
                                      model_kind_name(model.kind()));
  return v;
}

std::string no_user_items_message(const ModelView& model, const char* what) {
  return std::string(what) + " needs each user's items; this " + model_kind_name(model.kind()) +
         " model was trained with store_seen = false (retrain it with store_seen = true, or pass the user's items to "
         "recommend_for_items)";
}

void check_item(const ModelView& model, int64_t item) {
  if (item < 0 || item >= model.n_items())
    fail(ErrorKind::InvalidParameter, "item index " + std::to_string(item) + " is out of range");
}

// Thread-local dense scores with a touched list (serving runs one query per thread).
struct ServingScratch {
  std::vector<float> score;
  std::vector<uint8_t> mark;
  std::vector<int32_t> touched;
  TopKeys top;
};

ServingScratch& serving_scratch(int64_t n) {
  thread_local ServingScratch s;
  if (static_cast<int64_t>(s.score.size()) < n) {
    s.score.assign(static_cast<size_t>(n), 0.0f);
    s.mark.assign(static_cast<size_t>(n), 0);
  }
  s.touched.clear();
  return s;
}

// Sum of weight * neighbour list over the given (item, weight) pairs, then the top k of
// the touched items with a positive score, skipping excluded items. `excluded` holds the
// items to skip, sorted ascending.
template <class Pairs>
int64_t score_from_neighbours(const ModelView& model, const NeighbourView& nv, const Pairs& pairs, size_t n_pairs,
                              const std::vector<int32_t>& excluded, int64_t k, std::vector<Scored>& out) {
  out.clear();
  const int64_t ni = model.n_items();
  ServingScratch& s = serving_scratch(ni);
  for (size_t p = 0; p < n_pairs; ++p) {
    int32_t j;
    float w;
    pairs(p, &j, &w);
    if (!(w > 0)) continue;
    for (int64_t q = nv.indptr[j]; q < nv.indptr[j + 1]; ++q) {
      const int32_t i = nv.indices[q];
      if (!s.mark[i]) {
        s.mark[i] = 1;
        s.touched.push_back(i);
      }
      s.score[i] += w * nv.scores[q];
    }
  }
  if (k <= 0) {
    for (int32_t i : s.touched) {
      s.score[i] = 0.0f;
      s.mark[i] = 0;
    }
    return 0;
  }
  s.top.reset(k);
  float bar = 0.0f;
  for (int32_t i : s.touched) {
    const float v = s.score[i];
    s.score[i] = 0.0f;
    s.mark[i] = 0;
    if (!(v > 0.0f) || v < bar) continue;
    if (!excluded.empty() && std::binary_search(excluded.begin(), excluded.end(), i)) continue;
    s.top.offer(neighbour_key(v, i));
    bar = s.top.bar_score();
  }
  s.top.finish(out);
  return static_cast<int64_t>(out.size());
}

}  // namespace

int64_t stored_neighbours(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out) {
  out.clear();
  NeighbourView nv = neighbour_view(model, "similar_items");
  check_item(model, item);
  const int64_t b = nv.indptr[item];
  const int64_t n = std::max<int64_t>(0, std::min<int64_t>(k, nv.indptr[item + 1] - b));
  out.reserve(static_cast<size_t>(n));
  for (int64_t q = b; q < b + n; ++q) out.push_back(Scored{nv.scores[q], nv.indices[q]});
  return n;
}

int64_t knn_similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out) {
  return stored_neighbours(model, item, k, out);
}

int64_t knn_recommend_user(const ModelView& model, int64_t user, int64_t k, bool exclude_seen,
                           std::vector<Scored>& out) {
  out.clear();
  NeighbourView nv = neighbour_view(model, "recommend");
  if (user < 0 || user >= model.n_users())
    fail(ErrorKind::InvalidParameter, "user index " + std::to_string(user) + " is out of range");
  const uint8_t* csr = model.section(SectionTag::UserItems);
  const float* weights = model.section_as<float>(SectionTag::UserWeights);
  if (!csr || !weights) fail(ErrorKind::NotSupported, no_user_items_message(model, "recommend"));
  const int64_t* indptr = reinterpret_cast<const int64_t*>(csr);
  const int32_t* items = reinterpret_cast<const int32_t*>(csr + 8 * (model.n_users() + 1));
  const int64_t b = indptr[user], n = indptr[user + 1] - b;
  thread_local std::vector<int32_t> excluded;
  excluded.clear();
  if (exclude_seen) excluded.assign(items + b, items + b + n);  // sorted ascending
  auto pairs = [&](size_t p, int32_t* j, float* w) {
    *j = items[b + static_cast<int64_t>(p)];
    *w = weights[b + static_cast<int64_t>(p)];
  };
  return score_from_neighbours(model, nv, pairs, static_cast<size_t>(n), excluded, k, out);
}

int64_t knn_recommend_from_items(const ModelView& model, const std::vector<int64_t>& items,
                                 const std::vector<float>& weights, int64_t k, bool exclude_given,
                                 std::vector<Scored>& out) {
  out.clear();
  NeighbourView nv = neighbour_view(model, "recommend_from_items");
  if (!weights.empty() && weights.size() != items.size())
    fail(ErrorKind::InvalidParameter, "recommend_from_items: need one weight per item");
  for (size_t p = 0; p < items.size(); ++p) {
    check_item(model, items[p]);
    if (!weights.empty() && !std::isfinite(weights[p]))
      fail(ErrorKind::DataException, "recommend_from_items: weights must be finite");
  }
  thread_local std::vector<int32_t> excluded;
  excluded.clear();
  if (exclude_given) {
    for (int64_t i : items) excluded.push_back(static_cast<int32_t>(i));
    std::sort(excluded.begin(), excluded.end());
  }
  auto pairs = [&](size_t p, int32_t* j, float* w) {
    *j = static_cast<int32_t>(items[p]);
    *w = weights.empty() ? 1.0f : weights[p];
  };
  return score_from_neighbours(model, nv, pairs, items.size(), excluded, k, out);
}

float knn_score_pair(const ModelView& model, int64_t user, int64_t item) {
  NeighbourView nv = neighbour_view(model, "score");
  check_item(model, item);
  if (user < 0 || user >= model.n_users())
    fail(ErrorKind::InvalidParameter, "user index " + std::to_string(user) + " is out of range");
  const uint8_t* csr = model.section(SectionTag::UserItems);
  const float* weights = model.section_as<float>(SectionTag::UserWeights);
  if (!csr || !weights) fail(ErrorKind::NotSupported, no_user_items_message(model, "score"));
  const int64_t* indptr = reinterpret_cast<const int64_t*>(csr);
  const int32_t* items = reinterpret_cast<const int32_t*>(csr + 8 * (model.n_users() + 1));
  // The same additions, in the same order, as score_from_neighbours makes for this item.
  float score = 0.0f;
  for (int64_t p = indptr[user]; p < indptr[user + 1]; ++p) {
    const float w = weights[p];
    if (!(w > 0)) continue;
    const int32_t j = items[p];
    for (int64_t q = nv.indptr[j]; q < nv.indptr[j + 1]; ++q)
      if (nv.indices[q] == item) {
        score += w * nv.scores[q];
        break;
      }
  }
  return score;
}

}  // namespace recsys

#include "hybrid.h"

#include <Eigen/Cholesky>
#include <Eigen/IterativeLinearSolvers>
#include <Eigen/Sparse>
#include <cmath>
#include <cstring>

#include "knn.h"
#include "serving.h"

namespace recsys {

const char* hybrid_function_name(HybridSide side) {
  return side == HybridSide::Items ? "train_hybrid_items" : "train_hybrid_users";
}

HybridOptions parse_hybrid_options(const OptionList& options, HybridSide side) {
  const std::string fn = hybrid_function_name(side);
  OptionReader r(options, fn);
  HybridOptions o;
  o.features = read_feature_options(r, fn);
  read_feature_counting(r, o.features);
  o.lambda = r.get_double("lambda", 1.0, 1e-6, 1e6);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();
  return o;
}

void require_hybrid_base(const ModelView& base, HybridSide side) {
  if (base.kind() != ModelKind::ImplicitAls || !base.user_factors() || !base.item_factors())
    fail(ErrorKind::NotSupported, std::string(hybrid_function_name(side)) +
                                      " extends an implicit ALS model (recsys.train_als); this model is " +
                                      model_kind_name(base.kind()));
}

bool hybrid_counts(const ModelView& m, HybridCounts* out) {
  const uint8_t* fi = m.section(SectionTag::ItemFeatureOnly);
  const uint8_t* fu = m.section(SectionTag::UserFeatureOnly);
  if (!fi && !fu) return false;
  *out = HybridCounts{};
  for (int64_t i = 0; i < m.n_items(); ++i) (fi && fi[i] ? out->feature_only_items : out->warm_items)++;
  for (int64_t u = 0; u < m.n_users(); ++u) (fu && fu[u] ? out->feature_only_users : out->warm_users)++;
  return true;
}

namespace {

uint32_t intern_key(KeyInterner& to, const KeyDictionary& from, int64_t i) {
  if (from.kind() == KeyKind::Int) return to.intern_int(from.int_key(i));
  uint64_t len = 0;
  const uint8_t* p = from.bytes_key(i, &len);
  return to.intern_bytes(p, len);
}

uint32_t intern_key(KeyInterner& to, const KeyInterner& from, uint32_t id) {
  if (from.kind() == KeyKind::Int) return to.intern_int(from.int_key(id));
  uint64_t len = 0;
  const uint8_t* p = from.bytes_key(id, &len);
  return to.intern_bytes(p, len);
}

template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// One side (items or users) of the extended model.
struct MappedSide {
  std::vector<uint8_t> dictionary;
  std::vector<float> factors;          // n x f
  std::vector<uint8_t> feature_only;   // n
  std::vector<int64_t> new_of_old;     // per base index: new index, -1 when dropped
  int64_t n = 0;
  std::string params;
};

// The ridge mapping of the class comment and the merged, re-sorted dictionary.
MappedSide map_side(const ModelView& base, const ContentState& meta, HybridSide side, const HybridOptions& o,
                    const CancelToken& cancel, const std::function<void(const std::string&)>& log_line) {
  const bool items = side == HybridSide::Items;
  const std::string fn = hybrid_function_name(side);
  const char* noun = items ? "items" : "users";
  const KeyDictionary dict = items ? base.item_keys() : base.user_keys();
  const float* F = items ? base.item_factors() : base.user_factors();
  const uint8_t* old_flags = base.section(items ? SectionTag::ItemFeatureOnly : SectionTag::UserFeatureOnly);
  const int64_t n_old = dict.size();
  const int f = base.factors();
  if (meta.items.kind() != dict.kind())
    fail(ErrorKind::InvalidParameter, fn + ": the metadata's IDs are not of the kind of the model's " + noun);

  // Kept base entities first (ids 0..n_kept-1), then the metadata's.
  KeyInterner merged(dict.kind());
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < n_old; ++i)
    if (!(old_flags && old_flags[i])) {
      intern_key(merged, dict, i);
      kept.push_back(i);
    }
  const int64_t n_kept = static_cast<int64_t>(kept.size());
  const std::vector<uint32_t> meta_order = meta.items.sorted_order();
  const int64_t n_meta = static_cast<int64_t>(meta_order.size());
  std::vector<int64_t> row_merged(static_cast<size_t>(n_meta));  // metadata row -> merged id
  for (int64_t r = 0; r < n_meta; ++r) row_merged[r] = intern_key(merged, meta.items, meta_order[r]);
  cancel.check();

  int64_t empty = 0;
  const CsrMatrix X = content_feature_vectors(meta, o.features, cancel, &empty);
  const int64_t nf = X.cols;

  // Training rows: metadata rows of kept (warm) entities.
  std::vector<int64_t> train_rows;
  for (int64_t r = 0; r < n_meta; ++r)
    if (row_merged[r] < n_kept) train_rows.push_back(r);
  const int64_t nw = static_cast<int64_t>(train_rows.size());
  if (nw == 0)
    fail(ErrorKind::DataException, fn + ": none of the " + std::to_string(n_meta) + " " + noun +
                                       " with metadata is in the model, so there is nothing to learn the mapping "
                                       "from; give metadata for the model's " + noun + " too");
  Eigen::VectorXd mu = Eigen::VectorXd::Zero(f);
  for (int64_t r : train_rows) {
    const float* y = F + static_cast<size_t>(kept[row_merged[r]]) * f;
    for (int c = 0; c < f; ++c) mu[c] += y[c];
  }
  mu /= static_cast<double>(nw);

  using SpMat = Eigen::SparseMatrix<double>;
  Eigen::MatrixXd W = Eigen::MatrixXd::Zero(nf, f);
  int cg_iterations = 0;
  double fit_rmse = 0, baseline_rmse = 0;
  if (nf > 0) {
    std::vector<Eigen::Triplet<double>> trip;
    for (int64_t w = 0; w < nw; ++w)
      for (int64_t k = X.indptr[train_rows[w]]; k < X.indptr[train_rows[w] + 1]; ++k)
        trip.emplace_back(static_cast<int>(w), X.indices[k], X.values[k]);
    SpMat Xw(nw, nf);
    Xw.setFromTriplets(trip.begin(), trip.end());
    trip.clear();
    Eigen::MatrixXd R(nw, f);
    for (int64_t w = 0; w < nw; ++w) {
      const float* y = F + static_cast<size_t>(kept[row_merged[train_rows[w]]]) * f;
      for (int c = 0; c < f; ++c) R(w, c) = y[c] - mu[c];
    }
    SpMat A = SpMat(Xw.transpose()) * Xw;
    for (int64_t j = 0; j < nf; ++j) A.coeffRef(j, j) += o.lambda;
    A.makeCompressed();
    const Eigen::MatrixXd B = Xw.transpose() * R;
    cancel.check();
    if (nf <= o.dense_max_features) {
      // Up to a few thousand features the normal matrix (nf x nf doubles, 72 MB at 3,000)
      // is small enough to factor densely: one Cholesky serves every factor column.
      const Eigen::MatrixXd dense = Eigen::MatrixXd(A);
      Eigen::LLT<Eigen::MatrixXd> llt(dense);
      if (llt.info() != Eigen::Success) fail(ErrorKind::DataException, fn + ": the mapping is singular; raise \"lambda\"");
      W = llt.solve(B);
    } else {
      Eigen::ConjugateGradient<SpMat, Eigen::Lower | Eigen::Upper> cg;
      cg.setTolerance(1e-10);
      cg.setMaxIterations(static_cast<Eigen::Index>(std::min<int64_t>(4 * nf + 100, 100000)));
      cg.compute(A);
      for (int c = 0; c < f; ++c) {
        cancel.check();
        W.col(c) = cg.solve(B.col(c));
        cg_iterations = std::max(cg_iterations, static_cast<int>(cg.iterations()));
      }
    }
    const Eigen::MatrixXd E = Xw * W - R;
    fit_rmse = std::sqrt(E.squaredNorm() / static_cast<double>(nw * f));
    baseline_rmse = std::sqrt(R.squaredNorm() / static_cast<double>(nw * f));
  }
  if (!W.allFinite()) fail(ErrorKind::DataException, fn + ": the mapping is not finite; raise \"lambda\"");

  MappedSide out;
  const std::vector<uint32_t> order = merged.sorted_order();
  const std::vector<uint32_t> rank = KeyInterner::invert(order);
  out.n = static_cast<int64_t>(order.size());
  out.dictionary = merged.dictionary_bytes(order);
  out.factors.assign(static_cast<size_t>(out.n) * f, 0.0f);
  out.feature_only.assign(static_cast<size_t>(out.n), 0);
  out.new_of_old.assign(static_cast<size_t>(n_old), -1);
  for (int64_t k = 0; k < n_kept; ++k) {
    const int64_t j = rank[k];
    out.new_of_old[kept[k]] = j;
    std::memcpy(&out.factors[static_cast<size_t>(j) * f], F + static_cast<size_t>(kept[k]) * f, sizeof(float) * f);
  }
  int64_t n_cold = 0, cold_empty = 0;
  Eigen::VectorXd v(f);
  for (int64_t r = 0; r < n_meta; ++r) {
    if (row_merged[r] < n_kept) continue;
    const int64_t j = rank[row_merged[r]];
    v = mu;
    for (int64_t k = X.indptr[r]; k < X.indptr[r + 1]; ++k) v += static_cast<double>(X.values[k]) * W.row(X.indices[k]).transpose();
    cold_empty += X.indptr[r + 1] == X.indptr[r];
    for (int c = 0; c < f; ++c) out.factors[static_cast<size_t>(j) * f + c] = static_cast<float>(v[c]);
    out.feature_only[j] = 1;
    ++n_cold;
  }
  std::string text_fields;
  for (auto& t : o.features.text_fields) text_fields += (text_fields.empty() ? "" : ", ") + json_escape(t);
  std::string weights;
  for (auto& w : o.features.weights) weights += (weights.empty() ? "" : ", ") + json_escape(w.first) + ": " + json_number(w.second);
  out.params = "{\"lambda\": " + json_number(o.lambda) + ", \"text_fields\": [" + text_fields + "], \"weights\": {" +
               weights + "}, \"sublinear_tf\": " + (o.features.sublinear_tf ? "true" : "false") +
               ", \"min_df\": " + std::to_string(o.features.min_df) +
               ", \"metadata_rows\": " + std::to_string(meta.features()) +
               ", \"rows_skipped\": " + std::to_string(meta.rows_skipped) + ", \"with_metadata\": " +
               std::to_string(n_meta) + ", \"without_features\": " + std::to_string(empty) +
               ", \"features\": " + std::to_string(nf) + ", \"trained_on\": " + std::to_string(nw) +
               ", \"feature_only\": " + std::to_string(n_cold) +
               ", \"feature_only_without_features\": " + std::to_string(cold_empty) +
               ", \"replaced_feature_only\": " + std::to_string(n_old - n_kept) +
               ", \"fit_rmse\": " + json_number(fit_rmse) + ", \"mean_only_rmse\": " + json_number(baseline_rmse) +
               ", \"cg_iterations\": " + std::to_string(cg_iterations);
  if (o.verbose)
    log_line(fn + ": " + std::to_string(n_meta) + " " + noun + " with metadata, " + std::to_string(nf) +
             " features; mapping fitted on " + std::to_string(nw) + " warm " + noun + " (factor rmse " +
             json_number(fit_rmse) + ", mean only " + json_number(baseline_rmse) + "), " + std::to_string(n_cold) +
             " feature-only " + noun);
  return out;
}

}  // namespace

std::unique_ptr<ModelBuilder> build_hybrid_model(const ModelView& base, const ContentState& meta, HybridSide side,
                                                 const HybridOptions& options, const CancelToken& cancel,
                                                 const std::function<void(const std::string&)>& log_line) {
  require_hybrid_base(base, side);
  const bool items = side == HybridSide::Items;
  MappedSide m = map_side(base, meta, side, options, cancel, log_line);
  const int f = base.factors();
  const int64_t nu_old = base.n_users(), ni_old = base.n_items();
  const int64_t nu = items ? nu_old : m.n, ni = items ? m.n : ni_old;

  auto builder = std::make_unique<ModelBuilder>();
  builder->header = *base.header;
  builder->header.n_users = static_cast<uint64_t>(nu);
  builder->header.n_items = static_cast<uint64_t>(ni);
  const SectionTag keys = items ? SectionTag::ItemKeys : SectionTag::UserKeys;
  const SectionTag factors = items ? SectionTag::ItemFactors : SectionTag::UserFactors;
  const SectionTag norms = items ? SectionTag::ItemNorms : SectionTag::UserNorms;
  const SectionTag flags = items ? SectionTag::ItemFeatureOnly : SectionTag::UserFeatureOnly;
  const SectionTag params = items ? SectionTag::HybridItemParams : SectionTag::HybridUserParams;

  const SectionEntry* table = reinterpret_cast<const SectionEntry*>(base.base + sizeof(ModelHeader));
  for (uint32_t s = 0; s < base.header->n_sections; ++s) {
    const SectionTag tag = static_cast<SectionTag>(table[s].tag);
    const uint8_t* p = base.base + table[s].offset;
    const uint64_t len = table[s].length;
    if (tag == keys || tag == factors || tag == norms || tag == flags || tag == params) continue;  // below
    switch (tag) {
      case SectionTag::UserItems: {
        const int64_t* indptr = reinterpret_cast<const int64_t*>(p);
        const int32_t* seen = reinterpret_cast<const int32_t*>(p + 8 * (nu_old + 1));
        std::vector<int64_t> ptr(static_cast<size_t>(nu) + 1, 0);
        std::vector<int32_t> idx;
        if (items) {  // same users, item indices renumbered (an increasing map keeps rows ascending)
          for (int64_t u = 0; u < nu; ++u) {
            for (int64_t k = indptr[u]; k < indptr[u + 1]; ++k)
              if (m.new_of_old[seen[k]] >= 0) idx.push_back(static_cast<int32_t>(m.new_of_old[seen[k]]));
            ptr[u + 1] = static_cast<int64_t>(idx.size());
          }
        } else {  // users renumbered: rows in the new order, empty for feature-only users
          std::vector<int64_t> old_of_new(static_cast<size_t>(nu), -1);
          for (int64_t u = 0; u < nu_old; ++u)
            if (m.new_of_old[u] >= 0) old_of_new[m.new_of_old[u]] = u;
          for (int64_t u = 0; u < nu; ++u) {
            const int64_t o = old_of_new[u];
            if (o >= 0) idx.insert(idx.end(), seen + indptr[o], seen + indptr[o + 1]);
            ptr[u + 1] = static_cast<int64_t>(idx.size());
          }
        }
        std::vector<uint8_t> csr = bytes_of(ptr);
        const std::vector<uint8_t> tail = bytes_of(idx);
        csr.insert(csr.end(), tail.begin(), tail.end());
        builder->add(tag, std::move(csr));
        break;
      }
      case SectionTag::ItemPopularity:
      case SectionTag::PopularOrder:
      case SectionTag::SimilarIndptr:
      case SectionTag::SimilarIndices:
      case SectionTag::SimilarScores:
        if (!items) builder->add(tag, std::vector<uint8_t>(p, p + len));
        break;  // items: rebuilt below
      case SectionTag::Params:
      case SectionTag::History:
      case SectionTag::UserKeys:
      case SectionTag::ItemKeys:
      case SectionTag::UserFactors:
      case SectionTag::ItemFactors:
      case SectionTag::UserNorms:
      case SectionTag::ItemNorms:
      case SectionTag::ItemFeatureOnly:
      case SectionTag::UserFeatureOnly:
      case SectionTag::HybridItemParams:
      case SectionTag::HybridUserParams:
        builder->add(tag, std::vector<uint8_t>(p, p + len));  // the other side's, as they are
        break;
      default:
        fail(ErrorKind::NotSupported, std::string(hybrid_function_name(side)) + ": the model has a section (" +
                                          std::to_string(table[s].tag) + ") this version cannot carry over");
    }
  }
  if (items) {
    const float* pop_old = base.section_as<float>(SectionTag::ItemPopularity);
    std::vector<float> pop(static_cast<size_t>(ni), 0.0f);
    for (int64_t i = 0; pop_old && i < ni_old; ++i)
      if (m.new_of_old[i] >= 0) pop[m.new_of_old[i]] = pop_old[i];
    if (pop_old) {
      builder->add(SectionTag::PopularOrder, bytes_of(popularity_order(pop)));
      builder->add(SectionTag::ItemPopularity, bytes_of(pop));
    }
  }
  std::vector<float> new_norms = row_norms(m.factors.data(), m.n, f);
  if (const int64_t* lists = items ? base.section_as<int64_t>(SectionTag::SimilarIndptr) : nullptr) {
    // The similar-item lists follow the new catalogue, as long as the base model's (or
    // the default's, when the base listed every other item).
    int64_t longest = 0;
    for (int64_t i = 0; i < ni_old; ++i) longest = std::max(longest, lists[i + 1] - lists[i]);
    if (longest >= ni_old - 1) longest = std::max(longest, similar_list_length(-1, ni, f));
    add_similar_sections(*builder, similar_item_lists(m.factors.data(), new_norms.data(), ni, f,
                                                      similar_list_length(longest, ni, f), options.threads, cancel));
  }
  builder->add(keys, std::move(m.dictionary));
  builder->add(norms, bytes_of(new_norms));
  builder->add(factors, bytes_of(m.factors));
  builder->add(flags, std::move(m.feature_only));
  m.params += "}";  // no timing: the fingerprint covers this section
  builder->add(params, std::vector<uint8_t>(m.params.begin(), m.params.end()));
  return builder;
}

}  // namespace recsys

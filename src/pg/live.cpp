// Live serving: recommendations for a history the model was not trained on (fold-in) on
// every model kind, and the folded-in user vector.
//   recommend_for_items(model, items anyarray, [weights float8[],] k [, exclude_given
//                       [, include [, exclude [, cold_start]]]])
//   fold_in(model, items anyarray [, weights float8[]]) -> real[]
// implicit ALS: the exact user step of training for the fixed item factors (Y^T Y kept
// with the cached model); biased MF: the ridge solve of the user's bias and factors;
// popularity: the popular items minus the history; item_knn and content: the neighbour
// and profile scores (unchanged). The model's alpha, regularization and penalties are read
// from its parameters section here, at the border, and handed to the core typed.
#include "pg_support.h"

#include <algorithm>
#include <cmath>
#include <vector>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

#include "content.h"
#include "fold_in.h"
#include "knn.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_recommend_for_items);
PG_FUNCTION_INFO_V1(recsys_fold_in);
PG_FUNCTION_INFO_V1(recsys_explain);
}

using namespace recsys_pg;
using recsys::ModelKind;
using recsys::ModelView;
using recsys::Scored;

namespace {

// One call's buffers, owned by its memory context.
struct LiveBuffers {
  recsys::History history;
  recsys::ItemFilter filter;
  std::vector<int32_t> skip;
  std::vector<Scored> results;
  std::vector<float> x;
  std::vector<double> gram;
  std::vector<std::pair<int32_t, double>> parts;
};

// Reads the history arrays into buf->history (NULL elements, and IDs the model does not
// know, skipped with their weights). Returns the number of non-NULL items given.
int read_history(FunctionCallInfo fcinfo, const char* fn, int items_arg, int weights_arg, const ModelView& m,
                 LiveBuffers* buf) {
  ArrayType* arr = PG_GETARG_ARRAYTYPE_P(items_arg);
  Oid elem = ARR_ELEMTYPE(arr);
  int16 typlen;
  bool typbyval;
  char typalign;
  get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(arr, elem, typlen, typbyval, typalign, &elems, &nulls, &n);
  double* weights = nullptr;
  if (weights_arg >= 0 && !PG_ARGISNULL(weights_arg)) {
    ArrayType* warr = PG_GETARG_ARRAYTYPE_P(weights_arg);
    Datum* wd;
    bool* wnulls;
    int wn;
    deconstruct_array(warr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &wd, &wnulls, &wn);
    if (wn != n)
      ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                      errmsg("%s: %d weights for %d items; give one weight per item", fn, wn, n)));
    weights = static_cast<double*>(palloc(sizeof(double) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; ++i) {
      if (wnulls[i]) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s: weight %d is NULL", fn, i + 1)));
      weights[i] = DatumGetFloat8(wd[i]);
      if (std::isnan(weights[i]) || std::isinf(weights[i]) || std::fabs(weights[i]) > 3e38)
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("%s: weight %d must be a finite number", fn, i + 1)));
    }
  }
  recsys::KeyDictionary dict = m.item_keys();
  int64_t* idx = static_cast<int64_t*>(palloc(sizeof(int64_t) * (n > 0 ? n : 1)));
  float* w = static_cast<float*>(palloc(sizeof(float) * (n > 0 ? n : 1)));
  int64_t* index = static_cast<int64_t*>(palloc(sizeof(int64_t) * (n > 0 ? n : 1)));
  lookup_keys(dict, elems, nulls, n, elem, index);
  int known = 0, given = 0;
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) continue;
    ++given;
    const int64_t j = index[i];
    if (j < 0) continue;
    idx[known] = j;
    w[known] = weights ? static_cast<float>(weights[i]) : 1.0f;
    ++known;
  }
  if (given > 0 && known == 0 && !key_type_matches(dict.kind(), elem))
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("%s: the items array is %s[], but the model's item IDs are %s", fn, format_type_be(elem),
                           model_id_type_name(m.header->item_type_oid, dict.kind())),
                    errhint("Pass an array of %s.", model_id_type_name(m.header->item_type_oid, dict.kind()))));
  recsys_guard([&] {
    buf->history.items.assign(idx, idx + known);
    if (weights)
      buf->history.weights.assign(w, w + known);
    else
      buf->history.weights.clear();
  });
  return given;
}

// Y^T Y for an ALS model: the cache's, else computed for this call.
const double* gram_for(const ModelView& m, LiveBuffers* buf) {
  if (const double* g = cached_item_gram(m)) return g;
  recsys_guard([&] { buf->gram = recsys::item_gram(m.item_factors(), m.n_items(), m.factors()); });
  return buf->gram.data();
}

// The model's fold-in parameters, as training used them (float options widened). They
// are read from the parameters section once per model and call site: kept in fn_extra
// (CallSiteMemo) under the model's fingerprint.
void als_params(FunctionCallInfo fcinfo, const ModelView& m, double* alpha, double* lambda) {
  CallSiteMemo* memo = call_site_memo(fcinfo);
  if (memo != nullptr && memo->params_fingerprint == m.header->fingerprint && memo->params_fingerprint != 0) {
    *alpha = memo->alpha;
    *lambda = memo->lambda;
    return;
  }
  *alpha = static_cast<float>(model_param(m, "alpha", 1.0));
  *lambda = static_cast<float>(model_param(m, "regularization", 0.01));
  if (memo != nullptr) {
    memo->params_fingerprint = m.header->fingerprint;
    memo->alpha = *alpha;
    memo->lambda = *lambda;
  }
}

recsys::MfFoldParams mf_params(const ModelView& m) {
  recsys::MfFoldParams p;
  bool baseline = false;
  p.reg_user = model_param(m, "reg_user", 15.0, &baseline);
  p.baseline = baseline;
  p.reg_bias = static_cast<float>(model_param(m, "reg_bias", 0.02));
  p.reg_factors = static_cast<float>(model_param(m, "reg_factors", 0.9));
  p.reg_exponent = model_param(m, "reg_exponent", 0.5);
  // Training runs on ratings standardized by their standard deviation; a model that does
  // not record it gets the usual spread of a bounded scale, a quarter of its range.
  bool found = false;
  p.sigma = model_param(m, "rating_std", 1.0, &found);
  if (!found) {
    const double range = m.header->rating_max - m.header->rating_min;
    p.sigma = range > 0 ? range / 4 : 1.0;
  }
  return p;
}

void require_fold_in_kind(const ModelView& m, const char* fn) {
  if (m.kind() == ModelKind::KMeans)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s has no answer for a kmeans model: use recsys.cluster", fn)));
}

}  // namespace

// recommend_for_items: see the file comment. Arguments (weighted form in brackets):
// 0 model, 1 items, [2 weights], k, exclude_given, include, exclude, cold_start.
// cold_start NULL means the kind's default: the popular items for factor and popularity
// models, no rows for item_knn and content models (as before).
Datum recsys_recommend_for_items(PG_FUNCTION_ARGS) {
  const bool weighted = get_fn_expr_argtype(fcinfo->flinfo, 2) != INT4OID;
  const int k_arg = weighted ? 3 : 2;
  const char* fn = "recommend_for_items";
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(k_arg)) {
    TupleDesc desc;
    (void)begin_materialized_srf(fcinfo, &desc);
    return (Datum)0;
  }
  ModelView m = model_arg(fcinfo, 0);
  require_fold_in_kind(m, fn);
  int32 k = PG_GETARG_INT32(k_arg);
  check_k(k);
  auto opt_bool = [&](int a, int dflt) -> int {
    if (a >= PG_NARGS() || PG_ARGISNULL(a)) return dflt;
    return PG_GETARG_BOOL(a) ? 1 : 0;
  };
  const bool exclude_given = opt_bool(k_arg + 1, 1) == 1;
  LiveBuffers* buf = context_owned<LiveBuffers>(CurrentMemoryContext);
  read_item_filter(fcinfo, k_arg + 2, k_arg + 3, m, m.item_keys(), m.header->item_type_oid, &buf->filter);
  const int cold = opt_bool(k_arg + 4, -1);
  (void)read_history(fcinfo, fn, 1, weighted ? 2 : -1, m, buf);
  const ModelKind kind = m.kind();
  const bool neighbour_kind = recsys::sums_neighbour_lists(kind) || kind == ModelKind::Content;
  const bool cold_start = cold < 0 ? !neighbour_kind : cold == 1;
  const recsys::ItemFilter* filter = buf->filter.active() ? &buf->filter : nullptr;
  const recsys::ItemOrder* order =
      (kind == ModelKind::ImplicitAls || kind == ModelKind::BiasedMf) ? cached_item_order(m) : nullptr;
  const double* gram = kind == ModelKind::ImplicitAls && !buf->history.items.empty() ? gram_for(m, buf) : nullptr;
  double alpha = 1, lambda = 0.01;
  if (kind == ModelKind::ImplicitAls) als_params(fcinfo, m, &alpha, &lambda);
  recsys::MfFoldParams mfp;
  if (kind == ModelKind::BiasedMf) mfp = mf_params(m);
  int64_t count = 0;
  recsys_guard([&] {
    recsys::History& h = buf->history;
    if (exclude_given) buf->skip = recsys::history_items(h);
    if (h.items.empty()) {
      if (cold_start && kind != ModelKind::Content) {
        buf->skip.clear();
        count = recsys::recommend_popular_filtered(m, k, buf->skip, filter, buf->results);
      }
      return;
    }
    const int64_t want = filter ? m.n_items() : k;
    switch (kind) {
      case ModelKind::ItemKnn:
      case ModelKind::Ease:
        recsys::knn_recommend_from_items(m, h.items, h.weights, want, exclude_given, buf->results);
        count = recsys::apply_filter(buf->results, k, filter);
        break;
      case ModelKind::Content:
        recsys::content_recommend_from_items(m, h.items, h.weights, want, exclude_given, buf->results);
        count = recsys::apply_filter(buf->results, k, filter);
        break;
      case ModelKind::Popularity:
        count = recsys::recommend_popular_filtered(m, k, buf->skip, filter, buf->results);
        break;
      case ModelKind::ImplicitAls:
        buf->x.assign(static_cast<size_t>(m.factors()), 0.0f);
        recsys::als_fold_in(m, gram, alpha, lambda, h, buf->x.data());
        count = recsys::recommend_vector(m, buf->x.data(), k, buf->skip, filter, buf->results, order);
        break;
      case ModelKind::BiasedMf: {
        float bias = 0;
        buf->x.assign(static_cast<size_t>(m.factors()), 0.0f);
        recsys::mf_fold_in(m, mfp, h, &bias, buf->x.data());
        count = recsys::recommend_vector(m, buf->x.data(), k, buf->skip, filter, buf->results, order);
        break;
      }
      default: break;
    }
  });
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
  recsys::KeyDictionary dict = m.item_keys();
  check_output_type(dict, m.header->item_type_oid, id_type, "item", "Pass the items as an array of %s.");
  for (int64_t r = 0; r < count; ++r) {
    Datum values[2];
    bool rnulls[2] = {false, false};
    values[0] = key_to_datum(dict, buf->results[r].index, id_type);
    values[1] = Float4GetDatum(buf->results[r].score);
    tuplestore_putvalues(store, desc, values, rnulls);
  }
  return (Datum)0;
}

// fold_in(model, items [, weights]) -> real[]: the user vector the model would give this
// history (implicit ALS: the training's user step; biased MF: the factors of the ridge
// solve, the bias left out as user_factors leaves it out); NULL when no given item is in
// the model. Other kinds have no user vectors: an error says so.
Datum recsys_fold_in(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) PG_RETURN_NULL();
  ModelView m = model_arg(fcinfo, 0);
  const ModelKind kind = m.kind();
  if (!((kind == ModelKind::ImplicitAls || kind == ModelKind::BiasedMf) && m.item_factors() && m.factors() > 0))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("fold_in needs a factor model (implicit_als or biased_mf with factors); this model is %s",
                           recsys::model_kind_name(kind)),
                    errhint("recsys.recommend_for_items(model, items, k) recommends for a history on every model kind.")));
  LiveBuffers* buf = context_owned<LiveBuffers>(CurrentMemoryContext);
  (void)read_history(fcinfo, "fold_in", 1, PG_NARGS() > 2 ? 2 : -1, m, buf);
  if (buf->history.items.empty()) PG_RETURN_NULL();
  const double* gram = kind == ModelKind::ImplicitAls ? gram_for(m, buf) : nullptr;
  double alpha = 1, lambda = 0.01;
  if (kind == ModelKind::ImplicitAls) als_params(fcinfo, m, &alpha, &lambda);
  recsys::MfFoldParams mfp;
  if (kind == ModelKind::BiasedMf) mfp = mf_params(m);
  const int f = m.factors();
  recsys_guard([&] {
    buf->x.assign(static_cast<size_t>(f), 0.0f);
    if (kind == ModelKind::ImplicitAls) {
      recsys::als_fold_in(m, gram, alpha, lambda, buf->history, buf->x.data());
    } else {
      float bias = 0;
      recsys::mf_fold_in(m, mfp, buf->history, &bias, buf->x.data());
    }
  });
  Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * f));
  for (int j = 0; j < f; ++j) elems[j] = Float4GetDatum(buf->x[j]);
  PG_RETURN_ARRAYTYPE_P(construct_array(elems, f, FLOAT4OID, 4, true, TYPALIGN_INT));
}

// explain(model, user_or_items, item [, k [, weights]]) -> (item_id, contribution): the
// history items that contribute most to the item's score, largest first. The second
// argument is a user of the model (their stored items: item_knn with their stored
// weights, implicit ALS with weight 1, since the model keeps no ALS weights) or an array
// of items (a history, weights optional). Exact decompositions: item_knn (weight x
// similarity, summing to recommend's score), content (the profile's share of the
// cosine), implicit ALS (the folded-in user's score y_i . A^-1 b split over b's terms, as
// `implicit` does). Other kinds have no faithful decomposition: an error says so.
Datum recsys_explain(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3)) {
    TupleDesc desc;
    (void)begin_materialized_srf(fcinfo, &desc);
    return (Datum)0;
  }
  ModelView m = model_arg(fcinfo, 0);
  const ModelKind kind = m.kind();
  if (kind != ModelKind::ImplicitAls && !recsys::sums_neighbour_lists(kind) && kind != ModelKind::Content)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("explain has no faithful decomposition for a %s model", recsys::model_kind_name(kind)),
                    errdetail(kind == ModelKind::BiasedMf
                                  ? "A biased MF score is a dot product of learned factors plus biases; it does not split into per-item parts."
                                  : "Its scores do not come from the user's items."),
                    errhint("explain works on implicit_als, item_knn, ease and content models.")));
  const int32 k = PG_GETARG_INT32(3);
  check_k(k);
  LiveBuffers* buf = context_owned<LiveBuffers>(CurrentMemoryContext);
  const Oid arg_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  const bool history_given = arg_type != UNKNOWNOID && get_element_type(getBaseType(arg_type)) != InvalidOid;
  if (history_given) {
    (void)read_history(fcinfo, "explain", 1, PG_NARGS() > 4 ? 4 : -1, m, buf);
  } else {
    if (kind == ModelKind::Content)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("a content model has no users: pass the user's items as an array"),
                      errhint("recsys.explain(model, ARRAY[...], item)")));
    const int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), arg_type);
    if (user < 0)
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("user %s is not in the model", key_arg_text(PG_GETARG_DATUM(1), arg_type)),
                      errhint("Pass the user's items as an array to explain a history the model has not seen.")));
    const uint8_t* csr = m.section(recsys::SectionTag::UserItems);
    if (csr == nullptr)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("this model was trained with store_seen = false, so it has no user histories to explain"),
                      errhint("Pass the user's items as an array.")));
    const float* uw = m.section_as<float>(recsys::SectionTag::UserWeights);
    recsys_guard([&] {
      const int64_t* indptr = reinterpret_cast<const int64_t*>(csr);
      const int32_t* items = reinterpret_cast<const int32_t*>(csr + 8 * (m.n_users() + 1));
      buf->history.items.clear();
      buf->history.weights.clear();
      for (int64_t p = indptr[user]; p < indptr[user + 1]; ++p) {
        buf->history.items.push_back(items[p]);
        if (recsys::sums_neighbour_lists(kind) && uw) buf->history.weights.push_back(uw[p]);
      }
    });
  }
  const Oid item_type = get_fn_expr_argtype(fcinfo->flinfo, 2);
  const int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(2), item_type);
  if (item < 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("item %s is not in the model", key_arg_text(PG_GETARG_DATUM(2), item_type))));
  const double* gram = kind == ModelKind::ImplicitAls ? gram_for(m, buf) : nullptr;
  double alpha = 1, lambda = 0.01;
  if (kind == ModelKind::ImplicitAls) als_params(fcinfo, m, &alpha, &lambda);
  int64_t count = 0;
  recsys_guard([&] {
    if (kind == ModelKind::ImplicitAls)
      recsys::als_explain(m, gram, alpha, lambda, buf->history, item, buf->parts);
    else if (recsys::sums_neighbour_lists(kind))
      recsys::knn_explain(m, buf->history, item, buf->parts);
    else
      recsys::content_explain(m, buf->history, item, buf->parts);
    buf->results.clear();
    for (const auto& [j, c] : buf->parts) buf->results.push_back(Scored{static_cast<float>(c), j});
    std::sort(buf->results.begin(), buf->results.end(), recsys::ranks_before);
    count = std::min<int64_t>(k, static_cast<int64_t>(buf->results.size()));
  });
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
  recsys::KeyDictionary dict = m.item_keys();
  check_output_type(dict, m.header->item_type_oid, id_type, "item", "Pass the item as %s.");
  for (int64_t r = 0; r < count; ++r) {
    Datum values[2];
    bool rnulls[2] = {false, false};
    values[0] = key_to_datum(dict, buf->results[r].index, id_type);
    values[1] = Float4GetDatum(buf->results[r].score);
    tuplestore_putvalues(store, desc, values, rnulls);
  }
  return (Datum)0;
}

// Serving: recommend, similar_items, similar_users, score, item_factors, user_factors,
// recommend_all. Each reads the model in place (cached per backend when TOASTed, and
// pinned there for the call), checks that the model's kind can answer
// (check_serving_call: e.g. item_knn has no factors), computes in the core under the
// guard into buffers owned by the call's memory context, then emits rows after the C++
// frames are gone. Nothing is shared between calls: emitting an ID may run user SQL (a
// domain CHECK) that calls recsys again.
#include "pg_support.h"

#include <memory>
#include <vector>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

#include <algorithm>

#include "serving.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_recommend);
PG_FUNCTION_INFO_V1(recsys_similar_items);
PG_FUNCTION_INFO_V1(recsys_similar_users);
PG_FUNCTION_INFO_V1(recsys_score);
PG_FUNCTION_INFO_V1(recsys_item_factors);
PG_FUNCTION_INFO_V1(recsys_user_factors);
}

using namespace recsys_pg;
using recsys::ModelView;
using recsys::Scored;
using recsys::ServingCall;

namespace {

// Raises a plain FEATURE_NOT_SUPPORTED error when the model's kind has no answer to `call`.
void check_call(const ModelView& m, ServingCall call) {
  recsys_guard([&] { recsys::check_serving_call(m, call); });
}

// A call's result buffer, freed with the call's memory context.
std::vector<Scored>& call_results() { return *context_owned<std::vector<Scored>>(CurrentMemoryContext); }

// Emits (id, score) rows for the first n entries of `results`; `what` and `hint` name
// the output column and how to ask for another ID type (check_output_type).
void emit_scored(FunctionCallInfo fcinfo, const recsys::KeyDictionary& dict, Oid model_type,
                 const std::vector<Scored>& results, int64_t n, const char* what, const char* hint) {
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
  check_output_type(dict, model_type, id_type, what, hint);
  for (int64_t r = 0; r < n; ++r) {
    Datum values[2];
    bool nulls[2] = {false, false};
    values[0] = key_to_datum(dict, results[r].index, id_type);
    values[1] = Float4GetDatum(results[r].score);
    tuplestore_putvalues(store, desc, values, nulls);
  }
}

[[noreturn]] void unknown_id(const char* role, Datum value, Oid type) {
  ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                  errmsg("%s %s is not in the model", role, key_arg_text(value, type))));
}

}  // namespace

// recommend(model, user, k [, exclude_seen [, cold_start]]) and the form with an item
// type witness: top-k items for a user, best first. An unknown user gets the most
// popular items unless cold_start is false (then no rows).
Datum recsys_recommend(PG_FUNCTION_ARGS) {
  // Layouts: (model, user, k, exclude_seen, cold_start [, include, exclude]) and the
  // witness form with item_type at 3 (6 or 8 arguments; 5 and 6 are 0.1.0's). NULL
  // arguments other than the witness and the filters give no rows, as a strict function
  // would; a NULL filter is no filter.
  const bool witness = PG_NARGS() == 6 || PG_NARGS() == 8;
  const int a = witness ? 4 : 3;
  const int filters = a + 2 < PG_NARGS() ? a + 2 : -1;
  for (int i = 0; i < (filters >= 0 ? filters : PG_NARGS()); ++i) {
    if (i != 3 || !witness) {
      if (PG_ARGISNULL(i)) {
        TupleDesc desc;
        (void)begin_materialized_srf(fcinfo, &desc);
        return (Datum)0;
      }
    }
  }
  ModelView m = model_arg(fcinfo, 0);
  check_call(m, ServingCall::Recommend);
  Oid user_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  int32 k = PG_GETARG_INT32(2);
  check_k(k);
  bool exclude_seen = PG_GETARG_BOOL(a);
  bool cold_start = PG_GETARG_BOOL(a + 1);
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), user_type);
  const recsys::ItemOrder* order = user >= 0 ? cached_item_order(m) : nullptr;
  recsys::ItemFilter* filter = context_owned<recsys::ItemFilter>(CurrentMemoryContext);
  if (filters >= 0) read_item_filter(fcinfo, filters, filters + 1, m, m.item_keys(), m.header->item_type_oid, filter);
  const recsys::ItemFilter* f = filter->active() ? filter : nullptr;
  std::vector<Scored>& results = call_results();
  int64_t n = 0;
  recsys_guard([&] {
    if (user >= 0) {
      n = recsys::recommend_user(m, user, k, exclude_seen, results, order, f);
    } else if (cold_start) {
      if (f) {
        std::vector<int32_t> none;
        n = recsys::recommend_popular_filtered(m, k, none, f, results);
      } else {
        n = recsys::recommend_popular(m, k, results);
      }
    }
  });
  emit_scored(fcinfo, m.item_keys(), m.header->item_type_oid, results, n, "item",
              "Pass the item ID type as the fourth argument, e.g. recsys.recommend(model, user_id, k, NULL::%s).");
  return (Datum)0;
}

// similar_items(model, item, k): items by cosine similarity of their factors, or the
// item's stored neighbour list (item_knn, content).
Datum recsys_similar_items(PG_FUNCTION_ARGS) {
  // (model, item, k [, include, exclude]): NULL model, item or k give no rows.
  for (int i = 0; i < 3; ++i)
    if (PG_ARGISNULL(i)) {
      TupleDesc desc;
      (void)begin_materialized_srf(fcinfo, &desc);
      return (Datum)0;
    }
  ModelView m = model_arg(fcinfo, 0);
  check_call(m, ServingCall::SimilarItems);
  Oid type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  int32 k = PG_GETARG_INT32(2);
  check_k(k);
  int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(1), type);
  if (item < 0) unknown_id("item", PG_GETARG_DATUM(1), type);
  recsys::ItemFilter* filter = context_owned<recsys::ItemFilter>(CurrentMemoryContext);
  if (PG_NARGS() >= 5) read_item_filter(fcinfo, 3, 4, m, m.item_keys(), m.header->item_type_oid, filter);
  std::vector<Scored>& results = call_results();
  int64_t n = 0;
  recsys_guard([&] { n = recsys::similar_items(m, item, k, results, filter->active() ? filter : nullptr); });
  emit_scored(fcinfo, m.item_keys(), m.header->item_type_oid, results, n, "item", "Pass the item ID as %s.");
  return (Datum)0;
}

// similar_users(model, user, k): users by cosine similarity of their factors.
Datum recsys_similar_users(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
  check_call(m, ServingCall::SimilarUsers);
  Oid type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  int32 k = PG_GETARG_INT32(2);
  check_k(k);
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), type);
  if (user < 0) unknown_id("user", PG_GETARG_DATUM(1), type);
  std::vector<Scored>& results = call_results();
  int64_t n = 0;
  recsys_guard([&] { n = recsys::similar_users(m, user, k, results); });
  emit_scored(fcinfo, m.user_keys(), m.header->user_type_oid, results, n, "user", "Pass the user ID as %s.");
  return (Datum)0;
}

// score(model, user, item): the model's score for one pair; NULL if either is unknown.
Datum recsys_score(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
  check_call(m, ServingCall::Score);
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1));
  int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(2), get_fn_expr_argtype(fcinfo->flinfo, 2));
  if (user < 0 || item < 0) PG_RETURN_NULL();
  float s = 0;
  recsys_guard([&] { s = recsys::score_pair(m, user, item); });
  PG_RETURN_FLOAT4(s);
}

namespace {

// Emits (id, factors real[]) for every row of a factor matrix.
void emit_factors(FunctionCallInfo fcinfo, const ModelView& m, bool users) {
  check_call(m, users ? ServingCall::UserFactors : ServingCall::ItemFactors);
  const float* factors = users ? m.user_factors() : m.item_factors();
  if (factors == nullptr)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s_factors needs a factor model; this model is %s and has no learned factors",
                           users ? "user" : "item", recsys::model_kind_name(m.kind()))));
  recsys::KeyDictionary dict = users ? m.user_keys() : m.item_keys();
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
  check_output_type(dict, users ? m.header->user_type_oid : m.header->item_type_oid, id_type, users ? "user" : "item",
                    users ? "Pass the ID type, e.g. recsys.user_factors(model, NULL::%s)."
                          : "Pass the ID type, e.g. recsys.item_factors(model, NULL::%s).");
  const int f = m.factors();
  Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * f));
  MemoryContext row_ctx = AllocSetContextCreate(CurrentMemoryContext, "recsys factors row", ALLOCSET_SMALL_SIZES);
  for (int64_t r = 0; r < dict.size(); ++r) {
    if ((r & 1023) == 0) CHECK_FOR_INTERRUPTS();
    MemoryContext old = MemoryContextSwitchTo(row_ctx);
    for (int j = 0; j < f; ++j) elems[j] = Float4GetDatum(factors[r * f + j]);
    Datum values[2];
    bool nulls[2] = {false, false};
    values[0] = key_to_datum(dict, r, id_type);
    values[1] = PointerGetDatum(construct_array(elems, f, FLOAT4OID, 4, true, TYPALIGN_INT));
    tuplestore_putvalues(store, desc, values, nulls);
    MemoryContextSwitchTo(old);
    MemoryContextReset(row_ctx);
  }
  MemoryContextDelete(row_ctx);
}

}  // namespace

// item_factors(model [, id_type]) and user_factors(...): the learned embeddings.
Datum recsys_item_factors(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0)) {  // the typed form is not strict (its id_type argument is a NULL witness)
    TupleDesc desc;
    (void)begin_materialized_srf(fcinfo, &desc);
    return (Datum)0;
  }
  ModelView m = model_arg(fcinfo, 0);
  emit_factors(fcinfo, m, false);
  return (Datum)0;
}

Datum recsys_user_factors(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0)) {
    TupleDesc desc;
    (void)begin_materialized_srf(fcinfo, &desc);
    return (Datum)0;
  }
  ModelView m = model_arg(fcinfo, 0);
  emit_factors(fcinfo, m, true);
  return (Datum)0;
}

extern "C" {
PG_FUNCTION_INFO_V1(recsys_recommend_all);
}

namespace {
// One recommend_all call's buffers, owned by its memory context.
struct BatchBuffers {
  std::vector<std::vector<Scored>> results;  // the current batch's lists
  std::vector<int64_t> users;                // every user to serve, by index
  // Items in decreasing-norm order for the pruned batch scoring when the model cache
  // has none: built once per call and shared by all its batches.
  recsys::ItemOrder order;
  std::vector<int64_t> chunk;  // the current batch's users
  // The current batch's scoring, off the main thread so that a cancel is answered at
  // once. Declared last: destroyed (cancelled and joined) before what it reads.
  std::unique_ptr<recsys::BackgroundJob> job;
};

// The users of a recommend_all call: the array's elements the model knows (unknown IDs
// and NULL elements skipped, duplicates kept once). An array of another ID family than
// the model's in which no element is found is an error naming the type to pass; an
// array of the right type with no known user gives a NOTICE (and no rows).
void users_from_array(ArrayType* arr, const recsys::KeyDictionary& ukeys, Oid model_user_type,
                      std::vector<int64_t>* users) {
  Oid elem = ARR_ELEMTYPE(arr);
  int16 typlen;
  bool typbyval;
  char typalign;
  get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(arr, elem, typlen, typbyval, typalign, &elems, &nulls, &n);
  int given = 0;
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) continue;
    ++given;
    int64_t u = lookup_key(ukeys, elems[i], elem);
    if (u >= 0) recsys_guard([&] { users->push_back(u); });
  }
  if (given > 0 && users->empty()) {
    if (!key_type_matches(ukeys.kind(), elem))
      ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                      errmsg("recommend_all: the users array is %s[], but the model's user IDs are %s",
                             format_type_be(elem), model_id_type_name(model_user_type, ukeys.kind())),
                      errhint("Pass an array of %s.", model_id_type_name(model_user_type, ukeys.kind()))));
    ereport(NOTICE, (errmsg("recommend_all: none of the %d users given is in the model", given)));
  }
  recsys_guard([&] {
    std::sort(users->begin(), users->end());
    users->erase(std::unique(users->begin(), users->end()), users->end());
  });
}

}  // namespace

// recommend_all(model, k [, id types] [, exclude_seen [, users]]): top-k for every user
// (or the given users) as (user, item, score, rank). Users are processed in batches of
// a few thousand, each batch scored in parallel under the guard, its rows emitted, and
// interrupts checked, so memory stays bounded and a cancel stops between batches.
Datum recsys_recommend_all(PG_FUNCTION_ARGS) {
  // Layouts: (model, k) | (model, k, id_type, exclude_seen [, users])
  //        | (model, k, user_type, item_type, exclude_seen [, users])
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) {
    TupleDesc desc;
    (void)begin_materialized_srf(fcinfo, &desc);
    return (Datum)0;
  }
  ModelView m = model_arg(fcinfo, 0);
  check_call(m, ServingCall::RecommendAll);
  int32 k = PG_GETARG_INT32(1);
  check_k(k);
  // exclude_seen is the first boolean after the type witnesses; users follows it.
  int nargs = PG_NARGS();
  int exclude_arg = -1;
  for (int a = 3; a < nargs && exclude_arg < 0; ++a)
    if (get_fn_expr_argtype(fcinfo->flinfo, a) == BOOLOID) exclude_arg = a;
  int users_arg = exclude_arg >= 0 && exclude_arg + 1 < nargs ? exclude_arg + 1 : -1;
  const int include_arg = users_arg >= 0 && users_arg + 2 < nargs ? users_arg + 1 : -1;
  bool exclude_seen = exclude_arg < 0 || PG_ARGISNULL(exclude_arg) ? true : PG_GETARG_BOOL(exclude_arg);
  recsys::KeyDictionary ukeys = m.user_keys();
  recsys::KeyDictionary ikeys = m.item_keys();
  // The users: all of them, or those of the array.
  BatchBuffers* buf = context_owned<BatchBuffers>(CurrentMemoryContext);
  std::vector<int64_t>* users = &buf->users;
  ArrayType* users_array = users_arg >= 0 ? array_arg(fcinfo, users_arg, "users") : nullptr;
  if (users_array != nullptr) {
    users_from_array(users_array, ukeys, m.header->user_type_oid, users);
  } else {
    int64_t n = m.n_users();
    recsys_guard([&] {
      users->resize(static_cast<size_t>(n));
      for (int64_t u = 0; u < n; ++u) (*users)[u] = u;
    });
  }
  recsys::ItemFilter* filter = context_owned<recsys::ItemFilter>(CurrentMemoryContext);
  if (include_arg >= 0) read_item_filter(fcinfo, include_arg, include_arg + 1, m, ikeys, m.header->item_type_oid, filter);
  const recsys::ItemFilter* item_filter = filter->active() ? filter : nullptr;
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid user_type = TupleDescAttr(desc, 0)->atttypid;
  Oid item_type = TupleDescAttr(desc, 1)->atttypid;
  // The two-argument form returns text: any ID renders as text. The typed forms must
  // name types the model's IDs fit.
  check_output_type(ukeys, m.header->user_type_oid, user_type, "user",
                    "Pass the ID types, e.g. recsys.recommend_all(model, k, NULL::%s, NULL::<item type>).");
  check_output_type(ikeys, m.header->item_type_oid, item_type, "item",
                    "Pass the ID types, e.g. recsys.recommend_all(model, k, NULL::<user type>, NULL::%s).");
  int threads = recsys::resolve_threads(guc_threads);
  const int64_t batch = 4096;
  const int64_t total = static_cast<int64_t>(users->size());
  // The item order: the cache's (built once per cached model), else one for this call.
  const bool factor_model = recsys::has_item_order(m);
  const recsys::ItemOrder* order = factor_model && total > 0 ? cached_item_order(m) : nullptr;
  if (factor_model && total > 0 && order == nullptr) {
    recsys_guard([&] { recsys::build_item_order(m, buf->order); });
    order = &buf->order;
  }
  MemoryContext row_ctx = AllocSetContextCreate(CurrentMemoryContext, "recsys recommend_all", ALLOCSET_SMALL_SIZES);
  for (int64_t b0 = 0; b0 < total; b0 += batch) {
    const int64_t nb = std::min(batch, total - b0);
    recsys_guard([&] { buf->chunk.assign(users->begin() + b0, users->begin() + b0 + nb); });
    // The job reads only the heap buffers, the (pinned) model and values it owns: an
    // error raised while it runs leaves this frame before the job is joined (the filter
    // is a heap object owned by the call's context).
    run_polled(buf->job, [m, buf, k, exclude_seen, threads, order, item_filter](const recsys::CancelToken& cancel) {
      recsys::recommend_batch(m, buf->chunk, k, exclude_seen, threads, cancel, buf->results, order, item_filter);
    });
    for (int64_t j = 0; j < nb; ++j) {
      if ((j & 63) == 0) CHECK_FOR_INTERRUPTS();  // a batch's rows can take a while to write
      MemoryContext old = MemoryContextSwitchTo(row_ctx);
      Datum uid = key_to_datum(ukeys, (*users)[b0 + j], user_type);
      const std::vector<Scored>& list = buf->results[j];
      for (size_t r = 0; r < list.size(); ++r) {
        Datum values[4];
        bool nulls[4] = {false, false, false, false};
        values[0] = uid;
        values[1] = key_to_datum(ikeys, list[r].index, item_type);
        values[2] = Float4GetDatum(list[r].score);
        values[3] = Int32GetDatum(static_cast<int32>(r + 1));
        tuplestore_putvalues(store, desc, values, nulls);
      }
      MemoryContextSwitchTo(old);
      MemoryContextReset(row_ctx);
    }
    CHECK_FOR_INTERRUPTS();
  }
  MemoryContextDelete(row_ctx);
  return (Datum)0;
}

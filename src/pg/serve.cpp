// Serving: recommend, similar_items, similar_users, score, item_factors, user_factors.
// Each reads the model in place (cached per backend when TOASTed), computes in the core
// under the guard into a static buffer, then emits rows after the C++ frames are gone.
#include "pg_support.h"

#include <vector>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

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

namespace {

// Results of the last core call; static so no C++ object lives on the stack while
// tuples are built.
std::vector<Scored> results;

// Emits (id, score) rows for the entries of `results`.
void emit_scored(FunctionCallInfo fcinfo, const recsys::KeyDictionary& dict, int64_t n) {
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
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
  // The witness form (6 arguments, item_type at 3) is not strict: NULL arguments other
  // than the witness give no rows, as the strict form does.
  const int a = PG_NARGS() == 6 ? 4 : 3;
  for (int i = 0; i < PG_NARGS(); ++i) {
    if (i != 3 || a == 3) {
      if (PG_ARGISNULL(i)) {
        TupleDesc desc;
        (void)begin_materialized_srf(fcinfo, &desc);
        return (Datum)0;
      }
    }
  }
  ModelView m = model_arg(fcinfo, 0);
  Oid user_type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  int32 k = PG_GETARG_INT32(2);
  check_k(k);
  bool exclude_seen = PG_GETARG_BOOL(a);
  bool cold_start = PG_GETARG_BOOL(a + 1);
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), user_type);
  int64_t n = 0;
  recsys_guard([&] {
    if (user >= 0)
      n = recsys::recommend_user(m, user, k, exclude_seen, results);
    else if (cold_start)
      n = recsys::recommend_popular(m, k, results);
  });
  emit_scored(fcinfo, m.item_keys(), n);
  return (Datum)0;
}

// similar_items(model, item, k): items by cosine similarity of their factors.
Datum recsys_similar_items(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
  Oid type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  int32 k = PG_GETARG_INT32(2);
  check_k(k);
  int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(1), type);
  if (item < 0) unknown_id("item", PG_GETARG_DATUM(1), type);
  int64_t n = 0;
  recsys_guard([&] { n = recsys::similar_items(m, item, k, results); });
  emit_scored(fcinfo, m.item_keys(), n);
  return (Datum)0;
}

// similar_users(model, user, k): users by cosine similarity of their factors.
Datum recsys_similar_users(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
  Oid type = get_fn_expr_argtype(fcinfo->flinfo, 1);
  int32 k = PG_GETARG_INT32(2);
  check_k(k);
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), type);
  if (user < 0) unknown_id("user", PG_GETARG_DATUM(1), type);
  int64_t n = 0;
  recsys_guard([&] { n = recsys::similar_users(m, user, k, results); });
  emit_scored(fcinfo, m.user_keys(), n);
  return (Datum)0;
}

// score(model, user, item): the model's score for one pair; NULL if either is unknown.
Datum recsys_score(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
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
  const float* factors = users ? m.user_factors() : m.item_factors();
  if (factors == nullptr)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s_factors needs a factor model; this model is %s and has no learned factors",
                           users ? "user" : "item", recsys::model_kind_name(m.kind()))));
  recsys::KeyDictionary dict = users ? m.user_keys() : m.item_keys();
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
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
  ModelView m = model_arg(fcinfo, 0);
  emit_factors(fcinfo, m, false);
  return (Datum)0;
}

Datum recsys_user_factors(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
  emit_factors(fcinfo, m, true);
  return (Datum)0;
}

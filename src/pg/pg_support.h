// Helpers shared by the SQL entry points: ID conversion between SQL values and model
// keys, model access through the backend-local cache, and materialized SRF output.
#pragma once
#include "pg_common.h"

#include "keys.h"
#include "model_format.h"
#include "parallel.h"
#include "serving.h"

#include <memory>
#include <vector>

extern "C" {
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"
}

namespace recsys_pg {

// An SQL ID value as the core sees it.
struct KeyArg {
  recsys::KeyKind kind;
  int64_t int_value;
  const uint8_t* bytes;
  uint64_t length;
};

// Key kind for a SQL type (domains resolved); ereport for unsupported types.
recsys::KeyKind key_kind_for_type(Oid type, const char* role);
// Reads an ID argument whose type's base type (domains resolved) is base_type,
// detoasting text if needed.
KeyArg key_from_datum(Datum value, Oid base_type, recsys::KeyKind kind);
// Index of an ID argument in a dictionary, or -1; converts between SQL types when the
// argument's type is not the model's (e.g. a text literal for an integer model).
int64_t lookup_key(const recsys::KeyDictionary& dict, Datum value, Oid type);
// A dictionary key as a Datum of target_type (converting through text if needed).
Datum key_to_datum(const recsys::KeyDictionary& dict, int64_t index, Oid target_type);
// True when values of SQL type `type` can stand for IDs of `kind` without a lossy
// conversion: integers for integer IDs, uuid for uuid IDs, and any string type for every
// kind (IDs render as text).
bool key_type_matches(recsys::KeyKind kind, Oid type);
// The SQL type a model's IDs were trained with, for messages (the kind's usual type when
// that type no longer exists, e.g. a domain in another database).
const char* model_id_type_name(Oid model_type, recsys::KeyKind kind);
// Raises DATATYPE_MISMATCH when IDs of `dict` cannot come out as `target` (an integer
// column for text IDs...): the message names the model's ID type and `hint_format`
// (with one %s for that type) says which argument to pass.
void check_output_type(const recsys::KeyDictionary& dict, Oid model_type, Oid target, const char* what,
                       const char* hint_format);
// Readable form of an ID argument for error messages.
char* key_arg_text(Datum value, Oid type);

// The model argument, opened. Large (TOASTed) models are mapped from the shared model
// store (store.h: one copy per server), or when it does not serve them detoasted once
// per backend; either way kept in this backend's cache keyed by their TOAST pointer.
// Inline models are read in place.
recsys::ModelView model_arg(FunctionCallInfo fcinfo, int argno);
// The items of a cached factor model in decreasing-norm order (recsys::ItemOrder), built
// on first use and kept with the cache entry, for the pruned top-k of recommend; null for
// models outside the cache (inline values, cache off) and for models without factors.
const recsys::ItemOrder* cached_item_order(const recsys::ModelView& m);
// Y^T Y of a cached ALS model's item factors (f x f doubles, recsys::item_gram), built on
// first use and kept with the cache entry, for fold-in; null outside the cache.
const double* cached_item_gram(const recsys::ModelView& m);

// The model's parameters section as jsonb, parsed by PostgreSQL's own reader (text that
// is not valid in the database's encoding is an error).
Jsonb* model_params_jsonb(const recsys::ModelView& m);
// A field of a jsonb object, or null (also for non-objects).
JsonbValue* jsonb_object_field(Jsonb* jb, const char* key);
// A number of the model's parameters section (read with PostgreSQL's jsonb parser: the
// core parses no JSON); `fallback` when the key is absent or not a number.
double model_param(const recsys::ModelView& m, const char* key, double fallback, bool* found = nullptr);

// The dictionary index of every element of a deconstructed array (-1 for NULL elements
// and IDs not in the dictionary): lookup_key, with the type resolved once for the array
// (no catalog lookup per element for the built-in ID types).
void lookup_keys(const recsys::KeyDictionary& dict, const Datum* elems, const bool* nulls, int n, Oid elem,
                 int64_t* out);

// An array argument (declared as an array type, anyarray or "any"): null for SQL NULL;
// an untyped literal ('{a,b}') is read as text[]; a value that is not an array is an error
// naming `what`.
ArrayType* array_arg(FunctionCallInfo fcinfo, int arg, const char* what);

// Per call site memory (fn_extra, in the function's memory context), zeroed on first use;
// null when the call has no FmgrInfo. Everything in it is keyed by what it was computed
// from, so a stale entry is recomputed, never used.
struct CallSiteMemo {
  // The model's fold-in parameters (live.cpp), under the model's fingerprint.
  uint64_t params_fingerprint;
  double alpha;
  double lambda;
  // The include (0) and exclude (1) arrays as item indices (sorted, unique), under the
  // model's fingerprint and the argument's bytes.
  struct FilterSide {
    bool set;
    uint64_t fingerprint;
    const uint8_t* model_base;  // and the model's address: both must match
    Size key_bytes;
    char* key;
    int32_t* items;
    int n_items;
  } filter[2];
};
CallSiteMemo* call_site_memo(FunctionCallInfo fcinfo);

// Reads the include / exclude arrays of a serving call (argument numbers, -1 = none;
// NULL arrays, NULL elements and IDs unknown to the model are ignored) into `filter`.
// An array whose element type cannot hold the model's item IDs is an error. The index
// lists are memoized per call site (CallSiteMemo), so a LATERAL call passing the same
// array for every row (an ARRAY(SELECT ...) evaluated once) looks its IDs up once.
void read_item_filter(FunctionCallInfo fcinfo, int include_arg, int exclude_arg, const recsys::ModelView& model,
                      const recsys::KeyDictionary& items, Oid model_item_type, recsys::ItemFilter* filter);

// The model argument fully detoasted into the current context (no cache): for output
// functions that read the whole value once.
recsys::ModelView model_arg_uncached(FunctionCallInfo fcinfo, int argno);

// A C++ object owned by a memory context: created under the guard, deleted when the
// context is reset or deleted (success, error and cancel alike). Serving keeps its
// per-call buffers in one, never in file-level statics, so a call that re-enters recsys
// (a domain CHECK on an output ID running user SQL) works on buffers of its own.
template <class T>
T* context_owned(MemoryContext ctx) {
  struct Holder {
    MemoryContextCallback callback;
    T* object;
  };
  Holder* h = static_cast<Holder*>(MemoryContextAllocZero(ctx, sizeof(Holder)));
  recsys_guard([&] { h->object = new T(); });
  h->callback.func = [](void* arg) {
    Holder* holder = static_cast<Holder*>(arg);
    delete holder->object;  // containers only: their destructors do not throw
    holder->object = nullptr;
  };
  h->callback.arg = h;
  MemoryContextRegisterResetCallback(ctx, &h->callback);
  return h->object;
}

// Waits for a started job while answering cancel and statement_timeout within ~50 ms
// (CHECK_FOR_INTERRUPTS between short guarded waits), then raises what the job threw.
// On cancel the error leaves at once; the job's owner (a context-owned object or an
// aggregate state) cancels and joins it when its memory context goes.
void poll_job(recsys::BackgroundJob* job);

// Runs body(cancel) on a fresh job kept in `slot` and polls it (poll_job). The body
// must not reference the caller's stack: on cancel this frame is gone before the job
// is joined. `slot` belongs to a context-owned object, declared after what the body
// reads so that it is joined first.
template <class Body>
void run_polled(std::unique_ptr<recsys::BackgroundJob>& slot, Body body) {
  recsys_guard([&] {
    slot.reset(new recsys::BackgroundJob());
    slot->start(body);
  });
  poll_job(slot.get());
}

// The byte limit of the backend's model cache (recsys.model_cache_size, at most
// recsys.max_model_cache_size).
Size cache_limit();

// Sets up materialized SRF output; returns the tuple store and its descriptor.
Tuplestorestate* begin_materialized_srf(FunctionCallInfo fcinfo, TupleDesc* desc);

// Requires k > 0.
void check_k(int32 k);

}  // namespace recsys_pg

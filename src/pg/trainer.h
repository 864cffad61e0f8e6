// The one way to write a training aggregate (train_als, train_mf, train_baseline,
// train_popularity, train_item_knn, train_content, kmeans and whatever comes next).
//
// A trainer is a core state type plus a few lines of glue: its transition function
// makes the box (new_agg_box) and calls note_agg_options with its options parser before
// adding the row; combine / serialize / deserialize are one line each; the final
// function is train_final(fcinfo, name, parse, build). This header owns the rest:
//   * the box: a palloc'd struct in the aggregate context pointing at the C++ state,
//     freed by a memory-context callback on success, error and cancel alike;
//   * the options: read from jsonb with PostgreSQL's iterator (jsonb_options.h) and
//     validated on the first row, so a typo fails before millions of rows are read;
//     every later row must carry the same bytes (skipped when the argument is a
//     constant or parameter); the state carries the jsonb bytes through parallel plans;
//   * the parallel plan support (combine adopts a deserialized partial state instead
//     of copying it);
//   * the background job: training runs on its own thread while this one answers query
//     cancel and statement_timeout within ~50 ms and forwards progress lines as NOTICEs;
//   * the single place every model is emitted: the finished bytes are checked with the
//     model reader's own validation (recsys::check_trained_model), so no trainer can
//     return a value that pg_restore would refuse; no model (no usable row) is NULL.
//
// State requirements (recsys::TrainingState, ContentState, KMeansState): members
// `std::string options_bytes`, `std::unique_ptr<recsys::BackgroundJob> job`,
// `std::unique_ptr<recsys::ModelBuilder> result`, `bool finalized`, `merge`,
// `serialized_size`, `serialize` and a static `deserialize`.
#pragma once
#include "jsonb_options.h"
#include "pg_support.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "parallel.h"
#include "training.h"

namespace recsys_pg {

// What a transition function works out about its arguments on the first row.
struct AggArgs {
  Oid key_base_type[2];  // base types (domains resolved) of the ID arguments: user, item
  int weight_arg;        // argument number of the weight, or -1
  int options_arg;       // argument number of the options, or -1
  bool options_text;     // the options come as text (an untyped literal: '{"factors": 8}')
  bool options_stable;   // the options argument is a constant or parameter: checked on the first row only
  int32 k;               // kmeans: the k of the first row
};

// The aggregate's internal value: a palloc'd box pointing at the C++ state.
template <class State>
struct AggBox {
  MemoryContextCallback callback;
  State* state;
  MemoryContext aggctx;         // where the box lives
  bool transient;               // made by deserialize for one combine step: may be adopted
  bool options_checked;         // the first row's options were read
  AggArgs args;
  struct varlena* options_raw;  // the first options value seen (copy in the aggregate context)
  bool options_null_seen;       // a row passed NULL options
};

template <class State>
void free_agg_box(void* arg) {
  AggBox<State>* box = static_cast<AggBox<State>*>(arg);
  delete box->state;  // joins any training thread (BackgroundJob's destructor cancels first)
  box->state = nullptr;
}

// A box in the aggregate context; `make` (run under the guard) creates the state.
template <class State, class Make>
AggBox<State>* new_agg_box(MemoryContext aggctx, Make make) {
  AggBox<State>* box = static_cast<AggBox<State>*>(MemoryContextAllocZero(aggctx, sizeof(AggBox<State>)));
  box->aggctx = aggctx;
  box->args.weight_arg = box->args.options_arg = -1;
  recsys_guard([&] { box->state = make(); });
  box->callback.func = free_agg_box<State>;
  box->callback.arg = box;
  MemoryContextRegisterResetCallback(aggctx, &box->callback);
  return box;
}

inline MemoryContext agg_context(FunctionCallInfo fcinfo, const char* name) {
  MemoryContext aggctx;
  if (!AggCheckCallContext(fcinfo, &aggctx)) elog(ERROR, "%s called in non-aggregate context", name);
  return aggctx;
}

// True when argument argno of the aggregate (1-based in the transition function's
// numbering) is a constant or an external parameter (the usual '{"factors": 64}'), so
// one check on the first row covers every row. The transition function's own call
// expression cannot tell (its arguments are stand-ins), so this looks at the Aggref.
bool agg_arg_is_constant(FunctionCallInfo fcinfo, int argno);

[[noreturn]] void options_differ_error(bool some_null);

// A text options argument as a jsonb value (its input function: a clear error for text
// that is not JSON).
struct varlena* text_options_as_jsonb(struct varlena* raw);

// Records the options of the first row and requires the same bytes on every later row.
// On the first row `validate(list)` runs under the guard with the typed options: it
// parses them (throwing recsys::Error naming a bad option) and the state keeps the
// jsonb bytes for the final function.
template <class State, class Validate>
void note_agg_options(AggBox<State>* box, FunctionCallInfo fcinfo, const char* fn, Validate validate) {
  const int argno = box->args.options_arg;
  if (argno < 0 || (box->options_checked && box->args.options_stable)) return;
  if (PG_ARGISNULL(argno)) {
    if (box->options_raw != nullptr) options_differ_error(true);
    box->options_null_seen = true;
    box->options_checked = true;
    return;
  }
  if (box->options_null_seen) options_differ_error(true);
  struct varlena* raw = reinterpret_cast<struct varlena*>(DatumGetPointer(PG_GETARG_DATUM(argno)));
  if (VARATT_IS_EXTERNAL(raw) || VARATT_IS_COMPRESSED(raw)) raw = pg_detoast_datum(raw);
  if (box->options_raw != nullptr) {
    if (VARSIZE_ANY_EXHDR(raw) != VARSIZE_ANY_EXHDR(box->options_raw) ||
        std::memcmp(VARDATA_ANY(raw), VARDATA_ANY(box->options_raw), VARSIZE_ANY_EXHDR(raw)) != 0)
      options_differ_error(false);
    return;
  }
  // Text options (the overloads that let '{"factors": 8}' go without a weight) are read
  // as jsonb once; the raw text is what later rows are compared with.
  struct varlena* opts = box->args.options_text ? text_options_as_jsonb(raw) : pg_detoast_datum(raw);
  JsonbOptions* parsed = read_jsonb_options(reinterpret_cast<Jsonb*>(opts), fn);
  State* st = box->state;
  recsys_guard([&] {
    validate(to_option_list(parsed), *st);
    st->options_bytes.assign(reinterpret_cast<const char*>(opts), VARSIZE(opts));
  });
  box->options_raw = static_cast<struct varlena*>(MemoryContextAlloc(box->aggctx, VARSIZE_ANY(raw)));
  std::memcpy(box->options_raw, raw, VARSIZE_ANY(raw));
  box->options_checked = true;
}

// Combine: merge partial state b into a. A deserialized b is adopted when a is empty
// (no copy), and its rows are released at once once merged.
template <class State, class MakeLike>
Datum combine_agg(FunctionCallInfo fcinfo, const char* name, MakeLike make_like) {
  MemoryContext aggctx = agg_context(fcinfo, name);
  AggBox<State>* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<AggBox<State>*>(PG_GETARG_POINTER(0));
  AggBox<State>* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<AggBox<State>*>(PG_GETARG_POINTER(1));
  if (b == nullptr) {
    if (a == nullptr) PG_RETURN_NULL();
    PG_RETURN_POINTER(a);
  }
  if (a == nullptr) {
    if (b->transient) {
      b->transient = false;  // it lives in the aggregate context, as a new box would
      PG_RETURN_POINTER(b);
    }
    State* sb = b->state;
    a = new_agg_box<State>(aggctx, [&] { return make_like(*sb); });
    a->args = b->args;
  }
  State* sa = a->state;
  State* sb = b->state;
  bool differ = false;
  recsys_guard([&] {
    differ = !sa->options_bytes.empty() && !sb->options_bytes.empty() && sa->options_bytes != sb->options_bytes;
  });
  if (differ) options_differ_error(false);
  recsys_guard([&] {
    sa->merge(*sb);
    if (b->transient) {
      delete b->state;
      b->state = nullptr;
    }
  });
  PG_RETURN_POINTER(a);
}

// Serialize a partial state for transfer from a parallel worker.
template <class State>
Datum serialize_agg(FunctionCallInfo fcinfo, const char* name) {
  (void)agg_context(fcinfo, name);
  AggBox<State>* box = reinterpret_cast<AggBox<State>*>(PG_GETARG_POINTER(0));
  uint64_t size = 0;
  recsys_guard([&] { size = box->state->serialized_size(); });
  if (size + VARHDRSZ > MaxAllocSize)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("partial %s state of %llu bytes is too large to pass between parallel workers", name,
                           static_cast<unsigned long long>(size)),
                    errhint("Lower max_parallel_workers_per_gather for this query.")));
  bytea* out = static_cast<bytea*>(palloc(size + VARHDRSZ));
  recsys_guard([&] { box->state->serialize(reinterpret_cast<uint8_t*>(VARDATA(out))); });
  SET_VARSIZE(out, size + VARHDRSZ);
  PG_RETURN_BYTEA_P(out);
}

// Deserialize a partial state in the leader.
template <class State>
Datum deserialize_agg(FunctionCallInfo fcinfo, const char* name) {
  MemoryContext aggctx = agg_context(fcinfo, name);
  bytea* in = PG_GETARG_BYTEA_PP(0);
  const uint8_t* data = reinterpret_cast<const uint8_t*>(VARDATA_ANY(in));
  uint64_t size = VARSIZE_ANY_EXHDR(in);
  AggBox<State>* box = new_agg_box<State>(aggctx, [&] { return State::deserialize(data, size).release(); });
  box->transient = true;
  PG_RETURN_POINTER(box);
}

// Waits for the job, forwarding its progress lines as NOTICEs (when verbose) and
// answering query cancel / statement_timeout within ~50 ms (CHECK_FOR_INTERRUPTS between
// short guarded waits). On cancel the error unwinds PostgreSQL frames only; the job is
// joined when the aggregate context's callback frees the state.
void wait_for_job(recsys::BackgroundJob* job, bool verbose);

// Writes the finished model into a new varlena in the current context after checking
// it with the model reader's validation; NULL when the trainer left no model.
template <class State>
Datum emit_agg_model(FunctionCallInfo fcinfo, State* st, const char* name) {
  uint64_t size = 0;
  recsys_guard([&] { size = st->result ? st->result->total_size() : 0; });
  if (size == 0) PG_RETURN_NULL();
  if (size > MaxAllocSize)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("%s: the trained model would take %llu bytes, more than the 1 GB limit of one value", name,
                           static_cast<unsigned long long>(size)),
                    errhint("Use fewer factors or neighbours, or the option store_seen = false.")));
  uint8_t* out = static_cast<uint8_t*>(palloc(size));
  recsys_guard([&] {
    st->result->write(out);
    st->result.reset();
    recsys::check_trained_model(out, size, name);
  });
  SET_VARSIZE(out, size);
  PG_RETURN_POINTER(out);
}

// The final function of every trainer. `parse(list, state)` reads the typed options
// (under the guard) into an options struct with `verbose` and `threads` members;
// `build(state, options, threads, cancel, log_line)` trains on the background job and
// leaves the model in state.result (or none: NULL). NULL when `empty(state)`.
template <class State, class Empty, class Parse, class Build>
Datum train_final(FunctionCallInfo fcinfo, const char* name, Empty empty, Parse parse, Build build) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  AggBox<State>* box = reinterpret_cast<AggBox<State>*>(PG_GETARG_POINTER(0));
  State* st = box->state;
  if (st->finalized) elog(ERROR, "%s final function called twice on one state", name);
  bool none = false;
  recsys_guard([&] { none = empty(*st); });
  if (none) PG_RETURN_NULL();
  JsonbOptions* parsed = options_from_bytes(st->options_bytes, name);
  bool verbose = guc_verbose;
  const int default_threads = guc_threads;
  recsys_guard([&] {
    auto opts = parse(to_option_list(parsed), *st);
    opts.verbose = opts.verbose || verbose;
    verbose = opts.verbose;
    const int n = recsys::resolve_threads(opts.threads > 0 ? opts.threads : default_threads);
    st->job = std::make_unique<recsys::BackgroundJob>();
    recsys::BackgroundJob* job = st->job.get();
    auto log_line = [job](const std::string& line) { job->post_message(line); };
    job->start([st, opts, n, log_line, build](const recsys::CancelToken& cancel) {
      build(*st, opts, n, cancel, log_line);
    });
  });
  wait_for_job(st->job.get(), verbose);
  recsys_guard([&] { st->job.reset(); });
  st->finalized = true;
  return emit_agg_model(fcinfo, st, name);
}

}  // namespace recsys_pg

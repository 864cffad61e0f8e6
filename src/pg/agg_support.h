// Plumbing shared by the train_content and kmeans aggregates (the same pattern as
// train_agg.cpp, generic over the core state type): a palloc'd box owning the C++
// state through a memory-context callback, the per-row options check, the background
// training job polled with CHECK_FOR_INTERRUPTS, and writing the finished model.
//
// State requirements (recsys::ContentState, recsys::KMeansState): members
// `std::string options_json`, `std::unique_ptr<recsys::BackgroundJob> job`,
// `std::unique_ptr<recsys::ModelBuilder> result`, `bool finalized`.
#pragma once
#include "pg_support.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "utils/jsonb.h"
}

#include "parallel.h"

namespace recsys_pg {

// The aggregate's internal value: a palloc'd box pointing at the C++ state.
template <class State>
struct AggBox {
  MemoryContextCallback callback;
  State* state;
  Oid key_base_type;            // base type of the item argument (train_content)
  int options_arg;              // argument number of the options, or -1
  struct varlena* options_raw;  // the first options value seen (copy in the aggregate context)
  bool options_null_seen;       // a row passed NULL options
  int32 k;                      // kmeans: the k of the first row
  bool k_set;
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
  box->options_arg = -1;
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

// The options jsonb argument as text (detoasted into the current context).
inline char* jsonb_arg_text(FunctionCallInfo fcinfo, int argno) {
  Jsonb* jb = PG_GETARG_JSONB_P(argno);
  return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

// Records the options of the first row and requires the same bytes on every later row.
// On the first row `accept(text)` runs under the guard: it validates the options
// (throwing recsys::Error naming a bad option, so a typo fails before millions of rows
// are read) and stores them in the state.
template <class State, class Accept>
void note_agg_options(AggBox<State>* box, FunctionCallInfo fcinfo, MemoryContext aggctx, Accept accept) {
  if (box->options_arg < 0) return;
  if (PG_ARGISNULL(box->options_arg)) {
    if (box->options_raw != nullptr)
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("training options must be the same for every row of one aggregate (some rows pass NULL)")));
    box->options_null_seen = true;
    return;
  }
  if (box->options_null_seen)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("training options must be the same for every row of one aggregate (some rows pass NULL)")));
  struct varlena* raw = reinterpret_cast<struct varlena*>(DatumGetPointer(PG_GETARG_DATUM(box->options_arg)));
  if (VARATT_IS_EXTERNAL(raw) || VARATT_IS_COMPRESSED(raw)) raw = pg_detoast_datum(raw);
  if (box->options_raw != nullptr) {
    if (VARSIZE_ANY_EXHDR(raw) != VARSIZE_ANY_EXHDR(box->options_raw) ||
        std::memcmp(VARDATA_ANY(raw), VARDATA_ANY(box->options_raw), VARSIZE_ANY_EXHDR(raw)) != 0)
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("training options must be the same for every row of one aggregate")));
    return;
  }
  struct varlena* opts = pg_detoast_datum(raw);
  Jsonb* jb = reinterpret_cast<Jsonb*>(opts);
  const char* text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
  State* st = box->state;
  recsys_guard([&] { accept(st, text); });
  box->options_raw = static_cast<struct varlena*>(MemoryContextAlloc(aggctx, VARSIZE(opts)));
  std::memcpy(box->options_raw, opts, VARSIZE(opts));
}

// Combine: merge partial state b into a (creating a from b's shape when a is empty).
template <class State, class Make>
Datum combine_agg(FunctionCallInfo fcinfo, const char* name, Make make_like) {
  MemoryContext aggctx = agg_context(fcinfo, name);
  AggBox<State>* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<AggBox<State>*>(PG_GETARG_POINTER(0));
  AggBox<State>* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<AggBox<State>*>(PG_GETARG_POINTER(1));
  if (b == nullptr) {
    if (a == nullptr) PG_RETURN_NULL();
    PG_RETURN_POINTER(a);
  }
  if (a == nullptr) {
    State* sb = b->state;
    a = new_agg_box<State>(aggctx, [&] { return make_like(*sb); });
    a->key_base_type = b->key_base_type;
    a->options_arg = b->options_arg;
    a->k = b->k;
    a->k_set = b->k_set;
  }
  State* sa = a->state;
  State* sb = b->state;
  bool differ = false;
  recsys_guard([&] {
    differ = !sa->options_json.empty() && !sb->options_json.empty() && sa->options_json != sb->options_json;
  });
  if (differ)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("training options must be the same for every row of one aggregate")));
  recsys_guard([&] { sa->merge(*sb); });
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
  PG_RETURN_POINTER(box);
}

// Runs the state's job and waits for it, reporting progress lines as NOTICEs and
// answering query cancel / statement_timeout within ~50 ms (CHECK_FOR_INTERRUPTS
// between short guarded waits). On cancel the error unwinds PostgreSQL frames only;
// the job is joined when the aggregate context's callback frees the state.
template <class State>
void wait_for_job(State* st, bool verbose) {
  constexpr int kMaxMessages = 32;
  static char messages[kMaxMessages][256];
  for (;;) {
    bool done = false;
    int n = 0;
    recsys_guard([&] {
      done = st->job->wait_for(50);
      std::vector<std::string> lines = st->job->take_messages();
      for (auto& l : lines) {
        if (n == kMaxMessages) break;
        snprintf(messages[n++], sizeof messages[0], "%s", l.c_str());
      }
    });
    for (int i = 0; verbose && i < n; ++i) ereport(NOTICE, (errmsg("%s", messages[i])));
    CHECK_FOR_INTERRUPTS();
    if (done) break;
  }
  recsys_guard([&] {
    st->job->rethrow_if_failed();
    st->job.reset();
  });
}

// Writes the finished model (st->result) into a new varlena in the current context.
template <class State>
Datum emit_agg_model(State* st) {
  uint64_t size = 0;
  recsys_guard([&] { size = st->result->total_size(); });
  if (size > MaxAllocSize)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("the trained model would take %llu bytes, more than the 1 GB limit of one value",
                           static_cast<unsigned long long>(size))));
  uint8_t* out = static_cast<uint8_t*>(palloc(size));
  recsys_guard([&] {
    st->result->write(out);
    st->result.reset();
  });
  SET_VARSIZE(out, size);
  return PointerGetDatum(out);
}

// The final step: `make(st, default_threads, verbose&, log_line)` parses the options
// (under the guard) and returns the job body; the job runs in the background while
// this thread polls for interrupts; then the model is returned.
template <class State, class Make>
Datum finish_agg(State* st, const char* name, Make make) {
  if (st->finalized) elog(ERROR, "%s final function called twice on one state", name);
  bool verbose = guc_verbose;
  const int default_threads = guc_threads;
  recsys_guard([&] {
    st->job = std::make_unique<recsys::BackgroundJob>();
    recsys::BackgroundJob* job = st->job.get();
    auto log_line = [job](const std::string& line) { job->post_message(line); };
    job->start(make(st, default_threads, verbose, log_line));
  });
  wait_for_job(st, verbose);
  st->finalized = true;
  return emit_agg_model(st);
}

}  // namespace recsys_pg

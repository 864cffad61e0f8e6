// Training aggregates: train_als, train_mf, train_baseline, train_popularity and
// train_item_knn, each (user, item [, weight] [, options]).
//
// The state is a recsys::TrainingState on the C++ heap, owned by a memory-context
// callback on the aggregate context, so it is freed on success, error and cancel alike.
// Rows are interned and logged in the transition function; combine / serialize /
// deserialize support parallel plans (and Citus-style push-down); the final function
// trains on a background thread while this thread polls for interrupts.
#include "pg_support.h"

#include <cstring>
#include <memory>
#include <string>

extern "C" {
#include "catalog/pg_type.h"
#include "nodes/primnodes.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
}

#include "knn.h"
#include "mf.h"
#include "popularity.h"
#include "training.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_train_trans);
PG_FUNCTION_INFO_V1(recsys_mf_trans);
PG_FUNCTION_INFO_V1(recsys_baseline_trans);
PG_FUNCTION_INFO_V1(recsys_popularity_trans);
PG_FUNCTION_INFO_V1(recsys_item_knn_trans);
PG_FUNCTION_INFO_V1(recsys_train_combine);
PG_FUNCTION_INFO_V1(recsys_train_serialize);
PG_FUNCTION_INFO_V1(recsys_train_deserialize);
PG_FUNCTION_INFO_V1(recsys_als_final);
PG_FUNCTION_INFO_V1(recsys_mf_final);
PG_FUNCTION_INFO_V1(recsys_baseline_final);
PG_FUNCTION_INFO_V1(recsys_popularity_final);
PG_FUNCTION_INFO_V1(recsys_item_knn_final);
}

using namespace recsys_pg;
using recsys::KeyKind;
using recsys::TrainingState;

namespace {

// The aggregate's internal state: a palloc'd box pointing at the C++ state.
struct StateBox {
  MemoryContextCallback callback;
  TrainingState* state;
  Oid user_base_type;  // base types of the ID arguments (domains resolved), for the hot path
  Oid item_base_type;
  int weight_arg;   // argument number of the weight, or -1
  int options_arg;  // argument number of the options, or -1
  bool options_stable;  // the options argument is a constant or parameter: checked on the first row only
  MemoryContext aggctx;  // where the box lives
  bool transient;        // made by deserialize for one combine step; its rows may be moved out
  bool arg_layout_known;
  struct varlena* options_raw;  // the first options value seen (copy in the aggregate context)
  bool options_null_seen;       // a row passed NULL options
};

void free_state(void* arg) {
  StateBox* box = static_cast<StateBox*>(arg);
  delete box->state;  // joins any training thread (its destructor cancels first)
  box->state = nullptr;
}

StateBox* new_box(MemoryContext aggctx, KeyKind ukind, Oid utype, KeyKind ikind, Oid itype) {
  StateBox* box = static_cast<StateBox*>(MemoryContextAllocZero(aggctx, sizeof(StateBox)));
  recsys_guard([&] { box->state = new TrainingState(ukind, utype, ikind, itype); });
  box->callback.func = free_state;
  box->callback.arg = box;
  MemoryContextRegisterResetCallback(aggctx, &box->callback);
  return box;
}

MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* name) {
  MemoryContext aggctx;
  if (!AggCheckCallContext(fcinfo, &aggctx)) elog(ERROR, "%s called in non-aggregate context", name);
  return aggctx;
}

// Records the options of the first row; later rows must carry the same options (a
// byte comparison of a few dozen bytes per row).
// Checks an options text; throws recsys::Error naming the bad option.
typedef void (*OptionsValidator)(const std::string& json);

void note_options(StateBox* box, FunctionCallInfo fcinfo, MemoryContext aggctx, OptionsValidator validate) {
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
  char* text = JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
  TrainingState* st = box->state;
  // Validate now, so a typo fails before millions of rows are read.
  recsys_guard([&] {
    st->options_json = text;
    validate(st->options_json);
  });
  box->options_raw = static_cast<struct varlena*>(MemoryContextAlloc(aggctx, VARSIZE(opts)));
  std::memcpy(box->options_raw, opts, VARSIZE(opts));
}

// True when the aggregate's options argument is a constant or an external parameter
// (the usual '{"factors": 64}'), so one check on the first row covers every row. The
// transition function's own call expression cannot tell (its arguments are stand-ins),
// so this looks at the Aggref.
bool options_are_constant(FunctionCallInfo fcinfo, int options_arg) {
  if (options_arg < 1) return false;
  Aggref* aggref = AggGetAggref(fcinfo);
  if (aggref == nullptr || list_length(aggref->args) < options_arg) return false;
  TargetEntry* te = static_cast<TargetEntry*>(list_nth(aggref->args, options_arg - 1));
  Node* expr = reinterpret_cast<Node*>(te->expr);
  while (expr != nullptr && IsA(expr, RelabelType)) expr = reinterpret_cast<Node*>(reinterpret_cast<RelabelType*>(expr)->arg);
  if (expr == nullptr) return false;
  if (IsA(expr, Const)) return true;
  return IsA(expr, Param) && reinterpret_cast<Param*>(expr)->paramkind == PARAM_EXTERN;
}

// Interns one row's ID whose SQL base type is `base`. Integers take the inline path
// (the common case: one load from the direct table); other types are read first, since
// reading them may detoast, and interned under the guard.
inline uint32_t intern_key(recsys::KeyInterner& keys, Datum value, Oid base) {
  uint32_t id = 0;
  switch (base) {
    case INT4OID: recsys_guard([&] { id = keys.intern_int(DatumGetInt32(value)); }); return id;
    case INT8OID: recsys_guard([&] { id = keys.intern_int(DatumGetInt64(value)); }); return id;
    case INT2OID: recsys_guard([&] { id = keys.intern_int(DatumGetInt16(value)); }); return id;
    default: break;
  }
  KeyArg k = key_from_datum(value, base, keys.kind());
  recsys_guard([&] { id = k.kind == KeyKind::Int ? keys.intern_int(k.int_value) : keys.intern_bytes(k.bytes, k.length); });
  return id;
}

// Transition: intern the user and item IDs and log (user, item, weight). Per row this is
// two interns and one append: the argument layout, ID types and (constant) options are
// worked out on the first row only.
Datum train_trans(FunctionCallInfo fcinfo, OptionsValidator validate) {
  StateBox* box = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<StateBox*>(PG_GETARG_POINTER(0));
  if (box == nullptr) {
    MemoryContext aggctx = aggregate_context(fcinfo, "train_als transition");
    Oid utype = get_fn_expr_argtype(fcinfo->flinfo, 1);
    Oid itype = get_fn_expr_argtype(fcinfo->flinfo, 2);
    // An untyped literal ('abc') arrives as unknown and is treated, and recorded, as text.
    if (utype == UNKNOWNOID) utype = TEXTOID;
    if (itype == UNKNOWNOID) itype = TEXTOID;
    KeyKind ukind = key_kind_for_type(utype, "user");
    KeyKind ikind = key_kind_for_type(itype, "item");
    box = new_box(aggctx, ukind, utype, ikind, itype);
    box->aggctx = aggctx;
    box->weight_arg = box->options_arg = -1;
    box->user_base_type = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 1));
    box->item_base_type = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 2));
    for (int a = 3; a < PG_NARGS(); ++a) {
      Oid t = get_fn_expr_argtype(fcinfo->flinfo, a);
      if (t == JSONBOID)
        box->options_arg = a;
      else
        box->weight_arg = a;
    }
    box->options_stable = options_are_constant(fcinfo, box->options_arg);
    note_options(box, fcinfo, aggctx, validate);
  } else if (!box->options_stable) {
    note_options(box, fcinfo, box->aggctx, validate);
  }
  TrainingState* st = box->state;
  if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || (box->weight_arg >= 0 && PG_ARGISNULL(box->weight_arg))) {
    st->rows_skipped++;
    PG_RETURN_POINTER(box);
  }
  uint32_t uid = intern_key(st->users, PG_GETARG_DATUM(1), box->user_base_type);
  uint32_t iid = intern_key(st->items, PG_GETARG_DATUM(2), box->item_base_type);
  double w = box->weight_arg >= 0 ? PG_GETARG_FLOAT8(box->weight_arg) : 1.0;
  recsys_guard([&] { st->add(uid, iid, w); });
  PG_RETURN_POINTER(box);
}

}  // namespace

Datum recsys_train_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, [](const std::string& j) { (void)recsys::parse_als_options(j); });
}
Datum recsys_mf_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, [](const std::string& j) { (void)recsys::parse_mf_options(j); });
}
Datum recsys_baseline_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, [](const std::string& j) { (void)recsys::parse_baseline_options(j); });
}
Datum recsys_popularity_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, [](const std::string& j) { (void)recsys::parse_popularity_options(j); });
}
Datum recsys_item_knn_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, [](const std::string& j) { (void)recsys::parse_item_knn_options(j); });
}

// Combine: merge the second partial state into the first.
Datum recsys_train_combine(PG_FUNCTION_ARGS) {
  MemoryContext aggctx = aggregate_context(fcinfo, "train_als combine");
  StateBox* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<StateBox*>(PG_GETARG_POINTER(0));
  StateBox* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<StateBox*>(PG_GETARG_POINTER(1));
  if (b == nullptr) {
    if (a == nullptr) PG_RETURN_NULL();
    PG_RETURN_POINTER(a);
  }
  if (a == nullptr) {
    if (b->transient) {
      // A deserialized partial state: adopt it as the running state (no copy). It lives
      // in the aggregate context, as a new box would.
      b->transient = false;
      PG_RETURN_POINTER(b);
    }
    TrainingState* sb = b->state;
    a = new_box(aggctx, sb->users.kind(), sb->user_type_oid, sb->items.kind(), sb->item_type_oid);
    a->aggctx = aggctx;
    a->weight_arg = b->weight_arg;
    a->user_base_type = b->user_base_type;
    a->item_base_type = b->item_base_type;
    a->options_arg = b->options_arg;
    a->options_stable = b->options_stable;
  }
  TrainingState* sa = a->state;
  TrainingState* sb = b->state;
  if (!sa->options_json.empty() && !sb->options_json.empty() && sa->options_json != sb->options_json)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("training options must be the same for every row of one aggregate")));
  recsys_guard([&] { sa->merge(*sb); });
  if (b->transient) {
    // Its rows are now in a: release them at once rather than at the end of the query.
    delete b->state;
    b->state = nullptr;
  }
  PG_RETURN_POINTER(a);
}

// Serialize a partial state for transfer from a parallel worker.
Datum recsys_train_serialize(PG_FUNCTION_ARGS) {
  (void)aggregate_context(fcinfo, "train_als serialize");
  StateBox* box = reinterpret_cast<StateBox*>(PG_GETARG_POINTER(0));
  uint64_t size = 0;
  recsys_guard([&] { size = box->state->serialized_size(); });
  if (size + VARHDRSZ > MaxAllocSize)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("partial training state of %llu bytes is too large to pass between parallel workers",
                           static_cast<unsigned long long>(size)),
                    errhint("Lower max_parallel_workers_per_gather for this query.")));
  bytea* out = static_cast<bytea*>(palloc(size + VARHDRSZ));
  recsys_guard([&] { box->state->serialize(reinterpret_cast<uint8_t*>(VARDATA(out))); });
  SET_VARSIZE(out, size + VARHDRSZ);
  PG_RETURN_BYTEA_P(out);
}

// Deserialize a partial state in the leader.
Datum recsys_train_deserialize(PG_FUNCTION_ARGS) {
  MemoryContext aggctx = aggregate_context(fcinfo, "train_als deserialize");
  bytea* in = PG_GETARG_BYTEA_PP(0);
  const uint8_t* data = reinterpret_cast<const uint8_t*>(VARDATA_ANY(in));
  uint64_t size = VARSIZE_ANY_EXHDR(in);
  StateBox* box = static_cast<StateBox*>(MemoryContextAllocZero(aggctx, sizeof(StateBox)));
  box->aggctx = aggctx;
  box->transient = true;
  box->weight_arg = box->options_arg = -1;
  recsys_guard([&] { box->state = TrainingState::deserialize(data, size).release(); });
  box->callback.func = free_state;
  box->callback.arg = box;
  MemoryContextRegisterResetCallback(aggctx, &box->callback);
  PG_RETURN_POINTER(box);
}

namespace {

constexpr int kMaxMessages = 32;
char messages[kMaxMessages][256];

// Runs `start` on a background job and waits for it, reporting progress lines as
// NOTICEs and answering query cancel / statement_timeout within ~50 ms: the wait
// happens in short guarded slices with CHECK_FOR_INTERRUPTS() between them. On cancel,
// the error unwinds PostgreSQL frames only; the job is joined when the aggregate
// context's callback frees the state.
void run_training_job(TrainingState* st, bool verbose) {
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

// Writes the finished model into a new varlena in the current memory context.
Datum emit_model(TrainingState* st) {
  uint64_t size = 0;
  recsys_guard([&] { size = st->result->total_size(); });
  if (size > MaxAllocSize)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("the trained model would take %llu bytes, more than the 1 GB limit of one value",
                           static_cast<unsigned long long>(size)),
                    errhint("Use fewer factors, or the option store_seen = false.")));
  uint8_t* out = static_cast<uint8_t*>(palloc(size));
  recsys_guard([&] {
    st->result->write(out);
    st->result.reset();
  });
  SET_VARSIZE(out, size);
  return PointerGetDatum(out);
}


// Runs one algorithm's pipeline on the state in a background job and returns the model
// (NULL when no row was usable). `make` parses the options (under the guard) and returns
// the job body.
template <class Make>
Datum train_final(FunctionCallInfo fcinfo, const char* name, Make make) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  StateBox* box = reinterpret_cast<StateBox*>(PG_GETARG_POINTER(0));
  TrainingState* st = box->state;
  if (st->finalized) elog(ERROR, "%s final function called twice on one state", name);
  if (st->log.size() == 0) PG_RETURN_NULL();
  bool verbose = guc_verbose;
  const int default_threads = guc_threads;
  recsys_guard([&] {
    st->job = std::make_unique<recsys::BackgroundJob>();
    recsys::BackgroundJob* job = st->job.get();
    auto log_line = [job](const std::string& line) { job->post_message(line); };
    job->start(make(st, default_threads, verbose, log_line));
  });
  run_training_job(st, verbose);
  st->finalized = true;
  PG_RETURN_DATUM(emit_model(st));
}

}  // namespace

// Final functions: train and return the model.
Datum recsys_als_final(PG_FUNCTION_ARGS) {
  return train_final(fcinfo, "train_als", [](TrainingState* st, int threads, bool& verbose, auto log_line) {
    recsys::AlsTrainingOptions opts = recsys::parse_als_options(st->options_json);
    opts.verbose = opts.verbose || verbose;
    verbose = opts.verbose;
    int n = recsys::resolve_threads(opts.threads > 0 ? opts.threads : threads);
    return [st, opts, n, log_line](const recsys::CancelToken& cancel) {
      recsys::build_als_model(*st, opts, n, cancel, log_line);
    };
  });
}

Datum recsys_mf_final(PG_FUNCTION_ARGS) {
  return train_final(fcinfo, "train_mf", [](TrainingState* st, int threads, bool& verbose, auto log_line) {
    recsys::MfTrainingOptions opts = recsys::parse_mf_options(st->options_json);
    opts.verbose = opts.verbose || verbose;
    verbose = opts.verbose;
    int n = recsys::resolve_threads(opts.threads > 0 ? opts.threads : threads);
    return [st, opts, n, log_line](const recsys::CancelToken& cancel) {
      recsys::build_mf_model(*st, opts, n, cancel, log_line);
    };
  });
}

Datum recsys_baseline_final(PG_FUNCTION_ARGS) {
  return train_final(fcinfo, "train_baseline", [](TrainingState* st, int threads, bool& verbose, auto log_line) {
    recsys::BaselineTrainingOptions opts = recsys::parse_baseline_options(st->options_json);
    opts.verbose = opts.verbose || verbose;
    verbose = opts.verbose;
    int n = recsys::resolve_threads(opts.threads > 0 ? opts.threads : threads);
    return [st, opts, n, log_line](const recsys::CancelToken& cancel) {
      recsys::build_baseline_model(*st, opts, n, cancel, log_line);
    };
  });
}

Datum recsys_popularity_final(PG_FUNCTION_ARGS) {
  return train_final(fcinfo, "train_popularity", [](TrainingState* st, int, bool&, auto log_line) {
    recsys::PopularityOptions opts = recsys::parse_popularity_options(st->options_json);
    return [st, opts, log_line](const recsys::CancelToken& cancel) {
      recsys::build_popularity_model(*st, opts, cancel, log_line);
    };
  });
}

// train_item_knn: the sparse item-item similarity model, built on a background job
// (multi-threaded over items, cancellable) like the other models.
Datum recsys_item_knn_final(PG_FUNCTION_ARGS) {
  return train_final(fcinfo, "train_item_knn", [](TrainingState* st, int threads, bool& verbose, auto log_line) {
    recsys::ItemKnnOptions opts = recsys::parse_item_knn_options(st->options_json);
    opts.verbose = opts.verbose || verbose;
    verbose = opts.verbose;
    int n = recsys::resolve_threads(opts.threads > 0 ? opts.threads : threads);
    return [st, opts, n, log_line](const recsys::CancelToken& cancel) {
      recsys::build_item_knn_model(*st, opts, n, cancel, log_line);
    };
  });
}

// Rating prediction, evaluation aggregates and deterministic splits:
//   predict(model, user, item) -> float8
//   rating_metrics(model, user, item, rating [, options]) -> jsonb   (aggregate)
//   ranking_metrics(model, user, item [, options]) -> jsonb          (aggregate; factor,
//                                                     popularity and item_knn models)
//   split_hash(seed, VARIADIC ids) -> float8 in [0, 1)
#include "jsonb_options.h"
#include "pg_support.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
}

#include "keys.h"
#include "metrics.h"
#include "mf.h"
#include "options.h"
#include "parallel.h"
#include "serving.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_predict);
PG_FUNCTION_INFO_V1(recsys_rating_metrics_trans);
PG_FUNCTION_INFO_V1(recsys_rating_metrics_combine);
PG_FUNCTION_INFO_V1(recsys_rating_metrics_serialize);
PG_FUNCTION_INFO_V1(recsys_rating_metrics_deserialize);
PG_FUNCTION_INFO_V1(recsys_rating_metrics_final);
PG_FUNCTION_INFO_V1(recsys_ranking_metrics_trans);
PG_FUNCTION_INFO_V1(recsys_ranking_metrics_final);
PG_FUNCTION_INFO_V1(recsys_split_hash);
PG_FUNCTION_INFO_V1(recsys_random_split);
}

using namespace recsys_pg;
using recsys::ModelKind;
using recsys::ModelView;

namespace {

MemoryContext aggregate_context(FunctionCallInfo fcinfo, const char* name) {
  MemoryContext aggctx;
  if (!AggCheckCallContext(fcinfo, &aggctx)) elog(ERROR, "%s called in non-aggregate context", name);
  return aggctx;
}

void require_rating_model(const ModelView& m, const char* fn) {
  if (m.kind() != ModelKind::BiasedMf)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s needs a rating model (train_mf or train_baseline); this model is %s", fn,
                           recsys::model_kind_name(m.kind())),
                    errhint("Implicit-feedback and popularity scores rank items but are not ratings: evaluate "
                            "them with ranking_metrics.")));
}

Datum jsonb_from_text(const std::string& s) { return DirectFunctionCall1(jsonb_in, CStringGetDatum(s.c_str())); }

}  // namespace

// predict(model, user, item): the rating on the training scale, clipped to the observed
// range; an unknown user falls back to mu + b_i, an unknown item to mu + b_u, both to mu.
Datum recsys_predict(PG_FUNCTION_ARGS) {
  ModelView m = model_arg(fcinfo, 0);
  require_rating_model(m, "predict");
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1));
  int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(2), get_fn_expr_argtype(fcinfo->flinfo, 2));
  double r = 0;
  recsys_guard([&] { r = recsys::predict_pair(m, user, item); });
  PG_RETURN_FLOAT8(r);
}

// ---- rating_metrics ------------------------------------------------------------------

namespace {

struct RatingState {
  recsys::RatingMetrics metrics;  // trivially destructible: lives in palloc'd memory
  int64 unknown_users;
  int64 unknown_items;
  int64 null_rows;
  bool skip_unknown;
  bool options_read;
};

RatingState* new_rating_state(MemoryContext ctx) {
  void* mem = MemoryContextAllocZero(ctx, sizeof(RatingState));
  return new (mem) RatingState();
}

}  // namespace

Datum recsys_rating_metrics_trans(PG_FUNCTION_ARGS) {
  MemoryContext aggctx = aggregate_context(fcinfo, "rating_metrics");
  RatingState* st = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RatingState*>(PG_GETARG_POINTER(0));
  if (st == nullptr) st = new_rating_state(aggctx);
  if (!st->options_read) {
    JsonbOptions* text = options_arg(fcinfo, 5, "rating_metrics");
    std::string unknown;
    recsys_guard([&] {
      recsys::OptionReader r(to_option_list(text), "rating_metrics");
      unknown = r.get_string("unknown", "fallback", {"fallback", "skip"});
      r.reject_unknown();
    });
    st->skip_unknown = unknown == "skip";
    st->options_read = true;
  }
  if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4)) {
    if (PG_ARGISNULL(1)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("rating_metrics: model is NULL")));
    st->null_rows++;
    PG_RETURN_POINTER(st);
  }
  ModelView m = model_arg(fcinfo, 1);
  require_rating_model(m, "rating_metrics");
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(2), get_fn_expr_argtype(fcinfo->flinfo, 2));
  int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(3), get_fn_expr_argtype(fcinfo->flinfo, 3));
  double rating = PG_GETARG_FLOAT8(4);
  if (!std::isfinite(rating))
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION), errmsg("rating_metrics: rating must be a finite number")));
  if (user < 0) st->unknown_users++;
  if (item < 0) st->unknown_items++;
  if (st->skip_unknown && (user < 0 || item < 0)) {
    st->metrics.add_skipped();
    PG_RETURN_POINTER(st);
  }
  double p = 0;
  recsys_guard([&] { p = recsys::predict_pair(m, user, item); });
  st->metrics.add(p, rating);
  PG_RETURN_POINTER(st);
}

Datum recsys_rating_metrics_combine(PG_FUNCTION_ARGS) {
  MemoryContext aggctx = aggregate_context(fcinfo, "rating_metrics combine");
  RatingState* a = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RatingState*>(PG_GETARG_POINTER(0));
  RatingState* b = PG_ARGISNULL(1) ? nullptr : reinterpret_cast<RatingState*>(PG_GETARG_POINTER(1));
  if (b == nullptr) {
    if (a == nullptr) PG_RETURN_NULL();
    PG_RETURN_POINTER(a);
  }
  if (a == nullptr) {
    a = new_rating_state(aggctx);
    *a = *b;
    PG_RETURN_POINTER(a);
  }
  a->metrics.merge(b->metrics);
  a->unknown_users += b->unknown_users;
  a->unknown_items += b->unknown_items;
  a->null_rows += b->null_rows;
  PG_RETURN_POINTER(a);
}

Datum recsys_rating_metrics_serialize(PG_FUNCTION_ARGS) {
  RatingState* st = reinterpret_cast<RatingState*>(PG_GETARG_POINTER(0));
  bytea* out = static_cast<bytea*>(palloc(VARHDRSZ + sizeof(RatingState)));
  SET_VARSIZE(out, VARHDRSZ + sizeof(RatingState));
  std::memcpy(VARDATA(out), st, sizeof(RatingState));
  PG_RETURN_BYTEA_P(out);
}

Datum recsys_rating_metrics_deserialize(PG_FUNCTION_ARGS) {
  MemoryContext aggctx = aggregate_context(fcinfo, "rating_metrics deserialize");
  bytea* in = PG_GETARG_BYTEA_PP(0);
  if (VARSIZE_ANY_EXHDR(in) != sizeof(RatingState))
    ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), errmsg("malformed rating_metrics state")));
  RatingState* st = new_rating_state(aggctx);
  std::memcpy(static_cast<void*>(st), VARDATA_ANY(in), sizeof(RatingState));
  PG_RETURN_POINTER(st);
}

Datum recsys_rating_metrics_final(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  RatingState* st = reinterpret_cast<RatingState*>(PG_GETARG_POINTER(0));
  std::string& json = *context_owned<std::string>(CurrentMemoryContext);
  recsys_guard([&] {
    const recsys::RatingMetrics& m = st->metrics;
    json = "{\"rmse\": " + recsys::json_number(m.rmse()) + ", \"mse\": " + recsys::json_number(m.mse()) +
           ", \"mae\": " + recsys::json_number(m.mae()) + ", \"rows_scored\": " + std::to_string(m.count()) +
           ", \"rows_skipped_unknown\": " + std::to_string(m.skipped()) +
           ", \"rows_skipped_null\": " + std::to_string(st->null_rows) +
           ", \"rows_unknown_user\": " + std::to_string(st->unknown_users) +
           ", \"rows_unknown_item\": " + std::to_string(st->unknown_items) +
           ", \"unknown\": " + (st->skip_unknown ? "\"skip\"" : "\"fallback\"") + "}";
  });
  PG_RETURN_DATUM(jsonb_from_text(json));
}

// ---- ranking_metrics -----------------------------------------------------------------

namespace {

// Held-out pairs of one ranking_metrics aggregate and a private copy of the model.
struct RankingState {
  MemoryContextCallback callback;
  struct varlena* model;  // copy in the aggregate context
  uint64 fingerprint;
  int64 k;
  bool exclude_seen;
  bool cold_start;
  int threads;
  std::vector<std::pair<int64_t, int64_t>>* pairs;  // (user index or -1 - unknown id, item index or -1)
  recsys::KeyInterner* unknown_users;               // IDs of test users the model does not know
  int64 null_rows;
  recsys::BackgroundJob* job;  // the final phase, run off the main thread so it can be cancelled
  std::string* json;           // its result
  int64 users_evaluated;
  int64 users_unknown_skipped;
};

// Frees the state's C++ parts; the job first (its destructor cancels and joins it), as
// it reads the pairs and the model copy, which go with this context.
void free_ranking_state(void* arg) {
  RankingState* st = static_cast<RankingState*>(arg);
  delete st->job;
  st->job = nullptr;
  delete st->json;
  st->json = nullptr;
  delete st->pairs;
  delete st->unknown_users;
  st->pairs = nullptr;
  st->unknown_users = nullptr;
}

}  // namespace

Datum recsys_ranking_metrics_trans(PG_FUNCTION_ARGS) {
  MemoryContext aggctx = aggregate_context(fcinfo, "ranking_metrics");
  RankingState* st = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<RankingState*>(PG_GETARG_POINTER(0));
  if (PG_ARGISNULL(1)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("ranking_metrics: model is NULL")));
  ModelView m = model_arg(fcinfo, 1);
  if (st == nullptr) {
    JsonbOptions* text = options_arg(fcinfo, 4, "ranking_metrics");
    int64_t k = 10;
    bool exclude_seen = true, cold_start = false;
    int threads = 0;
    recsys_guard([&] {
      recsys::OptionReader r(to_option_list(text), "ranking_metrics");
      k = r.get_int("k", 10, 1, 100000);
      exclude_seen = r.get_bool("exclude_seen", true);
      cold_start = r.get_bool("cold_start", false);
      threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
      r.reject_unknown();
    });
    // Content and kmeans models have no users to rank for (a plain error naming what to
    // use instead); item_knn ranks by the user's items' neighbour lists.
    recsys_guard([&] { recsys::check_serving_call(m, recsys::ServingCall::RankingMetrics); });
    if (m.kind() != ModelKind::Popularity && !recsys::sums_neighbour_lists(m.kind()) &&
        (m.user_factors() == nullptr || m.item_factors() == nullptr))
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("ranking_metrics cannot rank with a %s model", recsys::model_kind_name(m.kind()))));
    st = static_cast<RankingState*>(MemoryContextAllocZero(aggctx, sizeof(RankingState)));
    st->model = static_cast<struct varlena*>(MemoryContextAlloc(aggctx, m.size));
    std::memcpy(st->model, m.base, m.size);
    st->fingerprint = m.header->fingerprint;
    st->k = k;
    st->exclude_seen = exclude_seen;
    st->cold_start = cold_start;
    st->threads = threads;
    recsys_guard([&] {
      st->pairs = new std::vector<std::pair<int64_t, int64_t>>();
      st->unknown_users = new recsys::KeyInterner(recsys::KeyKind::Text);  // IDs by their text form
    });
    st->callback.func = free_ranking_state;
    st->callback.arg = st;
    MemoryContextRegisterResetCallback(aggctx, &st->callback);
  } else if (m.header->fingerprint != st->fingerprint) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("ranking_metrics: every row must use the same model")));
  }
  if (PG_ARGISNULL(2) || PG_ARGISNULL(3)) {
    st->null_rows++;
    PG_RETURN_POINTER(st);
  }
  Oid utype = get_fn_expr_argtype(fcinfo->flinfo, 2);
  int64_t user = lookup_key(m.user_keys(), PG_GETARG_DATUM(2), utype);
  int64_t item = lookup_key(m.item_keys(), PG_GETARG_DATUM(3), get_fn_expr_argtype(fcinfo->flinfo, 3));
  if (user < 0) {
    // Unknown users are told apart by their ID so each counts once.
    char* text = key_arg_text(PG_GETARG_DATUM(2), utype);
    size_t len = std::strlen(text);
    recsys_guard([&] {
      uint32_t id = st->unknown_users->intern_bytes(reinterpret_cast<const uint8_t*>(text), len);
      st->pairs->emplace_back(-1 - static_cast<int64_t>(id), item);
    });
  } else {
    recsys_guard([&] { st->pairs->emplace_back(user, item); });
  }
  PG_RETURN_POINTER(st);
}

namespace {

// The metrics of a ranking_metrics state as JSON (run on the state's background job:
// no PostgreSQL calls; stops between users once `cancel` is set).
void compute_ranking_metrics(RankingState* st, int threads, const recsys::CancelToken& cancel) {
  const ModelView m = ModelView::open(reinterpret_cast<const uint8_t*>(st->model), VARSIZE(st->model));
  auto& pairs = *st->pairs;
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  // One group per test user (known users first in index order, then unknown ones).
  std::vector<size_t> starts;
  for (size_t i = 0; i < pairs.size(); ++i)
    if (i == 0 || pairs[i].first != pairs[i - 1].first) starts.push_back(i);
  starts.push_back(pairs.size());
  const int64_t groups = static_cast<int64_t>(starts.size()) - 1;
  std::vector<std::vector<int64_t>> lists(static_cast<size_t>(std::max<int64_t>(groups, 0)));
  std::vector<char> evaluated(lists.size(), 0);
  // Factor models: items in decreasing-norm order, so each user's top-k stops early.
  recsys::ItemOrder order_storage;
  const recsys::ItemOrder* order = nullptr;
  if (recsys::has_item_order(m)) {
    recsys::build_item_order(m, order_storage);
    order = &order_storage;
  }
  cancel.check();
  recsys::parallel_for(groups, threads, cancel, [&](int64_t g, int) {
    thread_local std::vector<recsys::Scored> top;
    int64_t user = pairs[starts[g]].first;
    if (user >= 0) {
      recsys::recommend_user(m, user, st->k, st->exclude_seen, top, order);
    } else if (st->cold_start) {
      recsys::recommend_popular(m, st->k, top);
    } else {
      return;
    }
    evaluated[g] = 1;
    for (auto& s : top) lists[g].push_back(s.index);
  });
  recsys::RankingAccumulator acc(st->k, m.n_items());
  int64_t unknown_skipped = 0, unknown_evaluated = 0;
  for (int64_t g = 0; g < groups; ++g) {
    if ((g & 4095) == 0) cancel.check();
    bool unknown = pairs[starts[g]].first < 0;
    if (!evaluated[g]) {
      unknown_skipped++;
      continue;
    }
    unknown_evaluated += unknown;
    std::vector<int64_t> relevant;
    for (size_t i = starts[g]; i < starts[g + 1]; ++i) {
      int64_t item = pairs[i].second;
      // Items the model does not know stay relevant (they can never be hit): distinct
      // negative placeholders per row.
      relevant.push_back(item >= 0 ? item : -1 - static_cast<int64_t>(i));
    }
    acc.add(lists[g], relevant);
  }
  recsys::RankingMetrics mean = acc.mean();
  using recsys::json_number;
  st->users_evaluated = acc.users();
  st->users_unknown_skipped = unknown_skipped;
  *st->json = "{\"k\": " + std::to_string(st->k) + ", \"precision\": " + json_number(mean.precision) +
              ", \"recall\": " + json_number(mean.recall) + ", \"map\": " + json_number(mean.average_precision) +
              ", \"ndcg\": " + json_number(mean.ndcg) + ", \"hit_rate\": " + json_number(mean.hit_rate) +
              ", \"mrr\": " + json_number(mean.reciprocal_rank) + ", \"coverage\": " + json_number(acc.coverage()) +
              ", \"users\": " + std::to_string(acc.users()) +
              ", \"users_unknown_skipped\": " + std::to_string(unknown_skipped) +
              ", \"users_unknown_cold_start\": " + std::to_string(unknown_evaluated) +
              ", \"rows_skipped_null\": " + std::to_string(st->null_rows) +
              ", \"exclude_seen\": " + (st->exclude_seen ? "true" : "false") + "}";
}

}  // namespace

// The final phase scores every test user: on a background job (owned by the state, so
// it is joined before the pairs and the model copy are freed) while this thread answers
// cancel and statement_timeout within ~50 ms.
Datum recsys_ranking_metrics_final(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  RankingState* st = reinterpret_cast<RankingState*>(PG_GETARG_POINTER(0));
  // A second final call on one state (a query naming the same aggregate twice) reuses
  // the first call's result.
  if (st->job != nullptr) PG_RETURN_DATUM(jsonb_from_text(*st->json));
  const int threads = recsys::resolve_threads(st->threads > 0 ? st->threads : guc_threads);
  recsys_guard([&] {
    st->json = new std::string();
    st->job = new recsys::BackgroundJob();
    st->job->start([st, threads](const recsys::CancelToken& cancel) { compute_ranking_metrics(st, threads, cancel); });
  });
  poll_job(st->job);
  if (st->users_evaluated == 0)
    ereport(NOTICE,
            (errmsg("ranking_metrics: no test user could be ranked, so the metrics are NULL"),
             errdetail("%lld test users are not in the model.", static_cast<long long>(st->users_unknown_skipped)),
             errhint("Check that the test rows use the model's user IDs, or pass {\"cold_start\": true} to rank "
                     "unknown users by popularity.")));
  PG_RETURN_DATUM(jsonb_from_text(*st->json));
}

// ---- splits ----------------------------------------------------------------------------

// split_hash(seed, VARIADIC ids "any"): a number in [0, 1) that depends only on the seed
// and the values (integers of any width hash alike; other types through their text),
// the same on every machine and PostgreSQL version. random_split and the README's
// leave-k-out and k-fold recipes are built on it.
namespace {

double hash_arguments(FunctionCallInfo fcinfo, int64_t seed, int first) {
  uint64_t h = recsys::hash_int(seed);
  for (int a = first; a < PG_NARGS(); ++a) {
    uint64_t v;
    if (PG_ARGISNULL(a)) {
      v = 0x6E756C6Cull;  // "null"
    } else {
      Oid type = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, a));
      if (type == INT2OID || type == INT4OID || type == INT8OID) {
        int64_t x = type == INT2OID ? PG_GETARG_INT16(a) : type == INT4OID ? PG_GETARG_INT32(a) : PG_GETARG_INT64(a);
        v = recsys::hash_int(x);
      } else if (type == TEXTOID || type == VARCHAROID) {
        text* t = PG_GETARG_TEXT_PP(a);
        v = recsys::hash_bytes(reinterpret_cast<const uint8_t*>(VARDATA_ANY(t)), VARSIZE_ANY_EXHDR(t));
      } else {
        char* s = key_arg_text(PG_GETARG_DATUM(a), type);
        v = recsys::hash_bytes(reinterpret_cast<const uint8_t*>(s), std::strlen(s));
      }
    }
    h = recsys::hash_int(static_cast<int64_t>(h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2))));
  }
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

Datum recsys_split_hash(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0)) PG_RETURN_NULL();
  PG_RETURN_FLOAT8(hash_arguments(fcinfo, PG_GETARG_INT64(0), 1));
}

// random_split(seed, test_fraction, VARIADIC ids): true for the test rows, a fraction
// test_fraction of them, chosen by split_hash(seed, ids...) < test_fraction.
Datum recsys_random_split(PG_FUNCTION_ARGS) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) PG_RETURN_NULL();
  double fraction = PG_GETARG_FLOAT8(1);
  if (!(fraction >= 0.0 && fraction <= 1.0))
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("random_split: test_fraction must be between 0 and 1, got %g", fraction)));
  PG_RETURN_BOOL(hash_arguments(fcinfo, PG_GETARG_INT64(0), 2) < fraction);
}

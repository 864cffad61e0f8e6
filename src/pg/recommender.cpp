// Named recommenders (recsys.create_recommender ...): serving by name and the catalog's
// change signal.
//
// Every serving function has a form that takes a recommender's name in place of a model
// value; its C entry point (recsys_<fn>_by_name) puts the recommender's live model into
// argument 0 and calls the model form's entry point with the same call frame, so both
// forms run one code path. The name is resolved through a per-backend cache:
//   - the catalog table recsys_internal.recommenders has a statement trigger
//     (recsys_internal.recommenders_changed) that queues a relcache invalidation of the
//     table; every backend receives it when the writing transaction commits (and the
//     writer at once, at its next command) and marks the cache stale, so a swapped model
//     is picked up by the first transaction that starts after the commit, and a call
//     never reads the catalog while nothing changed;
//   - a stale cache is not freed at once (a call in progress, or one suspended in an outer
//     query, may still read a model through it): its memory context is retired and freed
//     at the end of the transaction;
//   - the cached model value is the catalog row's TOAST pointer for large models (the
//     model forms cache the detoasted bytes per backend, keyed by that pointer: a new
//     model is a new pointer), the bytes themselves for small ones.
// Permissions: a caller with the privileges of the recommender's owner, or of a role it
// was granted to (recsys.grant_recommender), may serve from it; checked on every call
// (SET ROLE may change the user between two calls of one backend).
#include "pg_common.h"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/detoast.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "access/skey.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
}

#include <cstring>

#include "varatt_compat.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_recommenders_changed);
PG_FUNCTION_INFO_V1(recsys_resolve_recommender);
PG_FUNCTION_INFO_V1(recsys_cron_next);
}

namespace {

constexpr int kNameMax = NAMEDATALEN;  // names are 1..63 bytes (a CHECK of the catalog)

struct Entry {
  char name[kNameMax];  // hash key
  Oid owner;
  int n_readers;
  Oid* readers;          // in the cache's context
  struct varlena* model;  // TOAST pointer or plain 4-byte-header bytes, in the cache's context
};

MemoryContext cache_cxt = nullptr;  // holds the hash table and its entries
HTAB* cache = nullptr;
bool cache_valid = false;
Oid catalog_relid = InvalidOid;
bool callbacks_registered = false;
List* retired = NIL;  // contexts of stale caches, freed at the end of the transaction

void relcache_callback(Datum, Oid relid) {
  if (relid == InvalidOid || relid == catalog_relid) cache_valid = false;
}

void xact_callback(XactEvent event, void*) {
  if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PREPARE &&
      event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
    return;
  if (retired == NIL) return;
  ListCell* lc;
  foreach (lc, retired) MemoryContextDelete(static_cast<MemoryContext>(lfirst(lc)));
  list_free(retired);  // the list lives in TopMemoryContext
  retired = NIL;
}

// A fresh cache; the stale one (if any) is retired until the transaction ends.
void reset_cache() {
  if (!callbacks_registered) {
    CacheRegisterRelcacheCallback(relcache_callback, (Datum)0);
    RegisterXactCallback(xact_callback, nullptr);
    callbacks_registered = true;
  }
  if (cache_cxt != nullptr) {
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    retired = lappend(retired, cache_cxt);
    MemoryContextSwitchTo(old);
  }
  cache_cxt = AllocSetContextCreate(TopMemoryContext, "recsys recommender cache", ALLOCSET_SMALL_SIZES);
  HASHCTL ctl;
  memset(&ctl, 0, sizeof ctl);
  ctl.keysize = kNameMax;
  ctl.entrysize = sizeof(Entry);
  ctl.hcxt = cache_cxt;
  cache = hash_create("recsys recommenders", 16, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
  // Look the catalog up again (the extension may have been dropped and created again).
  catalog_relid = InvalidOid;
  Oid nsp = get_namespace_oid("recsys_internal", true);
  if (OidIsValid(nsp)) catalog_relid = get_relname_relid("recommenders", nsp);
  cache_valid = true;
}

[[noreturn]] void no_such_recommender(const char* name) {
  ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("recommender \"%s\" does not exist", name),
                  errhint("recsys.create_recommender makes one; SELECT name FROM recsys.recommenders lists "
                          "those you may use.")));
}

// Reads the catalog row of `name` into a new cache entry; errors when there is none.
Entry* load_entry(const char* name) {
  if (!OidIsValid(catalog_relid))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("the recsys recommender catalog is missing")));
  Relation rel = table_open(catalog_relid, AccessShareLock);
  TupleDesc desc = RelationGetDescr(rel);
  // Columns by name: the catalog's layout is the extension script's business.
  int att_name = -1, att_owner = -1, att_readers = -1, att_model = -1;
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute a = TupleDescAttr(desc, i);
    if (a->attisdropped) continue;
    const char* n = NameStr(a->attname);
    if (strcmp(n, "name") == 0) att_name = i + 1;
    else if (strcmp(n, "owner") == 0) att_owner = i + 1;
    else if (strcmp(n, "readers") == 0) att_readers = i + 1;
    else if (strcmp(n, "model") == 0) att_model = i + 1;
  }
  if (att_name < 0 || att_owner < 0 || att_readers < 0 || att_model < 0)
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("the recsys recommender catalog has an unexpected layout")));

  ScanKeyData key;
  ScanKeyInit(&key, att_name, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(name));  // C collation
  // A fresh snapshot (the latest committed state and this transaction's own changes),
  // not the statement's: an invalidation is sent only after its transaction became
  // visible, so whatever invalidated the cache is seen here, and a copy loaded now is
  // never older than the last invalidation processed. (The catalog snapshot is fresh for
  // a table without a syscache, and may be taken in parallel mode, unlike
  // GetLatestSnapshot.)
  Snapshot snap = RegisterSnapshot(GetCatalogSnapshot(catalog_relid));
  TableScanDesc scan = table_beginscan(rel, snap, 1, &key);
  HeapTuple tup = heap_getnext(scan, ForwardScanDirection);
  if (tup == nullptr) {
    table_endscan(scan);
    UnregisterSnapshot(snap);
    table_close(rel, AccessShareLock);
    no_such_recommender(name);
  }
  bool isnull;
  Datum owner = heap_getattr(tup, att_owner, desc, &isnull);
  Oid owner_oid = isnull ? InvalidOid : DatumGetObjectId(owner);
  Datum readers = heap_getattr(tup, att_readers, desc, &isnull);
  Oid* reader_oids = nullptr;
  int n_readers = 0;
  MemoryContext old = MemoryContextSwitchTo(cache_cxt);
  if (!isnull) {
    ArrayType* arr = DatumGetArrayTypePCopy(readers);
    Datum* elems;
    bool* nulls;
    deconstruct_array(arr, REGROLEOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n_readers);
    reader_oids = static_cast<Oid*>(palloc0(sizeof(Oid) * (n_readers + 1)));
    for (int i = 0; i < n_readers; ++i) reader_oids[i] = nulls[i] ? InvalidOid : DatumGetObjectId(elems[i]);
  }
  Datum model = heap_getattr(tup, att_model, desc, &isnull);
  struct varlena* model_copy = nullptr;
  if (!isnull) {
    struct varlena* raw = reinterpret_cast<struct varlena*>(DatumGetPointer(model));
    if (VARATT_IS_EXTERNAL_ONDISK(raw)) {
      Size n = VARSIZE_EXTERNAL(raw);
      model_copy = static_cast<struct varlena*>(palloc(n));
      memcpy(model_copy, raw, n);
    } else {
      model_copy = detoast_attr(raw);  // a plain copy (always: the tuple is not ours)
      if (model_copy == raw) {
        Size n = VARSIZE_ANY(raw);
        model_copy = static_cast<struct varlena*>(palloc(n));
        memcpy(model_copy, raw, n);
      }
    }
  }
  MemoryContextSwitchTo(old);
  table_endscan(scan);
  UnregisterSnapshot(snap);
  table_close(rel, AccessShareLock);

  // The scan may have processed invalidations (table_open): start over on a fresh cache.
  if (!cache_valid) reset_cache();
  bool found;
  Entry* e = static_cast<Entry*>(hash_search(cache, name, HASH_ENTER, &found));
  e->owner = owner_oid;
  e->n_readers = n_readers;
  e->readers = reader_oids;
  e->model = model_copy;
  // The copies above may live in a context retired by reset_cache: copy them over.
  if (reader_oids != nullptr && GetMemoryChunkContext(reader_oids) != cache_cxt) {
    e->readers = static_cast<Oid*>(MemoryContextAlloc(cache_cxt, sizeof(Oid) * (n_readers + 1)));
    memcpy(e->readers, reader_oids, sizeof(Oid) * n_readers);
  }
  if (model_copy != nullptr && GetMemoryChunkContext(model_copy) != cache_cxt) {
    Size n = VARSIZE_ANY(model_copy);
    e->model = static_cast<struct varlena*>(MemoryContextAlloc(cache_cxt, n));
    memcpy(e->model, model_copy, n);
  }
  return e;
}

bool may_serve(const Entry* e) {
  Oid user = GetUserId();
  if (OidIsValid(e->owner) && has_privs_of_role(user, e->owner)) return true;
  for (int i = 0; i < e->n_readers; ++i)
    if (OidIsValid(e->readers[i]) && has_privs_of_role(user, e->readers[i])) return true;
  return false;
}

// The live model of recommender `name` as a Datum that stays valid until the end of the
// transaction.
Datum resolve(text* name_text) {
  char* name = text_to_cstring(name_text);
  if (strlen(name) == 0 || strlen(name) >= static_cast<size_t>(kNameMax)) no_such_recommender(name);
  if (!cache_valid || cache == nullptr) reset_cache();
  Entry* e = static_cast<Entry*>(hash_search(cache, name, HASH_FIND, nullptr));
  if (e == nullptr) e = load_entry(name);
  if (!may_serve(e))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for recommender \"%s\"", name),
                    errhint("Its owner can run recsys.grant_recommender('%s', '%s').", name,
                            GetUserNameFromId(GetUserId(), false))));
  if (e->model == nullptr)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("recommender \"%s\" has no trained model yet", name),
                    errhint("CALL recsys.retrain('%s'); its status is in recsys.recommenders.", name)));
  return PointerGetDatum(e->model);
}

}  // namespace

// Trigger (FOR EACH STATEMENT) on the catalog: every backend's cache notices the change
// when the transaction commits.
extern "C" Datum recsys_recommenders_changed(PG_FUNCTION_ARGS) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("recommenders_changed: not called as a trigger")));
  TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
  return PointerGetDatum(nullptr);
}

// recsys_internal.resolve_recommender(name) -> model: the live model, through the cache
// (for SQL-level callers; tests use it to compare with the catalog).
extern "C" Datum recsys_resolve_recommender(PG_FUNCTION_ARGS) {
  struct varlena* v = reinterpret_cast<struct varlena*>(DatumGetPointer(resolve(PG_GETARG_TEXT_PP(0))));
  // A value the caller owns (the cache's copy may be a TOAST pointer).
  struct varlena* r = detoast_attr(v);
  if (r == v) {
    r = static_cast<struct varlena*>(palloc(VARSIZE_ANY(v)));
    memcpy(r, v, VARSIZE_ANY(v));
  }
  PG_RETURN_POINTER(r);
}

// The by-name entry points: argument 0 is a recommender's name; the model form's entry
// point runs with the live model in its place.
#define RECSYS_BY_NAME(fn)                                         \
  extern "C" {                                                     \
  extern PGDLLEXPORT Datum fn(PG_FUNCTION_ARGS);                   \
  PG_FUNCTION_INFO_V1(fn##_by_name);                               \
  }                                                                \
  extern "C" Datum fn##_by_name(PG_FUNCTION_ARGS) {                \
    if (!PG_ARGISNULL(0)) fcinfo->args[0].value = resolve(PG_GETARG_TEXT_PP(0)); \
    return fn(fcinfo);                                             \
  }

RECSYS_BY_NAME(recsys_recommend)
RECSYS_BY_NAME(recsys_similar_items)
RECSYS_BY_NAME(recsys_similar_users)
RECSYS_BY_NAME(recsys_score)
RECSYS_BY_NAME(recsys_item_factors)
RECSYS_BY_NAME(recsys_user_factors)
RECSYS_BY_NAME(recsys_recommend_all)
RECSYS_BY_NAME(recsys_predict)
RECSYS_BY_NAME(recsys_recommend_content)
RECSYS_BY_NAME(recsys_recommend_for_items)
RECSYS_BY_NAME(recsys_content_similarity)
RECSYS_BY_NAME(recsys_model_info)

// ---------------------------------------------------------------------------------
// recsys_internal.cron_next(schedule, after) -> timestamptz: the first minute after
// `after` (in UTC, as pg_cron 1.4 reads schedules) that a five-field
// cron schedule matches ("m h dom mon dow": *, lists, ranges, steps, names are not
// read); NULL for what it does not read (pg_cron's "N seconds", '$', names).
namespace {

// Parses one field into bits [lo, hi]; false when the field is not understood.
bool parse_field(const char* s, int lo, int hi, uint64_t* bits) {
  *bits = 0;
  while (*s) {
    int a, b, step = 1;
    bool single = false;
    if (*s == '*') {
      a = lo;
      b = hi;
      ++s;
    } else {
      if (*s < '0' || *s > '9') return false;
      a = 0;
      while (*s >= '0' && *s <= '9') a = a * 10 + (*s++ - '0');
      b = a;
      single = true;
      if (*s == '-') {
        single = false;
        ++s;
        if (*s < '0' || *s > '9') return false;
        b = 0;
        while (*s >= '0' && *s <= '9') b = b * 10 + (*s++ - '0');
      }
    }
    if (*s == '/') {
      ++s;
      if (*s < '0' || *s > '9') return false;
      step = 0;
      while (*s >= '0' && *s <= '9') step = step * 10 + (*s++ - '0');
      if (step <= 0) return false;
      if (single) b = hi;  // "5/15" = from 5 to the end
    }
    if (a < lo || b > hi || a > b) return false;
    for (int v = a; v <= b; v += step) *bits |= uint64_t(1) << v;
    if (*s == ',') ++s;
    else if (*s) return false;
  }
  return *bits != 0;
}

}  // namespace

extern "C" Datum recsys_cron_next(PG_FUNCTION_ARGS) {
  char* sched = text_to_cstring(PG_GETARG_TEXT_PP(0));
  TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
  char* fields[5];
  int n = 0;
  for (char* tok = strtok(sched, " \t"); tok != nullptr; tok = strtok(nullptr, " \t")) {
    if (n == 5) PG_RETURN_NULL();
    fields[n++] = tok;
  }
  if (n != 5) PG_RETURN_NULL();
  uint64_t minute, hour, dom, month, dow;
  if (!parse_field(fields[0], 0, 59, &minute) || !parse_field(fields[1], 0, 23, &hour) ||
      !parse_field(fields[2], 1, 31, &dom) || !parse_field(fields[3], 1, 12, &month) ||
      !parse_field(fields[4], 0, 7, &dow))
    PG_RETURN_NULL();
  if (dow & (uint64_t(1) << 7)) dow |= 1;  // 7 is Sunday too
  const bool dom_star = fields[2][0] == '*', dow_star = fields[4][0] == '*';
  // The next whole minute, then minute by minute (at most ~5 years of minutes).
  TimestampTz t = after - (after % USECS_PER_MINUTE) + USECS_PER_MINUTE;
  for (int i = 0; i < 5 * 366 * 24 * 60; ++i, t += USECS_PER_MINUTE) {
    struct pg_tm tm;
    fsec_t fsec;
    if (timestamp2tm(t, nullptr, &tm, &fsec, nullptr, nullptr) != 0) PG_RETURN_NULL();  // UTC
    if (!(month & (uint64_t(1) << tm.tm_mon))) continue;
    int wday = j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday));
    bool dom_ok = dom & (uint64_t(1) << tm.tm_mday), dow_ok = dow & (uint64_t(1) << wday);
    // cron's rule: when both day fields are restricted, either one may match.
    bool day_ok = (dom_star || dow_star) ? (dom_ok && dow_ok) : (dom_ok || dow_ok);
    if (!day_ok) continue;
    if (!(hour & (uint64_t(1) << tm.tm_hour))) continue;
    if (!(minute & (uint64_t(1) << tm.tm_min))) continue;
    PG_RETURN_TIMESTAMPTZ(t);
  }
  PG_RETURN_NULL();
}

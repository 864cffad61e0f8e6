// ID conversion, the model cache and SRF plumbing.
#include "pg_support.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "fold_in.h"
#include "store.h"

extern "C" {
#include "access/detoast.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/uuid.h"
#include "varatt_compat.h"
}

namespace recsys_pg {

using recsys::KeyKind;

recsys::KeyKind key_kind_for_type(Oid type, const char* role) {
  Oid base = getBaseType(type);
  switch (base) {
    case INT2OID:
    case INT4OID:
    case INT8OID: return KeyKind::Int;
    case TEXTOID:
    case VARCHAROID:
    case UNKNOWNOID: return KeyKind::Text;
    case UUIDOID: return KeyKind::Uuid;
    default:
      ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                      errmsg("%s IDs of type %s are not supported", role, format_type_be(type)),
                      errhint("Use smallint, integer, bigint, text, varchar or uuid, or cast the column.")));
  }
  pg_unreachable();
}

KeyArg key_from_datum(Datum value, Oid base, KeyKind kind) {
  KeyArg k{kind, 0, nullptr, 0};
  if (kind == KeyKind::Int) {
    k.int_value = base == INT2OID ? DatumGetInt16(value) : base == INT4OID ? DatumGetInt32(value) : DatumGetInt64(value);
  } else if (kind == KeyKind::Uuid) {
    k.bytes = DatumGetUUIDP(value)->data;
    k.length = UUID_LEN;
  } else if (base == UNKNOWNOID) {  // an untyped literal passed to an "any" argument
    const char* c = DatumGetCString(value);
    k.bytes = reinterpret_cast<const uint8_t*>(c);
    k.length = std::strlen(c);
  } else {
    struct varlena* t = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(value)));
    k.bytes = reinterpret_cast<const uint8_t*>(VARDATA_ANY(t));
    k.length = VARSIZE_ANY_EXHDR(t);
  }
  return k;
}

char* key_arg_text(Datum value, Oid type) {
  Oid out;
  bool varlena;
  getTypeOutputInfo(type, &out, &varlena);
  return OidOutputFunctionCall(out, value);
}

namespace {

// Parses a canonical or compact uuid string; false when it is not one.
bool parse_uuid(const char* s, uint8_t out[16]) {
  int n = 0;
  for (const char* p = s; *p; ++p) {
    if (*p == '-') continue;
    int v;
    if (*p >= '0' && *p <= '9')
      v = *p - '0';
    else if (*p >= 'a' && *p <= 'f')
      v = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F')
      v = *p - 'A' + 10;
    else
      return false;
    if (n >= 32) return false;
    if (n % 2 == 0)
      out[n / 2] = static_cast<uint8_t>(v << 4);
    else
      out[n / 2] |= static_cast<uint8_t>(v);
    ++n;
  }
  return n == 32;
}

bool same_family(KeyKind model_kind, Oid arg_type) {
  Oid base = getBaseType(arg_type);
  switch (model_kind) {
    case KeyKind::Int: return base == INT2OID || base == INT4OID || base == INT8OID;
    case KeyKind::Text: return base == TEXTOID || base == VARCHAROID || base == UNKNOWNOID;
    case KeyKind::Uuid: return base == UUIDOID;
  }
  return false;
}

}  // namespace

int64_t lookup_key(const recsys::KeyDictionary& dict, Datum value, Oid type) {
  if (same_family(dict.kind(), type)) {
    KeyArg k = key_from_datum(value, getBaseType(type), dict.kind());
    return dict.kind() == KeyKind::Int ? dict.find_int(k.int_value) : dict.find_bytes(k.bytes, k.length);
  }
  // Different SQL types: compare through the text form.
  char* text = key_arg_text(value, type);
  switch (dict.kind()) {
    case KeyKind::Int: {
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(text, &end, 10);
      if (errno != 0 || end == text || *end != '\0') return -1;
      return dict.find_int(static_cast<int64_t>(v));
    }
    case KeyKind::Uuid: {
      uint8_t u[16];
      if (!parse_uuid(text, u)) return -1;
      return dict.find_bytes(u, 16);
    }
    case KeyKind::Text: return dict.find_bytes(reinterpret_cast<const uint8_t*>(text), std::strlen(text));
  }
  return -1;
}

namespace {

// Text IDs leave a model only when they are valid in the database's encoding (a model
// trained in a SQL_ASCII database may hold bytes a UTF8 database must not return).
void check_key_encoding(const uint8_t* bytes, uint64_t len) {
  const char* p = reinterpret_cast<const char*>(bytes);
  if (!pg_verifymbstr(p, static_cast<int>(len), true))
    ereport(ERROR, (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
                    errmsg("a text ID in the model is not valid %s", GetDatabaseEncodingName()),
                    errdetail("The model was probably trained in a database with another encoding."),
                    errhint("Retrain the model in this database, or convert its IDs before training.")));
}

}  // namespace

bool key_type_matches(KeyKind kind, Oid type) {
  Oid base = getBaseType(type);
  if (base == UNKNOWNOID) return true;
  char category;
  bool preferred;
  get_type_category_preferred(base, &category, &preferred);
  if (category == TYPCATEGORY_STRING) return true;
  switch (kind) {
    case KeyKind::Int: return base == INT2OID || base == INT4OID || base == INT8OID;
    case KeyKind::Uuid: return base == UUIDOID;
    case KeyKind::Text: return false;
  }
  return false;
}

const char* model_id_type_name(Oid model_type, KeyKind kind) {
  if (model_type != InvalidOid) {
    char* name = format_type_extended(model_type, -1, FORMAT_TYPE_ALLOW_INVALID);
    if (std::strcmp(name, "???") != 0) return name;
  }
  switch (kind) {
    case KeyKind::Int: return "bigint";
    case KeyKind::Uuid: return "uuid";
    case KeyKind::Text: return "text";
  }
  return "text";
}

void check_output_type(const recsys::KeyDictionary& dict, Oid model_type, Oid target, const char* what,
                       const char* hint_format) {
  if (key_type_matches(dict.kind(), target)) return;
  const char* model_name = model_id_type_name(model_type, dict.kind());
  // hint_format holds one "%s" for the model's type: split there (no non-literal format).
  const char* at = std::strstr(hint_format, "%s");
  const int before = at ? static_cast<int>(at - hint_format) : static_cast<int>(std::strlen(hint_format));
  ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                  errmsg("the model's %s IDs are %s, but this call would return them as %s", what, model_name,
                         format_type_be(target)),
                  errhint("%.*s%s%s", before, hint_format, at ? model_name : "", at ? at + 2 : "")));
}

Datum key_to_datum(const recsys::KeyDictionary& dict, int64_t index, Oid target_type) {
  // Built-in types are never domains: no catalog lookup for them (this runs per row).
  const bool builtin = target_type == INT8OID || target_type == INT4OID || target_type == INT2OID ||
                       target_type == TEXTOID || target_type == VARCHAROID || target_type == UUIDOID;
  Oid base = builtin ? target_type : getBaseType(target_type);
  if (dict.kind() == KeyKind::Int) {
    int64_t v = dict.int_key(index);
    if (base == TEXTOID || base == VARCHAROID) {
      char digits[MAXINT8LEN + 1];
      int n = pg_lltoa(static_cast<int64>(v), digits);
      return PointerGetDatum(cstring_to_text_with_len(digits, n));
    }
    if (base == INT8OID) return Int64GetDatum(v);
    if (base == INT4OID && v >= PG_INT32_MIN && v <= PG_INT32_MAX) return Int32GetDatum(static_cast<int32>(v));
    if (base == INT2OID && v >= PG_INT16_MIN && v <= PG_INT16_MAX) return Int16GetDatum(static_cast<int16>(v));
    if (base == INT2OID || base == INT4OID)
      ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                      errmsg("model ID %lld is out of range for type %s", static_cast<long long>(v),
                             format_type_be(target_type)),
                      errhint("Pass the ID argument as bigint.")));
  }
  uint64_t len = 0;
  const uint8_t* bytes = dict.kind() == KeyKind::Int ? nullptr : dict.bytes_key(index, &len);
  if (dict.kind() == KeyKind::Text) check_key_encoding(bytes, len);
  if (dict.kind() == KeyKind::Text && (base == TEXTOID || base == VARCHAROID))
    return PointerGetDatum(cstring_to_text_with_len(reinterpret_cast<const char*>(bytes), static_cast<int>(len)));
  if (dict.kind() == KeyKind::Uuid && base == UUIDOID) {
    pg_uuid_t* u = static_cast<pg_uuid_t*>(palloc(sizeof(pg_uuid_t)));
    std::memcpy(u->data, bytes, UUID_LEN);
    return UUIDPGetDatum(u);
  }
  // Convert through text with the target type's input function.
  char* text;
  if (dict.kind() == KeyKind::Int) {
    text = psprintf("%lld", static_cast<long long>(dict.int_key(index)));
  } else if (dict.kind() == KeyKind::Uuid) {
    text = static_cast<char*>(palloc(37));
    static const char hex[] = "0123456789abcdef";
    int o = 0;
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) text[o++] = '-';
      text[o++] = hex[bytes[i] >> 4];
      text[o++] = hex[bytes[i] & 15];
    }
    text[o] = '\0';
  } else {
    text = pnstrdup(reinterpret_cast<const char*>(bytes), static_cast<Size>(len));
  }
  Oid in;
  Oid ioparam;
  getTypeInputInfo(target_type, &in, &ioparam);
  return OidInputFunctionCall(in, text, ioparam, -1);
}

// ---------------------------------------------------------------------------------
// Model cache: detoasted copies of out-of-line models, keyed by their TOAST pointer
// (TOAST values are immutable, so a pointer names one value). Least recently used
// entries are dropped when the total passes recsys.model_cache_size.

namespace {

// One cached model. Entries are allocated one by one in cache_context, so a pin (below)
// can point at its entry while other entries come and go.
struct CacheEntry {
  Oid toastrelid;
  Oid valueid;
  int32 rawsize;
  uint32 extinfo;
  struct varlena* value;  // in cache_context
  Size bytes;
  uint64 last_used;
  int pins;                  // calls still reading this entry (never evicted while > 0)
  recsys::ItemOrder* order;  // C++ heap, built by cached_item_order; deleted on eviction
  std::vector<double>* gram;  // C++ heap, built by cached_item_gram; deleted on eviction
  StoreMapping* mapping;      // the shared store's file when value points into it (else null)
};

constexpr int kMaxEntries = 16;
CacheEntry* cache[kMaxEntries];
int cache_count = 0;
uint64 cache_clock = 0;
MemoryContext cache_context = nullptr;

// A call's hold on a cache entry, released when the call's memory context goes away
// (end of the call, error or cancel alike). User code that runs inside a call (a domain
// CHECK on an output ID may call recsys again) can then never evict what the outer call
// is reading.
struct Pin {
  MemoryContextCallback callback;
  CacheEntry* entry;
};

void release_pin(void* arg) {
  Pin* pin = static_cast<Pin*>(arg);
  if (pin->entry != nullptr) pin->entry->pins--;
  pin->entry = nullptr;
}

void pin_entry(CacheEntry* e) {
  Pin* pin = static_cast<Pin*>(palloc0(sizeof(Pin)));
  pin->entry = e;
  pin->callback.func = release_pin;
  pin->callback.arg = pin;
  MemoryContextRegisterResetCallback(CurrentMemoryContext, &pin->callback);
  e->pins++;
}

void evict(int i) {
  CacheEntry* e = cache[i];
  Assert(e->pins == 0);
  if (e->mapping != nullptr) {
    store_unmap(e->mapping);  // the value lives in the mapping
    pfree(e->mapping);
  } else {
    pfree(e->value);
  }
  delete e->order;  // vectors only: freeing them cannot throw
  delete e->gram;
  pfree(e);
  cache[i] = cache[--cache_count];
}

// Drops every entry no call is reading.
void evict_unpinned() {
  for (int i = cache_count - 1; i >= 0; --i)
    if (cache[i]->pins == 0) evict(i);
}

}  // namespace

Size cache_limit() {
  int kb = std::min(guc_cache_size_kb, guc_max_cache_size_kb);
  return static_cast<Size>(kb) * 1024;
}

namespace {

// The least recently used entry that no call is reading, other than `keep`, or -1.
int lru_victim(const CacheEntry* keep) {
  int lru = -1;
  for (int i = 0; i < cache_count; ++i) {
    const CacheEntry* e = cache[i];
    if (e == keep || e->pins > 0) continue;
    if (lru < 0 || e->last_used < cache[lru]->last_used) lru = i;
  }
  return lru;
}

// The detoasted model for an out-of-line value, pinned for the current call: from the
// cache, or detoasted and cached. When every slot is pinned (calls nested 16 deep), the
// value is detoasted into the caller's context without caching.
struct varlena* cached_detoast(struct varlena* raw) {
  struct varatt_external ext;
  VARATT_EXTERNAL_GET_POINTER(ext, raw);
  uint32 extinfo = RECSYS_EXTERNAL_EXTINFO(ext);
  for (int i = 0; i < cache_count; ++i) {
    CacheEntry* e = cache[i];
    if (e->toastrelid == ext.va_toastrelid && e->valueid == ext.va_valueid && e->rawsize == ext.va_rawsize &&
        e->extinfo == extinfo) {
      e->last_used = ++cache_clock;
      pin_entry(e);
      if (e->mapping != nullptr) {
        store_count_local_hit();
        store_touch(e->mapping);
      }
      return e->value;
    }
  }
  if (cache_context == nullptr)
    cache_context = AllocSetContextCreate(TopMemoryContext, "recsys model cache", ALLOCSET_DEFAULT_SIZES);
  // The most recently used entry is kept while making room: a function reading two
  // models may still hold it (it is pinned as well, but an older caller may not be).
  const CacheEntry* newest = nullptr;
  for (int i = 0; i < cache_count; ++i)
    if (newest == nullptr || cache[i]->last_used > newest->last_used) newest = cache[i];
  const Size incoming = static_cast<Size>(ext.va_rawsize);
  for (;;) {
    Size total = incoming;
    for (int i = 0; i < cache_count; ++i) total += cache[i]->bytes;
    if (cache_count == 0 || (total <= cache_limit() && cache_count < kMaxEntries)) break;
    int victim = lru_victim(newest);
    if (victim < 0 && cache_count == kMaxEntries) victim = lru_victim(nullptr);
    if (victim < 0) break;  // over budget only while nested calls read every entry
    evict(victim);
  }
  if (cache_count == kMaxEntries) return detoast_attr(raw);
  // The shared store's mapping of the model, else a copy of this backend's own.
  StoreMapping* mapping = static_cast<StoreMapping*>(MemoryContextAllocZero(cache_context, sizeof(StoreMapping)));
  mapping->fd = -1;
  struct varlena* value;
  Size bytes;
  if (store_map(raw, mapping)) {
    value = reinterpret_cast<struct varlena*>(const_cast<uint8_t*>(mapping->view->model.base));
    bytes = mapping->length;
  } else {
    pfree(mapping);
    mapping = nullptr;
    MemoryContext old = MemoryContextSwitchTo(cache_context);
    value = detoast_attr(raw);
    MemoryContextSwitchTo(old);
    bytes = VARSIZE(value);
  }
  CacheEntry* e = static_cast<CacheEntry*>(MemoryContextAllocZero(cache_context, sizeof(CacheEntry)));
  *e = CacheEntry{ext.va_toastrelid, ext.va_valueid, ext.va_rawsize, extinfo, value, bytes,
                  ++cache_clock, 0, nullptr, nullptr, mapping};
  cache[cache_count++] = e;
  pin_entry(e);
  return value;
}

recsys::ModelView open_bytes(struct varlena* v) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(v);
  uint64_t size = VARSIZE(v);
  if (reinterpret_cast<uintptr_t>(p) % 8 != 0) {
    void* copy = palloc(size);
    std::memcpy(copy, p, size);
    p = static_cast<const uint8_t*>(copy);
  }
  recsys::ModelView view;
  recsys_guard([&] { view = recsys::ModelView::open(p, size); });
  return view;
}

}  // namespace

recsys::ModelView model_arg(FunctionCallInfo fcinfo, int argno) {
  struct varlena* raw = reinterpret_cast<struct varlena*>(DatumGetPointer(PG_GETARG_DATUM(argno)));
  if (VARATT_IS_EXTERNAL_ONDISK(raw)) {
    if (cache_limit() == 0) {
      // Cache turned off: drop what no call reads and detoast into the caller's context.
      evict_unpinned();
      return open_bytes(detoast_attr(raw));
    }
    return open_bytes(cached_detoast(raw));
  }
  return open_bytes(pg_detoast_datum(raw));
}

const recsys::ItemOrder* cached_item_order(const recsys::ModelView& m) {
  if (!recsys::has_item_order(m) || m.n_items() == 0) return nullptr;
  for (int i = 0; i < cache_count; ++i) {
    CacheEntry& e = *cache[i];
    if (reinterpret_cast<const uint8_t*>(e.value) != m.base) continue;
    if (e.mapping != nullptr && e.mapping->view->has_order) return &e.mapping->view->order;
    if (e.order == nullptr) {
      // A copy of the item factors in norm order makes the pruned scans sequential; when it
      // would not fit in recsys.model_cache_size next to the model, only the order is kept
      // (12 bytes per item) and rows are read in place.
      const Size copy_bytes = static_cast<Size>(m.n_items()) * static_cast<Size>(m.factors()) * sizeof(float);
      const bool copy = e.bytes + copy_bytes <= cache_limit();
      recsys::ItemOrder* built = nullptr;
      recsys_guard([&] {
        std::unique_ptr<recsys::ItemOrder> o(new recsys::ItemOrder());
        recsys::build_item_order(m, *o, copy);
        built = o.release();
      });
      e.order = built;
      // Counted against recsys.model_cache_size from the next insertion on.
      e.bytes += (built->item.size() + built->position.size() + built->factors.size() + built->bias.size() +
                  built->bound.size()) * 4;
    }
    return e.order;
  }
  return nullptr;
}

const double* cached_item_gram(const recsys::ModelView& m) {
  if (m.item_factors() == nullptr || m.factors() == 0) return nullptr;
  for (int i = 0; i < cache_count; ++i) {
    CacheEntry& e = *cache[i];
    if (reinterpret_cast<const uint8_t*>(e.value) != m.base) continue;
    if (e.mapping != nullptr && e.mapping->view->gram != nullptr) return e.mapping->view->gram;
    if (e.gram == nullptr) {
      std::vector<double>* built = nullptr;
      recsys_guard([&] {
        std::unique_ptr<std::vector<double>> g(
            new std::vector<double>(recsys::item_gram(m.item_factors(), m.n_items(), m.factors())));
        built = g.release();
      });
      e.gram = built;
      e.bytes += built->size() * sizeof(double);
    }
    return e.gram->data();
  }
  return nullptr;
}

Jsonb* model_params_jsonb(const recsys::ModelView& m) {
  char* raw = nullptr;
  uint64_t len = 0;
  recsys_guard([&] {
    const std::string params = m.params_json();
    len = params.size();
    raw = static_cast<char*>(std::malloc(len + 1));
    if (raw == nullptr) throw std::bad_alloc();
    std::memcpy(raw, params.c_str(), len + 1);
  });
  char* text = pnstrdup(raw, static_cast<Size>(len));
  std::free(raw);
  if (!pg_verifymbstr(text, static_cast<int>(len), true))
    ereport(ERROR, (errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
                    errmsg("the model's parameters are not valid %s text", GetDatabaseEncodingName())));
  return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

JsonbValue* jsonb_object_field(Jsonb* jb, const char* key) {
  if (!JB_ROOT_IS_OBJECT(jb)) return nullptr;
  JsonbValue k;
  k.type = jbvString;
  k.val.string.val = const_cast<char*>(key);
  k.val.string.len = static_cast<int>(std::strlen(key));
  return findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &k);
}

double model_param(const recsys::ModelView& m, const char* key, double fallback, bool* found) {
  if (found) *found = false;
  JsonbValue* v = jsonb_object_field(model_params_jsonb(m), key);
  if (v == nullptr || v->type != jbvNumeric) return fallback;
  const double d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v->val.numeric)));
  if (!std::isfinite(d)) return fallback;
  if (found) *found = true;
  return d;
}

void lookup_keys(const recsys::KeyDictionary& dict, const Datum* elems, const bool* nulls, int n, Oid elem,
                 int64_t* out) {
  const Oid base = getBaseType(elem);
  const bool ints = dict.kind() == KeyKind::Int && (base == INT2OID || base == INT4OID || base == INT8OID);
  const bool texts = dict.kind() == KeyKind::Text && (base == TEXTOID || base == VARCHAROID);
  for (int i = 0; i < n; ++i) {
    if (nulls != nullptr && nulls[i]) {
      out[i] = -1;
    } else if (ints) {
      const int64_t v = base == INT2OID ? DatumGetInt16(elems[i]) : base == INT4OID ? DatumGetInt32(elems[i])
                                                                                     : DatumGetInt64(elems[i]);
      out[i] = dict.find_int(v);
    } else if (texts) {
      struct varlena* t = pg_detoast_datum_packed(reinterpret_cast<struct varlena*>(DatumGetPointer(elems[i])));
      out[i] = dict.find_bytes(reinterpret_cast<const uint8_t*>(VARDATA_ANY(t)), VARSIZE_ANY_EXHDR(t));
    } else {
      out[i] = lookup_key(dict, elems[i], elem);
    }
  }
}

ArrayType* array_arg(FunctionCallInfo fcinfo, int arg, const char* what) {
  if (arg < 0 || arg >= PG_NARGS() || PG_ARGISNULL(arg)) return nullptr;
  const Oid type = get_fn_expr_argtype(fcinfo->flinfo, arg);
  if (type == UNKNOWNOID)
    return DatumGetArrayTypeP(OidFunctionCall3(F_ARRAY_IN, PG_GETARG_DATUM(arg), ObjectIdGetDatum(TEXTOID),
                                               Int32GetDatum(-1)));
  if (type == InvalidOid || get_element_type(getBaseType(type)) == InvalidOid)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("%s must be an array of IDs, got %s", what,
                           type == InvalidOid ? "an unknown type" : format_type_be(type)),
                    errhint("For example %s => ARRAY[...] or %s => ARRAY(SELECT ...).", what, what)));
  return PG_GETARG_ARRAYTYPE_P(arg);
}

CallSiteMemo* call_site_memo(FunctionCallInfo fcinfo) {
  if (fcinfo->flinfo == nullptr) return nullptr;
  if (fcinfo->flinfo->fn_extra == nullptr)
    fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSiteMemo));
  return static_cast<CallSiteMemo*>(fcinfo->flinfo->fn_extra);
}

namespace {

// The bytes that identify an array argument's value: an inline value's own bytes
// (compressed or not); a TOAST pointer's (on-disk TOAST values are immutable: the model
// cache keys models the same way), so a value stored in a table is not fetched again;
// else (an expanded array a PL/pgSQL variable may still change, an indirect pointer) the
// detoasted value's.
struct ArgKey {
  const char* bytes;
  Size length;
};
ArgKey arg_key(FunctionCallInfo fcinfo, int arg) {
  struct varlena* raw = reinterpret_cast<struct varlena*>(DatumGetPointer(PG_GETARG_DATUM(arg)));
  if (VARATT_IS_EXTERNAL(raw) && !VARATT_IS_EXTERNAL_ONDISK(raw)) raw = pg_detoast_datum(raw);
  return ArgKey{reinterpret_cast<const char*>(raw), VARSIZE_ANY(raw)};
}

}  // namespace

void read_item_filter(FunctionCallInfo fcinfo, int include_arg, int exclude_arg, const recsys::ModelView& model,
                      const recsys::KeyDictionary& items, Oid model_item_type, recsys::ItemFilter* filter) {
  CallSiteMemo* memo = call_site_memo(fcinfo);
  const uint64_t fingerprint = model.header->fingerprint;
  const int64_t n_items = model.n_items();
  for (int pass = 0; pass < 2; ++pass) {
    const int arg = pass == 0 ? include_arg : exclude_arg;
    if (arg < 0 || arg >= PG_NARGS() || PG_ARGISNULL(arg)) continue;
    ArgKey key{nullptr, 0};
    // Memoized only for a value of an array type (an untyped literal is a cstring, and
    // anything else is array_arg's error).
    const Oid arg_type = get_fn_expr_argtype(fcinfo->flinfo, arg);
    const bool memoize =
        memo != nullptr && arg_type != InvalidOid && get_element_type(getBaseType(arg_type)) != InvalidOid;
    if (memoize) {
      key = arg_key(fcinfo, arg);
      const CallSiteMemo::FilterSide& m = memo->filter[pass];
      if (m.set && m.fingerprint == fingerprint && m.model_base == model.base && m.key_bytes == key.length &&
          std::memcmp(m.key, key.bytes, key.length) == 0 &&
          (m.n_items == 0 || (m.items[0] >= 0 && m.items[m.n_items - 1] < n_items))) {  // sorted: the ends bound all
        recsys_guard([&] {
          std::vector<int32_t>& dst = pass == 0 ? filter->include : filter->exclude;
          dst.assign(m.items, m.items + m.n_items);
          if (pass == 0) filter->has_include = true;
        });
        continue;
      }
    }
    ArrayType* arr = array_arg(fcinfo, arg, pass == 0 ? "include" : "exclude");
    if (arr == nullptr) continue;
    Oid elem = ARR_ELEMTYPE(arr);
    if (!key_type_matches(items.kind(), elem))
      ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                      errmsg("the %s array is %s[], but the model's item IDs are %s", pass == 0 ? "include" : "exclude",
                             format_type_be(elem), model_id_type_name(model_item_type, items.kind())),
                      errhint("Pass an array of %s.", model_id_type_name(model_item_type, items.kind()))));
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
    Datum* elems;
    bool* nulls;
    int n;
    deconstruct_array(arr, elem, typlen, typbyval, typalign, &elems, &nulls, &n);
    int32_t* found = static_cast<int32_t*>(palloc(sizeof(int32_t) * (n > 0 ? n : 1)));
    int64_t* index = static_cast<int64_t*>(palloc(sizeof(int64_t) * (n > 0 ? n : 1)));
    lookup_keys(items, elems, nulls, n, elem, index);
    int known = 0;
    for (int i = 0; i < n; ++i)
      if (index[i] >= 0) found[known++] = static_cast<int32_t>(index[i]);
    std::sort(found, found + known);
    known = static_cast<int>(std::unique(found, found + known) - found);
    recsys_guard([&] {
      std::vector<int32_t>& dst = pass == 0 ? filter->include : filter->exclude;
      dst.assign(found, found + known);
      if (pass == 0) filter->has_include = true;
    });
    if (memoize) {  // replaces the side's entry (its old memory goes with the context)
      CallSiteMemo::FilterSide& m = memo->filter[pass];
      MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;
      if (m.key) pfree(m.key);
      if (m.items) pfree(m.items);
      m = CallSiteMemo::FilterSide{};
      m.key = static_cast<char*>(MemoryContextAlloc(mcxt, key.length));
      std::memcpy(m.key, key.bytes, key.length);
      m.items = static_cast<int32_t*>(MemoryContextAlloc(mcxt, sizeof(int32_t) * (known > 0 ? known : 1)));
      std::memcpy(m.items, found, sizeof(int32_t) * known);
      m.key_bytes = key.length;
      m.n_items = known;
      m.fingerprint = fingerprint;
      m.model_base = model.base;
      m.set = true;
    }
  }
  recsys_guard([&] { filter->finish(); });
}

recsys::ModelView model_arg_uncached(FunctionCallInfo fcinfo, int argno) {
  return open_bytes(PG_DETOAST_DATUM(PG_GETARG_DATUM(argno)));
}

Tuplestorestate* begin_materialized_srf(FunctionCallInfo fcinfo, TupleDesc* desc) {
  ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  if (rsinfo == nullptr || !IsA(rsinfo, ReturnSetInfo))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("set-valued function called in context that cannot accept a set")));
  if (!(rsinfo->allowedModes & SFRM_Materialize))
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("materialize mode required, but it is not allowed in this context")));
  MemoryContext per_query = rsinfo->econtext->ecxt_per_query_memory;
  MemoryContext old = MemoryContextSwitchTo(per_query);
  TupleDesc tupdesc;
  if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("return type must be a row type")));
  tupdesc = CreateTupleDescCopy(tupdesc);
  Tuplestorestate* store = tuplestore_begin_heap(true, false, work_mem);
  rsinfo->returnMode = SFRM_Materialize;
  rsinfo->setResult = store;
  rsinfo->setDesc = tupdesc;
  MemoryContextSwitchTo(old);
  *desc = tupdesc;
  return store;
}

void poll_job(recsys::BackgroundJob* job) {
  for (;;) {
    bool done = false;
    recsys_guard([&] { done = job->wait_for(50); });
    CHECK_FOR_INTERRUPTS();
    if (done) break;
  }
  recsys_guard([&] { job->rethrow_if_failed(); });
}

void check_k(int32 k) {
  if (k <= 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("k must be greater than zero, got %d", k)));
}

}  // namespace recsys_pg

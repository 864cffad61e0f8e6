// ID conversion, the model cache and SRF plumbing.
#include "pg_support.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

extern "C" {
#include "access/detoast.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/lsyscache.h"
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

struct CacheEntry {
  Oid toastrelid;
  Oid valueid;
  int32 rawsize;
  uint32 extinfo;
  struct varlena* value;  // in cache_context
  Size bytes;
  uint64 last_used;
  recsys::ItemOrder* order;  // C++ heap, built by cached_item_order; deleted on eviction
};

constexpr int kMaxEntries = 16;
CacheEntry cache[kMaxEntries];
int cache_count = 0;
uint64 cache_clock = 0;
MemoryContext cache_context = nullptr;

void evict(int i) {
  pfree(cache[i].value);
  delete cache[i].order;  // vectors only: freeing them cannot throw
  cache[i] = cache[--cache_count];
}

Size cache_limit() { return static_cast<Size>(guc_cache_size_mb) * 1024 * 1024; }

struct varlena* cached_detoast(struct varlena* raw) {
  struct varatt_external ext;
  VARATT_EXTERNAL_GET_POINTER(ext, raw);
  uint32 extinfo = RECSYS_EXTERNAL_EXTINFO(ext);
  for (int i = 0; i < cache_count; ++i) {
    CacheEntry& e = cache[i];
    if (e.toastrelid == ext.va_toastrelid && e.valueid == ext.va_valueid && e.rawsize == ext.va_rawsize &&
        e.extinfo == extinfo) {
      e.last_used = ++cache_clock;
      return e.value;
    }
  }
  if (cache_context == nullptr)
    cache_context = AllocSetContextCreate(TopMemoryContext, "recsys model cache", ALLOCSET_DEFAULT_SIZES);
  MemoryContext old = MemoryContextSwitchTo(cache_context);
  struct varlena* value = detoast_attr(raw);
  MemoryContextSwitchTo(old);
  Size bytes = VARSIZE(value);
  // Make room: drop least recently used entries (a model larger than the limit is still
  // kept alone, so repeated calls on it stay cheap). The most recently used entry is
  // never dropped here: a function reading two models may still hold it.
  for (;;) {
    Size total = bytes;
    int newest = -1;
    for (int i = 0; i < cache_count; ++i) {
      total += cache[i].bytes;
      if (newest < 0 || cache[i].last_used > cache[newest].last_used) newest = i;
    }
    if (cache_count == 0 || (total <= cache_limit() && cache_count < kMaxEntries)) break;
    int lru = -1;
    for (int i = 0; i < cache_count; ++i)
      if (i != newest && (lru < 0 || cache[i].last_used < cache[lru].last_used)) lru = i;
    if (lru < 0) {
      if (cache_count < kMaxEntries) break;
      lru = newest;
    }
    evict(lru);
  }
  cache[cache_count++] = CacheEntry{ext.va_toastrelid, ext.va_valueid, ext.va_rawsize, extinfo, value, bytes,
                                    ++cache_clock, nullptr};
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
      // Cache turned off: drop what it holds and detoast into the caller's context.
      while (cache_count > 0) evict(0);
      return open_bytes(detoast_attr(raw));
    }
    return open_bytes(cached_detoast(raw));
  }
  return open_bytes(pg_detoast_datum(raw));
}

const recsys::ItemOrder* cached_item_order(const recsys::ModelView& m) {
  if (!recsys::has_item_order(m) || m.n_items() == 0) return nullptr;
  for (int i = 0; i < cache_count; ++i) {
    CacheEntry& e = cache[i];
    if (reinterpret_cast<const uint8_t*>(e.value) != m.base) continue;
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

void check_k(int32 k) {
  if (k <= 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("k must be greater than zero, got %d", k)));
}

}  // namespace recsys_pg

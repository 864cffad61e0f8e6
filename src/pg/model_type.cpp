// The recsys.model type: text and binary I/O (validated), model_info.
#include "pg_support.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <string>
#include <vector>

extern "C" {
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

#include "keys.h"
#include "hybrid.h"
#include "kmeans.h"
#include "options.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_model_in);
PG_FUNCTION_INFO_V1(recsys_model_out);
PG_FUNCTION_INFO_V1(recsys_model_recv);
PG_FUNCTION_INFO_V1(recsys_model_send);
PG_FUNCTION_INFO_V1(recsys_model_info);
PG_FUNCTION_INFO_V1(recsys_model_eq);
PG_FUNCTION_INFO_V1(recsys_model_ne);
PG_FUNCTION_INFO_V1(recsys_model_lt);
PG_FUNCTION_INFO_V1(recsys_model_le);
PG_FUNCTION_INFO_V1(recsys_model_gt);
PG_FUNCTION_INFO_V1(recsys_model_ge);
PG_FUNCTION_INFO_V1(recsys_model_cmp);
PG_FUNCTION_INFO_V1(recsys_model_hash);
PG_FUNCTION_INFO_V1(recsys_model_hash_extended);
}

using namespace recsys_pg;

namespace {

void check_alloc_size(uint64_t size) {
  if (size > MaxAllocSize)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("recsys model of %llu bytes exceeds the 1 GB limit", static_cast<unsigned long long>(size))));
}

// The model's parameters section, parsed by PostgreSQL's own JSON reader and written
// out again: a crafted model cannot inject keys into model_info, and its text must be
// valid in the database's encoding.
char* reemitted_params(const recsys::ModelView& m, char** inertia) {
  Jsonb* jb = model_params_jsonb(m);
  if (!JB_ROOT_IS_OBJECT(jb))
    ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
                    errmsg("invalid recsys model: its parameters are not a JSON object")));
  *inertia = pstrdup("null");
  JsonbValue* v = jsonb_object_field(jb, "inertia");
  if (v != nullptr && v->type == jbvNumeric)
    *inertia = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
  return JsonbToCString(nullptr, &jb->root, VARSIZE(jb));
}

// k-means models: clusters, dimension, inertia, cluster sizes and the centroids in the
// units of the training vectors.
void append_kmeans_info(const recsys::ModelView& m, const std::string& inertia, std::string& json) {
  const int64_t k = recsys::kmeans_clusters(m), d = recsys::kmeans_dimension(m);
  const int64_t* sizes = m.section_as<int64_t>(recsys::SectionTag::ClusterSizes);
  json += ", \"clusters\": " + std::to_string(k) + ", \"dimension\": " + std::to_string(d) +
          ", \"standardized\": " + (m.section(recsys::SectionTag::FeatureMean) ? "true" : "false") +
          ", \"inertia\": " + inertia + ", \"sizes\": [";
  for (int64_t c = 0; c < k; ++c) json += (c ? ", " : "") + std::to_string(sizes[c]);
  json += "], \"centroids\": [";
  std::vector<float> centre(static_cast<size_t>(d));
  for (int64_t c = 0; c < k; ++c) {
    recsys::kmeans_centroid(m, static_cast<int32_t>(c), true, centre.data());
    json += c ? ", [" : "[";
    for (int64_t j = 0; j < d; ++j) json += (j ? ", " : "") + recsys::json_number(centre[j]);
    json += "]";
  }
  json += "]";
}

}  // namespace

// Text input: "recsys:" + base64 of the value; every field is validated.
Datum recsys_model_in(PG_FUNCTION_ARGS) {
  const char* text = PG_GETARG_CSTRING(0);
  uint64_t length = std::strlen(text);
  uint64_t size = 0;
  recsys_guard([&] { size = recsys::model_text_decoded_size(text, length); });
  if (size < 8) ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION), errmsg("invalid recsys model: too short")));
  check_alloc_size(size);
  uint8_t* buf = static_cast<uint8_t*>(palloc(size));
  recsys_guard([&] {
    recsys::model_from_text(text, length, buf, size);
    recsys::validate_model(buf, size);
  });
  SET_VARSIZE(buf, size);
  PG_RETURN_POINTER(buf);
}

// Text output: the base64 form read by recsys_model_in (pg_dump uses it).
Datum recsys_model_out(PG_FUNCTION_ARGS) {
  recsys::ModelView m = model_arg_uncached(fcinfo, 0);
  uint64_t tsize = recsys::model_text_size(m.size);
  check_alloc_size(tsize + 1);
  char* out = static_cast<char*>(palloc(tsize + 1));
  recsys_guard([&] { recsys::model_to_text(m.base, m.size, out); });
  PG_RETURN_CSTRING(out);
}

// Binary input: the value's bytes after the length word; every field is validated.
Datum recsys_model_recv(PG_FUNCTION_ARGS) {
  StringInfo msg = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
  uint64_t body = static_cast<uint64_t>(msg->len - msg->cursor);
  uint64_t size = body + VARHDRSZ;
  check_alloc_size(size);
  uint8_t* buf = static_cast<uint8_t*>(palloc(size));
  pq_copymsgbytes(msg, reinterpret_cast<char*>(buf) + VARHDRSZ, static_cast<int>(body));
  recsys_guard([&] { recsys::validate_model(buf, size); });
  SET_VARSIZE(buf, size);
  PG_RETURN_POINTER(buf);
}

// Binary output.
Datum recsys_model_send(PG_FUNCTION_ARGS) {
  recsys::ModelView m = model_arg_uncached(fcinfo, 0);
  StringInfoData buf;
  pq_begintypsend(&buf);
  pq_sendbytes(&buf, reinterpret_cast<const char*>(m.base) + VARHDRSZ, static_cast<int>(m.size - VARHDRSZ));
  PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

// model_info(model) -> jsonb: kind, parameters, sizes, training time and loss history.
namespace {

// Hybrid models: warm and feature-only counts and each mapping's parameters.
void append_hybrid_info(const recsys::ModelView& m, std::string& json) {
  recsys::HybridCounts c;
  if (!recsys::hybrid_counts(m, &c)) return;
  auto params = [&](recsys::SectionTag tag) {
    uint64_t len = 0;
    const uint8_t* p = m.section(tag, &len);
    return p ? std::string(reinterpret_cast<const char*>(p), len) : std::string("null");
  };
  json += ", \"hybrid\": {\"warm_items\": " + std::to_string(c.warm_items) +
          ", \"feature_only_items\": " + std::to_string(c.feature_only_items) +
          ", \"warm_users\": " + std::to_string(c.warm_users) +
          ", \"feature_only_users\": " + std::to_string(c.feature_only_users) +
          ", \"item_mapping\": " + params(recsys::SectionTag::HybridItemParams) +
          ", \"user_mapping\": " + params(recsys::SectionTag::HybridUserParams) + "}";
}

}  // namespace

Datum recsys_model_info(PG_FUNCTION_ARGS) {
  recsys::ModelView m = model_arg(fcinfo, 0);
  // k-means models have no IDs (type OID 0): their ID types show as null.
  const bool has_ids = m.kind() != recsys::ModelKind::KMeans;
  const char* user_type = has_ids ? model_id_type_name(m.header->user_type_oid, m.user_keys().kind()) : nullptr;
  const char* item_type = has_ids ? model_id_type_name(m.header->item_type_oid, m.item_keys().kind()) : nullptr;
  char* inertia_text = nullptr;
  const char* params = reemitted_params(m, &inertia_text);
  const char* inertia = inertia_text;
  std::string& json = *context_owned<std::string>(CurrentMemoryContext);
  recsys_guard([&] {
    const recsys::ModelHeader& h = *m.header;
    int64_t iters = 0;
    const double* hist = m.history(&iters);
    char fp[32];
    snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(h.fingerprint));
    json = "{\"algorithm\": " + recsys::json_escape(recsys::model_kind_name(m.kind())) +
           ", \"format_version\": " + std::to_string(h.version) + ", \"parameters\": " + params +
           ", \"users\": " + std::to_string(h.n_users) + ", \"items\": " + std::to_string(h.n_items) +
           ", \"interactions\": " + std::to_string(h.n_interactions) + ", \"factors\": " + std::to_string(h.factors) +
           ", \"user_id_type\": " + (user_type ? recsys::json_escape(user_type) : std::string("null")) +
           ", \"item_id_type\": " + (item_type ? recsys::json_escape(item_type) : std::string("null")) + ", \"bytes\": " + std::to_string(m.size) +
           ", \"stores_seen_items\": " + (m.section(recsys::SectionTag::UserItems) ? "true" : "false") +
           ", \"training_seconds\": " + recsys::json_number(h.train_seconds) +
           ", \"iterations_run\": " + std::to_string(iters) +
           ", \"final_loss\": " + (iters > 0 ? recsys::json_number(hist[2 * (iters - 1)]) : std::string("null")) +
           ", \"fingerprint\": \"" + fp + "\", \"history\": [";
    for (int64_t i = 0; i < iters; ++i) {
      json += (i ? ", " : "") + std::string("{\"iteration\": ") + std::to_string(i + 1) +
              ", \"loss\": " + recsys::json_number(hist[2 * i]) + ", \"seconds\": " + recsys::json_number(hist[2 * i + 1]) +
              "}";
    }
    json += "]";
    if (m.kind() == recsys::ModelKind::KMeans) append_kmeans_info(m, inertia, json);
    append_hybrid_info(m, json);
    json += "}";
  });
  Datum result = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str()));
  PG_RETURN_DATUM(result);
}

// ---- equality and order by fingerprint ------------------------------------------
// Two models are equal when their fingerprints are: the fingerprint covers everything
// but the training time and the loss history, so a model, its dump and restore, and a
// retraining on the same rows with the same options compare equal. The order (by
// fingerprint) is arbitrary but total, for DISTINCT, GROUP BY, sort and merge joins.

namespace {

// The fingerprint from the first bytes of the value (a slice: no full detoast).
uint64 fingerprint_arg(FunctionCallInfo fcinfo, int argno) {
  const Size header = sizeof(recsys::ModelHeader);
  struct varlena* v = PG_DETOAST_DATUM_SLICE(PG_GETARG_DATUM(argno), 0, header - VARHDRSZ);
  if (VARSIZE_ANY_EXHDR(v) < header - VARHDRSZ)
    ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION), errmsg("invalid recsys model: too short")));
  uint64 fp;
  std::memcpy(&fp, VARDATA_ANY(v) + offsetof(recsys::ModelHeader, fingerprint) - VARHDRSZ, sizeof fp);
  return fp;
}

int compare_models(FunctionCallInfo fcinfo) {
  const uint64 a = fingerprint_arg(fcinfo, 0), b = fingerprint_arg(fcinfo, 1);
  return a < b ? -1 : a > b ? 1 : 0;
}

}  // namespace

Datum recsys_model_eq(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_models(fcinfo) == 0); }
Datum recsys_model_ne(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_models(fcinfo) != 0); }
Datum recsys_model_lt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_models(fcinfo) < 0); }
Datum recsys_model_le(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_models(fcinfo) <= 0); }
Datum recsys_model_gt(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_models(fcinfo) > 0); }
Datum recsys_model_ge(PG_FUNCTION_ARGS) { PG_RETURN_BOOL(compare_models(fcinfo) >= 0); }
Datum recsys_model_cmp(PG_FUNCTION_ARGS) { PG_RETURN_INT32(compare_models(fcinfo)); }

// Hash opclass support: the fingerprint is already a well-mixed 64-bit hash.
Datum recsys_model_hash(PG_FUNCTION_ARGS) {
  const uint64 fp = fingerprint_arg(fcinfo, 0);
  PG_RETURN_INT32(static_cast<int32>(static_cast<uint32>(fp ^ (fp >> 32))));
}

Datum recsys_model_hash_extended(PG_FUNCTION_ARGS) {
  const uint64 fp = fingerprint_arg(fcinfo, 0);
  const uint64 seed = static_cast<uint64>(PG_GETARG_INT64(1));
  PG_RETURN_INT64(static_cast<int64>(seed == 0 ? fp : static_cast<uint64>(recsys::hash_int(static_cast<int64_t>(fp ^ seed)))));
}

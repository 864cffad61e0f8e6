// k-means in SQL: the kmeans(features anyarray, k [, options jsonb]) aggregate,
// cluster(model, features) -> int and kmeans_centroids(model).
//
// Feature vectors are one-dimensional arrays of real, double precision, numeric,
// smallint, integer or bigint (one polymorphic signature, so ARRAY[...] of any numeric
// type resolves without casts), all of one length, without NULL elements or NaN /
// infinite values. A NULL vector is skipped and counted. k is the second argument and
// is stored with the other options, so every parallel worker's partial state carries it.
#include "trainer.h"

#include <cmath>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
}

#include "kmeans.h"
#include "options.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_kmeans_trans);
PG_FUNCTION_INFO_V1(recsys_kmeans_combine);
PG_FUNCTION_INFO_V1(recsys_kmeans_serialize);
PG_FUNCTION_INFO_V1(recsys_kmeans_deserialize);
PG_FUNCTION_INFO_V1(recsys_kmeans_final);
PG_FUNCTION_INFO_V1(recsys_cluster);
PG_FUNCTION_INFO_V1(recsys_kmeans_centroids);
}

using namespace recsys_pg;
using recsys::KMeansState;

namespace {

using KMeansBox = AggBox<KMeansState>;

// A feature array's elements, converted; exactly one of f4 / f8 is set.
struct Features {
  const float* f4;
  const double* f8;
  int d;
};

// Reads a feature vector argument (ereport on NULL elements, several dimensions, or a
// non-numeric element type).
Features read_features(ArrayType* arr, const char* fn) {
  Features out{nullptr, nullptr, 0};
  if (ARR_NDIM(arr) > 1)
    ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                    errmsg("%s: a feature vector must be a one-dimensional array, got %d dimensions", fn,
                           ARR_NDIM(arr))));
  const int n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
  if (array_contains_nulls(arr)) {
    bits8* bitmap = ARR_NULLBITMAP(arr);
    int first = 0;
    while (first < n && (bitmap[first / 8] & (1 << (first % 8)))) ++first;
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("%s: feature vector element %d is NULL", fn, first + 1),
                    errhint("Replace missing values, e.g. with coalesce(x, 0) or the column's mean.")));
  }
  const Oid elem = ARR_ELEMTYPE(arr);
  out.d = n;
  if (elem == FLOAT4OID) {
    out.f4 = reinterpret_cast<const float*>(ARR_DATA_PTR(arr));
    return out;
  }
  if (elem == FLOAT8OID) {
    out.f8 = reinterpret_cast<const double*>(ARR_DATA_PTR(arr));
    return out;
  }
  if (elem != INT2OID && elem != INT4OID && elem != INT8OID && elem != NUMERICOID)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("%s: feature vectors of type %s are not supported", fn, format_type_be(ARR_ELEMTYPE(arr))),
                    errhint("Use real[], double precision[], numeric[] or an integer array.")));
  int16 typlen;
  bool typbyval;
  char typalign;
  get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
  Datum* elems;
  bool* nulls;
  int count;
  deconstruct_array(arr, elem, typlen, typbyval, typalign, &elems, &nulls, &count);
  double* x = static_cast<double*>(palloc(sizeof(double) * (count > 0 ? count : 1)));
  for (int i = 0; i < count; ++i) {
    switch (elem) {
      case INT2OID: x[i] = DatumGetInt16(elems[i]); break;
      case INT4OID: x[i] = DatumGetInt32(elems[i]); break;
      case INT8OID: x[i] = static_cast<double>(DatumGetInt64(elems[i])); break;
      default: x[i] = DatumGetFloat8(DirectFunctionCall1(numeric_float8, elems[i])); break;
    }
  }
  out.f8 = x;
  return out;
}

// The options with "k" (the aggregate's second argument) added: the user's options must
// not name it.
recsys::KMeansOptions kmeans_options(recsys::OptionList options, int64_t k) {
  for (const auto& kv : options)
    if (kv.first == "k")
      recsys::fail(recsys::ErrorKind::InvalidParameter, "kmeans: k is the second argument; remove the option \"k\"");
  options.emplace_back("k", recsys::OptionValue::of_number(static_cast<double>(k)));
  return recsys::parse_kmeans_options(options);
}

}  // namespace

// Transition: check k and the options, append the row's vector.
Datum recsys_kmeans_trans(PG_FUNCTION_ARGS) {
  KMeansBox* box = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<KMeansBox*>(PG_GETARG_POINTER(0));
  if (PG_ARGISNULL(2))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("kmeans: k must not be NULL")));
  const int32 k = PG_GETARG_INT32(2);
  if (box == nullptr) {
    MemoryContext aggctx = agg_context(fcinfo, "kmeans transition");
    if (k < 1)
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                      errmsg("kmeans: k must be at least 1, got %d", k)));
    box = new_agg_box<KMeansState>(aggctx, [k] {
      (void)kmeans_options({}, k);  // k itself in range, before anything is allocated
      auto* st = new KMeansState();
      st->k = k;
      return st;
    });
    box->args.options_arg = PG_NARGS() > 3 ? 3 : -1;
    box->args.options_stable = agg_arg_is_constant(fcinfo, box->args.options_arg);
    box->args.k = k;
  } else if (k != box->args.k) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("kmeans: k must be the same for every row of one aggregate (%d, then %d)", box->args.k, k)));
  }
  note_agg_options(box, fcinfo, "kmeans", [](const recsys::OptionList& o, const KMeansState& st) {
    (void)kmeans_options(o, st.k);
  });
  KMeansState* st = box->state;
  if (PG_ARGISNULL(1)) {
    st->rows_skipped++;
    PG_RETURN_POINTER(box);
  }
  Features f = read_features(PG_GETARG_ARRAYTYPE_P(1), "kmeans");
  recsys_guard([&] {
    if (f.f4)
      st->add(f.f4, f.d);
    else
      st->add(f.f8, f.d);
  });
  PG_RETURN_POINTER(box);
}

Datum recsys_kmeans_combine(PG_FUNCTION_ARGS) {
  return combine_agg<KMeansState>(fcinfo, "kmeans combine", [](const KMeansState&) { return new KMeansState(); });
}

Datum recsys_kmeans_serialize(PG_FUNCTION_ARGS) { return serialize_agg<KMeansState>(fcinfo, "kmeans"); }

Datum recsys_kmeans_deserialize(PG_FUNCTION_ARGS) {
  return deserialize_agg<KMeansState>(fcinfo, "kmeans deserialize");
}

// Final: k-means++ and Lloyd on a background job; NULL when every vector was NULL.
Datum recsys_kmeans_final(PG_FUNCTION_ARGS) {
  return train_final<KMeansState>(
      fcinfo, "kmeans", [](const KMeansState& s) { return s.rows() == 0; },
      [](const recsys::OptionList& o, const KMeansState& s) { return kmeans_options(o, s.k); },
      recsys::build_kmeans_model);
}

namespace {

void require_kmeans(const recsys::ModelView& m, const char* fn) {
  if (m.kind() != recsys::ModelKind::KMeans)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s needs a kmeans model (recsys.kmeans); this model is %s", fn,
                           recsys::model_kind_name(m.kind()))));
}

}  // namespace

// cluster(model, features) -> the nearest centre's number, 0 to k - 1.
Datum recsys_cluster(PG_FUNCTION_ARGS) {
  recsys::ModelView m = model_arg(fcinfo, 0);
  require_kmeans(m, "cluster");
  Features f = read_features(PG_GETARG_ARRAYTYPE_P(1), "cluster");
  const float* x = f.f4;
  if (x == nullptr) {
    float* conv = static_cast<float*>(palloc(sizeof(float) * (f.d > 0 ? f.d : 1)));
    for (int j = 0; j < f.d; ++j) {
      const double v = f.f8[j];
      if (std::isfinite(v) && std::fabs(v) > 3.4e38)
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                        errmsg("cluster: feature vector element %d is out of range for real", j + 1)));
      conv[j] = static_cast<float>(v);
    }
    x = conv;
  }
  int32_t c = 0;
  recsys_guard([&] { c = recsys::kmeans_assign(m, x, f.d); });
  PG_RETURN_INT32(c);
}

// kmeans_centroids(model) -> (cluster, size, centroid real[]) in original units.
Datum recsys_kmeans_centroids(PG_FUNCTION_ARGS) {
  recsys::ModelView m = model_arg(fcinfo, 0);
  require_kmeans(m, "kmeans_centroids");
  int64_t k = 0, d = 0;
  recsys_guard([&] {
    k = recsys::kmeans_clusters(m);
    d = recsys::kmeans_dimension(m);
  });
  const int64_t* sizes = m.section_as<int64_t>(recsys::SectionTag::ClusterSizes);
  float* centre = static_cast<float*>(palloc(sizeof(float) * d));
  Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * d));
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  for (int64_t c = 0; c < k; ++c) {
    recsys_guard([&] { recsys::kmeans_centroid(m, static_cast<int32_t>(c), true, centre); });
    for (int64_t j = 0; j < d; ++j) elems[j] = Float4GetDatum(centre[j]);
    Datum values[3];
    bool nulls[3] = {false, false, false};
    values[0] = Int32GetDatum(static_cast<int32>(c));
    values[1] = Int64GetDatum(sizes[c]);
    values[2] = PointerGetDatum(construct_array(elems, static_cast<int>(d), FLOAT4OID, 4, true, TYPALIGN_INT));
    tuplestore_putvalues(store, desc, values, nulls);
  }
  return (Datum)0;
}

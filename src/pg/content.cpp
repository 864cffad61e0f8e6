// The content model in SQL: the train_content(item, features jsonb [, options jsonb])
// aggregate, recommend_content(model, items[] [, weights[]], k [, exclude_given]) and
// content_similarity(model, a, b), tokenize(text). similar_items on a content model is dispatched by
// serving (the stored neighbour lists).
//
// A row's features are one jsonb object; each member maps a field name to
//   * a string  : free text when the field is in the option "text_fields" (default
//                 text, description, title, name), else a categorical value;
//   * an array  : tags (each string element a token; numbers and booleans become
//                 tokens of their text form; null elements are skipped);
//   * a number  : a numeric attribute (normalized per field);
//   * a boolean : the token "true" / "false";
//   * null      : nothing.
// Nested objects and arrays inside arrays are errors. The state (recsys::ContentState)
// merges and serializes, so the aggregate runs in parallel plans; the TF-IDF and
// neighbour build runs on a background job while the backend polls for interrupts.
#include "content_features.h"
#include "trainer.h"

#include <algorithm>
#include <cmath>
#include <vector>

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
}

#include "content.h"
#include "knn.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_content_trans);
PG_FUNCTION_INFO_V1(recsys_content_combine);
PG_FUNCTION_INFO_V1(recsys_content_serialize);
PG_FUNCTION_INFO_V1(recsys_content_deserialize);
PG_FUNCTION_INFO_V1(recsys_content_final);
PG_FUNCTION_INFO_V1(recsys_recommend_content);
PG_FUNCTION_INFO_V1(recsys_content_similarity);
PG_FUNCTION_INFO_V1(recsys_tokenize);
}

using namespace recsys_pg;
using recsys::ContentState;
using recsys::KeyKind;

namespace {

using ContentBox = AggBox<ContentState>;

[[noreturn]] void bad_feature(const char* fn, const char* field, int field_len, const char* what) {
  ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                  errmsg("%s: feature \"%.*s\" %s", fn, field_len, field, what),
                  errhint("A feature value is a string, a number, a boolean, null, or an array of those (tags).")));
}

// The text of an array element used as a token (strings as they are, numbers and
// booleans by their text form); nullptr for null.
const char* element_token(const JsonbValue& v, int* len) {
  switch (v.type) {
    case jbvString:
      *len = v.val.string.len;
      return v.val.string.val;
    case jbvNumeric: {
      char* s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
      *len = static_cast<int>(strlen(s));
      return s;
    }
    case jbvBool:
      *len = v.val.boolean ? 4 : 5;
      return v.val.boolean ? "true" : "false";
    default:
      *len = 0;
      return nullptr;
  }
}

}  // namespace

void recsys_pg::add_metadata_row(ContentState* st, FunctionCallInfo fcinfo, int id_arg, Oid id_base_type,
                                 const char* fn) {
  if (PG_ARGISNULL(id_arg)) {
    st->rows_skipped++;
    return;
  }
  KeyArg k = key_from_datum(PG_GETARG_DATUM(id_arg), id_base_type, st->items.kind());
  uint32_t id = 0;
  recsys_guard([&] {
    id = k.kind == KeyKind::Int ? st->items.intern_int(k.int_value) : st->items.intern_bytes(k.bytes, k.length);
  });
  if (!PG_ARGISNULL(id_arg + 1)) add_features(st, id, PG_GETARG_JSONB_P(id_arg + 1), fn);
}

void recsys_pg::add_features(ContentState* st, uint32_t item, Jsonb* jb, const char* fn) {
  if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
    ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                    errmsg("%s: features must be a jsonb object mapping field names to values", fn),
                    errhint("For example '{\"category\": \"Kitchen\", \"tags\": [\"steel\"], \"price\": 12.5}'.")));
  JsonbIterator* it = JsonbIteratorInit(&jb->root);
  JsonbValue v;
  JsonbIteratorToken tok;
  const char* key = "";
  int key_len = 0;
  int depth = 0;
  bool in_array = false;
  while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE) {
    switch (tok) {
      case WJB_BEGIN_OBJECT:
        if (++depth > 1) bad_feature(fn, key, key_len, "is an object; nested objects are not supported");
        break;
      case WJB_END_OBJECT: --depth; break;
      case WJB_KEY:
        key = v.val.string.val;
        key_len = v.val.string.len;
        break;
      case WJB_BEGIN_ARRAY:
        if (in_array) bad_feature(fn, key, key_len, "contains an array; tags must be a flat array");
        in_array = true;
        break;
      case WJB_END_ARRAY: in_array = false; break;
      case WJB_ELEM: {
        int len = 0;
        const char* tokbytes = element_token(v, &len);
        if (tokbytes == nullptr) break;
        recsys_guard([&] { st->add_token(item, std::string(key, key_len), std::string(tokbytes, len)); });
        break;
      }
      case WJB_VALUE:
        if (v.type == jbvString) {
          recsys_guard([&] {
            st->add_string(item, std::string(key, key_len), std::string(v.val.string.val, v.val.string.len));
          });
        } else if (v.type == jbvNumeric) {
          // Out of double range becomes +-Infinity, which add_number reports by field name.
          const double x =
              DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v.val.numeric)));
          recsys_guard([&] { st->add_number(item, std::string(key, key_len), x); });
        } else if (v.type == jbvBool) {
          const bool b = v.val.boolean;
          recsys_guard([&] { st->add_token(item, std::string(key, key_len), b ? "true" : "false"); });
        }
        break;
      default: break;
    }
  }
}

// Transition: intern the item; add the row's features.
Datum recsys_content_trans(PG_FUNCTION_ARGS) {
  ContentBox* box = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<ContentBox*>(PG_GETARG_POINTER(0));
  if (box == nullptr) {
    MemoryContext aggctx = agg_context(fcinfo, "train_content transition");
    Oid itype = get_fn_expr_argtype(fcinfo->flinfo, 1);
    if (itype == UNKNOWNOID) itype = TEXTOID;  // an untyped literal counts as text
    KeyKind kind = key_kind_for_type(itype, "item");
    box = new_agg_box<ContentState>(aggctx, [&] { return new ContentState(kind, itype); });
    box->args.key_base_type[1] = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 1));
    box->args.options_arg = PG_NARGS() > 3 ? 3 : -1;
    box->args.options_stable = agg_arg_is_constant(fcinfo, box->args.options_arg);
  }
  note_agg_options(box, fcinfo, "train_content", [](const recsys::OptionList& o, const ContentState&) {
    (void)recsys::parse_content_options(o);
  });
  add_metadata_row(box->state, fcinfo, 1, box->args.key_base_type[1], "train_content");
  PG_RETURN_POINTER(box);
}

Datum recsys_content_combine(PG_FUNCTION_ARGS) {
  return combine_agg<ContentState>(fcinfo, "train_content combine", [](const ContentState& like) {
    return new ContentState(like.items.kind(), like.item_type_oid);
  });
}

Datum recsys_content_serialize(PG_FUNCTION_ARGS) { return serialize_agg<ContentState>(fcinfo, "train_content"); }

Datum recsys_content_deserialize(PG_FUNCTION_ARGS) {
  return deserialize_agg<ContentState>(fcinfo, "train_content deserialize");
}

// Final: TF-IDF, normalization and neighbour lists on a background job; NULL when no
// row had an item.
Datum recsys_content_final(PG_FUNCTION_ARGS) {
  return train_final<ContentState>(
      fcinfo, "train_content", [](const ContentState& s) { return s.items.size() == 0; },
      [](const recsys::OptionList& o, const ContentState&) { return recsys::parse_content_options(o); },
      recsys::build_content_model);
}

// ---------------------------------------------------------------- serving

namespace {

// One recommend_content / recommend_for_items call's buffers, owned by its memory
// context (never shared between calls: emitting an ID may run user SQL).
struct FromItemsBuffers {
  std::vector<recsys::Scored> results;
  std::vector<int64_t> items;
  std::vector<float> weights;
};

void require_content(const recsys::ModelView& m, const char* fn) {
  if (m.kind() != recsys::ModelKind::Content)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("%s needs a content model (recsys.train_content); this model is %s", fn,
                           recsys::model_kind_name(m.kind()))));
}

}  // namespace

// recommend_content(model, items anyarray, k [, exclude_given]) and
// recommend_content(model, items anyarray, weights float8[], k [, exclude_given]):
// items by cosine to the (weighted) sum of the given items' feature vectors. Unknown
// items and NULL elements are skipped (with their weights); when no given item is in
// the model there are no rows. IDs come back in the array's element type.
namespace {

// The body of recommend_content (content models only; recommend_for_items, for every
// kind, is in live.cpp).
Datum recommend_from_items(FunctionCallInfo fcinfo, const char* fn, bool knn_too) {
  const bool weighted = PG_NARGS() == 5;
  const int k_arg = weighted ? 3 : 2;
  recsys::ModelView m = model_arg(fcinfo, 0);
  const bool is_knn = recsys::sums_neighbour_lists(m.kind());
  if (!knn_too || !is_knn) {
    if (knn_too && m.kind() != recsys::ModelKind::Content)
      ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                      errmsg("%s needs an item_knn or content model; this model is %s", fn,
                             recsys::model_kind_name(m.kind())),
                      errhint("Factor and popularity models recommend for known users: recsys.recommend.")));
    require_content(m, fn);
  }
  int32 k = PG_GETARG_INT32(k_arg);
  check_k(k);
  const bool exclude_given = PG_GETARG_BOOL(k_arg + 1);
  ArrayType* arr = PG_GETARG_ARRAYTYPE_P(1);
  Oid elem = ARR_ELEMTYPE(arr);
  int16 typlen;
  bool typbyval;
  char typalign;
  get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
  Datum* elems;
  bool* nulls;
  int n;
  deconstruct_array(arr, elem, typlen, typbyval, typalign, &elems, &nulls, &n);
  double* weights = nullptr;
  if (weighted) {
    ArrayType* warr = PG_GETARG_ARRAYTYPE_P(2);
    Datum* wd;
    bool* wnulls;
    int wn;
    deconstruct_array(warr, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &wd, &wnulls, &wn);
    if (wn != n)
      ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
                      errmsg("%s: %d weights for %d items; give one weight per item", fn, wn, n)));
    weights = static_cast<double*>(palloc(sizeof(double) * (n > 0 ? n : 1)));
    for (int i = 0; i < n; ++i) {
      if (wnulls[i])
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("%s: weight %d is NULL", fn, i + 1)));
      weights[i] = DatumGetFloat8(wd[i]);
      if (std::isnan(weights[i]) || std::isinf(weights[i]))
        ereport(ERROR, (errcode(ERRCODE_DATA_EXCEPTION),
                        errmsg("%s: weight %d must be a finite number", fn, i + 1)));
    }
  }
  recsys::KeyDictionary dict = m.item_keys();
  int64_t* idx = static_cast<int64_t*>(palloc(sizeof(int64_t) * (n > 0 ? n : 1)));
  float* w = static_cast<float*>(palloc(sizeof(float) * (n > 0 ? n : 1)));
  int known = 0;
  for (int i = 0; i < n; ++i) {
    if (nulls[i]) continue;
    int64_t j = lookup_key(dict, elems[i], elem);
    if (j < 0) continue;
    idx[known] = j;
    w[known] = weights ? static_cast<float>(weights[i]) : 1.0f;
    ++known;
  }
  int64_t count = 0;
  FromItemsBuffers* buf = context_owned<FromItemsBuffers>(CurrentMemoryContext);
  if (known > 0) {
    recsys_guard([&] {
      buf->items.assign(idx, idx + known);
      if (weighted) buf->weights.assign(w, w + known);
      count = is_knn ? recsys::knn_recommend_from_items(m, buf->items, buf->weights, k, exclude_given, buf->results)
                     : recsys::content_recommend_from_items(m, buf->items, buf->weights, k, exclude_given,
                                                            buf->results);
    });
  }
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  Oid id_type = TupleDescAttr(desc, 0)->atttypid;
  check_output_type(dict, m.header->item_type_oid, id_type, "item", "Pass the items as an array of %s.");
  for (int64_t r = 0; r < count; ++r) {
    Datum values[2];
    bool rnulls[2] = {false, false};
    values[0] = key_to_datum(dict, buf->results[r].index, id_type);
    values[1] = Float4GetDatum(buf->results[r].score);
    tuplestore_putvalues(store, desc, values, rnulls);
  }
  return (Datum)0;
}

}  // namespace

Datum recsys_recommend_content(PG_FUNCTION_ARGS) { return recommend_from_items(fcinfo, "recommend_content", false); }


// content_similarity(model, a, b): the cosine of two items' feature vectors; NULL when
// either is not in the model.
Datum recsys_content_similarity(PG_FUNCTION_ARGS) {
  recsys::ModelView m = model_arg(fcinfo, 0);
  require_content(m, "content_similarity");
  recsys::KeyDictionary dict = m.item_keys();
  int64_t a = lookup_key(dict, PG_GETARG_DATUM(1), get_fn_expr_argtype(fcinfo->flinfo, 1));
  int64_t b = lookup_key(dict, PG_GETARG_DATUM(2), get_fn_expr_argtype(fcinfo->flinfo, 2));
  if (a < 0 || b < 0) PG_RETURN_NULL();
  float s = 0;
  recsys_guard([&] { s = recsys::content_similarity(m, a, b); });
  PG_RETURN_FLOAT4(s);
}

// tokenize(text) -> text[]: the words train_content takes from a free-text field.
Datum recsys_tokenize(PG_FUNCTION_ARGS) {
  text* t = PG_GETARG_TEXT_PP(0);
  const char* p = VARDATA_ANY(t);
  const uint64_t len = VARSIZE_ANY_EXHDR(t);
  int n = 0;
  std::vector<std::string>& words = *context_owned<std::vector<std::string>>(CurrentMemoryContext);
  recsys_guard([&] {
    words = recsys::tokenize_text(p, len);
    n = static_cast<int>(words.size());
  });
  Datum* elems = static_cast<Datum*>(palloc(sizeof(Datum) * (n > 0 ? n : 1)));
  for (int i = 0; i < n; ++i)
    elems[i] = PointerGetDatum(cstring_to_text_with_len(words[i].data(), static_cast<int>(words[i].size())));
  PG_RETURN_ARRAYTYPE_P(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

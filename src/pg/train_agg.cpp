// Training aggregates: train_als, train_mf, train_baseline, train_popularity,
// train_item_knn and train_ease, each (user, item [, weight] [, options]).
//
// The state is a recsys::TrainingState in the framework's box (trainer.h): rows are
// interned and logged in the transition function; combine / serialize / deserialize
// support parallel plans (and Citus-style push-down); the final function trains on a
// background job and emits the validated model.
#include "trainer.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
}

#include "ease.h"
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
PG_FUNCTION_INFO_V1(recsys_ease_trans);
PG_FUNCTION_INFO_V1(recsys_train_combine);
PG_FUNCTION_INFO_V1(recsys_train_serialize);
PG_FUNCTION_INFO_V1(recsys_train_deserialize);
PG_FUNCTION_INFO_V1(recsys_als_final);
PG_FUNCTION_INFO_V1(recsys_mf_final);
PG_FUNCTION_INFO_V1(recsys_baseline_final);
PG_FUNCTION_INFO_V1(recsys_popularity_final);
PG_FUNCTION_INFO_V1(recsys_item_knn_final);
PG_FUNCTION_INFO_V1(recsys_ease_final);
}

using namespace recsys_pg;
using recsys::KeyKind;
using recsys::OptionList;
using recsys::TrainingState;

namespace {

using TrainBox = AggBox<TrainingState>;

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

// The first row: ID types, argument layout and whether the options are constant.
TrainBox* first_row_box(FunctionCallInfo fcinfo) {
  MemoryContext aggctx = agg_context(fcinfo, "training transition");
  Oid utype = get_fn_expr_argtype(fcinfo->flinfo, 1);
  Oid itype = get_fn_expr_argtype(fcinfo->flinfo, 2);
  // An untyped literal ('abc') arrives as unknown and is treated, and recorded, as text.
  if (utype == UNKNOWNOID) utype = TEXTOID;
  if (itype == UNKNOWNOID) itype = TEXTOID;
  KeyKind ukind = key_kind_for_type(utype, "user");
  KeyKind ikind = key_kind_for_type(itype, "item");
  TrainBox* box = new_agg_box<TrainingState>(aggctx, [&] { return new TrainingState(ukind, utype, ikind, itype); });
  box->args.key_base_type[0] = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 1));
  box->args.key_base_type[1] = getBaseType(get_fn_expr_argtype(fcinfo->flinfo, 2));
  for (int a = 3; a < PG_NARGS(); ++a) {
    const Oid t = get_fn_expr_argtype(fcinfo->flinfo, a);
    if (t == JSONBOID || t == TEXTOID) {
      box->args.options_arg = a;
      box->args.options_text = t == TEXTOID;
    } else {
      box->args.weight_arg = a;
    }
  }
  box->args.options_stable = agg_arg_is_constant(fcinfo, box->args.options_arg);
  return box;
}

// Transition: intern the user and item IDs and log (user, item, weight). Per row this is
// two interns and one append: the argument layout, ID types and (constant) options are
// worked out on the first row only.
template <class Parse>
Datum train_trans(FunctionCallInfo fcinfo, const char* name, Parse parse) {
  TrainBox* box = PG_ARGISNULL(0) ? first_row_box(fcinfo) : reinterpret_cast<TrainBox*>(PG_GETARG_POINTER(0));
  note_agg_options(box, fcinfo, name, [parse](const OptionList& o, const TrainingState&) { (void)parse(o); });
  TrainingState* st = box->state;
  const int warg = box->args.weight_arg;
  if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || (warg >= 0 && PG_ARGISNULL(warg))) {
    st->rows_skipped++;
    PG_RETURN_POINTER(box);
  }
  uint32_t uid = intern_key(st->users, PG_GETARG_DATUM(1), box->args.key_base_type[0]);
  uint32_t iid = intern_key(st->items, PG_GETARG_DATUM(2), box->args.key_base_type[1]);
  double w = warg >= 0 ? PG_GETARG_FLOAT8(warg) : 1.0;
  recsys_guard([&] { st->add(uid, iid, w); });
  PG_RETURN_POINTER(box);
}

// The final step of the five interaction trainers: NULL without rows.
template <class Parse, class Build>
Datum interaction_final(FunctionCallInfo fcinfo, const char* name, Parse parse, Build build) {
  return train_final<TrainingState>(
      fcinfo, name, [](const TrainingState& s) { return s.log.size() == 0; },
      [parse](const OptionList& o, const TrainingState&) { return parse(o); }, build);
}

void build_popularity(TrainingState& st, const recsys::PopularityOptions& o, int, const recsys::CancelToken& cancel,
                      const std::function<void(const std::string&)>& log_line) {
  recsys::build_popularity_model(st, o, cancel, log_line);
}

}  // namespace

Datum recsys_train_trans(PG_FUNCTION_ARGS) { return train_trans(fcinfo, "train_als", recsys::parse_als_options); }
Datum recsys_mf_trans(PG_FUNCTION_ARGS) { return train_trans(fcinfo, "train_mf", recsys::parse_mf_options); }
Datum recsys_baseline_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, "train_baseline", recsys::parse_baseline_options);
}
Datum recsys_popularity_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, "train_popularity", recsys::parse_popularity_options);
}
Datum recsys_item_knn_trans(PG_FUNCTION_ARGS) {
  return train_trans(fcinfo, "train_item_knn", recsys::parse_item_knn_options);
}
Datum recsys_ease_trans(PG_FUNCTION_ARGS) { return train_trans(fcinfo, "train_ease", recsys::parse_ease_options); }

Datum recsys_train_combine(PG_FUNCTION_ARGS) {
  return combine_agg<TrainingState>(fcinfo, "training combine", [](const TrainingState& like) {
    return new TrainingState(like.users.kind(), like.user_type_oid, like.items.kind(), like.item_type_oid);
  });
}
Datum recsys_train_serialize(PG_FUNCTION_ARGS) { return serialize_agg<TrainingState>(fcinfo, "training"); }
Datum recsys_train_deserialize(PG_FUNCTION_ARGS) {
  return deserialize_agg<TrainingState>(fcinfo, "training deserialize");
}

// Final functions: train and return the model.
Datum recsys_als_final(PG_FUNCTION_ARGS) {
  return interaction_final(fcinfo, "train_als", recsys::parse_als_options, recsys::build_als_model);
}
Datum recsys_mf_final(PG_FUNCTION_ARGS) {
  return interaction_final(fcinfo, "train_mf", recsys::parse_mf_options, recsys::build_mf_model);
}
Datum recsys_baseline_final(PG_FUNCTION_ARGS) {
  return interaction_final(fcinfo, "train_baseline", recsys::parse_baseline_options, recsys::build_baseline_model);
}
Datum recsys_popularity_final(PG_FUNCTION_ARGS) {
  return interaction_final(fcinfo, "train_popularity", recsys::parse_popularity_options, build_popularity);
}
// train_item_knn: the sparse item-item similarity model (multi-threaded over items).
Datum recsys_item_knn_final(PG_FUNCTION_ARGS) {
  return interaction_final(fcinfo, "train_item_knn", recsys::parse_item_knn_options, recsys::build_item_knn_model);
}
// train_ease: the closed-form item-item model (multi-threaded dense inverse).
Datum recsys_ease_final(PG_FUNCTION_ARGS) {
  return interaction_final(fcinfo, "train_ease", recsys::parse_ease_options, recsys::build_ease_model);
}

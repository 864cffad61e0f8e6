// The hybrid cold-start aggregates (see src/core/hybrid.h):
//   train_hybrid_items(model, item, features jsonb [, options jsonb]) -> model
//   train_hybrid_users(model, user, attributes jsonb [, options jsonb]) -> model
// over a metadata table, in train_content's feature conventions (content_features.h).
// The model argument is an implicit ALS model (or a hybrid one, to refresh) and must be
// the same on every row; its bytes are copied once. The aggregates have no combine step
// (the metadata of a catalogue is small next to its interactions), so they run serially.
#include "content_features.h"
#include "trainer.h"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/lsyscache.h"
}

#include "hybrid.h"

extern "C" {
PG_FUNCTION_INFO_V1(recsys_hybrid_items_trans);
PG_FUNCTION_INFO_V1(recsys_hybrid_users_trans);
PG_FUNCTION_INFO_V1(recsys_hybrid_items_final);
PG_FUNCTION_INFO_V1(recsys_hybrid_users_final);
}

using namespace recsys_pg;
using recsys::HybridSide;
using recsys::KeyKind;

namespace {

// The metadata rows plus the base model's bytes (8-byte aligned, as ModelView needs).
struct HybridState : recsys::ContentState {
  using ContentState::ContentState;
  std::vector<uint64_t> model;
  uint64_t model_size = 0;
  uint64_t fingerprint = 0;
  bool model_stable = false;  // the model argument is a constant or parameter
};
using HybridBox = AggBox<HybridState>;

Datum hybrid_trans(FunctionCallInfo fcinfo, HybridSide side) {
  const char* fn = recsys::hybrid_function_name(side);
  const bool items = side == HybridSide::Items;
  HybridBox* box = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<HybridBox*>(PG_GETARG_POINTER(0));
  if (box != nullptr && box->state->model_stable) {
    // the model was read on the first row
  } else {
    if (PG_ARGISNULL(1))
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s: the model is NULL", fn),
                      errhint("Pass the trained model, e.g. (SELECT model FROM models WHERE ...).")));
    recsys::ModelView m = model_arg(fcinfo, 1);
    if (box == nullptr) {
      MemoryContext aggctx = agg_context(fcinfo, fn);
      recsys_guard([&] { recsys::require_hybrid_base(m, side); });
      const recsys::KeyDictionary dict = items ? m.item_keys() : m.user_keys();
      const Oid model_type = items ? m.header->item_type_oid : m.header->user_type_oid;
      Oid itype = get_fn_expr_argtype(fcinfo->flinfo, 2);
      if (itype == UNKNOWNOID) itype = TEXTOID;  // an untyped literal counts as text
      const KeyKind kind = key_kind_for_type(itype, items ? "item" : "user");
      if (kind != dict.kind())
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("%s: the model's %s IDs are %s, but these are %s", fn, items ? "item" : "user",
                               model_id_type_name(model_type, dict.kind()), format_type_be(itype)),
                        errhint("Cast the IDs to %s.", model_id_type_name(model_type, dict.kind()))));
      const Oid base_type = getBaseType(itype);
      const bool stable = agg_arg_is_constant(fcinfo, 1);
      box = new_agg_box<HybridState>(aggctx, [&] {
        auto* st = new HybridState(kind, model_type);
        st->model.assign((m.size + 7) / 8, 0);
        std::memcpy(st->model.data(), m.base, m.size);
        st->model_size = m.size;
        st->fingerprint = m.header->fingerprint;
        st->model_stable = stable;
        return st;
      });
      box->args.key_base_type[1] = base_type;
      box->args.options_arg = PG_NARGS() > 4 ? 4 : -1;
      box->args.options_stable = agg_arg_is_constant(fcinfo, box->args.options_arg);
    } else if (m.header->fingerprint != box->state->fingerprint) {
      ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s: every row must pass the same model", fn),
                      errhint("Pass the model as a subquery: (SELECT model FROM models WHERE ...).")));
    }
  }
  note_agg_options(box, fcinfo, fn, [side](const recsys::OptionList& o, const HybridState&) {
    (void)recsys::parse_hybrid_options(o, side);
  });
  add_metadata_row(box->state, fcinfo, 2, box->args.key_base_type[1], fn);
  PG_RETURN_POINTER(box);
}

Datum hybrid_final(FunctionCallInfo fcinfo, HybridSide side) {
  return train_final<HybridState>(
      fcinfo, recsys::hybrid_function_name(side), [](const HybridState& s) { return s.items.size() == 0; },
      [side](const recsys::OptionList& o, const HybridState&) { return recsys::parse_hybrid_options(o, side); },
      [side](HybridState& st, const recsys::HybridOptions& o, int, const recsys::CancelToken& cancel,
             const std::function<void(const std::string&)>& log_line) {
        const recsys::ModelView base =
            recsys::ModelView::open(reinterpret_cast<const uint8_t*>(st.model.data()), st.model_size);
        st.result = recsys::build_hybrid_model(base, st, side, o, cancel, log_line);
      });
}

}  // namespace

Datum recsys_hybrid_items_trans(PG_FUNCTION_ARGS) { return hybrid_trans(fcinfo, HybridSide::Items); }
Datum recsys_hybrid_users_trans(PG_FUNCTION_ARGS) { return hybrid_trans(fcinfo, HybridSide::Users); }
Datum recsys_hybrid_items_final(PG_FUNCTION_ARGS) { return hybrid_final(fcinfo, HybridSide::Items); }
Datum recsys_hybrid_users_final(PG_FUNCTION_ARGS) { return hybrid_final(fcinfo, HybridSide::Users); }

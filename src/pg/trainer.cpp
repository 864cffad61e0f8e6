// The non-template parts of the training aggregate framework (trainer.h).
#include "trainer.h"

extern "C" {
#include "nodes/primnodes.h"
}

namespace recsys_pg {

bool agg_arg_is_constant(FunctionCallInfo fcinfo, int argno) {
  if (argno < 1) return false;
  Aggref* aggref = AggGetAggref(fcinfo);
  if (aggref == nullptr || list_length(aggref->args) < argno) return false;
  TargetEntry* te = static_cast<TargetEntry*>(list_nth(aggref->args, argno - 1));
  Node* expr = reinterpret_cast<Node*>(te->expr);
  while (expr != nullptr && IsA(expr, RelabelType)) expr = reinterpret_cast<Node*>(reinterpret_cast<RelabelType*>(expr)->arg);
  if (expr == nullptr) return false;
  if (IsA(expr, Const)) return true;
  return IsA(expr, Param) && reinterpret_cast<Param*>(expr)->paramkind == PARAM_EXTERN;
}

void options_differ_error(bool some_null) {
  if (some_null)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("training options must be the same for every row of one aggregate (some rows pass NULL)")));
  ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                  errmsg("training options must be the same for every row of one aggregate")));
}

void wait_for_job(recsys::BackgroundJob* job, bool verbose) {
  constexpr int kMaxMessages = 32;
  static char messages[kMaxMessages][256];
  for (;;) {
    bool done = false;
    int n = 0;
    recsys_guard([&] {
      done = job->wait_for(50);
      std::vector<std::string> lines = job->take_messages();
      for (auto& l : lines) {
        if (n == kMaxMessages) break;
        snprintf(messages[n++], sizeof messages[0], "%s", l.c_str());
      }
    });
    for (int i = 0; verbose && i < n; ++i) ereport(NOTICE, (errmsg("%s", messages[i])));
    CHECK_FOR_INTERRUPTS();
    if (done) break;
  }
  recsys_guard([&] { job->rethrow_if_failed(); });
}

struct varlena* text_options_as_jsonb(struct varlena* raw) {
  char* cstring = text_to_cstring(reinterpret_cast<text*>(pg_detoast_datum_packed(raw)));
  return reinterpret_cast<struct varlena*>(DatumGetPointer(DirectFunctionCall1(jsonb_in, CStringGetDatum(cstring))));
}

}  // namespace recsys_pg

// Module entry: PG_MODULE_MAGIC, settings, and the error border's raising half.
#include "pg_common.h"

#include <cstdio>
#include <cstring>

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace recsys_pg {

int guc_threads = 0;
bool guc_verbose = false;
int guc_cache_size_mb = 256;

void capture_exception(PendingError& pending, const std::exception* e, bool bad_alloc) {
  if (bad_alloc) {
    pending.kind = recsys::ErrorKind::OutOfMemory;
    snprintf(pending.message, sizeof pending.message, "out of memory in recsys");
    return;
  }
  const recsys::Error* re = dynamic_cast<const recsys::Error*>(e);
  pending.kind = re ? re->kind() : recsys::ErrorKind::Internal;
  snprintf(pending.message, sizeof pending.message, "%s", e ? e->what() : "unknown C++ exception");
}

void raise_pending(const PendingError& pending) {
  using recsys::ErrorKind;
  int code;
  switch (pending.kind) {
    case ErrorKind::InvalidParameter: code = ERRCODE_INVALID_PARAMETER_VALUE; break;
    case ErrorKind::DataException: code = ERRCODE_DATA_EXCEPTION; break;
    case ErrorKind::InvalidModel: code = ERRCODE_INVALID_BINARY_REPRESENTATION; break;
    case ErrorKind::NotSupported: code = ERRCODE_FEATURE_NOT_SUPPORTED; break;
    case ErrorKind::OutOfMemory: code = ERRCODE_OUT_OF_MEMORY; break;
    case ErrorKind::ProgramLimit: code = ERRCODE_PROGRAM_LIMIT_EXCEEDED; break;
    case ErrorKind::Cancelled:
      // The query was cancelled (statement_timeout, pg_cancel_backend): let PostgreSQL
      // raise its own error now that the C++ frames are gone.
      CHECK_FOR_INTERRUPTS();
      code = ERRCODE_QUERY_CANCELED;
      break;
    default: code = ERRCODE_INTERNAL_ERROR; break;
  }
  ereport(ERROR, (errcode(code), errmsg("%s", pending.message)));
  pg_unreachable();
}

}  // namespace recsys_pg

void _PG_init(void) {
  DefineCustomIntVariable("recsys.threads", "Threads used for training and batch scoring (0 = all cores).", NULL,
                          &recsys_pg::guc_threads, 0, 0, 1024, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomBoolVariable("recsys.progress", "Report training progress (iteration, loss, seconds) as NOTICEs.",
                           NULL, &recsys_pg::guc_verbose, false, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomIntVariable("recsys.model_cache_size",
                          "Memory for detoasted models kept by each backend between calls.", NULL,
                          &recsys_pg::guc_cache_size_mb, 256, 0, 1024 * 1024, PGC_USERSET, GUC_UNIT_MB, NULL, NULL,
                          NULL);
#if PG_VERSION_NUM >= 150000
  MarkGUCPrefixReserved("recsys");
#else
  EmitWarningsOnPlaceholders("recsys");
#endif
}

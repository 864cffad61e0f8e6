// Module entry: PG_MODULE_MAGIC, settings, and the error border's raising half.
#include "pg_common.h"

#include <climits>

#include <cstdio>
#include <cstring>

#include "parallel.h"
#include "store.h"

extern "C" {
#include "utils/guc.h"

PG_MODULE_MAGIC;
void _PG_init(void);
}

namespace recsys_pg {

int guc_threads = 0;
int guc_max_threads = 1;
bool guc_verbose = false;
int guc_cache_size_kb = 256 * 1024;
int guc_max_cache_size_kb = 1024 * 1024;

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

namespace {

// recsys.threads and recsys.model_cache_size are for every role; their ceilings are the
// superuser's: a value above the ceiling is refused when set (and clamped at use, should
// the ceiling be lowered later).
bool check_threads(int* value, void**, GucSource) {
  if (*value <= recsys_pg::guc_max_threads) return true;
  GUC_check_errdetail("recsys.threads may be at most recsys.max_threads (%d).", recsys_pg::guc_max_threads);
  GUC_check_errhint("A superuser can raise recsys.max_threads.");
  return false;
}

void assign_max_threads(int value, void*) { recsys::set_thread_ceiling(value); }

bool check_cache_size(int* value, void**, GucSource) {
  if (*value <= recsys_pg::guc_max_cache_size_kb) return true;
  GUC_check_errdetail("recsys.model_cache_size may be at most recsys.max_model_cache_size (%d kB).",
                      recsys_pg::guc_max_cache_size_kb);
  GUC_check_errhint("A superuser can raise recsys.max_model_cache_size.");
  return false;
}

}  // namespace

void _PG_init(void) {
  const int cores = recsys::hardware_threads();
  DefineCustomIntVariable("recsys.max_threads",
                          "Most threads one recsys call may use, whatever recsys.threads or a threads option asks.",
                          "Defaults to the number of cores; only a superuser can change it.",
                          &recsys_pg::guc_max_threads, cores, 1, 1024, PGC_SUSET, 0, NULL, assign_max_threads, NULL);
  recsys::set_thread_ceiling(recsys_pg::guc_max_threads);
  DefineCustomIntVariable("recsys.threads", "Threads used for training and batch scoring (0 = all cores).",
                          "At most recsys.max_threads.", &recsys_pg::guc_threads, 0, 0, 1024, PGC_USERSET, 0,
                          check_threads, NULL, NULL);
  DefineCustomBoolVariable("recsys.progress", "Report training progress (iteration, loss, seconds) as NOTICEs.",
                           NULL, &recsys_pg::guc_verbose, false, PGC_USERSET, 0, NULL, NULL, NULL);
  DefineCustomIntVariable("recsys.max_model_cache_size",
                          "Most memory recsys.model_cache_size may be set to in one backend.",
                          "Only a superuser can change it.", &recsys_pg::guc_max_cache_size_kb, 1024 * 1024, 0,
                          INT_MAX, PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
  DefineCustomIntVariable("recsys.model_cache_size",
                          "Memory for detoasted models kept by each backend between calls (0 turns the cache off).",
                          "At most recsys.max_model_cache_size.", &recsys_pg::guc_cache_size_kb, 256 * 1024, 0,
                          INT_MAX, PGC_USERSET, GUC_UNIT_KB, check_cache_size, NULL, NULL);
  DefineCustomIntVariable("recsys.shared_cache_size",
                          "Disk and page-cache budget of the shared model store (pg_recsys_cache in the data "
                          "directory), for the whole server (0 turns the store off: models are cached per backend).",
                          "Only a superuser can change it; a session's setting applies to the files it builds.",
                          &recsys_pg::guc_shared_cache_size_kb, 1024 * 1024, 0, INT_MAX, PGC_SUSET, GUC_UNIT_KB, NULL,
                          NULL, NULL);
  DefineCustomBoolVariable("recsys.shared_cache_verify",
                           "Check every byte of a shared store file (the model's checksum) when a backend first maps it.",
                           "Off: the file's header, sizes and the model's header are checked; the builder validated "
                           "the whole model before writing. Only a superuser can change it.",
                           &recsys_pg::guc_shared_cache_verify, false, PGC_SUSET, 0, NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
  MarkGUCPrefixReserved("recsys");
#else
  EmitWarningsOnPlaceholders("recsys");
#endif
}

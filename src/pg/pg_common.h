// The PostgreSQL side of recsys: includes, the C++/PostgreSQL error border, and the
// helpers every entry point shares. C++ exceptions never cross into PostgreSQL and
// PostgreSQL errors (longjmp) never cross C++ frames: every call into the core runs in
// recsys_guard(), which catches everything and raises ereport(ERROR) only after the
// try block, and thus every C++ object it held, is gone.
#pragma once

#include "common.h"  // before postgres.h: the core header refuses to follow it

extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

#include <exception>
#include <new>

namespace recsys_pg {

// Error text copied out of a caught exception into static storage (no allocation while
// unwinding), then raised once no C++ frame is left.
struct PendingError {
  int sqlstate = 0;
  recsys::ErrorKind kind = recsys::ErrorKind::Internal;
  char message[2048];
};

void capture_exception(PendingError& pending, const std::exception* e, bool bad_alloc);
[[noreturn]] void raise_pending(const PendingError& pending);

// Runs body (a lambda that must not call PostgreSQL) and turns any exception into an
// ereport(ERROR) raised after the C++ frames are unwound.
template <class Body>
inline void recsys_guard(Body&& body) {
  static PendingError pending;
  bool failed = false;
  try {
    body();
  } catch (const std::bad_alloc& e) {
    capture_exception(pending, &e, true);
    failed = true;
  } catch (const std::exception& e) {
    capture_exception(pending, &e, false);
    failed = true;
  } catch (...) {
    capture_exception(pending, nullptr, false);
    failed = true;
  }
  if (failed) raise_pending(pending);
}

// Settings (GUCs).
extern int guc_threads;
extern int guc_max_threads;
extern bool guc_verbose;
extern int guc_cache_size_kb;
extern int guc_max_cache_size_kb;

}  // namespace recsys_pg

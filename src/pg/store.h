// The shared model store: one file per model under $PGDATA/pg_recsys_cache, mapped
// read-only by every backend that serves the model (see the README's "Serving at scale"
// and src/core/model_store.h for the layout). The backend cache (pg_support.cpp) keeps
// its LRU of these mappings; this file finds, builds, verifies, maps and evicts files.
#pragma once
#include "pg_common.h"

#include "model_store.h"

#include <ctime>

namespace recsys_pg {

extern int guc_shared_cache_size_kb;
extern bool guc_shared_cache_verify;

// One backend's mapping of a store file.
struct StoreMapping {
  void* base = nullptr;  // the whole file, PROT_READ, MAP_SHARED
  Size length = 0;
  recsys::StoreView* view = nullptr;  // C++ heap: the model and its derived data, in the mapping
  int fd = -1;                        // held with a shared flock (readers), or -1
  time_t touched = 0;                 // last LRU touch of the file's mtime by this backend
  char name[96] = {0};
};

// Maps the store file of an out-of-line model value (building it first when no backend
// has). False when the store does not serve it (recsys.shared_cache_size = 0, the
// directory not usable, a model larger than the budget, a write that failed...): the
// caller then keeps a per-backend copy. The reason is given in a NOTICE once per backend.
// On true, *out holds the mapping, registered as this backend's (cache_status).
bool store_map(struct varlena* raw, StoreMapping* out);
// Unmaps and forgets a mapping (never raises).
void store_unmap(StoreMapping* m);
// Marks the file used (its mtime, the store's LRU clock), at most every few seconds.
void store_touch(StoreMapping* m);
// Counts a call answered from one of this backend's mappings.
void store_count_local_hit();

}  // namespace recsys_pg

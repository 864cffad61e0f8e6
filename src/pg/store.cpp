// The shared model store (see store.h and the README's "Serving at scale").
//
// Files live in pg_recsys_cache/ under the data directory (a backend's working
// directory), named by the model's fingerprint, checksum and size. The first backend that
// needs a model writes its file under a temporary name and renames it into place
// (atomic: readers see a whole file or none; a racing builder replaces an identical
// file); every backend maps it PROT_READ / MAP_SHARED, so the page cache holds one copy.
// Eviction is unlink(2): a backend still mapping the file keeps valid memory until it
// unmaps it, and a crashed backend's mappings vanish with it. Nothing is fsync'ed: the
// files are regenerable, and files older than the machine's last boot (whose unsynced
// pages may be lost) are removed before use.
#include "store.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fold_in.h"
#include "pg_support.h"

extern "C" {
#include "access/detoast.h"
#include "storage/fd.h"
#include "utils/timestamp.h"
#include "varatt_compat.h"

PG_FUNCTION_INFO_V1(recsys_cache_status);
PG_FUNCTION_INFO_V1(recsys_shared_cache_stats);
}

namespace recsys_pg {

int guc_shared_cache_size_kb = 1024 * 1024;
bool guc_shared_cache_verify = false;

namespace {

constexpr const char* kDir = "pg_recsys_cache";
constexpr const char* kCounters = "pg_recsys_cache/counters";
constexpr const char* kBuildLock = "pg_recsys_cache/build.lock";
constexpr int kBuildWaitMs = 60000;  // then build anyway
constexpr int kMaxMappings = 64;
constexpr time_t kTouchSeconds = 5;

// Server-wide counters, in the counters file (updated under flock).
struct Counters {
  uint64_t magic;
  uint64_t hits;       // a backend mapped a file another had built
  uint64_t builds;     // files written
  uint64_t evictions;  // files removed to stay within the budget
};
constexpr uint64_t kCountersMagic = 0x3153544e43535952ull;  // "RSYSCNT1"

// This backend's state.
enum class DirState { Unknown, Ready, Unusable };
DirState dir_state = DirState::Unknown;
char dir_problem[256];
bool noticed_off = false, noticed_unusable = false, noticed_large = false, noticed_write = false;
uint64_t local_hits = 0, local_fallbacks = 0;
uint32_t temp_counter = 0;
StoreMapping* mappings[kMaxMappings];
int mapping_count = 0;

Size budget_bytes() { return static_cast<Size>(guc_shared_cache_size_kb) * 1024; }

void add_counters(uint64_t hits, uint64_t builds, uint64_t evictions) {
  int fd = open(kCounters, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;  // counters are best effort
  if (flock(fd, LOCK_EX) == 0) {
    Counters c{};
    if (pread(fd, &c, sizeof c, 0) != static_cast<ssize_t>(sizeof c) || c.magic != kCountersMagic) c = Counters{};
    c.magic = kCountersMagic;
    c.hits += hits;
    c.builds += builds;
    c.evictions += evictions;
    if (pwrite(fd, &c, sizeof c, 0) != static_cast<ssize_t>(sizeof c)) { /* best effort */
    }
  }
  close(fd);  // releases the lock
}

Counters read_counters() {
  Counters c{};
  int fd = open(kCounters, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return c;
  if (flock(fd, LOCK_SH) == 0 &&
      (pread(fd, &c, sizeof c, 0) != static_cast<ssize_t>(sizeof c) || c.magic != kCountersMagic))
    c = Counters{};
  close(fd);
  return c;
}

// The machine's boot time (seconds since the epoch), or 0 when unknown.
time_t boot_time() {
  FILE* f = fopen("/proc/stat", "r");
  if (f == nullptr) return 0;
  char line[256];
  time_t bt = 0;
  while (fgets(line, sizeof line, f)) {
    long long v;
    if (sscanf(line, "btime %lld", &v) == 1) {
      bt = static_cast<time_t>(v);
      break;
    }
  }
  fclose(f);
  return bt;
}

bool is_model_file(const char* name) {
  const size_t n = strlen(name);
  return n > 6 && strcmp(name + n - 6, ".model") == 0 && strchr(name, '/') == nullptr;
}

// First use in this backend: the directory exists and is writable; temporary files of
// builders that are gone, and files written before the machine last booted, are removed.
bool store_ready() {
  if (dir_state != DirState::Unknown) return dir_state == DirState::Ready;
  dir_state = DirState::Unusable;
  if (mkdir(kDir, 0700) != 0 && errno != EEXIST) {
    snprintf(dir_problem, sizeof dir_problem, "could not create directory \"%s\": %s", kDir, strerror(errno));
    return false;
  }
  if (access(kDir, R_OK | W_OK | X_OK) != 0) {
    snprintf(dir_problem, sizeof dir_problem, "directory \"%s\" is not writable: %s", kDir, strerror(errno));
    return false;
  }
  const time_t booted = boot_time();
  DIR* d = opendir(kDir);
  if (d == nullptr) {
    snprintf(dir_problem, sizeof dir_problem, "could not open directory \"%s\": %s", kDir, strerror(errno));
    return false;
  }
  while (struct dirent* de = readdir(d)) {
    char path[MAXPGPATH];
    snprintf(path, sizeof path, "%s/%s", kDir, de->d_name);
    int pid = 0;
    if (sscanf(de->d_name, "tmp.%d.", &pid) == 1) {
      if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) unlink(path);
    } else if (is_model_file(de->d_name) && booted > 0) {
      struct stat st;
      if (stat(path, &st) == 0 && st.st_ctime < booted) unlink(path);
    }
  }
  closedir(d);
  dir_state = DirState::Ready;
  return true;
}

struct FileInfo {
  std::string name;
  uint64_t bytes;
  time_t mtime;
};

// The store's files (name, size, last use).
void list_files(std::vector<FileInfo>& out) {
  DIR* d = opendir(kDir);
  if (d == nullptr) return;
  while (struct dirent* de = readdir(d)) {
    if (!is_model_file(de->d_name)) continue;
    char path[MAXPGPATH];
    snprintf(path, sizeof path, "%s/%s", kDir, de->d_name);
    struct stat st;
    if (stat(path, &st) != 0) continue;
    out.push_back(FileInfo{de->d_name, static_cast<uint64_t>(st.st_size), st.st_mtime});
  }
  closedir(d);
}

// Removes the least recently used files until the store fits its budget, never `keep`
// (just built). Returns the number of files removed. Pure POSIX and C++ containers; runs
// inside recsys_guard.
uint64_t evict_over_budget(const char* keep, uint64_t budget) {
  std::vector<FileInfo> files;
  list_files(files);
  uint64_t total = 0;
  for (const FileInfo& f : files) total += f.bytes;
  std::sort(files.begin(), files.end(), [](const FileInfo& a, const FileInfo& b) {
    return a.mtime != b.mtime ? a.mtime < b.mtime : a.name < b.name;
  });
  uint64_t removed = 0;
  for (const FileInfo& f : files) {
    if (total <= budget) break;
    if (f.name == keep) continue;
    char path[MAXPGPATH];
    snprintf(path, sizeof path, "%s/%s", kDir, f.name.c_str());
    if (unlink(path) == 0) removed++;
    total -= f.bytes;
  }
  return removed;
}

// Maps the file open on fd and checks it against the value's header; false (with the
// reason in problem) when it does not match.
bool map_and_open(int fd, const uint8_t* expected, StoreMapping* out, char* problem, size_t problem_size) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(problem, problem_size, "fstat: %s", strerror(errno));
    return false;
  }
  if (st.st_size < static_cast<off_t>(recsys::kStoreHeaderBytes)) {
    snprintf(problem, problem_size, "file of %lld bytes", static_cast<long long>(st.st_size));
    return false;
  }
  void* base = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    snprintf(problem, problem_size, "mmap: %s", strerror(errno));
    return false;
  }
  bool ok = false;
  recsys::StoreView* view = nullptr;
  recsys_guard([&] {
    try {
      std::unique_ptr<recsys::StoreView> v(new recsys::StoreView());
      recsys::open_store_file(static_cast<const uint8_t*>(base), static_cast<uint64_t>(st.st_size), expected,
                              guc_shared_cache_verify, v.get());
      view = v.release();
      ok = true;
    } catch (const std::exception& e) {
      snprintf(problem, problem_size, "%s", e.what());
    }
  });
  if (!ok) {
    munmap(base, static_cast<size_t>(st.st_size));
    return false;
  }
  out->base = base;
  out->length = static_cast<Size>(st.st_size);
  out->view = view;
  return true;
}

// Keeps fd open with a shared flock for as long as the mapping lives (cache_status counts
// readers from /proc/locks), when PostgreSQL's budget of descriptors allows; else closes it.
void hold_or_close(int fd, StoreMapping* m) {
  if (AcquireExternalFD()) {
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
      m->fd = fd;
      return;
    }
    ReleaseExternalFD();
  }
  close(fd);
  m->fd = -1;
}

void register_mapping(StoreMapping* m) {
  if (mapping_count < kMaxMappings) mappings[mapping_count++] = m;
}

void notice_fallback(bool* once, const char* why) {
  local_fallbacks++;
  if (*once) return;
  *once = true;
  ereport(NOTICE, (errmsg("recsys: %s; models are cached per backend", why)));
}

bool write_all(int fd, const void* data, uint64_t length, uint64_t offset) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (length > 0) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, 1u << 30));
    ssize_t n = pwrite(fd, p, chunk, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return true;
}

// One builder per model at a time: a write lock on one byte (chosen by the fingerprint)
// of the build.lock file, so that backends which miss the same new model together (a
// retrained model swapped in under load) wait for the first one's file instead of each
// detoasting and writing the model. fcntl locks go with their process: a builder that
// crashes releases its lock. Returns the locked descriptor, or -1 when the lock is held
// elsewhere (or cannot be taken at all: *unavailable).
int try_build_lock(uint64_t fingerprint, bool* unavailable) {
  *unavailable = false;
  int fd = open(kBuildLock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    *unavailable = true;
    return -1;
  }
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(fingerprint % (1u << 30));
  fl.l_len = 1;
  if (fcntl(fd, F_SETLK, &fl) == 0) return fd;
  if (errno != EACCES && errno != EAGAIN) *unavailable = true;
  close(fd);
  return -1;
}

// What a build keeps while it writes: owned by the build's memory context.
struct BuildParts {
  recsys::ItemOrder order;
  std::vector<double> gram;
  recsys::StorePlan plan;
};

}  // namespace

bool store_map(struct varlena* raw, StoreMapping* out) {
  if (guc_shared_cache_size_kb <= 0) {
    notice_fallback(&noticed_off, "the shared model store is off (recsys.shared_cache_size = 0)");
    return false;
  }
  if (!store_ready()) {
    char why[400];
    snprintf(why, sizeof why, "the shared model store is not usable (%s)", dir_problem);
    notice_fallback(&noticed_unusable, why);
    return false;
  }
  struct varatt_external ext;
  VARATT_EXTERNAL_GET_POINTER(ext, raw);
  // The header alone, from the first TOAST chunk: the file's key.
  uint8_t header_bytes[sizeof(recsys::ModelHeader)];
  {
    struct varlena* head = detoast_attr_slice(raw, 0, sizeof(recsys::ModelHeader) - VARHDRSZ);
    if (VARSIZE_ANY_EXHDR(head) < sizeof(recsys::ModelHeader) - VARHDRSZ) return false;  // not a model: the caller says why
    const uint32 word = static_cast<uint32>(ext.va_rawsize) << 2;  // as the detoasted value's 4-byte header
    memcpy(header_bytes, &word, 4);
    memcpy(header_bytes + 4, VARDATA_ANY(head), sizeof(recsys::ModelHeader) - VARHDRSZ);
    pfree(head);
  }
  recsys::ModelHeader h;
  memcpy(&h, header_bytes, sizeof h);
  if (h.magic != recsys::kModelMagic || h.version != recsys::kModelFormatVersion ||
      h.total_bytes != static_cast<uint64_t>(ext.va_rawsize))
    return false;  // the per-backend path opens it and reports the problem
  const uint64_t budget = budget_bytes();
  if (recsys::store_file_bound(h, false) > budget) {
    notice_fallback(&noticed_large, "a model is larger than recsys.shared_cache_size");
    return false;
  }
  char name[96];
  recsys_guard([&] { snprintf(name, sizeof name, "%s", recsys::store_file_name(h).c_str()); });
  char path[MAXPGPATH];
  snprintf(path, sizeof path, "%s/%s", kDir, name);
  char problem[512] = "";

  // 1. Another backend built it: map it. When it is missing, one backend builds it while
  //    the others wait for its file (polling, cancellable).
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int lock_fd = -1;
  if (fd < 0) {
    for (int waited = 0;; waited += 5) {
      bool unavailable = false;
      lock_fd = try_build_lock(h.fingerprint, &unavailable);
      fd = open(path, O_RDONLY | O_CLOEXEC);  // built meanwhile (checked after locking: no lost wake-up)
      if (fd >= 0 || lock_fd >= 0 || unavailable || waited >= kBuildWaitMs) break;
      pg_usleep(5000L);
      CHECK_FOR_INTERRUPTS();  // holds no descriptor here
    }
    if (fd >= 0 && lock_fd >= 0) {
      close(lock_fd);
      lock_fd = -1;
    }
  }
  if (fd >= 0) {
    if (map_and_open(fd, header_bytes, out, problem, sizeof problem)) {
      hold_or_close(fd, out);
      snprintf(out->name, sizeof out->name, "%s", name);
      out->touched = time(nullptr);
      if (out->fd >= 0)
        futimens(out->fd, nullptr);
      else
        utimensat(AT_FDCWD, path, nullptr, 0);
      register_mapping(out);
      uint64_t evicted = 0;  // a budget lowered since the last build applies now
      recsys_guard([&] { evicted = evict_over_budget(name, budget); });
      add_counters(1, 0, evicted);
      return true;
    }
    close(fd);
    // Not the file its name says (damaged, or from another layout): replaced below.
    ereport(LOG, (errmsg("recsys: removing store file \"%s\": %s", path, problem)));
    unlink(path);
  }

  // 2. Build it: the whole value, checked by the core validator, its derived serving
  //    data, written to a temporary name and renamed into place.
  MemoryContext build_ctx = AllocSetContextCreate(CurrentMemoryContext, "recsys store build", ALLOCSET_DEFAULT_SIZES);
  // The build lock is released with build_ctx: at the end of the build, or by the
  // error cleanup should anything below raise.
  struct LockRelease {
    MemoryContextCallback callback;
    int fd;
  };
  LockRelease* release = static_cast<LockRelease*>(MemoryContextAllocZero(build_ctx, sizeof(LockRelease)));
  release->fd = lock_fd;
  release->callback.func = [](void* arg) {
    LockRelease* r = static_cast<LockRelease*>(arg);
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
  };
  release->callback.arg = release;
  MemoryContextRegisterResetCallback(build_ctx, &release->callback);
  MemoryContext old = MemoryContextSwitchTo(build_ctx);
  struct varlena* value = detoast_attr(raw);
  MemoryContextSwitchTo(old);
  BuildParts* parts = context_owned<BuildParts>(build_ctx);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(value);
  const uint64_t size = VARSIZE(value);
  bool ok = false;
  recsys_guard([&] {
    try {
      if (size != h.total_bytes || memcmp(bytes + 4, header_bytes + 4, sizeof h - 4) != 0)
        throw recsys::Error(recsys::ErrorKind::InvalidModel, "the value changed while it was read");
      recsys::validate_model(bytes, size);
      const recsys::ModelView m = recsys::ModelView::open(bytes, size);
      if (recsys::has_item_order(m) && m.n_items() > 0)
        recsys::build_item_order(m, parts->order, recsys::store_file_bound(h, true) <= budget);
      if (m.kind() == recsys::ModelKind::ImplicitAls && m.item_factors() != nullptr && m.factors() > 0)
        parts->gram = recsys::item_gram(m.item_factors(), m.n_items(), m.factors());
      parts->plan = recsys::plan_store_file(bytes, size, parts->order.item.empty() ? nullptr : &parts->order,
                                            parts->gram.empty() ? nullptr : &parts->gram);
      ok = true;
    } catch (const std::exception& e) {
      snprintf(problem, sizeof problem, "%s", e.what());
    }
  });
  if (!ok) {
    MemoryContextDelete(build_ctx);
    return false;  // the per-backend path serves it (or reports what is wrong with it)
  }
  char temp[MAXPGPATH];
  snprintf(temp, sizeof temp, "%s/tmp.%d.%u", kDir, MyProcPid, ++temp_counter);
  fd = open(temp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  bool written = fd >= 0 && ftruncate(fd, static_cast<off_t>(parts->plan.header.file_bytes)) == 0 &&
                 write_all(fd, &parts->plan.header, sizeof parts->plan.header, 0);
  for (size_t i = 0; written && i < parts->plan.pieces.size(); ++i) {
    const recsys::StorePiece& piece = parts->plan.pieces[i];
    written = write_all(fd, piece.data, piece.length, piece.offset);
  }
  if (written && rename(temp, path) != 0) written = false;
  if (!written) {
    char why[MAXPGPATH + 128];
    snprintf(why, sizeof why, "could not write the shared model store's file \"%s\": %s", temp, strerror(errno));
    if (fd >= 0) close(fd);
    unlink(temp);
    MemoryContextDelete(build_ctx);
    notice_fallback(&noticed_write, why);
    return false;
  }
  // The detoasted copy and the derived data go (the file has them now), and the build
  // lock with them: waiting backends map the file.
  MemoryContextDelete(build_ctx);
  if (!map_and_open(fd, header_bytes, out, problem, sizeof problem)) {
    close(fd);
    ereport(LOG, (errmsg("recsys: the store file \"%s\" just written does not open: %s", path, problem)));
    return false;
  }
  hold_or_close(fd, out);
  snprintf(out->name, sizeof out->name, "%s", name);
  out->touched = time(nullptr);
  register_mapping(out);
  uint64_t evicted = 0;
  recsys_guard([&] { evicted = evict_over_budget(name, budget); });
  add_counters(0, 1, evicted);
  return true;
}

void store_unmap(StoreMapping* m) {
  for (int i = 0; i < mapping_count; ++i)
    if (mappings[i] == m) {
      mappings[i] = mappings[--mapping_count];
      break;
    }
  delete m->view;  // borrowed columns: nothing to free but the object
  m->view = nullptr;
  if (m->base != nullptr) munmap(m->base, m->length);
  m->base = nullptr;
  if (m->fd >= 0) {
    close(m->fd);
    ReleaseExternalFD();
  }
  m->fd = -1;
}

void store_touch(StoreMapping* m) {
  const time_t now = time(nullptr);
  if (now - m->touched < kTouchSeconds) return;
  m->touched = now;
  if (m->fd >= 0) {
    futimens(m->fd, nullptr);
  } else {
    char path[MAXPGPATH];
    snprintf(path, sizeof path, "%s/%s", kDir, m->name);
    utimensat(AT_FDCWD, path, nullptr, 0);
  }
}

void store_count_local_hit() { local_hits++; }

}  // namespace recsys_pg

using namespace recsys_pg;

namespace {

// Backends holding each store file (by device and inode), from the flocks in /proc/locks.
struct LockHolder {
  unsigned major_dev, minor_dev;
  unsigned long inode;
  int pid;
};
std::vector<LockHolder> read_lock_holders() {
  std::vector<LockHolder> out;
  FILE* f = fopen("/proc/locks", "r");
  if (f == nullptr) return out;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char type[32], mode[32], access_mode[32];
    int pid;
    unsigned maj, min;
    unsigned long ino;
    if (strstr(line, "->") != nullptr) continue;  // waiters
    if (sscanf(line, "%*d: %31s %31s %31s %d %x:%x:%lu", type, mode, access_mode, &pid, &maj, &min, &ino) == 7 &&
        strcmp(type, "FLOCK") == 0)
      out.push_back(LockHolder{maj, min, ino, pid});
  }
  fclose(f);
  return out;
}

}  // namespace

extern "C" {

// recsys.cache_status(): one row per file of the shared store.
Datum recsys_cache_status(PG_FUNCTION_ARGS) {
  TupleDesc desc;
  Tuplestorestate* store = begin_materialized_srf(fcinfo, &desc);
  if (!store_ready()) return (Datum)0;
  std::vector<FileInfo>* files = context_owned<std::vector<FileInfo>>(CurrentMemoryContext);
  std::vector<LockHolder>* holders = context_owned<std::vector<LockHolder>>(CurrentMemoryContext);
  recsys_guard([&] {
    list_files(*files);
    std::sort(files->begin(), files->end(), [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; });
    *holders = read_lock_holders();
  });
  for (const FileInfo& fi : *files) {
    char path[MAXPGPATH];
    snprintf(path, sizeof path, "%s/%s", kDir, fi.name.c_str());
    struct stat st;
    if (stat(path, &st) != 0) continue;
    int readers = 0;
    int seen[1024];  // distinct backends (a backend may hold two mappings of one file)
    int n_seen = 0;
    for (const LockHolder& lh : *holders) {
      if (lh.inode != st.st_ino || lh.major_dev != major(st.st_dev) || lh.minor_dev != minor(st.st_dev)) continue;
      bool dup = false;
      for (int j = 0; j < n_seen; ++j) dup = dup || seen[j] == lh.pid;
      if (!dup && n_seen < 1024) seen[n_seen++] = lh.pid;
      if (!dup) readers++;
    }
    bool here = false;
    for (int i = 0; i < mapping_count; ++i) here = here || strcmp(mappings[i]->name, fi.name.c_str()) == 0;
    Datum values[6];
    bool nulls[6] = {false, false, false, false, false, false};
    values[0] = CStringGetTextDatum(fi.name.c_str());
    values[1] = PointerGetDatum(cstring_to_text_with_len(fi.name.c_str(), 16));
    values[2] = Int64GetDatum(static_cast<int64>(st.st_size));
    values[3] = TimestampTzGetDatum(time_t_to_timestamptz(st.st_mtime));
    values[4] = BoolGetDatum(here);
    values[5] = Int32GetDatum(readers);
    tuplestore_putvalues(store, desc, values, nulls);
  }
  return (Datum)0;
}

// recsys.shared_cache_stats(): one row of totals and counters.
Datum recsys_shared_cache_stats(PG_FUNCTION_ARGS) {
  TupleDesc desc;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("return type must be a row type")));
  desc = BlessTupleDesc(desc);
  const bool usable = guc_shared_cache_size_kb > 0 && store_ready();
  std::vector<FileInfo>* files = context_owned<std::vector<FileInfo>>(CurrentMemoryContext);
  if (dir_state == DirState::Ready) recsys_guard([&] { list_files(*files); });
  int64 bytes = 0;
  for (const FileInfo& fi : *files) bytes += static_cast<int64>(fi.bytes);
  const Counters c = dir_state == DirState::Ready ? read_counters() : Counters{};
  char dir[MAXPGPATH];
  snprintf(dir, sizeof dir, "%s/%s", DataDir, kDir);
  Datum values[11];
  bool nulls[11] = {false};
  values[0] = CStringGetTextDatum(dir);
  values[1] = BoolGetDatum(usable);
  values[2] = Int64GetDatum(static_cast<int64>(files->size()));
  values[3] = Int64GetDatum(bytes);
  values[4] = Int64GetDatum(static_cast<int64>(budget_bytes()));
  values[5] = Int64GetDatum(static_cast<int64>(c.hits));
  values[6] = Int64GetDatum(static_cast<int64>(c.builds));
  values[7] = Int64GetDatum(static_cast<int64>(c.evictions));
  values[8] = Int32GetDatum(mapping_count);
  values[9] = Int64GetDatum(static_cast<int64>(local_hits));
  values[10] = Int64GetDatum(static_cast<int64>(local_fallbacks));
  HeapTuple tuple = heap_form_tuple(desc, values, nulls);
  PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

}  // extern "C"

#!/usr/bin/env bash
# The one test command for recsys:   bash test/run_tests.sh
#
#   1. C++ core unit tests (CMake + GoogleTest), then again under ASan/UBSan
#      (skipped with RECSYS_SKIP_ASAN=1);
#   2. make && make install of the extension;
#   3. a throwaway PostgreSQL cluster (temp dir, private socket, random port);
#   4. pg_regress (make installcheck) on sql/*.sql against it;
#   5. every test/integration/*.sh with PGHOST/PGPORT/PGUSER/PG_BINDIR exported.
#
# Ends with the line "N passed, M failed" (one count per test group: ctest, asan
# ctest, each pg_regress test, each integration script, the server-log crash check)
# and exits non-zero if anything failed. Safe to run again: builds are incremental and
# the cluster is removed on exit. Run as root (CI) or as a user allowed to `make install`.
#
# Environment: RECSYS_SKIP_ASAN=1 skips the sanitizer build, RECSYS_SKIP_CORE=1 both core
# builds (for quick runs of the SQL tests); RECSYS_JOBS (default 2) sets build
# parallelism; RECSYS_BUILD_ROOT (default build) holds the CMake build trees.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# On a fresh machine, install the Debian packages first (a no-op when present).
bash "$ROOT/test/install_deps.sh"
JOBS=${RECSYS_JOBS:-2}
BUILD_ROOT=${RECSYS_BUILD_ROOT:-build}
START_TIME=$(date +%s)
SECTION_START=$START_TIME

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL: $1"; }
section() {
  local now
  now=$(date +%s)
  printf '\n===== %s (at %d s; previous step %d s) =====\n' "$*" $((now - START_TIME)) $((now - SECTION_START))
  SECTION_START=$now
}

summary() {
  section "summary"
  local f
  for f in "${failures[@]+"${failures[@]}"}"; do echo "  failed: $f"; done
  echo "$passed passed, $failed failed"
  if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

# ---------------------------------------------------------------------------------
# 1. Core unit tests (a hung test is cut off by ctest's per-test timeout).
if [ "${RECSYS_SKIP_CORE:-0}" = 1 ]; then
  section "core unit tests skipped (RECSYS_SKIP_CORE=1)"
else
  section "core unit tests ($BUILD_ROOT/core)"
  if cmake -S . -B "$BUILD_ROOT/core" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$BUILD_ROOT/core" -j "$JOBS" &&
    ctest --test-dir "$BUILD_ROOT/core" --output-on-failure --timeout 180; then
    pass "core ctest"
  else
    fail "core ctest"
  fi
fi

if [ "${RECSYS_SKIP_ASAN:-0}" = 1 ] || [ "${RECSYS_SKIP_CORE:-0}" = 1 ]; then
  section "sanitizer core tests skipped"
else
  # -O1 -g: the usual sanitizer setting, and much quicker to compile than -O2/-O3.
  section "core unit tests under ASan + UBSan ($BUILD_ROOT/asan)"
  if cmake -S . -B "$BUILD_ROOT/asan" -DRECSYS_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" &&
    cmake --build "$BUILD_ROOT/asan" -j "$JOBS" &&
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
      UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
      ctest --test-dir "$BUILD_ROOT/asan" --output-on-failure --timeout 300; then
    pass "asan ctest"
  else
    fail "asan ctest"
  fi
fi

# libFuzzer harnesses (test/fuzz), built with clang under ASan + UBSan in their own
# build tree, each run for a fixed number of inputs from the seed corpus that
# recsys_fuzz_corpus writes (RECSYS_SKIP_FUZZ=1 skips; RECSYS_FUZZ_RUNS sets the runs).
if [ "${RECSYS_SKIP_FUZZ:-0}" = 1 ] || [ "${RECSYS_SKIP_CORE:-0}" = 1 ]; then
  section "fuzz harnesses skipped"
else
  section "fuzz harnesses (clang, libFuzzer + ASan + UBSan, $BUILD_ROOT/fuzz)"
  FUZZ_BUILD=$BUILD_ROOT/fuzz
  if cmake -S . -B "$FUZZ_BUILD" -DCMAKE_CXX_COMPILER=clang++ -DRECSYS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" &&
    cmake --build "$FUZZ_BUILD" -j "$JOBS" &&
    ctest --test-dir "$FUZZ_BUILD" --output-on-failure --timeout 300; then
    pass "fuzz build and seed corpus"
    for harness in model model_text options content; do
      work=$FUZZ_BUILD/fuzz_work/$harness
      rm -rf "$work" && mkdir -p "$work" "$FUZZ_BUILD/fuzz_artifacts"
      # A fresh output corpus and a fixed seed: the same inputs on every run.
      if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        timeout 300 "$FUZZ_BUILD/recsys_fuzz_$harness" -runs="${RECSYS_FUZZ_RUNS:-20000}" -seed=1 -timeout=20 \
        -artifact_prefix="$FUZZ_BUILD/fuzz_artifacts/${harness}-" -print_final_stats=1 \
        "$work" "$FUZZ_BUILD/fuzz_corpus/$harness" >"$work.log" 2>&1; then
        pass "fuzz $harness ($(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$work.log" || echo '?'))"
      else
        tail -n 60 "$work.log"
        fail "fuzz $harness (crash input in $FUZZ_BUILD/fuzz_artifacts/; log $work.log)"
      fi
    done
  else
    fail "fuzz build and seed corpus"
  fi
fi

# ---------------------------------------------------------------------------------
# 2. The extension.
section "extension: make && make install"
if ! { make -j "$JOBS" && make install; }; then
  fail "extension build/install"
  [ "$(id -u)" -eq 0 ] || echo "hint: make install usually needs root (sudo bash test/run_tests.sh)"
  summary
fi

# ---------------------------------------------------------------------------------
# 3. A throwaway cluster.
section "throwaway PostgreSQL cluster"
PG_BINDIR=$(pg_config --bindir)
if [ "$(id -u)" -eq 0 ]; then
  if id postgres >/dev/null 2>&1; then
    OS_USER=postgres
  else
    OS_USER=recsys_test
    id "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /bin/sh "$OS_USER"
  fi
  # run from /tmp: the server user may not be allowed into the checkout's directory
  as_server() { (cd /tmp && runuser -u "$OS_USER" -- "$@"); }
else
  OS_USER=$(id -un)
  as_server() { "$@"; }
fi

TMPD=$(mktemp -d /tmp/recsys_test.XXXXXX)
chmod 755 "$TMPD"
DATADIR=$TMPD/data
SOCKDIR=$TMPD/sock
SERVER_LOG=$TMPD/server.log
mkdir -p "$SOCKDIR"
chown "$OS_USER" "$TMPD" "$SOCKDIR"

cleanup() {
  set +e
  if [ -f "$DATADIR/postmaster.pid" ]; then
    as_server "$PG_BINDIR/pg_ctl" -D "$DATADIR" -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SERVER_ENV (an array, e.g. env LD_PRELOAD=...) prefixes the pg_ctl that starts the server.
SERVER_ENV=()
start_cluster() {
  as_server "$PG_BINDIR/initdb" -D "$DATADIR" -U postgres --auth=trust -E UTF8 --locale=C >"$TMPD/initdb.log" 2>&1 || {
    cat "$TMPD/initdb.log"
    return 1
  }
  cat >>"$DATADIR/postgresql.conf" <<EOF

# recsys test settings
listen_addresses = ''
unix_socket_directories = '$SOCKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
max_connections = 30
max_worker_processes = 8
max_parallel_workers = 4
max_parallel_workers_per_gather = 2
log_min_messages = warning
log_line_prefix = '%m [%p] '
# pg_cron for test/integration/scheduled_retrain.sh (its jobs connect through the socket)
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '$SOCKDIR'
EOF
  local attempt
  for attempt in 1 2 3 4 5 6 7 8; do
    PGPORT=$((55432 + RANDOM % 2000))
    if as_server ${SERVER_ENV[@]+"${SERVER_ENV[@]}"} "$PG_BINDIR/pg_ctl" -D "$DATADIR" -l "$SERVER_LOG" -w -t 60 \
      -o "-p $PGPORT" start >/dev/null; then
      return 0
    fi
    echo "server did not start on port $PGPORT (attempt $attempt); log tail:"
    tail -n 5 "$SERVER_LOG" 2>/dev/null || true
  done
  return 1
}

# Waits until the server accepts connections (it restarts after a backend crash).
wait_ready() {
  local i
  for i in $(seq 1 120); do
    "$PG_BINDIR/pg_isready" -q -h "$SOCKDIR" -p "$PGPORT" && return 0
    sleep 0.5
  done
  echo "server not ready after 60 s"
  return 1
}

if ! start_cluster; then
  fail "start throwaway cluster"
  summary
fi
export PGHOST=$SOCKDIR PGPORT PGUSER=postgres PGDATABASE=postgres PG_BINDIR
unset PGSERVICE PGPASSWORD PGOPTIONS
echo "cluster running: PGHOST=$PGHOST PGPORT=$PGPORT (data in $DATADIR)"

# Counts the pg_regress results in file $2 (made by a make installcheck that exited with
# status $3) as pass/fail lines labelled $1. PostgreSQL 15 prints "test NAME ... ok|FAILED";
# 16+ prints TAP "ok N - NAME" / "not ok N - NAME".
count_regress() {
  local label=$1 out=$2 status=$3 n=0 name result
  while read -r name result; do
    n=$((n + 1))
    if [ "$result" = ok ]; then pass "$label $name"; else fail "$label $name"; fi
  done < <(sed -nE \
    -e 's/^test +([^ ]+) +\.\.\. +(ok|FAILED|failed).*/\1 \2/p' \
    -e 's/^ +([^ ]+) +\.\.\. +(ok|FAILED|failed).*/\1 \2/p' \
    -e 's/^ok +[0-9]+ +[-+] +([^ ]+) .*/\1 ok/p' \
    -e 's/^not ok +[0-9]+ +[-+] +([^ ]+) .*/\1 FAILED/p' "$out")
  if [ "$n" -eq 0 ]; then
    fail "$label (no test results; exit status $status)"
  elif [ "$status" -ne 0 ] && ! grep -qE '(FAILED|not ok)' "$out"; then
    fail "$label (make installcheck exit status $status)"
  fi
}

# ---------------------------------------------------------------------------------
# 4. pg_regress.
section "pg_regress (make installcheck)"
REGRESS_OUT=$TMPD/regress.out
set +e
make installcheck PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres 2>&1 | tee "$REGRESS_OUT"
regress_status=${PIPESTATUS[0]}
set -e
count_regress "pg_regress" "$REGRESS_OUT" "$regress_status"
if [ -s regression.diffs ]; then
  section "regression.diffs"
  cat regression.diffs
fi

# ---------------------------------------------------------------------------------
# 5. Integration scripts.
shopt -s nullglob
for script in test/integration/*.sh; do
  name=$(basename "$script" .sh)
  section "integration: $name"
  wait_ready || true
  if timeout 600 bash "$script"; then
    pass "integration $name"
  else
    fail "integration $name (exit status $?)"
  fi
done
shopt -u nullglob

# ---------------------------------------------------------------------------------
# The server must have survived everything: no backend may have crashed.
section "server health"
wait_ready || true
if "$PG_BINDIR/psql" -X -qAt -c 'SELECT 1' >/dev/null &&
  ! grep -E 'terminated by signal|was terminated by|server process .* exited with exit code [^0]|PANIC:' "$SERVER_LOG"; then
  pass "server alive, no backend crash in the server log"
else
  fail "server alive, no backend crash in the server log"
  tail -n 60 "$SERVER_LOG" || true
fi
if [ "$failed" -gt 0 ]; then
  section "server log (last 40 lines)"
  tail -n 40 "$SERVER_LOG" || true
fi

# ---------------------------------------------------------------------------------
# 6. pg_regress again, against the extension built with AddressSanitizer (gcc, -O1) and
#    a second throwaway cluster whose postmaster runs with gcc's libasan preloaded
#    (RECSYS_SKIP_PG_ASAN=1 skips). The ASan build has its own tree, a copy of the
#    sources in $BUILD_ROOT/pg_asan (incremental: copies keep their times); it is
#    installed for this section only and the normal build is installed again after it.
#    Fails on any failed regress test and on any AddressSanitizer report.
if [ "${RECSYS_SKIP_PG_ASAN:-0}" = 1 ]; then
  section "pg_regress under AddressSanitizer skipped (RECSYS_SKIP_PG_ASAN=1)"
else
  section "pg_regress under AddressSanitizer ($BUILD_ROOT/pg_asan)"
  as_server "$PG_BINDIR/pg_ctl" -D "$DATADIR" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  PG_ASAN=$BUILD_ROOT/pg_asan
  LIBASAN=$(gcc -print-file-name=libasan.so)
  mkdir -p "$PG_ASAN/src"
  # Sources deleted from the checkout are deleted from the copy, then everything is
  # copied with its modification time (make rebuilds what changed).
  (cd "$PG_ASAN" && find src -name '*.cpp' -o -name '*.h' | while read -r f; do
    [ -e "$ROOT/$f" ] || rm -f "$f" "${f%.cpp}.o" "${f%.cpp}.d"
  done)
  rm -rf "$PG_ASAN/sql" "$PG_ASAN/expected" "$PG_ASAN/results"
  # Sources only (not the normal build's objects under src/); tar keeps the times.
  tar -cf - $(find src -name '*.cpp' -o -name '*.h') sql expected Makefile recsys.control recsys--*.sql |
    tar -C "$PG_ASAN" -xf -
  asan_opt="${OPTFLAGS--march=native} -O1 -g -fno-omit-frame-pointer -fsanitize=address"
  ASAN_LOGS=$TMPD/asan
  mkdir -p "$ASAN_LOGS"
  chown "$OS_USER" "$ASAN_LOGS"
  # A preloaded sanitizer runtime initializes on the first malloc(), and in postgres
  # that is inside a library constructor's bindtextdomain() (libgpg-error's), under
  # gettext's lock; the runtime's init calls dlerror(), which takes that lock again, and
  # postgres later hangs in its own bindtextdomain(). This shim, preloaded after libasan,
  # wraps bindtextdomain() to make the runtime initialize before the lock is taken.
  cat >"$TMPD/asan_early_init.c" <<'EOF_C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
char* bindtextdomain(const char* domain, const char* dir) {
  static char* (*real)(const char*, const char*);
  void* volatile p = malloc(1);
  free(p);
  if (!real) real = (char* (*)(const char*, const char*))dlsym(RTLD_NEXT, "bindtextdomain");
  return real(domain, dir);
}
EOF_C
  if [ ! -e "$LIBASAN" ] || [ "$LIBASAN" = libasan.so ]; then
    fail "pg_regress under ASan (gcc's libasan.so not found)"
  elif ! gcc -shared -fPIC -O2 -Wall -o "$TMPD/asan_early_init.so" "$TMPD/asan_early_init.c" -ldl; then
    fail "pg_regress under ASan (build of the early-init shim)"
  elif ! { make -C "$PG_ASAN" -j "$JOBS" OPTFLAGS="$asan_opt" LDFLAGS_SL="-fsanitize=address" &&
    make -C "$PG_ASAN" install OPTFLAGS="$asan_opt" LDFLAGS_SL="-fsanitize=address"; }; then
    fail "pg_regress under ASan (extension build with -fsanitize=address)"
  else
    DATADIR=$TMPD/asan_data
    SERVER_LOG=$TMPD/asan_server.log
    # detect_leaks=0: PostgreSQL frees by memory context, not one free() per malloc();
    # detect_stack_use_after_return=0: ereport longjmps out of instrumented frames.
    SERVER_ENV=(env "LD_PRELOAD=$LIBASAN $TMPD/asan_early_init.so"
      "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0:allow_user_segv_handler=1:verify_asan_link_order=0:log_path=$ASAN_LOGS/asan")
    if start_cluster; then
      echo "ASan cluster running: PGPORT=$PGPORT (data in $DATADIR, reports in $ASAN_LOGS)"
      ASAN_OUT=$TMPD/regress_asan.out
      set +e
      make -C "$PG_ASAN" installcheck PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres 2>&1 | tee "$ASAN_OUT"
      asan_status=${PIPESTATUS[0]}
      set -e
      count_regress "pg_regress under ASan" "$ASAN_OUT" "$asan_status"
      [ -s "$PG_ASAN/regression.diffs" ] && head -n 200 "$PG_ASAN/regression.diffs"
      as_server "$PG_BINDIR/pg_ctl" -D "$DATADIR" -m fast -w -t 60 stop >/dev/null 2>&1 || true
      reports=$(grep -lE 'ERROR: AddressSanitizer|SUMMARY: AddressSanitizer' "$ASAN_LOGS"/* "$SERVER_LOG" 2>/dev/null || true)
      if [ -z "$reports" ]; then
        pass "no AddressSanitizer report"
      else
        for r in $reports; do
          echo "--- $r"
          head -n 60 "$r"
        done
        fail "AddressSanitizer reports ($(echo "$reports" | wc -l) files, kept in $BUILD_ROOT/pg_asan/reports)"
        mkdir -p "$PG_ASAN/reports" && cp $reports "$PG_ASAN/reports/" 2>/dev/null || true
      fi
    else
      fail "pg_regress under ASan (start the cluster with libasan preloaded)"
    fi
  fi
  # The normal build goes back in place (make install copies, builds nothing new).
  make install >/dev/null || fail "reinstall of the normal build after the ASan section"
fi

summary

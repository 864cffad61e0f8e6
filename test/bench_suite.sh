#!/usr/bin/env bash
# The benchmark suite:   bash test/bench_suite.sh        (not part of the test run)
#
# Generates an interaction table shaped like MovieLens-20M (20,000,000 rows, ~138k users,
# ~27k items, skewed popularity and activity; see test/bench/bench_tool.cpp), loads it
# with COPY into a throwaway cluster, and prints one table in which every figure is a
# ratio against a yardstick measured in the same run, so the numbers hold on a noisy
# shared machine:
#   ingest   train_als' transition phase vs SELECT sum(weight) over the same table
#            (serial), and the speed-up of the ingest with 2 parallel workers;
#   training seconds per ALS iteration at 64 and 128 factors; achieved GFLOP/s vs the
#            machine's float32 GEMM rate (Eigen, measured here on all cores);
#   serving  recommend / similar_items p50 and p99 through SQL (pgbench, prepared
#            statements), vs the core's cost of scoring all items once (matrix-vector
#            product plus top-k, on the same model); throughput with 2 clients;
#   batch    recommend_all rows/s, its speed-up over the LATERAL per-user recommend
#            form (measured on a subset of users), the share of user x item pairs it
#            scores (exact norm-bound pruning), GFLOP/s vs GEMM, and a check that its
#            lists equal recommend's on sampled users;
#   memory   peak backend memory while training vs the bytes of the interactions
#            (12 bytes per row) and the factors;
#   growth   training time and recommend latency at 1/20, 1/4 and all of the rows;
#   ease     train_ease (defaults) on the rows of the 1,682 and of the 20,000 most popular
#            items (MovieLens-100K's catalogue size; the generated catalogue has 26,744
#            items at 20M rows, fewer below ~11M rows): statement time, the rate of its
#            ~n^3 flops (Cholesky, triangular inverse, product) vs GEMM, and peak backend
#            memory vs its two dense n x n float64 matrices (EASE_ITEMS="1682 20000").
#   store    the shared model store: first call of a new session, steady-state latency
#            and summed PSS of STORE_BACKENDS (default 50) backends against the store off /
#            one backend, and 16 pgbench clients while a model is swapped 20 times;
# Results go to bench-results/ (or $RECSYS_BENCH_OUT): table.txt, results.csv,
# growth.csv and growth.png (gnuplot).
#
# Environment: ROWS (default 20000000), ITERATIONS (ALS iterations of the timed
# trainings, default 5), RECSYS_THREADS (training and batch threads; default all cores),
# SECONDS_PER_BENCH (pgbench duration, default 10).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
ROWS="${ROWS:-20000000}"
ITERS="${ITERATIONS:-5}"
THREADS="${RECSYS_THREADS:-$(nproc)}"
PGB_SECONDS="${SECONDS_PER_BENCH:-10}"
OUT="${RECSYS_BENCH_OUT:-$ROOT/bench-results}"
SUITE_START=$(date +%s)
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT"/results.csv "$OUT"/growth.csv "$OUT"/table.txt "$OUT"/core.txt
say() { printf '[%4d s] %s\n' $(($(date +%s) - SUITE_START)) "$*" >&2; }

# ---------------------------------------------------------------------------------
# Packages, build, install, the helper program.
bash test/install_deps.sh
if ! command -v gnuplot >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]]; then
    say "installing gnuplot-nox"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
  else
    say "gnuplot is missing (apt-get install gnuplot-nox); the plot will be skipped"
  fi
fi
say "building and installing the extension"
make -j"$(nproc)" >/dev/null && make install >/dev/null
TOOL="$OUT/bench_tool"
say "building the helper program"
# Linked against the core objects `make` just built (the core never includes PostgreSQL).
g++ -std=c++17 -O3 -march=native -DEIGEN_DONT_PARALLELIZE -DEIGEN_NO_DEBUG -isystem /usr/include/eigen3 -Isrc/core \
  test/bench/bench_tool.cpp src/core/*.o -pthread -o "$TOOL"

source test/pg_cluster.sh
start_cluster "work_mem = '256MB'" "jit = off" "max_parallel_workers_per_gather = 0" "max_wal_size = '8GB'" \
  "recsys.model_cache_size = '1GB'" "max_connections = 80"
WORK="$RECSYS_CLUSTER_DIR/bench"
mkdir -p "$WORK" && chmod 777 "$WORK"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE EXTENSION recsys"
q "CREATE FUNCTION bench_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END \$\$"
# Runs a statement returning one jsonb; returns 'ms|jsonb'.
q "CREATE FUNCTION bench_json(sql text) RETURNS text LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp(); j jsonb; BEGIN EXECUTE sql INTO j;
   RETURN (1000 * extract(epoch FROM clock_timestamp() - t0))::text || '|' || j::text; END \$\$"
SETTINGS="SET recsys.threads = $THREADS;"
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }
best_ms() {  # best_ms SQL [settings]: best of 3 server-side wall times
  local best="" t
  for _ in 1 2 3; do
    t=$(q "$SETTINGS ${2:-} SELECT bench_ms(\$q\$$1\$q\$)" | tail -1)
    if [[ -z "$best" ]] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}

# Results: one CSV row per figure (section, metric, value, unit, yardstick, yardstick
# value, ratio, aim, met) and the same as a printed table.
echo "section,metric,value,unit,yardstick,yardstick_value,ratio,aim,aim_met" >"$OUT/results.csv"
fmt() {  # a number for the table: 3 significant digits, no exponent for large values
  [[ -z "$1" ]] && return 0
  awk -v x="$1" 'BEGIN { a = x < 0 ? -x : x;
    if (a >= 100) printf "%.0f", x; else if (a >= 10) printf "%.1f", x; else if (a >= 1) printf "%.2f", x;
    else printf "%.3g", x }'
}
record() {  # section figure value unit yardstick yardstick_value ratio aim (e.g. "<= 2")
  local met="" ratio="$7" aim="${8:-}"
  if [[ -n "$aim" && -n "$ratio" ]]; then
    if awk "BEGIN{exit !($ratio ${aim})}"; then met=yes; else met=no; fi
  fi
  echo "$1,\"$2\",$3,$4,\"$5\",$6,$ratio,\"$aim\",$met" >>"$OUT/results.csv"
  printf '%-8s %-50s %10s %-8s %-26s %10s %8s  %s\n' "$1" "$2" "$(fmt "$3")" "$4" "$5" "$(fmt "$6")" "$(fmt "$ratio")" \
    "${aim:+aim $aim: $met}" >>"$OUT/table.txt"
}

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
MACHINE="$(nproc) cores ($CPU), $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo), PostgreSQL $(pg_config --version | awk '{print $2}')"
say "machine: $MACHINE"

# ---------------------------------------------------------------------------------
# The machine's float32 GEMM rate (the yardstick of every GFLOP/s figure).
say "GEMM probe"
"$TOOL" gemm "$THREADS" >"$WORK/gemm.txt"
GEMM1=$(awk '$1 == "gemm_gflops_1thread" {print $2}' "$WORK/gemm.txt")
GEMM=$(awk '$1 == "gemm_gflops_all" {print $2}' "$WORK/gemm.txt")
gemm_now() {  # the GEMM rate measured again right before a GFLOP/s figure (the load may have changed)
  "$TOOL" gemm "$THREADS" | awk '$1 == "gemm_gflops_all" {print $2}'
}

# ---------------------------------------------------------------------------------
# Data.
say "generating and loading $ROWS rows"
q "CREATE TABLE interactions (user_id integer NOT NULL, item_id integer NOT NULL, weight float8 NOT NULL)"
"$TOOL" gen "$ROWS" 42 2>"$WORK/gen.txt" | psql -X -q -v ON_ERROR_STOP=1 -c "COPY interactions FROM STDIN"
LOAD_S=$(($(date +%s) - SUITE_START))
q "VACUUM ANALYZE interactions"
read -r NU NI < <(q "SELECT count(DISTINCT user_id), count(DISTINCT item_id) FROM interactions" | tr '|' ' ')
TABLE_MB=$(q "SELECT pg_total_relation_size('interactions') / 1048576")
say "data: $ROWS rows, $NU users, $NI items, table $TABLE_MB MB"
# Growth tables: the first 1/20 and 1/4 of the users (users are generated independently,
# so a prefix is a random sample of them).
MAXU=$(q "SELECT max(user_id) FROM interactions")
for frac in 20 4; do
  q "CREATE TABLE interactions_$frac AS SELECT * FROM interactions WHERE user_id <= $MAXU / $frac"
  q "VACUUM ANALYZE interactions_$frac"
done

# ---------------------------------------------------------------------------------
# Ingest: the transition phase vs sum(weight), serial, then with 2 parallel workers.
say "ingest"
INGEST_OPTS='{"iterations": 0, "factors": 8, "calculate_loss": false}'
ingest() {  # ingest TABLE SETTINGS -> "statement_ms final_ms"
  local best="" fin="" r t f
  for _ in 1 2 3; do
    r=$(q "$SETTINGS $2 SELECT bench_json(\$q\$SELECT recsys.model_info(recsys.train_als(user_id, item_id, weight, '$INGEST_OPTS')) FROM $1\$q\$)" | tail -1)
    t=${r%%|*}
    f=$(echo "${r#*|}" | sed 's/.*"training_seconds": \([0-9.e+-]*\).*/\1/')
    if [[ -z "$best" ]] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fin=$(calc "$f * 1000"); fi
  done
  echo "$best $fin"
}
# The parallel runs force the plan (no cost threshold), so small ROWS still use the workers.
PAR2="SET max_parallel_workers_per_gather = 2; SET parallel_setup_cost = 0; SET min_parallel_table_scan_size = 0;"
SUM_MS=$(best_ms "SELECT sum(weight) FROM interactions" "SET max_parallel_workers_per_gather = 0;")
read -r ING_MS ING_FINAL_MS < <(ingest interactions "SET max_parallel_workers_per_gather = 0;")
TRANS_MS=$(calc "$ING_MS - $ING_FINAL_MS")
record ingest "transition phase (train_als rows in)" "$(calc "$TRANS_MS / 1000")" s "SELECT sum(weight)" \
  "$(calc "$SUM_MS / 1000")" "$(calc "$TRANS_MS / $SUM_MS")" "<= 2"
record ingest "transition rate" "$(calc "$ROWS / $TRANS_MS / 1000")" "M rows/s" "" "" "" ""
record ingest "0-iteration train_als (+ matrices, model)" "$(calc "$ING_MS / 1000")" s "SELECT sum(weight)" \
  "$(calc "$SUM_MS / 1000")" "$(calc "$ING_MS / $SUM_MS")" ""
PSUM_MS=$(best_ms "SELECT sum(weight) FROM interactions" "$PAR2")
read -r PING_MS PING_FINAL_MS < <(ingest interactions "$PAR2")
PTRANS_MS=$(calc "$PING_MS - $PING_FINAL_MS")
record ingest "transition phase, 2 parallel workers" "$(calc "$PTRANS_MS / 1000")" s "same, serial" \
  "$(calc "$TRANS_MS / 1000")" "$(calc "$TRANS_MS / $PTRANS_MS")" ""
record ingest "sum(weight), 2 parallel workers" "$(calc "$PSUM_MS / 1000")" s "same, serial" \
  "$(calc "$SUM_MS / 1000")" "$(calc "$SUM_MS / $PSUM_MS")" ""
# Every training aggregate gets a parallel plan (EXPLAIN only; inputs made from the table).
PLANS=""
for call in "train_als(user_id, item_id, weight)" "train_mf(user_id, item_id, weight)" \
  "train_baseline(user_id, item_id, weight)" "train_popularity(user_id, item_id, weight)" \
  "train_item_knn(user_id, item_id, weight)" "train_content(item_id, jsonb_build_object('w', weight))" \
  "kmeans(ARRAY[weight, user_id::float8], 8)"; do
  agg=${call%%(*}
  plan=$(q "$PAR2 EXPLAIN SELECT recsys.$call FROM interactions" 2>/dev/null) || continue
  if grep -q "Partial Aggregate" <<<"$plan" && grep -q "Workers Planned: 2" <<<"$plan"; then
    PLANS="$PLANS $agg:parallel"
  else
    PLANS="$PLANS $agg:SERIAL"
  fi
done
say "plans:$PLANS"

# ---------------------------------------------------------------------------------
# Training at 64 and 128 factors; peak backend memory of the 64-factor training.
# Floating-point work of one iteration (cg_steps = 3, loss on): each half-sweep runs
# 4 passes (residual + 3 CG steps) of 4f flops per stored pair plus 2f^2 per row
# (the f x f product), the Gram matrices cost 2f^2 per row, the loss 2f per pair.
flops_per_iter() {  # nnz users items f
  calc "4 * (2 * $1 * 4 * $4 + ($2 + $3) * 2 * $4 * $4) + 2 * $4 * $4 * ($2 + $3) + 2 * $1 * $4"
}
train() {  # train TABLE FACTORS ITERS TARGET_TABLE -> writes $WORK/train_TARGET.txt: ms|info and status
  local opts="{\"factors\": $2, \"iterations\": $3, \"seed\": 1}"
  psql -X -q -t -A -v ON_ERROR_STOP=1 >"$WORK/train_$4.txt" <<SQL
$SETTINGS
SELECT bench_ms(\$q\$CREATE TABLE $4 AS SELECT recsys.train_als(user_id, item_id, weight, '$opts') AS model FROM $1\$q\$);
SELECT recsys.model_info(model) FROM $4;
SELECT pg_read_file('/proc/self/status');
SQL
}
train_figures() {  # TARGET -> "statement_s sec_per_iter nnz users items hwm_kb shmem_kb file_kb"
  local f="$WORK/train_$1.txt"
  local ms info
  ms=$(sed -n 1p "$f")
  info=$(sed -n 2p "$f")
  echo "$info" >"$WORK/info_$1.json"
  local spi nnz users items
  spi=$(q "SELECT avg((h->>'seconds')::float8) FROM jsonb_array_elements('$info'::jsonb->'history') h")
  nnz=$(q "SELECT ('$info'::jsonb->>'interactions')")
  users=$(q "SELECT ('$info'::jsonb->>'users')")
  items=$(q "SELECT ('$info'::jsonb->>'items')")
  local hwm shm fil
  hwm=$(awk '/^VmHWM/ {print $2}' "$f")
  shm=$(awk '/^RssShmem/ {print $2}' "$f")
  fil=$(awk '/^RssFile/ {print $2}' "$f")
  echo "$(calc "$ms / 1000") $spi $nnz $users $items $hwm $shm $fil"
}
say "training, 64 factors x $ITERS iterations"
G64=$(gemm_now)
train interactions 64 "$ITERS" m64
read -r T64 SPI64 NNZ U64 I64 HWM SHM FIL < <(train_figures m64)
F64=$(flops_per_iter "$NNZ" "$U64" "$I64" 64)
record training "s/iteration, 64 factors ($NNZ pairs)" "$SPI64" s "" "" "" ""
record training "GFLOP/s, 64 factors" "$(calc "$F64 / $SPI64 / 1e9")" GFLOP/s "GEMM all cores" "$G64" \
  "$(calc "$F64 / $SPI64 / 1e9 / $G64")" ""
say "training, 128 factors x $ITERS iterations"
G128=$(gemm_now)
train interactions 128 "$ITERS" m128
read -r T128 SPI128 _ U128 I128 _ _ _ < <(train_figures m128)
F128=$(flops_per_iter "$NNZ" "$U128" "$I128" 128)
record training "s/iteration, 128 factors" "$SPI128" s "" "" "" ""
record training "GFLOP/s, 128 factors" "$(calc "$F128 / $SPI128 / 1e9")" GFLOP/s "GEMM all cores" "$G128" \
  "$(calc "$F128 / $SPI128 / 1e9 / $G128")" ""
q "DROP TABLE m128"
# Memory: the backend's peak resident memory minus the shared buffers and mapped files
# it holds at the end, against 12 bytes per input row plus the float32 factors.
PEAK_MB=$(calc "($HWM - $SHM - $FIL) / 1024")
DATA_MB=$(calc "($ROWS * 12 + ($U64 + $I64) * 64 * 4) / 1048576")
record memory "peak backend memory, training 64 factors" "$PEAK_MB" MB "interactions + factors" "$DATA_MB" \
  "$(calc "$PEAK_MB / $DATA_MB")" "<= 2"

# ---------------------------------------------------------------------------------
# EASE: one fresh backend per size, so VmHWM is that training's peak.
for NE in ${EASE_ITEMS:-1682 20000}; do
  say "train_ease, the $NE most popular items"
  q "CREATE TABLE ease_in AS SELECT x.* FROM interactions x JOIN (SELECT item_id FROM interactions GROUP BY item_id
     ORDER BY count(*) DESC, item_id LIMIT $NE) top USING (item_id)"
  GE=$(gemm_now)
  psql -X -q -t -A -v ON_ERROR_STOP=1 >"$WORK/ease_$NE.txt" <<SQL
$SETTINGS
SELECT bench_ms(\$q\$CREATE TABLE me AS SELECT recsys.train_ease(user_id, item_id) AS model FROM ease_in\$q\$);
SELECT (recsys.model_info(model)->>'items') || ' ' || (recsys.model_info(model)->>'interactions') FROM me;
SELECT pg_read_file('/proc/self/status');
SQL
  EMS=$(sed -n 1p "$WORK/ease_$NE.txt")
  read -r EN EPAIRS < <(sed -n 2p "$WORK/ease_$NE.txt")
  EHWM=$(awk '/^VmHWM/ {print $2}' "$WORK/ease_$NE.txt")
  ESHM=$(awk '/^RssShmem/ {print $2}' "$WORK/ease_$NE.txt")
  EFIL=$(awk '/^RssFile/ {print $2}' "$WORK/ease_$NE.txt")
  EPEAK=$(calc "($EHWM - $ESHM - $EFIL) / 1024")
  EDENSE=$(calc "2 * $EN * $EN * 8 / 1048576")
  record ease "train_ease, $EN items ($EPAIRS pairs): statement" "$(calc "$EMS / 1000")" s "" "" "" ""
  record ease "train_ease, $EN items: GFLOP/s (n^3 flops)" "$(calc "$EN * $EN * $EN / ($EMS / 1000) / 1e9")" GFLOP/s \
    "GEMM all cores" "$GE" "$(calc "$EN * $EN * $EN / ($EMS / 1000) / 1e9 / $GE")" ""
  record ease "peak backend memory, train_ease $EN items" "$EPEAK" MB "two n x n float64" "$EDENSE" \
    "$(calc "$EPEAK / $EDENSE")" "<= 1.5"
  q "DROP TABLE me"
  q "DROP TABLE ease_in"
done

# ---------------------------------------------------------------------------------
# Serving on the 64-factor model.
say "serving"
q "COPY (SELECT model FROM m64) TO STDOUT (FORMAT binary)" >"$WORK/m64.bin"
"$TOOL" serve "$WORK/m64.bin" "$THREADS" >"$WORK/core.txt"
cp "$WORK/core.txt" "$OUT/core.txt"   # every core figure, kept with the results
core() { awk -v k="$1" '$1 == k {print $2}' "$WORK/core.txt"; }
percentiles() {  # pgbench per-transaction logs -> "p50_ms p99_ms"
  cat "$WORK"/log.* | awk '{print $3 / 1000}' | sort -g | awk '{a[NR]=$1} END{printf "%.4f %.4f\n", a[int(NR*0.5)+1], a[int(NR*0.99)+1]}'
  rm -f "$WORK"/log.*
}
pg_bench() {  # script clients seconds -> tps
  (cd "$WORK" && "$PG_BINDIR/pgbench" -n -M prepared -c "$2" -j "$2" -T "$3" -l --log-prefix="$WORK/log" -f "$1" 2>&1 |
    awk '/^tps/ {print $3}')
}
bench_rounds() {  # script clients seconds -> "tps p50_ms p99_ms" of the best of 3 rounds (lowest p50):
  local best="" best50="" tps p50 p99 r  # a burst of load from other processes spoils one round, not the figure
  for r in 1 2 3; do
    tps=$(pg_bench "$1" "$2" $(($3 / 3 + 1)))
    read -r p50 p99 < <(percentiles)
    if [[ -z "$best" ]] || awk "BEGIN{exit !($p50 < $best50)}"; then best="$tps $p50 $p99"; best50=$p50; fi
  done
  echo "$best"
}
cat >"$WORK/rec.sql" <<SQL
\set u random(1, $MAXU)
SELECT r.item_id, r.score FROM m64 m, recsys.recommend(m.model, :u, 10) r;
SQL
cat >"$WORK/sim.sql" <<SQL
\set i random(1, $NI)
SELECT s.item_id, s.score FROM m64 m, recsys.similar_items(m.model, (SELECT item_id FROM bench_items WHERE n = :i), 10) s;
SQL
q "CREATE TABLE bench_items AS SELECT row_number() OVER (ORDER BY item_id) AS n, item_id FROM (SELECT DISTINCT item_id FROM interactions) s;
   CREATE UNIQUE INDEX ON bench_items (n); ANALYZE bench_items"
cat >"$WORK/lookup.sql" <<SQL
\set i random(1, $NI)
SELECT item_id FROM bench_items WHERE n = :i;
SQL
cat >"$WORK/one.sql" <<SQL
\set u random(1, $MAXU)
SELECT :u + 1;
SQL
pg_bench "$WORK/rec.sql" 1 2 >/dev/null; rm -f "$WORK"/log.*   # warm-up: detoast into each backend's cache
read -r ONE_TPS ONE50 ONE99 < <(bench_rounds "$WORK/one.sql" 1 6)
read -r REC_TPS REC50 REC99 < <(bench_rounds "$WORK/rec.sql" 1 "$PGB_SECONDS")
read -r SIM_TPS SIM50 SIM99 < <(bench_rounds "$WORK/sim.sql" 1 "$PGB_SECONDS")
read -r _ LOOK50 _ < <(bench_rounds "$WORK/lookup.sql" 1 6)
read -r REC2_TPS REC2_50 REC2_99 < <(bench_rounds "$WORK/rec.sql" 2 "$PGB_SECONDS")
CR50=$(core core_recommend_p50_ms); CR99=$(core core_recommend_p99_ms)
CS50=$(core core_similar_p50_ms); CS99=$(core core_similar_p99_ms)
# Overhead = SQL latency - core scoring; the aim is overhead <= scoring.
record serving "recommend p50 through SQL (1 client)" "$REC50" ms "core scoring p50" "$CR50" \
  "$(calc "($REC50 - $CR50) / $CR50")" "<= 1"
record serving "recommend p99 through SQL (1 client)" "$REC99" ms "core scoring p99" "$CR99" \
  "$(calc "($REC99 - $CR99) / $CR99")" ""
# similar_items reads the item's stored list (similar_items option of train_als): the
# aim is the pgbench floor, within 1.2x (the script also looks its item ID up: see the
# lookup row below).
record serving "similar_items p50 through SQL (1 client)" "$SIM50" ms "pgbench floor" "$ONE50" \
  "$(calc "$SIM50 / $ONE50")" "<= 1.2"
record serving "similar_items p99 through SQL (1 client)" "$SIM99" ms "core scoring p99" "$CS99" \
  "$(calc "($SIM99 - $CS99) / $CS99")" ""
record serving "core similar_items p50 from the stored list" "$(core core_similar_list_p50_ms)" ms \
  "core scoring p50 (all items)" "$CS50" "$(calc "$(core core_similar_list_p50_ms) / $CS50")" ""
record serving "similar-item lists built ($(core core_similar_build_length) per item)" "$(core core_similar_build_s)" s \
  "train_als statement" "$T64" "$(calc "$(core core_similar_build_s) / $T64")" ""
record serving "stored list entries differing from a rebuild" "$(core core_similar_build_differ)" entries "" "" \
  "$(core core_similar_build_differ)" "== 0"
CP50=$(core core_pruned_p50_ms); CP99=$(core core_pruned_p99_ms)
record serving "core recommend p50 as served (norm-bound pruning)" "$CP50" ms "core scoring p50 (all items)" "$CR50" \
  "$(calc "$CR50 / $CP50")" ""
record serving "core recommend p99 as served (norm-bound pruning)" "$CP99" ms "core scoring p99 (all items)" "$CR99" \
  "$(calc "$CR99 / $CP99")" ""
# Between pgbench calls other processes run and the factors leave the CPU caches: the
# core probe repeats the calls after writing 64 MB, for the cost of reading from memory.
record serving "core similar_items p50, caches flushed" "$(core core_similar_cold_p50_ms)" ms \
  "core scoring p50 (warm)" "$CS50" "$(calc "$(core core_similar_cold_p50_ms) / $CS50")" ""
record serving "core recommend p50 as served, caches flushed" "$(core core_pruned_cold_p50_ms)" ms \
  "all items, caches flushed" "$(core core_recommend_cold_p50_ms)" \
  "$(calc "$(core core_recommend_cold_p50_ms) / $(core core_pruned_cold_p50_ms)")" ""
record serving "recommend throughput, 2 clients" "$REC2_TPS" calls/s "1 client" "$REC_TPS" \
  "$(calc "$REC2_TPS / $REC_TPS")" ""
record serving "trivial prepared SELECT p50 (pgbench floor)" "$ONE50" ms "" "" "" ""
# similar_items' script finds an existing item ID with an indexed subquery; this is that
# lookup alone, for reading its share of the similar_items overhead above.
record serving "similar_items script's ID lookup alone, p50" "$LOOK50" ms "pgbench floor" "$ONE50" \
  "$(calc "$LOOK50 - $ONE50")" ""
# The per-user form on the first users (IDs 1..n all exist) in one statement: the cost
# per call inside the server, without client round trips.
SUB=$((U64 < 5000 ? U64 : 5000))
# Each best_ms round is a new session: WARM first reads the model into the session's
# cache (detoast, and the item order recommend prunes with), as a serving backend has.
WARM="SELECT count(*) FROM m64 m, recsys.recommend(m.model, 1, 1);"
LAT_MS=$(best_ms "SELECT count(*) FROM generate_series(1, $SUB) u, m64 m, LATERAL recsys.recommend(m.model, u, 10) r" "$WARM")
CRM=$(core core_recommend_mean_ms)
record serving "recommend per call inside one statement (LATERAL)" "$(calc "$LAT_MS / $SUB")" ms "core scoring mean" "$CRM" \
  "$(calc "($LAT_MS / $SUB - $CRM) / $CRM")" "<= 1"
SUBI=$((NI < 5000 ? NI : 5000))
SIMIN_MS=$(best_ms "SELECT count(*) FROM bench_items b, m64 m, LATERAL recsys.similar_items(m.model, b.item_id, 10) r WHERE b.n <= $SUBI" "$WARM")
# The yardstick: the same statement on a model without lists (0 iterations: scoring
# costs the same whatever the factors' values), which scores every item per call.
q "$SETTINGS CREATE TABLE m64_scored AS SELECT recsys.train_als(user_id, item_id, weight, '{\"factors\": 64, \"iterations\": 0, \"similar_items\": 0}') AS model FROM interactions" >/dev/null
SIMSC_MS=$(best_ms "SELECT count(*) FROM bench_items b, m64_scored m, LATERAL recsys.similar_items(m.model, b.item_id, 10) r WHERE b.n <= $SUBI" \
  "SELECT count(*) FROM m64_scored m, recsys.similar_items(m.model, (SELECT item_id FROM bench_items WHERE n = 1), 1);")
q "DROP TABLE m64_scored"
record serving "similar_items per call inside one statement" "$(calc "$SIMIN_MS / $SUBI")" ms \
  "same, scoring all items" "$(calc "$SIMSC_MS / $SUBI")" "$(calc "$SIMIN_MS / $SIMSC_MS")" "<= 0.3"

# Live serving against plain recommend on the same users, inside one statement: fold-in
# of a 50-item history + recommend (recommend_for_items), and include / exclude lists of
# 1,000 items (issue 12's aims: <= 3x and <= 2x).
SUBF=$((SUB < 1000 ? SUB : 1000))
q "CREATE TABLE bench_hist AS SELECT u, (SELECT array_agg(b.item_id) FROM bench_items b
     WHERE b.n IN (SELECT ((u * 37 + g * 101) % $NI) + 1 FROM generate_series(1, 50) g)) AS items
   FROM generate_series(1, $SUBF) u;
   CREATE TABLE bench_filter AS SELECT array_agg(item_id) AS items
   FROM (SELECT item_id FROM bench_items ORDER BY (n * 7919) % $NI, n LIMIT 1000) s;" >/dev/null
PLAINF_MS=$(best_ms "SELECT count(*) FROM generate_series(1, $SUBF) u, m64 m, LATERAL recsys.recommend(m.model, u, 10) r" "$WARM")
FOLD_MS=$(best_ms "SELECT count(*) FROM bench_hist h, m64 m, LATERAL recsys.recommend_for_items(m.model, h.items, 10) r" "$WARM")
INC_MS=$(best_ms "SELECT count(*) FROM generate_series(1, $SUBF) u, m64 m, bench_filter f, LATERAL recsys.recommend(m.model, u, 10, include => f.items) r" "$WARM")
EXC_MS=$(best_ms "SELECT count(*) FROM generate_series(1, $SUBF) u, m64 m, bench_filter f, LATERAL recsys.recommend(m.model, u, 10, exclude => f.items) r" "$WARM")
record serving "fold-in + recommend, 50-item history, per call" "$(calc "$FOLD_MS / $SUBF")" ms "recommend per call" \
  "$(calc "$PLAINF_MS / $SUBF")" "$(calc "$FOLD_MS / $PLAINF_MS")" "<= 3"
record serving "recommend with include of 1,000 items, per call" "$(calc "$INC_MS / $SUBF")" ms "recommend per call" \
  "$(calc "$PLAINF_MS / $SUBF")" "$(calc "$INC_MS / $PLAINF_MS")" "<= 2"
record serving "recommend with exclude of 1,000 items, per call" "$(calc "$EXC_MS / $SUBF")" ms "recommend per call" \
  "$(calc "$PLAINF_MS / $SUBF")" "$(calc "$EXC_MS / $PLAINF_MS")" "<= 2"

# ---------------------------------------------------------------------------------
# The shared model store (issue 16), on the 64-factor model: the first call of a new
# session while another session serves the model, steady-state latency against the
# per-backend cache (store off), the memory STORE_BACKENDS backends add by serving
# (summed PSS) against one backend, and pgbench with 16 clients while a model is
# retrained and swapped 20 times.
say "shared model store"
STORE_OFF="-c recsys.shared_cache_size=0 -c client_min_messages=warning"
STORE_BACKENDS=${STORE_BACKENDS:-50}
q "CREATE TABLE tiny_model AS SELECT recsys.train_als(g, g % 3 + 1, '{\"factors\": 2, \"iterations\": 1}'::jsonb) AS model
   FROM generate_series(1, 20) g"
ITEM1=$(q "SELECT min(item_id) FROM bench_items")
TINY_WARM="SELECT count(*) FROM tiny_model t, recsys.recommend(t.model, 1, 2);"
q "SELECT count(*) FROM m64 m, recsys.recommend(m.model, 1, 1)" >/dev/null   # the model's file exists
store_first_ms() {  # PGOPTIONS -> the best first recommend of 5 new sessions (the library loaded before)
  local best="" t i
  for i in 1 2 3 4 5; do
    t=$(PGOPTIONS="$1" psql -X -q -t -A -c "$TINY_WARM" -c "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); n int;
      BEGIN SELECT count(*) INTO n FROM m64 m, recsys.recommend(m.model, $((i * 17)), 10);
      RAISE WARNING 'ms=%', round((1000 * extract(epoch FROM clock_timestamp() - t0))::numeric, 3); END \$\$" 2>&1 >/dev/null |
      sed -n 's/.*ms=//p')
    if [[ -z "$best" ]] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}
FIRST_ON=$(store_first_ms "")
FIRST_OFF=$(store_first_ms "$STORE_OFF")
record store "first recommend of a new session (store)" "$FIRST_ON" ms "store off (detoast)" "$FIRST_OFF" \
  "$(calc "$FIRST_OFF / $FIRST_ON")" ""
record store "first recommend of a new session vs 5 ms" "$FIRST_ON" ms "the issue's 5 ms" 5 "$(calc "$FIRST_ON / 5")" "<= 1"
# Steady state: the serving figures above ran with the store (the default); the same
# pgbench rounds with the store off.
read -r _ REC50_OFF _ < <(PGOPTIONS="$STORE_OFF" bench_rounds "$WORK/rec.sql" 1 "$PGB_SECONDS")
read -r _ SIM50_OFF _ < <(PGOPTIONS="$STORE_OFF" bench_rounds "$WORK/sim.sql" 1 "$PGB_SECONDS")
record store "recommend p50, store vs per-backend cache" "$REC50" ms "store off" "$REC50_OFF" \
  "$(calc "$REC50 / $REC50_OFF")" "<= 1.1"
record store "similar_items p50, store vs per-backend cache" "$SIM50" ms "store off" "$SIM50_OFF" \
  "$(calc "$SIM50 / $SIM50_OFF")" "<= 1.1"
# Memory: backends that run the same calls (similar_users reads every user's factors,
# similar_items every item's) then sleep; the baseline makes them on a small inline model.
store_touch() {  # table item -> the calls
  echo "SELECT count(*) FROM $1 t, recsys.similar_users(t.model, 1, 10);
SELECT count(*) FROM $1 t, recsys.similar_items(t.model, $2, 10);
SELECT count(*) FROM $1 t, generate_series(1, 20) g, LATERAL recsys.recommend(t.model, g, 10) r;"
}
store_pss() {  # count table item PGOPTIONS -> summed Pss (kB) of count backends after the calls
  local n=$1 i total=0 pid v
  for i in $(seq 1 "$n"); do
    PGOPTIONS="$4" PGAPPNAME=bench_pss psql -X -q -t -A -c "$(store_touch "$2" "$3")" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
  done
  for _ in $(seq 1 1200); do
    [[ $(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_pss' AND wait_event = 'PgSleep'") == "$n" ]] && break
    sleep 0.1
  done
  for pid in $(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench_pss' AND wait_event = 'PgSleep'"); do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
    total=$((total + v))
  done
  q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'bench_pss'" >/dev/null
  wait 2>/dev/null || true
  echo "$total"
}
store_delta() {  # count PGOPTIONS -> kB the count backends add by serving m64
  echo $(($(store_pss "$1" m64 "$ITEM1" "$2") - $(store_pss "$1" tiny_model 1 "$2")))
}
D1=$(store_delta 1 "")
DN=$(store_delta "$STORE_BACKENDS" "")
D1_OFF=$(store_delta 1 "$STORE_OFF")
D10_OFF=$(store_delta 10 "$STORE_OFF")
record store "PSS added by $STORE_BACKENDS backends serving (store)" "$(calc "$DN / 1024")" MB "1 backend" \
  "$(calc "$D1 / 1024")" "$(calc "$DN / $D1")" "<= 1.3"
record store "PSS added by 10 backends serving (store off)" "$(calc "$D10_OFF / 1024")" MB "1 backend" \
  "$(calc "$D1_OFF / 1024")" "$(calc "$D10_OFF / $D1_OFF")" ""
# 16 clients serve a model (trained on 1/20 of the rows) that another session retrains
# and swaps 20 times.
q "CREATE TABLE swap_model AS SELECT recsys.train_als(user_id, item_id, weight, '{\"factors\": 32, \"iterations\": 1, \"seed\": 0}'::jsonb) AS model FROM interactions_20"
SWAP_T0=$(date +%s.%N)
q "UPDATE swap_model SET model = (SELECT recsys.train_als(user_id, item_id, weight, '{\"factors\": 32, \"iterations\": 1, \"seed\": 100}'::jsonb) FROM interactions_20)"
SWAP_ONE=$(awk -v a="$SWAP_T0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
SWAP_SECONDS=$(awk -v t="$SWAP_ONE" 'BEGIN { printf "%d", 20 * t * 3 + 10 }')
cat >"$WORK/swap.sql" <<SQL
\set u random(1, $((MAXU / 20)))
SELECT count(*) FROM swap_model s, recsys.recommend(s.model, :u, 10) r;
SQL
BUILDS0=$(q "SELECT builds FROM recsys.shared_cache_stats()")
( for n in $(seq 1 20); do
    q "UPDATE swap_model SET model = (SELECT recsys.train_als(user_id, item_id, weight, '{\"factors\": 32, \"iterations\": 1, \"seed\": $n}'::jsonb) FROM interactions_20)" || exit 1
  done; date +%s >"$WORK/swaps_done" ) &
SWAPPER=$!
(cd "$WORK" && "$PG_BINDIR/pgbench" -n -M prepared -c 16 -j 2 -T "$SWAP_SECONDS" -f "$WORK/swap.sql" >"$WORK/swap_pgbench.out" 2>&1) || true
PGB_END=$(date +%s)
wait "$SWAPPER" || say "the swapping session failed"
SWAP_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/swap_pgbench.out")
SWAP_CALLS=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/swap_pgbench.out")
SWAP_BUILDS=$(($(q "SELECT builds FROM recsys.shared_cache_stats()") - BUILDS0))
[[ -f "$WORK/swaps_done" && $(cat "$WORK/swaps_done") -le $PGB_END ]] || say "note: the swaps outlasted the pgbench run"
record store "16 clients under 20 swaps: failed calls" "${SWAP_FAILED:-?}" calls "calls served" "${SWAP_CALLS:-0}" \
  "${SWAP_FAILED:-1}" "== 0"
record store "16 clients under 20 swaps: store builds" "$SWAP_BUILDS" files "swapped models" 20 "$(calc "$SWAP_BUILDS / 20")" ""
q "DROP TABLE swap_model, tiny_model"

# ---------------------------------------------------------------------------------
# Batch: recommend_all vs the LATERAL per-user form on a subset of users.
say "batch"
GB=$(gemm_now)
# IDs as integers, like the LATERAL form's (recommend returns the user argument's type).
ALL_MS=$(best_ms "SELECT count(*) FROM m64 m, recsys.recommend_all(m.model, 10, NULL::int)" "$WARM")
ALLTEXT_MS=$(best_ms "SELECT count(*) FROM m64 m, recsys.recommend_all(m.model, 10)" "$WARM")
# recommend_all scores items in decreasing-norm order and stops per user once no item
# left can enter its top 10 (exact): the GFLOP/s below is that of the exhaustive product
# it replaces (users x items x factors), the fraction is the share of pairs it scored.
FRAC=$(core core_batch_scored_fraction)
BATCH_GF=$(calc "2 * $U64 * $I64 * 64 / ($ALL_MS / 1000) / 1e9")
record batch "recommend_all k=10, all users" "$(calc "$U64 * 10 / $ALL_MS * 1000")" rows/s "" "" "" ""
record batch "recommend_all k=10, all users, IDs as text" "$(calc "$U64 * 10 / $ALLTEXT_MS * 1000")" rows/s "" "" "" ""
record batch "recommend_all vs LATERAL recommend, per user" "$(calc "$ALL_MS / $U64")" ms "LATERAL ($SUB users)" \
  "$(calc "$LAT_MS / $SUB")" "$(calc "($LAT_MS / $SUB) / ($ALL_MS / $U64)")" ">= 10"
record batch "recommend_all per user vs exhaustive core scoring" "$(calc "$ALL_MS / $U64")" ms "core scoring mean (all items)" \
  "$CRM" "$(calc "$CRM / ($ALL_MS / $U64)")" ""
record batch "user x item pairs scored (norm-bound pruning)" "$FRAC" fraction "" "" "" ""
record batch "recommend_all, exhaustive-equivalent GFLOP/s" "$BATCH_GF" GFLOP/s "GEMM all cores" "$GB" \
  "$(calc "$BATCH_GF / $GB")" ""
record batch "recommend_all GFLOP/s on the pairs scored" "$(calc "$BATCH_GF * $FRAC")" GFLOP/s "GEMM all cores" "$GB" \
  "$(calc "$BATCH_GF * $FRAC / $GB")" ""
record batch "core lists differing from recommend's (sampled users)" "$(core core_batch_lists_differing)" users \
  "users checked" "$(core core_batch_checked_users)" "$(calc "$(core core_batch_lists_differing) / $(core core_batch_checked_users)")" "== 0"
record batch "core recommend_batch, exhaustive-equivalent GFLOP/s" "$(core core_batch_gflops)" GFLOP/s "GEMM all cores" "$GB" \
  "$(calc "$(core core_batch_gflops) / $GB")" ""

# ---------------------------------------------------------------------------------
# Hybrid cold start (issue 13): 1,000,000 interactions on 10,000 items, each item with 20
# features (tags from a vocabulary of 2,000); the last 1,000 items have no interactions
# (feature-only). train_als with its defaults on the rows, then train_hybrid_items on
# that model and the metadata of every item; statement time and the backend's peak
# memory (each in a fresh session) against train_als'.
say "hybrid"
q "CREATE TABLE hy_rows AS SELECT (g % 20000) AS user_id, floor(9000 * power(random(), 2))::int AS item_id FROM generate_series(1, 1000000) g;
   CREATE TABLE hy_items AS SELECT i AS item_id, jsonb_build_object('tags', ARRAY(SELECT 't' || ((i * 31 + j * 97 + (i / 100) * j) % 2000) FROM generate_series(1, 20) j)) AS features
   FROM generate_series(0, 9999) i" >/dev/null
hy_run() {  # SQL target -> "ms hwm_kb" of a fresh session
  psql -X -q -t -A -v ON_ERROR_STOP=1 <<SQL | awk 'NR == 1 {ms = $1} /^VmHWM/ {hwm = $2} END {print ms, hwm}'
$SETTINGS
SELECT bench_ms(\$q\$CREATE TABLE $2 AS $1\$q\$);
SELECT pg_read_file('/proc/self/status');
SQL
}
read -r HY_ALS_MS HY_ALS_KB < <(hy_run "SELECT recsys.train_als(user_id, item_id) AS model FROM hy_rows" hy_als)
read -r HY_MS HY_KB < <(hy_run "SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), item_id, features) AS model FROM hy_items" hy_model)
HY_COLD=$(q "SELECT recsys.model_info(model)->'hybrid'->>'feature_only_items' FROM hy_model")
record hybrid "train_hybrid_items, 10,000 items x 20 features" "$(calc "$HY_MS / 1000")" s "train_als, 1M rows" \
  "$(calc "$HY_ALS_MS / 1000")" "$(calc "$HY_MS / $HY_ALS_MS")" ""
record hybrid "peak backend memory, train_hybrid_items" "$(calc "$HY_KB / 1024")" MB "train_als, 1M rows" \
  "$(calc "$HY_ALS_KB / 1024")" "$(calc "$HY_KB / $HY_ALS_KB")" ""
record hybrid "feature-only items given factors" "${HY_COLD:-0}" items "" "" "" ""
q "DROP TABLE hy_rows, hy_items, hy_als, hy_model" >/dev/null

# ---------------------------------------------------------------------------------
# Growth: training time and latency against data size.
say "growth"
echo "rows,users,items,pairs,train_statement_s,seconds_per_iteration,recommend_p50_ms,recommend_p99_ms" >"$OUT/growth.csv"
for frac in 20 4; do
  train "interactions_$frac" 64 "$ITERS" "mg$frac"
  read -r TG SPIG NNZG UG IG _ _ _ < <(train_figures "mg$frac")
  RG=$(q "SELECT count(*) FROM interactions_$frac")
  sed "s/m64/mg$frac/" "$WORK/rec.sql" >"$WORK/recg.sql"
  sed -i "s/random(1, $MAXU)/random(1, $((MAXU / frac)))/" "$WORK/recg.sql"
  pg_bench "$WORK/recg.sql" 1 1 >/dev/null; rm -f "$WORK"/log.*
  read -r _ G50 G99 < <(bench_rounds "$WORK/recg.sql" 1 "$PGB_SECONDS")
  echo "$RG,$UG,$IG,$NNZG,$TG,$SPIG,$G50,$G99" >>"$OUT/growth.csv"
  q "DROP TABLE mg$frac"
done
echo "$ROWS,$U64,$I64,$NNZ,$T64,$SPI64,$REC50,$REC99" >>"$OUT/growth.csv"
while IFS=, read -r r _ _ _ ts spi p50 _; do
  [[ "$r" == rows ]] && continue
  record growth "$r rows: s/iteration | train_als statement" "$spi" s "statement s" "$ts" "" ""
done <"$OUT/growth.csv"
FIRST_SPI=$(awk -F, 'NR == 2 {print $6}' "$OUT/growth.csv"); FIRST_ROWS=$(awk -F, 'NR == 2 {print $1}' "$OUT/growth.csv")
record growth "s/iteration growth, all rows vs 1/20" "$(calc "$SPI64 / $FIRST_SPI")" x "rows ratio" \
  "$(calc "$ROWS / $FIRST_ROWS")" "$(calc "($SPI64 / $FIRST_SPI) / ($ROWS / $FIRST_ROWS)")" ""

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot <<GP
set terminal pngcairo size 1000,420 font ",10" noenhanced
set output "$OUT/growth.png"
set datafile separator ","
set multiplot layout 1,2 title "recsys on MovieLens-20M-shaped data ($ROWS rows at most), $(nproc) cores ($CPU), $(date -u +%Y-%m-%d)"
set logscale xy
set format x "%.0s%c"
set xrange [$((ROWS / 40)):$((ROWS * 2))]
set xlabel "interactions (rows)"
set ylabel "seconds"
set key top left
set grid
set title "train_als, 64 factors"
plot "$OUT/growth.csv" skip 1 using 1:6 with linespoints lw 2 title "seconds per ALS iteration", \
     "" skip 1 using 1:5 with linespoints lw 2 title "whole statement ($ITERS iterations)"
set title "recommend k=10 through SQL (pgbench, 1 client)"
set ylabel "milliseconds"
plot "$OUT/growth.csv" skip 1 using 1:7 with linespoints lw 2 title "p50", \
     "" skip 1 using 1:8 with linespoints lw 2 title "p99"
unset multiplot
GP
fi

# ---------------------------------------------------------------------------------
TOTAL_S=$(($(date +%s) - SUITE_START))
{
  echo "recsys benchmark suite: ROWS=$ROWS ($U64 users, $I64 items, $NNZ distinct pairs), ITERATIONS=$ITERS, threads=$THREADS"
  echo "machine: $MACHINE; GEMM float32: $GEMM1 GFLOP/s on 1 thread, $GEMM on $THREADS"
  echo "parallel plans (max_parallel_workers_per_gather = 2):$PLANS"
  echo "load (generate + COPY): ${LOAD_S} s; suite total: ${TOTAL_S} s; $(date -u '+%Y-%m-%d %H:%M UTC')"
  printf '%-8s %-50s %10s %-8s %-26s %10s %8s  %s\n' section figure value unit yardstick value ratio aim
  cat "$OUT/table.txt"
} >"$OUT/table.tmp" && mv "$OUT/table.tmp" "$OUT/table.txt"
cat "$OUT/table.txt"
echo "results: $OUT/table.txt, $OUT/results.csv, $OUT/growth.csv${OUT:+, $OUT/growth.png}"

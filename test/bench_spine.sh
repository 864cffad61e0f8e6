#!/usr/bin/env bash
# Benchmark of the spine on generated data: 1,000,000 interactions (~50k users, 10k
# items, skewed popularity and activity), train_als at 64 factors x 15 iterations
# through SQL, and serving latency.   Usage: bash test/bench_spine.sh [rows]
# Prints: ingest rows/s (vs SELECT sum(weight) on the same table), training seconds,
# recommend latency for the first call of a session and for cached calls (p50/p99 via
# pgbench with prepared statements), similar_items latency. Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000000}"
THREADS="${RECSYS_THREADS:-$(nproc)}"
bash test/install_deps.sh
make -j"$(nproc)" >/dev/null && make install >/dev/null
source test/pg_cluster.sh
start_cluster "max_parallel_workers_per_gather = 0" "work_mem = '256MB'"
WORK="$RECSYS_CLUSTER_DIR/bench"
mkdir -p "$WORK" && chmod 777 "$WORK"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE EXTENSION recsys"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), recsys.threads=$THREADS"
q "SELECT setseed(0.42)"
q "CREATE TABLE interactions AS
   SELECT floor(50000 * power(random(), 1.6))::int AS user_id,
          floor(10000 * power(random(), 2.2))::int AS item_id,
          (1 + floor(3 * random()))::float8 AS weight
   FROM generate_series(1, $ROWS)"
q "VACUUM ANALYZE interactions"
q "SELECT format('data: %s rows, %s users, %s items', count(*), count(DISTINCT user_id), count(DISTINCT item_id)) FROM interactions"

# Wall time of one statement in ms, measured in the server.
q "CREATE FUNCTION bench_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END \$\$"
best_ms() {  # best of 3 runs
  local best=""
  for _ in 1 2 3; do
    local t; t=$(q "SET recsys.threads = $THREADS; SELECT bench_ms(\$q\$$1\$q\$)" | tail -1)
    if [[ -z "$best" ]] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}
SUM_MS=$(best_ms "SELECT sum(weight) FROM interactions")
INGEST_MS=$(best_ms "SELECT recsys.train_als(user_id, item_id, weight, '{\"iterations\": 0, \"factors\": 8}') FROM interactions")
printf 'ingest (train_als, 0 iterations): %.0f ms = %.2f M rows/s; SELECT sum(weight): %.0f ms; ratio %.2fx\n' \
  "$INGEST_MS" "$(awk "BEGIN{print $ROWS / $INGEST_MS / 1000}")" "$SUM_MS" "$(awk "BEGIN{print $INGEST_MS / $SUM_MS}")"

TRAIN_MS=$(q "SET recsys.threads = $THREADS; SELECT bench_ms(\$q\$CREATE TABLE m AS SELECT recsys.train_als(user_id, item_id, weight, '{\"factors\": 64, \"iterations\": 15, \"seed\": 1}') AS model FROM interactions\$q\$)" | tail -1)
q "SELECT format('model: %s users, %s items, %s pairs, %s bytes; training %s s in the final function (%s s per iteration); loss %s',
          i->'users', i->'items', i->'interactions', i->'bytes', round((i->>'training_seconds')::numeric, 2),
          round((SELECT avg((h->>'seconds')::numeric) FROM jsonb_array_elements(i->'history') h), 3),
          round((i->>'final_loss')::numeric, 5))
   FROM (SELECT recsys.model_info(model) i FROM m) s"
printf 'train_als 64 factors x 15 iterations, whole statement (ingest + training + storing): %.2f s\n' "$(awk "BEGIN{print $TRAIN_MS / 1000}")"

# First call in a fresh session (detoasts the model into the backend cache) vs later calls.
FIRST=()
for s in 1 2 3 4 5; do
  FIRST+=("$(q "SELECT bench_ms('SELECT * FROM m, recsys.recommend(m.model, $((s * 101)), 10)')" | tail -1)")
done
printf 'recommend, first call of a session (5 sessions): %s ms\n' "$(printf '%s\n' "${FIRST[@]}" | sort -g | awk '{a[NR]=$1} END{printf "median %.2f, min %.2f, max %.2f", a[int((NR+1)/2)], a[1], a[NR]}')"

percentiles() {  # pgbench per-transaction log -> p50/p99 in ms
  cat "$WORK"/log.* | awk '{print $3 / 1000}' | sort -g | awk '{a[NR]=$1} END{printf "p50 %.3f ms, p99 %.3f ms (%d calls)", a[int(NR*0.5)], a[int(NR*0.99)], NR}'
  rm -f "$WORK"/log.*
}
pg_bench() {  # script file, clients, seconds
  (cd "$WORK" && "$PG_BINDIR/pgbench" -n -M prepared -c "$2" -j "$2" -T "$3" -l --log-prefix="$WORK/log" -f "$1" 2>&1 | grep -E "^tps" | sed 's/ (without initial connection time)//')
}
cat >"$WORK/rec.sql" <<'SQL'
\set u random(0, 49999)
SELECT r.item, r.score FROM m, recsys.recommend(m.model, :u, 10) r;
SQL
cat >"$WORK/sim.sql" <<'SQL'
\set i random(0, 9999)
SELECT s.item, s.score FROM m, recsys.similar_items(m.model, :i, 10) s;
SQL
cat >"$WORK/sum.sql" <<'SQL'
\set u random(0, 49999)
SELECT :u + 1;
SQL
pg_bench "$WORK/sum.sql" 1 3 >/dev/null; rm -f "$WORK"/log.*
echo "baseline, trivial prepared SELECT, 1 client: $(pg_bench "$WORK/sum.sql" 1 5); $(percentiles)"
echo "recommend k=10, cached, 1 client: $(pg_bench "$WORK/rec.sql" 1 10); $(percentiles)"
echo "recommend k=10, cached, 2 clients: $(pg_bench "$WORK/rec.sql" 2 10); $(percentiles)"
echo "similar_items k=10, cached, 1 client: $(pg_bench "$WORK/sim.sql" 1 10); $(percentiles)"

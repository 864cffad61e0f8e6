#!/usr/bin/env bash
# Item-kNN benchmark through SQL on generated interactions with skewed popularity and
# activity (user = floor(U * random()^1.6), item = floor(I * random()^2.2), weight 1..3).
#   Usage: bash test/bench_knn.sh [rows:users:items ...]
#   default: 1000000:50000:10000 10000000:200000:50000
# For each size: train_item_knn time (whole statement and the final function's
# training_seconds), the backend's peak memory (VmHWM of /proc/self/status read by the
# backend itself, before and after training: the increase is what ingest + training
# took), the model's size, recommend_all over every user, then recommend and
# similar_items latency (pgbench, prepared statements, known users and items, 1 client).
# First, if MovieLens-100K is at $RECSYS_ML100K (default ../shared/data/ml-100k): top-10
# quality on its official folds u1..u5 (train on ratings >= 4 of uN.base, evaluate on
# ratings >= 4 of uN.test, as test/bench_ratings.sh does for train_als), for a few settings.
# RECSYS_KNN_OPTIONS (default {}) are the training options, RECSYS_THREADS the threads.
# Not part of the test run. Installs the extension: run it under the shared lock
# (flock /tmp/recsys-pg.lock bash test/bench_knn.sh). Timings on a shared machine are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(1000000:50000:10000 10000000:200000:50000)
THREADS="${RECSYS_THREADS:-$(nproc)}"
OPTS="${RECSYS_KNN_OPTIONS:-{\}}"
PGBENCH_SECONDS="${RECSYS_PGBENCH_SECONDS:-10}"
bash test/install_deps.sh
make -j"$(nproc)" >/dev/null && make install >/dev/null
source test/pg_cluster.sh
start_cluster "max_parallel_workers_per_gather = 0" "work_mem = '256MB'" "jit = off" "max_wal_size = '4GB'"
WORK="$RECSYS_CLUSTER_DIR/bench"
mkdir -p "$WORK" && chmod 777 "$WORK"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

q "CREATE EXTENSION recsys"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), recsys.threads=$THREADS; options $OPTS"
# Wall time of one statement in ms, measured in the server; a field of this backend's
# /proc/self/status in kB (VmHWM = peak resident memory of the process so far).
q "CREATE FUNCTION bench_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql; RETURN 1000 * extract(epoch FROM clock_timestamp() - t0); END \$\$"
q "CREATE FUNCTION status_kb(field text) RETURNS bigint LANGUAGE sql AS \$\$
   SELECT (regexp_match(pg_read_file('/proc/self/status'), field || ':\\s+(\\d+)'))[1]::bigint \$\$"

ML="${RECSYS_ML100K:-../shared/data/ml-100k}"
if [[ -f "$ML/u1.base" ]]; then
  ML="$(cd "$ML" && pwd)"
  echo
  echo "== MovieLens-100K, official folds u1..u5, ratings >= 4 (mean over folds)"
  q "CREATE TABLE ml_results (fold int, setting text, metrics jsonb, seconds float8)"
  for f in 1 2 3 4 5; do
    q "CREATE TABLE base$f (u int, i int, r float8, ts bigint); CREATE TABLE test$f (u int, i int, r float8, ts bigint)"
    psql -X -q -c "\\copy base$f FROM '$ML/u$f.base'" -c "\\copy test$f FROM '$ML/u$f.test'"
    for setting in '{}' '{"similarity": "bm25"}' '{"similarity": "tfidf"}' '{"binary": true, "shrinkage": 10}' \
                   '{"similarity": "bm25", "neighbours": 50}'; do
      q "INSERT INTO ml_results SELECT $f, '$setting', (SELECT recsys.ranking_metrics(m, t.u, t.i) FROM test$f t WHERE t.r >= 4),
                (recsys.model_info(m)->>'training_seconds')::float8
         FROM (SELECT recsys.train_item_knn(u, i, r, '$setting'::jsonb) AS m FROM base$f WHERE r >= 4) k"
    done
  done
  psql -X -q -P footer=off -c "SELECT setting, round(avg((metrics->>'precision')::numeric), 4) AS p_at_10,
      round(avg((metrics->>'recall')::numeric), 4) AS r_at_10, round(avg((metrics->>'map')::numeric), 4) AS map_at_10,
      round(avg((metrics->>'ndcg')::numeric), 4) AS ndcg_at_10, round(avg((metrics->>'coverage')::numeric), 4) AS coverage,
      round(avg(seconds)::numeric, 3) AS train_s
    FROM ml_results GROUP BY setting ORDER BY avg((metrics->>'ndcg')::numeric) DESC"
fi

percentiles() {  # pgbench per-transaction logs -> p50/p99 in ms
  cat "$WORK"/log.* | awk '{print $3 / 1000}' | sort -g |
    awk '{a[NR]=$1} END{printf "p50 %.3f ms, p99 %.3f ms (%d calls)", a[int(NR*0.5)], a[int(NR*0.99)], NR}'
  rm -f "$WORK"/log.*
}
pg_bench() {  # script file, clients, seconds
  (cd "$WORK" && "$PG_BINDIR/pgbench" -n -M prepared -c "$2" -j "$2" -T "$3" -l --log-prefix="$WORK/log" -f "$1" 2>&1 |
    grep -E "^tps" | sed 's/ (without initial connection time)//')
}

for spec in "${SIZES[@]}"; do
  IFS=: read -r ROWS USERS ITEMS <<<"$spec"
  echo
  echo "== $ROWS interactions, up to $USERS users x $ITEMS items"
  q "SET client_min_messages = warning; DROP TABLE IF EXISTS interactions, m, user_ids, item_ids"
  GEN_MS=$(q "SELECT setseed(0.42); SELECT bench_ms(\$g\$CREATE TABLE interactions AS
     SELECT floor($USERS * power(random(), 1.6))::int AS user_id,
            floor($ITEMS * power(random(), 2.2))::int AS item_id,
            (1 + floor(3 * random()))::float8 AS weight
     FROM generate_series(1, $ROWS)\$g\$)" | tail -1)
  q "VACUUM ANALYZE interactions"
  q "SELECT format('data: %s rows, %s users, %s items, %s distinct pairs (generated in %s s)', count(*), count(DISTINCT user_id),
            count(DISTINCT item_id), (SELECT count(*) FROM (SELECT DISTINCT user_id, item_id FROM interactions) d), round($GEN_MS / 1000))
     FROM interactions"

  # Training in one session: the backend's peak memory before (after a full scan of the
  # table, so the scan's own buffers are counted already) and after.
  psql -X -q -t -A -v ON_ERROR_STOP=1 <<SQL
SET recsys.threads = $THREADS;
SELECT sum(weight) IS NOT NULL AS warm FROM interactions \gset
SELECT status_kb('VmHWM') AS hwm0, status_kb('VmRSS') AS rss0 \gset
SELECT bench_ms(\$t\$CREATE TABLE m AS SELECT recsys.train_item_knn(user_id, item_id, weight, '$OPTS'::jsonb) AS model FROM interactions\$t\$) AS train_ms \gset
SELECT status_kb('VmHWM') AS hwm1 \gset
SELECT format('train_item_knn: %s s for the whole statement (ingest + training + storing); %s s in the final function',
              round(:train_ms / 1000.0, 2), round((recsys.model_info(model)->>'training_seconds')::numeric, 2)) FROM m;
SELECT format('backend memory: VmHWM %s MB before, %s MB after training: +%s MB peak for ingest + training (VmRSS before %s MB)',
              round(:hwm0 / 1024.0), round(:hwm1 / 1024.0), round((:hwm1 - :hwm0) / 1024.0), round(:rss0 / 1024.0));
SELECT format('model: %s users, %s items, %s pairs, %s neighbour pairs (%s per item), %s MB',
              i->'users', i->'items', i->'interactions', i->'parameters'->'neighbour_pairs',
              round((i->'parameters'->>'neighbour_pairs')::numeric / (i->>'items')::numeric, 1),
              round((i->>'bytes')::numeric / 1048576, 1))
FROM (SELECT recsys.model_info(model) AS i FROM m) s;
SQL

  q "CREATE TABLE user_ids AS SELECT row_number() OVER (ORDER BY user_id) AS n, user_id FROM (SELECT DISTINCT user_id FROM interactions) d;
     ALTER TABLE user_ids ADD PRIMARY KEY (n);
     CREATE TABLE item_ids AS SELECT row_number() OVER (ORDER BY item_id) AS n, item_id FROM (SELECT DISTINCT item_id FROM interactions) d;
     ALTER TABLE item_ids ADD PRIMARY KEY (n); ANALYZE user_ids; ANALYZE item_ids"
  NU=$(q "SELECT count(*) FROM user_ids")
  NI=$(q "SELECT count(*) FROM item_ids")
  ALL_MS=$(q "SET recsys.threads = $THREADS; SELECT bench_ms('SELECT count(*) FROM m, recsys.recommend_all(m.model, 10, NULL::int) r')" | tail -1)
  printf 'recommend_all k=10 for all %s users: %.2f s (%.3f ms per user)\n' "$NU" "$(awk "BEGIN{print $ALL_MS / 1000}")" \
    "$(awk "BEGIN{print $ALL_MS / $NU}")"
  FIRST=$(q "SELECT bench_ms('SELECT * FROM m, recsys.recommend(m.model, (SELECT user_id FROM user_ids WHERE n = 1), 10)')" | tail -1)
  printf 'recommend, first call of a session (detoasts the model into the cache): %.1f ms\n' "$FIRST"

  cat >"$WORK/rec.sql" <<SQL
\set n random(1, $NU)
SELECT r.item, r.score FROM m, user_ids u, recsys.recommend(m.model, u.user_id, 10) r WHERE u.n = :n;
SQL
  cat >"$WORK/sim.sql" <<SQL
\set n random(1, $NI)
SELECT s.item, s.score FROM m, item_ids i, recsys.similar_items(m.model, i.item_id, 10) s WHERE i.n = :n;
SQL
  cat >"$WORK/base.sql" <<SQL
\set n random(1, $NI)
SELECT i.item_id FROM item_ids i WHERE i.n = :n;
SQL
  pg_bench "$WORK/base.sql" 1 2 >/dev/null
  rm -f "$WORK"/log.*
  echo "baseline, the ID lookup alone, 1 client: $(pg_bench "$WORK/base.sql" 1 "$PGBENCH_SECONDS"); $(percentiles)"
  echo "recommend k=10, cached model, 1 client: $(pg_bench "$WORK/rec.sql" 1 "$PGBENCH_SECONDS"); $(percentiles)"
  echo "similar_items k=10, cached model, 1 client: $(pg_bench "$WORK/sim.sql" 1 "$PGBENCH_SECONDS"); $(percentiles)"
done

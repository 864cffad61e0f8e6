#!/usr/bin/env bash
# Explicit-rating benchmark through SQL.   Usage: bash test/bench_ratings.sh [ml-100k dir] [mf options json]
#  1. MovieLens-100K official folds u1..u5 (base/test): mean test RMSE/MAE of train_mf
#     (and of train_baseline), training seconds; ranking metrics at 10 of train_als and of
#     the popularity baseline (ratings >= 4 as positives, training on positives).
#  2. 1,000,000 generated ratings (50k users x 10k items, rank-8 structure + biases +
#     noise sigma 0.5): train_mf 64 factors x 20 epochs, seconds and held-out RMSE.
# Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/.."
ML="${1:-../shared/data/ml-100k}"
MF_OPTS="${2:-{\}}"
ML="$(cd "$ML" && pwd)"
bash test/install_deps.sh
make -j"$(nproc)" >/dev/null && make install >/dev/null
source test/pg_cluster.sh
start_cluster "max_parallel_workers_per_gather = 0" "work_mem = '256MB'"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }
qs() { q "$1" >/dev/null; }
q "CREATE EXTENSION recsys"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "train_mf options: $MF_OPTS"
for f in 1 2 3 4 5; do
  q "CREATE TABLE base$f (u int, i int, r float8, ts bigint); CREATE TABLE test$f (u int, i int, r float8, ts bigint)"
  psql -X -q -c "\\copy base$f FROM '$ML/u$f.base'" -c "\\copy test$f FROM '$ML/u$f.test'"
done
q "CREATE TABLE results (fold int, algo text, metrics jsonb, seconds float8)"
q "CREATE FUNCTION timed(sql text, OUT m recsys.model, OUT secs float8) LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp(); BEGIN EXECUTE sql INTO m; secs := extract(epoch FROM clock_timestamp() - t0); END \$\$"
for f in 1 2 3 4 5; do
  q "INSERT INTO results SELECT $f, 'mf', (SELECT recsys.rating_metrics(t.m, x.u, x.i, x.r) FROM test$f x), t.secs
     FROM timed(\$q\$SELECT recsys.train_mf(u, i, r, '$MF_OPTS') FROM base$f\$q\$) t"
  q "INSERT INTO results SELECT $f, 'baseline', (SELECT recsys.rating_metrics(t.m, x.u, x.i, x.r) FROM test$f x), t.secs
     FROM timed(\$q\$SELECT recsys.train_baseline(u, i, r) FROM base$f\$q\$) t"
  q "INSERT INTO results SELECT $f, 'als', (SELECT recsys.ranking_metrics(t.m, x.u, x.i) FROM test$f x WHERE x.r >= 4), t.secs
     FROM timed(\$q\$SELECT recsys.train_als(u, i, '{\"factors\": 32, \"regularization\": 0.05, \"alpha\": 2, \"iterations\": 15}'::jsonb) FROM base$f WHERE r >= 4\$q\$) t"
  q "INSERT INTO results SELECT $f, 'popularity', (SELECT recsys.ranking_metrics(t.m, x.u, x.i) FROM test$f x WHERE x.r >= 4), t.secs
     FROM timed(\$q\$SELECT recsys.train_popularity(u, i) FROM base$f WHERE r >= 4\$q\$) t"
done
echo "== MovieLens-100K, official folds u1..u5 (mean over folds, +- sample std)"
psql -X -q -P footer=off -c "SELECT algo,
    round(avg((metrics->>'rmse')::numeric), 4) AS rmse, round(stddev((metrics->>'rmse')::numeric), 4) AS rmse_sd,
    round(avg((metrics->>'mae')::numeric), 4) AS mae,
    round(avg((metrics->>'precision')::numeric), 4) AS p_at_10, round(avg((metrics->>'recall')::numeric), 4) AS r_at_10,
    round(avg((metrics->>'map')::numeric), 4) AS map_at_10, round(avg((metrics->>'ndcg')::numeric), 4) AS ndcg_at_10,
    round(avg(seconds)::numeric, 3) AS train_s
  FROM results GROUP BY algo ORDER BY algo"
psql -X -q -P footer=off -c "SELECT fold, round((metrics->>'rmse')::numeric, 4) AS mf_rmse FROM results WHERE algo = 'mf' ORDER BY fold"

echo "== 1,000,000 generated ratings, train_mf 64 factors x 20 epochs"
qs "SELECT setseed(0.7); CREATE TABLE uf AS SELECT u, array_agg(random() - 0.5) AS v, (random() - 0.5) AS b FROM generate_series(0, 49999) u, generate_series(1, 8) GROUP BY u"
qs "SELECT setseed(0.71); CREATE TABLE itf AS SELECT i, array_agg(random() - 0.5) AS v, (random() - 0.5) AS b FROM generate_series(0, 9999) i, generate_series(1, 8) GROUP BY i"
qs "SELECT setseed(0.72); CREATE TABLE gen AS
   SELECT p.u, p.i, 3.5 + uf.b + itf.b + 4 * (SELECT sum(a * b) FROM unnest(uf.v, itf.v) AS t(a, b))
          + 0.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS r
   FROM (SELECT DISTINCT floor(50000 * random())::int AS u, floor(10000 * random())::int AS i FROM generate_series(1, 1000000)) p
   JOIN uf USING (u) JOIN itf USING (i)"
q "CREATE TABLE gen_train AS SELECT * FROM gen WHERE NOT recsys.random_split(1, 0.1, u, i)"
q "CREATE TABLE gen_test AS SELECT * FROM gen WHERE recsys.random_split(1, 0.1, u, i)"
q "SELECT format('%s training ratings, %s test ratings', (SELECT count(*) FROM gen_train), (SELECT count(*) FROM gen_test))"
# Also writes the training and test sets as "user<TAB>item<TAB>rating" files (for LibMF,
# Surprise, ... side by side on the same data): $BENCH_OUT/gen_train.tsv, gen_test.tsv.
OUT="${BENCH_OUT:-/tmp/recsys-bench-ratings}"
mkdir -p "$OUT" && chmod 777 "$OUT"
psql -X -q -c "\\copy gen_train TO '$OUT/gen_train.tsv'" -c "\\copy gen_test TO '$OUT/gen_test.tsv'"
q "SELECT format('train_baseline: test RMSE %s (what the biases alone explain)',
          round(((SELECT recsys.rating_metrics(m, t.u, t.i, t.r) FROM (SELECT recsys.train_baseline(u, i, r) AS m FROM gen_train) g, gen_test t)->>'rmse')::numeric, 4))"
for opts in '{"factors": 64, "epochs": 20}' '{"factors": 64, "epochs": 20, "learning_rate": 0.1, "lr_decay": 0.05}'; do
  q "SET client_min_messages = warning; DROP TABLE IF EXISTS gen_m" >/dev/null
  q "CREATE TABLE gen_m AS SELECT * FROM timed(\$q\$SELECT recsys.train_mf(u, i, r, '$opts') FROM gen_train\$q\$)"
  q "SELECT format('train_mf %s: %s s for the whole statement (%s s in the final function); test RMSE %s (noise sigma 0.5)',
          '$opts', round(secs::numeric, 2), round((recsys.model_info(m)->>'training_seconds')::numeric, 2),
          round(((SELECT recsys.rating_metrics(g.m, t.u, t.i, t.r) FROM gen_m g, gen_test t)->>'rmse')::numeric, 4))
     FROM gen_m"
done

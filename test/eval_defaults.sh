#!/usr/bin/env bash
# The evidence for the defaults of train_als, train_item_knn and train_mf (not part of
# CI: it needs the shared MovieLens data). Every setting of a grid, and each algorithm
# with no options at all ('default'), is trained and scored on several data sets:
#   ranking (train_als, train_item_knn; NDCG@10 and recall@20 of recsys.ranking_metrics,
#   training items excluded, averaged over the folds):
#     ml100k_pos4  MovieLens-100K, official folds u1..u5, ratings >= 4 are the positives
#     ml100k_all   MovieLens-100K, official folds u1..u5, every rating is an interaction
#     ml100k_ua    MovieLens-100K, folds ua/ub (10 ratings per user held out), ratings >= 4
#     gen1m        the benchmark generator (test/bench/bench_tool.cpp gen 1000000 42):
#                  6,925 users, 5,980 items, a random 20 % of the rows held out
#     gen300k      the same generator at 300,000 rows (seed 7): 2,077 users, 3,275 items
#   rating (train_mf; RMSE of recsys.rating_metrics, averaged over the folds):
#     ml100k       u1..u5 ratings;  ml100k_ua  ua/ub;  gen1m, gen300k  as above (ratings
#                  0.5..5 drawn independently of user and item: the best model is the bias)
# Weights are 1 for the ranking sets. The grids are scored on the test folds (that is
# what "within x % of the best of the grid" means); the defaults are chosen as the
# setting whose worst ratio to the per-set best is highest, and must be within 3 % of the
# best on every set.
#   bash test/eval_defaults.sh [path/to/ml-100k] [als,item_knn,mf,popularity]
# (ALS_FACTORS, ALS_REGS, ALS_ALPHAS, ALS_FINE_REGS, ALS_FINE_ALPHAS, MF_FACTORS, MF_REGS override
# the grids below.)
# EVAL_CSV=file also writes the summary (every setting on every set) as CSV.
# Run with the PostgreSQL to test first in PATH (its pg_config finds the install), after
# make (the generator links the core objects).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$ROOT/../shared/data/ml-100k}
[ -f "$DATA/u1.base" ] || [ -n "${1:-}" ] || DATA=$ROOT/../../shared/data/ml-100k  # from a worktree
[ -f "$DATA/u1.base" ] || { echo "no $DATA/u1.base" >&2; exit 1; }
ALGOS=${2:-als,item_knn,mf,popularity}
# The grids (comma-separated values; every combination is trained).
# ALS: a coarse grid and a finer one around the optimum of the real data sets.
ALS_FACTORS=${ALS_FACTORS:-64, 128}
ALS_REGS=${ALS_REGS:-1, 5, 10, 20, 50, 100}
ALS_ALPHAS=${ALS_ALPHAS:-1, 2, 5, 10}
ALS_FINE_REGS=${ALS_FINE_REGS:-15, 20, 30, 40}
ALS_FINE_ALPHAS=${ALS_FINE_ALPHAS:-0.5, 1, 2}
MF_FACTORS=${MF_FACTORS:-32, 64, 128}
MF_REGS=${MF_REGS:-0.3, 0.6, 0.9, 1.0, 1.1, 1.2, 1.5}
cd "$ROOT"
ls src/core/*.o >/dev/null 2>&1 || { echo "run make first (the generator links src/core/*.o)" >&2; exit 1; }
source test/pg_cluster.sh
start_cluster "jit = off" >/dev/null
trap stop_cluster EXIT
W=$RECSYS_CLUSTER_DIR
g++ -std=c++17 -O2 -DEIGEN_DONT_PARALLELIZE -DEIGEN_NO_DEBUG -isystem /usr/include/eigen3 -Isrc/core \
  test/bench/bench_tool.cpp src/core/*.o -pthread -o "$W/bench_tool"
"$W/bench_tool" gen 1000000 42 >"$W/gen1m.tsv" 2>/dev/null
"$W/bench_tool" gen 300000 7 >"$W/gen300k.tsv" 2>/dev/null
for f in 1 2 3 4 5 a b; do
  cp "$DATA/u$f.base" "$DATA/u$f.test" "$W/"
done
chmod 644 "$W"/u*.base "$W"/u*.test "$W"/gen*.tsv
has() { [[ ",$ALGOS," == *",$1,"* ]]; }
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION recsys;
SET recsys.threads = 2;
SET work_mem = '256MB';
-- dat(ds, fold, part, u, i, r): part 'base' trains, 'test' scores.
CREATE TABLE dat(ds text, fold int, part text, u int, i int, r float8);
CREATE TEMP TABLE raw(u int, i int, r int, ts bigint);
$(for f in 1 2 3 4 5 a b; do
  for p in base test; do
    echo "TRUNCATE raw; COPY raw FROM '$W/u$f.$p';"
    if [[ $f == [ab] ]]; then
      echo "INSERT INTO dat SELECT 'ml100k_ua', ascii('$f') - 96, '$p', u, i, r FROM raw;"
    else
      echo "INSERT INTO dat SELECT 'ml100k', $f, '$p', u, i, r FROM raw;"
    fi
  done
done)
CREATE TEMP TABLE graw(u int, i int, r float8);
$(for g in gen1m gen300k; do
  echo "TRUNCATE graw; COPY graw FROM '$W/$g.tsv';"
  echo "INSERT INTO dat SELECT '$g', 1, CASE WHEN recsys.random_split(42, 0.2, u, i) THEN 'test' ELSE 'base' END, u, i, r FROM graw;"
done)
ANALYZE dat;
-- The ranking views: (view, source set, minimum rating).
CREATE TABLE views(view text, ds text, min_r float8);
INSERT INTO views VALUES ('ml100k_pos4', 'ml100k', 4), ('ml100k_all', 'ml100k', 0), ('ml100k_ua', 'ml100k_ua', 4),
  ('gen1m', 'gen1m', 0), ('gen300k', 'gen300k', 0);
CREATE TABLE configs(id serial, algo text, label text, o jsonb);
$(has popularity && echo "INSERT INTO configs(algo, label, o) VALUES ('popularity', 'default', NULL);")
$(has als && cat <<G
INSERT INTO configs(algo, label, o) VALUES ('als', 'default', NULL);
INSERT INTO configs(algo, label, o)
  SELECT 'als', format('factors=%s reg=%s alpha=%s', f, r, a),
         jsonb_build_object('factors', f, 'regularization', r, 'alpha', a)
  FROM unnest(ARRAY[$ALS_FACTORS]) f,
       (SELECT r, a FROM unnest(ARRAY[$ALS_REGS]::float8[]) r, unnest(ARRAY[$ALS_ALPHAS]::float8[]) a
        UNION SELECT r, a FROM unnest(ARRAY[$ALS_FINE_REGS]::float8[]) r, unnest(ARRAY[$ALS_FINE_ALPHAS]::float8[]) a) g
  ORDER BY f, r, a;
G
)
$(has item_knn && cat <<'G'
INSERT INTO configs(algo, label, o) VALUES ('item_knn', 'default', NULL);
INSERT INTO configs(algo, label, o)
  SELECT 'item_knn', format('%s neighbours=%s shrinkage=%s', s, n, sh),
         jsonb_build_object('similarity', s, 'neighbours', n, 'shrinkage', sh)
  FROM unnest(ARRAY['cosine', 'bm25', 'tfidf']) s, unnest(ARRAY[50, 100, 200, 400]) n, unnest(ARRAY[0, 10]) sh;
G
)
$(has mf && cat <<G
INSERT INTO configs(algo, label, o) VALUES ('mf', 'default', NULL);
INSERT INTO configs(algo, label, o)
  SELECT 'mf', format('factors=%s reg_factors=%s reg_exponent=%s', f, r, e),
         jsonb_build_object('factors', f, 'reg_factors', r, 'reg_exponent', e)
  FROM unnest(ARRAY[$MF_FACTORS]) f, unnest(ARRAY[$MF_REGS]) r, unnest(ARRAY[0.5]) e;
G
)
\timing on
-- Ranking models: one per (setting, view, fold).
CREATE TABLE rmodels AS
  SELECT c.id, v.view, b.fold,
         CASE c.algo
           WHEN 'als' THEN coalesce(recsys.train_als(b.u, b.i, 1.0::float8, coalesce(c.o, '{}')) FILTER (WHERE c.algo = 'als' AND c.o IS NOT NULL),
                                    recsys.train_als(b.u, b.i) FILTER (WHERE c.algo = 'als' AND c.o IS NULL))
           WHEN 'popularity' THEN recsys.train_popularity(b.u, b.i) FILTER (WHERE c.algo = 'popularity')
           WHEN 'item_knn' THEN coalesce(recsys.train_item_knn(b.u, b.i, 1.0::float8, coalesce(c.o, '{}')) FILTER (WHERE c.algo = 'item_knn' AND c.o IS NOT NULL),
                                         recsys.train_item_knn(b.u, b.i) FILTER (WHERE c.algo = 'item_knn' AND c.o IS NULL))
         END AS model
  FROM configs c, views v, dat b
  WHERE c.algo IN ('als', 'item_knn', 'popularity') AND b.ds = v.ds AND b.part = 'base' AND b.r >= v.min_r
  GROUP BY c.id, c.algo, v.view, b.fold;
CREATE TABLE rscores AS
  SELECT m.id, m.view, m.fold, (s.k10->>'ndcg')::float8 AS score, (s.k20->>'recall')::float8 AS score2
  FROM rmodels m JOIN views v USING (view),
       LATERAL (SELECT recsys.ranking_metrics(m.model, t.u, t.i, '{"k": 10}') AS k10,
                       recsys.ranking_metrics(m.model, t.u, t.i, '{"k": 20}') AS k20
                FROM dat t WHERE t.ds = v.ds AND t.fold = m.fold AND t.part = 'test' AND t.r >= v.min_r) s;
-- Rating models (train_mf): lower RMSE is better. (Models are stored first: a model
-- computed inside the scoring query would be copied into every row of its sort.)
CREATE TABLE mmodels AS
  SELECT c.id, b.ds, b.fold,
         coalesce(recsys.train_mf(b.u, b.i, b.r, coalesce(c.o, '{}')) FILTER (WHERE c.o IS NOT NULL),
                  recsys.train_mf(b.u, b.i, b.r) FILTER (WHERE c.o IS NULL)) AS model
  FROM configs c, dat b WHERE c.algo = 'mf' AND b.part = 'base' GROUP BY c.id, b.ds, b.fold;
CREATE TABLE mscores AS
  SELECT x.id, x.ds AS view, x.fold, (s.m->>'rmse')::float8 AS score, (s.m->>'mae')::float8 AS score2
  FROM mmodels x,
       LATERAL (SELECT recsys.rating_metrics(x.model, t.u, t.i, t.r) AS m
                FROM dat t WHERE t.ds = x.ds AND t.fold = x.fold AND t.part = 'test') s;
\timing off
-- quality: ratio to the best of the grid on that view, oriented so 1 is the best
-- (NDCG / best NDCG; best RMSE / RMSE).
CREATE TABLE summary AS
  SELECT s.view, c.algo, c.label, c.o, avg(score) AS score, avg(score2) AS score2
  FROM (SELECT * FROM rscores UNION ALL SELECT * FROM mscores) s JOIN configs c USING (id) GROUP BY s.view, c.algo, c.label, c.o;
ALTER TABLE summary ADD COLUMN quality float8;
UPDATE summary s SET quality = CASE WHEN s.algo = 'mf' THEN b.best / s.score ELSE s.score / b.best END
  FROM (SELECT view, algo, CASE WHEN algo = 'mf' THEN min(score) ELSE max(score) END AS best FROM summary GROUP BY view, algo) b
  WHERE b.view = s.view AND b.algo = s.algo;
\echo == every setting: worst and mean quality over the data sets (1 = the best of the grid there), best first
SELECT algo, label, round(min(quality)::numeric, 4) AS worst, round(avg(quality)::numeric, 4) AS mean,
       string_agg(format('%s %s', view, round(score::numeric, 4)), ', ' ORDER BY view) AS scores
FROM summary GROUP BY algo, label ORDER BY algo, min(quality) DESC, avg(quality) DESC;
\echo == the default of each algorithm against the best setting of its grid on each data set
\echo    (score: NDCG@10 for als / item_knn, RMSE for mf; score2: recall@20, MAE)
SELECT d.algo, d.view, round(d.score::numeric, 4) AS default_score, round(d.score2::numeric, 4) AS default_score2,
       b.label AS best_setting, round(b.score::numeric, 4) AS best_score,
       round(100 * (d.quality - 1)::numeric, 1) AS default_vs_best_pct
FROM summary d
JOIN LATERAL (SELECT * FROM summary x WHERE x.view = d.view AND x.algo = d.algo ORDER BY quality DESC LIMIT 1) b ON true
WHERE d.label = 'default' ORDER BY d.algo, d.view;
SQL
[ -z "${EVAL_CSV:-}" ] || psql -X -q -v ON_ERROR_STOP=1 -c "\\copy summary TO '$EVAL_CSV' WITH (FORMAT csv, HEADER)"

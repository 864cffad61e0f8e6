#!/usr/bin/env bash
# EASE against ALS, item-kNN and popularity on MovieLens-100K, and the evidence for the
# train_ease / train_als / train_item_knn defaults (not part of CI: it needs the shared
# data set). The official folds u1..u5; two views of the data:
#   pos4 : ratings >= 4 are the positives (train and test), the issue's protocol
#   all  : every rating is an interaction (weight 1)
# Training items are excluded from the lists (exclude_seen); metrics are
# recsys.ranking_metrics (NDCG@10 from k = 10, recall@20 from k = 20), averaged over the
# five folds. Every model of a grid is trained on each fold: the best grid setting is
# chosen on the test folds themselves, which flatters the tuned models (ALS above all);
# the defaults are not tuned at all.
#   bash test/eval_ease.sh [path/to/ml-100k]
# Run with the PostgreSQL to test first in PATH (its pg_config finds the install).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$ROOT/../shared/data/ml-100k}
[ -f "$DATA/u1.base" ] || [ -n "${1:-}" ] || DATA=$ROOT/../../shared/data/ml-100k  # from a worktree
[ -f "$DATA/u1.base" ] || { echo "no $DATA/u1.base" >&2; exit 1; }
cd "$ROOT"
source test/pg_cluster.sh
start_cluster >/dev/null
trap stop_cluster EXIT
for f in 1 2 3 4 5; do
  cp "$DATA/u$f.base" "$DATA/u$f.test" "$RECSYS_CLUSTER_DIR/"
done
chmod 644 "$RECSYS_CLUSTER_DIR"/u*.base "$RECSYS_CLUSTER_DIR"/u*.test
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION recsys;
SET recsys.threads = 2;
CREATE TABLE base(fold int, u int, i int, r int, ts bigint);
CREATE TABLE test(fold int, u int, i int, r int, ts bigint);
CREATE TEMP TABLE raw(u int, i int, r int, ts bigint);
$(for f in 1 2 3 4 5; do echo "TRUNCATE raw; COPY raw FROM '$RECSYS_CLUSTER_DIR/u$f.base'; INSERT INTO base SELECT $f, * FROM raw;"; echo "TRUNCATE raw; COPY raw FROM '$RECSYS_CLUSTER_DIR/u$f.test'; INSERT INTO test SELECT $f, * FROM raw;"; done)
CREATE TABLE views(view text, min_rating int);
INSERT INTO views VALUES ('pos4', 4), ('all', 1);
-- The grids (label, algorithm, options); 'default' rows pass no options at all.
CREATE TABLE configs(id serial, algo text, label text, o jsonb);
INSERT INTO configs(algo, label, o) VALUES ('popularity', 'default', NULL), ('ease', 'default', NULL),
  ('item_knn', 'default', NULL), ('als', 'default', NULL);
INSERT INTO configs(algo, label, o)
  SELECT 'ease', format('lambda=%s', l), jsonb_build_object('lambda', l) FROM unnest(ARRAY[50, 100, 200, 300, 500, 800, 1200]) l;
INSERT INTO configs(algo, label, o)
  SELECT 'ease', format('neighbours=%s', n), jsonb_build_object('neighbours', n) FROM unnest(ARRAY[50, 100, 200, 1000, 100000]) n;
INSERT INTO configs(algo, label, o)
  SELECT 'item_knn', format('%s neighbours=%s', s, n), jsonb_build_object('similarity', s, 'neighbours', n)
  FROM unnest(ARRAY['cosine', 'bm25', 'tfidf']) s, unnest(ARRAY[20, 50, 200]) n;
INSERT INTO configs(algo, label, o)
  SELECT 'als', format('factors=%s reg=%s alpha=%s', f, r, a),
         jsonb_build_object('factors', f, 'regularization', r, 'alpha', a, 'iterations', 15)
  FROM unnest(ARRAY[32, 64, 128]) f, unnest(ARRAY[0.01, 1, 10, 50]) r, unnest(ARRAY[1, 5, 20]) a;
\timing on
CREATE TABLE models AS
  SELECT c.id, v.view, b.fold,
         CASE c.algo
           WHEN 'popularity' THEN recsys.train_popularity(b.u, b.i) FILTER (WHERE c.algo = 'popularity')
           WHEN 'ease' THEN coalesce(recsys.train_ease(b.u, b.i, 1.0::float8, coalesce(c.o, '{}')) FILTER (WHERE c.algo = 'ease' AND c.o IS NOT NULL),
                                     recsys.train_ease(b.u, b.i) FILTER (WHERE c.algo = 'ease' AND c.o IS NULL))
           WHEN 'item_knn' THEN coalesce(recsys.train_item_knn(b.u, b.i, 1.0::float8, coalesce(c.o, '{}')) FILTER (WHERE c.algo = 'item_knn' AND c.o IS NOT NULL),
                                         recsys.train_item_knn(b.u, b.i) FILTER (WHERE c.algo = 'item_knn' AND c.o IS NULL))
           WHEN 'als' THEN coalesce(recsys.train_als(b.u, b.i, 1.0::float8, coalesce(c.o, '{}')) FILTER (WHERE c.algo = 'als' AND c.o IS NOT NULL),
                                    recsys.train_als(b.u, b.i) FILTER (WHERE c.algo = 'als' AND c.o IS NULL))
         END AS model
  FROM configs c, views v, base b WHERE b.r >= v.min_rating
  GROUP BY c.id, c.algo, v.view, b.fold;
CREATE TABLE scores AS
  SELECT m.id, m.view, m.fold,
         (recsys.ranking_metrics(m.model, t.u, t.i, '{"k": 10}')->>'ndcg')::float8 AS ndcg10,
         (recsys.ranking_metrics(m.model, t.u, t.i, '{"k": 20}')->>'recall')::float8 AS recall20
  FROM models m JOIN views v USING (view) JOIN test t ON t.fold = m.fold AND t.r >= v.min_rating
  GROUP BY m.id, m.view, m.fold;
\timing off
CREATE TABLE summary AS
  SELECT s.view, c.algo, c.label, round(avg(ndcg10)::numeric, 4) AS ndcg_at_10, round(avg(recall20)::numeric, 4) AS recall_at_20
  FROM scores s JOIN configs c USING (id) GROUP BY s.view, c.algo, c.label;
\echo == every setting, best first
SELECT * FROM summary ORDER BY view, algo, ndcg_at_10 DESC;
\echo == the default of each algorithm against the best setting of its grid (on the test folds)
SELECT d.view, d.algo, d.ndcg_at_10 AS default_ndcg, b.label AS best_setting, b.ndcg_at_10 AS best_ndcg,
       round(100 * (d.ndcg_at_10 / b.ndcg_at_10 - 1), 1) AS default_vs_best_pct
FROM summary d
JOIN LATERAL (SELECT * FROM summary x WHERE x.view = d.view AND x.algo = d.algo ORDER BY ndcg_at_10 DESC LIMIT 1) b ON true
WHERE d.label = 'default' ORDER BY d.view, d.algo;
\echo == EASE with defaults against the best ALS setting
SELECT e.view, e.ndcg_at_10 AS ease_default_ndcg, a.ndcg_at_10 AS als_best_ndcg,
       round(100 * (e.ndcg_at_10 / a.ndcg_at_10 - 1), 1) AS ndcg_gain_pct,
       e.recall_at_20 AS ease_default_recall20, a.recall_at_20 AS als_best_recall20,
       round(100 * (e.recall_at_20 / a.recall_at_20 - 1), 1) AS recall_gain_pct
FROM summary e
JOIN LATERAL (SELECT * FROM summary x WHERE x.view = e.view AND x.algo = 'als' ORDER BY ndcg_at_10 DESC LIMIT 1) a ON true
WHERE e.algo = 'ease' AND e.label = 'default' ORDER BY e.view;
SQL

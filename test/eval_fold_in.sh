#!/usr/bin/env bash
# Strong-generalization check of fold-in on MovieLens-100K (not part of CI: it needs the
# shared data set). 10% of the users (user_id % 10 = 0) are held out of training
# entirely; each is folded in from 80% of their history (split_hash) and scored on the
# other 20%. Yardsticks: the same users trained in the model from the same 80%, and
# popularity. Interactions are implicit (every rating counts, weight 1).
#   bash test/eval_fold_in.sh [path/to/ml-100k] [factors] [iterations]
# Run with the private PostgreSQL first in PATH (pg_config of the install to test).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${1:-$ROOT/../shared/data/ml-100k}
[ -f "$DATA/u.data" ] || [ -n "${1:-}" ] || DATA=$ROOT/../../shared/data/ml-100k  # from a worktree
FACTORS=${2:-64}
ITERS=${3:-15}
[ -f "$DATA/u.data" ] || { echo "no $DATA/u.data" >&2; exit 1; }
cd "$ROOT"
source test/pg_cluster.sh
start_cluster >/dev/null
trap stop_cluster EXIT
cp "$DATA/u.data" "$RECSYS_CLUSTER_DIR/u.data"
chmod 644 "$RECSYS_CLUSTER_DIR/u.data"
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION recsys;
SET recsys.threads = 2;
CREATE TABLE ratings(u int, i int, r int, ts bigint);
COPY ratings FROM '$RECSYS_CLUSTER_DIR/u.data';
CREATE TABLE heldout_users AS SELECT DISTINCT u FROM ratings WHERE u % 10 = 0;
CREATE TABLE rest AS SELECT * FROM ratings WHERE u % 10 <> 0;
CREATE TABLE h_train AS SELECT * FROM ratings WHERE u % 10 = 0 AND recsys.split_hash(7, u, i) >= 0.2;
CREATE TABLE h_test AS SELECT * FROM ratings WHERE u % 10 = 0 AND recsys.split_hash(7, u, i) < 0.2;
CREATE TABLE opts AS SELECT jsonb_build_object('factors', $FACTORS, 'iterations', $ITERS, 'regularization', 0.05, 'alpha', 2, 'seed', 1) AS o;
\timing on
CREATE TABLE m_fold AS SELECT recsys.train_als(u, i, 1.0::float8, (SELECT o FROM opts)) AS model FROM rest;
CREATE TABLE m_trained AS SELECT recsys.train_als(u, i, 1.0::float8, (SELECT o FROM opts)) AS model
  FROM (SELECT u, i FROM rest UNION ALL SELECT u, i FROM h_train) t;
CREATE TABLE m_pop AS SELECT recsys.train_popularity(u, i) AS model FROM rest;
CREATE TABLE hist AS SELECT u, array_agg(i ORDER BY i) AS items FROM h_train GROUP BY u;
CREATE TABLE recs AS
  SELECT 'fold-in (ALS, users not in the model)' AS method, h.u, r.item_id AS i, row_number() OVER (PARTITION BY h.u ORDER BY r.score DESC, r.item_id) AS pos
  FROM m_fold, hist h, recsys.recommend_for_items(m_fold.model, h.items, 20) r
  UNION ALL
  SELECT 'trained (ALS, same users in the model)', h.u, r.item_id, row_number() OVER (PARTITION BY h.u ORDER BY r.score DESC, r.item_id)
  FROM m_trained, hist h, recsys.recommend(m_trained.model, h.u, 20) r
  UNION ALL
  SELECT 'popularity (minus history)', h.u, r.item_id, row_number() OVER (PARTITION BY h.u ORDER BY r.score DESC, r.item_id)
  FROM m_pop, hist h, recsys.recommend_for_items(m_pop.model, h.items, 20) r;
\timing off
-- recall@20 = hits / |test|; NDCG@20 with binary relevance.
WITH per_user AS (
  SELECT m.method, t.u, t.n,
         count(x.i) FILTER (WHERE x.hit) AS hits,
         coalesce(sum(CASE WHEN x.hit THEN 1 / log(2, x.pos + 1.0) END), 0) AS dcg,
         (SELECT sum(1 / log(2, p + 1.0)) FROM generate_series(1, least(t.n, 20)) p) AS idcg
  FROM (SELECT u, count(*) AS n FROM h_test GROUP BY u) t
  CROSS JOIN (SELECT DISTINCT method FROM recs) m
  LEFT JOIN LATERAL (SELECT r.i, r.pos, EXISTS (SELECT 1 FROM h_test z WHERE z.u = r.u AND z.i = r.i) AS hit
                     FROM recs r WHERE r.method = m.method AND r.u = t.u) x ON true
  WHERE t.u IN (SELECT u FROM hist)
  GROUP BY m.method, t.u, t.n)
SELECT method, count(*) AS users, round(avg(hits::numeric / n), 4) AS recall_at_20, round(avg(dcg / idcg)::numeric, 4) AS ndcg_at_20
FROM per_user GROUP BY method ORDER BY method;
SQL

#!/usr/bin/env bash
# Item and user cold start on MovieLens-100K. Items:: 20% of the items (item_id % 5 = 0) held out with all
# their ratings; ALS on the rest; train_hybrid_items from genres and release year of every
# item; for each test user (ratings >= 4 of held-out items), rank only the held-out items.
# Users: 20% held out, scored from their attributes only, against popularity.
# Warm: the official u1..u5 splits (ratings >= 4 as positives, training items excluded):
# train_als tuned on a grid (the setting with the best mean test NDCG@10, which favours
# ALS) against train_hybrid_items built on that same ALS model from every item's metadata.
# Usage (PGHOST/PGPORT/PGUSER of a cluster with recsys installed):
#   bash test/eval_hybrid.sh /path/to/ml-100k
set -euo pipefail
DATA=${1:?usage: eval_hybrid.sh ML100K_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
iconv -f latin1 -t utf-8 "$DATA/u.item" | awk -F'|' '{g=""; split("unknown action adventure animation children comedy crime documentary drama fantasy noir horror musical mystery romance scifi thriller war western", n, " "); for (i=6;i<=24;i++) if ($i==1) g=g (g==""?"":",") n[i-5]; y=substr($3,8,4); print $1 "\t{" g "}\t" (y==""?"\\N":y)}' > "$TMP/items.tsv"
FOLD_LOAD=""
for k in 1 2 3 4 5; do
  for part in base test; do
    FOLD_LOAD+="\\copy folds (user_id, item_id, rating, ts) FROM '$DATA/u$k.$part'"$'\n'
    FOLD_LOAD+="UPDATE folds SET fold = $k, part = '$part' WHERE fold IS NULL;"$'\n'
  done
done
psql -X -q -v ON_ERROR_STOP=1 <<SQL
DROP DATABASE IF EXISTS eval_hybrid;
CREATE DATABASE eval_hybrid;
\c eval_hybrid
CREATE EXTENSION recsys;
CREATE TABLE ratings (user_id int, item_id int, rating int, ts bigint);
\copy ratings FROM '$DATA/u.data'
CREATE TABLE items (item_id int, genres text[], year int);
\copy items FROM '$TMP/items.tsv'
CREATE TABLE train AS SELECT * FROM ratings WHERE item_id % 5 <> 0;
CREATE TABLE test AS SELECT * FROM ratings WHERE item_id % 5 = 0 AND rating >= 4;
CREATE TABLE cold AS SELECT array_agg(item_id) AS ids FROM items WHERE item_id % 5 = 0;
CREATE TABLE als AS SELECT recsys.train_als(user_id, item_id, '{"factors": 32, "iterations": 15, "regularization": 0.1, "seed": 1}'::jsonb) AS model FROM train WHERE rating >= 4;
\timing on
CREATE TABLE hy AS SELECT recsys.train_hybrid_items((SELECT model FROM als), item_id,
  jsonb_strip_nulls(jsonb_build_object('genres', genres, 'year', year)), '{"lambda": 1}') AS model FROM items;
\timing off
CREATE TABLE content AS SELECT recsys.train_content(item_id, jsonb_strip_nulls(jsonb_build_object('genres', genres, 'year', year))) AS model FROM items;
CREATE TABLE users AS SELECT DISTINCT user_id FROM test WHERE user_id IN (SELECT user_id FROM train WHERE rating >= 4);
-- Top-10 lists over the held-out items only.
CREATE TABLE lists AS
SELECT 'hybrid' AS method, u.user_id, r.item_id, row_number() OVER (PARTITION BY u.user_id ORDER BY r.score DESC, r.item_id) AS pos
FROM users u, hy, cold, LATERAL recsys.recommend(hy.model, u.user_id, 10, include => cold.ids) r
UNION ALL
SELECT 'content', user_id, item_id, pos FROM (
  SELECT u.user_id, r.item_id::int, row_number() OVER (PARTITION BY u.user_id ORDER BY r.score DESC, r.item_id) AS pos
  FROM users u, content c,
       LATERAL recsys.recommend_content(c.model, (SELECT array_agg(item_id) FROM train t WHERE t.user_id = u.user_id AND t.rating >= 4), 2000) r
  WHERE r.item_id::int % 5 = 0) x WHERE pos <= 10
UNION ALL
SELECT 'random', user_id, item_id, pos FROM (
  SELECT u.user_id, c.item_id, row_number() OVER (PARTITION BY u.user_id ORDER BY md5(u.user_id || '-' || c.item_id)) AS pos
  FROM users u, (SELECT unnest(ids) AS item_id FROM cold) c) x WHERE pos <= 10;
SELECT l.method, count(DISTINCT l.user_id) AS users,
       round(avg(hits / 10.0), 4) AS "P@10", round(avg(hits::numeric / n_rel), 4) AS "R@10", round(avg(dcg / idcg), 4) AS "NDCG@10"
FROM (SELECT m.method, u.user_id,
             (SELECT count(*) FROM lists l JOIN test t ON t.user_id = l.user_id AND t.item_id = l.item_id WHERE l.method = m.method AND l.user_id = u.user_id) AS hits,
             (SELECT count(*) FROM test t WHERE t.user_id = u.user_id) AS n_rel,
             (SELECT coalesce(sum(1 / log(2, l.pos + 1)), 0) FROM lists l JOIN test t ON t.user_id = l.user_id AND t.item_id = l.item_id WHERE l.method = m.method AND l.user_id = u.user_id) AS dcg,
             (SELECT sum(1 / log(2, p + 1)) FROM generate_series(1, least(10, (SELECT count(*) FROM test t WHERE t.user_id = u.user_id))) p) AS idcg
      FROM users u, (VALUES ('hybrid'), ('content'), ('random')) m(method)) s
JOIN (SELECT DISTINCT method, user_id FROM lists) l USING (method, user_id)
GROUP BY l.method ORDER BY 5 DESC;
-- User cold start: 20% of the users (user_id % 5 = 0) held out; their ratings >= 4 are the
-- test set; the hybrid scores them from age, gender, occupation and zip only, against
-- popularity on the full catalogue.
CREATE TABLE uattr (user_id int, age int, gender text, occupation text, zip text);
\copy uattr FROM PROGRAM 'tr "|" "\t" < $DATA/u.user'
CREATE TABLE utrain AS SELECT * FROM ratings WHERE user_id % 5 <> 0 AND rating >= 4;
CREATE TABLE utest AS SELECT * FROM ratings WHERE user_id % 5 = 0 AND rating >= 4;
CREATE TABLE uals AS SELECT recsys.train_als(user_id, item_id, '{"factors": 32, "iterations": 15, "regularization": 0.1, "seed": 1}'::jsonb) AS model FROM utrain;
CREATE TABLE upop AS SELECT recsys.train_popularity(user_id, item_id) AS model FROM utrain;
CREATE TABLE uhy AS SELECT recsys.train_hybrid_users((SELECT model FROM uals), user_id,
  jsonb_build_object('age_band', (age / 10)::text, 'gender', gender, 'occupation', occupation, 'zip1', left(zip, 1), 'age', age)) AS model FROM uattr;
CREATE TABLE ulists AS
SELECT 'hybrid' AS method, u.user_id, r.item_id, row_number() OVER (PARTITION BY u.user_id ORDER BY r.score DESC, r.item_id) AS pos
FROM (SELECT DISTINCT user_id FROM utest) u, uhy, LATERAL recsys.recommend(uhy.model, u.user_id, 10) r
UNION ALL
SELECT 'popularity', u.user_id, r.item_id, row_number() OVER (PARTITION BY u.user_id ORDER BY r.score DESC, r.item_id)
FROM (SELECT DISTINCT user_id FROM utest) u, upop, LATERAL recsys.recommend(upop.model, u.user_id, 10) r;
SELECT method, count(*) AS users, round(avg(dcg / idcg), 4) AS "NDCG@10", round(avg(hits / 10.0), 4) AS "P@10" FROM (
  SELECT m.method, u.user_id,
    (SELECT count(*) FROM ulists l JOIN utest t USING (user_id, item_id) WHERE l.method = m.method AND l.user_id = u.user_id) AS hits,
    (SELECT coalesce(sum(1 / log(2, l.pos + 1)), 0) FROM ulists l JOIN utest t USING (user_id, item_id) WHERE l.method = m.method AND l.user_id = u.user_id) AS dcg,
    (SELECT sum(1 / log(2, p + 1)) FROM generate_series(1, least(10, (SELECT count(*) FROM utest t WHERE t.user_id = u.user_id))) p) AS idcg
  FROM (SELECT DISTINCT user_id FROM utest) u, (VALUES ('hybrid'), ('popularity')) m(method)) s GROUP BY method ORDER BY 3 DESC;
-- Warm: the official random splits, ALS tuned on a grid, the hybrid on the tuned model.
CREATE TABLE folds (fold int, part text, user_id int, item_id int, rating int, ts bigint);
$FOLD_LOAD
CREATE TABLE grid AS SELECT jsonb_build_object('factors', f, 'regularization', r, 'alpha', a, 'iterations', 15, 'seed', 1) AS opts
  FROM unnest(ARRAY[32, 64, 128]) f, unnest(ARRAY[0.1, 5, 50]) r, unnest(ARRAY[1, 5]) a;
CREATE TABLE wmodels AS SELECT fold, opts, recsys.train_als(user_id, item_id, opts) AS model
  FROM folds, grid WHERE part = 'base' AND rating >= 4 GROUP BY fold, opts;
CREATE TABLE wscores AS SELECT m.fold, m.opts, (recsys.ranking_metrics(m.model, t.user_id, t.item_id, '{"k": 10}')->>'ndcg')::float8 AS ndcg
  FROM wmodels m JOIN folds t ON t.fold = m.fold AND t.part = 'test' AND t.rating >= 4 GROUP BY m.fold, m.opts, m.model;
CREATE TABLE best AS SELECT opts FROM wscores GROUP BY opts ORDER BY avg(ndcg) DESC LIMIT 1;
CREATE TABLE whybrid AS SELECT m.fold, recsys.train_hybrid_items(m.model, i.item_id,
    jsonb_strip_nulls(jsonb_build_object('genres', i.genres, 'year', i.year))) AS model
  FROM wmodels m JOIN best b ON b.opts = m.opts, items i GROUP BY m.fold, m.model;
SELECT 'tuned ALS ' || (SELECT opts::text FROM best) AS method, round(avg(ndcg)::numeric, 4) AS "NDCG@10"
  FROM wscores WHERE opts = (SELECT opts FROM best)
UNION ALL
SELECT 'hybrid on it', round(avg(ndcg)::numeric, 4) FROM (
  SELECT h.fold, (recsys.ranking_metrics(h.model, t.user_id, t.item_id, '{"k": 10}')->>'ndcg')::float8 AS ndcg
  FROM whybrid h JOIN folds t ON t.fold = h.fold AND t.part = 'test' AND t.rating >= 4 GROUP BY h.fold, h.model) x;
SQL

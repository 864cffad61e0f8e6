#!/usr/bin/env bash
# Item and user cold start on MovieLens-100K. Items:: 20% of the items (item_id % 5 = 0) held out with all
# their ratings; ALS on the rest; train_hybrid_items from genres and release year of every
# item; for each test user (ratings >= 4 of held-out items), rank only the held-out items.
# Usage (PGHOST/PGPORT/PGUSER of a cluster with recsys installed):
#   bash test/eval_hybrid.sh /path/to/ml-100k
set -euo pipefail
DATA=${1:?usage: eval_hybrid.sh ML100K_DIR}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
iconv -f latin1 -t utf-8 "$DATA/u.item" | awk -F'|' '{g=""; split("unknown action adventure animation children comedy crime documentary drama fantasy noir horror musical mystery romance scifi thriller war western", n, " "); for (i=6;i<=24;i++) if ($i==1) g=g (g==""?"":",") n[i-5]; y=substr($3,8,4); print $1 "\t{" g "}\t" (y==""?"\\N":y)}' > "$TMP/items.tsv"
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
SQL

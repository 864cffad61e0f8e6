-- recommend_for_items: top-k for a list of items (a basket, a session, an anonymous
-- visitor) on item_knn and content models (other kinds: 14_live_serving). On item_knn it must give exactly what
-- recommend gives a user whose history is that list with those weights; on content
-- models exactly what recommend_content gives. Other model kinds and bad arguments err.
SET recsys.threads = 2;
SET jit = off;
CREATE SCHEMA t11;
SET search_path = t11, public;

SELECT setseed(0.5);
CREATE TABLE inter AS
  SELECT u, CASE WHEN random() < 0.85 THEN (u % 8) * 15 + floor(random() * 15)::int ELSE floor(random() * 120)::int END AS i,
         (1 + floor(random() * 3))::float8 AS w
  FROM generate_series(1, 300) u, generate_series(1, 6);
CREATE TABLE pairs AS SELECT u, i, sum(w) AS w FROM inter GROUP BY u, i;
CREATE TABLE km AS SELECT recsys.train_item_knn(u, i, w) AS model FROM inter;

-- Every user's history as a weighted basket gives the user's recommend list exactly.
CREATE TABLE cmp AS
SELECT h.u,
       (SELECT array_agg(r.item_id ORDER BY r.score DESC, r.item_id) FROM km, recsys.recommend(km.model, h.u, 10) r) AS by_user,
       (SELECT array_agg(r.item_id ORDER BY r.score DESC, r.item_id) FROM km, recsys.recommend_for_items(km.model, h.items, h.weights, 10) r) AS by_basket,
       (SELECT max(abs(a.score - b.score)) FROM km, recsys.recommend(km.model, h.u, 10) a
          JOIN recsys.recommend_for_items(km.model, h.items, h.weights, 10) b USING (item_id)) AS max_score_diff
FROM (SELECT u, array_agg(i ORDER BY i) AS items, array_agg(w ORDER BY i) AS weights FROM pairs GROUP BY u) h;
SELECT count(*) AS users, count(*) FILTER (WHERE by_user = by_basket) AS same_lists,
       max(max_score_diff) < 1e-5 AS same_scores, min(cardinality(by_basket)) AS shortest
FROM cmp;

-- Unweighted: all weights 1. Given items excluded by default, kept on request; unknown
-- items and NULLs are skipped; nothing known gives no rows.
SELECT count(*) AS n, bool_and(item_id NOT IN (0, 1, 2)) AS given_excluded
FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1, 2], 10);
SELECT count(*) FILTER (WHERE item_id IN (0, 1, 2)) > 0 AS given_kept
FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1, 2], 120, exclude_given => false);
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM km, recsys.recommend_for_items(km.model, ARRAY[0, NULL, 99999, 1], 10))
     = (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1], 10)) AS unknown_and_null_skipped;
SELECT count(*) AS nothing_known FROM km, recsys.recommend_for_items(km.model, ARRAY[99998, 99999], 10);
SELECT count(*) AS empty_basket FROM km, recsys.recommend_for_items(km.model, ARRAY[]::int[], 10);
-- Text IDs passed for an integer model are compared through their text form.
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM km, recsys.recommend_for_items(km.model, ARRAY['0', '1'], 5))::int[]
     = (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1], 5)) AS text_ids;

-- A content model: the same as recommend_content.
CREATE TABLE products AS SELECT i AS id, jsonb_build_object('group', 'g' || (i / 15), 'tags', jsonb_build_array('t' || (i % 7))) AS f
FROM generate_series(0, 119) i;
CREATE TABLE cm AS SELECT recsys.train_content(id, f) AS model FROM products;
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM cm, recsys.recommend_for_items(cm.model, ARRAY[3, 4], 10))
     = (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM cm, recsys.recommend_content(cm.model, ARRAY[3, 4], 10)) AS content_same,
       (SELECT count(*) FROM cm, recsys.recommend_for_items(cm.model, ARRAY[3, 4], 10)) AS content_rows;

-- Errors: other model kinds, k <= 0, weights of the wrong length, NULL or NaN weights.
CREATE TABLE als AS SELECT recsys.train_als(u, i, w, '{"factors": 4, "iterations": 2}') AS model FROM inter;
-- Factor models fold the items in (sql/14_live_serving.sql tests the answer).
SELECT count(*) AS als_rows FROM als, recsys.recommend_for_items(als.model, ARRAY[0, 1], 5);
SELECT * FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1], 0);
SELECT * FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1], ARRAY[1.0], 5);
SELECT * FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1], ARRAY[1.0, NULL], 5);
SELECT * FROM km, recsys.recommend_for_items(km.model, ARRAY[0, 1], ARRAY[1.0, 'NaN'], 5);
SELECT * FROM als, recsys.recommend_content(als.model, ARRAY[0, 1], 5);

DROP SCHEMA t11 CASCADE;

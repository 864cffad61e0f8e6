-- recommend_all: top-k for every user equals per-user recommend, seen items excluded.
CREATE SCHEMA t08_recommend_all;
SET search_path = t08_recommend_all, public;
SET recsys.threads = 2;
SELECT setseed(0.5);
CREATE TABLE inter AS
SELECT DISTINCT 1 + floor(120 * random())::int AS u, 1 + floor(5000 * power(random(), 2))::int AS i
FROM generate_series(1, 6000);
CREATE TABLE m AS SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 5, "seed": 2}'::jsonb) AS model FROM inter;
CREATE TABLE p AS SELECT recsys.train_popularity(u, i) AS model FROM inter;

-- Equal to the lateral per-user form. Batch scoring sums in another order than the
-- per-user kernel, so scores agree to rounding and near-ties may swap: compare the
-- score at every rank with a tolerance, and require (almost) the same items.
CREATE TABLE per_user AS
SELECT us.u, x.item_id, x.score, x.rn::int AS rank FROM (SELECT DISTINCT u FROM inter) us, m,
  LATERAL (SELECT item_id, score, row_number() OVER () AS rn FROM recsys.recommend(m.model, us.u, 7)) x;
CREATE TABLE batch AS SELECT r.* FROM m, recsys.recommend_all(m.model, 7, NULL::int) r;
SELECT count(*) AS rows_per_user_form, (SELECT count(*) FROM batch) AS rows_batch FROM per_user;
SELECT count(*) AS score_differences FROM per_user p JOIN batch b ON b.user_id = p.u AND b.rank = p.rank
WHERE abs(b.score - p.score) > 1e-4 * greatest(1, abs(p.score));
SELECT count(*) <= 0.01 * (SELECT count(*) FROM batch) AS same_items
FROM (SELECT user_id, item_id FROM batch EXCEPT SELECT u, item_id FROM per_user) d;
SELECT count(*) AS differences FROM (
  SELECT r.user_id, r.item_id, r.rank FROM p, recsys.recommend_all(p.model, 5, NULL::int) r
  EXCEPT
  SELECT us.u, x.item_id, x.rn::int FROM (SELECT DISTINCT u FROM inter) us, p,
    LATERAL (SELECT item_id, row_number() OVER () AS rn FROM recsys.recommend(p.model, us.u, 5)) x) d;

-- recommend on a cached model scores the items in decreasing-norm order and stops once
-- no item left can enter the list; with the cache off it scores every item. The lists
-- must be identical: items, scores and order, for an ALS and a biased MF model.
CREATE TABLE mf AS SELECT recsys.train_mf(u, i, 1 + (u * i) % 5, '{"factors": 6, "epochs": 5, "seed": 3}') AS model
FROM inter;
CREATE FUNCTION lists(k int, seen bool) RETURNS TABLE (kind text, u int, item_id int, score real, rn bigint)
LANGUAGE sql AS $$
  SELECT 'als', us.u, x.item_id, x.score, x.rn FROM (SELECT DISTINCT u FROM inter) us, m,
    LATERAL (SELECT item_id, score, row_number() OVER () AS rn FROM recsys.recommend(m.model, us.u, k, seen)) x
  UNION ALL
  SELECT 'mf', us.u, x.item_id, x.score, x.rn FROM (SELECT DISTINCT u FROM inter) us, mf,
    LATERAL (SELECT item_id, score, row_number() OVER () AS rn FROM recsys.recommend(mf.model, us.u, k, seen)) x
$$;
CREATE TABLE cached AS SELECT * FROM lists(7, true) UNION ALL SELECT * FROM lists(40, false);
SET recsys.model_cache_size = 0;
CREATE TABLE uncached AS SELECT * FROM lists(7, true) UNION ALL SELECT * FROM lists(40, false);
RESET recsys.model_cache_size;
SELECT (SELECT count(*) FROM cached) = (SELECT count(*) FROM uncached) AS same_count,
       (SELECT count(*) FROM cached) > 0 AS not_empty,
       (SELECT count(*) FROM (SELECT * FROM cached EXCEPT SELECT * FROM uncached) d) AS differences;

-- Every user gets k rows ranked 1..k; no seen item is returned; scores are non-increasing.
SELECT count(DISTINCT r.user_id) AS users, min(r.rank) AS first_rank, max(r.rank) AS last_rank,
       count(*) = 7 * count(DISTINCT r.user_id) AS k_each
FROM m, recsys.recommend_all(m.model, 7, NULL::int) r;
SELECT count(*) AS seen_returned FROM m, recsys.recommend_all(m.model, 7, NULL::int) r
JOIN inter ON inter.u = r.user_id AND inter.i = r.item_id;
SELECT count(*) AS order_violations FROM (
  SELECT score, lag(score) OVER (PARTITION BY user_id ORDER BY rank) AS prev
  FROM m, recsys.recommend_all(m.model, 7, NULL::int) r) s WHERE score > prev;
-- exclude_seen => false can return seen items.
SELECT count(*) > 0 AS seen_when_allowed FROM m, recsys.recommend_all(m.model, 7, NULL::int, false) r
JOIN inter ON inter.u = r.user_id AND inter.i = r.item_id;

-- A subset of users (unknown IDs and NULLs skipped, duplicates once), other ID types.
SELECT r.user_id, count(*) FROM m, recsys.recommend_all(m.model, 3, NULL::int, true, ARRAY[1, 2, 2, NULL, 99999]) r
GROUP BY r.user_id ORDER BY r.user_id;
SELECT pg_typeof(r.user_id) AS user_type, pg_typeof(r.item_id) AS item_type
FROM m, recsys.recommend_all(m.model, 1, NULL::bigint, NULL::text) r LIMIT 1;
SELECT pg_typeof(r.user_id) AS user_type FROM m, recsys.recommend_all(m.model, 1) r LIMIT 1;
-- k larger than the catalogue: every unseen item.
SELECT count(*) = (SELECT count(DISTINCT i) FROM inter) - (SELECT count(*) FROM inter WHERE u = 1) AS all_unseen
FROM m, recsys.recommend_all(m.model, 100000, NULL::int, true, ARRAY[1]) r;

-- Bad arguments.
SELECT * FROM m, recsys.recommend_all(m.model, 0, NULL::int) r;
SELECT * FROM m, recsys.recommend_all(m.model, -5) r;
SELECT count(*) FROM m, recsys.recommend_all(m.model, NULL::int, NULL::int) r;
SELECT count(*) FROM recsys.recommend_all(NULL::recsys.model, 5, NULL::int) r;

-- A model whose item factors do not fit the cache twice (recsys.model_cache_size = 1MB,
-- 20,000 items x 16 factors = 1.25 MB): the cache keeps only the item order, no copy, and
-- rows are read in place. The lists are still those of scoring every item.
CREATE TABLE wide AS SELECT u, 1 + ((u - 1) * 60 + r * 37) % 20000 AS i
FROM generate_series(1, 400) u, generate_series(1, 60) r;
CREATE TABLE wm AS SELECT recsys.train_als(u, i, '{"factors": 16, "iterations": 3, "seed": 4}'::jsonb) AS model FROM wide;
SELECT (recsys.model_info(model)->>'items')::int AS items FROM wm;
CREATE FUNCTION wide_lists() RETURNS TABLE (u int, item_id int, score real, rn bigint) LANGUAGE sql AS $$
  SELECT us.u, x.item_id, x.score, x.rn FROM generate_series(1, 400, 3) us(u), wm,
    LATERAL (SELECT item_id, score, row_number() OVER () AS rn FROM recsys.recommend(wm.model, us.u, 10)) x
$$;
SET recsys.model_cache_size = '1MB';
CREATE TABLE wide_compact AS SELECT * FROM wide_lists();
CREATE TABLE wide_batch AS SELECT r.user_id AS u, r.item_id, r.score, r.rank::bigint AS rn
FROM wm, recsys.recommend_all(wm.model, 10, NULL::int, true, ARRAY(SELECT generate_series(1, 400, 3))) r;
SET recsys.model_cache_size = 0;
CREATE TABLE wide_exhaustive AS SELECT * FROM wide_lists();
RESET recsys.model_cache_size;
-- (recommend_all sums in another order: compare its scores rank by rank, to rounding.)
SELECT (SELECT count(*) FROM wide_compact) AS rows,
       (SELECT count(*) FROM (SELECT * FROM wide_compact EXCEPT SELECT * FROM wide_exhaustive) d) AS differences,
       (SELECT count(*) FROM wide_batch b JOIN wide_exhaustive e USING (u, rn)
        WHERE abs(b.score - e.score) > 1e-4 * greatest(1, abs(e.score))) AS batch_score_differences,
       (SELECT count(*) FROM wide_batch) AS batch_rows;

-- train_als: ID types, duplicates, NULLs, weights, options, determinism, misuse.
SET recsys.threads = 1;
CREATE SCHEMA t01;
SET search_path = t01, public;

SELECT setseed(0.5);
CREATE TABLE r AS
  SELECT (random() * 30)::int + 1 AS u, (random() * 40)::int + 1 AS i FROM generate_series(1, 600);
CREATE TABLE opts AS SELECT '{"factors": 4, "iterations": 3, "seed": 11}'::jsonb AS o;

-- Every supported ID type, user and item types independent. The model reports the
-- types, the counts match the data, and recommend returns IDs of the item type.
CREATE TABLE typed AS
  SELECT u, i,
         u::smallint AS u2, i::smallint AS i2, u::int AS u4, i::int AS i4, u::bigint * 10000000000 AS u8,
         i::bigint * 10000000000 AS i8, 'user ' || u AS ut, 'item ' || i AS it, ('u' || u)::varchar AS uv,
         ('i' || i)::varchar AS iv, md5('u' || u)::uuid AS uu, md5('i' || i)::uuid AS iu
  FROM r;
CREATE TABLE typed_models AS
  SELECT 'int2/int4' AS types, recsys.train_als(u2, i4, o) AS m FROM typed, opts GROUP BY o
  UNION ALL SELECT 'int4/int8', recsys.train_als(u4, i8, o) FROM typed, opts GROUP BY o
  UNION ALL SELECT 'int8/text', recsys.train_als(u8, it, o) FROM typed, opts GROUP BY o
  UNION ALL SELECT 'text/varchar', recsys.train_als(ut, iv, o) FROM typed, opts GROUP BY o
  UNION ALL SELECT 'varchar/uuid', recsys.train_als(uv, iu, o) FROM typed, opts GROUP BY o
  UNION ALL SELECT 'uuid/int2', recsys.train_als(uu, i2, o) FROM typed, opts GROUP BY o;
SELECT types, info->>'user_id_type' AS user_id_type, info->>'item_id_type' AS item_id_type,
       (info->>'users')::int = (SELECT count(DISTINCT u) FROM r) AS users_ok,
       (info->>'items')::int = (SELECT count(DISTINCT i) FROM r) AS items_ok,
       (info->>'interactions')::int = (SELECT count(*) FROM (SELECT DISTINCT u, i FROM r) d) AS interactions_ok
FROM (SELECT types, recsys.model_info(m) AS info FROM typed_models) s ORDER BY types;
-- recommend with the item type witness: typed IDs that exist in the data
SELECT (SELECT count(*) FROM recsys.recommend(m, 1::smallint, 3, NULL::int) x WHERE x.item_id IN (SELECT i4 FROM typed)) AS "int2/int4",
       (SELECT count(*) FROM recsys.recommend(m2, 1::int, 3, NULL::bigint) x WHERE x.item_id IN (SELECT i8 FROM typed)) AS "int4/int8",
       (SELECT count(*) FROM recsys.recommend(m3, 10000000000::bigint, 3, NULL::text) x WHERE x.item_id IN (SELECT it FROM typed)) AS "int8/text",
       (SELECT count(*) FROM recsys.recommend(m4, 'user 1'::text, 3, NULL::varchar) x WHERE x.item_id IN (SELECT iv FROM typed)) AS "text/varchar",
       (SELECT count(*) FROM recsys.recommend(m5, 'u1'::varchar, 3, NULL::uuid) x WHERE x.item_id IN (SELECT iu FROM typed)) AS "varchar/uuid",
       (SELECT count(*) FROM recsys.recommend(m6, md5('u1')::uuid, 3, NULL::smallint) x WHERE x.item_id IN (SELECT i2 FROM typed)) AS "uuid/int2"
FROM (SELECT max(m::text) FILTER (WHERE types = 'int2/int4')::recsys.model AS m,
             max(m::text) FILTER (WHERE types = 'int4/int8')::recsys.model AS m2,
             max(m::text) FILTER (WHERE types = 'int8/text')::recsys.model AS m3,
             max(m::text) FILTER (WHERE types = 'text/varchar')::recsys.model AS m4,
             max(m::text) FILTER (WHERE types = 'varchar/uuid')::recsys.model AS m5,
             max(m::text) FILTER (WHERE types = 'uuid/int2')::recsys.model AS m6 FROM typed_models) s;
-- int2, int4 and int8 IDs of equal values are the same keys: the same scores (the
-- fingerprints differ, since the model records the SQL types)
SELECT count(DISTINCT recsys.model_info(m)->>'fingerprint') AS distinct_fingerprints,
       count(DISTINCT (SELECT string_agg(x.item_id || ':' || round(x.score::numeric, 4), ',') FROM recsys.recommend(m, 3, 5) x)) AS distinct_recommendations
FROM (SELECT recsys.train_als(u2, i2, o) AS m FROM typed, opts GROUP BY o
      UNION ALL SELECT recsys.train_als(u4, i4, o) FROM typed, opts GROUP BY o
      UNION ALL SELECT recsys.train_als(u::bigint, i::bigint, o) FROM typed, opts GROUP BY o) s;

-- Unsupported ID types: a clear error naming the role and the type.
SELECT recsys.train_als(u::numeric, i) FROM r;
SELECT recsys.train_als(u, i::float8) FROM r;
SELECT recsys.train_als(u, date '2024-01-01' + i) FROM r;
SELECT recsys.train_als(u::bool, i) FROM r;

-- Duplicate (user, item) rows add up: the same as training on summed weights.
CREATE TABLE agg AS SELECT u, i, count(*)::float8 AS w FROM r GROUP BY u, i;
SELECT (SELECT count(*) FROM r) > (SELECT count(*) FROM agg) AS has_duplicates;
CREATE TABLE dup_models AS
  SELECT (SELECT recsys.train_als(u, i, o) FROM r) AS raw,
         (SELECT recsys.train_als(u, i, w, o) FROM agg) AS summed
  FROM opts;
SELECT recsys.model_info(raw)->'interactions' = recsys.model_info(summed)->'interactions' AS same_interactions,
       (recsys.model_info(raw)->>'interactions')::int = (SELECT count(*) FROM agg) AS interactions_ok,
       recsys.model_info(raw)->'parameters'->'rows' AS raw_rows,
       recsys.model_info(summed)->'parameters'->'rows' AS summed_rows,
       (SELECT max(abs(recsys.score(raw, a.u, a.i) - recsys.score(summed, a.u, a.i))) < 1e-5 FROM agg a) AS same_scores
FROM dup_models;

-- NULL user, item or weight: the row is skipped and counted.
CREATE TABLE with_nulls AS
  SELECT u, i, 1.0::float8 AS w FROM r
  UNION ALL VALUES (NULL, 1, 1.0), (1, NULL, 1.0), (NULL, NULL, 1.0), (2, 3, NULL::float8);
SELECT recsys.model_info(m)->'parameters'->'rows_skipped' AS rows_skipped,
       recsys.model_info(m)->'parameters'->'rows' AS rows,
       (SELECT max(abs(recsys.score(m, a.u, a.i) - recsys.score(d.summed, a.u, a.i))) < 1e-5 FROM agg a, dup_models d) AS same_scores
FROM (SELECT recsys.train_als(u, i, w, o) AS m FROM with_nulls, opts GROUP BY o) s;
-- no rows, or no usable row: NULL
SELECT recsys.train_als(u, i) IS NULL AS no_rows FROM r WHERE false;
SELECT recsys.train_als(u, i, o) IS NULL AS no_rows_with_options FROM r, opts WHERE false;
SELECT recsys.train_als(NULL::int, i) IS NULL AS all_users_null FROM r;
SELECT recsys.train_als(u, i, NULL::float8) IS NULL AS all_weights_null FROM r;

-- Weights must be finite.
SELECT recsys.train_als(u, i, 'NaN'::float8) FROM r;
SELECT recsys.train_als(u, i, CASE WHEN u = 7 THEN 'Infinity'::float8 ELSE 1 END) FROM r;
SELECT recsys.train_als(u, i, '-Infinity'::float8) FROM r;

-- Negative weights are explicit negative feedback (preference 0, confidence from
-- |weight|): users 1-50 like items 1, 2, 3; user 51 likes 2 and 3 and rejects 1 with
-- weight -5; user 52 likes 2 and 3 and has not seen 1. With one factor, items 1-3 share
-- a direction, so the unseen item 1 scores high for user 52 (about 6/7 in theory) and
-- low for user 51 (about 6/17): the rejection outweighs the two likes.
CREATE TABLE fb AS
  SELECT u, i, 1.0::float8 AS w FROM generate_series(1, 50) u, generate_series(1, 3) i
  UNION ALL VALUES (51, 2, 1.0), (51, 3, 1.0), (51, 1, -5.0), (52, 2, 1.0), (52, 3, 1.0);
CREATE TABLE fb_model AS
  SELECT recsys.train_als(u, i, w, '{"factors": 1, "iterations": 10, "alpha": 2, "regularization": 0.01}'::jsonb) AS m FROM fb;
SELECT recsys.model_info(m)->'parameters'->'negative_pairs' AS negative_pairs,
       recsys.model_info(m)->'interactions' AS interactions,
       recsys.score(m, 51, 1) BETWEEN 0.25 AND 0.45 AS rejected_score_low,
       recsys.score(m, 52, 1) BETWEEN 0.75 AND 0.95 AS unseen_score_high,
       (SELECT array_agg(item_id ORDER BY item_id) FROM recsys.recommend(m, 52, 10)) AS recs_52,
       (SELECT count(*) FROM recsys.recommend(m, 51, 10)) AS recs_51
FROM fb_model;

-- Pairs whose weights sum to zero are dropped: not an interaction, not seen. User 1
-- has items 1, 3 and 4, and item 2 with weights 2 and -2.
CREATE TABLE zs AS
  SELECT u, i, 1.0::float8 AS w FROM generate_series(1, 20) u, generate_series(1, 4) i WHERE (u + i) % 3 <> 0
  UNION ALL VALUES (1, 2, 2.0), (1, 2, -2.0);
SELECT recsys.model_info(m)->'interactions' AS interactions,
       recsys.model_info(m)->'parameters'->'negative_pairs' AS negative_pairs,
       (SELECT array_agg(item_id ORDER BY item_id) FROM recsys.recommend(m, 1, 10)) AS recs_user_1
FROM (SELECT recsys.train_als(u, i, w, '{"factors": 2, "iterations": 2}'::jsonb) AS m FROM zs) s;

-- Options: every name and range is checked, and the error names the option.
SELECT recsys.train_als(u, i, '{"factorz": 3}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"factors": 0}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"factors": 1025}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"factors": 2.5}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"factors": "8"}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"factors": true}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"iterations": -1}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"iterations": 10001}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"regularization": "x"}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"regularization": -0.5}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"alpha": -1}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"cg_steps": 0}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"seed": 1.5}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"seed": -1}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"init_scale": 0}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"threads": -1}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"verbose": 1}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"store_seen": "yes"}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"calculate_loss": null, "calculate_los": false}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"factors": {"value": 8}}'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '{"alpha": [1]}'::jsonb) FROM r;
-- options that are not an object
SELECT recsys.train_als(u, i, '[1, 2]'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '8'::jsonb) FROM r;
SELECT recsys.train_als(u, i, '"factors"'::jsonb) FROM r;
-- options are checked on the first row
SELECT recsys.train_als(u, i, '{"factors": 0}'::jsonb) FROM r WHERE u = 1 LIMIT 1;
-- a null option means the default; empty object and JSON null mean all defaults
SELECT recsys.model_info(recsys.train_als(u, i, '{"factors": null, "iterations": 1}'::jsonb))->'factors' AS default_factors FROM r;
SELECT recsys.model_info(recsys.train_als(u, i, '{}'::jsonb))->'parameters'->'iterations' AS default_iterations FROM r;
SELECT recsys.model_info(recsys.train_als(u, i, 'null'::jsonb))->'parameters'->'seed' AS default_seed FROM r;
-- options must be the same on every row
SELECT recsys.train_als(u, i, jsonb_build_object('factors', 4 + u % 2)) FROM r;
SELECT recsys.train_als(u, i, 1.0, jsonb_build_object('seed', u)) FROM r;

-- Determinism: same seed, same model; another seed, another model; thread count and
-- row order do not matter.
SELECT count(DISTINCT recsys.model_info(m)->>'fingerprint') AS distinct_fingerprints
FROM (SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 3, "seed": 5}'::jsonb) AS m FROM r
      UNION ALL SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 3, "seed": 5, "threads": 2}'::jsonb) FROM r
      UNION ALL SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 3, "seed": 5}'::jsonb ORDER BY i DESC, u) FROM r) s;
SELECT (SELECT recsys.model_info(recsys.train_als(u, i, '{"factors": 4, "iterations": 3, "seed": 5}'::jsonb))->>'fingerprint' FROM r) <>
       (SELECT recsys.model_info(recsys.train_als(u, i, '{"factors": 4, "iterations": 3, "seed": 6}'::jsonb))->>'fingerprint' FROM r)
       AS other_seed_differs;

-- GROUP BY trains one model per group.
SELECT g, (recsys.model_info(m)->>'users')::int = (SELECT count(DISTINCT u) FROM r WHERE u % 3 = g) AS users_ok,
       (recsys.model_info(m)->>'interactions')::int = (SELECT count(*) FROM (SELECT DISTINCT u, i FROM r WHERE u % 3 = g) d) AS interactions_ok
FROM (SELECT u % 3 AS g, recsys.train_als(u, i, o) AS m FROM r, opts GROUP BY u % 3, o) s ORDER BY g;
-- FILTER and DISTINCT work as for any aggregate
SELECT recsys.model_info(recsys.train_als(u, i, o) FILTER (WHERE u <= 10))->'users' AS filtered_users FROM r, opts GROUP BY o;
SELECT recsys.model_info(recsys.train_als(DISTINCT u, i))->'parameters'->'rows' = to_jsonb((SELECT count(*) FROM agg)) AS distinct_rows FROM r;

-- Not a window function, not an ordered-set aggregate (the argument types in the
-- window error are masked).
DO $$
BEGIN
  PERFORM recsys.train_als(u, i) OVER () FROM t01.r LIMIT 1;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE '%: %', SQLSTATE, regexp_replace(SQLERRM, '\(.*\)', '(...)');
END $$;
SELECT recsys.train_als(u, i) WITHIN GROUP (ORDER BY u) FROM r;

-- Progress NOTICEs: off by default, on with recsys.progress or the verbose option. They
-- carry timings and losses, masked here; a separate psql session captures them.
SET recsys.progress = on;
SHOW recsys.progress;
RESET recsys.progress;
\setenv PGDATABASE :DBNAME
\! "${PG_BINDIR:-$(pg_config --bindir)}/psql" -X -q -c "SELECT recsys.train_als(u, i, '{\"factors\": 2, \"iterations\": 2}'::jsonb) IS NOT NULL AS quiet FROM t01.r" 2>&1
\! "${PG_BINDIR:-$(pg_config --bindir)}/psql" -X -q -c 'SET recsys.progress = on' -c "SELECT recsys.train_als(u, i, '{\"factors\": 2, \"iterations\": 2}'::jsonb) IS NOT NULL AS verbose_guc FROM t01.r" 2>&1 | sed -E 's/[0-9]+\.[0-9]+ s\b/N s/g; s/loss [^ ]+/loss L/'
\! "${PG_BINDIR:-$(pg_config --bindir)}/psql" -X -q -c "SELECT recsys.train_als(u, i, '{\"factors\": 2, \"iterations\": 1, \"verbose\": true}'::jsonb) IS NOT NULL AS verbose_option FROM t01.r" 2>&1 | sed -E 's/[0-9]+\.[0-9]+ s\b/N s/g; s/loss [^ ]+/loss L/'

DROP SCHEMA t01 CASCADE;

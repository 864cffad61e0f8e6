-- Hardening (issue 10): an ordinary role cannot crash the backend through re-entry,
-- cross_validate cannot be hijacked, settings have ceilings; and 0.2.0 API checks
-- (issue 11): ID types named in errors, model equality, notices instead of silent
-- empties, no reserved words among output columns.
SET client_min_messages = notice;
CREATE ROLE recsys_plain LOGIN;
GRANT USAGE ON SCHEMA recsys TO recsys_plain;
GRANT TEMPORARY ON DATABASE contrib_regression TO recsys_plain;

-- 1. Re-entry (defect 1): turning an ID into the witness type runs a domain CHECK that
--    calls recsys again, as an ordinary role. The inner calls must not touch the outer
--    call's buffers, nor free the model it reads.
SET ROLE recsys_plain;
CREATE TEMP TABLE a AS SELECT recsys.train_als(u, i, '{"factors": 2, "iterations": 1}'::jsonb) AS m
  FROM (VALUES ('u1','(a)'),('u1','(b)'),('u2','(xAAAAAAAABBBBBBBBCCCCCCCCDDDDDDDDEEEEEEEEFFFFFFFFGGGGGGGGHHHHHHHH)'),('u2','(a)')) v(u, i);
CREATE TEMP TABLE b AS SELECT recsys.train_als('x'||(g%3), 'i'||g, '{"factors": 2, "iterations": 1, "seed": 1}'::jsonb) AS m
  FROM generate_series(1,12) g;
CREATE FUNCTION pg_temp.f(text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM count(*) FROM pg_temp.b, recsys.recommend(b.m, 'x1'::text, 100, exclude_seen => false); RETURN true; END $$;
CREATE DOMAIN pg_temp.d AS text CHECK (pg_temp.f(VALUE));
CREATE TYPE pg_temp.r AS (x pg_temp.d);
-- The reproducer of the issue: a composite witness for text IDs is now refused up front.
SELECT * FROM a, recsys.recommend(a.m, 'u1'::text, 10, NULL::pg_temp.r, exclude_seen => false);
-- The same re-entry through a domain over text (allowed): every item, intact.
SELECT item_id, score IS NOT NULL AS scored
FROM a, recsys.recommend(a.m, 'u1'::text, 10, NULL::pg_temp.d, exclude_seen => false) ORDER BY 1;
-- Large (TOASTed, cached) models under a cache too small for two: the inner call's
-- model would evict the outer call's while the outer call still reads it.
CREATE TEMP TABLE big_outer AS
  SELECT recsys.train_als('user ' || (g % 50), 'item ' || g, '{"factors": 8, "iterations": 1}'::jsonb) AS m
  FROM generate_series(1, 4000) g;
CREATE TEMP TABLE big_inner AS
  SELECT recsys.train_als('v' || (g % 40), 'w' || g, '{"factors": 8, "iterations": 1}'::jsonb) AS m
  FROM generate_series(1, 4000) g;
SELECT pg_column_size(m) > 100000 AS outer_toasted FROM big_outer;
CREATE FUNCTION pg_temp.g(text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM count(*) FROM pg_temp.big_inner, recsys.recommend_all(big_inner.m, 3, NULL::text, true, ARRAY['v1', 'v2']);
     RETURN true; END $$;
CREATE DOMAIN pg_temp.e AS text CHECK (pg_temp.g(VALUE));
SET recsys.model_cache_size = '200kB';
SELECT count(*) AS rows, count(DISTINCT user_id) AS users, bool_and(item_id::text LIKE 'item %') AS intact
FROM big_outer, recsys.recommend_all(big_outer.m, 5, NULL::pg_temp.e, NULL::pg_temp.e, false);
SELECT count(*) AS rows, bool_and(item_id::text LIKE 'item %') AS intact
FROM big_outer, recsys.recommend(big_outer.m, 'user 7'::text, 20, NULL::pg_temp.e, exclude_seen => false);
SELECT count(*) AS rows, bool_and(item_id::text LIKE 'item %') AS intact
FROM big_outer, recsys.item_factors(big_outer.m, NULL::pg_temp.e);
-- ... and the lists equal those of plain text output.
SELECT (SELECT array_agg(item_id::text) FROM big_outer, recsys.recommend(big_outer.m, 'user 7'::text, 20, NULL::pg_temp.e, exclude_seen => false))
     = (SELECT array_agg(item_id) FROM big_outer, recsys.recommend(big_outer.m, 'user 7'::text, 20, exclude_seen => false)) AS same_list;
RESET recsys.model_cache_size;
RESET ROLE;

-- 2. Settings are for every role; their ceilings are the superuser's.
SET ROLE recsys_plain;
SET recsys.threads = 1024;
SET recsys.max_threads = 64;
SET recsys.model_cache_size = '2TB';
SET recsys.max_model_cache_size = '64GB';
SET recsys.model_cache_size = '1kB';
SHOW recsys.model_cache_size;
SET recsys.threads = 1;
RESET recsys.threads;
RESET recsys.model_cache_size;
RESET ROLE;
SET recsys.max_threads = 1;
SET recsys.threads = 2;
RESET recsys.max_threads;

-- 3. cross_validate (defects 5 and 6). A role with CREATE on public plants operators
--    that the 0.1.0 body would have picked up when a superuser ran it.
CREATE ROLE recsys_planter;
GRANT CREATE, USAGE ON SCHEMA public TO recsys_planter;
CREATE TABLE public.cv_marker(who text);
GRANT INSERT ON public.cv_marker TO PUBLIC;
CREATE TABLE public.cv_ratings AS
  SELECT u, (u * 3 + g) % 25 AS i, 1 + (u + g) % 5 AS r FROM generate_series(1, 30) u, generate_series(1, 6) g;
SET ROLE recsys_planter;
CREATE FUNCTION public.planted_mul(double precision, integer) RETURNS double precision LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.cv_marker VALUES (current_user); RETURN $1 * $2; END $$;
CREATE OPERATOR public.* (LEFTARG = double precision, RIGHTARG = integer, FUNCTION = public.planted_mul);
CREATE FUNCTION public.planted_cat(text, integer) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO public.cv_marker VALUES (current_user); RETURN $1 || $2::text; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = integer, FUNCTION = public.planted_cat);
RESET ROLE;
SET search_path = public, recsys;
SELECT setting, fold_count, rmse_mean > 0 AS has_rmse
FROM recsys.cross_validate('SELECT u, i, r FROM cv_ratings', 'baseline', folds => 3);
SELECT count(*) AS planted_operator_calls FROM public.cv_marker;
RESET search_path;
-- The query runs with the caller's search_path (an unqualified table resolves).
SET search_path = public;
SELECT count(*) AS settings FROM recsys.cross_validate('SELECT u, i, r FROM cv_ratings', 'popularity', folds => 2);
RESET search_path;
-- Not a single SELECT: refused before anything runs.
SELECT * FROM recsys.cross_validate('SELECT u,i,r FROM public.cv_ratings) AS q(u,i,r); CREATE TABLE public.pwned(x int); --', 'mf');
SELECT * FROM recsys.cross_validate('SELECT 1, 2, 3; SELECT 4, 5, 6', 'mf');
SELECT * FROM recsys.cross_validate('DELETE FROM public.cv_ratings RETURNING u, i, r', 'mf');
SELECT * FROM recsys.cross_validate('WITH d AS (DELETE FROM public.cv_ratings RETURNING *) SELECT u, i, r FROM d', 'mf');
SELECT * FROM recsys.cross_validate('SELECT u, i, r INTO public.pwned2 FROM public.cv_ratings', 'mf');
SELECT * FROM recsys.cross_validate('', 'mf');
SELECT to_regclass('public.pwned') IS NULL AS no_table, to_regclass('public.pwned2') IS NULL AS no_table2,
       (SELECT count(*) FROM public.cv_ratings) AS ratings_kept;
-- A query error names the query's problem, not internal SQL.
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM no_such_table', 'mf');
SELECT * FROM recsys.cross_validate('SELECT u, i FROM public.cv_ratings', 'mf');
-- A trailing semicolon and comments are fine; VALUES is a SELECT.
SELECT fold_count FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings; -- the ratings', 'baseline', folds => 2);
SELECT fold_count FROM recsys.cross_validate('VALUES (1, 1, 5.0), (1, 2, 3.0), (2, 1, 4.0), (2, 2, 1.0), (3, 1, 2.0), (3, 2, 4.5), (4, 1, 1.0), (4, 2, 5.0)', 'baseline', folds => 2);
-- Too few rows for the folds: a clear error, not "model is NULL".
SELECT fold_count FROM recsys.cross_validate('VALUES (1, 1, 5.0)', 'baseline', folds => 2);
-- A temporary table of the caller's with the 0.1.0 internal name is left alone.
DO $$ BEGIN EXECUTE format('CREATE TEMP TABLE %I AS SELECT 42 AS answer', 'recsys_cv_' || pg_backend_pid()::text); END $$;
SELECT count(*) AS settings FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings', 'baseline', folds => 2);
DO $$ DECLARE v int; BEGIN EXECUTE format('SELECT answer FROM pg_temp.%I', 'recsys_cv_' || pg_backend_pid()::text) INTO v;
  RAISE NOTICE 'my temp table survived: answer = %', v; END $$;
-- folds is bounded; options are checked.
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings', 'mf', folds => 2147483647);
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings', 'mf', folds => 101);
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings', 'mf', options => '{"kk": 3}');
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings', 'mf', options => '{"k": "ten"}');
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM public.cv_ratings', 'mf', options => '{"k": 0}');
SELECT count(*) AS planted_operator_calls FROM public.cv_marker;
DROP TABLE public.cv_marker, public.cv_ratings;
DROP OPERATOR public.* (double precision, integer);
DROP OPERATOR public.|| (text, integer);
DROP FUNCTION public.planted_mul(double precision, integer), public.planted_cat(text, integer);
REVOKE CREATE, USAGE ON SCHEMA public FROM recsys_planter;
DROP ROLE recsys_planter;

-- 4. IDs in the model's types: a mismatch names the type and the argument to pass.
CREATE TEMP TABLE shop AS SELECT recsys.train_als(c, sku, '{"factors": 2, "iterations": 1}'::jsonb) AS m
  FROM (VALUES (42, 'B00186'), (42, 'B00187'), (43, 'B00186'), (44, 'B00188')) v(c, sku);
SELECT * FROM shop, recsys.recommend(shop.m, 42, 10);
SELECT item_id FROM shop, recsys.recommend(shop.m, 42, 10, NULL::text) ORDER BY 1;
SELECT * FROM shop, recsys.recommend_all(shop.m, 2, NULL::int);
SELECT user_id, item_id FROM shop, recsys.recommend_all(shop.m, 1, NULL::int, NULL::text) ORDER BY 1, 2;
SELECT * FROM shop, recsys.item_factors(shop.m, NULL::bigint);
-- recommend_all with users of the wrong type: an error naming the type, not 0 rows.
CREATE TEMP TABLE shop_text AS SELECT recsys.train_als('C' || c, sku, '{"factors": 2, "iterations": 1}'::jsonb) AS m
  FROM (VALUES (42, 'B00186'), (42, 'B00187'), (43, 'B00186')) v(c, sku);
SELECT * FROM shop_text, recsys.recommend_all(shop_text.m, 2, NULL::int, true, ARRAY[42, 43]);
SELECT * FROM shop_text, recsys.recommend_all(shop_text.m, 2, NULL::int, NULL::text, true, ARRAY[42, 43]);
SELECT * FROM shop_text, recsys.recommend_all(shop_text.m, 2, NULL::text, true, ARRAY['nobody']);
SELECT count(*) FROM shop_text, recsys.recommend_all(shop_text.m, 2, NULL::text, false, ARRAY['C42', 'nobody']);

-- 5. Equality by fingerprint: DISTINCT, GROUP BY, =, and a retrain on the same rows.
CREATE TEMP TABLE ms AS
  SELECT 'a' AS name, m FROM shop UNION ALL SELECT 'b', m FROM shop UNION ALL SELECT 'c', m FROM shop_text
  UNION ALL SELECT 'd', recsys.train_als(c, sku, '{"factors": 2, "iterations": 1}'::jsonb)
            FROM (VALUES (42, 'B00186'), (42, 'B00187'), (43, 'B00186'), (44, 'B00188')) v(c, sku);
SELECT count(DISTINCT m) AS distinct_models, count(*) AS rows FROM ms;
SELECT count(*) AS groups FROM (SELECT m FROM ms GROUP BY m) g;
SELECT x.name, y.name FROM ms x JOIN ms y ON x.m OPERATOR(recsys.=) y.m WHERE x.name < y.name ORDER BY 1, 2;
SELECT x.name, y.name FROM ms x JOIN ms y ON x.m OPERATOR(recsys.<>) y.m WHERE x.name < y.name ORDER BY 1, 2;

-- 6. No test user known to the model: a NOTICE that says why the metrics are NULL.
SELECT r->>'users' AS users, r->>'ndcg' AS ndcg
FROM (SELECT recsys.ranking_metrics(shop.m, t.u, t.i) AS r FROM shop, (VALUES (1, 'B00186'), (2, 'B00187')) t(u, i)) s;

-- 7. No output column of any recsys function is a reserved word.
SELECT p.proname, c AS column_name, k.catdesc
FROM pg_proc p, unnest(p.proargnames) WITH ORDINALITY AS n(c, pos), pg_get_keywords() k
WHERE p.pronamespace = 'recsys'::regnamespace AND p.proargmodes IS NOT NULL
  AND p.proargmodes[n.pos] IN ('o', 't', 'b') AND k.word = c AND k.catcode IN ('R', 'T');

-- 8. \df recsys.* lists the public API only, every function with a comment.
SELECT count(*) AS without_comment FROM pg_proc p
WHERE p.pronamespace = 'recsys'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT count(*) AS support_functions_in_recsys FROM pg_proc p
WHERE p.pronamespace = 'recsys'::regnamespace AND (p.proname ~ '_(trans|combine|serialize|deserialize|final)$'
      OR p.proname IN ('model_in', 'model_out', 'model_recv', 'model_send'));

DROP OWNED BY recsys_plain;
DROP ROLE recsys_plain;

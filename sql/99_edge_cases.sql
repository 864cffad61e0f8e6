-- Edge cases of the argument handling: untyped literal IDs, and NULL arguments to the
-- non-STRICT forms (those taking a type witness, itself a NULL), which must behave like
-- the STRICT forms: a NULL model, ID, k or flag yields no rows; and the model cache
-- turned off. This file runs last: some of these statements crashed the backend.
SET recsys.threads = 1;
CREATE SCHEMA t99;
SET search_path = t99, public;

-- Untyped literals count as text: the model records text IDs.
SELECT recsys.model_info(m)->>'user_id_type' AS user_id_type, recsys.model_info(m)->>'item_id_type' AS item_id_type
FROM (SELECT recsys.train_als('a', 'b') AS m) s;
SELECT recsys.model_info(m)->>'user_id_type' AS user_id_type, recsys.model_info(m)->>'item_id_type' AS item_id_type
FROM (SELECT recsys.train_als(u, 'item') AS m FROM generate_series(1, 3) u) s;

CREATE TABLE r AS SELECT u, i FROM generate_series(1, 20) u, generate_series(1, 10) i WHERE (u * i) % 7 < 3;
CREATE TABLE m AS SELECT recsys.train_als('user ' || u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r;
-- the witness form works with non-NULL arguments
SELECT count(*) AS recommendations FROM m, recsys.recommend(m.m, 'user 1'::text, 3, NULL::int);
-- a NULL k, flag or user: no rows, as with the STRICT form
SELECT count(*) AS null_k FROM m, recsys.recommend(m.m, 'user 1'::text, NULL, NULL::int);
SELECT count(*) AS null_exclude_seen FROM m, recsys.recommend(m.m, 'user 1'::text, 3, NULL::int, NULL);
SELECT count(*) AS null_cold_start FROM m, recsys.recommend(m.m, 'nobody'::text, 3, NULL::int, true, NULL);
CREATE TABLE mi AS SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r;
SELECT count(*) AS null_int_user FROM mi, recsys.recommend(mi.m, NULL::int, 3, NULL::bigint);
SELECT count(*) AS null_text_user FROM m, recsys.recommend(m.m, NULL::text, 3, NULL::int);
SELECT count(*) AS null_model FROM recsys.recommend(NULL::recsys.model, 'user 1'::text, 3, NULL::int);
-- item_factors / user_factors with a type witness and a NULL model
SELECT count(*) AS null_model_items FROM recsys.item_factors(NULL::recsys.model, NULL::int);
SELECT count(*) AS null_model_users FROM recsys.user_factors(NULL::recsys.model, NULL::text);
-- Turning the model cache off (recsys.model_cache_size = 0) after a model was cached:
-- later calls must still read the model correctly.
CREATE TABLE small AS
  SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 1}'::jsonb) AS m
  FROM generate_series(1, 500) u, generate_series(1, 5) i;
SELECT pg_column_size(m) > 8000 AS stored_out_of_line FROM small;
SELECT recsys.score(m, 1, 1) IS NOT NULL AS scored FROM small;
SET recsys.model_cache_size = 0;
SELECT count(*) AS cache_off_1 FROM small, generate_series(1, 100) u, LATERAL recsys.recommend(small.m, u, 3, false) x;
SELECT count(*) AS cache_off_2 FROM small, generate_series(1, 100) u, LATERAL recsys.recommend(small.m, u, 3, false) x;
RESET recsys.model_cache_size;
-- A model trained without seen items cannot exclude them: an error, never seen items
-- returned silently; exclude_seen => false works.
CREATE TABLE noseen AS SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2, "store_seen": false}'::jsonb) AS m FROM r;
SELECT count(*) FROM noseen, recsys.recommend(noseen.m, 1, 3);
SELECT count(*) AS without_exclusion FROM noseen, recsys.recommend(noseen.m, 1, 3, false);
SELECT count(*) FROM noseen, recsys.recommend_all(noseen.m, 3, NULL::int);
SELECT recsys.ranking_metrics(noseen.m, r.u, r.i) FROM noseen, r;
SELECT (recsys.ranking_metrics(noseen.m, r.u, r.i, '{"exclude_seen": false}')->>'users')::int AS users FROM noseen, r;
-- Options must be the same on every row: NULL on some rows and a value on others is an error.
SELECT recsys.train_als(u, i, CASE WHEN u = 1 THEN NULL ELSE '{"factors": 2}'::jsonb END) FROM r;
SELECT recsys.train_als(u, i, CASE WHEN u = 1 THEN '{"factors": 2}'::jsonb END) FROM r;
-- Parameters stored as float print as typed; out-of-range weights print readably.
SELECT recsys.model_info(recsys.train_als(u, i, '{"regularization": 0.01, "init_scale": 0.01, "iterations": 1}'::jsonb))->'parameters'->'regularization' AS regularization FROM r;
SELECT recsys.train_als(1, 1, 1e300);
DROP SCHEMA t99 CASCADE;

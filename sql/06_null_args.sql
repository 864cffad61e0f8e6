-- NULL arguments to the non-STRICT forms (those taking a type witness, which is itself
-- a NULL): like the STRICT forms, a NULL model, ID, k or flag yields no rows. The
-- statements that could crash a backend come last.
SET recsys.threads = 1;
CREATE SCHEMA t06;
SET search_path = t06, public;
CREATE TABLE r AS SELECT u, i FROM generate_series(1, 20) u, generate_series(1, 10) i WHERE (u * i) % 7 < 3;
CREATE TABLE m AS SELECT recsys.train_als('user ' || u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r;
-- the witness form works with non-NULL arguments
SELECT count(*) AS recommendations FROM m, recsys.recommend(m.m, 'user 1'::text, 3, NULL::int);
-- a NULL k, flag or (integer) user: no rows, as with the STRICT form
SELECT count(*) AS null_k FROM m, recsys.recommend(m.m, 'user 1'::text, NULL, NULL::int);
SELECT count(*) AS null_exclude_seen FROM m, recsys.recommend(m.m, 'user 1'::text, 3, NULL::int, NULL);
SELECT count(*) AS null_cold_start FROM m, recsys.recommend(m.m, 'nobody'::text, 3, NULL::int, true, NULL);
CREATE TABLE mi AS SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r;
SELECT count(*) AS null_int_user FROM mi, recsys.recommend(mi.m, NULL::int, 3, NULL::bigint);
-- a NULL model or a NULL text user
SELECT count(*) AS null_text_user FROM m, recsys.recommend(m.m, NULL::text, 3, NULL::int);
SELECT count(*) AS null_model FROM recsys.recommend(NULL::recsys.model, 'user 1'::text, 3, NULL::int);
SELECT count(*) AS null_model_items FROM recsys.item_factors(NULL::recsys.model, NULL::int);
SELECT count(*) AS null_model_users FROM recsys.user_factors(NULL::recsys.model, NULL::text);
DROP SCHEMA t06 CASCADE;

-- Named recommenders (issue 14): create / alter / drop, retrain with a safe swap and a
-- held-out gate, rollback, serving by name (overloads, prepared statements, the cache
-- noticing a swap), the status view, recommendation views, and permissions with two
-- unprivileged roles. pg_cron itself is tested in test/integration/scheduled_retrain.sh
-- (this database is not pg_cron's): here, a schedule without pg_cron is an error.
\set SHOW_CONTEXT never
SET client_min_messages = notice;

CREATE TABLE rec_events AS
  SELECT 'C' || lpad(u::text, 5, '0') AS customer, 'P' || ((u * 7 + g * 13) % 40) AS product,
         (1 + (u + g) % 5)::integer AS stars
  FROM generate_series(1, 60) u, generate_series(1, 8) g;
CREATE TABLE rec_products AS
  SELECT 'P' || i AS product, jsonb_build_object('category', 'c' || (i % 5), 'tags', jsonb_build_array('t' || (i % 3))) AS features
  FROM generate_series(0, 39) i;

-- Bad definitions: an error, and nothing stored.
SELECT recsys.create_recommender('shop', 'nope', 'SELECT customer, product FROM rec_events');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '{"factorz": 4}');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '{"factors": -1}');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '[1]');
SELECT recsys.create_recommender('shop', 'als', 'DELETE FROM rec_events');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events; SELECT 1');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer FROM rec_events');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product, stars, 1 FROM rec_events');
SELECT recsys.create_recommender('shop', 'als', 'SELECT ARRAY[customer], product FROM rec_events');
SELECT recsys.create_recommender('shop', 'mf', 'SELECT customer, product FROM rec_events');
SELECT recsys.create_recommender('shop', 'content', 'SELECT customer, product FROM rec_events');
SELECT recsys.create_recommender('shop', 'als', 'SELECT * FROM no_such_table');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '{"gate": {"metrik": "ndcg"}}');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '{"gate": {"metric": "rmse"}}');
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '{"gate": {"test_fraction": 1}}');
SELECT recsys.create_recommender('shop', 'content', 'SELECT product, features FROM rec_products', '{"gate": {}}');
SELECT recsys.create_recommender('', 'als', 'SELECT customer, product FROM rec_events');
SELECT recsys.create_recommender(repeat('x', 64), 'als', 'SELECT customer, product FROM rec_events');
-- A schedule needs pg_cron in this database: the error says how to enable it.
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product FROM rec_events', '{}', '* * * * *');
SELECT count(*) AS stored FROM recsys_internal.recommenders;

-- A recommender; its name is then taken.
SELECT recsys.create_recommender('shop', 'als', 'SELECT customer, product, stars FROM rec_events',
                                 '{"factors": 4, "iterations": 3, "seed": 1}');
SELECT recsys.create_recommender('shop', 'popularity', 'SELECT customer, product FROM rec_events');
SELECT name, owner, algorithm, schedule, trained_at IS NULL AS untrained, model_bytes, has_previous, swaps,
       source_tables, last_error
FROM recsys.recommenders;
-- Not trained yet: serving says what to do.
SELECT * FROM recsys.recommend('shop', 'C00001', 3);
SELECT * FROM recsys.recommend('nobody', 'C00001', 3);

CALL recsys.retrain('shop');
SELECT name, rows_trained, model_bytes > 0 AS has_bytes, train_seconds >= 0 AS timed, trained_at IS NOT NULL AS trained,
       age >= '0'::interval AS aged, has_previous, swaps, last_error, last_attempt_at IS NOT NULL AS attempted
FROM recsys.recommenders;
CREATE TABLE rec_fp AS SELECT recsys.model_info('shop')->>'fingerprint' AS fp;

-- Serving by name equals serving the model, for every serving function.
CREATE TEMP TABLE live AS SELECT model FROM recsys_internal.recommenders WHERE name = 'shop';
SELECT (SELECT array_agg(item_id) FROM recsys.recommend('shop', 'C00001', 5)) =
       (SELECT array_agg(item_id) FROM live, recsys.recommend(live.model, 'C00001', 5)) AS recommend_same,
       (SELECT array_agg(item_id) FROM recsys.similar_items('shop', 'P1', 3)) =
       (SELECT array_agg(item_id) FROM live, recsys.similar_items(live.model, 'P1', 3)) AS similar_items_same,
       (SELECT array_agg(user_id) FROM recsys.similar_users('shop', 'C00002', 3)) =
       (SELECT array_agg(user_id) FROM live, recsys.similar_users(live.model, 'C00002', 3)) AS similar_users_same,
       recsys.score('shop', 'C00001'::text, 'P1'::text) = (SELECT recsys.score(model, 'C00001'::text, 'P1'::text) FROM live) AS score_same,
       (SELECT count(*) FROM recsys.item_factors('shop')) AS items,
       (SELECT count(*) FROM recsys.user_factors('shop', NULL::text)) AS users,
       (SELECT count(*) FROM recsys.recommend_all('shop', 2)) AS all_rows,
       (SELECT count(*) FROM recsys.recommend_all('shop', 2, NULL::text, false, ARRAY['C00001'])) AS some_rows,
       (SELECT array_agg(item_id) FROM recsys.recommend('shop', 'C00001'::text, 3, NULL::text)) =
       (SELECT array_agg(item_id) FROM live, recsys.recommend(live.model, 'C00001'::text, 3, NULL::text)) AS witness_same,
       recsys.model_info('shop') = (SELECT recsys.model_info(model) FROM live) AS info_same,
       recsys_internal.resolve_recommender('shop') OPERATOR(recsys.=) (SELECT model FROM live) AS resolve_same;
-- Untyped literals resolve to the name forms; so do the parameters of prepared statements.
SELECT pg_typeof(item_id) FROM recsys.recommend('shop', 'C00001', 1);
SELECT p.oid::regprocedure
FROM pg_proc p
WHERE p.oid = (SELECT 'recsys.recommend(text, text, integer, boolean, boolean)'::regprocedure);
PREPARE by_name(text, text, integer) AS SELECT item_id FROM recsys.recommend($1, $2, $3);
EXECUTE by_name('shop', 'C00001', 2);
PREPARE untyped AS SELECT count(*) FROM recsys.recommend('shop', $1, 3);
EXECUTE untyped('C00002');
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM recsys.recommend('shop', 'C00001', 10);
-- A model value still goes to the model form.
SELECT count(*) FROM live, recsys.recommend(live.model, 'C00001', 3);
-- Errors of the model form come through unchanged.
SELECT * FROM recsys.similar_items('shop', 'P999', 3);
SELECT * FROM recsys.recommend('shop', 'C00001', 0);
SELECT * FROM recsys.recommend(NULL::text, 'C00001', 3);

-- A retrain swaps a new model in; this backend's cache notices at once (the same
-- transaction, too), and a prepared statement serves the new model.
INSERT INTO rec_events SELECT 'C00099', 'P' || g, 5 FROM generate_series(1, 6) g;
BEGIN;
CALL recsys.retrain('shop');
SELECT count(*) AS new_user_served FROM recsys.recommend('shop', 'C00099', 3, cold_start => false);
COMMIT;
SELECT recsys.model_info('shop')->>'fingerprint' <> fp AS changed, recsys.model_info('shop')->>'users' AS users FROM rec_fp;
EXECUTE untyped('C00099');
SELECT rows_trained, has_previous, swaps, last_error FROM recsys.recommenders WHERE name = 'shop';
-- A retrain rolled back leaves the live model, in this backend's cache too.
BEGIN;
INSERT INTO rec_events SELECT 'C00098', 'P' || g, 5 FROM generate_series(1, 6) g;
CALL recsys.retrain('shop');
SELECT recsys.model_info('shop')->>'users' AS users_inside;
ROLLBACK;
SELECT swaps, recsys.model_info('shop')->>'users' AS users_after,
       recsys_internal.resolve_recommender('shop') OPERATOR(recsys.=) (SELECT model FROM recsys_internal.recommenders WHERE name = 'shop') AS cache_matches
FROM recsys.recommenders WHERE name = 'shop';

-- Rollback: the previous model serves again; a second rollback undoes the first.
CALL recsys.rollback('shop');
SELECT recsys.model_info('shop')->>'fingerprint' = fp AS previous_back, recsys.model_info('shop')->>'users' AS users FROM rec_fp;
CALL recsys.rollback('shop');
SELECT recsys.model_info('shop')->>'users' AS users, rows_trained FROM recsys.recommenders WHERE name = 'shop';
CALL recsys.rollback('nobody');

-- A failing retrain is recorded and the live model keeps serving: no rows, a query that
-- fails when it runs, a query whose columns no longer fit.
CREATE TABLE rec_fp2 AS SELECT recsys.model_info('shop')->>'fingerprint' AS fp;
SELECT recsys.alter_recommender('shop', source_query => 'SELECT customer, product, stars FROM rec_events WHERE stars > 99');
CALL recsys.retrain('shop');
SELECT last_error, last_error_at IS NOT NULL AS when_recorded FROM recsys.recommenders WHERE name = 'shop';
SELECT recsys.alter_recommender('shop', source_query => 'SELECT customer, product, 1 / (stars - stars) FROM rec_events');
CALL recsys.retrain('shop');
SELECT last_error FROM recsys.recommenders WHERE name = 'shop';
SELECT recsys.alter_recommender('shop', source_query => 'SELECT customer, product, stars FROM rec_events');
ALTER TABLE rec_events RENAME COLUMN stars TO rating;
CALL recsys.retrain('shop');
SELECT last_error FROM recsys.recommenders WHERE name = 'shop';
ALTER TABLE rec_events RENAME COLUMN rating TO stars;
SELECT recsys.model_info('shop')->>'fingerprint' = fp AS live_untouched, count(*) AS still_serving
FROM rec_fp2, recsys.recommend('shop', 'C00001', 3) GROUP BY fp;
CALL recsys.retrain('shop');
SELECT last_error, swaps FROM recsys.recommenders WHERE name = 'shop';

-- alter_recommender: bad changes are refused and change nothing.
SELECT recsys.alter_recommender('shop', options => '{"factorz": 1}');
SELECT recsys.alter_recommender('shop', source_query => 'SELECT customer FROM rec_events');
SELECT recsys.alter_recommender('shop', source_query => 'UPDATE rec_events SET stars = 1');
SELECT recsys.alter_recommender('shop', schedule => '*/5 * * * *');
SELECT recsys.alter_recommender('nobody', options => '{}');
SELECT recsys.alter_recommender('shop', options => '{"factors": 3, "iterations": 2, "seed": 2}');
SELECT options, source_query, schedule FROM recsys.recommenders WHERE name = 'shop';
-- The query is stored with the search_path it was written under.
CREATE SCHEMA rec_other;
CREATE TABLE rec_other.rec_events AS SELECT * FROM rec_events WHERE customer < 'C00010';
SET search_path = rec_other, public;
SELECT recsys.alter_recommender('shop', source_query => 'SELECT customer, product, stars FROM rec_events');
RESET search_path;
CALL recsys.retrain('shop');
SELECT rows_trained, source_tables FROM recsys.recommenders WHERE name = 'shop';
SELECT recsys.alter_recommender('shop', source_query => 'SELECT customer, product, stars FROM public.rec_events');
CALL recsys.retrain('shop');
SELECT rows_trained, source_tables FROM recsys.recommenders WHERE name = 'shop';

-- The held-out gate: the first model sets the bar; a model whose held-out metric falls
-- below min_ratio of the live one's is refused.
SELECT recsys.create_recommender('gated', 'item_knn', 'SELECT customer, product FROM rec_events',
                                 '{"gate": {"metric": "recall", "min_ratio": 0.9, "test_fraction": 0.25, "k": 5, "seed": 7}}');
CALL recsys.retrain('gated');
SELECT metric > 0 AS measured, last_error, swaps FROM recsys.recommenders WHERE name = 'gated';
CREATE TABLE rec_fp3 AS SELECT recsys.model_info('gated')->>'fingerprint' AS fp;
-- Noise: every (user, item) pair is a coin flip.
SELECT recsys.alter_recommender('gated', source_query =>
  'SELECT customer, ''P'' || (abs(hashtext(customer || product)) % 40) FROM rec_events');
CALL recsys.retrain('gated');
SELECT last_error LIKE 'held-out recall % is below 0.9 x % of the live model' AS gate_refused, swaps,
       recsys.model_info('gated')->>'fingerprint' = (SELECT fp FROM rec_fp3) AS live_untouched
FROM recsys.recommenders WHERE name = 'gated';
SELECT recsys.alter_recommender('gated', source_query => 'SELECT customer, product FROM rec_events');
CALL recsys.retrain('gated');
SELECT last_error, swaps FROM recsys.recommenders WHERE name = 'gated';

-- Other algorithms.
SELECT recsys.create_recommender('ratings', 'mf', 'SELECT customer, product, stars FROM rec_events', '{"factors": 2, "epochs": 3, "seed": 1}');
SELECT recsys.create_recommender('base', 'baseline', 'SELECT customer, product, stars FROM rec_events');
SELECT recsys.create_recommender('top', 'popularity', 'SELECT customer, product FROM rec_events');
SELECT recsys.create_recommender('knn', 'item_knn', 'SELECT customer, product FROM rec_events', '{"neighbours": 5}');
SELECT recsys.create_recommender('catalog', 'content', 'SELECT product, features FROM rec_products');
CALL recsys.retrain('ratings');
CALL recsys.retrain('base');
CALL recsys.retrain('top');
CALL recsys.retrain('knn');
CALL recsys.retrain('catalog');
SELECT name, algorithm, rows_trained, last_error FROM recsys.recommenders ORDER BY name;
SELECT round(recsys.predict('ratings', 'C00001'::text, 'P1'::text)::numeric, 3) =
       round((SELECT recsys.predict(model, 'C00001'::text, 'P1'::text) FROM recsys_internal.recommenders WHERE name = 'ratings')::numeric, 3)
       AS predict_same,
       (SELECT count(*) FROM recsys.recommend('top', 'C00001', 3)) AS top_rows,
       (SELECT count(*) FROM recsys.recommend_for_items('knn', ARRAY['P1', 'P2'], 3)) AS basket_rows,
       (SELECT count(*) FROM recsys.recommend_for_items('catalog', ARRAY['P1'], ARRAY[2.0::float8], 3)) AS weighted_basket_rows,
       (SELECT count(*) FROM recsys.recommend_content('catalog', ARRAY['P1', 'P2'], 3)) AS content_rows,
       (SELECT count(*) FROM recsys.recommend_content('catalog', ARRAY['P1'], ARRAY[1.0::float8], 3)) AS weighted_content_rows,
       recsys.content_similarity('catalog', 'P1'::text, 'P6'::text) > 0 AS similar_content,
       (SELECT count(*) FROM recsys.recommend_all('top', 2, NULL::text, NULL::text)) AS all_rows_typed,
       (SELECT count(*) FROM recsys.recommend_all('top', 2, NULL::text, NULL::text, true, ARRAY['C00001'])) AS some_rows_typed,
       (SELECT count(*) FROM recsys.item_factors('ratings', NULL::text)) AS item_factor_rows,
       (SELECT count(*) FROM recsys.user_factors('ratings')) AS user_factor_rows,
       (SELECT count(*) FROM recsys.similar_items('catalog', 'P1', 2)) AS content_neighbours;
-- An algorithm's limits come through: a content model has no users.
SELECT * FROM recsys.recommend('catalog', 'C00001', 3);
SELECT recsys.create_recommendation_view('catalog', 3, 'rec_catalog_view');

-- Recommendation views for BI tools: the source's ID types, a unique index (so REFRESH
-- ... CONCURRENTLY works), refreshed by every successful retrain and rollback.
CREATE TABLE rec_int_events AS SELECT u AS user_id, (u * 3 + g) % 25 AS item_id FROM generate_series(1, 30) u, generate_series(1, 5) g;
SELECT recsys.create_recommender('ints', 'popularity', 'SELECT user_id, item_id FROM rec_int_events');
SELECT recsys.create_recommendation_view('ints', 3, 'rec_ints_top3');  -- no model yet: no data
SELECT relispopulated FROM pg_class WHERE oid = 'rec_ints_top3'::regclass;
CALL recsys.retrain('ints');
SELECT count(*) AS rows, count(DISTINCT user_id) AS users, min(rank), max(rank) FROM rec_ints_top3;
-- Integer IDs by name: an untyped name with an integer user resolves to the name form.
SELECT pg_typeof(item_id), count(*) FROM recsys.recommend('ints', 1, 3) GROUP BY 1;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'rec_ints_top3'::regclass AND attnum > 0 ORDER BY attnum;
SELECT indexdef FROM pg_indexes WHERE tablename = 'rec_ints_top3';
REFRESH MATERIALIZED VIEW CONCURRENTLY rec_ints_top3;
SELECT recsys.create_recommendation_view('shop', 2, 'rec_other.rec_shop_top2');
SELECT pg_typeof(user_id), pg_typeof(item_id), count(*) FROM rec_other.rec_shop_top2 GROUP BY 1, 2;
-- A new user appears in the view after the next retrain.
INSERT INTO rec_events SELECT 'C00777', 'P' || g, 5 FROM generate_series(1, 3) g;
SELECT count(*) AS before_retrain FROM rec_other.rec_shop_top2 WHERE user_id = 'C00777';
CALL recsys.retrain('shop');
SELECT count(*) AS after_retrain FROM rec_other.rec_shop_top2 WHERE user_id = 'C00777';
CALL recsys.rollback('shop');
SELECT count(*) AS after_rollback FROM rec_other.rec_shop_top2 WHERE user_id = 'C00777';
SELECT * FROM recsys_internal.recommendation_views ORDER BY view_schema, view_name;
SELECT recsys.create_recommendation_view('shop', 0, 'rec_bad');
SELECT recsys.create_recommendation_view('shop', 2, 'a.b.c');
SELECT recsys.create_recommendation_view('nobody', 2, 'rec_bad');
-- A dropped view is forgotten at the next retrain.
DROP MATERIALIZED VIEW rec_ints_top3;
CALL recsys.retrain('ints');
SELECT count(*) AS ints_views FROM recsys_internal.recommendation_views WHERE recommender = 'ints';
-- drop_recommender keeps views unless told to drop them.
SELECT recsys.drop_recommender('shop');
SELECT recsys.drop_recommender('shop', cascade => true);
SELECT to_regclass('rec_other.rec_shop_top2') AS view_gone, count(*) AS left_over FROM recsys_internal.recommendation_views;
SELECT recsys.drop_recommender('shop');
SELECT * FROM recsys.recommend('shop', 'C00001', 3);

-- The schedule's next run (pg_cron 1.4 reads schedules in UTC).
SELECT s, recsys_internal.cron_next(s, '2026-03-14 10:07:30+00') AT TIME ZONE 'UTC' AS next_run
FROM unnest(ARRAY['* * * * *', '*/15 * * * *', '0 3 * * *', '30 4 1 * *', '0 0 * * 0', '0 0 * * 7', '5/20 * * * *',
                  '0 12 13 * 5', '0 9-17/4 * 6 1-5', '59 23 31 12 *', '30 seconds', '@daily', 'x * * * *', '61 * * * *']) s;

-- Permissions, with two unprivileged roles.
CREATE ROLE rec_alice;
CREATE ROLE rec_bob;
CREATE SCHEMA rec_alice AUTHORIZATION rec_alice;
GRANT USAGE ON SCHEMA recsys TO rec_alice, rec_bob;
GRANT SELECT ON rec_events TO rec_alice;
SET ROLE rec_alice;
CREATE TABLE rec_alice.events AS SELECT * FROM rec_events WHERE customer <= 'C00030';
-- The query asks for the rows only its owner may see (current_user is the owner when it runs).
SELECT recsys.create_recommender('alice_shop', 'popularity',
  'SELECT customer, product FROM rec_alice.events WHERE current_user = ''rec_alice''');
CALL recsys.retrain('alice_shop');
SELECT name, owner, rows_trained FROM recsys.recommenders;
SELECT count(*) AS alice_serves FROM recsys.recommend('alice_shop', 'C00001', 3);
-- alice may not touch another role's recommender, nor see it.
SELECT count(*) AS visible FROM recsys.recommenders WHERE name <> 'alice_shop';
SELECT * FROM recsys.recommend('top', 'C00001', 3);
CALL recsys.retrain('top');
SELECT recsys.drop_recommender('top');
SELECT recsys.create_recommender('top', 'popularity', 'SELECT customer, product FROM rec_alice.events');
RESET ROLE;

SET ROLE rec_bob;
-- bob may not serve alice's recommender, nor retrain, alter, drop, grant or see it.
SELECT * FROM recsys.recommend('alice_shop', 'C00001', 3);
CALL recsys.retrain('alice_shop');
SELECT recsys.alter_recommender('alice_shop', source_query => 'SELECT customer, product FROM rec_alice.events');
SELECT recsys.drop_recommender('alice_shop');
SELECT recsys.grant_recommender('alice_shop', 'rec_bob');
CALL recsys.rollback('alice_shop');
SELECT count(*) AS visible FROM recsys.recommenders;
SELECT count(*) AS catalog_rows FROM recsys_internal.recommenders;
-- nor plant a query of his in her recommender, nor make one in her name.
UPDATE recsys_internal.recommenders SET source_query = 'SELECT 1, 1' WHERE name = 'alice_shop';
INSERT INTO recsys_internal.recommenders (name, owner, algorithm, source_query, search_path)
  VALUES ('bobs', 'rec_alice', 'popularity', 'SELECT 1, 1', 'public');
RESET ROLE;

-- Granted, bob may serve and see it, but still not retrain or change it.
SET ROLE rec_alice;
SELECT recsys.grant_recommender('alice_shop', 'rec_bob');
SELECT recsys.grant_recommender('alice_shop', 'rec_bob');  -- once only
SELECT readers FROM recsys.recommenders WHERE name = 'alice_shop';
RESET ROLE;
SET ROLE rec_bob;
SELECT count(*) AS bob_serves FROM recsys.recommend('alice_shop', 'C00001', 3);
SELECT name, owner FROM recsys.recommenders;
CALL recsys.retrain('alice_shop');
UPDATE recsys_internal.recommenders SET source_query = 'SELECT 1, 1' WHERE name = 'alice_shop';
RESET ROLE;
-- Revoked: denied again (the grant is checked on every call).
SET ROLE rec_alice;
SELECT recsys.revoke_recommender('alice_shop', 'rec_bob');
RESET ROLE;
SET ROLE rec_bob;
SELECT * FROM recsys.recommend('alice_shop', 'C00001', 3);
RESET ROLE;
-- A superuser's retrain (a pg_cron job of another role, say) runs alice's query as alice:
-- her query sees its rows, and the work is credited to her recommender.
CALL recsys.retrain('alice_shop');
SELECT rows_trained, last_error, swaps FROM recsys.recommenders WHERE name = 'alice_shop';
SELECT current_user;
-- The owner drops it.
SET ROLE rec_alice;
SELECT recsys.drop_recommender('alice_shop');
RESET ROLE;

-- Not listed by \df recsys.*: the internals.
SELECT count(*) AS internal_public FROM pg_proc WHERE pronamespace = 'recsys'::regnamespace
  AND proname IN ('check_definition', 'set_schedule', 'trainer_sql', 'refresh_views', 'record_failure', 'cron_status',
                  'cron_next', 'resolve_recommender', 'source_inserts', 'recommenders_changed');
-- Every public function has a comment, and no SQL or PL/pgSQL function of recsys runs
-- with an unpinned search_path except the wrappers that hand the caller's on.
SELECT p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'recsys'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;
SELECT c.oid::regclass FROM pg_class c
WHERE c.relnamespace IN ('recsys'::regnamespace, 'recsys_internal'::regnamespace) AND c.relkind IN ('r', 'v')
  AND obj_description(c.oid, 'pg_class') IS NULL;
SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace IN ('recsys'::regnamespace, 'recsys_internal'::regnamespace) AND l.lanname IN ('sql', 'plpgsql')
  AND p.proconfig IS NULL ORDER BY 1;

-- Clean up.
SELECT recsys.drop_recommender(name, true) FROM recsys_internal.recommenders ORDER BY name;
REVOKE SELECT ON rec_events FROM rec_alice;
DROP SCHEMA rec_alice CASCADE;
DROP SCHEMA rec_other CASCADE;
REVOKE USAGE ON SCHEMA recsys FROM rec_alice, rec_bob;
DROP ROLE rec_alice;
DROP ROLE rec_bob;
DROP TABLE rec_events, rec_products, rec_int_events, rec_fp, rec_fp2, rec_fp3;

-- Parallel aggregation: partial states are built in workers, serialized, combined in the
-- leader; the model must be the one a serial plan trains. Row order must not matter.
SET recsys.threads = 1;
CREATE SCHEMA t03;
SET search_path = t03, public;

SELECT setseed(0.125);
CREATE TABLE big AS
  SELECT CASE WHEN n % 997 = 0 THEN NULL ELSE (random() * 1999)::int + 1 END AS u,
         (random() * random() * 499)::int + 1 AS i,
         (1 + n % 3)::float8 AS w,
         n % 4 AS g
  FROM generate_series(1, 100000) n;
ANALYZE big;

-- EXPLAIN ANALYZE with the numbers that vary between runs masked.
CREATE FUNCTION plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || query LOOP
    RETURN NEXT regexp_replace(line, 'rows=\d+', 'rows=N', 'g');
  END LOOP;
END $$;

SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- all rows go through the workers, so the serialize / combine path is always taken
SET parallel_leader_participation = off;

EXPLAIN (COSTS OFF) SELECT recsys.train_als(u, i) FROM big;
SELECT * FROM plan($$SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) FROM big$$);

EXPLAIN (COSTS OFF) CREATE TABLE par AS
  SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) AS int_model FROM big;
CREATE TABLE par AS
  SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) AS int_model,
         recsys.train_als('u' || u, 'i' || i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) AS text_model,
         recsys.train_als(u, i) AS default_model
  FROM big;
EXPLAIN (COSTS OFF)
  SELECT g, recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM big GROUP BY g;
CREATE TABLE par_groups AS
  SELECT g, recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM big GROUP BY g;

SET max_parallel_workers_per_gather = 0;
EXPLAIN (COSTS OFF) SELECT recsys.train_als(u, i) FROM big;
CREATE TABLE ser AS
  SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) AS int_model,
         recsys.train_als('u' || u, 'i' || i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) AS text_model,
         recsys.train_als(u, i) AS default_model
  FROM big;
CREATE TABLE ser_groups AS
  SELECT g, recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM big GROUP BY g;

-- The same models: fingerprints, counts and skipped rows agree.
SELECT recsys.model_info(p.int_model)->>'fingerprint' = recsys.model_info(s.int_model)->>'fingerprint' AS int_same,
       recsys.model_info(p.text_model)->>'fingerprint' = recsys.model_info(s.text_model)->>'fingerprint' AS text_same,
       recsys.model_info(p.default_model)->>'fingerprint' = recsys.model_info(s.default_model)->>'fingerprint' AS default_same,
       recsys.model_info(p.int_model)->'parameters'->'rows' AS rows,
       recsys.model_info(p.int_model)->'parameters'->'rows_skipped' AS rows_skipped,
       recsys.model_info(p.int_model)->'interactions' = recsys.model_info(s.int_model)->'interactions' AS same_interactions
FROM par p, ser s;
SELECT p.g, recsys.model_info(p.m)->>'fingerprint' = recsys.model_info(s.m)->>'fingerprint' AS same
FROM par_groups p JOIN ser_groups s USING (g) ORDER BY p.g;

-- Row order does not change the model.
SELECT setseed(0.5);
SELECT count(DISTINCT recsys.model_info(m)->>'fingerprint') AS distinct_fingerprints
FROM (SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb) AS m
      FROM (SELECT * FROM big ORDER BY random()) x
      UNION ALL
      SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb)
      FROM (SELECT * FROM big ORDER BY u, i) x
      UNION ALL
      SELECT recsys.train_als(u, i, w, '{"factors": 8, "iterations": 3, "seed": 9}'::jsonb ORDER BY i DESC, u DESC) FROM big
      UNION ALL
      SELECT int_model FROM ser) s;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP SCHEMA t03 CASCADE;

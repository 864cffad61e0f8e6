-- statement_timeout cancels training: during the training phase (small input, huge
-- work) and during ingest (huge input). The session stays usable, and a normal training
-- afterwards succeeds.
SET recsys.threads = 2;
CREATE SCHEMA t05;
SET search_path = t05, public;
SELECT setseed(0.9);
CREATE TABLE r AS SELECT (random() * 1999)::int AS u, (random() * 1999)::int AS i FROM generate_series(1, 20000);
CREATE TABLE opts AS SELECT '{"factors": 512, "iterations": 10000}'::jsonb AS o;

-- Reading 20000 rows takes milliseconds; the training would take hours.
SET statement_timeout = '1s';
SELECT recsys.train_als(u, i, o) IS NOT NULL FROM r, opts GROUP BY o;
RESET statement_timeout;
SELECT count(*) AS session_ok FROM r;

-- The same inside a subtransaction: the cancel is caught, the state freed, and the
-- error comes promptly (less than 4 s after the start: within 3 s of the timeout).
SET statement_timeout = '1s';
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM recsys.train_als(u, i, o) FROM t05.r, t05.opts GROUP BY o;
  RAISE NOTICE 'training was not cancelled';
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'cancelled within 4 s: %', clock_timestamp() - t0 < interval '4 s';
END $$;
RESET statement_timeout;

-- Cancelled while reading rows: 40 million joined rows take far more than 0.3 s to read
-- (and the training itself would be quick).
SET statement_timeout = '300ms';
SELECT recsys.train_als(u * 2000 + g, i, '{"factors": 2, "iterations": 1}'::jsonb) IS NOT NULL
FROM r, generate_series(1, 2000) g;
RESET statement_timeout;

-- Training still works, and is unaffected by the cancelled runs.
SELECT (recsys.model_info(m)->>'users')::int = (SELECT count(DISTINCT u) FROM r) AS trained,
       recsys.model_info(m)->'iterations_run' AS iterations_run
FROM (SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r) s;
SELECT count(DISTINCT recsys.model_info(m)->>'fingerprint') AS distinct_fingerprints
FROM (SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r
      UNION ALL SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) FROM r) s;
DROP SCHEMA t05 CASCADE;

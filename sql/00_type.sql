-- recsys.model: the text form round trip, model_info, and rejection of malformed input.
-- Fingerprints and factor values depend on the CPU's floating point (FMA, vector
-- width), so they are compared, never printed.
SET recsys.threads = 1;
CREATE SCHEMA t00;
SET search_path = t00, public;

SELECT setseed(0.25);
CREATE TABLE r AS
  SELECT (random() * 40)::int + 1 AS u, (random() * 60)::int + 1 AS i FROM generate_series(1, 1000);
CREATE TABLE m AS
  SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 4, "seed": 7}'::jsonb) AS m FROM r;

-- Text round trip: same text, same fingerprint, same recommendations.
SELECT m::text LIKE 'recsys:%' AS has_prefix,
       m::text::recsys.model::text = m::text AS text_round_trip,
       recsys.model_info(m::text::recsys.model)->>'fingerprint' = recsys.model_info(m)->>'fingerprint' AS same_fingerprint,
       recsys.model_info(m)->>'fingerprint' ~ '^[0-9a-f]{16}$' AS fingerprint_is_hex
FROM m;
CREATE TABLE m2 AS SELECT m::text::recsys.model AS m FROM m;
SELECT (SELECT array_agg(item_id) FROM recsys.recommend(m.m, 5, 10)) =
       (SELECT array_agg(item_id) FROM recsys.recommend(m2.m, 5, 10)) AS same_recommendations
FROM m, m2;

-- model_info: every key, and the values that do not depend on timings or the CPU.
SELECT array_agg(k ORDER BY k) AS info_keys FROM m, jsonb_object_keys(recsys.model_info(m)) k;
SELECT array_agg(k ORDER BY k) AS parameter_keys FROM m, jsonb_object_keys(recsys.model_info(m)->'parameters') k;
SELECT info->>'algorithm' AS algorithm,
       info->>'format_version' AS format_version,
       (info->>'users')::int = (SELECT count(DISTINCT u) FROM r) AS users_ok,
       (info->>'items')::int = (SELECT count(DISTINCT i) FROM r) AS items_ok,
       (info->>'interactions')::int = (SELECT count(*) FROM (SELECT DISTINCT u, i FROM r) d) AS interactions_ok,
       info->>'factors' AS factors,
       info->>'user_id_type' AS user_id_type,
       info->>'item_id_type' AS item_id_type,
       (info->>'bytes')::bigint = (SELECT pg_column_size(m::text::recsys.model) FROM m) AS bytes_ok,
       info->'stores_seen_items' AS stores_seen_items,
       info->'iterations_run' AS iterations_run,
       jsonb_array_length(info->'history') AS history_length,
       (info->>'training_seconds')::float8 >= 0 AS seconds_ok,
       info->'final_loss' = info->'history'->3->'loss' AS final_loss_is_last
FROM (SELECT recsys.model_info(m) AS info FROM m) s;
SELECT h->>'iteration' AS iteration, (h->>'loss')::float8 > 0 AS loss_positive, (h->>'seconds')::float8 >= 0 AS seconds_ok
FROM m, jsonb_array_elements(recsys.model_info(m)->'history') h;
SELECT p->'factors' AS factors, p->'iterations' AS iterations, p->'seed' AS seed, p->'cg_steps' AS cg_steps,
       p->'alpha' AS alpha, round((p->>'regularization')::numeric, 6) AS regularization,
       round((p->>'init_scale')::numeric, 6) AS init_scale, p->'store_seen' AS store_seen, p->'rows' AS rows,
       p->'rows_skipped' AS rows_skipped, p->'negative_pairs' AS negative_pairs
FROM (SELECT recsys.model_info(m)->'parameters' AS p FROM m) s;

-- iterations 0: no history, no final loss; calculate_loss false: history without losses;
-- store_seen false: no seen items stored, so the value is smaller.
SELECT info->'iterations_run' AS iterations_run, info->'history' AS history, info->'final_loss' AS final_loss
FROM (SELECT recsys.model_info(recsys.train_als(u, i, '{"factors": 8, "iterations": 0}'::jsonb)) AS info FROM r) s;
SELECT info->'iterations_run' AS iterations_run, info->'final_loss' AS final_loss,
       (SELECT bool_and(h->'loss' = 'null') FROM jsonb_array_elements(info->'history') h) AS losses_null
FROM (SELECT recsys.model_info(recsys.train_als(u, i, '{"factors": 8, "iterations": 2, "calculate_loss": false}'::jsonb)) AS info FROM r) s;
SELECT info->'stores_seen_items' AS stores_seen_items, info->'parameters'->'store_seen' AS store_seen,
       (info->>'bytes')::int < (SELECT (recsys.model_info(m)->>'bytes')::int FROM m) AS smaller
FROM (SELECT recsys.model_info(recsys.train_als(u, i, '{"factors": 8, "iterations": 4, "store_seen": false}'::jsonb)) AS info FROM r) s;

-- NULL in, NULL out.
SELECT recsys.model_info(NULL) IS NULL AS info_null, NULL::text::recsys.model IS NULL AS cast_null;

-- Malformed text input: every one is a clean ERROR.
SELECT ''::recsys.model;
SELECT 'x'::recsys.model;
SELECT 'RECSYS:AAAA'::recsys.model;
SELECT ' recsys:AAAA'::recsys.model;
SELECT 'recsys:'::recsys.model;
SELECT 'recsys:abc'::recsys.model;
SELECT 'recsys:ab$d'::recsys.model;
SELECT 'recsys:AAAA'::recsys.model;
SELECT 'recsys:AAAAAAAAAAAAAAAA'::recsys.model;
SELECT 'recsys:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'::recsys.model;
-- a valid model's text, cut short (once mid-group, once on a group boundary)
SELECT left(m::text, 100)::recsys.model FROM m;
SELECT left(m::text, 407)::recsys.model FROM m;
-- with extra characters appended, or a non-base64 character inside
SELECT (m::text || 'AAAA')::recsys.model FROM m;
SELECT overlay(m::text PLACING '*' FROM 200 FOR 1)::recsys.model FROM m;
-- one base64 character changed: in the middle of the value (factors) the checksum
-- catches it; in the header the magic number does
CREATE FUNCTION flip_char(s text, pos int) RETURNS text LANGUAGE sql AS $$
  SELECT overlay(s PLACING substr(a, ((strpos(a, substr(s, pos, 1)) - 1) # 1) + 1, 1) FROM pos FOR 1)
  FROM (SELECT 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'::text AS a) x $$;
SELECT flip_char(m::text, 8 + 4 * ((length(m::text) - 7) / 8)) <> m::text AS changed FROM m;
SELECT flip_char(m::text, 8 + 4 * ((length(m::text) - 7) / 8))::recsys.model FROM m;
SELECT flip_char(m::text, 10)::recsys.model FROM m;
-- the session is fine afterwards
SELECT count(*) AS recommendations FROM m, recsys.recommend(m.m, 5, 3);

DROP SCHEMA t00 CASCADE;

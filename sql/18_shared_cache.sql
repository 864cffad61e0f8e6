-- The shared model store (issue 16): out-of-line models are served from one file per
-- model under the data directory, mapped read-only by every backend. Results equal
-- uncached serving (recsys.model_cache_size = 0 detoasts into each call); a tiny budget
-- evicts files (results unchanged); a damaged file is refused and rebuilt; the store off,
-- a model larger than the budget and an unwritable directory fall back to the
-- per-backend cache with one NOTICE.
SET client_min_messages = notice;
CREATE TABLE sc_events AS
  SELECT 'user ' || (g % 300) AS u, 'item ' || ((g * 7 + g / 300) % 2500) AS i, 1 + g % 3 AS w
  FROM generate_series(1, 12000) g;
CREATE TABLE sc_models AS
  SELECT 'als' AS name, recsys.train_als(u, i, w, '{"factors": 8, "iterations": 2, "seed": 3, "similar_items": 10}'::jsonb) AS model FROM sc_events
  UNION ALL
  SELECT 'mf', recsys.train_mf(u, i, w, '{"factors": 8, "epochs": 3, "seed": 3, "similar_items": 10}'::jsonb) FROM sc_events
  UNION ALL
  SELECT 'knn', recsys.train_item_knn(u, i, '{"neighbours": 20}'::jsonb) FROM sc_events;
SELECT name, pg_column_size(model) > 8000 AS out_of_line FROM sc_models ORDER BY name;

-- Every serving path of the three models, as one text per model (for comparing).
CREATE FUNCTION sc_answers(which text) RETURNS text LANGUAGE sql AS $$
  SELECT concat_ws(' | ',
    (SELECT string_agg(r.item_id || ':' || r.score, ',') FROM sc_models m, recsys.recommend(m.model, 'user 7', 10) r WHERE m.name = which),
    (SELECT string_agg(r.item_id || ':' || r.score, ',') FROM sc_models m, recsys.recommend(m.model, 'user 123', 10, exclude => ARRAY['item 5', 'item 12']) r WHERE m.name = which),
    (SELECT string_agg(r.item_id || ':' || r.score, ',') FROM sc_models m, recsys.recommend(m.model, 'nobody', 5) r WHERE m.name = which),
    (SELECT string_agg(s.item_id || ':' || s.score, ',') FROM sc_models m, recsys.similar_items(m.model, 'item 42', 10) s WHERE m.name = which),
    (SELECT count(*) || ':' || sum(hashtext(a.user_id || a.item_id || a.score)) FROM sc_models m, recsys.recommend_all(m.model, 5) a WHERE m.name = which),
    (SELECT string_agg(r.item_id || ':' || r.score, ',') FROM sc_models m, recsys.recommend_for_items(m.model, ARRAY['item 1', 'item 2', 'item 3'], 10) r WHERE m.name = which),
    (SELECT recsys.score(m.model, 'user 7', 'item 42')::text FROM sc_models m WHERE m.name = which AND m.name <> 'knn'))
$$;

-- The store file this session maps for a model (serving it first).
CREATE FUNCTION sc_file(which text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM sc_answers(which);
  RETURN (SELECT s.entry FROM sc_models m JOIN recsys.cache_status() s
          ON s.fingerprint = recsys.model_info(m.model)->>'fingerprint' AND s.mapped_here WHERE m.name = which);
END $$;
-- Replaces a model's store file (by rename, as a mapped file must never change in place)
-- with a damaged copy made by a shell command on $F (the copy); the commands run without
-- the server's LD_PRELOAD (the AddressSanitizer run preloads its runtime).
CREATE FUNCTION sc_damage(which text, how text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE f text := sc_file(which);
BEGIN
  EXECUTE format('COPY (SELECT 1) TO PROGRAM %L',
                 'unset LD_PRELOAD; cd pg_recsys_cache && cp ' || f || ' damaged.part && ' || replace(how, '$F', 'damaged.part')
                 || ' && mv damaged.part ' || f);
END $$;
CREATE TABLE sc_builds (n bigint);

-- The reference: uncached serving (no store, no backend cache).
SET recsys.model_cache_size = 0;
CREATE TABLE sc_reference AS SELECT name, sc_answers(name) AS answers FROM sc_models;
RESET recsys.model_cache_size;

-- 1. The store serves them: identical results, one file per model, mapped here.
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT m.name, s.entry LIKE (recsys.model_info(m.model)->>'fingerprint') || '-%.model' AS named_by_fingerprint,
       s.bytes > pg_column_size(m.model) AS holds_model_and_order, s.mapped_here, s.readers >= 1 AS has_readers,
       s.last_used > now() - interval '1 hour' AS recently_used
FROM sc_models m JOIN recsys.cache_status() s
  ON s.fingerprint = recsys.model_info(m.model)->>'fingerprint' AND s.mapped_here
ORDER BY m.name;
SELECT enabled, entries >= 3 AS entries, bytes > 0 AS bytes, budget_bytes = 1073741824 AS default_budget,
       builds >= 3 AS built, mapped_here >= 3 AS mapped, local_hits > 0 AS answered_locally, fallbacks = 0 AS no_fallback
FROM recsys.shared_cache_stats();
CREATE TABLE sc_counts AS SELECT hits, builds, evictions FROM recsys.shared_cache_stats();

-- 2. A new session maps the files the first one built (a hit, no build), same results.
\c
SET client_min_messages = notice;
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT s.hits >= c.hits + 3 AS mapped_existing_files, s.builds = c.builds AS nothing_rebuilt, s.mapped_here >= 3 AS mapped
FROM recsys.shared_cache_stats() s, sc_counts c;

-- 3. A budget for about one model: each build evicts the least recently used files;
--    a backend still maps an evicted file and keeps serving it; results stay identical.
\c
SET client_min_messages = notice;
SET recsys.shared_cache_size = '1000kB';
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT (SELECT count(*) FROM sc_models m JOIN recsys.cache_status() s
          ON s.fingerprint = recsys.model_info(m.model)->>'fingerprint') <= 2 AS not_all_three_kept,
       bytes <= budget_bytes AS bytes_within_budget, evictions > (SELECT evictions FROM sc_counts) AS evicted
FROM recsys.shared_cache_stats();
SELECT m.name, sc_answers(m.name) = r.answers AS same_after_eviction
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
\c
SET client_min_messages = notice;
SET recsys.shared_cache_size = '1000kB';
SELECT m.name, sc_answers(m.name) = r.answers AS same_in_a_new_session
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;

-- 4. A damaged file is refused before use and rebuilt: one cut short, one with a header
--    byte changed; a byte of the model's data changed is seen only with
--    recsys.shared_cache_verify (the whole-value checksum: every byte read).
\c
SET client_min_messages = notice;
SELECT sc_damage('als', 'head -c 6000 ' || sc_file('als') || ' > $F');
SELECT sc_damage('mf', 'printf X | dd of=$F bs=1 seek=40 conv=notrunc 2>/dev/null');
SELECT sc_damage('knn', 'printf X | dd of=$F bs=1 seek=$(( $(stat -c %s $F) - 3000 )) conv=notrunc 2>/dev/null');
INSERT INTO sc_builds SELECT builds FROM recsys.shared_cache_stats();
\c
SET client_min_messages = notice;
SELECT m.name, sc_answers(m.name) = r.answers AS same_after_rebuild
FROM sc_models m JOIN sc_reference r USING (name) WHERE name IN ('als', 'mf') ORDER BY m.name;
SELECT s.builds - (SELECT max(n) FROM sc_builds) AS rebuilt FROM recsys.shared_cache_stats() s;
SELECT s.bytes > 6000 AS rebuilt_whole FROM sc_models m JOIN recsys.cache_status() s
  ON s.fingerprint = recsys.model_info(m.model)->>'fingerprint' AND s.mapped_here WHERE m.name = 'als';
\c
SET client_min_messages = notice;
INSERT INTO sc_builds SELECT builds FROM recsys.shared_cache_stats();
SET recsys.shared_cache_verify = on;
SELECT m.name, sc_answers(m.name) = r.answers AS same_after_verified_rebuild
FROM sc_models m JOIN sc_reference r USING (name) WHERE name = 'knn';
SELECT s.builds - (SELECT max(n) FROM sc_builds) AS rebuilt FROM recsys.shared_cache_stats() s;
RESET recsys.shared_cache_verify;

-- 5. Fallbacks, each with one NOTICE per backend: the store off ...
\c
SET client_min_messages = notice;
SET recsys.shared_cache_size = 0;
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT enabled, mapped_here, fallbacks >= 3 AS fell_back FROM recsys.shared_cache_stats();
-- ... a model larger than the budget ...
\c
SET client_min_messages = notice;
SET recsys.shared_cache_size = '64kB';
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT enabled, mapped_here FROM recsys.shared_cache_stats();
-- ... and a directory the server cannot write.
COPY (SELECT 1) TO PROGRAM 'chmod 500 pg_recsys_cache';
\c
SET client_min_messages = notice;
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT enabled, mapped_here FROM recsys.shared_cache_stats();
SELECT count(*) AS listed FROM recsys.cache_status();
COPY (SELECT 1) TO PROGRAM 'chmod 700 pg_recsys_cache';
\c
SET client_min_messages = notice;
SELECT m.name, sc_answers(m.name) = r.answers AS same_as_uncached
FROM sc_models m JOIN sc_reference r USING (name) ORDER BY m.name;
SELECT enabled, mapped_here >= 3 AS mapped FROM recsys.shared_cache_stats();

-- 6. Settings: the budget and verification are the superuser's.
CREATE ROLE sc_plain;
GRANT USAGE ON SCHEMA recsys TO sc_plain;
SET ROLE sc_plain;
SET recsys.shared_cache_size = '1GB';
SET recsys.shared_cache_verify = on;
SELECT count(*) >= 0 AS readable FROM recsys.cache_status();
RESET ROLE;
REVOKE USAGE ON SCHEMA recsys FROM sc_plain;
DROP ROLE sc_plain;
DROP TABLE sc_models, sc_reference, sc_counts, sc_builds, sc_events;
DROP FUNCTION sc_damage(text, text);
DROP FUNCTION sc_file(text);
DROP FUNCTION sc_answers(text);

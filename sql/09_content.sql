-- train_content / recommend_content / content_similarity / tokenize: item similarity
-- from metadata alone (categories, tags, free text in any language, numbers).
CREATE SCHEMA t09_content;
SET search_path = t09_content, public;
SET recsys.threads = 2;

-- A catalogue with 8 planted groups of 40 items. A group's items share (noisily) a
-- department (4 departments, so it alone cannot tell two groups apart; 10 % of items
-- carry a random one), 3 tags drawn from the group's 6, 3 description words drawn from
-- the group's 12, and a price band; plus a random common tag and filler words.
SELECT setseed(0.25);
CREATE TABLE products AS
SELECT i AS id, g,
  jsonb_build_object(
    'category', (ARRAY['Kitchen', 'Garden', 'Toys', 'Books'])[CASE WHEN random() < 0.9 THEN (g + 1) / 2 ELSE 1 + floor(random() * 4)::int END],
    'tags', (SELECT jsonb_agg(DISTINCT 'g' || g || '_' || floor(random() * 6 + 0 * n)::int) FROM generate_series(1, 3) s(n))
            || jsonb_build_array('c' || floor(random() * 20)::int),
    'description', (SELECT string_agg('w' || g || '_' || floor(random() * 12 + 0 * n)::int, ' ') FROM generate_series(1, 3) s(n))
                   || ' the quality product x' || floor(random() * 50)::int,
    'price', round((100 * g + 60 * random())::numeric, 2)) AS features
FROM (SELECT i, 1 + (i - 1) % 8 AS g FROM generate_series(1, 320) i) s;

CREATE TABLE m AS SELECT recsys.train_content(id, features, '{"weights": {"price": 0.5}, "neighbours": 20}') AS model
FROM products;
SELECT recsys.model_info(model)->>'algorithm' AS algorithm, recsys.model_info(model)->'items' AS items,
       recsys.model_info(model)->>'item_id_type' AS item_id_type,
       recsys.model_info(model)->'parameters'->'neighbour_pairs' AS neighbour_pairs,
       recsys.model_info(model)->'parameters'->'items_without_features' AS without_features
FROM m;
SELECT f.key AS field, f.value->'kinds' AS kinds, f.value->'weight' AS weight, f.value->'items' AS items
FROM m, jsonb_each(recsys.model_info(m.model)->'parameters'->'fields') f ORDER BY f.key;

-- Acceptance: from metadata alone, >= 90 % of every item's top-10 belong to its group
-- (computed here, not hard-coded); every group is recovered, not only on average.
CREATE TABLE top10 AS
SELECT p.id, p.g, r.item_id, q.g AS item_g, r.score
FROM products p, m, LATERAL recsys.recommend_content(m.model, ARRAY[p.id], 10) r JOIN products q ON q.id = r.item_id;
SELECT count(*) = 3200 AS ten_each, avg((g = item_g)::int) >= 0.9 AS same_group_at_least_90pct FROM top10;
SELECT g, avg((g = item_g)::int) >= 0.8 AS group_recovered FROM top10 GROUP BY g ORDER BY g;
SELECT count(*) AS self_returned FROM top10 WHERE id = item_id;
-- similar_items serves the stored neighbour lists: the same acceptance, and for a
-- catalogue under 2,000 items the same lists as the exact ranking above.
CREATE TABLE sim10 AS
SELECT p.id, p.g, s.item_id, q.g AS item_g, s.score, row_number() OVER (PARTITION BY p.id ORDER BY s.score DESC, s.item_id) AS rank
FROM products p, m, LATERAL recsys.similar_items(m.model, p.id, 10) s JOIN products q ON q.id = s.item_id;
SELECT count(*) = 3200 AS ten_each, avg((g = item_g)::int) >= 0.9 AS same_group_at_least_90pct FROM sim10;
SELECT count(*) AS differences FROM (SELECT id, item_id FROM sim10 EXCEPT SELECT id, item_id FROM top10) d;
SELECT max(abs(s.score - t.score)) < 1e-6 AS same_scores FROM sim10 s JOIN top10 t USING (id, item_id);
-- k beyond the stored "neighbours" (20) returns the stored list.
SELECT count(*) AS stored FROM m, recsys.similar_items(m.model, 1, 50) s;
-- recommend needs a user: on a content model it points to recommend_content.
SELECT * FROM m, recsys.recommend(m.model, 1, 5) r;
-- Scores are cosines: in (0, 1], non-increasing, and equal to content_similarity.
SELECT bool_and(score > 0 AND score <= 1.000001) AS cosines,
       bool_and(abs(score - recsys.content_similarity(m.model, id, item_id)) < 1e-5) AS equals_similarity
FROM top10, m;
SELECT count(*) AS order_violations FROM (
  SELECT score, lag(score) OVER (PARTITION BY p.id ORDER BY r.ord) AS prev
  FROM products p, m, LATERAL recsys.recommend_content(m.model, ARRAY[p.id], 10) WITH ORDINALITY r(item_id, score, ord)) s
WHERE score > prev + 1e-7;

-- content_similarity: 1 with itself, symmetric, NULL for an unknown item.
SELECT round(recsys.content_similarity(model, 1, 1)::numeric, 4) AS self,
       recsys.content_similarity(model, 1, 9) = recsys.content_similarity(model, 9, 1) AS symmetric,
       recsys.content_similarity(model, 1, 9) > recsys.content_similarity(model, 1, 2) AS same_group_closer,
       recsys.content_similarity(model, 1, 99999) IS NULL AS unknown_is_null
FROM m;

-- recommend_content from a history: three items of group 2 -> items of group 2.
SELECT count(*) AS n, avg((q.g = 2)::int) >= 0.9 AS mostly_group_2, bool_and(r.item_id NOT IN (2, 10, 18)) AS given_excluded
FROM m, recsys.recommend_content(m.model, ARRAY[2, 10, 18], 10) r JOIN products q ON q.id = r.item_id;
-- exclude_given => false: the given item itself comes first (cosine 1).
SELECT r.item_id, round(r.score::numeric, 4) AS score FROM m, recsys.recommend_content(m.model, ARRAY[2], 1, false) r;
-- Unknown items and NULL elements are skipped; nothing known -> no rows; an empty array -> no rows.
SELECT count(*) AS with_unknowns FROM m, recsys.recommend_content(m.model, ARRAY[2, NULL, 99999, 10, 18], 10) r;
SELECT (SELECT array_agg(item_id) FROM m, recsys.recommend_content(m.model, ARRAY[2, NULL, 99999, 10, 18], 10))
     = (SELECT array_agg(item_id) FROM m, recsys.recommend_content(m.model, ARRAY[2, 10, 18], 10)) AS same_as_known_only;
SELECT count(*) AS all_unknown FROM m, recsys.recommend_content(m.model, ARRAY[99998, 99999], 10) r;
SELECT count(*) AS empty_array FROM m, recsys.recommend_content(m.model, '{}'::int[], 10) r;
-- An item given twice counts twice (same as weight 2).
SELECT (SELECT array_agg(item_id) FROM m, recsys.recommend_content(m.model, ARRAY[2, 2, 3], 20))
     = (SELECT array_agg(item_id) FROM m, recsys.recommend_content(m.model, ARRAY[2, 3], ARRAY[2, 1], 20)) AS twice_is_weight_2;
-- IDs in the array's type: text and bigint arrays on an integer model.
SELECT pg_typeof(r.item_id) AS type, count(*) FROM m, recsys.recommend_content(m.model, ARRAY['2', '10'], 5) r GROUP BY 1;
SELECT pg_typeof(r.item_id) AS type, count(*) FROM m, recsys.recommend_content(m.model, ARRAY[2, 10]::bigint[], 5) r GROUP BY 1;
-- k larger than the catalogue: every item with a positive score, the given one excluded.
SELECT count(*) <= 319 AS at_most_catalogue, count(*) > 10 AS more_than_k10 FROM m, recsys.recommend_content(m.model, ARRAY[2], 100000) r;
-- Weights: a negative weight pushes a group away.
SELECT avg((q.g = 2)::int) AS share_group_2, avg((q.g = 3)::int) AS share_group_3
FROM m, recsys.recommend_content(m.model, ARRAY[2, 3], ARRAY[1, -0.9], 10) r JOIN products q ON q.id = r.item_id;
-- A join-friendly form: one user's history per row (here: users = groups of three items).
CREATE TABLE orders AS SELECT u, id AS item_id FROM generate_series(1, 4) u, products WHERE products.g = u AND products.id % 40 < 15;
SELECT o.u, count(*) AS recs, avg((q.g = o.u)::int) >= 0.9 AS own_group
FROM (SELECT u, array_agg(item_id) AS items FROM orders GROUP BY u) o, m,
     LATERAL recsys.recommend_content(m.model, o.items, 10) r JOIN products q ON q.id = r.item_id
GROUP BY o.u ORDER BY o.u;

-- Errors of recommend_content and content_similarity.
SELECT * FROM m, recsys.recommend_content(m.model, ARRAY[2], 0) r;
SELECT * FROM m, recsys.recommend_content(m.model, ARRAY[2, 3], ARRAY[1], 5) r;
SELECT * FROM m, recsys.recommend_content(m.model, ARRAY[2, 3], ARRAY[1, NULL], 5) r;
SELECT * FROM m, recsys.recommend_content(m.model, ARRAY[2, 3], ARRAY[1, 'NaN']::float8[], 5) r;
SELECT * FROM m, recsys.recommend_content(m.model, ARRAY[2, 3], ARRAY[1, 'Infinity']::float8[], 5) r;
SELECT count(*) FROM m, recsys.recommend_content(m.model, NULL::int[], 5) r;
CREATE TABLE als AS SELECT recsys.train_als(u, item_id, '{"factors": 4, "iterations": 1}'::jsonb) AS model FROM orders;
SELECT * FROM als, recsys.recommend_content(als.model, ARRAY[2], 5) r;
SELECT recsys.content_similarity(als.model, 2, 10) FROM als;

-- Item ID types: text, uuid, bigint, untyped literals; a row per feature group.
CREATE TABLE multi(item_id text, f jsonb);
INSERT INTO multi VALUES
  ('a', '{"category": "Kitchen"}'), ('a', '{"tags": ["steel", "pan"]}'), ('a', '{"price": 20}'),
  ('b', '{"category": "Kitchen", "tags": ["steel", "pot"], "price": 25}'),
  ('c', '{"category": "Garden", "tags": ["hose"], "price": 15}'),
  ('d', NULL), (NULL, '{"category": "Toys"}');
CREATE TABLE mt AS SELECT recsys.train_content(item_id, f) AS model FROM multi;
SELECT recsys.model_info(model)->'items' AS items, recsys.model_info(model)->>'item_id_type' AS id_type,
       recsys.model_info(model)->'parameters'->'rows_skipped' AS rows_skipped,
       recsys.model_info(model)->'parameters'->'items_without_features' AS without_features
FROM mt;
-- a's rows concatenate into one item: its vector equals b's but for the tag pan/pot.
SELECT r.item_id, round(r.score::numeric, 4) AS score FROM mt, recsys.recommend_content(mt.model, ARRAY['a'], 5) r;
SELECT round(recsys.content_similarity(model, 'a', 'b')::numeric, 4) AS a_b, recsys.content_similarity(model, 'a', 'd') AS a_featureless FROM mt;
SELECT count(*) AS featureless_has_no_neighbours FROM mt, recsys.recommend_content(mt.model, ARRAY['d'], 5) r;
SELECT recsys.model_info(recsys.train_content(('00000000-0000-0000-0000-00000000000' || n)::uuid, jsonb_build_object('tags', jsonb_build_array('t' || n % 2))))->>'item_id_type' AS uuid_type
FROM generate_series(1, 4) n;
SELECT r.item_id, round(r.score::numeric, 4) AS score
FROM (SELECT recsys.train_content(n::bigint, jsonb_build_object('tags', jsonb_build_array('t' || n % 2))) AS model
      FROM generate_series(1, 4) n) x, recsys.recommend_content(x.model, ARRAY[1::bigint], 5) r;
SELECT recsys.model_info(recsys.train_content('x', '{"tags": ["a"]}'::jsonb))->>'item_id_type' AS literal_type;
-- No rows, or only NULL items: NULL (like avg()).
SELECT recsys.train_content(id, features) IS NULL AS empty_input FROM products WHERE false;
SELECT recsys.train_content(NULL::int, '{"a": 1}'::jsonb) IS NULL AS only_null_items;
-- Value kinds: numbers and booleans inside arrays are tokens, booleans are tokens, null is nothing.
SELECT f.key AS field, f.value->'kinds' AS kinds, f.value->'features' AS features
FROM (SELECT recsys.train_content(n, jsonb_build_object('sizes', jsonb_build_array(38 + n % 2, 40), 'vegan', n % 2 = 0, 'note', NULL::text))
      AS model FROM generate_series(1, 4) n) x, jsonb_each(recsys.model_info(x.model)->'parameters'->'fields') f ORDER BY 1;

-- Input errors.
SELECT recsys.train_content(1, '["a", "b"]'::jsonb);
SELECT recsys.train_content(1, '"Kitchen"'::jsonb);
SELECT recsys.train_content(1, '{"dims": {"w": 1}}'::jsonb);
SELECT recsys.train_content(1, '{"tags": [["a"]]}'::jsonb);
SELECT recsys.train_content(1, '{"tags": [{"a": 1}]}'::jsonb);
SELECT recsys.train_content(1, '{"price": 1e400}'::jsonb);
SELECT recsys.train_content(now()::date, '{"a": "b"}'::jsonb);

-- Options.
SELECT recsys.train_content(id, features, '{"neighbors": 5}') FROM products;
SELECT recsys.train_content(id, features, '{"neighbours": 0}') FROM products;
SELECT recsys.train_content(id, features, '{"weights": {"price": -1}}') FROM products;
SELECT recsys.train_content(id, features, '{"weights": [1, 2]}') FROM products;
SELECT recsys.train_content(id, features, '{"weights": {"price": "high"}}') FROM products;
SELECT recsys.train_content(id, features, '{"text_fields": 3}') FROM products;
SELECT recsys.train_content(id, features, '{"min_df": 0}') FROM products;
SELECT recsys.train_content(id, features, '{"candidate_max_df": 2}') FROM products;
SELECT recsys.train_content(id, features, '{"sublinear_tf": "yes"}') FROM products;
SELECT recsys.train_content(id, features, '[1]') FROM products;
SELECT recsys.train_content(id, features, CASE WHEN id = 5 THEN '{"neighbours": 5}'::jsonb ELSE '{}'::jsonb END) FROM products;
SELECT recsys.train_content(id, features, CASE WHEN id = 5 THEN NULL ELSE '{}'::jsonb END) FROM products;
SELECT recsys.train_content(id, features, NULL) IS NOT NULL AS null_options_are_defaults FROM products;
-- neighbours: the stored list length; weights: 0 drops a field, unknown fields are reported;
-- text_fields: "category" as free text gives one feature per word; min_df drops rare words.
SELECT (recsys.model_info(o.model)->'parameters'->>'neighbour_pairs')::int AS pairs,
       recsys.model_info(o.model)->'parameters'->'features' AS features,
       recsys.model_info(o.model)->'parameters'->'fields'->'price'->'weight' AS price_weight,
       recsys.model_info(o.model)->'parameters'->'unused_weights' AS unused_weights
FROM (SELECT 1 AS k, recsys.train_content(id, features, '{"neighbours": 7}') AS model FROM products
      UNION ALL SELECT 2, recsys.train_content(id, features, '{"weights": {"price": 0, "colour": 2}}') FROM products
      UNION ALL SELECT 3, recsys.train_content(id, features, '{"min_df": 5}') FROM products
      UNION ALL SELECT 4, recsys.train_content(id, features, '{"sublinear_tf": false, "candidate_max_df": 1, "threads": 1}') FROM products) o
ORDER BY o.k;
SELECT recsys.model_info(recsys.train_content(n, jsonb_build_object('category', 'Home & Garden')))->'parameters'->'fields'->'category'->'features' AS as_token,
       recsys.model_info(recsys.train_content(n, jsonb_build_object('category', 'Home & Garden'), '{"text_fields": ["category"]}'))->'parameters'->'fields'->'category'->'features' AS as_text
FROM generate_series(1, 3) n;
-- "text_fields" may also be one field name.
SELECT recsys.model_info(recsys.train_content(n, jsonb_build_object('category', 'Home & Garden'), '{"text_fields": "category"}'))->'parameters'->'fields'->'category'->'kinds' AS one_name
FROM generate_series(1, 3) n;
-- sublinear_tf: a word used 3 times weighs 1 + ln 3 (or 3 with false); the three words
-- share one idf, so cosine(1, 2) = tf / (sqrt(tf^2 + 1) * sqrt 2): 0.6383 and 0.6708.
CREATE TABLE tf AS SELECT * FROM (VALUES (1, 'apple apple apple pear'), (2, 'apple kiwi'), (3, 'pear kiwi')) v(id, d);
SELECT round(recsys.content_similarity(a.m, 1, 2)::numeric, 4) AS sublinear, round(recsys.content_similarity(b.m, 1, 2)::numeric, 4) AS raw_count
FROM (SELECT recsys.train_content(id, jsonb_build_object('text', d)) AS m FROM tf) a,
     (SELECT recsys.train_content(id, jsonb_build_object('text', d), '{"sublinear_tf": false}') AS m FROM tf) b;
-- One model per group.
SELECT g, recsys.model_info(recsys.train_content(id, features))->'items' AS items FROM products WHERE g <= 3 GROUP BY g ORDER BY g;
-- Weighting groups changes the ranking: item 1 shares its category with 2 and its tag with 3
-- (a tie by default, broken by the lower ID); weighting tags or category decides.
CREATE TABLE w AS SELECT * FROM (VALUES
  (1, '{"category": "A", "tags": ["x"]}'::jsonb), (2, '{"category": "A", "tags": ["y"]}'), (3, '{"category": "B", "tags": ["x"]}')) v(id, f);
SELECT (SELECT item_id FROM recsys.recommend_content((SELECT recsys.train_content(id, f) FROM w), ARRAY[1], 1)) AS default_top,
       (SELECT item_id FROM recsys.recommend_content((SELECT recsys.train_content(id, f, '{"weights": {"tags": 10}}') FROM w), ARRAY[1], 1)) AS tags_heavy_top,
       (SELECT item_id FROM recsys.recommend_content((SELECT recsys.train_content(id, f, '{"weights": {"category": 10}}') FROM w), ARRAY[1], 1)) AS category_heavy_top;
-- verbose reports progress as NOTICEs (timings vary: not shown).
SET client_min_messages = warning;
SELECT recsys.train_content(id, features, '{"verbose": true}') IS NOT NULL AS verbose_ok FROM products;
RESET client_min_messages;

-- Free text in any language: Indonesian recipe ingredients (no stemming, no stop words).
SELECT recsys.tokenize('Bumbu Rendang: daging sapi, santan & cabai—pedas! Buah-buahan (500g)') AS words;
CREATE TABLE recipes(id text, title text, ingredients text);
INSERT INTO recipes VALUES
  ('rendang', 'Rendang Sapi', 'daging sapi, santan kelapa, cabai merah, serai, lengkuas, daun jeruk, bawang merah'),
  ('gulai', 'Gulai Kambing', 'daging kambing, santan kelapa, cabai merah, kunyit, serai, bawang merah'),
  ('opor', 'Opor Ayam', 'ayam kampung, santan kelapa, serai, lengkuas, bawang putih, kemiri'),
  ('soto', 'Soto Ayam', 'ayam, kunyit, serai, bawang putih, soun, tauge, jeruk nipis'),
  ('klepon', 'Klepon', 'tepung ketan, gula merah, kelapa parut, daun pandan'),
  ('cendol', 'Es Cendol', 'tepung beras, daun pandan, gula merah, santan, es batu'),
  ('nasgor', 'Nasi Goreng', 'nasi putih, kecap manis, bawang merah, bawang putih, telur, cabai rawit');
CREATE TABLE rm AS SELECT recsys.train_content(id, jsonb_build_object('title', title, 'ingredients', ingredients),
                                                '{"text_fields": ["title", "ingredients"]}') AS model FROM recipes;
SELECT recsys.model_info(model)->'parameters'->'fields'->'ingredients'->'kinds' AS kinds,
       recsys.model_info(model)->'parameters'->'fields'->'ingredients'->'features' AS words FROM rm;
SELECT r.item_id, round(r.score::numeric, 3) AS score FROM rm, recsys.recommend_content(rm.model, ARRAY['rendang'], 3) r;
SELECT r.item_id, round(r.score::numeric, 3) AS score FROM rm, recsys.recommend_content(rm.model, ARRAY['klepon'], 2) r;
SELECT r.item_id, round(r.score::numeric, 3) AS score FROM rm, recsys.recommend_content(rm.model, ARRAY['opor', 'soto'], 2) r;

-- Parallel aggregation: the same model as a serial plan.
CREATE TABLE big AS SELECT p.id + 1000 * c AS id, p.features FROM products p, generate_series(0, 9) c;
ANALYZE big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT recsys.train_content(id, features, '{"neighbours": 10}') FROM big;
CREATE TABLE par AS SELECT recsys.train_content(id, features, '{"neighbours": 10}') AS model FROM big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ser AS SELECT recsys.train_content(id, features, '{"neighbours": 10}') AS model FROM big;
SELECT recsys.model_info(p.model)->'items' AS items,
       recsys.model_info(p.model)->>'fingerprint' = recsys.model_info(s.model)->>'fingerprint' AS same_model
FROM par p, ser s;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- statement_timeout stops the build (TF-IDF and neighbour lists on background threads):
-- 60,000 items that all share a tag, every pair a candidate, would take many seconds;
-- reading them takes a fraction of one. The error comes promptly and the session is fine.
CREATE TABLE slow AS SELECT n AS id, jsonb_build_object('tags', jsonb_build_array('all', 't' || n % 3)) AS f
FROM generate_series(1, 60000) n;
SET statement_timeout = '1s';
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM recsys.train_content(id, f, '{"candidate_max_df": 1}') FROM t09_content.slow;
  RAISE NOTICE 'training was not cancelled';
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'cancelled within 4 s: %', clock_timestamp() - t0 < interval '4 s';
END $$;
RESET statement_timeout;
SELECT count(*) AS session_ok FROM slow;

-- The model round-trips through its text form.
SELECT recsys.model_info(model::text::recsys.model)->>'fingerprint' = recsys.model_info(model)->>'fingerprint' AS round_trip FROM m;

-- Hybrid cold start: train_hybrid_items / train_hybrid_users.
CREATE TABLE hy_events (u text, i text);
INSERT INTO hy_events SELECT 'u' || u, CASE WHEN u % 2 = 0 THEN 'a' ELSE 'b' END || (u * 7 + k) % 10
FROM generate_series(1, 60) u, generate_series(1, 6) k;
CREATE TABLE hy_items (i text, meta jsonb);
INSERT INTO hy_items SELECT 'a' || n, jsonb_build_object('group', 'A', 'price', n) FROM generate_series(0, 9) n;
INSERT INTO hy_items SELECT 'b' || n, jsonb_build_object('group', 'B', 'price', n) FROM generate_series(0, 9) n;
INSERT INTO hy_items VALUES ('a-new', '{"group": "A", "price": 5}'), ('b-new', '{"group": "B"}'),
  ('bare', '{}'), ('nulls', '{"group": null}'), ('nometa', NULL), (NULL, '{"group": "A"}');
CREATE TABLE hy_als AS SELECT recsys.train_als(u, i, '{"factors": 8, "seed": 1, "regularization": 0.01}'::jsonb) AS model FROM hy_events;
CREATE TABLE hy AS SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), i, meta) AS model FROM hy_items;
SELECT recsys.model_info(model)->'hybrid'->>'warm_items' AS warm, recsys.model_info(model)->'hybrid'->>'feature_only_items' AS cold,
       recsys.model_info(model)->'hybrid'->'item_mapping'->>'without_features' AS empty,
       recsys.model_info(model)->'hybrid'->'item_mapping'->>'rows_skipped' AS skipped FROM hy;
-- warm items keep their ALS factors exactly
SELECT count(*) AS same_factors FROM hy, hy_als, recsys.item_factors(hy.model) h JOIN recsys.item_factors(hy_als.model) a USING (item_id)
WHERE h.factors = a.factors;
-- the new items rank among their group's items
SELECT (SELECT string_agg(left(s.item_id, 1), '' ORDER BY s.score DESC) FROM recsys.similar_items(hy.model, 'a-new', 5) s) AS a_new_like,
       (SELECT string_agg(left(s.item_id, 1), '' ORDER BY s.score DESC) FROM recsys.similar_items(hy.model, 'b-new', 5) s) AS b_new_like FROM hy;
SELECT recsys.score(model, 'u2', 'a-new') > recsys.score(model, 'u2', 'b-new') AS even_user_prefers_a,
       recsys.score(model, 'u3', 'b-new') > recsys.score(model, 'u3', 'a-new') AS odd_user_prefers_b FROM hy;
SELECT count(*) > 0 AS cold_in_recommend_all FROM hy, recsys.recommend_all(hy.model, 12, NULL::text) r WHERE r.item_id IN ('a-new', 'b-new');
SELECT count(*) AS in_filter FROM hy, recsys.recommend(hy.model, 'u2', 5, include => ARRAY['a-new', 'b-new']) r;
SELECT count(*) AS fold_in FROM hy, recsys.recommend_for_items(hy.model, ARRAY['a1', 'a-new'], 3) r;
-- refresh: rerun on the hybrid model; previous feature-only items are replaced
INSERT INTO hy_items VALUES ('a-newer', '{"group": "A"}');
CREATE TABLE hy2 AS SELECT recsys.train_hybrid_items((SELECT model FROM hy), i, meta, '{"lambda": 0.5}') AS model FROM hy_items WHERE i <> 'bare';
SELECT recsys.model_info(model)->'hybrid'->>'feature_only_items' AS cold,
       recsys.model_info(model)->'hybrid'->'item_mapping'->>'replaced_feature_only' AS replaced,
       recsys.score(model, 'u1', 'bare') IS NULL AS bare_gone FROM hy2;
-- users from attributes
CREATE TABLE hy_users (u text, attrs jsonb);
INSERT INTO hy_users SELECT 'u' || u, jsonb_build_object('parity', CASE WHEN u % 2 = 0 THEN 'even' ELSE 'odd' END) FROM generate_series(1, 60) u;
INSERT INTO hy_users VALUES ('new-even', '{"parity": "even"}'), ('new-odd', '{"parity": "odd"}');
CREATE TABLE hyu AS SELECT recsys.train_hybrid_users((SELECT model FROM hy2), u, attrs) AS model FROM hy_users;
SELECT recsys.model_info(model)->'hybrid'->>'feature_only_users' AS cold_users,
       recsys.model_info(model)->'hybrid'->>'feature_only_items' AS cold_items FROM hyu;
SELECT (SELECT string_agg(left(r.item_id, 1), '' ORDER BY r.score DESC) FROM recsys.recommend(hyu.model, 'new-even', 3) r) AS even_recs,
       (SELECT string_agg(left(r.item_id, 1), '' ORDER BY r.score DESC) FROM recsys.recommend(hyu.model, 'new-odd', 3) r) AS odd_recs FROM hyu;
-- the model round-trips through its text form
SELECT recsys.model_info(model::text::recsys.model)->'hybrid'->>'feature_only_users' AS roundtrip FROM hyu;
-- errors
SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), i, meta, '{"lambda": 0}') FROM hy_items;
SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), i, meta, '{"neighbours": 5}') FROM hy_items;
-- jsonb holds no NaN number: a "NaN" string is a category, as in train_content
SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), i, jsonb_build_object('price', 'NaN'::float8)) IS NOT NULL AS nan_is_a_token FROM hy_items;
SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), i::int, meta) FROM (VALUES ('1', '{}'::jsonb)) v(i, meta);
SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), 'zz' || i, meta) FROM hy_items;
SELECT recsys.train_hybrid_items(NULL::recsys.model, i, meta) FROM hy_items;
SELECT recsys.train_hybrid_items((SELECT recsys.train_popularity(u, i) FROM hy_events), i, meta) FROM hy_items;
SELECT recsys.train_hybrid_items((SELECT model FROM hy_als), i, meta) IS NULL AS no_rows FROM hy_items WHERE false;
SELECT recsys.train_hybrid_items(m.model, i, meta) FROM hy_items, (SELECT model FROM hy_als UNION ALL SELECT model FROM hy) m;
DROP TABLE hy_events, hy_items, hy_als, hy, hy2, hy_users, hyu;

-- Explicit ratings: train_mf, train_baseline, train_popularity, predict,
-- rating_metrics, ranking_metrics, splits and cross_validate.
CREATE SCHEMA t07_ratings;
SET search_path = t07_ratings, public;
SET recsys.threads = 2;
SELECT setseed(0.31);
-- 300 users x 200 items with a rank-2 structure, biases and noise sigma 0.3, on a 1..5 scale.
CREATE TABLE uf AS SELECT u, random() - 0.5 AS a, random() - 0.5 AS b, (random() - 0.5) * 0.6 AS bias FROM generate_series(1, 300) u;
CREATE TABLE itf AS SELECT i, random() - 0.5 AS a, random() - 0.5 AS b, (random() - 0.5) * 0.6 AS bias FROM generate_series(1, 200) i;
CREATE TABLE ratings AS
SELECT p.u, p.i,
       3.5 + uf.bias + itf.bias + 4 * (uf.a * itf.a + uf.b * itf.b)
       + 0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS r
FROM (SELECT DISTINCT 1 + floor(300 * random())::int AS u, 1 + floor(200 * random())::int AS i
      FROM generate_series(1, 24000)) p
JOIN uf USING (u) JOIN itf USING (i);
SELECT count(*) > 15000 AS enough_ratings FROM ratings;

-- Splits are deterministic and take the expected share.
SELECT count(*) FILTER (WHERE recsys.random_split(7, 0.2, u, i))::float8 / count(*) BETWEEN 0.17 AND 0.23 AS about_20_percent,
       count(*) FILTER (WHERE recsys.random_split(7, 0.2, u, i)) = count(*) FILTER (WHERE recsys.random_split(7, 0.2, u, i)) AS stable
FROM ratings;
SELECT recsys.split_hash(1, 42) = recsys.split_hash(1, 42::bigint) AS int_widths_hash_alike,
       recsys.split_hash(1, 42) <> recsys.split_hash(2, 42) AS seed_matters,
       recsys.split_hash(1, 'a'::text, 2) BETWEEN 0 AND 1 AS in_unit_interval;
SELECT recsys.random_split(1, 1.5, 1);
SELECT recsys.random_split(1, 0, 1) AS never, recsys.random_split(1, 1, 1) AS always;

CREATE TABLE train AS SELECT * FROM ratings WHERE NOT recsys.random_split(11, 0.2, u, i);
CREATE TABLE test AS SELECT * FROM ratings WHERE recsys.random_split(11, 0.2, u, i);

CREATE TABLE mf AS SELECT recsys.train_mf(u, i, r, '{"factors": 8, "epochs": 100, "learning_rate": 0.02, "reg_factors": 0.02, "seed": 3}') AS model FROM train;
CREATE TABLE bl AS SELECT recsys.train_baseline(u, i, r) AS model FROM train;
SELECT i->>'algorithm' AS algorithm, i->'factors' AS factors, i->'users' AS users, i->'items' AS items,
       jsonb_array_length(i->'history') AS epochs
FROM (SELECT recsys.model_info(model) AS i FROM mf UNION ALL SELECT recsys.model_info(model) FROM bl) s;

-- Test RMSE of the factor model comes within 10% of the noise (0.3) and beats the baseline.
SELECT (m->>'rmse')::float8 < 0.33 AS mf_rmse_near_noise, (m->>'rows_scored')::int = (SELECT count(*) FROM test) AS all_scored,
       (m->>'mae')::float8 < (m->>'rmse')::float8 AS mae_below_rmse,
       abs((m->>'mse')::float8 - ((m->>'rmse')::float8)^2) < 1e-9 AS mse_is_rmse_squared
FROM (SELECT recsys.rating_metrics(mf.model, t.u, t.i, t.r) AS m FROM mf, test t) s;
SELECT (b->>'rmse')::float8 > (m->>'rmse')::float8 AS baseline_is_worse
FROM (SELECT recsys.rating_metrics(bl.model, t.u, t.i, t.r) AS b FROM bl, test t) x,
     (SELECT recsys.rating_metrics(mf.model, t.u, t.i, t.r) AS m FROM mf, test t) y;

-- predict: clipped to the observed range; unknown user -> mu + b_i; unknown item -> mu + b_u; both -> mu.
SELECT bool_and(p BETWEEN (SELECT min(r) FROM train) AND (SELECT max(r) FROM train)) AS clipped
FROM (SELECT recsys.predict(mf.model, t.u, t.i) AS p FROM mf, test t) s;
SELECT abs(recsys.predict(model, -1, -1) - (SELECT avg(r) FROM train)) < 1e-9 AS unknown_both_is_mean
FROM mf;
SELECT recsys.predict(model, -1, 5) <> recsys.predict(model, -1, -1) AS unknown_user_uses_item_bias,
       recsys.predict(model, 5, -1) <> recsys.predict(model, -1, -1) AS unknown_item_uses_user_bias
FROM mf;
SELECT recsys.predict(model, NULL::int, 1) IS NULL AS strict FROM mf;
-- a text ID against an integer model is compared by its text form
SELECT recsys.predict(model, '5', '7') = recsys.predict(model, 5, 7) AS text_ids FROM mf;

-- rating_metrics options and errors.
SELECT m->>'rows_unknown_user' AS unknown_users, m->>'rows_skipped_unknown' AS skipped, m->>'rows_scored' AS scored
FROM (SELECT recsys.rating_metrics(mf.model, t.u, t.i, t.r, '{"unknown": "skip"}')
      FROM mf, (VALUES (-1, 1, 3.0), (1, 1, 4.0), (NULL, 1, 4.0)) t(u, i, r)) s(m);
SELECT recsys.rating_metrics(mf.model, 1, 1, 3.0, '{"unknown": "maybe"}') FROM mf;
SELECT recsys.rating_metrics(mf.model, 1, 1, 'NaN') FROM mf;
SELECT recsys.rating_metrics(m.model, 1, 1, 3.0)
FROM (SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 2}'::jsonb) AS model FROM train) m;
SELECT recsys.predict(m.model, 1, 1)
FROM (SELECT recsys.train_popularity(u, i) AS model FROM train) m;

-- train_mf errors name the option.
SELECT recsys.train_mf(u, i, r, '{"factor": 8}') FROM train;
SELECT recsys.train_mf(u, i, r, '{"learning_rate": -1}') FROM train;
SELECT recsys.train_mf(u, i, r, '{"lr_schedule": "cosine"}') FROM train;
SELECT recsys.train_baseline(u, i, r, '{"reg_user": "x"}') FROM train;
SELECT recsys.train_popularity(u, i, 1, '{"measure": "clicks"}') FROM train;
SELECT recsys.train_mf(u, i, r) IS NULL AS no_rows_is_null FROM train WHERE false;
-- same seed, same model
SELECT (SELECT recsys.model_info(recsys.train_mf(u, i, r, '{"factors": 4, "epochs": 3, "seed": 5}'))->>'fingerprint' FROM train)
     = (SELECT recsys.model_info(recsys.train_mf(u, i, r, '{"factors": 4, "epochs": 3, "seed": 5}'))->>'fingerprint' FROM train) AS deterministic;

-- Serving works on rating models: recommend ranks unseen items, similar_items by factors.
SELECT count(*) AS n, bool_and(r.item_id NOT IN (SELECT i FROM train WHERE u = 1)) AS unseen
FROM mf, recsys.recommend(mf.model, 1, 5) r;
SELECT count(*) AS n FROM mf, recsys.similar_items(mf.model, 1, 5);
SELECT count(*) = 300 AS one_row_per_user, min(array_length(factors, 1)) AS dims FROM mf, recsys.user_factors(mf.model);

-- Ranking metrics: every model kind, hand-checkable cases, options and errors.
CREATE TABLE pop AS SELECT recsys.train_popularity(u, i) AS model FROM train WHERE r >= 3.5;
CREATE TABLE als AS SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 10, "regularization": 0.05, "alpha": 2, "seed": 1}'::jsonb) AS model FROM train WHERE r >= 3.5;
SELECT name, (m->>'users')::int > 250 AS many_users, (m->>'precision')::float8 BETWEEN 0 AND 1 AS precision_ok,
       (m->>'ndcg')::float8 BETWEEN 0 AND 1 AS ndcg_ok, m->>'k' AS k
FROM (SELECT 'popularity' AS name, recsys.ranking_metrics(pop.model, t.u, t.i) AS m FROM pop, test t WHERE t.r >= 3.5
      UNION ALL SELECT 'als', recsys.ranking_metrics(als.model, t.u, t.i) FROM als, test t WHERE t.r >= 3.5
      UNION ALL SELECT 'mf', recsys.ranking_metrics(mf.model, t.u, t.i) FROM mf, test t WHERE t.r >= 3.5) s
ORDER BY name;
-- Personalised models beat popularity on this planted structure.
SELECT (a->>'ndcg')::float8 > (p->>'ndcg')::float8 AS als_beats_popularity
FROM (SELECT recsys.ranking_metrics(als.model, t.u, t.i) AS a FROM als, test t WHERE t.r >= 3.5) x,
     (SELECT recsys.ranking_metrics(pop.model, t.u, t.i) AS p FROM pop, test t WHERE t.r >= 3.5) y;
-- A tiny popularity model whose lists can be checked by hand: items 10 > 11 > 12 by popularity.
CREATE TABLE tiny AS SELECT recsys.train_popularity(u, i) AS model
FROM (VALUES (1, 10), (2, 10), (3, 10), (1, 11), (2, 11), (3, 12), (4, 13)) v(u, i);
SELECT r.* FROM tiny, recsys.recommend(tiny.model, 4, 3) r;
-- user 4 gets [10, 11, 12]; relevant {11, 99}: one hit at rank 2 of k = 3.
SELECT m->'precision' AS precision, m->'recall' AS recall, m->'map' AS map, m->'mrr' AS mrr, m->'hit_rate' AS hit_rate,
       round((m->>'ndcg')::numeric, 6) AS ndcg, m->'users' AS users
FROM (SELECT recsys.ranking_metrics(tiny.model, t.u, t.i, '{"k": 3}') AS m
      FROM tiny, (VALUES (4, 11), (4, 99)) t(u, i)) s;
-- unknown users are skipped unless cold_start; users count once
SELECT m->'users' AS users, m->'users_unknown_skipped' AS skipped
FROM (SELECT recsys.ranking_metrics(tiny.model, t.u, t.i) FROM tiny, (VALUES (4, 11), (77, 10), (77, 11)) t(u, i)) s(m);
SELECT m->'users' AS users, m->'users_unknown_cold_start' AS cold, m->'hit_rate' AS hit_rate
FROM (SELECT recsys.ranking_metrics(tiny.model, t.u, t.i, '{"cold_start": true, "k": 1}') FROM tiny, (VALUES (77, 10)) t(u, i)) s(m);
SELECT recsys.ranking_metrics(tiny.model, 1, 10, '{"k": 0}') FROM tiny;
SELECT recsys.ranking_metrics(tiny.model, 1, 10, '{"top": 3}') FROM tiny;

-- Cross-validation: one row per setting, folds and spread reported.
SELECT setting, fold_count, rmse_mean < 0.4 AS rmse_ok, rmse_std >= 0 AS has_spread,
       jsonb_array_length(per_fold) AS folds_reported
FROM recsys.cross_validate('SELECT u, i, r FROM ratings', 'mf',
       ARRAY['{"factors": 4, "epochs": 40, "learning_rate": 0.02, "reg_factors": 0.02}',
             '{"factors": 8, "epochs": 40, "learning_rate": 0.02, "reg_factors": 0.02}']::jsonb[], 3);
SELECT setting, rmse_mean IS NULL AS no_rmse_for_implicit, precision_mean > 0 AS has_precision
FROM recsys.cross_validate('SELECT u, i, r FROM ratings', 'als', ARRAY['{"factors": 4, "iterations": 5}']::jsonb[], 2, 1,
       '{"relevance_threshold": 3.5, "k": 5}');
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM ratings', 'svd++');
SELECT * FROM recsys.cross_validate('SELECT u, i, r FROM ratings', 'mf', folds => 1);

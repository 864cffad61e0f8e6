-- recsys.tune: grid search on a validation split carved from the query's rows, then the
-- final model trained on all of them with the best setting, in one call. The grid as an
-- array and as an object of arrays, every metric, the validation rows never reaching
-- the scoring models' training, determinism, the rating models, the search_path rule,
-- and the errors (empty grid, unknown option, bad metric, NULLs, bad queries).
-- Scores are compared, never printed.
SET recsys.threads = 2;
SET jit = off;
CREATE SCHEMA t19;
SET search_path = t19, public;

-- 300 users, 100 items in 5 planted groups of 20; each user draws 10 items, 90 % from
-- its own group.
SELECT setseed(0.25);
CREATE TABLE inter AS
  SELECT u, CASE WHEN random() < 0.9 THEN (u % 5) * 20 + floor(random() * 20)::int ELSE floor(random() * 100)::int END AS i,
         (1 + floor(random() * 5))::float8 AS r
  FROM generate_series(1, 300) u, generate_series(1, 10);

-- 1. An array grid: one row; the model is the best setting trained on every row.
CREATE TABLE t AS
  SELECT * FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'item_knn',
                            '[{"neighbours": 2}, {"neighbours": 50, "similarity": "bm25"}, {"neighbours": 1}]');
SELECT best_setting, metric_name, best_score > 0 AS scored, jsonb_array_length(results) AS settings,
       recsys.model_info(model)->>'algorithm' AS algorithm,
       (recsys.model_info(model)->>'interactions')::int = (SELECT count(DISTINCT (u, i)) FROM inter) AS all_rows
FROM t;
-- results: best first, ranks 1..n, every setting once with its grid index and scores.
SELECT e->>'rank' AS rank, e->>'grid_index' AS grid_index, e->'setting' AS setting,
       (e->>'score')::float8 = (e->'ranking'->>'ndcg')::float8 AS score_is_ndcg,
       (e->>'train_seconds')::float8 >= 0 AS timed
FROM t, jsonb_array_elements(results) e ORDER BY (e->>'rank')::int;
SELECT bool_and((a->>'score')::float8 >= (b->>'score')::float8) AS best_first
FROM t, jsonb_array_elements(results) WITH ORDINALITY x(a, n), jsonb_array_elements(results) WITH ORDINALITY y(b, m)
WHERE m = n + 1;
-- The final model equals train_item_knn with that setting on all rows.
SELECT t.model OPERATOR(recsys.=) (SELECT recsys.train_item_knn(u, i, 1.0::float8, t.best_setting) FROM inter) AS final_model
FROM t;
-- Deterministic: the same call gives the same model and scores.
SELECT (SELECT jsonb_agg(e - 'train_seconds' ORDER BY (e->>'rank')::int) FROM jsonb_array_elements(x.results) e) =
       (SELECT jsonb_agg(e - 'train_seconds' ORDER BY (e->>'rank')::int) FROM jsonb_array_elements(t.results) e) AND x.model OPERATOR(recsys.=) t.model
       AS same_results FROM t, LATERAL (SELECT * FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'item_knn',
                            '[{"neighbours": 2}, {"neighbours": 50, "similarity": "bm25"}, {"neighbours": 1}]')) x;

-- 2. An object of arrays is every combination (a scalar counts as one value).
SELECT jsonb_array_length(results) AS settings,
       (SELECT jsonb_agg(e->'setting' ORDER BY (e->>'grid_index')::int) FROM jsonb_array_elements(results) e) AS grid
FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'als',
                 '{"factors": [4, 8], "regularization": [1, 10], "iterations": 3}', 'recall@5');

-- 3. The scores are those of a model trained without the validation rows: the same as
-- ranking_metrics of that model on them.
CREATE TABLE v AS SELECT *, recsys.split_hash(42, u, i) < 0.2 AS valid FROM inter;
SELECT abs((SELECT best_score FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'ease', '[{"lambda": 50}]', 'map@10'))
           - (SELECT (recsys.ranking_metrics(m.model, v.u, v.i, '{"k": 10}')->>'map')::float8
              FROM v, (SELECT recsys.train_ease(u, i, 1.0::float8, '{"lambda": 50}') AS model FROM v WHERE NOT valid) m
              WHERE v.valid GROUP BY m.model)) < 1e-9 AS validation_score_matches;
-- Another seed and fraction carve other validation rows.
SELECT (SELECT best_score FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'ease', '[{"lambda": 50}]', 'ndcg@10', 0.3, 7))
       <> (SELECT best_score FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'ease', '[{"lambda": 50}]')) AS other_split;
-- Tuning on the ALS grid beats a bad setting and picks the better one.
SELECT best_setting FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als',
                                     '[{"factors": 1, "iterations": 1}, {"factors": 8, "regularization": 5}]');

-- 4. Rating models: RMSE and MAE pick the lowest; ranking metrics work for them too.
SELECT best_setting, metric_name, best_score = (SELECT min((e->'rating'->>'rmse')::float8) FROM jsonb_array_elements(results) e) AS lowest
FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'mf', '{"factors": [0, 8], "epochs": 10}', 'rmse');
SELECT metric_name, jsonb_array_length(results) AS settings
FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'baseline', '[{}, {"reg_user": 5}]', 'MAE');
SELECT metric_name FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'mf', '[{"factors": 4, "epochs": 5}]', 'precision@3');
-- relevance_threshold and implicit_weight, as in cross_validate.
SELECT (recsys.model_info(model)->>'interactions')::int = (SELECT count(DISTINCT (u, i)) FROM inter WHERE r >= 4) AS thresholded
FROM recsys.tune('SELECT u, i, r FROM t19.inter', 'popularity', '[{}]', 'ndcg@10', 0.2, 42,
                 '{"relevance_threshold": 4, "implicit_weight": "value"}');

-- 5. The query runs under the caller's search_path.
SELECT jsonb_array_length(results) AS settings FROM recsys.tune('SELECT u, i, 1 FROM inter', 'popularity', '[{}]');

-- 6. Errors.
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '{}');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '{"factors": []}');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{"factors": 4}, 7]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '"factors"');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{"factorz": 4}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{"factors": -1}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'auc');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'ndcg@0');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'rmse');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'svd', '[{}]');
SELECT * FROM recsys.tune(NULL, 'als', '[{}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', NULL, '[{}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', NULL);
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', NULL);
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'ndcg@10', NULL);
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'ndcg@10', 1);
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'ndcg@10', 0.2, NULL);
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'ndcg@10', 0.2, 42, '{"k": 5}');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[{}]', 'ndcg@10', 0.2, 42, '{"implicit_weight": "x"}');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter; DROP TABLE t19.inter', 'als', '[{}]');
SELECT * FROM recsys.tune('DELETE FROM t19.inter RETURNING u, i, 1', 'als', '[{}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM no_such_table', 'als', '[{}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter WHERE false', 'als', '[{}]');
SELECT * FROM recsys.tune('SELECT 1, 1, 1', 'als', '[{}]');
SELECT * FROM recsys.tune('SELECT u, i FROM t19.inter', 'als', '[{}]');
SELECT * FROM recsys.tune('SELECT u, i, 1 FROM t19.inter', 'als', '[null]');
SELECT count(*) AS rows_kept FROM inter;

RESET search_path;
DROP SCHEMA t19 CASCADE;

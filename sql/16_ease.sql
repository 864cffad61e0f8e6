-- EASE: train_ease (defaults, each option, bad values, NULLs, empty and all-negative
-- input, text options), the model against its own neighbour lists (recommend = the sum
-- of the user's items' rows of B, score, explain, fold-in, recommend_all, filters),
-- planted item groups, quality against popularity and item-kNN on a held-out split,
-- cross_validate, a named recommender, the calls without an answer, the text form and
-- parallel aggregation. Scores are checked with a tolerance, never printed.
SET recsys.threads = 2;
SET jit = off;
CREATE SCHEMA t16;
SET search_path = t16, public;

-- 600 users, 200 items in 10 planted groups of 20 (group = item / 20); each user draws
-- 8 items, 90 % from its own group (user % 10).
SELECT setseed(0.5);
CREATE TABLE users AS SELECT u, u % 10 AS g FROM generate_series(1, 600) u;
CREATE TABLE inter AS
  SELECT u, CASE WHEN random() < 0.9 THEN g * 20 + floor(random() * 20)::int ELSE floor(random() * 200)::int END AS i,
         (1 + floor(random() * 3))::float8 AS w
  FROM users, generate_series(1, 8);
CREATE TABLE pairs AS SELECT u, i, sum(w) AS w FROM inter GROUP BY u, i;
CREATE TABLE items AS SELECT DISTINCT i FROM pairs;

CREATE TABLE em AS SELECT recsys.train_ease(u, i) AS model FROM inter;
SELECT i->>'algorithm' AS algorithm, i->'parameters'->'lambda' AS lambda, i->'parameters'->'neighbours' AS neighbours,
       i->'parameters'->'binary' AS binary, i->'factors' AS factors, i->'stores_seen_items' AS stores_seen,
       (i->>'users')::int = (SELECT count(DISTINCT u) FROM pairs) AS all_users,
       (i->>'items')::int = (SELECT count(*) FROM items) AS all_items,
       (i->>'interactions')::int = (SELECT count(*) FROM pairs) AS all_pairs,
       (i->'parameters'->>'neighbour_pairs')::int = (SELECT count(*) * (count(*) - 1) FROM items) AS full_rows
FROM (SELECT recsys.model_info(model) AS i FROM em) s;

-- Each item's row of B (similar_items) holds every other item at most once, never the
-- item itself, best first; B has negative entries as well as positive ones.
CREATE TABLE b AS
  SELECT x.i AS src, s.item_id AS dst, s.score, s.n
  FROM items x CROSS JOIN em CROSS JOIN LATERAL recsys.similar_items(em.model, x.i, 1000) WITH ORDINALITY s(item_id, score, n);
SELECT count(*) = (SELECT count(*) * (count(*) - 1) FROM items) AS complete,
       count(*) FILTER (WHERE src = dst) AS self,
       count(*) - count(DISTINCT (src, dst)) AS duplicates,
       count(*) FILTER (WHERE score < 0) > 0 AS has_negative,
       count(*) FILTER (WHERE score > 0) > 0 AS has_positive
FROM b;
SELECT count(*) AS out_of_order
FROM (SELECT score, lag(score) OVER (PARTITION BY src ORDER BY n) AS prev FROM b) o WHERE score > prev;

-- recommend is the sum of the rows of B of the user's items (binary: weight 1), the
-- user's items excluded; only positive scores; score() gives the same number.
CREATE TABLE want AS
  SELECT p.u, b.dst AS i, sum(b.score) AS score
  FROM pairs p JOIN b ON b.src = p.i
  WHERE NOT EXISTS (SELECT 1 FROM pairs q WHERE q.u = p.u AND q.i = b.dst)
  GROUP BY p.u, b.dst;
CREATE TABLE got AS
  SELECT u.u, r.item_id AS i, r.score, r.n
  FROM users u CROSS JOIN em CROSS JOIN LATERAL recsys.recommend(em.model, u.u, 10) WITH ORDINALITY r(item_id, score, n)
  WHERE u.u % 5 = 0;
SELECT count(*) AS rows, count(*) FILTER (WHERE abs(g.score - w.score) > 1e-4 * (1 + abs(w.score))) AS wrong_scores,
       count(*) FILTER (WHERE w.u IS NULL) AS not_candidates,
       count(*) FILTER (WHERE g.score <= 0) AS non_positive
FROM got g LEFT JOIN want w USING (u, i);
-- ... and the top 10 of that sum (ties may swap: compare the score at each rank).
SELECT count(*) AS rank_mismatches
FROM got g JOIN (SELECT u, score, row_number() OVER (PARTITION BY u ORDER BY score DESC, i) AS n FROM want WHERE score > 0) w
  ON w.u = g.u AND w.n = g.n
WHERE abs(g.score - w.score) > 1e-4 * (1 + abs(w.score));
SELECT count(*) FILTER (WHERE abs(recsys.score(em.model, w.u, w.i) - w.score) > 1e-4 * (1 + abs(w.score))) AS wrong_score_calls
FROM want w, em WHERE w.u % 25 = 0;

-- Planted groups: nearly all of a user's recommendations come from the user's group.
SELECT avg(((g.i / 20) = (g.u % 10))::int) > 0.9 AS own_group
FROM got g;

-- Fold-in: a training user's items as an ad-hoc history give the user's own list
-- (binary model: the weights of the history do not matter).
CREATE TABLE hist AS SELECT u, array_agg(i ORDER BY i) AS items FROM pairs WHERE u % 50 = 0 GROUP BY u;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE f.item_id IS DISTINCT FROM g.i OR abs(f.score - g.score) > 1e-5) AS differ
FROM hist h CROSS JOIN em CROSS JOIN LATERAL recsys.recommend_for_items(em.model, h.items, 10) WITH ORDINALITY f(item_id, score, n)
LEFT JOIN got g ON g.u = h.u AND g.n = f.n;
-- explain: the user's items' contributions sum to the score.
SELECT count(*) AS explained,
       count(*) FILTER (WHERE abs((SELECT sum(contribution) FROM recsys.explain(em.model, g.u, g.i, 100)) - g.score)
                              > 1e-4 * (1 + abs(g.score))) AS wrong_sums
FROM got g, em WHERE g.n = 1 AND g.u % 50 = 0;
-- recommend_all equals recommend; include / exclude filter exactly.
SELECT count(*) AS differ
FROM (SELECT r.user_id AS u, r.item_id AS i FROM em, recsys.recommend_all(em.model, 10, NULL::int) r WHERE r.user_id % 5 = 0
      EXCEPT SELECT u, i FROM got) d;
SELECT count(*) AS rows, count(*) FILTER (WHERE r.item_id NOT BETWEEN 0 AND 39) AS outside_include
FROM users u, em, LATERAL recsys.recommend(em.model, u.u, 5, include => ARRAY(SELECT generate_series(0, 39))) r
WHERE u.u % 60 = 0;
SELECT count(*) FILTER (WHERE r.item_id = ANY (x.ex)) AS excluded_returned
FROM (SELECT u.u, ARRAY(SELECT g.i FROM got g WHERE g.u = u.u AND g.n <= 3) AS ex FROM users u WHERE u.u % 5 = 0) x, em,
     LATERAL recsys.recommend(em.model, x.u, 10, exclude => x.ex) r;

-- Quality on a held-out split: EASE beats popularity by far; on these planted groups,
-- which co-occurrence similarity fits by construction, it is level with item-kNN.
CREATE TABLE train_rows AS SELECT * FROM pairs WHERE recsys.split_hash(3, u, i) >= 0.2;
CREATE TABLE test_rows AS SELECT * FROM pairs WHERE recsys.split_hash(3, u, i) < 0.2;
SELECT (e->>'ndcg')::float8 > 1.2 * (p->>'ndcg')::float8 AS beats_popularity,
       (e->>'ndcg')::float8 > 0.95 * (k->>'ndcg')::float8 AS near_item_knn
FROM (SELECT recsys.ranking_metrics(m.model, t.u, t.i) AS e
      FROM (SELECT recsys.train_ease(u, i) AS model FROM train_rows) m, test_rows t) a,
     (SELECT recsys.ranking_metrics(m.model, t.u, t.i) AS p
      FROM (SELECT recsys.train_popularity(u, i) AS model FROM train_rows) m, test_rows t) b,
     (SELECT recsys.ranking_metrics(m.model, t.u, t.i) AS k
      FROM (SELECT recsys.train_item_knn(u, i) AS model FROM train_rows) m, test_rows t) c;
SELECT setting, fold_count, ndcg_mean > 0 AS ndcg_positive, rmse_mean IS NULL AS no_rmse
FROM recsys.cross_validate('SELECT u, i, w FROM t16.pairs', 'ease',
                           ARRAY['{"lambda": 50}', '{"lambda": 400, "neighbours": 20}']::jsonb[], folds => 3);

-- Options: each one, and what is refused.
SELECT (recsys.model_info(recsys.train_ease(u, i, w, '{"lambda": 10, "neighbours": 5, "binary": false, "store_seen": false}'))->'parameters')
       - 'rows' - 'rows_skipped' - 'negative_pairs' AS params
FROM pairs;
SELECT max(n) AS max_neighbours
FROM (SELECT recsys.train_ease(u, i, '{"neighbours": 5}') AS model FROM pairs) m, items x,
     LATERAL (SELECT count(*) AS n FROM recsys.similar_items(m.model, x.i, 100)) s;
SELECT recsys.train_ease(u, i, '{"lambda": 0}') FROM pairs;
SELECT recsys.train_ease(u, i, '{"lambda": "big"}') FROM pairs;
SELECT recsys.train_ease(u, i, '{"neighbours": 0}') FROM pairs;
SELECT recsys.train_ease(u, i, '{"lamda": 10}') FROM pairs;
SELECT recsys.train_ease(u, i, 'not json') FROM pairs;
-- NULL rows are skipped and counted; no rows, or only negative weights: NULL.
SELECT (recsys.model_info(recsys.train_ease(u, i, w))->'parameters'->>'rows_skipped')::int AS skipped
FROM (SELECT u, CASE WHEN u % 100 = 0 THEN NULL ELSE i END AS i, w FROM pairs) p;
SELECT recsys.train_ease(u, i) IS NULL AS empty_is_null FROM pairs WHERE false;
SELECT recsys.train_ease(u, i, -1.0::float8) IS NULL AS negatives_only_is_null FROM pairs;
SELECT recsys.train_ease(u, i, 'NaN'::float8) FROM pairs;
-- Negative pairs are not in B but stay seen: never recommended.
CREATE TABLE neg AS SELECT u, i, CASE WHEN (u + i) % 7 = 0 THEN -1.0 ELSE w END AS w FROM pairs;
SELECT count(*) AS negatives_recommended
FROM (SELECT recsys.train_ease(u, i, w) AS model FROM neg) m, users x,
     LATERAL recsys.recommend(m.model, x.u, 20) r
WHERE x.u % 10 = 0 AND EXISTS (SELECT 1 FROM neg n WHERE n.u = x.u AND n.i = r.item_id);
-- store_seen = false: recommend needs the users' items, fold-in does not.
SELECT * FROM (SELECT recsys.train_ease(u, i, '{"store_seen": false}') AS model FROM pairs) m, recsys.recommend(m.model, 1, 5);
SELECT count(*) AS fold_in_rows
FROM (SELECT recsys.train_ease(u, i, '{"store_seen": false}') AS model FROM pairs) m, recsys.recommend_for_items(m.model, ARRAY[1, 2, 3], 5);

-- No answer without factors: a clear error naming what to use instead.
SELECT * FROM em, recsys.similar_users(em.model, 1, 5);
SELECT * FROM em, recsys.item_factors(em.model, NULL::int);

-- The text form (dump / restore, COPY) gives the same model.
SELECT (em.model::text::recsys.model) OPERATOR(recsys.=) em.model AS text_round_trip FROM em;

-- A named recommender of this kind, served by name.
SELECT recsys.create_recommender('t16_ease', 'ease', 'SELECT u, i FROM t16.pairs', '{"lambda": 100}');
CALL recsys.retrain('t16_ease');
SELECT count(*) AS served_by_name FROM recsys.recommend('t16_ease', 1, 5);
SELECT algorithm FROM recsys.recommenders WHERE name = 't16_ease';
SELECT recsys.drop_recommender('t16_ease');

-- ---- parallel aggregation: the same model as a serial plan ----
CREATE TABLE big AS SELECT * FROM inter, generate_series(1, 4) copy;
ANALYZE big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT recsys.train_ease(u, i, w, '{"binary": false}'::jsonb) FROM big;
CREATE TABLE par AS
  SELECT recsys.train_ease(u, i, w, '{"binary": false}'::jsonb) AS int_model,
         recsys.train_ease('u' || u, 'i' || i) AS text_model
  FROM big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ser AS
  SELECT recsys.train_ease(u, i, w, '{"binary": false}'::jsonb) AS int_model,
         recsys.train_ease('u' || u, 'i' || i) AS text_model
  FROM big;
SELECT recsys.model_info(p.int_model)->>'fingerprint' = recsys.model_info(s.int_model)->>'fingerprint' AS int_same,
       recsys.model_info(p.text_model)->>'fingerprint' = recsys.model_info(s.text_model)->>'fingerprint' AS text_same
FROM par p, ser s;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

DROP SCHEMA t16 CASCADE;

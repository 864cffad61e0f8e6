-- Item-kNN: train_item_knn (each option, bad values, NULLs, empty input), recommend (the
-- sum of the user's items' similarities, seen items excluded), similar_items (the stored
-- neighbours), planted item groups, blending with ALS in one query, recommend_all,
-- ranking_metrics and cross_validate, the errors of calls without an answer, and
-- parallel aggregation. Scores are checked against sums computed here in SQL, with a
-- tolerance, never printed.
SET recsys.threads = 2;
-- Many small lateral calls over unanalyzed tables: JIT compilation would cost more than the query.
SET jit = off;
CREATE SCHEMA t06;
SET search_path = t06, public;

-- 600 users, 200 items in 10 planted groups of 20 (group = item / 20); each user draws
-- 8 items, 90 % from its own group (user % 10); weights 1..3 (view, cart, purchase).
SELECT setseed(0.25);
CREATE TABLE users AS SELECT u, u % 10 AS g FROM generate_series(1, 600) u;
CREATE TABLE inter AS
  SELECT u, CASE WHEN random() < 0.9 THEN g * 20 + floor(random() * 20)::int ELSE floor(random() * 200)::int END AS i,
         (1 + floor(random() * 3))::float8 AS w
  FROM users, generate_series(1, 8);
-- Duplicate (user, item) rows add up, as in every training aggregate.
CREATE TABLE pairs AS SELECT u, i, sum(w) AS w FROM inter GROUP BY u, i;
CREATE TABLE items AS SELECT DISTINCT i FROM pairs;
SELECT count(*) = 4800 AS rows_generated, (SELECT count(*) FROM items) AS items FROM inter;

-- km has the defaults (bm25, shrinkage 10: test/eval_defaults.sh); kc is the plain
-- cosine, on which the formulas are checked first.
CREATE TABLE km AS SELECT recsys.train_item_knn(u, i, w) AS model FROM inter;
CREATE TABLE kc AS SELECT recsys.train_item_knn(u, i, w, '{"similarity": "cosine", "shrinkage": 0}'::jsonb) AS model FROM inter;
SELECT i->>'algorithm' AS algorithm, i->'parameters'->>'similarity' AS similarity,
       i->'parameters'->'neighbours' AS neighbours, i->'parameters'->'shrinkage' AS shrinkage,
       i->'parameters'->'min_support' AS min_support, i->'parameters'->'binary' AS binary,
       i->'factors' AS factors, i->'stores_seen_items' AS stores_seen,
       (i->>'users')::int = (SELECT count(DISTINCT u) FROM pairs) AS all_users,
       (i->>'items')::int = (SELECT count(*) FROM items) AS all_items,
       (i->>'interactions')::int = (SELECT count(*) FROM pairs) AS all_pairs,
       i->'parameters'->'rows' AS rows, i->'parameters'->'rows_skipped' AS rows_skipped
FROM (SELECT recsys.model_info(model) AS i FROM km) s;

-- Co-occurrence cosine in SQL: sim(a, b) = sum_u w_ua w_ub / (|a| |b| + shrinkage),
-- over pairs with at least one common user.
CREATE TABLE norms AS SELECT i, sqrt(sum(w * w)) AS norm FROM pairs GROUP BY i;
CREATE TABLE cooc AS
  SELECT a.i AS a, b.i AS b, sum(a.w * b.w) AS dot, count(*) AS support
  FROM pairs a JOIN pairs b ON a.u = b.u AND a.i <> b.i GROUP BY a.i, b.i;

-- similar_items returns the stored neighbours: (for kc) the cosine of the item columns, best
-- first, never the item itself, k rows when the item has that many neighbours.
SELECT count(*) AS rows, count(DISTINCT x.i) AS items,
       count(*) FILTER (WHERE abs(s.score - c.dot / (na.norm * nb.norm)) > 1e-5) AS wrong_scores,
       count(*) FILTER (WHERE c.a IS NULL) AS without_common_user,
       count(*) FILTER (WHERE s.item_id = x.i) AS self
FROM items x CROSS JOIN kc CROSS JOIN LATERAL recsys.similar_items(kc.model, x.i, 10) s
LEFT JOIN cooc c ON c.a = x.i AND c.b = s.item_id
LEFT JOIN norms na ON na.i = x.i LEFT JOIN norms nb ON nb.i = s.item_id;
-- The ranking is the SQL ranking (the score at every rank agrees, so ties may swap).
SELECT count(*) AS rank_mismatches
FROM (SELECT x.i, s.n, s.score FROM items x CROSS JOIN kc,
        LATERAL recsys.similar_items(kc.model, x.i, 10) WITH ORDINALITY s(item_id, score, n)) got
JOIN (SELECT c.a, row_number() OVER (PARTITION BY c.a ORDER BY c.dot / (na.norm * nb.norm) DESC) AS n,
             c.dot / (na.norm * nb.norm) AS score
      FROM cooc c JOIN norms na ON na.i = c.a JOIN norms nb ON nb.i = c.b) want ON want.a = got.i AND want.n = got.n
WHERE abs(got.score - want.score) > 1e-5;

-- Planted groups: the share of each item's top-10 neighbours in its own group.
SELECT round(avg((s.item_id / 20 = x.i / 20)::int), 3) AS same_group_ratio,
       avg((s.item_id / 20 = x.i / 20)::int) >= 0.9 AS at_least_90_percent
FROM items x CROSS JOIN km CROSS JOIN LATERAL recsys.similar_items(km.model, x.i, 10) s;

-- recommend: score(i) = sum over the user's items j of w(u, j) sim(j, i), seen items
-- excluded, computed here from the stored lists for every user.
CREATE TABLE want AS
  SELECT p.u, s.item_id, sum(p.w * s.score) AS score
  FROM pairs p CROSS JOIN km CROSS JOIN LATERAL recsys.similar_items(km.model, p.i, 1000) s
  WHERE NOT EXISTS (SELECT 1 FROM pairs q WHERE q.u = p.u AND q.i = s.item_id)
  GROUP BY p.u, s.item_id;
CREATE TABLE got AS
  SELECT us.u, r.item_id, r.score, r.n FROM users us CROSS JOIN km,
    LATERAL recsys.recommend(km.model, us.u, 10) WITH ORDINALITY r(item_id, score, n);
SELECT count(*) AS rows, count(DISTINCT g.u) AS users,
       count(*) FILTER (WHERE w.u IS NULL) AS not_a_candidate,
       count(*) FILTER (WHERE abs(g.score - w.score) > 1e-4 * greatest(1, w.score)) AS wrong_scores,
       count(*) FILTER (WHERE (g.u, g.item_id) IN (SELECT u, i FROM pairs)) AS seen_returned
FROM got g LEFT JOIN want w ON w.u = g.u AND w.item_id = g.item_id;
SELECT count(*) AS rank_mismatches
FROM got g JOIN (SELECT u, score, row_number() OVER (PARTITION BY u ORDER BY score DESC) AS n FROM want) w
  ON w.u = g.u AND w.n = g.n
WHERE abs(g.score - w.score) > 1e-4 * greatest(1, w.score);
-- score() is the number recommend ranks by; an item no list links scores 0.
SELECT count(*) AS score_mismatches
FROM got g CROSS JOIN km WHERE abs(recsys.score(km.model, g.u, g.item_id) - g.score) > 1e-5 * greatest(1, g.score);
SELECT bool_and(abs(recsys.score(km.model, 1, it.i) -
                    (SELECT coalesce(sum(p.w * s.score), 0) FROM pairs p, recsys.similar_items(km.model, p.i, 1000) s
                     WHERE p.u = 1 AND s.item_id = it.i)) <= 1e-4) AS score_of_every_item
FROM km, items it;
-- exclude_seen => false ranks seen items too.
SELECT count(*) FILTER (WHERE (us.u, r.item_id) IN (SELECT u, i FROM pairs)) > 0 AS seen_ranked
FROM users us CROSS JOIN km CROSS JOIN LATERAL recsys.recommend(km.model, us.u, 10, exclude_seen => false) r;

-- recommend_all equals recommend for every user (the same scoring, item for item).
CREATE TABLE batch AS SELECT r.* FROM km, recsys.recommend_all(km.model, 10, NULL::int) r;
SELECT (SELECT count(*) FROM batch) AS batch_rows,
       (SELECT count(*) FROM (SELECT user_id, item_id, score, rank FROM batch
                              EXCEPT SELECT u, item_id, score, n::int FROM got) d) AS only_in_batch,
       (SELECT count(*) FROM (SELECT u, item_id, score, n::int FROM got
                              EXCEPT SELECT user_id, item_id, score, rank FROM batch) d) AS only_per_user;
SELECT count(*) AS batch_seen_returned FROM batch b JOIN pairs p ON p.u = b.user_id AND p.i = b.item_id;
SELECT count(*) AS subset_rows FROM km, recsys.recommend_all(km.model, 3, NULL::int, true, ARRAY[1, 2, 99999]) r;

-- An unknown user gets the popular items (score = users with positive feedback), or no
-- rows with cold_start => false; unknown items are errors; k must be positive.
SELECT bool_and(r.score = (SELECT count(*) FROM pairs p WHERE p.i = r.item_id AND p.w > 0)) AS popularity_scores,
       count(*) AS rows
FROM km, recsys.recommend(km.model, 99999, 5) r;
SELECT count(*) AS no_cold_start FROM km, recsys.recommend(km.model, 99999, 5, cold_start => false) r;
SELECT x.* FROM km, recsys.similar_items(km.model, 99999, 5) x;
SELECT x.* FROM km, recsys.recommend(km.model, 1, 0) x;
SELECT x.* FROM km, recsys.similar_items(km.model, 1, -1) x;
SELECT x.* FROM km, recsys.recommend_all(km.model, 0, NULL::int) x;
SELECT recsys.score(km.model, 99999, 1) IS NULL AS unknown_user_score, recsys.score(km.model, 1, 99999) IS NULL AS unknown_item_score FROM km;
SELECT count(*) AS null_item FROM km, recsys.similar_items(km.model, NULL::int, 5);
SELECT count(*) AS null_user FROM km, recsys.recommend(km.model, NULL::int, 5);
-- k beyond the stored lists: never more than the neighbours kept.
SELECT max(n) <= 200 AS within_neighbours FROM (
  SELECT x.i, count(*) AS n FROM items x CROSS JOIN km CROSS JOIN LATERAL recsys.similar_items(km.model, x.i, 100000) s GROUP BY x.i) c;

-- Calls an item-kNN model has no answer to.
SELECT x.* FROM km, recsys.similar_users(km.model, 1, 5) x;
SELECT x.* FROM km, recsys.user_factors(km.model) x;
SELECT x.* FROM km, recsys.item_factors(km.model, NULL::int) x;
SELECT recsys.predict(km.model, 1, 1) FROM km;
SELECT recsys.rating_metrics(km.model, u, i, w) FROM km, inter;

-- ---- options ----
-- similarity: tfidf and bm25 reweight the matrix; every weighting finds the groups.
CREATE TABLE sims AS
  SELECT s.name, recsys.train_item_knn(u, i, w, s.opts) AS model
  FROM inter, (VALUES ('cosine', '{"similarity": "cosine", "shrinkage": 0}'::jsonb), ('tfidf', '{"similarity": "tfidf", "shrinkage": 0}'),
                      ('bm25', '{"similarity": "bm25", "shrinkage": 0}'),
                      ('bm25_k1_b', '{"similarity": "bm25", "k1": 3, "b": 0.2, "shrinkage": 0}')) s(name, opts)
  GROUP BY s.name, s.opts;
SELECT s.name, recsys.model_info(s.model)->'parameters'->>'similarity' AS similarity,
       recsys.model_info(s.model)->'parameters'->'k1' AS k1, recsys.model_info(s.model)->'parameters'->'b' AS b,
       (SELECT avg((x.item_id / 20 = it.i / 20)::int) >= 0.9 FROM items it, recsys.similar_items(s.model, it.i, 10) x) AS groups_found
FROM sims s ORDER BY s.name;
SELECT count(DISTINCT recsys.model_info(model)->>'fingerprint') AS distinct_models FROM sims;
SELECT (SELECT recsys.model_info(model)->>'fingerprint' FROM sims WHERE name = 'cosine') =
       (SELECT recsys.model_info(model)->>'fingerprint' FROM kc) AS cosine_is_kc;
-- The defaults: bm25 with shrinkage 10 (test/eval_defaults.sh), 200 neighbours.
SELECT i->'parameters'->>'similarity' AS default_similarity, i->'parameters'->'shrinkage' AS default_shrinkage,
       i->'parameters'->'neighbours' AS default_neighbours,
       i->>'fingerprint' = (SELECT recsys.model_info(recsys.train_item_knn(u, i, w, '{"similarity": "bm25", "shrinkage": 10}'::jsonb))->>'fingerprint'
                            FROM inter) AS bm25_shrinkage_10_is_default
FROM (SELECT recsys.model_info(recsys.train_item_knn(u, i, w)) AS i FROM inter) s;
-- tfidf: x' = sqrt(x) * (ln N - ln(1 + items of the user)), then the cosine.
CREATE TABLE tfidf AS
  SELECT p.u, p.i, sqrt(p.w) * (ln((SELECT count(*) FROM items)) - ln(1 + count(*) OVER (PARTITION BY p.u))) AS w FROM pairs p;
SELECT count(*) AS tfidf_wrong_scores
FROM (SELECT a.i AS a, b.i AS b, sum(a.w * b.w) AS dot FROM tfidf a JOIN tfidf b ON a.u = b.u AND a.i <> b.i GROUP BY 1, 2) c
JOIN (SELECT i, sqrt(sum(w * w)) AS norm FROM tfidf GROUP BY i) na ON na.i = c.a
JOIN (SELECT i, sqrt(sum(w * w)) AS norm FROM tfidf GROUP BY i) nb ON nb.i = c.b
JOIN (SELECT it.i, x.item_id, x.score FROM items it, sims, recsys.similar_items(sims.model, it.i, 10) x WHERE sims.name = 'tfidf') s
  ON s.i = c.a AND s.item_id = c.b
WHERE abs(s.score - c.dot / (na.norm * nb.norm)) > 1e-4;

-- shrinkage: sim = dot / (|a| |b| + shrinkage).
CREATE TABLE shrunk AS SELECT recsys.train_item_knn(u, i, w, '{"similarity": "cosine", "shrinkage": 50}'::jsonb) AS model FROM inter;
SELECT count(*) AS rows, count(*) FILTER (WHERE abs(s.score - c.dot / (na.norm * nb.norm + 50)) > 1e-5) AS wrong_scores,
       recsys.model_info(shrunk.model)->'parameters'->'shrinkage' AS shrinkage
FROM items x CROSS JOIN shrunk CROSS JOIN LATERAL recsys.similar_items(shrunk.model, x.i, 10) s
JOIN cooc c ON c.a = x.i AND c.b = s.item_id JOIN norms na ON na.i = x.i JOIN norms nb ON nb.i = s.item_id
GROUP BY 3;

-- min_support: only pairs with at least that many common users.
CREATE TABLE supported AS SELECT recsys.train_item_knn(u, i, w, '{"min_support": 4}'::jsonb) AS model FROM inter;
SELECT count(*) > 0 AS has_neighbours, min(c.support) >= 4 AS all_supported,
       count(*) = (SELECT sum(least(10, n)) FROM (SELECT a, count(*) AS n FROM cooc WHERE support >= 4 GROUP BY a) z)
         AS every_supported_pair_kept
FROM items x CROSS JOIN supported CROSS JOIN LATERAL recsys.similar_items(supported.model, x.i, 10) s
JOIN cooc c ON c.a = x.i AND c.b = s.item_id;
-- Too much support: no neighbours, so recommend has nothing to score.
CREATE TABLE unsupported AS SELECT recsys.train_item_knn(u, i, '{"min_support": 100000}'::jsonb) AS model FROM inter;
SELECT recsys.model_info(model)->'parameters'->'neighbour_pairs' AS neighbour_pairs,
       (SELECT count(*) FROM recsys.similar_items(model, 1, 10)) AS similar_rows,
       (SELECT count(*) FROM recsys.recommend(model, 1, 10)) AS recommend_rows
FROM unsupported;

-- neighbours: the top-N kept per item, the best ones of the full list.
CREATE TABLE few AS SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 3}'::jsonb) AS model FROM inter;
SELECT max(n) AS max_neighbours, (SELECT (recsys.model_info(model)->'parameters'->>'neighbour_pairs')::int <= 3 * 200 FROM few) AS pairs_bounded
FROM (SELECT x.i, count(*) AS n FROM items x CROSS JOIN few CROSS JOIN LATERAL recsys.similar_items(few.model, x.i, 10) s GROUP BY x.i) c;
SELECT count(*) AS prefix_mismatches FROM (
  SELECT x.i, s.item_id, s.n FROM items x CROSS JOIN few CROSS JOIN LATERAL recsys.similar_items(few.model, x.i, 10) WITH ORDINALITY s(item_id, score, n)
  EXCEPT
  SELECT x.i, s.item_id, s.n FROM items x CROSS JOIN km CROSS JOIN LATERAL recsys.similar_items(km.model, x.i, 3) WITH ORDINALITY s(item_id, score, n)) d;

-- binary: every positive weight counts as 1 (the same model as training without weights
-- when every (user, item) pair occurs once).
SELECT recsys.model_info(recsys.train_item_knn(u, i, w, '{"binary": true}'::jsonb))->>'fingerprint' =
       recsys.model_info(recsys.train_item_knn(u, i, 1, '{"binary": true}'::jsonb))->>'fingerprint' AS binary_ignores_weights,
       recsys.model_info(recsys.train_item_knn(u, i, w, '{"binary": true}'::jsonb))->>'fingerprint' <>
       recsys.model_info(recsys.train_item_knn(u, i, w))->>'fingerprint' AS binary_differs
FROM pairs;

-- threads: the model does not depend on the thread count; verbose is accepted.
SET client_min_messages = warning;
SELECT count(DISTINCT recsys.model_info(m)->>'fingerprint') AS distinct_fingerprints FROM (
  SELECT recsys.train_item_knn(u, i, w, '{"threads": 1}'::jsonb) AS m FROM inter
  UNION ALL SELECT recsys.train_item_knn(u, i, w, '{"threads": 2, "verbose": true}'::jsonb) FROM inter
  UNION ALL SELECT model FROM km) s;
RESET client_min_messages;

-- store_seen = false: similar_items works; recommend needs the users' items.
CREATE TABLE unseen AS SELECT recsys.train_item_knn(u, i, w, '{"store_seen": false}'::jsonb) AS model FROM inter;
SELECT recsys.model_info(model)->'stores_seen_items' AS stores_seen,
       recsys.model_info(model)->'bytes' < (SELECT recsys.model_info(model)->'bytes' FROM km) AS smaller,
       (SELECT count(*) FROM recsys.similar_items(model, 5, 10)) AS similar_rows FROM unseen;
SELECT x.* FROM unseen, recsys.recommend(unseen.model, 1, 5) x;
SELECT x.* FROM unseen, recsys.recommend(unseen.model, 1, 5, exclude_seen => false) x;
SELECT recsys.score(unseen.model, 1, 5) FROM unseen;
SELECT count(*) AS cold_start_rows FROM unseen, recsys.recommend(unseen.model, 99999, 5);

-- Bad options: named in the error, before any row is trained on.
SELECT recsys.train_item_knn(u, i, w, '{"similarity": "jaccard"}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 0}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 2.5}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"shrinkage": -1}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"min_support": 0}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"k1": -0.5, "similarity": "bm25"}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"b": 1.5, "similarity": "bm25"}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"binary": "yes"}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"threads": -1}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"neighbors": 50}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, '{"factors": 8}') FROM inter;
SELECT recsys.train_item_knn(u, i, w, CASE WHEN u = 5 THEN '{"neighbours": 5}' ELSE '{}' END::jsonb) FROM inter;

-- ---- input rules ----
-- NULL user, item or weight rows are skipped and counted; NULL options mean defaults:
-- the same neighbour lists as km.
CREATE TABLE with_nulls AS SELECT recsys.train_item_knn(u, i, w, NULL::jsonb) AS model FROM (
  SELECT u, i, w FROM inter UNION ALL VALUES (NULL, 1, 1.0), (1, NULL, 1.0), (1, 1, NULL)) x;
SELECT recsys.model_info(model)->'parameters'->'rows_skipped' AS rows_skipped,
       recsys.model_info(model)->'parameters'->'rows' AS rows,
       (recsys.model_info(model)->'parameters') - 'rows_skipped' =
       (SELECT (recsys.model_info(model)->'parameters') - 'rows_skipped' FROM km) AS same_parameters
FROM with_nulls;
SELECT count(*) AS differences FROM (
  SELECT x.i, s.* FROM items x CROSS JOIN with_nulls CROSS JOIN LATERAL recsys.similar_items(with_nulls.model, x.i, 10) s
  EXCEPT
  SELECT x.i, s.* FROM items x CROSS JOIN km CROSS JOIN LATERAL recsys.similar_items(km.model, x.i, 10) s) d;
-- No usable rows: NULL, as avg() of nothing.
SELECT recsys.train_item_knn(u, i) IS NULL AS empty_is_null FROM inter WHERE false;
SELECT recsys.train_item_knn(u, i, w) IS NULL AS all_null_is_null FROM (VALUES (NULL::int, NULL::int, NULL::float8)) v(u, i, w);
-- NaN or infinite weights are errors; unsupported ID types too.
SELECT recsys.train_item_knn(u, i, 'NaN'::float8) FROM inter;
SELECT recsys.train_item_knn(u, i, w * 'Infinity'::float8) FROM inter;
SELECT recsys.train_item_knn(u::numeric, i) FROM inter;
-- A negative total (a return, a dislike) is no similarity evidence, but the item stays
-- seen: user 1 disliking item 7 is never recommended item 7.
CREATE TABLE disliked AS SELECT recsys.train_item_knn(u, i, w) AS model FROM (
  SELECT u, i, w FROM inter WHERE NOT (u = 1 AND i = 7) UNION ALL VALUES (1, 7, -5.0)) x;
SELECT recsys.model_info(model)->'parameters'->'negative_pairs' AS negative_pairs,
       (SELECT count(*) FROM recsys.recommend(model, 1, 200) r WHERE r.item_id = 7) AS disliked_recommended,
       (SELECT count(*) FROM recsys.recommend(model, 1, 200, exclude_seen => false) r WHERE r.item_id = 7) > 0 AS reachable_otherwise
FROM disliked;

-- Text IDs (Amazon style) give the same neighbour lists as integer IDs.
CREATE TABLE km_text AS
  SELECT recsys.train_item_knn('A' || lpad(u::text, 6, '0'), 'B00' || lpad(i::text, 7, '0'), w) AS model FROM inter;
SELECT recsys.model_info(model)->>'user_id_type' AS user_type, recsys.model_info(model)->>'item_id_type' AS item_type FROM km_text;
SELECT count(*) AS differences FROM (
  SELECT 'B00' || lpad(x.i::text, 7, '0') AS item_id, s.n, 'B00' || lpad(s.item_id::text, 7, '0') AS neighbour
  FROM items x CROSS JOIN km CROSS JOIN LATERAL recsys.similar_items(km.model, x.i, 10) WITH ORDINALITY s(item_id, score, n)
  EXCEPT
  SELECT 'B00' || lpad(x.i::text, 7, '0'), s.n, s.item_id
  FROM items x CROSS JOIN km_text,
       LATERAL recsys.similar_items(km_text.model, 'B00' || lpad(x.i::text, 7, '0'), 10) WITH ORDINALITY s(item_id, score, n)) d;
SELECT count(*) AS rows FROM km_text, recsys.recommend(km_text.model, 'A000001', 5);
-- Integer users, text items: the item type as a typed NULL; the same lists as km.
CREATE TABLE km_mixed AS SELECT recsys.train_item_knn(u, 'B00' || lpad(i::text, 7, '0'), w) AS model FROM inter;
SELECT count(*) AS differences FROM (
  SELECT us.u, r.n, 'B00' || lpad(r.item_id::text, 7, '0') AS item_id
  FROM users us CROSS JOIN km CROSS JOIN LATERAL recsys.recommend(km.model, us.u, 5) WITH ORDINALITY r(item_id, score, n)
  EXCEPT
  SELECT us.u, r.n, r.item_id
  FROM users us CROSS JOIN km_mixed CROSS JOIN LATERAL recsys.recommend(km_mixed.model, us.u, 5, NULL::text) WITH ORDINALITY r(item_id, score, n)) d;

-- ---- blending: ALS and item-kNN for one user in one query ----
-- Each model's top 50, scores min-max normalised to [0, 1] per list (an item missing
-- from a list counts 0), then weighted: 0.6 ALS + 0.4 item-kNN.
CREATE TABLE als AS SELECT recsys.train_als(u, i, w, '{"factors": 16, "iterations": 8, "seed": 3}'::jsonb) AS model FROM inter;
CREATE FUNCTION blend(u int, w_als float8, w_knn float8, k int) RETURNS TABLE(item_id int, score float8) LANGUAGE sql AS $$
  WITH a AS (SELECT r.item_id, r.score FROM als, recsys.recommend(als.model, u, 50) r),
       b AS (SELECT r.item_id, r.score FROM km, recsys.recommend(km.model, u, 50) r),
       an AS (SELECT a.item_id, coalesce((a.score - min(a.score) OVER ()) / nullif(max(a.score) OVER () - min(a.score) OVER (), 0), 1) AS s FROM a),
       bn AS (SELECT b.item_id, coalesce((b.score - min(b.score) OVER ()) / nullif(max(b.score) OVER () - min(b.score) OVER (), 0), 1) AS s FROM b)
  SELECT item_id, w_als * coalesce(an.s, 0) + w_knn * coalesce(bn.s, 0) AS score
  FROM an FULL JOIN bn USING (item_id)
  ORDER BY score DESC, item_id
  LIMIT k
$$;
SELECT count(*) AS rows, count(DISTINCT item_id) AS distinct_items, bool_and(score BETWEEN 0 AND 1) AS in_range,
       count(*) FILTER (WHERE (1, item_id) IN (SELECT u, i FROM pairs)) AS seen_returned
FROM blend(1, 0.6, 0.4, 10);
-- The weights do what they say: all weight on one model gives that model's ranking.
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM blend(us.u, 0, 1, 10)) =
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM km, recsys.recommend(km.model, us.u, 10)) AS knn_only,
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM blend(us.u, 1, 0, 10)) =
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM als, recsys.recommend(als.model, us.u, 10)) AS als_only
FROM users us WHERE us.u IN (1, 2, 3) ORDER BY us.u;

-- Cancellation: statement_timeout stops the training, not only the ingest (4 million
-- dense rows are read in under a second; their similarities take 6 s even on a fast
-- AVX-512 machine),
-- promptly, and the session stays usable.
SET statement_timeout = '1500ms';
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM recsys.train_item_knn(u, i) FROM generate_series(1, 1000) u, generate_series(1, 4000) i;
  RAISE NOTICE 'training was not cancelled';
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'cancelled within 4 s of the start: %', clock_timestamp() - t0 < interval '4 s';
END $$;
RESET statement_timeout;
SELECT count(*) AS session_ok FROM items;

-- ---- evaluation ----
-- ranking_metrics on item-kNN: a random 20 % held out; item-kNN finds the groups, so it
-- beats popularity.
CREATE TABLE test_rows AS SELECT * FROM pairs WHERE recsys.random_split(7, 0.2, u, i);
CREATE TABLE train_rows AS SELECT * FROM pairs WHERE NOT recsys.random_split(7, 0.2, u, i);
SELECT (k->>'users')::int = (SELECT count(DISTINCT u) FROM test_rows WHERE u IN (SELECT u FROM train_rows)) AS all_known_users,
       (k->>'precision')::float8 > (p->>'precision')::float8 AS beats_popularity,
       (k->>'ndcg')::float8 > 0 AS ndcg_positive
FROM (SELECT recsys.ranking_metrics(m.model, t.u, t.i) AS k
      FROM (SELECT recsys.train_item_knn(u, i, w) AS model FROM train_rows) m, test_rows t) a,
     (SELECT recsys.ranking_metrics(m.model, t.u, t.i) AS p
      FROM (SELECT recsys.train_popularity(u, i) AS model FROM train_rows) m, test_rows t) b;
SELECT recsys.ranking_metrics(unseen.model, t.u, t.i) FROM unseen, test_rows t;
SELECT setting, fold_count, precision_mean > 0 AS precision_positive, rmse_mean IS NULL AS no_rmse
FROM recsys.cross_validate('SELECT u, i, w FROM t06.pairs', 'item_knn',
                           ARRAY['{"neighbours": 50}', '{"similarity": "bm25"}']::jsonb[], folds => 3);

-- ---- parallel aggregation: the same model as a serial plan ----
CREATE TABLE big AS SELECT * FROM inter, generate_series(1, 4) copy;
ANALYZE big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 20}'::jsonb) FROM big;
EXPLAIN (COSTS OFF) CREATE TABLE par AS
  SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 20}'::jsonb) AS int_model FROM big;
CREATE TABLE par AS
  SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 20}'::jsonb) AS int_model,
         recsys.train_item_knn('u' || u, 'i' || i, w, '{"similarity": "bm25"}'::jsonb) AS text_model,
         recsys.train_item_knn(u, i) AS default_model
  FROM big;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ser AS
  SELECT recsys.train_item_knn(u, i, w, '{"neighbours": 20}'::jsonb) AS int_model,
         recsys.train_item_knn('u' || u, 'i' || i, w, '{"similarity": "bm25"}'::jsonb) AS text_model,
         recsys.train_item_knn(u, i) AS default_model
  FROM big;
SELECT recsys.model_info(p.int_model)->>'fingerprint' = recsys.model_info(s.int_model)->>'fingerprint' AS int_same,
       recsys.model_info(p.text_model)->>'fingerprint' = recsys.model_info(s.text_model)->>'fingerprint' AS text_same,
       recsys.model_info(p.default_model)->>'fingerprint' = recsys.model_info(s.default_model)->>'fingerprint' AS default_same,
       recsys.model_info(p.int_model)->'parameters'->'rows' AS rows
FROM par p, ser s;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

DROP SCHEMA t06 CASCADE;

-- Live serving: recommend_for_items (fold-in) on every model kind, fold_in, and the
-- candidate filters include / exclude on recommend, recommend_all and similar_items.
-- Every check compares against an independent answer (brute force through score(),
-- the unfiltered list filtered afterwards, or a second call that must agree).
SET recsys.threads = 2;
SET jit = off;
CREATE SCHEMA t14;
SET search_path = t14, public;

SELECT setseed(0.25);
CREATE TABLE inter AS
  SELECT u, CASE WHEN random() < 0.8 THEN (u % 6) * 10 + floor(random() * 10)::int ELSE floor(random() * 60)::int END AS i,
         (1 + floor(random() * 3))::float8 AS w
  FROM generate_series(1, 200) u, generate_series(1, 8);
CREATE TABLE pairs AS SELECT u, i, sum(w) AS w FROM inter GROUP BY u, i;
CREATE TABLE als AS SELECT recsys.train_als(u, i, w, '{"factors": 6, "iterations": 8, "alpha": 2, "regularization": 0.5}') AS model FROM inter;
CREATE TABLE mf AS SELECT recsys.train_mf(u, i, w, '{"factors": 4, "epochs": 10}') AS model FROM pairs;
CREATE TABLE pop AS SELECT recsys.train_popularity(u, i, w) AS model FROM inter;
CREATE TABLE km AS SELECT recsys.train_item_knn(u, i, w) AS model FROM inter;
CREATE TABLE cm AS SELECT recsys.train_content(i, jsonb_build_object('group', (i / 10)::text, 'tags', jsonb_build_array(i % 3, i % 5)))
  AS model FROM generate_series(0, 59) i;
CREATE TABLE hist AS SELECT u, array_agg(i ORDER BY i) AS items, array_agg(w ORDER BY i) AS weights FROM pairs GROUP BY u;
CREATE TABLE itemf AS SELECT r.item_id, r.factors FROM als, recsys.item_factors(als.model, NULL::int) r;
CREATE FUNCTION dot(a real[], b real[]) RETURNS double precision LANGUAGE sql IMMUTABLE
  SET search_path = pg_catalog AS $$ SELECT sum(x::float8 * y) FROM unnest(a, b) t(x, y) $$;

-- ALS fold-in: a trained user's history folds into nearly the user's own factors (the
-- model is the training's fixed point: one more user step moves it little).
SELECT count(*) AS users,
       avg(dot(f, uf) / sqrt(dot(f, f) * dot(uf, uf))) > 0.99 AS cosine_near_1
FROM (SELECT h.u, recsys.fold_in(als.model, h.items, h.weights) AS f, x.factors AS uf
      FROM als, hist h JOIN (SELECT r.user_id, r.factors FROM als, recsys.user_factors(als.model, NULL::int) r) x
        ON x.user_id = h.u) s;
-- The scores recommend_for_items returns are the folded-in vector's dot products.
SELECT max(abs(r.score - dot(recsys.fold_in(als.model, ARRAY[1, 2, 3, 15]), f.factors))) < 1e-5 AS scores_are_dot_products,
       count(*) AS rows, count(*) FILTER (WHERE r.item_id IN (1, 2, 3, 15)) AS given_returned
FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2, 3, 15], 10) r JOIN itemf f USING (item_id);
-- Duplicates add up; NULL elements and unknown IDs are skipped; weights default to 1.
SELECT recsys.fold_in(model, ARRAY[4, 4, 9], ARRAY[1, 2, 1]) = recsys.fold_in(model, ARRAY[4, 9], ARRAY[3, 1]) AS duplicates_add_up,
       recsys.fold_in(model, ARRAY[4, NULL, 999, 9]) = recsys.fold_in(model, ARRAY[4, 9]) AS null_and_unknown_skipped,
       recsys.fold_in(model, ARRAY[4, 9]) = recsys.fold_in(model, ARRAY[4, 9], ARRAY[1, 1]) AS default_weight_1,
       recsys.fold_in(model, ARRAY[4, 9]) <> recsys.fold_in(model, ARRAY[4, 9], ARRAY[5, 1]) AS weights_matter,
       cardinality(recsys.fold_in(model, ARRAY[4])) AS factors,
       recsys.fold_in(model, ARRAY[999]) IS NULL AS nothing_known_is_null
FROM als;
-- Given items excluded by default, kept on request.
SELECT (SELECT count(*) FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], 60) r WHERE r.item_id IN (1, 2)) AS excluded,
       (SELECT count(*) FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], 60, exclude_given => false) r
          WHERE r.item_id IN (1, 2)) AS kept;
-- Empty or all-unknown history: the popular items (as recommend gives an unknown user),
-- or no rows with cold_start => false.
SELECT (SELECT array_agg(item_id) FROM als, recsys.recommend_for_items(als.model, ARRAY[998, 999], 5))
     = (SELECT array_agg(item_id) FROM als, recsys.recommend(als.model, -1, 5)) AS unknown_gets_popular,
       (SELECT count(*) FROM als, recsys.recommend_for_items(als.model, ARRAY[]::int[], 5)) AS empty_rows,
       (SELECT count(*) FROM als, recsys.recommend_for_items(als.model, ARRAY[998], 5, cold_start => false)) AS cold_off_rows;

-- Biased MF: the ratings fold into a bias and factors; k rows, given items excluded.
SELECT count(*) AS rows, count(*) FILTER (WHERE item_id IN (3, 13, 23)) AS given_returned,
       cardinality((SELECT recsys.fold_in(mf.model, ARRAY[3, 13, 23], ARRAY[5, 4, 1]) FROM mf)) AS factors
FROM mf, recsys.recommend_for_items(mf.model, ARRAY[3, 13, 23], ARRAY[5, 4, 1], 8);
-- Different ratings move the list; duplicates are averaged (5 and 1 count as 3).
SELECT (SELECT recsys.fold_in(model, ARRAY[3, 13], ARRAY[5, 1]) FROM mf) <> (SELECT recsys.fold_in(model, ARRAY[3, 13], ARRAY[1, 5]) FROM mf) AS ratings_matter,
       (SELECT recsys.fold_in(model, ARRAY[3, 3, 13], ARRAY[5, 1, 2]) FROM mf) = (SELECT recsys.fold_in(model, ARRAY[3, 13], ARRAY[3, 2]) FROM mf) AS duplicates_averaged;

-- Popularity: the popular items minus the history.
SELECT (SELECT array_agg(item_id) FROM pop, recsys.recommend_for_items(pop.model, ARRAY[(SELECT item_id FROM pop, recsys.recommend(pop.model, -1, 1))], 4))
     = (SELECT array_agg(item_id) FROM (SELECT item_id FROM pop, recsys.recommend(pop.model, -1, 5) OFFSET 1) s) AS popular_minus_history;

-- item_knn and content: unchanged (no known item gives no rows unless cold_start => true).
SELECT (SELECT count(*) FROM km, recsys.recommend_for_items(km.model, ARRAY[999], 5)) AS knn_unknown_rows,
       (SELECT count(*) FROM km, recsys.recommend_for_items(km.model, ARRAY[999], 5, cold_start => true)) AS knn_cold_rows,
       (SELECT count(*) FROM cm, recsys.recommend_for_items(cm.model, ARRAY[999], 5)) AS content_unknown_rows;

-- Filters. Brute force: the top-k by score() of the allowed, unseen items.
CREATE TABLE allowed AS SELECT ARRAY[0, 5, 11, 17, 23, 29, 31, 37, 41, 47, 53, 59, 999] AS inc, ARRAY[5, 11, 888] AS exc;
CREATE FUNCTION brute(m recsys.model, usr int, k int, inc int[], exc int[]) RETURNS int[] LANGUAGE sql STABLE
  SET search_path = pg_catalog AS $$
  SELECT array_agg(i ORDER BY s DESC, i) FROM (
    SELECT c AS i, recsys.score(m, usr, c) AS s FROM generate_series(0, 59) c
    WHERE (inc IS NULL OR c = ANY (inc)) AND (exc IS NULL OR c <> ALL (exc))
      AND NOT EXISTS (SELECT 1 FROM t14.pairs p WHERE p.u = usr AND p.i = c)
    ORDER BY s DESC, c LIMIT k) t $$;
SELECT count(*) AS users,
       count(*) FILTER (WHERE inc_list = brute(als.model, u, 5, a.inc, NULL)) AS include_ok,
       count(*) FILTER (WHERE exc_list = brute(als.model, u, 5, NULL, a.exc)) AS exclude_ok,
       count(*) FILTER (WHERE both_list = brute(als.model, u, 5, a.inc, a.exc)) AS both_ok,
       count(*) FILTER (WHERE cardinality(big_list) = cardinality(brute(als.model, u, 100, a.inc, NULL))) AS k_above_allowed_ok
FROM als, allowed a,
     LATERAL (SELECT u,
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend(als.model, u, 5, include => a.inc)) AS inc_list,
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend(als.model, u, 5, exclude => a.exc)) AS exc_list,
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend(als.model, u, 5, include => a.inc, exclude => a.exc)) AS both_list,
       (SELECT array_agg(item_id) FROM recsys.recommend(als.model, u, 100, include => a.inc)) AS big_list
     FROM generate_series(1, 40) u) s;
-- The same on MF, item_knn and popularity: the filtered list is the unfiltered full list filtered.
CREATE FUNCTION filtered_ok(m recsys.model, usr int, inc int[], exc int[]) RETURNS boolean LANGUAGE sql STABLE
  SET search_path = pg_catalog AS $$
  SELECT coalesce((SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend(m, usr, 4, include => inc, exclude => exc)), '{}')
       = coalesce((SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (
           SELECT item_id, score FROM recsys.recommend(m, usr, 100)
           WHERE (inc IS NULL OR item_id = ANY (inc)) AND (exc IS NULL OR item_id <> ALL (exc))
           ORDER BY score DESC, item_id LIMIT 4) t), '{}') $$;
SELECT count(*) FILTER (WHERE filtered_ok(mf.model, u, a.inc, a.exc)) AS mf_ok,
       count(*) FILTER (WHERE filtered_ok(km.model, u, a.inc, a.exc)) AS knn_ok,
       count(*) FILTER (WHERE filtered_ok(pop.model, u, a.inc, a.exc)) AS pop_ok,
       count(*) FILTER (WHERE filtered_ok(als.model, u, NULL, a.exc)) AS als_exclude_ok
FROM mf, km, pop, als, allowed a, generate_series(1, 30) u;
-- recommend_all with filters equals recommend per user; fold-in with filters equals the
-- unfiltered fold-in list filtered.
SELECT (SELECT array_agg(item_id ORDER BY user_id, rank) FROM als, allowed a, recsys.recommend_all(als.model, 3, NULL::int, include => a.inc, exclude => a.exc))
     = (SELECT array_agg(r.item_id ORDER BY u, r.score DESC, r.item_id) FROM als, allowed a, generate_series(1, 200) u,
          recsys.recommend(als.model, u, 3, include => a.inc, exclude => a.exc) r) AS recommend_all_filtered,
       (SELECT array_agg(item_id ORDER BY user_id, rank) FROM km, allowed a, recsys.recommend_all(km.model, 3, NULL::int, true, ARRAY[1, 2, 3], exclude => a.exc))
     = (SELECT array_agg(r.item_id ORDER BY u, r.score DESC, r.item_id) FROM km, allowed a, generate_series(1, 3) u,
          recsys.recommend(km.model, u, 3, exclude => a.exc) r) AS recommend_all_knn_filtered;
SELECT (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM als, allowed a, recsys.recommend_for_items(als.model, ARRAY[1, 2, 3], 4, include => a.inc, exclude => a.exc))
     = (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT r.item_id, r.score FROM als, allowed a, recsys.recommend_for_items(als.model, ARRAY[1, 2, 3], 60) r
          WHERE r.item_id = ANY (a.inc) AND r.item_id <> ALL (a.exc) ORDER BY r.score DESC, r.item_id LIMIT 4) t) AS fold_in_filtered,
       (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM km, allowed a, recsys.recommend_for_items(km.model, ARRAY[1, 2, 3], 4, exclude => a.exc))
     = (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT r.item_id, r.score FROM km, allowed a, recsys.recommend_for_items(km.model, ARRAY[1, 2, 3], 60) r
          WHERE r.item_id <> ALL (a.exc) ORDER BY r.score DESC, r.item_id LIMIT 4) t) AS knn_basket_filtered;
-- similar_items: factor, item_knn and content models.
CREATE FUNCTION similar_ok(m recsys.model, it int, inc int[], exc int[]) RETURNS boolean LANGUAGE sql STABLE
  SET search_path = pg_catalog AS $$
  SELECT coalesce((SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.similar_items(m, it, 3, include => inc, exclude => exc)), '{}')
       = coalesce((SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (
           SELECT item_id, score FROM recsys.similar_items(m, it, 100)
           WHERE (inc IS NULL OR item_id = ANY (inc)) AND (exc IS NULL OR item_id <> ALL (exc))
           ORDER BY score DESC, item_id LIMIT 3) t), '{}') $$;
SELECT count(*) FILTER (WHERE similar_ok(als.model, i, a.inc, a.exc)) AS als_ok,
       count(*) FILTER (WHERE similar_ok(km.model, i, a.inc, a.exc)) AS knn_ok,
       count(*) FILTER (WHERE similar_ok(cm.model, i, a.inc, a.exc)) AS content_ok,
       count(*) FILTER (WHERE similar_ok(cm.model, i, NULL, a.exc)) AS content_exclude_ok
FROM als, km, cm, allowed a, generate_series(0, 19) i;
-- Filters: an include list with no known item gives no rows; NULL is no filter; untyped
-- literals and prepared-statement parameters resolve; the witness form takes them too.
SELECT (SELECT count(*) FROM als, recsys.recommend(als.model, 1, 5, include => ARRAY[998, 999])) AS include_unknown_rows,
       (SELECT array_agg(item_id) FROM als, recsys.recommend(als.model, 1, 5, include => NULL, exclude => NULL))
     = (SELECT array_agg(item_id) FROM als, recsys.recommend(als.model, 1, 5)) AS null_is_no_filter,
       (SELECT array_agg(item_id) FROM als, recsys.recommend(als.model, 1, 5, exclude => '{0,1,2}'))
     = (SELECT array_agg(item_id) FROM als, recsys.recommend(als.model, 1, 5, exclude => ARRAY[0, 1, 2])) AS untyped_literal,
       (SELECT array_agg(item_id::int) FROM als, recsys.recommend(als.model, 1::bigint, 5, NULL::text, include => '{0,5,11,17}'))
     = (SELECT array_agg(item_id) FROM als, recsys.recommend(als.model, 1, 5, include => ARRAY[0, 5, 11, 17])) AS witness_form,
       (SELECT array_agg(item_id) FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], 3, include => '{0,5,11,17}'))
     = (SELECT array_agg(item_id) FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], 3, include => ARRAY[0, 5, 11, 17])) AS untyped_fold_in;
PREPARE rec(int, int[]) AS SELECT array_agg(item_id) FROM t14.als, recsys.recommend(als.model, $1, 3, exclude => $2);
EXECUTE rec(1, '{0,1,2}');
PREPARE rec2 AS SELECT count(*) FROM t14.als, recsys.recommend(als.model, $1, 3, include => $2);
EXECUTE rec2(1, '{0,1,2}');
PREPARE sim(int, int[]) AS SELECT count(*) FROM t14.als, recsys.similar_items(als.model, $1, 3, include => $2);
EXECUTE sim(1, '{0,1,2}');
-- An unknown user (cold start) gets the popular allowed items.
SELECT (SELECT array_agg(item_id) FROM als, allowed a, recsys.recommend(als.model, -5, 3, include => a.inc))
     = (SELECT array_agg(item_id) FROM (SELECT item_id FROM als, allowed a, recsys.recommend(als.model, -5, 60) r WHERE r.item_id = ANY (a.inc) LIMIT 3) t) AS cold_start_filtered;

-- The filters' index lists are kept per call site (keyed by the array's bytes): one call
-- site given a different array on every row, the same array on every row, and the two
-- alternating, answers each row as a fresh call would.
CREATE TABLE per_row AS SELECT u, ARRAY(SELECT x FROM generate_series(u % 7, 59, 3 + u % 4) x) AS inc,
  CASE WHEN u % 2 = 0 THEN ARRAY[0, 1, 2, 3, 4, 5] ELSE ARRAY(SELECT x FROM generate_series(u % 5, 59, 2) x) END AS exc
FROM generate_series(1, 40) u;
SELECT count(*) AS users,
       count(*) FILTER (WHERE got_inc = want_inc) AS include_same, count(*) FILTER (WHERE got_exc = want_exc) AS exclude_same
FROM (SELECT p.u,
        (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend(als.model, p.u, 4, include => p.inc)) AS got_inc,
        (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT item_id, score FROM recsys.recommend(als.model, p.u, 60)
           WHERE item_id = ANY (p.inc) ORDER BY score DESC, item_id LIMIT 4) t) AS want_inc,
        (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.similar_items(als.model, p.u, 4, exclude => p.exc)) AS got_exc,
        (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT item_id, score FROM recsys.similar_items(als.model, p.u, 60)
           WHERE item_id <> ALL (p.exc) ORDER BY score DESC, item_id LIMIT 4) t) AS want_exc
      FROM als, per_row p) s;

-- The same with arrays stored out of line (TOAST pointers as keys): every row's own array.
CREATE TABLE toasted (u int, inc int[]);
ALTER TABLE toasted ALTER COLUMN inc SET STORAGE EXTERNAL;
INSERT INTO toasted SELECT u, ARRAY(SELECT (x * (u + 3)) % 997 FROM generate_series(1, 700) x) FROM generate_series(1, 30) u;
SELECT pg_relation_size(reltoastrelid) > 0 AS stored_out_of_line FROM pg_class WHERE oid = 'toasted'::regclass;
SELECT count(*) AS users, count(*) FILTER (WHERE got = want) AS include_same
FROM (SELECT t.u,
        (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM recsys.recommend(als.model, t.u, 3, include => t.inc)) AS got,
        (SELECT array_agg(item_id ORDER BY score DESC, item_id) FROM (SELECT item_id, score FROM recsys.recommend(als.model, t.u, 60)
           WHERE item_id = ANY (t.inc) ORDER BY score DESC, item_id LIMIT 3) x) AS want
      FROM als, toasted t) s;

-- Errors.
SELECT r.* FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], ARRAY[1.0], 5) r;
SELECT r.* FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], ARRAY[1.0, 'Infinity'], 5) r;
SELECT r.* FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], ARRAY[1.0, 'NaN'], 5) r;
SELECT r.* FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], ARRAY[1.0, NULL], 5) r;
SELECT recsys.fold_in(als.model, ARRAY[1, 2], ARRAY[1.0]) FROM als;
SELECT r.* FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2], 0) r;
SELECT recsys.fold_in(km.model, ARRAY[1, 2]) FROM km;
SELECT recsys.fold_in(pop.model, ARRAY[1, 2]) FROM pop;
SELECT r.* FROM als, recsys.recommend_for_items(als.model, ARRAY[1], 5, include => ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]) r;
SELECT r.* FROM als, recsys.recommend_all(als.model, 3, NULL::int, include => 5) r;
CREATE TABLE seg AS SELECT recsys.kmeans(ARRAY[g::real, (g % 7)::real], 2) AS model FROM generate_series(1, 50) g;
SELECT r.* FROM seg, recsys.recommend_for_items(seg.model, ARRAY[1], 5) r;

-- explain: the contributions sum to the score (every contribution when k is large),
-- largest first.
SELECT abs((SELECT sum(contribution) FROM als, recsys.explain(als.model, ARRAY[1, 2, 3, 15], 22, 100))
         - (SELECT score FROM als, recsys.recommend_for_items(als.model, ARRAY[1, 2, 3, 15], 60) WHERE item_id = 22)) < 1e-4 AS als_sums_to_score,
       (SELECT count(*) FROM als, recsys.explain(als.model, ARRAY[1, 2, 3, 15, 15], 22, 100)) AS als_parts,
       (SELECT array_agg(contribution ORDER BY contribution DESC) FROM als, recsys.explain(als.model, ARRAY[1, 2, 3, 15], 22, 2))
     = (SELECT (array_agg(contribution ORDER BY contribution DESC))[1:2] FROM als, recsys.explain(als.model, ARRAY[1, 2, 3, 15], 22, 100)) AS als_top_k_first;
SELECT count(*) AS users,
       count(*) FILTER (WHERE abs(coalesce(e, 0) - recsys.score(km.model, u, 7)) < 1e-5) AS knn_user_sums_to_score
FROM km, LATERAL (SELECT u, (SELECT sum(contribution) FROM recsys.explain(km.model, u, 7, 1000)) AS e FROM generate_series(1, 50) u) s;
SELECT abs((SELECT sum(contribution) FROM km, recsys.explain(km.model, ARRAY[1, 2, 3], 4, 10, ARRAY[2, 1, 3]))
         - (SELECT score FROM km, recsys.recommend_for_items(km.model, ARRAY[1, 2, 3], ARRAY[2, 1, 3], 60) WHERE item_id = 4)) < 1e-5 AS knn_history_sums_to_score,
       abs((SELECT sum(contribution) FROM cm, recsys.explain(cm.model, ARRAY[1, 12, 13], 3, 10, ARRAY[1, 2, 0.5]))
         - (SELECT score FROM cm, recsys.recommend_for_items(cm.model, ARRAY[1, 12, 13], ARRAY[1, 2, 0.5], 60) WHERE item_id = 3)) < 1e-5 AS content_sums_to_score;
SELECT r.* FROM mf, recsys.explain(mf.model, ARRAY[1, 2], 3) r;
SELECT r.* FROM pop, recsys.explain(pop.model, 1, 3) r;
SELECT r.* FROM als, recsys.explain(als.model, 99999, 3) r;
SELECT r.* FROM als, recsys.explain(als.model, ARRAY[1, 2], 99999) r;
SELECT r.* FROM als, recsys.explain(als.model, ARRAY[1, 2], 3, 0) r;
SELECT r.* FROM cm, recsys.explain(cm.model, 1, 3) r;

-- Stored similar-item lists (factor models): each item's most similar items by cosine,
-- built at the end of training, read by similar_items instead of scoring the catalogue.
-- A model with lists of 10 (and one with the default, 100) serves exactly what the same
-- model without lists scores (same factors: same data, same seed), for k within and
-- beyond the list and under include / exclude filters (scoring takes over when a
-- filtered list runs out).
CREATE TABLE wide AS SELECT u, (u * 7 + g * 13) % 300 AS i FROM generate_series(1, 300) u, generate_series(1, 12) g;
CREATE TABLE sims AS SELECT
  recsys.train_als(u, i, '{"factors": 8, "iterations": 4, "similar_items": 0}') AS none,
  recsys.train_als(u, i, '{"factors": 8, "iterations": 4, "similar_items": 10}') AS ten,
  recsys.train_als(u, i, '{"factors": 8, "iterations": 4}') AS dflt,
  recsys.train_mf(u, i, (u % 5 + 1)::float8, '{"factors": 4, "epochs": 5, "similar_items": 0}') AS mf_none,
  recsys.train_mf(u, i, (u % 5 + 1)::float8, '{"factors": 4, "epochs": 5, "similar_items": 10}') AS mf_ten
FROM wide;
SELECT recsys.model_info(none)->'parameters'->'similar_items' AS none_stored,
       recsys.model_info(ten)->'parameters'->'similar_items' AS ten_stored,
       recsys.model_info(dflt)->'parameters'->'similar_items' AS default_stored,
       recsys.model_info(mf_ten)->'parameters'->'similar_items' AS mf_stored,
       (recsys.model_info(ten)->>'bytes')::bigint - (recsys.model_info(none)->>'bytes')::bigint AS list_bytes
FROM sims;
CREATE FUNCTION same_similar(a recsys.model, b recsys.model, it int, k int, inc int[], exc int[]) RETURNS boolean
  LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
  SELECT coalesce((SELECT array_agg(item_id || ':' || score ORDER BY score DESC, item_id) FROM recsys.similar_items(a, it, k, include => inc, exclude => exc)), '{}')
       = coalesce((SELECT array_agg(item_id || ':' || score ORDER BY score DESC, item_id) FROM recsys.similar_items(b, it, k, include => inc, exclude => exc)), '{}') $$;
WITH f AS (SELECT it, k, CASE WHEN it % 3 = 0 THEN (SELECT array_agg(x) FROM generate_series(it % 7, 299, 5) x) END AS inc,
                  CASE WHEN it % 2 = 0 THEN (SELECT array_agg(x) FROM generate_series(it % 4, 299, 3) x) END AS exc
           FROM generate_series(0, 299, 11) it, unnest(ARRAY[1, 5, 10, 11, 40, 400]) k)
SELECT count(*) AS calls,
       count(*) FILTER (WHERE same_similar(ten, none, it, k, inc, exc)) AS ten_same,
       count(*) FILTER (WHERE same_similar(dflt, none, it, k, inc, exc)) AS default_same,
       count(*) FILTER (WHERE same_similar(mf_ten, mf_none, it, k, inc, exc)) AS mf_same
FROM sims, f;
-- A hybrid item model rebuilds the lists for its catalogue (new items included).
CREATE TABLE hyb AS SELECT
  recsys.train_hybrid_items(s.ten, i, jsonb_build_object('g', (i % 10)::text)) AS ten,
  recsys.train_hybrid_items(s.none, i, jsonb_build_object('g', (i % 10)::text)) AS none
FROM sims s, generate_series(0, 319) i GROUP BY s.ten, s.none;
SELECT (SELECT count(*) FROM hyb, recsys.similar_items(hyb.ten, 310, 5)) AS new_item_rows,
       count(*) FILTER (WHERE same_similar(ten, none, it, 10, NULL, NULL)) AS hybrid_same,
       min((recsys.model_info(ten)->>'bytes')::bigint - (recsys.model_info(none)->>'bytes')::bigint) AS list_bytes
FROM hyb, generate_series(0, 319, 9) it;
-- Option errors.
SELECT recsys.train_als(u, i, '{"similar_items": -1}') FROM wide;
SELECT recsys.train_als(u, i, '{"similar_items": 2.5}') FROM wide;
SELECT recsys.train_mf(u, i, 1.0, '{"similar_items": "many"}') FROM wide;

DROP SCHEMA t14 CASCADE;

-- Serving: recommend, similar_items, similar_users, score, item_factors, user_factors.
-- Scores depend on the CPU's floating point, so results are checked through
-- properties (order, exclusions, counts, agreement between functions), not printed.
SET recsys.threads = 1;
CREATE SCHEMA t02;
SET search_path = t02, public;

SELECT setseed(0.75);
CREATE TABLE r AS
  SELECT (random() * 59)::int + 1 AS u, (random() * random() * 49)::int + 1 AS i FROM generate_series(1, 1200);
CREATE TABLE seen AS SELECT DISTINCT u, i FROM r;
CREATE TABLE users AS SELECT DISTINCT u FROM r;
CREATE TABLE m AS SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 5, "seed": 3}'::jsonb) AS m FROM r;
SELECT (recsys.model_info(m)->>'users')::int AS users, (recsys.model_info(m)->>'items')::int AS items FROM m;

-- recommend: k rows, best first, never a seen item (every user, via a lateral join).
SELECT count(*) AS rows, count(DISTINCT u) AS users,
       count(*) FILTER (WHERE (u, item_id) IN (SELECT u, i FROM seen)) AS seen_returned
FROM m, users, LATERAL recsys.recommend(m.m, users.u, 5) x;
SELECT bool_and(ok) AS best_first
FROM (SELECT x.score <= lag(x.score) OVER (PARTITION BY users.u ORDER BY n) OR n = 1 AS ok
      FROM m, users, LATERAL recsys.recommend(m.m, users.u, 10) WITH ORDINALITY x(item_id, score, n)) s;
-- k larger than the catalogue: every unseen item, once
SELECT bool_and(n = (SELECT count(*) FROM (SELECT DISTINCT i FROM r) d) - (SELECT count(*) FROM seen s WHERE s.u = c.u)
                AND n = n_distinct) AS every_unseen_item
FROM (SELECT users.u, count(*) AS n, count(DISTINCT x.item_id) AS n_distinct
      FROM m, users, LATERAL recsys.recommend(m.m, users.u, 1000) x GROUP BY users.u) c;
-- exclude_seen false: the full ranking; without the seen items it is the exclude_seen ranking
SELECT bool_and(n_all = (SELECT count(DISTINCT i) FROM r)) AS full_ranking,
       bool_and(unseen_part = excluded) AS same_order_without_seen
FROM (SELECT users.u,
             (SELECT count(*) FROM recsys.recommend(m.m, users.u, 1000, false)) AS n_all,
             (SELECT array_agg(x.item_id ORDER BY n) FROM recsys.recommend(m.m, users.u, 1000, false) WITH ORDINALITY x(item_id, score, n)
              WHERE (users.u, x.item_id) NOT IN (SELECT u, i FROM seen)) AS unseen_part,
             (SELECT array_agg(x.item_id ORDER BY n) FROM recsys.recommend(m.m, users.u, 1000, true) WITH ORDINALITY x(item_id, score, n)) AS excluded
      FROM m, users) s;
SELECT count(*) FILTER (WHERE (users.u, x.item_id) IN (SELECT u, i FROM seen)) > 0 AS seen_items_ranked
FROM m, users, LATERAL recsys.recommend(m.m, users.u, 3, exclude_seen => false) x;
-- k must be positive
SELECT * FROM m, recsys.recommend(m.m, 1, 0);
SELECT * FROM m, recsys.recommend(m.m, 1, -5);
-- NULL arguments: no rows
SELECT count(*) AS null_model FROM recsys.recommend(NULL::recsys.model, 1, 5);
SELECT count(*) AS null_user FROM m, recsys.recommend(m.m, NULL::int, 5);
SELECT count(*) AS null_k FROM m, recsys.recommend(m.m, 1, NULL);
SELECT count(*) AS null_exclude_seen FROM m, recsys.recommend(m.m, 1, 5, NULL::boolean);
SELECT count(*) AS null_cold_start FROM m, recsys.recommend(m.m, 1, 5, true, NULL);

-- Unknown users get the most popular items (score = number of users), unless cold_start
-- is false.
SELECT array_agg(i ORDER BY n DESC, i) AS popular_items, array_agg(n ORDER BY n DESC, i) AS popularity
FROM (SELECT i, count(*) AS n FROM seen GROUP BY i ORDER BY n DESC, i LIMIT 5) p;
SELECT array_agg(item_id) AS cold_start_items, array_agg(score) AS scores FROM m, recsys.recommend(m.m, 1000, 5);
SELECT count(*) AS no_cold_start FROM m, recsys.recommend(m.m, 1000, 5, cold_start => false);
SELECT count(*) AS no_cold_start_excluding FROM m, recsys.recommend(m.m, 1000, 5, true, false);

-- The user given in another type: compared through its text form; items come back in the
-- type of the user argument.
SELECT (SELECT array_agg(item_id::text) FROM recsys.recommend(m.m, 7, 5)) =
       (SELECT array_agg(item_id) FROM recsys.recommend(m.m, '7'::text, 5)) AS text_user,
       (SELECT array_agg(item_id::bigint) FROM recsys.recommend(m.m, 7, 5)) =
       (SELECT array_agg(item_id) FROM recsys.recommend(m.m, 7::bigint, 5)) AS bigint_user,
       (SELECT array_agg(item_id) FROM recsys.recommend(m.m, 7, 5)) =
       (SELECT array_agg(item_id::int) FROM recsys.recommend(m.m, 7::smallint, 5)) AS smallint_user,
       (SELECT array_agg(item_id) FROM recsys.recommend(m.m, 'no such user'::text, 5)) =
       (SELECT array_agg(item_id::text) FROM recsys.recommend(m.m, 1000, 5)) AS unknown_text_user
FROM m;
SELECT pg_typeof(item_id) AS item_type FROM m, recsys.recommend(m.m, '7'::text, 1);
-- IDs that do not fit the requested type: a clear error
CREATE TABLE mbig AS
  SELECT recsys.train_als(u::bigint * 10000000000, i::bigint * 10000000000, '{"factors": 4, "iterations": 2}'::jsonb) AS m FROM r;
SELECT count(*) FROM mbig, recsys.recommend(mbig.m, 70000000000, 3);
SELECT * FROM mbig, recsys.recommend(mbig.m, 7, 3);

-- Users and items of different types: the item_type witness chooses the item type.
CREATE TABLE mt AS
  SELECT recsys.train_als('user ' || u, i, '{"factors": 8, "iterations": 5, "seed": 3}'::jsonb) AS m FROM r;
SELECT pg_typeof(item_id) AS item_type, count(*) FROM mt, recsys.recommend(mt.m, 'user 7'::text, 5, NULL::int) GROUP BY 1;
SELECT pg_typeof(item_id) AS item_type, count(*) FROM mt, recsys.recommend(mt.m, 'user 7'::text, 5, NULL::bigint) GROUP BY 1;
SELECT (SELECT array_agg(item_id ORDER BY item_id) FROM recsys.recommend(mt.m, 'user 7'::text, 1000, NULL::int)) =
       (SELECT array_agg(i ORDER BY i) FROM (SELECT DISTINCT i FROM r EXCEPT SELECT i FROM seen WHERE u = 7) d) AS unseen_items,
       (SELECT count(*) FROM recsys.recommend(mt.m, 'user 7'::text, 1000, NULL::int, exclude_seen => false)) =
       (SELECT count(DISTINCT i) FROM r) AS all_items,
       (SELECT array_agg(item_id) FROM recsys.recommend(mt.m, 'nobody'::text, 5, NULL::int)) =
       (SELECT array_agg(item_id) FROM recsys.recommend(m.m, 1000, 5)) AS cold_start_popular,
       (SELECT count(*) FROM recsys.recommend(mt.m, 'nobody'::text, 5, NULL::int, cold_start => false)) AS no_cold_start
FROM mt, m;
-- without the witness, items come back as text (the user's type)
SELECT pg_typeof(item_id) AS item_type, count(*) FROM mt, recsys.recommend(mt.m, 'user 7'::text, 5) GROUP BY 1;
SELECT * FROM mt, recsys.recommend(mt.m, 'user 7'::text, 0, NULL::int);

-- similar_items / similar_users: the item itself excluded, best first, cosine in [-1, 1].
SELECT count(*) AS n, count(*) FILTER (WHERE item_id = 3) AS self, bool_and(score BETWEEN -1.0001 AND 1.0001) AS cosine_range
FROM m, recsys.similar_items(m.m, 3, 1000);
SELECT bool_and(ok) AS best_first
FROM (SELECT x.score <= lag(x.score) OVER (ORDER BY n) OR n = 1 AS ok
      FROM m, recsys.similar_items(m.m, 3, 1000) WITH ORDINALITY x(item_id, score, n)) s;
SELECT count(*) AS n FROM m, recsys.similar_items(m.m, 3, 4);
SELECT count(*) AS n, count(*) FILTER (WHERE user_id = 5) AS self, bool_and(score BETWEEN -1.0001 AND 1.0001) AS cosine_range
FROM m, recsys.similar_users(m.m, 5, 1000);
SELECT bool_and(ok) AS best_first
FROM (SELECT x.score <= lag(x.score) OVER (ORDER BY n) OR n = 1 AS ok
      FROM m, recsys.similar_users(m.m, 5, 1000) WITH ORDINALITY x(user_id, score, n)) s;
-- a near duplicate item is the most similar: item 1001 has exactly the users of item 1
CREATE TABLE md AS
  SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 10, "seed": 3, "regularization": 0.01}'::jsonb) AS m
  FROM (SELECT u, i FROM r UNION ALL SELECT u, 1001 FROM r WHERE i = 1) d;
SELECT item_id AS most_similar_to_1 FROM md, recsys.similar_items(md.m, 1, 1);
SELECT item_id AS most_similar_to_1001 FROM md, recsys.similar_items(md.m, 1001, 1);
-- text argument for an integer model
SELECT (SELECT array_agg(item_id::text) FROM recsys.similar_items(m.m, 3, 5)) =
       (SELECT array_agg(item_id) FROM recsys.similar_items(m.m, '3'::text, 5)) AS text_item
FROM m;
-- unknown IDs and bad k: errors
SELECT * FROM m, recsys.similar_items(m.m, 9999, 5);
SELECT * FROM m, recsys.similar_items(m.m, 'x'::text, 5);
SELECT * FROM m, recsys.similar_users(m.m, 9999, 5);
SELECT * FROM m, recsys.similar_items(m.m, 3, 0);
SELECT * FROM m, recsys.similar_users(m.m, 5, -1);
SELECT count(*) AS null_item FROM m, recsys.similar_items(m.m, NULL::int, 5);

-- score: the number recommend ranks by; NULL for unknown users or items.
SELECT bool_and(abs(x.score - recsys.score(m.m, users.u, x.item_id)) <= 1e-6 * greatest(1, abs(x.score))) AS score_matches_recommend
FROM m, users, LATERAL recsys.recommend(m.m, users.u, 5, false) x;
SELECT recsys.score(m, 9999, 1) IS NULL AS unknown_user, recsys.score(m, 1, 9999) IS NULL AS unknown_item,
       recsys.score(m, 'x'::text, 1) IS NULL AS unknown_text_user, recsys.score(m, NULL::int, 1) IS NULL AS null_user,
       recsys.score(m, '7'::text, '3'::text) = recsys.score(m, 7, 3) AS text_ids
FROM m;

-- item_factors / user_factors: one row per item / user, factors values each, and the
-- dot product of the two is the score.
SELECT (SELECT count(*) FROM recsys.item_factors(m.m)) AS item_rows,
       (SELECT count(*) FROM recsys.user_factors(m.m)) AS user_rows,
       (SELECT bool_and(array_length(factors, 1) = 8) FROM recsys.item_factors(m.m)) AS item_lengths,
       (SELECT bool_and(array_length(factors, 1) = 8) FROM recsys.user_factors(m.m)) AS user_lengths,
       (SELECT array_agg(item_id::int ORDER BY item_id::int) FROM recsys.item_factors(m.m)) =
       (SELECT array_agg(DISTINCT i ORDER BY i) FROM r) AS item_ids
FROM m;
SELECT pg_typeof(item_id) AS item_type, count(*) FROM m, recsys.item_factors(m.m, NULL::bigint) GROUP BY 1;
SELECT pg_typeof(user_id) AS user_type, count(*) FROM m, recsys.user_factors(m.m, NULL::int) GROUP BY 1;
SELECT pg_typeof(item_id) AS item_type, count(*) FROM m, recsys.item_factors(m.m) GROUP BY 1;
SELECT bool_and(abs(d.dot - recsys.score(m.m, d.u, d.i)) < 1e-4) AS dot_is_score
FROM m, LATERAL (SELECT uf.user_id AS u, itf.item_id AS i,
                        (SELECT sum(a * b) FROM unnest(uf.factors, itf.factors) x(a, b)) AS dot
                 FROM recsys.user_factors(m.m, NULL::int) uf, recsys.item_factors(m.m, NULL::int) itf
                 WHERE uf.user_id <= 5 AND itf.item_id <= 10) d;
SELECT count(*) AS null_model FROM recsys.item_factors(NULL::recsys.model);
SELECT * FROM m, recsys.item_factors(m.m, NULL::date) LIMIT 1;

DROP SCHEMA t02 CASCADE;

-- Recommendation quality on data with planted structure: 400 users and 400 items in 8
-- groups (user u and item i belong to groups u % 8 and i % 8). 85% of a user's picks
-- are items of the user's group (skewed popularity inside the group), 15% are drawn
-- from the whole catalogue with a strong skew toward low item IDs (globally popular
-- items). 20% of each user's items are held out; ALS trained on the rest must find
-- them far better than the most-popular baseline. Only booleans are printed.
SET recsys.threads = 2;
CREATE SCHEMA t04;
SET search_path = t04, public;

SELECT setseed(0.3);
CREATE TABLE inter AS
  SELECT DISTINCT u, i FROM (
    SELECT u,
           CASE WHEN random() < 0.85
                THEN u % 8 + 8 * floor(50 * random() ^ 1.5)::int
                ELSE floor(400 * random() ^ 2)::int
           END AS i
    FROM generate_series(0, 399) u, generate_series(1, 40) k) x;
CREATE TABLE split AS
  SELECT u, i,
         row_number() OVER (PARTITION BY u ORDER BY md5(u || ':' || i)) <= ceil(0.2 * count(*) OVER (PARTITION BY u)) AS test
  FROM inter;
SELECT count(DISTINCT u) AS users, (count(*) FILTER (WHERE test))::float8 / count(*) BETWEEN 0.2 AND 0.25 AS about_20_percent_held_out,
       count(DISTINCT u) FILTER (WHERE test) AS users_with_test_items
FROM split;

CREATE TABLE model AS
  SELECT recsys.train_als(u, i, '{"factors": 8, "iterations": 15, "regularization": 0.1, "alpha": 2, "seed": 1}'::jsonb) AS m
  FROM split WHERE NOT test;
CREATE TABLE popular AS SELECT i, count(*) AS n FROM split WHERE NOT test GROUP BY i;

-- precision@10: ALS, the most popular unseen items, and an oracle that knows the groups
-- (the most popular unseen items of the user's group)
CREATE TABLE prec AS
WITH users AS (SELECT DISTINCT u FROM split),
als AS (
  SELECT s.u, count(t.i) AS hits
  FROM users s CROSS JOIN model m CROSS JOIN LATERAL recsys.recommend(m.m, s.u, 10) r
  LEFT JOIN split t ON t.u = s.u AND t.i = r.item_id AND t.test
  GROUP BY s.u),
pop AS (
  SELECT s.u, count(t.i) AS hits
  FROM users s
  CROSS JOIN LATERAL (SELECT p.i FROM popular p
                      WHERE NOT EXISTS (SELECT 1 FROM split x WHERE x.u = s.u AND x.i = p.i AND NOT x.test)
                      ORDER BY p.n DESC, p.i LIMIT 10) r
  LEFT JOIN split t ON t.u = s.u AND t.i = r.i AND t.test
  GROUP BY s.u),
oracle AS (
  SELECT s.u, count(t.i) AS hits
  FROM users s
  CROSS JOIN LATERAL (SELECT p.i FROM popular p
                      WHERE p.i % 8 = s.u % 8
                        AND NOT EXISTS (SELECT 1 FROM split x WHERE x.u = s.u AND x.i = p.i AND NOT x.test)
                      ORDER BY p.n DESC, p.i LIMIT 10) r
  LEFT JOIN split t ON t.u = s.u AND t.i = r.i AND t.test
  GROUP BY s.u)
SELECT (SELECT count(*) FROM als) AS als_users,
       (SELECT avg(hits) / 10 FROM als) AS als,
       (SELECT avg(hits) / 10 FROM pop) AS pop,
       (SELECT avg(hits) / 10 FROM oracle) AS oracle;
SELECT als_users,
       als >= 3 * pop AS als_beats_popularity_3x,
       als >= 0.8 * oracle AS als_near_oracle,
       als BETWEEN 0.15 AND 0.3 AS als_bucket_15_30,
       pop < 0.08 AS pop_below_8
FROM prec;

-- The learned embeddings reflect the groups: most nearest neighbours share the group.
SELECT avg((x.item_id % 8 = it.i % 8)::int) > 0.8 AS similar_items_in_group
FROM (SELECT DISTINCT i FROM split WHERE NOT test) it, model m, LATERAL recsys.similar_items(m.m, it.i, 10) x;
SELECT avg((x.user_id % 8 = us.u % 8)::int) > 0.8 AS similar_users_in_group
FROM (SELECT DISTINCT u FROM split) us, model m, LATERAL recsys.similar_users(m.m, us.u, 10) x;
-- and recommendations come from the user's group
SELECT avg((r.item_id % 8 = s.u % 8)::int) > 0.8 AS recommendations_in_group
FROM (SELECT DISTINCT u FROM split) s, model m, LATERAL recsys.recommend(m.m, s.u, 10) r;

DROP SCHEMA t04 CASCADE;

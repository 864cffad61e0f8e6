-- Content-model and k-means timings through SQL on a generated catalogue.
--   psql -X -v items=100000 -f test/bench_content.sql      (default items: 20000)
-- Run against a database with the recsys extension (e.g. a throwaway cluster); it works
-- in its own schema bench_content and drops it at the end. Not part of the test run.
-- Catalogue: 50 categories (round robin), 3 tags of 500, 10 description words of 5,000
-- (skewed: word floor(5000 * random()^2)), a price; 2 threads.
\set ON_ERROR_STOP on
\if :{?items}
\else
  \set items 20000
\endif
DROP SCHEMA IF EXISTS bench_content CASCADE;
CREATE SCHEMA bench_content;
SET search_path = bench_content, public;
SET recsys.threads = 2;
SELECT setseed(0.3);
CREATE TABLE products AS
SELECT id, jsonb_build_object(
  'category', 'cat' || (id % 50),
  'tags', jsonb_build_array('tag' || floor(random() * 500)::int, 'tag' || floor(random() * 500)::int,
                            'tag' || floor(random() * 500)::int),
  'description', (SELECT string_agg('word' || floor(power(random(), 2) * 5000 + 0 * id + 0 * j)::int, ' ')
                  FROM generate_series(1, 10) j),
  'price', round((10 + 990 * random())::numeric, 2)) AS f
FROM generate_series(1, :items) id;
\timing on
CREATE TABLE m AS SELECT recsys.train_content(id, f, '{"neighbours": 50}') AS model FROM products;
\timing off
SELECT :items AS items, recsys.model_info(model)->'training_seconds' AS training_seconds,
       recsys.model_info(model)->'bytes' AS bytes, recsys.model_info(model)->'parameters'->'features' AS features
FROM m;
-- 200 calls each (one statement; the model is read once): similar_items, and
-- recommend_content from a 5-item history.
\timing on
SELECT count(*) AS similar_items_rows FROM m, generate_series(1, 200) g, LATERAL recsys.similar_items(m.model, g * 37 % :items + 1, 10) r;
SELECT count(*) AS recommend_content_rows FROM m, generate_series(1, 200) g,
  LATERAL recsys.recommend_content(m.model, ARRAY[g * 7, g * 13, g * 17, g * 19, g * 23], 10) r;
\timing off
-- k-means: :items rows of 16 dimensions around 8 centres, k = 8, 4 restarts.
CREATE TABLE pts AS
SELECT n, ARRAY(SELECT (n % 8) * 3 + random() + 0 * j FROM generate_series(1, 16) j)::real[] AS x
FROM generate_series(1, :items) n;
\timing on
CREATE TABLE km AS SELECT recsys.kmeans(x, 8, '{"seed": 1}') AS model FROM pts;
SELECT count(*) AS clustered FROM pts, km WHERE recsys.cluster(km.model, pts.x) >= 0;
\timing off
SELECT recsys.model_info(model)->'training_seconds' AS kmeans_training_seconds, recsys.model_info(model)->'sizes' AS sizes FROM km;
DROP SCHEMA bench_content CASCADE;

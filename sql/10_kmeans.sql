-- kmeans / cluster / kmeans_centroids / user_segments: customer segments from feature vectors.
CREATE SCHEMA t10_kmeans;
SET search_path = t10_kmeans, public;
SET recsys.threads = 2;

-- Three known clusters in 3 dimensions: 100 points each around well separated centres.
SELECT setseed(0.5);
CREATE TABLE pts AS
SELECT n, c, ARRAY[cx + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()),
                   cy + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()),
                   cz + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())]::float8[] AS x
FROM generate_series(1, 300) n,
     LATERAL (SELECT (n - 1) % 3 AS c) cc,
     LATERAL (SELECT (ARRAY[0, 10, 0])[c + 1] AS cx, (ARRAY[0, 0, 10])[c + 1] AS cy, (ARRAY[0, 5, -5])[c + 1] AS cz) centre;

CREATE TABLE km AS SELECT recsys.kmeans(x, 3, '{"seed": 7}') AS model FROM pts;
SELECT recsys.model_info(model)->>'algorithm' AS algorithm, recsys.model_info(model)->'clusters' AS clusters,
       recsys.model_info(model)->'dimension' AS dimension, recsys.model_info(model)->'standardized' AS standardized,
       recsys.model_info(model)->'parameters'->'rows' AS rows,
       (SELECT sum(s::int) FROM jsonb_array_elements_text(recsys.model_info(model)->'sizes') s) AS sizes_sum,
       (recsys.model_info(model)->>'inertia')::float8 BETWEEN 300 * 3 * 0.5 AND 300 * 3 * 1.5 AS inertia_about_n_times_d
FROM km;
-- Every known cluster maps onto one found cluster, and the found ones are distinct.
SELECT c, count(DISTINCT recsys.cluster(km.model, x)) AS found_clusters, count(*) AS points
FROM pts, km GROUP BY c ORDER BY c;
SELECT count(DISTINCT recsys.cluster(km.model, x)) AS distinct_found FROM pts, km;
-- The centroids are near the true centres (each true centre within 0.5 of a centroid).
SELECT t.c, (SELECT min(sqrt(power(k.centroid[1] - t.cx, 2) + power(k.centroid[2] - t.cy, 2) + power(k.centroid[3] - t.cz, 2)))
             FROM km, recsys.kmeans_centroids(km.model) k) < 0.5 AS centre_found
FROM (VALUES (0, 0, 0, 0), (1, 10, 0, 5), (2, 0, 10, -5)) t(c, cx, cy, cz) ORDER BY t.c;
-- kmeans_centroids agrees with model_info and with the sizes of the assignment.
SELECT k.cluster, k.size = (SELECT count(*) FROM pts WHERE recsys.cluster(km.model, pts.x) = k.cluster) AS size_matches,
       k.size = (recsys.model_info(km.model)->'sizes'->>k.cluster)::bigint AS info_size,
       array_length(k.centroid, 1) AS d,
       (SELECT bool_and(abs(k.centroid[j] - (recsys.model_info(km.model)->'centroids'->k.cluster->>(j - 1))::float8) < 1e-4)
        FROM generate_series(1, 3) j) AS info_centroid
FROM km, recsys.kmeans_centroids(km.model) k ORDER BY k.cluster;
-- A centroid is assigned to its own cluster; inertia equals the sum of squared distances.
SELECT bool_and(recsys.cluster(km.model, k.centroid) = k.cluster) AS centroids_own_cluster FROM km, recsys.kmeans_centroids(km.model) k;
SELECT abs(d.total - (recsys.model_info(km.model)->>'inertia')::float8) < 1e-3 * d.total AS inertia_matches
FROM km, (SELECT sum(power(x[1] - k.centroid[1], 2) + power(x[2] - k.centroid[2], 2) + power(x[3] - k.centroid[3], 2)) AS total
          FROM pts, km, recsys.kmeans_centroids(km.model) k WHERE k.cluster = recsys.cluster(km.model, pts.x)) d;

-- Deterministic for a seed, whatever the thread count; more restarts never end worse.
SET recsys.threads = 1;
CREATE TABLE km1 AS SELECT recsys.kmeans(x, 3, '{"seed": 7}') AS model FROM pts;
SET recsys.threads = 2;
SELECT recsys.model_info(a.model)->>'fingerprint' = recsys.model_info(b.model)->>'fingerprint' AS same_model FROM km a, km1 b;
SELECT (recsys.model_info(recsys.kmeans(x, 5, '{"n_init": 8, "seed": 3}'))->>'inertia')::float8
    <= (recsys.model_info(recsys.kmeans(x, 5, '{"n_init": 1, "seed": 3}'))->>'inertia')::float8 AS restarts_never_worse
FROM pts;
SELECT jsonb_array_length(recsys.model_info(recsys.kmeans(x, 3, '{"n_init": 6}'))->'parameters'->'run_inertia') AS runs FROM pts;
-- The rows are sorted by their contents before training: the model does not depend on
-- the order they arrive in (shuffled, reversed, or ordered inside the aggregate).
SELECT (SELECT recsys.model_info(recsys.kmeans(x, 4, '{"seed": 5}'))->>'fingerprint' FROM pts)
     = (SELECT recsys.model_info(recsys.kmeans(x, 4, '{"seed": 5}'))->>'fingerprint'
        FROM (SELECT * FROM pts ORDER BY random()) shuffled) AS shuffled_same,
       (SELECT recsys.model_info(recsys.kmeans(x, 4, '{"seed": 5}'))->>'fingerprint' FROM pts)
     = (SELECT recsys.model_info(recsys.kmeans(x, 4, '{"seed": 5}' ORDER BY n DESC))->>'fingerprint' FROM pts)
       AS reversed_same;

-- max_iter and tol bound the Lloyd iterations; threads and verbose do not change the model.
SELECT recsys.model_info(recsys.kmeans(x, 3, '{"max_iter": 1, "n_init": 1}'))->'parameters'->'iterations' AS max_iter_1,
       recsys.model_info(recsys.kmeans(x, 3, '{"tol": 1000000, "n_init": 1}'))->'parameters'->'iterations' AS huge_tol
FROM pts;
SET client_min_messages = warning;
SELECT recsys.model_info(recsys.kmeans(x, 3, '{"seed": 7, "threads": 1, "verbose": true}'))->>'fingerprint'
     = (SELECT recsys.model_info(model)->>'fingerprint' FROM km) AS same_model FROM pts;
RESET client_min_messages;
-- One model per group; the model round-trips through its text form.
SELECT c, recsys.model_info(recsys.kmeans(x, 2))->'parameters'->'rows' AS rows FROM pts GROUP BY c ORDER BY c;
SELECT recsys.model_info(model::text::recsys.model)->>'fingerprint' = recsys.model_info(model)->>'fingerprint' AS round_trip FROM km;

-- Element types: real[], double precision[], numeric[], integer arrays give the same clusters.
SELECT count(DISTINCT recsys.model_info(m)->'sizes') AS distinct_size_lists FROM (
  SELECT recsys.kmeans(x::real[], 3, '{"seed": 7}') AS m FROM pts
  UNION ALL SELECT recsys.kmeans(x, 3, '{"seed": 7}') FROM pts
  UNION ALL SELECT recsys.kmeans(x::numeric[], 3, '{"seed": 7}') FROM pts
  UNION ALL SELECT recsys.kmeans((SELECT array_agg(round(v * 100)::int) FROM unnest(x) v), 3, '{"seed": 7}') FROM pts) s;
SELECT recsys.cluster(km.model, ARRAY[10, 0, 5]) = recsys.cluster(km.model, ARRAY[10.0, 0.0, 5.0]::real[]) AS int_and_real,
       recsys.cluster(km.model, ARRAY[10, 0, 5]::numeric[]) = recsys.cluster(km.model, ARRAY[10, 0, 5]::bigint[]) AS numeric_and_bigint
FROM km;

-- standardize: dimensions on very different scales count alike.
CREATE TABLE scaled AS SELECT n, c, ARRAY[x[1] * 1000, x[2], x[3]] AS x FROM pts;
SELECT recsys.model_info(m)->'standardized' AS standardized,
       (SELECT count(DISTINCT recsys.cluster(m, x)) FROM scaled s WHERE s.c = 1) AS found_for_cluster_1,
       (SELECT count(DISTINCT c) FROM scaled s WHERE recsys.cluster(m, s.x) = recsys.cluster(m, ARRAY[0, 0, 0]::float8[])) AS true_clusters_in_found_0
FROM (SELECT recsys.kmeans(x, 3, '{"standardize": true}') AS m FROM scaled) s;
-- centroids are reported in original units.
SELECT bool_or(abs(k.centroid[1] - 10000) < 500) AS original_units
FROM (SELECT recsys.kmeans(x, 3, '{"standardize": true}') AS m FROM scaled) s, recsys.kmeans_centroids(s.m) k;

-- NULL vectors are skipped and counted; no usable rows -> NULL.
SELECT recsys.model_info(recsys.kmeans(CASE WHEN n % 10 = 0 THEN NULL ELSE x END, 3))->'parameters'->'rows_skipped' AS rows_skipped FROM pts;
SELECT recsys.kmeans(NULL::float8[], 2) IS NULL AS only_nulls, (SELECT recsys.kmeans(x, 2) FROM pts WHERE false) IS NULL AS no_rows;
-- k = 1 is the mean; k = number of distinct rows is allowed.
SELECT k.centroid AS mean_centroid FROM recsys.kmeans_centroids((SELECT recsys.kmeans(ARRAY[v, 2 * v], 1) FROM generate_series(1, 5) v)) k;
SELECT recsys.model_info(recsys.kmeans(ARRAY[v], 4))->'sizes' AS sizes FROM generate_series(1, 4) v;

-- Errors.
SELECT recsys.kmeans(x, 0) FROM pts;
SELECT recsys.kmeans(x, NULL) FROM pts;
SELECT recsys.kmeans(x, CASE WHEN n = 5 THEN 4 ELSE 3 END) FROM pts;
SELECT recsys.kmeans(x, 301) FROM pts;
SELECT recsys.kmeans(ARRAY[v % 2], 3) FROM generate_series(1, 10) v;
SELECT recsys.kmeans(CASE WHEN n = 7 THEN ARRAY[1, 2]::float8[] ELSE x END, 3) FROM pts;
SELECT recsys.kmeans(ARRAY[1, NULL, 3], 1);
SELECT recsys.kmeans(ARRAY[1, 'NaN', 3]::float8[], 1);
SELECT recsys.kmeans(ARRAY[1, '-Infinity']::real[], 1);
SELECT recsys.kmeans(ARRAY['NaN']::numeric[], 1);
SELECT recsys.kmeans(ARRAY[1e300, 1]::float8[], 1);
SELECT recsys.kmeans(ARRAY[[1, 2], [3, 4]], 1);
SELECT recsys.kmeans('{}'::real[], 1);
SELECT recsys.kmeans(ARRAY['a', 'b'], 1);
SELECT recsys.kmeans(x, 3, '{"k": 3}') FROM pts;
SELECT recsys.kmeans(x, 3, '{"n_init": 0}') FROM pts;
SELECT recsys.kmeans(x, 3, '{"max_iter": 0}') FROM pts;
SELECT recsys.kmeans(x, 3, '{"tol": -1}') FROM pts;
SELECT recsys.kmeans(x, 3, '{"seed": -1}') FROM pts;
SELECT recsys.kmeans(x, 3, '{"standardize": 1}') FROM pts;
SELECT recsys.kmeans(x, 3, '{"clusters": 3}') FROM pts;
SELECT recsys.kmeans(x, 3, '[1]') FROM pts;
SELECT recsys.kmeans(x, 3, CASE WHEN n = 9 THEN '{"seed": 1}'::jsonb ELSE '{}' END) FROM pts;
SELECT recsys.kmeans(x, 3, NULL) IS NOT NULL AS null_options_are_defaults FROM pts;
SELECT recsys.cluster(model, ARRAY[1, 2]) FROM km;
SELECT recsys.cluster(model, ARRAY[1, NULL, 2]) FROM km;
SELECT recsys.cluster(model, ARRAY[1, 'NaN', 2]::float8[]) FROM km;
SELECT recsys.cluster(model, ARRAY[1, 2, 1e300]::float8[]) FROM km;
SELECT recsys.cluster(model, NULL::real[]) IS NULL AS null_features FROM km;
CREATE TABLE als_in AS SELECT u, i FROM generate_series(1, 60) u, generate_series(1, 30) i WHERE (u + i) % 3 = 0 OR (u * i) % 7 = 1;
CREATE TABLE als AS SELECT recsys.train_als(u, i, '{"factors": 4, "iterations": 3, "seed": 1}'::jsonb) AS model FROM als_in;
SELECT recsys.cluster(model, ARRAY[1, 2, 3, 4]) FROM als;
SELECT * FROM als, recsys.kmeans_centroids(als.model);
SELECT * FROM km, recsys.similar_items(km.model, 1, 5) s;
SELECT * FROM km, recsys.recommend(km.model, 1, 5) r;

-- User segments from a factor model: k-means on user_factors (real[]), then cluster each user.
CREATE TABLE seg_model AS SELECT recsys.kmeans(f.factors, 3, '{"seed": 1}') AS model FROM als, recsys.user_factors(als.model) f;
SELECT recsys.model_info(model)->'dimension' AS dimension, recsys.model_info(model)->'parameters'->'rows' AS users FROM seg_model;
CREATE TABLE segs AS SELECT f.user_id, recsys.cluster(s.model, f.factors) AS segment FROM als, seg_model s, recsys.user_factors(als.model) f;
SELECT count(*) AS users, count(DISTINCT segment) AS segments FROM segs;
-- user_segments(model, k, options) is the same in one call.
SELECT count(*) AS users, count(DISTINCT u.segment) AS segments,
       bool_and(u.segment = s.segment) AS same_as_two_steps
FROM als, recsys.user_segments(als.model, 3, '{"seed": 1}') u JOIN segs s ON s.user_id = u.user_id;

-- The README flow: segments of customers from an orders table (hour, city, category,
-- quantity) with three planted customer types.
SELECT setseed(0.75);
CREATE TABLE orders AS
SELECT o AS order_id, cust AS customer_id, t AS customer_type,
       (ARRAY['nasi box', 'rice cooker', 'earbuds'])[t] || ' ' || (1 + floor(random() * 5)::int) AS product,
       CASE WHEN random() < 0.85 THEN (ARRAY['Food', 'Household', 'Electronics'])[t]
            ELSE (ARRAY['Food', 'Household', 'Electronics'])[1 + floor(random() * 3)::int] END AS category,
       (ARRAY[1, 5, 1])[t] + floor(random() * 2)::int AS quantity,
       round((ARRAY[25000, 350000, 200000])[t] * (0.8 + 0.4 * random()))::numeric AS price,
       date '2024-01-01' + (floor(random() * 90) || ' days')::interval
         + (((ARRAY[12, 10, 22])[t] + floor(random() * 2)::int) || ' hours')::interval AS ordered_at,
       'Jl. Merdeka ' || floor(random() * 200)::int || ', '
         || CASE WHEN random() < 0.8 THEN (ARRAY['Jakarta', 'Bandung', 'Surabaya'])[t]
                 ELSE (ARRAY['Jakarta', 'Bandung', 'Surabaya'])[1 + floor(random() * 3)::int] END AS address
FROM generate_series(1, 3000) o, LATERAL (SELECT 1 + (o * 7919) % 150 AS cust) c, LATERAL (SELECT 1 + cust % 3 AS t) tt;
CREATE TABLE customer_features AS
SELECT customer_id,
       ARRAY[avg(extract(hour FROM ordered_at)),
             avg((split_part(address, ', ', 2) = 'Jakarta')::int), avg((split_part(address, ', ', 2) = 'Bandung')::int),
             avg((split_part(address, ', ', 2) = 'Surabaya')::int),
             avg((category = 'Food')::int), avg((category = 'Household')::int), avg((category = 'Electronics')::int),
             avg(quantity)]::float8[] AS features
FROM orders GROUP BY customer_id;
CREATE TABLE segment_model AS
SELECT recsys.kmeans(features, 3, '{"standardize": true, "n_init": 8, "seed": 1}') AS model FROM customer_features;
-- Every planted customer type lands in one segment, and the segments differ.
SELECT t.customer_type, count(DISTINCT recsys.cluster(s.model, f.features)) AS segments, count(*) AS customers
FROM customer_features f JOIN (SELECT DISTINCT customer_id, customer_type FROM orders) t USING (customer_id), segment_model s
GROUP BY t.customer_type ORDER BY t.customer_type;
SELECT count(DISTINCT recsys.cluster(s.model, f.features)) AS distinct_segments FROM customer_features f, segment_model s;
-- Segment profiles in original units: hour, city shares, category shares, quantity.
SELECT round(k.centroid[1]) AS hour, round(k.centroid[2]::numeric, 1) AS jakarta, round(k.centroid[3]::numeric, 1) AS bandung,
       round(k.centroid[4]::numeric, 1) AS surabaya, round(k.centroid[5]::numeric, 1) AS food,
       round(k.centroid[6]::numeric, 1) AS household, round(k.centroid[7]::numeric, 1) AS electronics,
       round(k.centroid[8]::numeric, 1) AS quantity, k.size
FROM segment_model s, recsys.kmeans_centroids(s.model) k ORDER BY hour;

-- statement_timeout stops the training (k-means++ and Lloyd on background threads):
-- 1000 restarts of k = 1000 on 20,000 rows would take hours; the error comes promptly.
CREATE TABLE many AS SELECT n, ARRAY(SELECT random() + 0 * n + 0 * j FROM generate_series(1, 32) j)::real[] AS x
FROM generate_series(1, 20000) n;
SET statement_timeout = '1s';
DO $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM recsys.kmeans(x, 1000, '{"n_init": 1000}') FROM t10_kmeans.many;
  RAISE NOTICE 'training was not cancelled';
EXCEPTION WHEN query_canceled THEN
  RAISE NOTICE 'cancelled within 4 s: %', clock_timestamp() - t0 < interval '4 s';
END $$;
RESET statement_timeout;
SELECT count(*) AS session_ok FROM many;

-- Parallel aggregation: the same model as a serial plan.
CREATE TABLE bigpts AS SELECT n + 1000 * r AS n, x FROM pts, generate_series(0, 19) r;
ANALYZE bigpts;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT recsys.kmeans(x, 3, '{"seed": 2}') FROM bigpts;
CREATE TABLE par AS SELECT recsys.kmeans(x, 3, '{"seed": 2}') AS model FROM bigpts;
SET max_parallel_workers_per_gather = 0;
CREATE TABLE ser AS SELECT recsys.kmeans(x, 3, '{"seed": 2}') AS model FROM bigpts;
SELECT recsys.model_info(p.model)->'parameters'->'rows' AS rows,
       recsys.model_info(p.model)->'sizes' = recsys.model_info(s.model)->'sizes' AS same_sizes,
       recsys.model_info(p.model)->>'fingerprint' = recsys.model_info(s.model)->>'fingerprint' AS same_model
FROM par p, ser s;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

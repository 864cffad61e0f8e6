-- The recsys demo: a small shop's products and view/cart/purchase events.
-- Run from the repository root (test/demo.sh does).
\pset footer off
CREATE EXTENSION recsys;

CREATE TABLE products (sku text PRIMARY KEY, name text, department text, price numeric);
CREATE TABLE events (customer_id text, sku text, event text, ts timestamp);
\copy products FROM 'test/data/products.csv' WITH (FORMAT csv, HEADER)
\copy events FROM 'test/data/events.csv' WITH (FORMAT csv, HEADER)
SELECT count(*) AS events, count(DISTINCT customer_id) AS customers, count(DISTINCT sku) AS products FROM events;

\echo '== training implicit ALS (views weigh 1, carts 3, purchases 5)'
CREATE TABLE shop_model AS
SELECT recsys.train_als(customer_id, sku,
         CASE event WHEN 'purchase' THEN 5 WHEN 'cart' THEN 3 ELSE 1 END,
         '{"factors": 32, "iterations": 15, "regularization": 0.05, "alpha": 2, "seed": 7}') AS model
FROM events;
SELECT info->>'algorithm' AS algorithm, info->'users' AS users, info->'items' AS items,
       info->'interactions' AS interactions, info->'factors' AS factors,
       round((info->>'final_loss')::numeric, 4) AS final_loss
FROM (SELECT recsys.model_info(model) AS info FROM shop_model) s;

\echo '== customer C00042 bought and viewed'
SELECT p.name, p.department, string_agg(DISTINCT e.event, ', ') AS events
FROM events e JOIN products p USING (sku) WHERE e.customer_id = 'C00042'
GROUP BY p.name, p.department ORDER BY p.department, p.name;

\echo '== top 5 recommendations for C00042 (already-seen products excluded)'
SELECT r.item_id AS sku, p.name, p.department, round(r.score::numeric, 3) AS score
FROM shop_model m, recsys.recommend(m.model, 'C00042', 5) r JOIN products p ON p.sku = r.item_id;

\echo '== products similar to the most viewed product'
SELECT p.sku, p.name, p.department FROM products p
WHERE p.sku = (SELECT sku FROM events GROUP BY sku ORDER BY count(*) DESC, sku LIMIT 1);
SELECT s.item_id AS sku, p.name, p.department, round(s.score::numeric, 3) AS cosine
FROM shop_model m,
     recsys.similar_items(m.model, (SELECT sku FROM events GROUP BY sku ORDER BY count(*) DESC, sku LIMIT 1), 5) s
     JOIN products p ON p.sku = s.item_id;

\echo '== a new visitor (never seen) gets the most popular products'
SELECT r.item_id AS sku, p.name FROM shop_model m, recsys.recommend(m.model, 'new-visitor', 3) r JOIN products p ON p.sku = r.item_id;

\echo '== "customers who bought this also bought" (item-to-item kNN on purchases and carts)'
CREATE TABLE also_bought AS
SELECT recsys.train_item_knn(customer_id, sku, CASE event WHEN 'purchase' THEN 2 ELSE 1 END, '{"similarity": "bm25"}') AS model
FROM events WHERE event IN ('purchase', 'cart');
SELECT s.item_id AS sku, p.name, p.department, round(s.score::numeric, 3) AS similarity
FROM also_bought m,
     recsys.similar_items(m.model, (SELECT sku FROM events GROUP BY sku ORDER BY count(*) DESC, sku LIMIT 1), 5) s
     JOIN products p ON p.sku = s.item_id;

\echo '== a shopping cart (ELE-1025 + SPO-1101) completed by item-kNN'
SELECT r.item_id AS sku, p.name, round(r.score::numeric, 3) AS score
FROM also_bought m, recsys.recommend_for_items(m.model, ARRAY['ELE-1025', 'SPO-1101'], 5) r JOIN products p ON p.sku = r.item_id;

\echo '== content-based: products like ELE-1025 from metadata alone (name words, department, price)'
CREATE TABLE catalogue_model AS
SELECT recsys.train_content(sku, jsonb_build_object('name', name, 'department', department, 'price', price),
                            '{"weights": {"department": 1, "name": 1, "price": 0.3}}') AS model
FROM products;
SELECT s.item_id AS sku, p.name, p.department, p.price, round(s.score::numeric, 3) AS cosine
FROM catalogue_model m, recsys.similar_items(m.model, 'ELE-1025', 5) s JOIN products p ON p.sku = s.item_id;

\echo '== customer segments: k-means (k = 4) on the ALS customer embeddings'
CREATE TABLE segments AS
SELECT recsys.kmeans(f.factors, 4, '{"seed": 1}') AS model FROM shop_model m, recsys.user_factors(m.model) f;
SELECT seg AS segment, count(*) AS customers,
       (SELECT string_agg(department || ' ' || n, ', ' ORDER BY n DESC, department) FROM (
          SELECT p.department, count(*) AS n FROM events e JOIN products p USING (sku)
          WHERE e.customer_id = ANY (array_agg(c.customer)) GROUP BY p.department ORDER BY n DESC LIMIT 2) top) AS top_departments
FROM (SELECT f.user_id AS customer, recsys.cluster(s.model, f.factors) AS seg
      FROM shop_model m, segments s, recsys.user_factors(m.model) f) c
GROUP BY seg ORDER BY seg;

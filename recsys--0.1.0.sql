-- recsys 0.1.0: recommendation models inside PostgreSQL.
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

-- ---------------------------------------------------------------------------------
-- The model type: one value holding a trained model (factors, ID dictionaries, seen
-- items, popularity, training history). Text form: 'recsys:' || base64 (pg_dump);
-- binary form: the raw bytes (binary COPY). Both inputs validate every field.

CREATE TYPE @extschema@.model;

CREATE FUNCTION @extschema@.model_in(cstring) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_model_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.model_out(@extschema@.model) RETURNS cstring
  AS 'MODULE_PATHNAME', 'recsys_model_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.model_recv(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_model_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.model_send(@extschema@.model) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_model_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.model (
  INPUT = @extschema@.model_in,
  OUTPUT = @extschema@.model_out,
  RECEIVE = @extschema@.model_recv,
  SEND = @extschema@.model_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = double,
  STORAGE = external
);
COMMENT ON TYPE @extschema@.model IS 'A trained recsys model (see recsys.model_info)';

CREATE FUNCTION @extschema@.model_info(model @extschema@.model) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_model_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.model_info(@extschema@.model) IS
  'Algorithm, parameters, users, items, interactions, factors, bytes, training seconds, loss history and fingerprint of a model';

-- ---------------------------------------------------------------------------------
-- Training: implicit-feedback ALS as an aggregate.
-- user and item may be smallint, integer, bigint, text, varchar or uuid (independently;
-- an untyped literal counts as text).

CREATE FUNCTION @extschema@.train_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.train_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.train_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.train_trans(internal, "any", "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.train_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.train_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_train_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.train_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.als_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_als_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE @extschema@.train_als("user" "any", item "any") (
  SFUNC = @extschema@.train_trans, STYPE = internal, FINALFUNC = @extschema@.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", weight double precision) (
  SFUNC = @extschema@.train_trans, STYPE = internal, FINALFUNC = @extschema@.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = @extschema@.train_trans, STYPE = internal, FINALFUNC = @extschema@.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", options jsonb) (
  SFUNC = @extschema@.train_trans, STYPE = internal, FINALFUNC = @extschema@.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_als("any", "any", double precision, jsonb) IS
  'Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with a conjugate-gradient solve; options: factors, iterations, regularization, alpha, cg_steps, seed, init_scale, store_seen, calculate_loss, verbose, threads';

-- ---------------------------------------------------------------------------------
-- Serving.

-- One overload per ID type (not a polymorphic one), so that untyped literals and the
-- untyped parameters of prepared statements resolve (to text) and results come back
-- in the type of the ID argument: no casts when user and item IDs share a type.

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, "user" smallint, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, smallint, integer, boolean, boolean) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false';


CREATE FUNCTION @extschema@.recommend(model @extschema@.model, "user" integer, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, integer, integer, boolean, boolean) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, "user" bigint, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, bigint, integer, boolean, boolean) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, "user" text, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item text, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, text, integer, boolean, boolean) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, "user" uuid, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, uuid, integer, boolean, boolean) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, "user" "any", k integer, item_type anyelement,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, "any", integer, anyelement, boolean, boolean) IS
  'Top-k items for a user when item IDs have another type than user IDs: pass a typed NULL as item_type, e.g. NULL::text (the user argument must have a type: a column, a cast, or a typed parameter)';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id smallint, k integer)
  RETURNS TABLE(item smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, smallint, integer) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model';


CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id integer, k integer)
  RETURNS TABLE(item integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, integer, integer) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id bigint, k integer)
  RETURNS TABLE(item bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, bigint, integer) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id text, k integer)
  RETURNS TABLE(item text, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, text, integer) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id uuid, k integer)
  RETURNS TABLE(item uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, uuid, integer) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id smallint, k integer)
  RETURNS TABLE("user" smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, smallint, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';


CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id integer, k integer)
  RETURNS TABLE("user" integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, integer, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id bigint, k integer)
  RETURNS TABLE("user" bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, bigint, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id text, k integer)
  RETURNS TABLE("user" text, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, text, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id uuid, k integer)
  RETURNS TABLE("user" uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, uuid, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.score(model @extschema@.model, "user" "any", item "any") RETURNS real
  AS 'MODULE_PATHNAME', 'recsys_score' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.score(@extschema@.model, "any", "any") IS
  'The score recommend ranks by, for one (user, item) pair; NULL when the user or item is not in the model';

CREATE FUNCTION @extschema@.item_factors(model @extschema@.model)
  RETURNS TABLE(item text, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_item_factors' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.item_factors(model @extschema@.model, id_type anyelement)
  RETURNS TABLE(item anyelement, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_item_factors' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.item_factors(@extschema@.model) IS
  'The learned item embeddings, IDs as text; item_factors(model, NULL::bigint) returns IDs in a given type';
CREATE FUNCTION @extschema@.user_factors(model @extschema@.model)
  RETURNS TABLE("user" text, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_user_factors' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.user_factors(model @extschema@.model, id_type anyelement)
  RETURNS TABLE("user" anyelement, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_user_factors' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.user_factors(@extschema@.model) IS
  'The learned user embeddings, IDs as text; user_factors(model, NULL::bigint) returns IDs in a given type';

-- ---------------------------------------------------------------------------------
-- Explicit ratings: biased matrix factorization, the bias-only baseline, and the
-- popularity baseline. They share the ingest functions of train_als.

CREATE FUNCTION @extschema@.mf_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_mf_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.mf_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_mf_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.mf_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_mf_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_mf("user" "any", item "any", rating double precision) (
  SFUNC = @extschema@.mf_trans, STYPE = internal, FINALFUNC = @extschema@.mf_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_mf("user" "any", item "any", rating double precision, options jsonb) (
  SFUNC = @extschema@.mf_trans, STYPE = internal, FINALFUNC = @extschema@.mf_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_mf("any", "any", double precision, jsonb) IS
  'Biased matrix factorization for explicit ratings (mu + b_u + b_i + p_u.q_i) by deterministic parallel SGD; options: factors, epochs, learning_rate, bias_learning_rate, lr_schedule, lr_decay, reg_bias, reg_factors, init_scale, seed, holdout_fraction, patience, blocks, store_seen, verbose, threads';

CREATE FUNCTION @extschema@.baseline_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_baseline_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.baseline_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_baseline_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.baseline_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_baseline_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_baseline("user" "any", item "any", rating double precision) (
  SFUNC = @extschema@.baseline_trans, STYPE = internal, FINALFUNC = @extschema@.baseline_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_baseline("user" "any", item "any", rating double precision, options jsonb) (
  SFUNC = @extschema@.baseline_trans, STYPE = internal, FINALFUNC = @extschema@.baseline_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_baseline("any", "any", double precision, jsonb) IS
  'The bias-only rating baseline mu + b_u + b_i (regularized ALS on the biases, as Surprise''s BaselineOnly); options: epochs, reg_user, reg_item, store_seen, verbose, threads';

CREATE FUNCTION @extschema@.popularity_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.popularity_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.popularity_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.popularity_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_popularity_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any") (
  SFUNC = @extschema@.popularity_trans, STYPE = internal, FINALFUNC = @extschema@.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any", weight double precision) (
  SFUNC = @extschema@.popularity_trans, STYPE = internal, FINALFUNC = @extschema@.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = @extschema@.popularity_trans, STYPE = internal, FINALFUNC = @extschema@.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_popularity("any", "any", double precision, jsonb) IS
  'The popularity baseline: items ranked by number of users with positive feedback (options: measure users|weight, store_seen); recommend skips seen items';

-- ---------------------------------------------------------------------------------
-- Item-to-item collaborative filtering: a sparse item x item similarity model (each
-- item's top-N neighbours by cosine, TF-IDF or BM25 weighted co-occurrence). Same ingest,
-- combine and serialize functions as train_als.

CREATE FUNCTION @extschema@.item_knn_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.item_knn_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.item_knn_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.item_knn_trans(internal, "any", "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.item_knn_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_item_knn_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any") (
  SFUNC = @extschema@.item_knn_trans, STYPE = internal, FINALFUNC = @extschema@.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", weight double precision) (
  SFUNC = @extschema@.item_knn_trans, STYPE = internal, FINALFUNC = @extschema@.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = @extschema@.item_knn_trans, STYPE = internal, FINALFUNC = @extschema@.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", options jsonb) (
  SFUNC = @extschema@.item_knn_trans, STYPE = internal, FINALFUNC = @extschema@.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.train_combine,
  SERIALFUNC = @extschema@.train_serialize, DESERIALFUNC = @extschema@.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_item_knn("any", "any", double precision, jsonb) IS
  'Item-kNN: each item''s top-N neighbours by co-occurrence similarity (recommend sums the similarities to the user''s items); options: similarity (cosine|tfidf|bm25), k1, b, shrinkage, min_support, neighbours, binary, store_seen, verbose, threads';

CREATE FUNCTION @extschema@.predict(model @extschema@.model, "user" "any", item "any") RETURNS double precision
  AS 'MODULE_PATHNAME', 'recsys_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.predict(@extschema@.model, "any", "any") IS
  'Predicted rating on the training scale, clipped to the observed range; unknown user -> mu + b_i, unknown item -> mu + b_u, both -> mu';

-- ---------------------------------------------------------------------------------
-- Evaluation.

CREATE FUNCTION @extschema@.rating_metrics_trans(internal, @extschema@.model, "any", "any", double precision)
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_rating_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.rating_metrics_trans(internal, @extschema@.model, "any", "any", double precision, jsonb)
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_rating_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.rating_metrics_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.rating_metrics_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rating_metrics_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rating_metrics_final(internal) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.rating_metrics(model @extschema@.model, "user" "any", item "any", rating double precision) (
  SFUNC = @extschema@.rating_metrics_trans, STYPE = internal, FINALFUNC = @extschema@.rating_metrics_final,
  COMBINEFUNC = @extschema@.rating_metrics_combine, SERIALFUNC = @extschema@.rating_metrics_serialize,
  DESERIALFUNC = @extschema@.rating_metrics_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.rating_metrics(model @extschema@.model, "user" "any", item "any", rating double precision, options jsonb) (
  SFUNC = @extschema@.rating_metrics_trans, STYPE = internal, FINALFUNC = @extschema@.rating_metrics_final,
  COMBINEFUNC = @extschema@.rating_metrics_combine, SERIALFUNC = @extschema@.rating_metrics_serialize,
  DESERIALFUNC = @extschema@.rating_metrics_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.rating_metrics(@extschema@.model, "any", "any", double precision, jsonb) IS
  'RMSE, MSE and MAE of predict() over a test table, with counts of scored, unknown and skipped rows; option unknown: fallback (default) | skip';

CREATE FUNCTION @extschema@.ranking_metrics_trans(internal, @extschema@.model, "any", "any")
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.ranking_metrics_trans(internal, @extschema@.model, "any", "any", jsonb)
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.ranking_metrics_final(internal) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.ranking_metrics(model @extschema@.model, "user" "any", item "any") (
  SFUNC = @extschema@.ranking_metrics_trans, STYPE = internal, FINALFUNC = @extschema@.ranking_metrics_final,
  FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.ranking_metrics(model @extschema@.model, "user" "any", item "any", options jsonb) (
  SFUNC = @extschema@.ranking_metrics_trans, STYPE = internal, FINALFUNC = @extschema@.ranking_metrics_final,
  FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.ranking_metrics(@extschema@.model, "any", "any", jsonb) IS
  'precision, recall, MAP, NDCG, hit rate, MRR at k and catalogue coverage of recommend() against held-out (user, item) rows; options: k (10), exclude_seen (true), cold_start (false), threads';

-- ---------------------------------------------------------------------------------
-- Deterministic splits.

CREATE FUNCTION @extschema@.split_hash(seed bigint, VARIADIC ids "any") RETURNS double precision
  AS 'MODULE_PATHNAME', 'recsys_split_hash' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.split_hash(bigint, "any") IS
  'A number in [0, 1) fixed by the seed and the values: the building block of random, leave-k-out and k-fold splits';

CREATE FUNCTION @extschema@.random_split(seed bigint, test_fraction double precision, VARIADIC ids "any")
  RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_random_split' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.random_split(bigint, double precision, "any") IS
  'True for test rows: a deterministic random fraction of rows, chosen by the seed and the given ID values';

-- ---------------------------------------------------------------------------------
-- Cross-validation and parameter search (Surprise's cross_validate / GridSearchCV in
-- SQL): k folds by split_hash(seed, user, item), one model per (setting, fold), metrics
-- on the held-out fold; one row per setting with means and standard deviations.

CREATE FUNCTION @extschema@.cross_validate(
    query text,                          -- a SELECT whose first three columns are user, item, rating (or weight)
    algorithm text,                      -- 'mf' | 'baseline' | 'als' | 'popularity' | 'item_knn'
    settings jsonb[] DEFAULT ARRAY['{}'::jsonb],  -- training options, one element per setting
    folds integer DEFAULT 5,
    seed bigint DEFAULT 42,
    options jsonb DEFAULT '{}')          -- k (10), relevance_threshold (none), implicit_weight ("one" | "value")
RETURNS TABLE(setting jsonb, fold_count integer,
              rmse_mean double precision, rmse_std double precision,
              mae_mean double precision, mae_std double precision,
              precision_mean double precision, precision_std double precision,
              recall_mean double precision, map_mean double precision, ndcg_mean double precision,
              train_seconds_mean double precision, per_fold jsonb)
LANGUAGE plpgsql VOLATILE
AS $cv$
DECLARE
  tmp text := 'recsys_cv_' || pg_backend_pid();
  train_fn text;
  rating_model boolean;
  k integer := coalesce((options->>'k')::integer, 10);
  threshold double precision := (options->>'relevance_threshold')::double precision;
  weight_expr text := CASE coalesce(options->>'implicit_weight', 'one') WHEN 'value' THEN 'r' WHEN 'one' THEN '1' END;
  s jsonb;
  f integer;
  m @extschema@.model;
  t0 timestamptz;
  rm jsonb;
  km jsonb;
  fold_rows jsonb;
  secs double precision;
BEGIN
  IF folds IS NULL OR folds < 2 THEN
    RAISE EXCEPTION 'cross_validate: folds must be at least 2, got %', folds USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF weight_expr IS NULL THEN
    RAISE EXCEPTION 'cross_validate: option implicit_weight must be "one" or "value"' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF k < 1 THEN
    RAISE EXCEPTION 'cross_validate: option k must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  CASE algorithm
    WHEN 'mf' THEN train_fn := 'train_mf'; rating_model := true;
    WHEN 'baseline' THEN train_fn := 'train_baseline'; rating_model := true;
    WHEN 'als' THEN train_fn := 'train_als'; rating_model := false;
    WHEN 'popularity' THEN train_fn := 'train_popularity'; rating_model := false;
    WHEN 'item_knn' THEN train_fn := 'train_item_knn'; rating_model := false;
    ELSE RAISE EXCEPTION 'cross_validate: unknown algorithm "%" (use mf, baseline, als, popularity or item_knn)', algorithm
           USING ERRCODE = 'invalid_parameter_value';
  END CASE;
  IF to_regclass(format('pg_temp.%I', tmp)) IS NOT NULL THEN
    EXECUTE format('DROP TABLE pg_temp.%I', tmp);
  END IF;
  EXECUTE format('CREATE TEMP TABLE %I AS SELECT q.u, q.i, q.r::double precision AS r, '
                 'floor(@extschema@.split_hash($1, q.u, q.i) * $2)::integer AS fold FROM (%s) AS q(u, i, r)', tmp, query)
    USING seed, folds;
  FOREACH s IN ARRAY settings LOOP
    fold_rows := '[]'::jsonb;
    FOR f IN 0 .. folds - 1 LOOP
      t0 := clock_timestamp();
      IF rating_model THEN
        EXECUTE format('SELECT @extschema@.%I(u, i, r, $1) FROM pg_temp.%I WHERE fold <> $2', train_fn, tmp)
          INTO m USING s, f;
      ELSE
        EXECUTE format('SELECT @extschema@.%I(u, i, %s::double precision, $1) FROM pg_temp.%I '
                       'WHERE fold <> $2 AND ($3::double precision IS NULL OR r >= $3)', train_fn, weight_expr, tmp)
          INTO m USING s, f, threshold;
      END IF;
      secs := extract(epoch FROM clock_timestamp() - t0);
      rm := NULL;
      IF rating_model THEN
        EXECUTE format('SELECT @extschema@.rating_metrics($1, u, i, r) FROM pg_temp.%I WHERE fold = $2', tmp)
          INTO rm USING m, f;
      END IF;
      EXECUTE format('SELECT @extschema@.ranking_metrics($1, u, i, $3) FROM pg_temp.%I '
                     'WHERE fold = $2 AND ($4::double precision IS NULL OR r >= $4)', tmp)
        INTO km USING m, f, jsonb_build_object('k', k), threshold;
      fold_rows := fold_rows || jsonb_build_object('fold', f, 'train_seconds', secs, 'rating', rm, 'ranking', km);
    END LOOP;
    RETURN QUERY
      SELECT s, folds,
             avg((e->'rating'->>'rmse')::double precision), stddev_samp((e->'rating'->>'rmse')::double precision),
             avg((e->'rating'->>'mae')::double precision), stddev_samp((e->'rating'->>'mae')::double precision),
             avg((e->'ranking'->>'precision')::double precision), stddev_samp((e->'ranking'->>'precision')::double precision),
             avg((e->'ranking'->>'recall')::double precision), avg((e->'ranking'->>'map')::double precision),
             avg((e->'ranking'->>'ndcg')::double precision), avg((e->>'train_seconds')::double precision),
             fold_rows
      FROM jsonb_array_elements(fold_rows) e;
  END LOOP;
  EXECUTE format('DROP TABLE IF EXISTS pg_temp.%I', tmp);
END
$cv$;
COMMENT ON FUNCTION @extschema@.cross_validate(text, text, jsonb[], integer, bigint, jsonb) IS
  'k-fold cross-validation of one algorithm over a list of option settings: one row per setting with mean and standard deviation of RMSE/MAE (rating models) and ranking metrics at k';

-- ---------------------------------------------------------------------------------
-- Batch recommendations for every user (materialized views, nightly exports).

CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer)
  RETURNS TABLE("user" text, item text, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer, id_type anyelement,
    exclude_seen boolean DEFAULT true)
  RETURNS TABLE("user" anyelement, item anyelement, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer, id_type anyelement,
    exclude_seen boolean, users anyarray)
  RETURNS TABLE("user" anyelement, item anyelement, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer, user_type anyelement,
    item_type anycompatible, exclude_seen boolean DEFAULT true)
  RETURNS TABLE("user" anyelement, item anycompatible, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer, user_type anyelement,
    item_type anycompatible, exclude_seen boolean, users anyarray)
  RETURNS TABLE("user" anyelement, item anycompatible, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer, anyelement, boolean) IS
  'Top-k for every user (or the users in the array) as (user, item, score, rank): blocked, multi-threaded scoring; IDs in the type of id_type, e.g. NULL::bigint';

-- ---------------------------------------------------------------------------------
-- Content model: item similarity from product metadata alone (categories, tags, free
-- text, numbers). One jsonb object of features per row; rows of one item add up.

CREATE FUNCTION @extschema@.content_trans(internal, "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.content_trans(internal, "any", jsonb, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.content_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.content_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_content_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.content_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.content_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_content_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE @extschema@.train_content(item "any", features jsonb) (
  SFUNC = @extschema@.content_trans, STYPE = internal, FINALFUNC = @extschema@.content_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.content_combine,
  SERIALFUNC = @extschema@.content_serialize, DESERIALFUNC = @extschema@.content_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_content(item "any", features jsonb, options jsonb) (
  SFUNC = @extschema@.content_trans, STYPE = internal, FINALFUNC = @extschema@.content_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.content_combine,
  SERIALFUNC = @extschema@.content_serialize, DESERIALFUNC = @extschema@.content_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_content("any", jsonb) IS
  'Content model from item metadata: features is a jsonb object of field -> string (category, or free text for the text_fields), array (tags) or number (normalized); TF-IDF text, cosine similarity, stored neighbour lists';
COMMENT ON AGGREGATE @extschema@.train_content("any", jsonb, jsonb) IS
  'Content model from item metadata; options: weights {"field": w}, text_fields, neighbours, min_df, sublinear_tf, candidate_max_df, verbose, threads';

CREATE FUNCTION @extschema@.recommend_content(model @extschema@.model, items anyarray, k integer,
    exclude_given boolean DEFAULT true)
  RETURNS TABLE(item anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_content' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_content(@extschema@.model, anyarray, integer, boolean) IS
  'Top-k items of a content model by cosine to the sum of the given items'' feature vectors (a user''s history, a basket); unknown items and NULLs are skipped, no known item gives no rows; the given items are excluded unless exclude_given is false';
CREATE FUNCTION @extschema@.recommend_content(model @extschema@.model, items anyarray, weights double precision[],
    k integer, exclude_given boolean DEFAULT true)
  RETURNS TABLE(item anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_content' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_content(@extschema@.model, anyarray, double precision[], integer, boolean) IS
  'recommend_content with one weight per given item (e.g. 3 for a purchase, 1 for a view; negative pushes away)';

CREATE FUNCTION @extschema@.recommend_for_items(model @extschema@.model, items anyarray, k integer,
    exclude_given boolean DEFAULT true)
  RETURNS TABLE(item anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_for_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(@extschema@.model, anyarray, integer, boolean) IS
  'Top-k items for a list of items (a basket, a session, an anonymous visitor) from an item_knn model (sum of the stored similarities) or a content model (as recommend_content); unknown items and NULLs are skipped, the given items excluded unless exclude_given is false';
CREATE FUNCTION @extschema@.recommend_for_items(model @extschema@.model, items anyarray, weights double precision[],
    k integer, exclude_given boolean DEFAULT true)
  RETURNS TABLE(item anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_for_items' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(@extschema@.model, anyarray, double precision[], integer, boolean) IS
  'recommend_for_items with one weight per given item (item_knn: non-positive weights add nothing; content: negative pushes away)';

CREATE FUNCTION @extschema@.content_similarity(model @extschema@.model, item_a "any", item_b "any") RETURNS real
  AS 'MODULE_PATHNAME', 'recsys_content_similarity' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.content_similarity(@extschema@.model, "any", "any") IS
  'Cosine similarity of two items of a content model; NULL when either is not in the model';

-- ---------------------------------------------------------------------------------
-- k-means: customer segments from any feature vectors (real[], double precision[],
-- numeric[] or integer arrays).

CREATE FUNCTION @extschema@.kmeans_trans(internal, anyarray, integer) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_trans(internal, anyarray, integer, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_kmeans_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_kmeans_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE @extschema@.kmeans(features anyarray, k integer) (
  SFUNC = @extschema@.kmeans_trans, STYPE = internal, FINALFUNC = @extschema@.kmeans_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.kmeans_combine,
  SERIALFUNC = @extschema@.kmeans_serialize, DESERIALFUNC = @extschema@.kmeans_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.kmeans(features anyarray, k integer, options jsonb) (
  SFUNC = @extschema@.kmeans_trans, STYPE = internal, FINALFUNC = @extschema@.kmeans_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = @extschema@.kmeans_combine,
  SERIALFUNC = @extschema@.kmeans_serialize, DESERIALFUNC = @extschema@.kmeans_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.kmeans(anyarray, integer) IS
  'k-means clustering of feature vectors (k-means++ seeding, several restarts, deterministic for a seed); returns a model for recsys.cluster';
COMMENT ON AGGREGATE @extschema@.kmeans(anyarray, integer, jsonb) IS
  'k-means clustering of feature vectors; options: n_init (4), max_iter (100), tol (1e-4), seed (42), standardize (false), verbose, threads';

CREATE FUNCTION @extschema@.cluster(model @extschema@.model, features anyarray) RETURNS integer
  AS 'MODULE_PATHNAME', 'recsys_cluster' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.cluster(@extschema@.model, anyarray) IS
  'The cluster (0 to k - 1) of the nearest centre of a kmeans model for a feature vector';

CREATE FUNCTION @extschema@.kmeans_centroids(model @extschema@.model)
  RETURNS TABLE(cluster integer, size bigint, centroid real[])
  AS 'MODULE_PATHNAME', 'recsys_kmeans_centroids' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_centroids(@extschema@.model) IS
  'The clusters of a kmeans model: number, training rows and centre (in the units of the training vectors)';

CREATE FUNCTION @extschema@.user_segments(model @extschema@.model, k integer, options jsonb DEFAULT '{}')
  RETURNS TABLE("user" text, segment integer)
  LANGUAGE sql STABLE PARALLEL SAFE
AS $seg$
  WITH f AS MATERIALIZED (SELECT u."user", u.factors FROM @extschema@.user_factors(model) u),
       km AS (SELECT @extschema@.kmeans(f.factors, k, options) AS m FROM f)
  SELECT f."user", @extschema@.cluster(km.m, f.factors) FROM f, km
$seg$;
COMMENT ON FUNCTION @extschema@.user_segments(@extschema@.model, integer, jsonb) IS
  'User segments of a factor model: k-means (options as recsys.kmeans) on its user factors, one row per user';

CREATE FUNCTION @extschema@.tokenize(input text) RETURNS text[]
  AS 'MODULE_PATHNAME', 'recsys_tokenize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.tokenize(text) IS
  'The words train_content takes from a free-text field: runs of letters and digits of any script, lowercased (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic), no stemming or stop words, one-character ASCII words dropped';

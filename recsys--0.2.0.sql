-- recsys 0.2.0: recommendation models inside PostgreSQL.
\echo Use "CREATE EXTENSION recsys" to load this file. \quit

-- The public API lives in @extschema@; what only PostgreSQL calls (type I/O, the
-- aggregates' support functions) and the internals of SQL-language functions live in
-- recsys_internal, out of the way of \df recsys.*.
CREATE SCHEMA recsys_internal;
GRANT USAGE ON SCHEMA recsys_internal TO PUBLIC;
COMMENT ON SCHEMA recsys_internal IS 'recsys internals: type I/O and aggregate support functions (not an API)';

-- ---------------------------------------------------------------------------------
-- The model type: one value holding a trained model (factors, ID dictionaries, seen
-- items, popularity, training history). Text form: 'recsys:' || base64 (pg_dump);
-- binary form: the raw bytes (binary COPY). Both inputs validate every field.

CREATE TYPE @extschema@.model;

CREATE FUNCTION recsys_internal.model_in(cstring) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_model_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_out(@extschema@.model) RETURNS cstring
  AS 'MODULE_PATHNAME', 'recsys_model_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_recv(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_model_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_send(@extschema@.model) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_model_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.model (
  INPUT = recsys_internal.model_in,
  OUTPUT = recsys_internal.model_out,
  RECEIVE = recsys_internal.model_recv,
  SEND = recsys_internal.model_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = double,
  STORAGE = external
);
COMMENT ON TYPE @extschema@.model IS 'A trained recsys model (see recsys.model_info)';

CREATE FUNCTION @extschema@.model_info(model @extschema@.model) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_model_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.model_info(@extschema@.model) IS
  'Algorithm, parameters, users, items, interactions, factors, bytes, training seconds, loss history and fingerprint of a model';

-- Equality and order by fingerprint (DISTINCT, GROUP BY, =, hash and merge joins).
CREATE FUNCTION recsys_internal.model_eq(@extschema@.model, @extschema@.model) RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_model_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_ne(@extschema@.model, @extschema@.model) RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_model_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_lt(@extschema@.model, @extschema@.model) RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_model_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_le(@extschema@.model, @extschema@.model) RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_model_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_gt(@extschema@.model, @extschema@.model) RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_model_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_ge(@extschema@.model, @extschema@.model) RETURNS boolean
  AS 'MODULE_PATHNAME', 'recsys_model_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_cmp(@extschema@.model, @extschema@.model) RETURNS integer
  AS 'MODULE_PATHNAME', 'recsys_model_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_hash(@extschema@.model) RETURNS integer
  AS 'MODULE_PATHNAME', 'recsys_model_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.model_hash_extended(@extschema@.model, bigint) RETURNS bigint
  AS 'MODULE_PATHNAME', 'recsys_model_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.= (
  LEFTARG = @extschema@.model, RIGHTARG = @extschema@.model, FUNCTION = recsys_internal.model_eq,
  COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
  RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR @extschema@.<> (
  LEFTARG = @extschema@.model, RIGHTARG = @extschema@.model, FUNCTION = recsys_internal.model_ne,
  COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=), RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR @extschema@.< (
  LEFTARG = @extschema@.model, RIGHTARG = @extschema@.model, FUNCTION = recsys_internal.model_lt,
  COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=), RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR @extschema@.<= (
  LEFTARG = @extschema@.model, RIGHTARG = @extschema@.model, FUNCTION = recsys_internal.model_le,
  COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>), RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR @extschema@.> (
  LEFTARG = @extschema@.model, RIGHTARG = @extschema@.model, FUNCTION = recsys_internal.model_gt,
  COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=), RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR @extschema@.>= (
  LEFTARG = @extschema@.model, RIGHTARG = @extschema@.model, FUNCTION = recsys_internal.model_ge,
  COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<), RESTRICT = scalargesel, JOIN = scalargejoinsel);
COMMENT ON OPERATOR @extschema@.= (@extschema@.model, @extschema@.model) IS 'Same model: equal fingerprints';
COMMENT ON OPERATOR @extschema@.<> (@extschema@.model, @extschema@.model) IS 'Different models: different fingerprints';

CREATE OPERATOR CLASS @extschema@.model_ops DEFAULT FOR TYPE @extschema@.model USING btree AS
  OPERATOR 1 @extschema@.<, OPERATOR 2 @extschema@.<=, OPERATOR 3 @extschema@.=,
  OPERATOR 4 @extschema@.>=, OPERATOR 5 @extschema@.>,
  FUNCTION 1 recsys_internal.model_cmp(@extschema@.model, @extschema@.model);
CREATE OPERATOR CLASS @extschema@.model_hash_ops DEFAULT FOR TYPE @extschema@.model USING hash AS
  OPERATOR 1 @extschema@.=,
  FUNCTION 1 recsys_internal.model_hash(@extschema@.model),
  FUNCTION 2 recsys_internal.model_hash_extended(@extschema@.model, bigint);

-- ---------------------------------------------------------------------------------
-- Training: implicit-feedback ALS as an aggregate.
-- user and item may be smallint, integer, bigint, text, varchar or uuid (independently;
-- an untyped literal counts as text).

CREATE FUNCTION recsys_internal.train_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.train_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.train_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.train_trans(internal, "any", "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.train_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.train_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_train_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.train_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.als_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_als_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE @extschema@.train_als("user" "any", item "any") (
  SFUNC = recsys_internal.train_trans, STYPE = internal, FINALFUNC = recsys_internal.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", weight double precision) (
  SFUNC = recsys_internal.train_trans, STYPE = internal, FINALFUNC = recsys_internal.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = recsys_internal.train_trans, STYPE = internal, FINALFUNC = recsys_internal.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", options jsonb) (
  SFUNC = recsys_internal.train_trans, STYPE = internal, FINALFUNC = recsys_internal.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_als("any", "any", double precision, jsonb) IS
  'Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with a conjugate-gradient solve; options: factors, iterations, regularization, alpha, cg_steps, seed, init_scale, store_seen, calculate_loss, verbose, threads';

-- ---------------------------------------------------------------------------------
-- Serving.

-- One overload per ID type (not a polymorphic one), so that untyped literals and the
-- untyped parameters of prepared statements resolve (to text) and results come back
-- in the type of the ID argument: no casts when user and item IDs share a type.

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, user_id smallint, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true,
    include smallint[] DEFAULT NULL, exclude smallint[] DEFAULT NULL)
  RETURNS TABLE(item_id smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, smallint, integer, boolean, boolean, smallint[], smallint[]) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false; include => items[] allows only those items, exclude => items[] never returns those (exact: the top-k of the allowed items)';


CREATE FUNCTION @extschema@.recommend(model @extschema@.model, user_id integer, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true,
    include integer[] DEFAULT NULL, exclude integer[] DEFAULT NULL)
  RETURNS TABLE(item_id integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, integer, integer, boolean, boolean, integer[], integer[]) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false; include => items[] allows only those items, exclude => items[] never returns those (exact: the top-k of the allowed items)';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, user_id bigint, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true,
    include bigint[] DEFAULT NULL, exclude bigint[] DEFAULT NULL)
  RETURNS TABLE(item_id bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, bigint, integer, boolean, boolean, bigint[], bigint[]) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false; include => items[] allows only those items, exclude => items[] never returns those (exact: the top-k of the allowed items)';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, user_id text, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true,
    include text[] DEFAULT NULL, exclude text[] DEFAULT NULL)
  RETURNS TABLE(item_id text, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, text, integer, boolean, boolean, text[], text[]) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false; include => items[] allows only those items, exclude => items[] never returns those (exact: the top-k of the allowed items)';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, user_id uuid, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true,
    include uuid[] DEFAULT NULL, exclude uuid[] DEFAULT NULL)
  RETURNS TABLE(item_id uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, uuid, integer, boolean, boolean, uuid[], uuid[]) IS
  'Top-k items for a user, best first, in the type of the user argument; seen items excluded unless exclude_seen is false; an unknown user gets the most popular items unless cold_start is false; include => items[] allows only those items, exclude => items[] never returns those (exact: the top-k of the allowed items)';

CREATE FUNCTION @extschema@.recommend(model @extschema@.model, user_id "any", k integer, item_type anyelement,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true,
    include "any" DEFAULT NULL, exclude "any" DEFAULT NULL)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(@extschema@.model, "any", integer, anyelement, boolean, boolean, "any", "any") IS
  'Top-k items for a user when item IDs have another type than user IDs: pass a typed NULL as item_type, e.g. NULL::text (the user argument must have a type: a column, a cast, or a typed parameter)';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id smallint, k integer,
    include smallint[] DEFAULT NULL, exclude smallint[] DEFAULT NULL)
  RETURNS TABLE(item_id smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, smallint, integer, smallint[], smallint[]) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model; include => items[] / exclude => items[] filter the candidates exactly';


CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id integer, k integer,
    include integer[] DEFAULT NULL, exclude integer[] DEFAULT NULL)
  RETURNS TABLE(item_id integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, integer, integer, integer[], integer[]) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model; include => items[] / exclude => items[] filter the candidates exactly';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id bigint, k integer,
    include bigint[] DEFAULT NULL, exclude bigint[] DEFAULT NULL)
  RETURNS TABLE(item_id bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, bigint, integer, bigint[], bigint[]) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model; include => items[] / exclude => items[] filter the candidates exactly';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id text, k integer,
    include text[] DEFAULT NULL, exclude text[] DEFAULT NULL)
  RETURNS TABLE(item_id text, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, text, integer, text[], text[]) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model; include => items[] / exclude => items[] filter the candidates exactly';

CREATE FUNCTION @extschema@.similar_items(model @extschema@.model, item_id uuid, k integer,
    include uuid[] DEFAULT NULL, exclude uuid[] DEFAULT NULL)
  RETURNS TABLE(item_id uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(@extschema@.model, uuid, integer, uuid[], uuid[]) IS
  'The k items most similar to an item, the item itself excluded: cosine of item factors, or the stored neighbours of an item_knn or content model; include => items[] / exclude => items[] filter the candidates exactly';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id smallint, k integer)
  RETURNS TABLE(user_id smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, smallint, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';


CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id integer, k integer)
  RETURNS TABLE(user_id integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, integer, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id bigint, k integer)
  RETURNS TABLE(user_id bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, bigint, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id text, k integer)
  RETURNS TABLE(user_id text, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, text, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.similar_users(model @extschema@.model, user_id uuid, k integer)
  RETURNS TABLE(user_id uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(@extschema@.model, uuid, integer) IS
  'The k users most similar to a user (cosine of user factors), the user excluded';

CREATE FUNCTION @extschema@.score(model @extschema@.model, user_id "any", item_id "any") RETURNS real
  AS 'MODULE_PATHNAME', 'recsys_score' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.score(@extschema@.model, "any", "any") IS
  'The score recommend ranks by, for one (user, item) pair; NULL when the user or item is not in the model';

CREATE FUNCTION @extschema@.item_factors(model @extschema@.model)
  RETURNS TABLE(item_id text, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_item_factors' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.item_factors(model @extschema@.model, id_type anyelement)
  RETURNS TABLE(item_id anyelement, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_item_factors' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.item_factors(@extschema@.model) IS
  'The learned item embeddings, IDs as text; item_factors(model, NULL::bigint) returns IDs in a given type';
CREATE FUNCTION @extschema@.user_factors(model @extschema@.model)
  RETURNS TABLE(user_id text, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_user_factors' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.user_factors(model @extschema@.model, id_type anyelement)
  RETURNS TABLE(user_id anyelement, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_user_factors' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.user_factors(@extschema@.model) IS
  'The learned user embeddings, IDs as text; user_factors(model, NULL::bigint) returns IDs in a given type';

-- ---------------------------------------------------------------------------------
-- Explicit ratings: biased matrix factorization, the bias-only baseline, and the
-- popularity baseline. They share the ingest functions of train_als.

CREATE FUNCTION recsys_internal.mf_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_mf_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.mf_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_mf_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.mf_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_mf_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_mf("user" "any", item "any", rating double precision) (
  SFUNC = recsys_internal.mf_trans, STYPE = internal, FINALFUNC = recsys_internal.mf_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_mf("user" "any", item "any", rating double precision, options jsonb) (
  SFUNC = recsys_internal.mf_trans, STYPE = internal, FINALFUNC = recsys_internal.mf_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_mf("any", "any", double precision, jsonb) IS
  'Biased matrix factorization for explicit ratings (mu + b_u + b_i + p_u.q_i) by deterministic parallel SGD; options: factors, epochs, learning_rate, bias_learning_rate, lr_schedule, lr_decay, reg_bias, reg_factors, init_scale, seed, holdout_fraction, patience, blocks, store_seen, verbose, threads';

CREATE FUNCTION recsys_internal.baseline_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_baseline_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.baseline_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_baseline_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.baseline_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_baseline_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_baseline("user" "any", item "any", rating double precision) (
  SFUNC = recsys_internal.baseline_trans, STYPE = internal, FINALFUNC = recsys_internal.baseline_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_baseline("user" "any", item "any", rating double precision, options jsonb) (
  SFUNC = recsys_internal.baseline_trans, STYPE = internal, FINALFUNC = recsys_internal.baseline_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_baseline("any", "any", double precision, jsonb) IS
  'The bias-only rating baseline mu + b_u + b_i (regularized ALS on the biases, as Surprise''s BaselineOnly); options: epochs, reg_user, reg_item, store_seen, verbose, threads';

CREATE FUNCTION recsys_internal.popularity_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.popularity_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.popularity_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.popularity_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_popularity_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any") (
  SFUNC = recsys_internal.popularity_trans, STYPE = internal, FINALFUNC = recsys_internal.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any", weight double precision) (
  SFUNC = recsys_internal.popularity_trans, STYPE = internal, FINALFUNC = recsys_internal.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = recsys_internal.popularity_trans, STYPE = internal, FINALFUNC = recsys_internal.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_popularity("any", "any", double precision, jsonb) IS
  'The popularity baseline: items ranked by number of users with positive feedback (options: measure users|weight, store_seen); recommend skips seen items';

-- ---------------------------------------------------------------------------------
-- Item-to-item collaborative filtering: a sparse item x item similarity model (each
-- item's top-N neighbours by cosine, TF-IDF or BM25 weighted co-occurrence). Same ingest,
-- combine and serialize functions as train_als.

CREATE FUNCTION recsys_internal.item_knn_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.item_knn_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.item_knn_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.item_knn_trans(internal, "any", "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.item_knn_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_item_knn_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any") (
  SFUNC = recsys_internal.item_knn_trans, STYPE = internal, FINALFUNC = recsys_internal.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", weight double precision) (
  SFUNC = recsys_internal.item_knn_trans, STYPE = internal, FINALFUNC = recsys_internal.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = recsys_internal.item_knn_trans, STYPE = internal, FINALFUNC = recsys_internal.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", options jsonb) (
  SFUNC = recsys_internal.item_knn_trans, STYPE = internal, FINALFUNC = recsys_internal.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_item_knn("any", "any", double precision, jsonb) IS
  'Item-kNN: each item''s top-N neighbours by co-occurrence similarity (recommend sums the similarities to the user''s items); options: similarity (cosine|tfidf|bm25), k1, b, shrinkage, min_support, neighbours, binary, store_seen, verbose, threads';

CREATE FUNCTION @extschema@.predict(model @extschema@.model, user_id "any", item_id "any") RETURNS double precision
  AS 'MODULE_PATHNAME', 'recsys_predict' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.predict(@extschema@.model, "any", "any") IS
  'Predicted rating on the training scale, clipped to the observed range; unknown user -> mu + b_i, unknown item -> mu + b_u, both -> mu';

-- ---------------------------------------------------------------------------------
-- Evaluation.

CREATE FUNCTION recsys_internal.rating_metrics_trans(internal, @extschema@.model, "any", "any", double precision)
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_rating_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.rating_metrics_trans(internal, @extschema@.model, "any", "any", double precision, jsonb)
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_rating_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.rating_metrics_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.rating_metrics_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.rating_metrics_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.rating_metrics_final(internal) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_rating_metrics_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.rating_metrics(model @extschema@.model, "user" "any", item "any", rating double precision) (
  SFUNC = recsys_internal.rating_metrics_trans, STYPE = internal, FINALFUNC = recsys_internal.rating_metrics_final,
  COMBINEFUNC = recsys_internal.rating_metrics_combine, SERIALFUNC = recsys_internal.rating_metrics_serialize,
  DESERIALFUNC = recsys_internal.rating_metrics_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.rating_metrics(model @extschema@.model, "user" "any", item "any", rating double precision, options jsonb) (
  SFUNC = recsys_internal.rating_metrics_trans, STYPE = internal, FINALFUNC = recsys_internal.rating_metrics_final,
  COMBINEFUNC = recsys_internal.rating_metrics_combine, SERIALFUNC = recsys_internal.rating_metrics_serialize,
  DESERIALFUNC = recsys_internal.rating_metrics_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.rating_metrics(@extschema@.model, "any", "any", double precision, jsonb) IS
  'RMSE, MSE and MAE of predict() over a test table, with counts of scored, unknown and skipped rows; option unknown: fallback (default) | skip';

CREATE FUNCTION recsys_internal.ranking_metrics_trans(internal, @extschema@.model, "any", "any")
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ranking_metrics_trans(internal, @extschema@.model, "any", "any", jsonb)
  RETURNS internal AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ranking_metrics_final(internal) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_ranking_metrics_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.ranking_metrics(model @extschema@.model, "user" "any", item "any") (
  SFUNC = recsys_internal.ranking_metrics_trans, STYPE = internal, FINALFUNC = recsys_internal.ranking_metrics_final,
  FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.ranking_metrics(model @extschema@.model, "user" "any", item "any", options jsonb) (
  SFUNC = recsys_internal.ranking_metrics_trans, STYPE = internal, FINALFUNC = recsys_internal.ranking_metrics_final,
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

CREATE FUNCTION recsys_internal.checked_select(query text, caller text) RETURNS text
  AS 'MODULE_PATHNAME', 'recsys_checked_select' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys_internal.checked_select(text, text) IS
  'The text of query if it is exactly one SELECT (or VALUES/TABLE) that writes nothing; an error naming caller otherwise';

-- The body of cross_validate: its search_path is pinned (no operator or function of
-- another schema can be planted into it); the caller's query alone runs under the
-- caller's search_path, once, into a temporary table with a name no one else uses.
CREATE FUNCTION recsys_internal.cross_validate(query text, algorithm text, settings jsonb[], folds integer,
                                               seed bigint, options jsonb, caller_search_path text)
RETURNS TABLE(setting jsonb, fold_count integer,
              rmse_mean double precision, rmse_std double precision,
              mae_mean double precision, mae_std double precision,
              precision_mean double precision, precision_std double precision,
              recall_mean double precision, map_mean double precision, ndcg_mean double precision,
              train_seconds_mean double precision, per_fold jsonb)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $cv$
DECLARE
  tmp text;
  train_fn text;
  rating_model boolean;
  k integer;
  threshold double precision;
  weight_expr text;
  user_query text;
  s jsonb;
  f integer;
  m @extschema@.model;
  t0 timestamptz;
  rm jsonb;
  km jsonb;
  fold_rows jsonb;
  secs double precision;
  msg text;
  state text;
BEGIN
  IF query IS NULL OR algorithm IS NULL THEN
    RAISE EXCEPTION 'cross_validate: query and algorithm must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF folds IS NULL OR folds < 2 OR folds > 100 THEN
    RAISE EXCEPTION 'cross_validate: folds must be between 2 and 100, got %', folds
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF seed IS NULL THEN
    RAISE EXCEPTION 'cross_validate: seed must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF settings IS NULL OR cardinality(settings) = 0 THEN
    RAISE EXCEPTION 'cross_validate: settings must hold at least one options object' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  options := coalesce(options, '{}');
  IF jsonb_typeof(options) <> 'object' THEN
    RAISE EXCEPTION 'cross_validate: options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT string_agg(key, ', ') INTO msg FROM jsonb_object_keys(options) AS key
    WHERE key NOT IN ('k', 'relevance_threshold', 'implicit_weight');
  IF msg IS NOT NULL THEN
    RAISE EXCEPTION 'cross_validate: unknown option %', msg USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Valid options: k, relevance_threshold, implicit_weight.';
  END IF;
  IF jsonb_typeof(options->'k') NOT IN ('number') OR jsonb_typeof(options->'relevance_threshold') NOT IN ('number', 'null')
     OR jsonb_typeof(options->'implicit_weight') NOT IN ('string') THEN
    RAISE EXCEPTION 'cross_validate: option k and relevance_threshold must be numbers, implicit_weight a string'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  k := coalesce((options->>'k')::numeric, 10);
  IF k < 1 OR k > 100000 THEN
    RAISE EXCEPTION 'cross_validate: option k must be between 1 and 100000, got %', k USING ERRCODE = 'invalid_parameter_value';
  END IF;
  threshold := (options->>'relevance_threshold')::double precision;
  weight_expr := CASE coalesce(options->>'implicit_weight', 'one') WHEN 'value' THEN 'r' WHEN 'one' THEN '1' END;
  IF weight_expr IS NULL THEN
    RAISE EXCEPTION 'cross_validate: option implicit_weight must be "one" or "value"' USING ERRCODE = 'invalid_parameter_value';
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
  -- One SELECT, nothing else: a second statement or a data-modifying query is refused
  -- before anything runs.
  user_query := recsys_internal.checked_select(query, 'cross_validate');
  -- A name of our own: never an existing table of the session's.
  tmp := format('recsys_cv_%s_%s', pg_backend_pid(), md5(clock_timestamp()::text || random()::text));
  BEGIN
    PERFORM set_config('search_path', caller_search_path, true);
    EXECUTE format('CREATE TEMP TABLE %I ON COMMIT DROP AS SELECT q.u, q.i, q.r FROM (%s%s%s) AS q(u, i, r)',
                   tmp, E'\n', user_query, E'\n');
    PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
    RAISE EXCEPTION 'cross_validate: the query failed: %', msg USING ERRCODE = state,
      HINT = 'The query must be one SELECT whose first three columns are user, item and rating (or weight).';
  END;
  EXECUTE format('ALTER TABLE pg_temp.%I ALTER COLUMN r TYPE double precision, ADD COLUMN fold integer', tmp);
  EXECUTE format('UPDATE pg_temp.%I SET fold = floor(@extschema@.split_hash($1, u, i) * $2)::integer', tmp)
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
      IF m IS NULL THEN
        RAISE EXCEPTION 'cross_validate: fold % leaves no training rows', f USING ERRCODE = 'invalid_parameter_value',
          HINT = 'Use fewer folds, or a query with more rows.';
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
  EXECUTE format('DROP TABLE pg_temp.%I', tmp);
END
$cv$;
COMMENT ON FUNCTION recsys_internal.cross_validate(text, text, jsonb[], integer, bigint, jsonb, text) IS
  'The body of recsys.cross_validate (called with the caller''s search_path)';

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
LANGUAGE sql VOLATILE
-- No SET search_path here: the caller's search_path is read and handed on, so the
-- query runs with the names the caller sees; the body names nothing unqualified.
AS $cvw$
  SELECT * FROM recsys_internal.cross_validate(query, algorithm, settings, folds, seed, options,
                                               pg_catalog.current_setting('search_path'))
$cvw$;
COMMENT ON FUNCTION @extschema@.cross_validate(text, text, jsonb[], integer, bigint, jsonb) IS
  'k-fold cross-validation of one algorithm over a list of option settings: one row per setting with mean and standard deviation of RMSE/MAE (rating models) and ranking metrics at k; query must be one SELECT (2 to 100 folds)';

-- ---------------------------------------------------------------------------------
-- Batch recommendations for every user (materialized views, nightly exports).

CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer)
  RETURNS TABLE(user_id text, item_id text, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer, id_type anyelement,
    exclude_seen boolean DEFAULT true, users "any" DEFAULT NULL,
    include "any" DEFAULT NULL, exclude "any" DEFAULT NULL)
  RETURNS TABLE(user_id anyelement, item_id anyelement, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommend_all(model @extschema@.model, k integer, user_type anyelement,
    item_type anycompatible, exclude_seen boolean DEFAULT true, users "any" DEFAULT NULL,
    include "any" DEFAULT NULL, exclude "any" DEFAULT NULL)
  RETURNS TABLE(user_id anyelement, item_id anycompatible, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all' LANGUAGE C STABLE PARALLEL SAFE;

-- ---------------------------------------------------------------------------------
-- Content model: item similarity from product metadata alone (categories, tags, free
-- text, numbers). One jsonb object of features per row; rows of one item add up.

CREATE FUNCTION recsys_internal.content_trans(internal, "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.content_trans(internal, "any", jsonb, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.content_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.content_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_content_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.content_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_content_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.content_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_content_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE @extschema@.train_content(item "any", features jsonb) (
  SFUNC = recsys_internal.content_trans, STYPE = internal, FINALFUNC = recsys_internal.content_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.content_combine,
  SERIALFUNC = recsys_internal.content_serialize, DESERIALFUNC = recsys_internal.content_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_content(item "any", features jsonb, options jsonb) (
  SFUNC = recsys_internal.content_trans, STYPE = internal, FINALFUNC = recsys_internal.content_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.content_combine,
  SERIALFUNC = recsys_internal.content_serialize, DESERIALFUNC = recsys_internal.content_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_content("any", jsonb) IS
  'Content model from item metadata: features is a jsonb object of field -> string (category, or free text for the text_fields), array (tags) or number (normalized); TF-IDF text, cosine similarity, stored neighbour lists';
COMMENT ON AGGREGATE @extschema@.train_content("any", jsonb, jsonb) IS
  'Content model from item metadata; options: weights {"field": w}, text_fields, neighbours, min_df, sublinear_tf, candidate_max_df, verbose, threads';

CREATE FUNCTION @extschema@.recommend_content(model @extschema@.model, items anyarray, k integer,
    exclude_given boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_content' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_content(@extschema@.model, anyarray, integer, boolean) IS
  'Top-k items of a content model by cosine to the sum of the given items'' feature vectors (a user''s history, a basket); unknown items and NULLs are skipped, no known item gives no rows; the given items are excluded unless exclude_given is false';
CREATE FUNCTION @extschema@.recommend_content(model @extschema@.model, items anyarray, weights double precision[],
    k integer, exclude_given boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_content' LANGUAGE C STABLE STRICT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_content(@extschema@.model, anyarray, double precision[], integer, boolean) IS
  'recommend_content with one weight per given item (e.g. 3 for a purchase, 1 for a view; negative pushes away)';

CREATE FUNCTION @extschema@.recommend_for_items(model @extschema@.model, items anyarray, k integer,
    exclude_given boolean DEFAULT true, include "any" DEFAULT NULL, exclude "any" DEFAULT NULL,
    cold_start boolean DEFAULT NULL)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_for_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(@extschema@.model, anyarray, integer, boolean, "any", "any", boolean) IS
  'Top-k items for a history the model was not trained on (a new user, events since training, a basket), on every model kind: implicit ALS folds the user in exactly (the training''s user step), biased MF solves the user''s bias and factors, popularity returns the popular items, item_knn sums stored similarities, content scores the profile; unknown items and NULLs are skipped, the given items excluded unless exclude_given is false; include / exclude filter the candidates exactly; no known item gives the popular items (factor and popularity models) unless cold_start is false';
CREATE FUNCTION @extschema@.recommend_for_items(model @extschema@.model, items anyarray, weights double precision[],
    k integer, exclude_given boolean DEFAULT true, include "any" DEFAULT NULL, exclude "any" DEFAULT NULL,
    cold_start boolean DEFAULT NULL)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_for_items' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(@extschema@.model, anyarray, double precision[], integer, boolean, "any", "any", boolean) IS
  'recommend_for_items with one weight per given item (implicit ALS: confidence weights, duplicates add up; biased MF: the ratings, duplicates averaged; item_knn: non-positive weights add nothing; content: negative pushes away)';

CREATE FUNCTION @extschema@.content_similarity(model @extschema@.model, item_a "any", item_b "any") RETURNS real
  AS 'MODULE_PATHNAME', 'recsys_content_similarity' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.content_similarity(@extschema@.model, "any", "any") IS
  'Cosine similarity of two items of a content model; NULL when either is not in the model';

-- ---------------------------------------------------------------------------------
-- k-means: customer segments from any feature vectors (real[], double precision[],
-- numeric[] or integer arrays).

CREATE FUNCTION recsys_internal.kmeans_trans(internal, anyarray, integer) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.kmeans_trans(internal, anyarray, integer, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.kmeans_combine(internal, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_combine' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.kmeans_serialize(internal) RETURNS bytea
  AS 'MODULE_PATHNAME', 'recsys_kmeans_serialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.kmeans_deserialize(bytea, internal) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_kmeans_deserialize' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION recsys_internal.kmeans_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_kmeans_final' LANGUAGE C PARALLEL SAFE;

CREATE AGGREGATE @extschema@.kmeans(features anyarray, k integer) (
  SFUNC = recsys_internal.kmeans_trans, STYPE = internal, FINALFUNC = recsys_internal.kmeans_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.kmeans_combine,
  SERIALFUNC = recsys_internal.kmeans_serialize, DESERIALFUNC = recsys_internal.kmeans_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.kmeans(features anyarray, k integer, options jsonb) (
  SFUNC = recsys_internal.kmeans_trans, STYPE = internal, FINALFUNC = recsys_internal.kmeans_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.kmeans_combine,
  SERIALFUNC = recsys_internal.kmeans_serialize, DESERIALFUNC = recsys_internal.kmeans_deserialize, PARALLEL = SAFE);
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
  RETURNS TABLE(user_id text, segment integer)
  LANGUAGE sql STABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
AS $seg$
  WITH f AS MATERIALIZED (SELECT u.user_id, u.factors FROM @extschema@.user_factors(model) u),
       km AS (SELECT @extschema@.kmeans(f.factors, k, options) AS m FROM f)
  SELECT f.user_id, @extschema@.cluster(km.m, f.factors) FROM f, km
$seg$;
COMMENT ON FUNCTION @extschema@.user_segments(@extschema@.model, integer, jsonb) IS
  'User segments of a factor model: k-means (options as recsys.kmeans) on its user factors, one row per user';

CREATE FUNCTION @extschema@.tokenize(input text) RETURNS text[]
  AS 'MODULE_PATHNAME', 'recsys_tokenize' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.tokenize(text) IS
  'The words train_content takes from a free-text field: runs of letters and digits of any script, lowercased (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic), no stemming or stop words, one-character ASCII words dropped';

-- ---------------------------------------------------------------------------------
-- Comments on the overloads not commented above (\df+ shows one on every function).

COMMENT ON AGGREGATE @extschema@.train_als("any", "any") IS
  'Implicit-feedback ALS over (user, item) rows, each weighing 1, with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_als("any", "any", double precision) IS
  'Implicit-feedback ALS over (user, item, weight) rows with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_als("any", "any", jsonb) IS
  'Implicit-feedback ALS over (user, item) rows, each weighing 1, with options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_mf("any", "any", double precision) IS
  'Biased matrix factorization of (user, item, rating) rows with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_baseline("any", "any", double precision) IS
  'Baseline ratings mu + b_u + b_i from (user, item, rating) rows with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_popularity("any", "any") IS
  'Most popular items over (user, item) rows, each counting 1 (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_popularity("any", "any", double precision) IS
  'Most popular items over (user, item, weight) rows with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_item_knn("any", "any") IS
  'Item-kNN over (user, item) rows, each weighing 1, with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_item_knn("any", "any", double precision) IS
  'Item-kNN over (user, item, weight) rows with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_item_knn("any", "any", jsonb) IS
  'Item-kNN over (user, item) rows, each weighing 1, with options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.rating_metrics(@extschema@.model, "any", "any", double precision) IS
  'RMSE, MSE and MAE of predict() over (user, item, rating) test rows, unknown IDs by fallback (see the form with options)';
COMMENT ON AGGREGATE @extschema@.ranking_metrics(@extschema@.model, "any", "any") IS
  'Ranking metrics at k = 10 of recommend() against held-out (user, item) rows (see the form with options)';
COMMENT ON FUNCTION @extschema@.item_factors(@extschema@.model, anyelement) IS
  'The learned item embeddings with IDs in the type of id_type, e.g. item_factors(model, NULL::bigint)';
COMMENT ON FUNCTION @extschema@.user_factors(@extschema@.model, anyelement) IS
  'The learned user embeddings with IDs in the type of id_type, e.g. user_factors(model, NULL::bigint)';
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer) IS
  'Top-k items for every user as (user_id, item_id, score, rank), IDs as text; pass NULL::<type> arguments for typed IDs';
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer, anyelement, boolean, anyarray) IS
  'Top-k items for the given users (an array of user IDs), users and items sharing the ID type of id_type';
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer, anyelement, anycompatible, boolean) IS
  'Top-k items for every user, user IDs in the type of user_type and item IDs in the type of item_type';
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer, anyelement, anycompatible, boolean, anyarray) IS
  'Top-k items for the given users (an array of user IDs), user IDs typed as user_type and item IDs as item_type';

-- ---------------------------------------------------------------------------------
-- Options without a weight: an untyped literal such as '{"factors": 8}' could be a
-- weight (double precision) or options (jsonb), so PostgreSQL would call
-- train_als(u, i, '{"factors": 8}') ambiguous. These overloads take the options as
-- text (the type an untyped literal prefers) and read them as jsonb.

CREATE FUNCTION recsys_internal.train_trans(internal, "any", "any", text) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_train_trans' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_als("user" "any", item "any", options text) (
  SFUNC = recsys_internal.train_trans, STYPE = internal, FINALFUNC = recsys_internal.als_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_als("any", "any", text) IS
  'Implicit-feedback ALS over (user, item) rows, each weighing 1, with options given as text (an untyped literal such as ''{"factors": 8}''); see the four-argument form';

CREATE FUNCTION recsys_internal.popularity_trans(internal, "any", "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.popularity_trans(internal, "any", "any", text) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_popularity_trans' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any", options jsonb) (
  SFUNC = recsys_internal.popularity_trans, STYPE = internal, FINALFUNC = recsys_internal.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_popularity("user" "any", item "any", options text) (
  SFUNC = recsys_internal.popularity_trans, STYPE = internal, FINALFUNC = recsys_internal.popularity_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_popularity("any", "any", jsonb) IS
  'Most popular items over (user, item) rows, each counting 1, with options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_popularity("any", "any", text) IS
  'Most popular items over (user, item) rows, each counting 1, with options given as text (an untyped literal); see the four-argument form';

CREATE FUNCTION recsys_internal.item_knn_trans(internal, "any", "any", text) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_item_knn_trans' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_item_knn("user" "any", item "any", options text) (
  SFUNC = recsys_internal.item_knn_trans, STYPE = internal, FINALFUNC = recsys_internal.item_knn_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_item_knn("any", "any", text) IS
  'Item-kNN over (user, item) rows, each weighing 1, with options given as text (an untyped literal); see the four-argument form';
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer, anyelement, boolean, "any", "any", "any") IS
  'Top-k items for every user, or the users of the users array, as (user_id, item_id, score, rank), users and items sharing the ID type of id_type (e.g. NULL::bigint); include => items[] / exclude => items[] filter the candidates exactly';
COMMENT ON FUNCTION @extschema@.recommend_all(@extschema@.model, integer, anyelement, anycompatible, boolean, "any", "any", "any") IS
  'Top-k items for every user, or the users of the users array, user IDs typed as user_type and item IDs as item_type; include => items[] / exclude => items[] filter the candidates exactly';

-- ---------------------------------------------------------------------------------
-- Live serving: the user vector of a history the model was not trained on.

CREATE FUNCTION @extschema@.fold_in(model @extschema@.model, items anyarray, weights double precision[] DEFAULT NULL)
  RETURNS real[]
  AS 'MODULE_PATHNAME', 'recsys_fold_in' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.fold_in(@extschema@.model, anyarray, double precision[]) IS
  'The user factors a factor model gives a history without retraining (implicit ALS: the training''s user step for the fixed item factors; biased MF: the ridge solve, bias left out); NULL when no given item is in the model';

CREATE FUNCTION @extschema@.explain(model @extschema@.model, user_or_items "any", item_id anyelement,
    k integer DEFAULT 10, weights double precision[] DEFAULT NULL)
  RETURNS TABLE(item_id anyelement, contribution real)
  AS 'MODULE_PATHNAME', 'recsys_explain' LANGUAGE C STABLE PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.explain(@extschema@.model, "any", anyelement, integer, double precision[]) IS
  'The history items that contribute most to an item''s score, largest first: user_or_items is a user of the model or an array of items (a history, weights optional); exact on item_knn (weight x similarity), content (the profile''s share) and implicit ALS (the folded-in score split over the history, as implicit''s explain); contributions sum to the score; the item needs a type (a column or a cast such as ''B00X''::text)';

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
  'Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with a conjugate-gradient solve; options (defaults): factors (64), iterations (15), regularization (20), alpha (1), cg_steps (3), seed (42), init_scale, similar_items (100 up to 100,000 items, else 0: the most similar items of every item, stored for similar_items), store_seen, calculate_loss, verbose, threads';

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
  'Biased matrix factorization for explicit ratings (mu + b_u + b_i + p_u.q_i) by deterministic parallel SGD; options (defaults): factors (64), epochs (50), learning_rate (0.05), bias_learning_rate, lr_schedule, lr_decay, reg_bias (0.02), reg_factors (1.2), reg_exponent (0.5), init_scale, seed, holdout_fraction, patience, blocks, similar_items (as train_als), store_seen, verbose, threads';

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
  'Item-kNN: each item''s top-N neighbours by co-occurrence similarity (recommend sums the similarities to the user''s items); options (defaults): similarity (bm25; or cosine, tfidf), k1 (1.2), b (0.75), shrinkage (10), min_support (1), neighbours (200), binary, store_seen, verbose, threads';

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

-- The checked query of cross_validate / tune as a temporary table of (u, i, r) rows,
-- evaluated under the caller's search_path (the only thing that runs with it); an error
-- of the query is reported as the caller's, named by fn.
CREATE FUNCTION recsys_internal.materialize_query(checked_query text, tmp text, fn text, caller_search_path text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $materialize$
DECLARE
  msg text;
  state text;
BEGIN
  PERFORM set_config('search_path', caller_search_path, true);
  EXECUTE format('CREATE TEMP TABLE %I ON COMMIT DROP AS SELECT q.u, q.i, q.r FROM (%s%s%s) AS q(u, i, r)',
                 tmp, E'\n', checked_query, E'\n');
  PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
  RAISE EXCEPTION '%: the query failed: %', fn, msg USING ERRCODE = state,
    HINT = 'The query must be one SELECT whose first three columns are user, item and rating (or weight).';
END
$materialize$;
COMMENT ON FUNCTION recsys_internal.materialize_query(text, text, text, text) IS
  'Support function of cross_validate and tune: their checked query as a temporary table, run under the caller''s search_path';

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
    WHEN 'ease' THEN train_fn := 'train_ease'; rating_model := false;
    ELSE RAISE EXCEPTION 'cross_validate: unknown algorithm "%" (use mf, baseline, als, popularity, item_knn or ease)', algorithm
           USING ERRCODE = 'invalid_parameter_value';
  END CASE;
  -- One SELECT, nothing else: a second statement or a data-modifying query is refused
  -- before anything runs.
  user_query := recsys_internal.checked_select(query, 'cross_validate');
  -- A name of our own: never an existing table of the session's.
  tmp := format('recsys_cv_%s_%s', pg_backend_pid(), md5(clock_timestamp()::text || random()::text));
  PERFORM recsys_internal.materialize_query(user_query, tmp, 'cross_validate', caller_search_path);
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
    algorithm text,                      -- 'mf' | 'baseline' | 'als' | 'popularity' | 'item_knn' | 'ease'
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

-- Hybrid cold start: an implicit ALS model extended with items / users known only by
-- their metadata (a ridge mapping from train_content's features to ALS factors).
CREATE FUNCTION recsys_internal.hybrid_items_trans(internal, @extschema@.model, "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_hybrid_items_trans' LANGUAGE C;
CREATE FUNCTION recsys_internal.hybrid_items_trans(internal, @extschema@.model, "any", jsonb, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_hybrid_items_trans' LANGUAGE C;
CREATE FUNCTION recsys_internal.hybrid_items_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_hybrid_items_final' LANGUAGE C;
CREATE FUNCTION recsys_internal.hybrid_users_trans(internal, @extschema@.model, "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_hybrid_users_trans' LANGUAGE C;
CREATE FUNCTION recsys_internal.hybrid_users_trans(internal, @extschema@.model, "any", jsonb, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_hybrid_users_trans' LANGUAGE C;
CREATE FUNCTION recsys_internal.hybrid_users_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_hybrid_users_final' LANGUAGE C;
CREATE AGGREGATE @extschema@.train_hybrid_items(model @extschema@.model, item "any", features jsonb) (
  SFUNC = recsys_internal.hybrid_items_trans, STYPE = internal, FINALFUNC = recsys_internal.hybrid_items_final,
  FINALFUNC_MODIFY = READ_WRITE);
CREATE AGGREGATE @extschema@.train_hybrid_items(model @extschema@.model, item "any", features jsonb, options jsonb) (
  SFUNC = recsys_internal.hybrid_items_trans, STYPE = internal, FINALFUNC = recsys_internal.hybrid_items_final,
  FINALFUNC_MODIFY = READ_WRITE);
CREATE AGGREGATE @extschema@.train_hybrid_users(model @extschema@.model, user_id "any", attributes jsonb) (
  SFUNC = recsys_internal.hybrid_users_trans, STYPE = internal, FINALFUNC = recsys_internal.hybrid_users_final,
  FINALFUNC_MODIFY = READ_WRITE);
CREATE AGGREGATE @extschema@.train_hybrid_users(model @extschema@.model, user_id "any", attributes jsonb, options jsonb) (
  SFUNC = recsys_internal.hybrid_users_trans, STYPE = internal, FINALFUNC = recsys_internal.hybrid_users_final,
  FINALFUNC_MODIFY = READ_WRITE);
COMMENT ON AGGREGATE @extschema@.train_hybrid_items(@extschema@.model, "any", jsonb) IS
  'Hybrid cold start over an item metadata table (train_content''s features): the implicit ALS model with every item that has metadata but no interactions added, its factors mapped from its features by a ridge regression fitted on the warm items; warm items keep their factors; rerun it to refresh (the previous feature-only items are replaced, ALS is not retrained)';
COMMENT ON AGGREGATE @extschema@.train_hybrid_items(@extschema@.model, "any", jsonb, jsonb) IS
  'train_hybrid_items with options: lambda (ridge penalty, default 1), weights {"field": w}, text_fields, min_df, sublinear_tf, verbose, threads';
COMMENT ON AGGREGATE @extschema@.train_hybrid_users(@extschema@.model, "any", jsonb) IS
  'Hybrid cold start over a user attribute table (train_content''s features): the implicit ALS model with every user that has attributes but no history added, factors mapped from the attributes by a ridge regression fitted on the warm users; warm users keep their factors; rerun it to refresh';
COMMENT ON AGGREGATE @extschema@.train_hybrid_users(@extschema@.model, "any", jsonb, jsonb) IS
  'train_hybrid_users with options: lambda (ridge penalty, default 1), weights {"field": w}, text_fields, min_df, sublinear_tf, verbose, threads';

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
-- Serving by name: every serving function also takes a recommender's name in place of
-- a model (an untyped literal resolves to text, that is to these forms); the C entry
-- points put the live model in place of the name and run the model form (src/pg/recommender.cpp).

CREATE FUNCTION @extschema@.model_info(recommender text) RETURNS jsonb
  AS 'MODULE_PATHNAME', 'recsys_model_info_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.model_info(text) IS
  'By name: model_info of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend(recommender text, user_id smallint, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item_id smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, smallint, integer, boolean, boolean) IS
  'By name: recommend of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend(recommender text, user_id integer, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item_id integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, integer, integer, boolean, boolean) IS
  'By name: recommend of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend(recommender text, user_id bigint, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item_id bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, bigint, integer, boolean, boolean) IS
  'By name: recommend of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend(recommender text, user_id text, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item_id text, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, text, integer, boolean, boolean) IS
  'By name: recommend of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend(recommender text, user_id uuid, k integer,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item_id uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, uuid, integer, boolean, boolean) IS
  'By name: recommend of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend(recommender text, user_id "any", k integer, item_type anyelement,
    exclude_seen boolean DEFAULT true, cold_start boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(text, "any", integer, anyelement, boolean, boolean) IS
  'By name: recommend of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_items(recommender text, item_id smallint, k integer)
  RETURNS TABLE(item_id smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, smallint, integer) IS
  'By name: similar_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_items(recommender text, item_id integer, k integer)
  RETURNS TABLE(item_id integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, integer, integer) IS
  'By name: similar_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_items(recommender text, item_id bigint, k integer)
  RETURNS TABLE(item_id bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, bigint, integer) IS
  'By name: similar_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_items(recommender text, item_id text, k integer)
  RETURNS TABLE(item_id text, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, text, integer) IS
  'By name: similar_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_items(recommender text, item_id uuid, k integer)
  RETURNS TABLE(item_id uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(text, uuid, integer) IS
  'By name: similar_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_users(recommender text, user_id smallint, k integer)
  RETURNS TABLE(user_id smallint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, smallint, integer) IS
  'By name: similar_users of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_users(recommender text, user_id integer, k integer)
  RETURNS TABLE(user_id integer, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, integer, integer) IS
  'By name: similar_users of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_users(recommender text, user_id bigint, k integer)
  RETURNS TABLE(user_id bigint, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, bigint, integer) IS
  'By name: similar_users of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_users(recommender text, user_id text, k integer)
  RETURNS TABLE(user_id text, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, text, integer) IS
  'By name: similar_users of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.similar_users(recommender text, user_id uuid, k integer)
  RETURNS TABLE(user_id uuid, score real)
  AS 'MODULE_PATHNAME', 'recsys_similar_users_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_users(text, uuid, integer) IS
  'By name: similar_users of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.score(recommender text, user_id "any", item_id "any") RETURNS real
  AS 'MODULE_PATHNAME', 'recsys_score_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.score(text, "any", "any") IS
  'By name: score of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.item_factors(recommender text)
  RETURNS TABLE(item_id text, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_item_factors_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.item_factors(text) IS
  'By name: item_factors of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.item_factors(recommender text, id_type anyelement)
  RETURNS TABLE(item_id anyelement, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_item_factors_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.item_factors(text, anyelement) IS
  'By name: item_factors of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.user_factors(recommender text)
  RETURNS TABLE(user_id text, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_user_factors_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.user_factors(text) IS
  'By name: user_factors of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.user_factors(recommender text, id_type anyelement)
  RETURNS TABLE(user_id anyelement, factors real[])
  AS 'MODULE_PATHNAME', 'recsys_user_factors_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.user_factors(text, anyelement) IS
  'By name: user_factors of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.predict(recommender text, user_id "any", item_id "any") RETURNS double precision
  AS 'MODULE_PATHNAME', 'recsys_predict_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.predict(text, "any", "any") IS
  'By name: predict of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_all(recommender text, k integer)
  RETURNS TABLE(user_id text, item_id text, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.recommend_all(text, integer) IS
  'By name: recommend_all of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_all(recommender text, k integer, id_type anyelement,
    exclude_seen boolean DEFAULT true)
  RETURNS TABLE(user_id anyelement, item_id anyelement, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.recommend_all(text, integer, anyelement, boolean) IS
  'By name: recommend_all of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_all(recommender text, k integer, id_type anyelement,
    exclude_seen boolean, users anyarray)
  RETURNS TABLE(user_id anyelement, item_id anyelement, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.recommend_all(text, integer, anyelement, boolean, anyarray) IS
  'By name: recommend_all of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_all(recommender text, k integer, user_type anyelement,
    item_type anycompatible, exclude_seen boolean DEFAULT true)
  RETURNS TABLE(user_id anyelement, item_id anycompatible, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.recommend_all(text, integer, anyelement, anycompatible, boolean) IS
  'By name: recommend_all of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_all(recommender text, k integer, user_type anyelement,
    item_type anycompatible, exclude_seen boolean, users anyarray)
  RETURNS TABLE(user_id anyelement, item_id anycompatible, score real, rank integer)
  AS 'MODULE_PATHNAME', 'recsys_recommend_all_by_name' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.recommend_all(text, integer, anyelement, anycompatible, boolean, anyarray) IS
  'By name: recommend_all of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_content(recommender text, items anyarray, k integer,
    exclude_given boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_content_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_content(text, anyarray, integer, boolean) IS
  'By name: recommend_content of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_content(recommender text, items anyarray, weights double precision[],
    k integer, exclude_given boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_content_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_content(text, anyarray, double precision[], integer, boolean) IS
  'By name: recommend_content of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_for_items(recommender text, items anyarray, k integer,
    exclude_given boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_for_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(text, anyarray, integer, boolean) IS
  'By name: recommend_for_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.recommend_for_items(recommender text, items anyarray, weights double precision[],
    k integer, exclude_given boolean DEFAULT true)
  RETURNS TABLE(item_id anyelement, score real)
  AS 'MODULE_PATHNAME', 'recsys_recommend_for_items_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_items(text, anyarray, double precision[], integer, boolean) IS
  'By name: recommend_for_items of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';
CREATE FUNCTION @extschema@.content_similarity(recommender text, item_a "any", item_b "any") RETURNS real
  AS 'MODULE_PATHNAME', 'recsys_content_similarity_by_name' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.content_similarity(text, "any", "any") IS
  'By name: content_similarity of the named recommender''s live model (see the form taking a model); serving needs ownership or a grant (recsys.grant_recommender)';

-- ---------------------------------------------------------------------------------
-- Named recommenders: a catalog of (name, algorithm, source query, options, schedule)
-- with the live and the previous model, retrained safely (recsys.retrain), scheduled
-- with pg_cron, served by name, with a status view and materialized views for BI tools.
--
-- Permissions. The catalog rows are protected by row-level security: a role sees and
-- changes only the rows of recommenders whose owner it has the privileges of (the
-- superuser all). Every function below is SECURITY INVOKER, so that is what lets the
-- owner alone alter, retrain and drop a recommender. Serving by name checks ownership or
-- a grant (recsys.grant_recommender) in C, on every call. A retrain runs the source query
-- as the recommender's owner (SET ROLE to the owner when the caller is someone else, e.g.
-- a superuser or a pg_cron job): the owner wrote the query, so the query never runs with
-- the rights of a role that did not write it; and since only the owner's roles can change
-- the query, nobody can make the owner's retrain run a query of theirs.

CREATE TABLE recsys_internal.recommenders (
  name text COLLATE "C" PRIMARY KEY
    CONSTRAINT recommender_name CHECK (octet_length(name) BETWEEN 1 AND 63),
  owner regrole NOT NULL,
  algorithm text NOT NULL
    CONSTRAINT recommender_algorithm CHECK (algorithm IN ('als', 'mf', 'baseline', 'popularity', 'item_knn', 'ease', 'content')),
  source_query text NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  schedule text,
  search_path text NOT NULL,            -- the creator's search_path: the source query always runs under it
  user_type text,                       -- the source's ID types (format_type), for recommendation views
  item_type text,
  weighted boolean NOT NULL DEFAULT false,  -- the query has a third (weight or rating) column
  source_tables text[] NOT NULL DEFAULT '{}',  -- the tables the query reads (qualified names)
  readers regrole[] NOT NULL DEFAULT '{}',     -- roles granted serving
  model @extschema@.model,
  trained_at timestamptz,
  train_seconds double precision,
  rows_trained bigint,
  metric double precision,              -- held-out metric of the live model (with a gate)
  source_inserts bigint,                -- n_tup_ins of the source tables when the live model was trained
  previous_model @extschema@.model,
  previous_trained_at timestamptz,
  previous_train_seconds double precision,
  previous_rows_trained bigint,
  previous_metric double precision,
  previous_source_inserts bigint,
  last_attempt_at timestamptz,
  last_error text,
  last_error_at timestamptz,
  swaps bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE recsys_internal.recommenders IS
  'The named recommenders (recsys.create_recommender); read it through the view recsys.recommenders';
SELECT pg_catalog.pg_extension_config_dump('recsys_internal.recommenders', '');
ALTER TABLE recsys_internal.recommenders ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON recsys_internal.recommenders
  USING (pg_catalog.pg_has_role(owner::oid, 'USAGE'))
  WITH CHECK (pg_catalog.pg_has_role(owner::oid, 'USAGE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys_internal.recommenders TO PUBLIC;

CREATE TABLE recsys_internal.recommendation_views (
  view_schema name NOT NULL,
  view_name name NOT NULL,
  recommender text COLLATE "C" NOT NULL,
  k integer NOT NULL,
  PRIMARY KEY (view_schema, view_name)
);
COMMENT ON TABLE recsys_internal.recommendation_views IS
  'Materialized views made by recsys.create_recommendation_view, refreshed by every successful retrain';
SELECT pg_catalog.pg_extension_config_dump('recsys_internal.recommendation_views', '');
ALTER TABLE recsys_internal.recommendation_views ENABLE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON recsys_internal.recommendation_views
  USING (EXISTS (SELECT 1 FROM recsys_internal.recommenders r WHERE r.name = recommender))
  WITH CHECK (EXISTS (SELECT 1 FROM recsys_internal.recommenders r WHERE r.name = recommender));
GRANT SELECT, INSERT, UPDATE, DELETE ON recsys_internal.recommendation_views TO PUBLIC;

-- Every change of the catalog tells the serving caches of all backends (at commit).
CREATE FUNCTION recsys_internal.recommenders_changed() RETURNS trigger
  AS 'MODULE_PATHNAME', 'recsys_recommenders_changed' LANGUAGE C;
COMMENT ON FUNCTION recsys_internal.recommenders_changed() IS
  'Trigger: invalidates every backend''s by-name serving cache when the recommender catalog changes';
CREATE TRIGGER recommenders_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON recsys_internal.recommenders
  FOR EACH STATEMENT EXECUTE FUNCTION recsys_internal.recommenders_changed();

CREATE FUNCTION recsys_internal.resolve_recommender(name text) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_resolve_recommender' LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION recsys_internal.resolve_recommender(text) IS
  'The live model of a recommender through the backend''s by-name cache (what serving by name uses)';

CREATE FUNCTION recsys_internal.cron_next(schedule text, after timestamptz) RETURNS timestamptz
  AS 'MODULE_PATHNAME', 'recsys_cron_next' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION recsys_internal.cron_next(text, timestamptz) IS
  'The first minute after a time that a five-field cron schedule matches (UTC, as pg_cron 1.4); NULL for other schedules';

-- The trainer call for an algorithm, over columns c1, c2[, c3] of a relation.
CREATE FUNCTION recsys_internal.trainer_sql(algorithm text, weighted boolean, rel text, filter text)
RETURNS text LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $ts$
BEGIN
  RETURN CASE algorithm
    WHEN 'content' THEN format('SELECT @extschema@.train_content(c1, c2, $1) FROM %s WHERE %s', rel, filter)
    WHEN 'mf' THEN format('SELECT @extschema@.train_mf(c1, c2, c3::double precision, $1) FROM %s WHERE %s', rel, filter)
    WHEN 'baseline' THEN format('SELECT @extschema@.train_baseline(c1, c2, c3::double precision, $1) FROM %s WHERE %s', rel, filter)
    ELSE format('SELECT @extschema@.%I(c1, c2, %s, $1) FROM %s WHERE %s', 'train_' || algorithm,
                CASE WHEN weighted THEN 'c3::double precision' ELSE '1::double precision' END, rel, filter)
  END;
END
$ts$;
COMMENT ON FUNCTION recsys_internal.trainer_sql(text, boolean, text, text) IS
  'The training query of a recommender''s algorithm over columns c1, c2 [, c3] of a relation';

-- Checks a recommender definition before anything is stored: the algorithm, the query
-- (one SELECT; its columns, read from a temporary view that is never run), the options
-- (the trainer over one row of NULLs of the query's own types, then the gate), and returns what
-- the catalog keeps about the source. Runs as the caller, the query's names resolved
-- under caller_search_path.
CREATE FUNCTION recsys_internal.check_definition(caller text, algorithm text, source_query text, options jsonb,
                                                 caller_search_path text,
                                                 OUT user_type text, OUT item_type text, OUT weighted boolean,
                                                 OUT source_tables text[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $cd$
DECLARE
  q text;
  v text;
  ncols integer;
  types text[];
  gate jsonb;
  msg text;
  state text;
  m @extschema@.model;
BEGIN
  IF algorithm IS NULL OR algorithm NOT IN ('als', 'mf', 'baseline', 'popularity', 'item_knn', 'ease', 'content') THEN
    RAISE EXCEPTION '%: unknown algorithm "%"', caller, algorithm USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Use als, mf, baseline, popularity, item_knn, ease or content.';
  END IF;
  IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
    RAISE EXCEPTION '%: options must be a JSON object', caller USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF source_query IS NULL THEN
    RAISE EXCEPTION '%: source_query must not be NULL', caller USING ERRCODE = 'null_value_not_allowed';
  END IF;
  q := recsys_internal.checked_select(source_query, caller);
  v := format('recsys_src_%s_%s', pg_backend_pid(), md5(clock_timestamp()::text || random()::text));
  BEGIN
    PERFORM set_config('search_path', caller_search_path, true);
    EXECUTE format('CREATE TEMP VIEW %I AS SELECT * FROM (%s%s%s) AS q', v, E'\n', q, E'\n');
    PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
    RAISE EXCEPTION '%: the source query is not valid: %', caller, msg USING ERRCODE = state,
      HINT = 'It must be one SELECT of (user, item [, weight]) rows, or (item, features jsonb) for content.';
  END;
  SELECT count(*), array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) INTO ncols, types
    FROM pg_attribute a WHERE a.attrelid = format('pg_temp.%I', v)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
  SELECT coalesce(array_agg(DISTINCT d.refobjid::regclass::text ORDER BY d.refobjid::regclass::text), '{}') INTO source_tables
    FROM pg_depend d JOIN pg_rewrite rw ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
    JOIN pg_class c ON c.oid = d.refobjid
    WHERE rw.ev_class = format('pg_temp.%I', v)::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.refobjid <> rw.ev_class AND c.relkind IN ('r', 'p', 'm');
  IF algorithm = 'content' THEN
    IF ncols <> 2 OR types[2] <> 'jsonb' THEN
      RAISE EXCEPTION '%: a content recommender''s query yields (item, features jsonb), got (%)', caller,
        array_to_string(types, ', ') USING ERRCODE = 'datatype_mismatch';
    END IF;
    user_type := NULL;
    item_type := types[1];
    weighted := false;
  ELSE
    IF ncols NOT IN (2, 3) OR (algorithm IN ('mf', 'baseline') AND ncols <> 3) THEN
      RAISE EXCEPTION '%: the query of an "%" recommender yields (user, item%), got % columns (%)', caller, algorithm,
        CASE WHEN algorithm IN ('mf', 'baseline') THEN ', rating' ELSE ' [, weight]' END, ncols, array_to_string(types, ', ')
        USING ERRCODE = 'datatype_mismatch';
    END IF;
    user_type := types[1];
    item_type := types[2];
    weighted := ncols = 3;
  END IF;
  -- The options and ID types, as the trainer reads them: one training over a single row
  -- of NULLs of the query's types (the trainers check both at the first row, and skip
  -- it; the query itself never runs: it is only joined ON false).
  gate := options->'gate';
  BEGIN
    EXECUTE recsys_internal.trainer_sql(algorithm, weighted,
              format('(SELECT v.* FROM (SELECT 1) AS one LEFT JOIN pg_temp.%I AS v ON false) AS s(c1, c2%s)', v,
                     CASE WHEN ncols = 3 THEN ', c3' ELSE '' END), 'true')
      INTO m USING options - 'gate';
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
    RAISE EXCEPTION '%: %', caller, msg USING ERRCODE = state;
  END;
  IF gate IS NOT NULL THEN
    IF algorithm = 'content' THEN
      RAISE EXCEPTION '%: a content recommender has no held-out gate (it learns no user interactions)', caller
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(gate) <> 'object' THEN
      RAISE EXCEPTION '%: option gate must be a JSON object', caller USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(key, ', ') INTO msg FROM jsonb_object_keys(gate) AS key
      WHERE key NOT IN ('metric', 'min_ratio', 'test_fraction', 'k', 'seed');
    IF msg IS NOT NULL THEN
      RAISE EXCEPTION '%: unknown gate option %', caller, msg USING ERRCODE = 'invalid_parameter_value',
        HINT = 'Valid gate options: metric (precision, recall, map, ndcg), min_ratio, test_fraction, k, seed.';
    END IF;
    IF coalesce(gate->>'metric', 'ndcg') NOT IN ('precision', 'recall', 'map', 'ndcg')
       OR jsonb_typeof(coalesce(gate->'min_ratio', '0.9')) <> 'number'
       OR jsonb_typeof(coalesce(gate->'test_fraction', '0.2')) <> 'number'
       OR jsonb_typeof(coalesce(gate->'k', '10')) <> 'number'
       OR jsonb_typeof(coalesce(gate->'seed', '42')) <> 'number' THEN
      RAISE EXCEPTION '%: gate: metric must be precision, recall, map or ndcg; min_ratio, test_fraction, k and seed numbers', caller
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (gate->>'min_ratio')::numeric NOT BETWEEN 0 AND 10 OR (gate->>'test_fraction')::numeric <= 0
       OR (gate->>'test_fraction')::numeric >= 1 OR (gate->>'k')::numeric NOT BETWEEN 1 AND 100000 THEN
      RAISE EXCEPTION '%: gate: min_ratio must be in [0, 10], test_fraction in (0, 1), k in [1, 100000]', caller
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END IF;
  EXECUTE format('DROP VIEW pg_temp.%I', v);
END
$cd$;
COMMENT ON FUNCTION recsys_internal.check_definition(text, text, text, jsonb, text) IS
  'Validates a recommender definition (algorithm, one-SELECT query and its columns, trainer and gate options) before anything is stored';

-- Creates, moves or removes a recommender's pg_cron job (named recsys.<name>, command
-- CALL recsys.retrain('<name>')), or says how to enable pg_cron.
CREATE FUNCTION recsys_internal.set_schedule(recommender text, schedule text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $ss$
DECLARE
  have_cron boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron');
  job text := 'recsys.' || recommender;
BEGIN
  IF schedule IS NULL THEN
    IF have_cron THEN
      EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1' USING job;
    END IF;
    RETURN;
  END IF;
  IF NOT have_cron THEN
    RAISE EXCEPTION 'recommender "%": a schedule needs pg_cron, which is not installed in database "%"',
      recommender, current_database() USING ERRCODE = 'feature_not_supported',
      HINT = format('Add shared_preload_libraries = ''pg_cron'' and cron.database_name = %L to postgresql.conf, '
                    'restart the server, run CREATE EXTENSION pg_cron in that database and GRANT USAGE ON SCHEMA cron '
                    'to the owner; or leave the schedule NULL and CALL recsys.retrain(%L) from your own scheduler.',
                    current_database(), recommender);
  END IF;
  -- cron.schedule with the name of an existing job of this role moves that job; a schedule
  -- pg_cron cannot read is an error here, before anything is stored.
  EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING job, schedule, format('CALL @extschema@.retrain(%L)', recommender);
END
$ss$;
COMMENT ON FUNCTION recsys_internal.set_schedule(text, text) IS
  'Creates, moves or removes the pg_cron job recsys.<name> of a recommender (an error naming how to enable pg_cron when it is missing)';

CREATE FUNCTION recsys_internal.create_recommender(name text, algorithm text, source_query text, options jsonb,
                                                   schedule text, caller_search_path text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $cr$
DECLARE
  d record;
BEGIN
  IF name IS NULL OR octet_length(name) NOT BETWEEN 1 AND 63 THEN
    RAISE EXCEPTION 'create_recommender: name must have 1 to 63 bytes' USING ERRCODE = 'invalid_name';
  END IF;
  -- The catalog's primary key is the final word; this says it before any work is done
  -- (names of other roles' recommenders are taken too, but not shown by row security).
  IF EXISTS (SELECT 1 FROM recsys_internal.recommenders r WHERE r.name = create_recommender.name) THEN
    RAISE EXCEPTION 'recommender "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'recsys.alter_recommender changes it; recsys.drop_recommender removes it.';
  END IF;
  d := recsys_internal.check_definition('create_recommender', algorithm, source_query, coalesce(options, '{}'),
                                        caller_search_path);
  BEGIN
    INSERT INTO recsys_internal.recommenders (name, owner, algorithm, source_query, options, schedule, search_path,
                                              user_type, item_type, weighted, source_tables)
      VALUES (name, current_user::regrole, algorithm, source_query, coalesce(options, '{}'), schedule,
              caller_search_path, d.user_type, d.item_type, d.weighted, d.source_tables);
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'recommender "%" already exists', name USING ERRCODE = 'duplicate_object',
      HINT = 'Recommender names are unique across all roles.';
  END;
  PERFORM recsys_internal.set_schedule(name, schedule);
END
$cr$;
COMMENT ON FUNCTION recsys_internal.create_recommender(text, text, text, jsonb, text, text) IS
  'The body of recsys.create_recommender (called with the caller''s search_path)';

CREATE FUNCTION @extschema@.create_recommender(name text, algorithm text, source_query text,
                                               options jsonb DEFAULT '{}', schedule text DEFAULT NULL)
RETURNS void LANGUAGE sql VOLATILE
-- No SET search_path here: the caller's search_path is read and stored with the
-- recommender (its query always runs under it); the body names nothing unqualified.
AS $crw$
  SELECT recsys_internal.create_recommender(name, algorithm, source_query, options, schedule,
                                            pg_catalog.current_setting('search_path'))
$crw$;
COMMENT ON FUNCTION @extschema@.create_recommender(text, text, text, jsonb, text) IS
  'Creates a named recommender: algorithm (als, mf, baseline, popularity, item_knn, ease, content), one SELECT of (user, item [, weight]) rows (content: item, features), trainer options plus an optional "gate", and an optional pg_cron schedule; train it with CALL recsys.retrain(name)';

CREATE FUNCTION recsys_internal.alter_recommender(name text, source_query text, options jsonb, schedule text,
                                                  caller_search_path text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $ar$
DECLARE
  r recsys_internal.recommenders;
  d record;
  new_schedule text;
BEGIN
  SELECT * INTO r FROM recsys_internal.recommenders c WHERE c.name = alter_recommender.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object';
  END IF;
  new_schedule := CASE WHEN schedule IS NULL THEN r.schedule WHEN schedule = '' THEN NULL ELSE schedule END;
  IF source_query IS NOT NULL THEN
    d := recsys_internal.check_definition('alter_recommender', r.algorithm, source_query,
                                          coalesce(options, r.options), caller_search_path);
    UPDATE recsys_internal.recommenders c
       SET source_query = alter_recommender.source_query, search_path = caller_search_path,
           user_type = d.user_type, item_type = d.item_type, weighted = d.weighted, source_tables = d.source_tables
     WHERE c.name = r.name;
  ELSIF options IS NOT NULL THEN
    -- The stored query's search_path, for the types of its columns.
    d := recsys_internal.check_definition('alter_recommender', r.algorithm, r.source_query, options, r.search_path);
  END IF;
  UPDATE recsys_internal.recommenders c SET options = coalesce(alter_recommender.options, c.options),
         schedule = new_schedule WHERE c.name = r.name;
  IF new_schedule IS DISTINCT FROM r.schedule THEN
    PERFORM recsys_internal.set_schedule(r.name, new_schedule);
  END IF;
END
$ar$;
COMMENT ON FUNCTION recsys_internal.alter_recommender(text, text, jsonb, text, text) IS
  'The body of recsys.alter_recommender (called with the caller''s search_path)';

CREATE FUNCTION @extschema@.alter_recommender(name text, source_query text DEFAULT NULL, options jsonb DEFAULT NULL,
                                              schedule text DEFAULT NULL)
RETURNS void LANGUAGE sql VOLATILE
-- No SET search_path: as create_recommender (a new query is stored with the caller's).
AS $arw$
  SELECT recsys_internal.alter_recommender(name, source_query, options, schedule,
                                           pg_catalog.current_setting('search_path'))
$arw$;
COMMENT ON FUNCTION @extschema@.alter_recommender(text, text, jsonb, text) IS
  'Changes a recommender''s source query, options and/or schedule (NULL keeps a value, schedule => '''' removes the schedule); the owner only; the live model serves until the next retrain';

CREATE FUNCTION @extschema@.drop_recommender(name text, cascade boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $dr$
DECLARE
  r recsys_internal.recommenders;
  v record;
BEGIN
  SELECT * INTO r FROM recsys_internal.recommenders c WHERE c.name = drop_recommender.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object';
  END IF;
  FOR v IN SELECT * FROM recsys_internal.recommendation_views w WHERE w.recommender = r.name LOOP
    IF to_regclass(format('%I.%I', v.view_schema, v.view_name)) IS NOT NULL THEN
      IF NOT cascade THEN
        RAISE EXCEPTION 'recommender "%" has the recommendation view %', r.name, format('%I.%I', v.view_schema, v.view_name)
          USING ERRCODE = 'dependent_objects_still_exist', HINT = 'Drop the view first, or pass cascade => true.';
      END IF;
      EXECUTE format('DROP MATERIALIZED VIEW %I.%I', v.view_schema, v.view_name);
    END IF;
  END LOOP;
  DELETE FROM recsys_internal.recommendation_views w WHERE w.recommender = r.name;
  IF r.schedule IS NOT NULL THEN
    PERFORM recsys_internal.set_schedule(r.name, NULL);
  END IF;
  DELETE FROM recsys_internal.recommenders c WHERE c.name = r.name;
END
$dr$;
COMMENT ON FUNCTION @extschema@.drop_recommender(text, boolean) IS
  'Drops a recommender, its pg_cron job and (with cascade => true) its recommendation views; the owner only';

CREATE FUNCTION @extschema@.grant_recommender(name text, grantee regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $gr$
BEGIN
  UPDATE recsys_internal.recommenders c SET readers = array_append(array_remove(c.readers, grantee), grantee)
   WHERE c.name = grant_recommender.name;
  IF NOT FOUND OR grantee IS NULL THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object';
  END IF;
END
$gr$;
COMMENT ON FUNCTION @extschema@.grant_recommender(text, regrole) IS
  'Lets a role (and its members) serve from a recommender by name and see it in recsys.recommenders; the owner only';

CREATE FUNCTION @extschema@.revoke_recommender(name text, grantee regrole) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $rr$
BEGIN
  UPDATE recsys_internal.recommenders c SET readers = array_remove(c.readers, grantee) WHERE c.name = revoke_recommender.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object';
  END IF;
END
$rr$;
COMMENT ON FUNCTION @extschema@.revoke_recommender(text, regrole) IS
  'Takes back a grant of recsys.grant_recommender; the owner only';

-- The inserted-tuple counters of tables (pg_stat_user_tables.n_tup_ins, summed).
CREATE FUNCTION recsys_internal.source_inserts(tables text[]) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $si$
  SELECT sum(s.n_tup_ins)::bigint FROM pg_catalog.pg_stat_user_tables s
   WHERE s.relid = ANY (ARRAY(SELECT pg_catalog.to_regclass(t)::oid FROM pg_catalog.unnest(tables) t))
$si$;
COMMENT ON FUNCTION recsys_internal.source_inserts(text[]) IS
  'Rows ever inserted into the given tables (sum of pg_stat_user_tables.n_tup_ins)';

-- Refreshes a recommender's recommendation views (CONCURRENTLY once populated).
CREATE FUNCTION recsys_internal.refresh_views(recommender text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $rv$
DECLARE
  v record;
  rel regclass;
BEGIN
  FOR v IN SELECT * FROM recsys_internal.recommendation_views w WHERE w.recommender = refresh_views.recommender
           ORDER BY w.view_schema, w.view_name LOOP
    rel := to_regclass(format('%I.%I', v.view_schema, v.view_name));
    IF rel IS NULL THEN
      DELETE FROM recsys_internal.recommendation_views w
       WHERE w.view_schema = v.view_schema AND w.view_name = v.view_name;
    ELSIF (SELECT relispopulated FROM pg_class WHERE oid = rel) THEN
      EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s', rel);
    ELSE
      EXECUTE format('REFRESH MATERIALIZED VIEW %s', rel);
    END IF;
  END LOOP;
END
$rv$;
COMMENT ON FUNCTION recsys_internal.refresh_views(text) IS
  'Refreshes the recommendation views of a recommender (concurrently when populated); forgets views that were dropped';

-- Records a failed retrain; the live model is untouched.
CREATE FUNCTION recsys_internal.record_failure(recommender text, message text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $rf$
BEGIN
  UPDATE recsys_internal.recommenders c SET last_error = message, last_error_at = clock_timestamp()
   WHERE c.name = recommender;
  RAISE WARNING 'retrain of recommender "%" failed: %', recommender, message
    USING HINT = 'The live model keeps serving; see last_error in recsys.recommenders.';
END
$rf$;
COMMENT ON FUNCTION recsys_internal.record_failure(text, text) IS
  'Records why a retrain failed (last_error) and warns; the live model keeps serving';

CREATE PROCEDURE @extschema@.retrain(name text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $rt$
DECLARE
  r recsys_internal.recommenders;
  tmp text;
  cols text;
  m @extschema@.model;
  info jsonb;
  gate jsonb;
  train_options jsonb;
  t0 timestamptz;
  secs double precision;
  nrows bigint;
  metric_name text;
  new_metric double precision;
  eval_model @extschema@.model;
  filter text;
  msg text;
BEGIN
  -- One retrain of a recommender at a time; the second returns at once.
  IF NOT pg_try_advisory_xact_lock(1919118201, hashtext(name)) THEN
    RAISE NOTICE 'recommender "%" is being retrained by another session: nothing done', name;
    RETURN;
  END IF;
  SELECT * INTO r FROM recsys_internal.recommenders c WHERE c.name = retrain.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object',
      HINT = 'Only its owner (or a role with the owner''s privileges) may retrain a recommender.';
  END IF;
  UPDATE recsys_internal.recommenders c SET last_attempt_at = clock_timestamp() WHERE c.name = r.name;
  t0 := clock_timestamp();
  BEGIN
    -- The owner's query runs with the owner's rights (reverted when this block or the
    -- procedure ends), under the search_path it was written for.
    IF current_user::regrole <> r.owner THEN
      PERFORM set_config('role', pg_get_userbyid(r.owner::oid)::text, true);
    END IF;
    tmp := format('recsys_rt_%s_%s', pg_backend_pid(), md5(clock_timestamp()::text || random()::text));
    cols := CASE WHEN r.weighted THEN 'c1, c2, c3' ELSE 'c1, c2' END;
    PERFORM set_config('search_path', r.search_path, true);
    EXECUTE format('CREATE TEMP TABLE %I ON COMMIT DROP AS SELECT * FROM (%s%s%s) AS q(%s)', tmp, E'\n',
                   recsys_internal.checked_select(r.source_query, 'retrain'), E'\n', cols);
    PERFORM set_config('search_path', 'pg_catalog, pg_temp', true);
    EXECUTE format('SELECT count(*) FROM pg_temp.%I', tmp) INTO nrows;
    gate := r.options->'gate';
    train_options := r.options - 'gate';
    IF gate IS NOT NULL THEN
      -- The held-out gate: a model trained without the test rows (a deterministic split
      -- by split_hash(seed, user, item)) must reach min_ratio of the live model's metric.
      metric_name := coalesce(gate->>'metric', 'ndcg');
      filter := format('@extschema@.split_hash(%s, c1, c2) >= %s', coalesce((gate->>'seed')::bigint, 42),
                       coalesce((gate->>'test_fraction')::double precision, 0.2));
      EXECUTE recsys_internal.trainer_sql(r.algorithm, r.weighted, format('pg_temp.%I', tmp), filter)
        INTO eval_model USING train_options;
      IF eval_model IS NULL THEN
        RAISE EXCEPTION 'the training part of the held-out split has no rows' USING ERRCODE = 'no_data_found';
      END IF;
      EXECUTE format('SELECT (@extschema@.ranking_metrics($1, c1, c2, $2)->>%L)::double precision FROM pg_temp.%I '
                     'WHERE NOT (%s)', metric_name, tmp, filter)
        INTO new_metric USING eval_model, jsonb_build_object('k', coalesce((gate->>'k')::integer, 10));
      IF new_metric IS NULL THEN
        RAISE EXCEPTION 'the held-out % could not be measured (no test user known to the model)', metric_name
          USING ERRCODE = 'no_data_found';
      END IF;
      IF r.metric IS NOT NULL AND new_metric < coalesce((gate->>'min_ratio')::double precision, 0.9) * r.metric THEN
        RAISE EXCEPTION 'held-out % % is below % x % of the live model', metric_name, round(new_metric::numeric, 6),
          coalesce((gate->>'min_ratio')::double precision, 0.9), round(r.metric::numeric, 6)
          USING ERRCODE = 'check_violation';
      END IF;
    END IF;
    EXECUTE recsys_internal.trainer_sql(r.algorithm, r.weighted, format('pg_temp.%I', tmp), 'true')
      INTO m USING train_options;
    IF m IS NULL THEN
      RAISE EXCEPTION 'the source query returned no usable rows (the model would be NULL)' USING ERRCODE = 'no_data_found';
    END IF;
    info := @extschema@.model_info(m);
    IF (info->>'items')::bigint = 0 OR (r.algorithm <> 'content' AND (info->>'users')::bigint = 0) THEN
      RAISE EXCEPTION 'the new model is empty (% users, % items)', info->>'users', info->>'items'
        USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('DROP TABLE pg_temp.%I', tmp);
    secs := extract(epoch FROM clock_timestamp() - t0);
    -- The swap: one row update, atomic for every reader.
    UPDATE recsys_internal.recommenders c
       SET previous_model = c.model, previous_trained_at = c.trained_at, previous_train_seconds = c.train_seconds,
           previous_rows_trained = c.rows_trained, previous_metric = c.metric,
           previous_source_inserts = c.source_inserts,
           model = m, trained_at = clock_timestamp(), train_seconds = secs, rows_trained = nrows,
           metric = new_metric, source_inserts = recsys_internal.source_inserts(c.source_tables),
           last_error = NULL, last_error_at = NULL, swaps = c.swaps + 1
     WHERE c.name = r.name;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    PERFORM recsys_internal.record_failure(r.name, msg);
    RETURN;
  END;
  -- Views follow the new model in the same transaction; a view that cannot be refreshed
  -- is recorded, the swap stays.
  BEGIN
    IF current_user::regrole <> r.owner THEN
      PERFORM set_config('role', pg_get_userbyid(r.owner::oid)::text, true);
    END IF;
    PERFORM recsys_internal.refresh_views(r.name);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    PERFORM recsys_internal.record_failure(r.name, 'the model was swapped in, but a recommendation view was not refreshed: ' || msg);
  END;
END
$rt$;
COMMENT ON PROCEDURE @extschema@.retrain(text) IS
  'Retrains a recommender from its query (run as its owner) and swaps the new model in only when it is valid (not NULL, not empty, passing the optional held-out gate); a failure is recorded in recsys.recommenders and the live model keeps serving; one retrain per recommender at a time';

CREATE PROCEDURE @extschema@.rollback(name text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $rb$
DECLARE
  r recsys_internal.recommenders;
BEGIN
  IF NOT pg_try_advisory_xact_lock(1919118201, hashtext(name)) THEN
    RAISE EXCEPTION 'recommender "%" is being retrained by another session', name USING ERRCODE = 'lock_not_available';
  END IF;
  SELECT * INTO r FROM recsys_internal.recommenders c WHERE c.name = rollback.name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object';
  END IF;
  IF r.previous_model IS NULL THEN
    RAISE EXCEPTION 'recommender "%" has no previous model', name USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- Live and previous models change places (a second rollback undoes the first).
  UPDATE recsys_internal.recommenders c
     SET model = c.previous_model, trained_at = c.previous_trained_at, train_seconds = c.previous_train_seconds,
         rows_trained = c.previous_rows_trained, metric = c.previous_metric, source_inserts = c.previous_source_inserts,
         previous_model = c.model, previous_trained_at = c.trained_at, previous_train_seconds = c.train_seconds,
         previous_rows_trained = c.rows_trained, previous_metric = c.metric, previous_source_inserts = c.source_inserts,
         swaps = c.swaps + 1
   WHERE c.name = r.name;
  IF current_user::regrole <> r.owner THEN
    PERFORM set_config('role', pg_get_userbyid(r.owner::oid)::text, true);
  END IF;
  PERFORM recsys_internal.refresh_views(r.name);
END
$rb$;
COMMENT ON PROCEDURE @extschema@.rollback(text) IS
  'Puts a recommender''s previous model back in service (the live one becomes the previous: a second rollback undoes the first); refreshes its views';

CREATE FUNCTION recsys_internal.create_recommendation_view(name text, k integer, view_name text, caller_schema name)
RETURNS regclass LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $cv$
DECLARE
  r recsys_internal.recommenders;
  parts text[];
  target text;
  vschema name;
  vname name;
  rel regclass;
BEGIN
  SELECT * INTO r FROM recsys_internal.recommenders c WHERE c.name = create_recommendation_view.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'recommender "%" does not exist or is not yours', name USING ERRCODE = 'undefined_object';
  END IF;
  IF r.algorithm = 'content' THEN
    RAISE EXCEPTION 'recommender "%" is a content model: it has no users to recommend to', name
      USING ERRCODE = 'feature_not_supported';
  END IF;
  IF k IS NULL OR k < 1 OR k > 10000 THEN
    RAISE EXCEPTION 'create_recommendation_view: k must be between 1 and 10000, got %', k USING ERRCODE = 'invalid_parameter_value';
  END IF;
  parts := parse_ident(view_name);
  IF cardinality(parts) > 2 THEN
    RAISE EXCEPTION 'create_recommendation_view: view_name must be name or schema.name' USING ERRCODE = 'invalid_name';
  END IF;
  vschema := CASE WHEN cardinality(parts) = 2 THEN parts[1] ELSE caller_schema END;
  vname := parts[cardinality(parts)];
  IF vschema IS NULL THEN
    RAISE EXCEPTION 'create_recommendation_view: no schema to create % in', view_name USING ERRCODE = 'invalid_schema_name';
  END IF;
  target := format('%I.%I', vschema, vname);
  -- The owner's view (so that a retrain, run as the owner, may refresh it), IDs in the
  -- source's types, refreshed by retrain; WITH NO DATA until there is a model.
  IF current_user::regrole <> r.owner THEN
    PERFORM set_config('role', pg_get_userbyid(r.owner::oid)::text, true);
  END IF;
  EXECUTE format('CREATE MATERIALIZED VIEW %s AS SELECT user_id, item_id, score, rank '
                 'FROM @extschema@.recommend_all(%L::text, %s, NULL::%s, NULL::%s) WITH %s', target, r.name, k,
                 r.user_type::regtype, r.item_type::regtype, CASE WHEN r.model IS NULL THEN 'NO DATA' ELSE 'DATA' END);
  EXECUTE format('CREATE UNIQUE INDEX ON %s (user_id, item_id)', target);
  EXECUTE format('COMMENT ON MATERIALIZED VIEW %s IS %L', target,
                 format('Top %s recommendations of recommender %s, refreshed by recsys.retrain', k, r.name));
  rel := target::regclass;
  INSERT INTO recsys_internal.recommendation_views VALUES (vschema, vname, r.name, k);
  RETURN rel;
END
$cv$;
COMMENT ON FUNCTION recsys_internal.create_recommendation_view(text, integer, text, name) IS
  'The body of recsys.create_recommendation_view (called with the caller''s current schema)';

CREATE FUNCTION @extschema@.create_recommendation_view(name text, k integer, view_name text) RETURNS regclass
LANGUAGE sql VOLATILE
-- No SET search_path: an unqualified view_name goes to the caller's current schema, read
-- here and handed on; the body names nothing unqualified.
AS $cvw$
  SELECT recsys_internal.create_recommendation_view(name, k, view_name, pg_catalog.current_schema())
$cvw$;
COMMENT ON FUNCTION @extschema@.create_recommendation_view(text, integer, text) IS
  'Creates a materialized view (user_id, item_id, score, rank) of a recommender''s top k per user, IDs in the source''s types, with a unique index (REFRESH ... CONCURRENTLY works) and refreshed by every successful retrain';

-- pg_cron's view of a recommender's job, when pg_cron is there and readable.
CREATE FUNCTION recsys_internal.cron_status(recommender text, OUT jobid bigint, OUT active boolean,
                                            OUT last_run_at timestamptz, OUT last_run_status text,
                                            OUT last_run_message text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $cs$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')
     OR NOT has_schema_privilege('cron', 'USAGE') OR NOT has_table_privilege('cron.job', 'SELECT')
     OR NOT has_table_privilege('cron.job_run_details', 'SELECT') THEN
    RETURN;
  END IF;
  EXECUTE 'SELECT j.jobid, j.active, d.start_time, d.status, d.return_message
             FROM cron.job j
             LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details x WHERE x.jobid = j.jobid
                                ORDER BY x.start_time DESC NULLS LAST LIMIT 1) d ON true
            WHERE j.jobname = $1 ORDER BY j.jobid LIMIT 1'
    INTO jobid, active, last_run_at, last_run_status, last_run_message USING 'recsys.' || recommender;
END
$cs$;
COMMENT ON FUNCTION recsys_internal.cron_status(text) IS
  'The pg_cron job of a recommender and its last run (nothing when pg_cron is missing or not readable)';

CREATE VIEW @extschema@.recommenders WITH (security_barrier) AS
  SELECT r.name, r.owner, r.algorithm, r.schedule, r.source_query, r.options,
         r.trained_at, pg_catalog.now() - r.trained_at AS age, r.train_seconds, r.rows_trained,
         pg_catalog.pg_column_size(r.model)::bigint AS model_bytes, r.metric,
         r.previous_model IS NOT NULL AS has_previous, r.previous_trained_at,
         r.last_attempt_at, r.last_error, r.last_error_at, r.swaps,
         c.jobid AS cron_jobid, c.last_run_at, c.last_run_status,
         CASE WHEN c.jobid IS NOT NULL AND c.active THEN recsys_internal.cron_next(r.schedule, pg_catalog.now()) END
           AS next_run_at,
         recsys_internal.source_inserts(r.source_tables) - r.source_inserts AS rows_inserted_since_training,
         r.source_tables, r.readers
    FROM recsys_internal.recommenders r
    LEFT JOIN LATERAL recsys_internal.cron_status(r.name) c ON true
   WHERE pg_catalog.pg_has_role(r.owner::oid, 'USAGE')
      OR EXISTS (SELECT 1 FROM pg_catalog.unnest(r.readers) g WHERE pg_catalog.pg_has_role(g::oid, 'USAGE'));
COMMENT ON VIEW @extschema@.recommenders IS
  'Named recommenders you own or were granted: algorithm, schedule, trained_at, age, training seconds, rows trained on, model bytes, held-out metric, last error, pg_cron job and last/next run, and rows inserted into the source tables since training (pg_stat_user_tables.n_tup_ins: inserts only, not updates or deletes; reset with the statistics)';
GRANT SELECT ON @extschema@.recommenders TO PUBLIC;

-- ---------------------------------------------------------------------------------
-- EASE (Steck 2019): the closed-form item-item model B = I - P diag(1/diag(P)),
-- P = (X^T X + lambda I)^-1, each item keeping its largest weights; served through the
-- item-kNN paths. Same ingest, combine and serialize functions as train_als.

CREATE FUNCTION recsys_internal.ease_trans(internal, "any", "any") RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_ease_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ease_trans(internal, "any", "any", double precision) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_ease_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ease_trans(internal, "any", "any", double precision, jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_ease_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ease_trans(internal, "any", "any", jsonb) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_ease_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ease_trans(internal, "any", "any", text) RETURNS internal
  AS 'MODULE_PATHNAME', 'recsys_ease_trans' LANGUAGE C PARALLEL SAFE;
CREATE FUNCTION recsys_internal.ease_final(internal) RETURNS @extschema@.model
  AS 'MODULE_PATHNAME', 'recsys_ease_final' LANGUAGE C PARALLEL SAFE;
CREATE AGGREGATE @extschema@.train_ease("user" "any", item "any") (
  SFUNC = recsys_internal.ease_trans, STYPE = internal, FINALFUNC = recsys_internal.ease_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_ease("user" "any", item "any", weight double precision) (
  SFUNC = recsys_internal.ease_trans, STYPE = internal, FINALFUNC = recsys_internal.ease_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_ease("user" "any", item "any", weight double precision, options jsonb) (
  SFUNC = recsys_internal.ease_trans, STYPE = internal, FINALFUNC = recsys_internal.ease_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_ease("user" "any", item "any", options jsonb) (
  SFUNC = recsys_internal.ease_trans, STYPE = internal, FINALFUNC = recsys_internal.ease_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.train_ease("user" "any", item "any", options text) (
  SFUNC = recsys_internal.ease_trans, STYPE = internal, FINALFUNC = recsys_internal.ease_final,
  FINALFUNC_MODIFY = READ_WRITE, COMBINEFUNC = recsys_internal.train_combine,
  SERIALFUNC = recsys_internal.train_serialize, DESERIALFUNC = recsys_internal.train_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.train_ease("any", "any", double precision, jsonb) IS
  'EASE (Steck 2019): the closed-form item-item model B = I - P diag(1/diag P), P = (X^T X + lambda I)^-1, from a dense multi-threaded inverse (catalogues up to tens of thousands of items; beyond, train_item_knn); each item keeps its "neighbours" largest weights by magnitude and recommend sums them over the user''s items; options: lambda (default 400), neighbours (default 500), binary (default true), store_seen, verbose, threads';
COMMENT ON AGGREGATE @extschema@.train_ease("any", "any") IS
  'EASE over (user, item) rows with default options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_ease("any", "any", double precision) IS
  'EASE over (user, item, weight) rows with default options (see the four-argument form); the weights count only with binary = false';
COMMENT ON AGGREGATE @extschema@.train_ease("any", "any", jsonb) IS
  'EASE over (user, item) rows with options (see the four-argument form)';
COMMENT ON AGGREGATE @extschema@.train_ease("any", "any", text) IS
  'EASE over (user, item) rows with options given as text (an untyped literal); see the four-argument form';

-- ---------------------------------------------------------------------------------
-- Parameter search in one call: tune picks the best setting of a grid on a validation
-- split carved from the training query alone, then trains the final model with it on
-- every row of that query. Its body has a pinned search_path, as cross_validate's.

CREATE FUNCTION recsys_internal.tune(query text, algorithm text, grid jsonb, metric text,
                                     validation_fraction double precision, seed bigint, options jsonb,
                                     caller_search_path text)
RETURNS TABLE(model @extschema@.model, best_setting jsonb, best_score double precision, metric_name text,
              results jsonb)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $tune$
DECLARE
  tmp text;
  train_fn text;
  rating_model boolean;
  settings jsonb[];
  expanded jsonb[];
  key text;
  vals jsonb;
  v jsonb;
  s jsonb;
  idx integer;
  mname text;
  k integer;
  lower_better boolean;
  threshold double precision;
  weight_expr text;
  user_query text;
  m @extschema@.model;
  t0 timestamptz;
  rm jsonb;
  km jsonb;
  sc double precision;
  secs double precision;
  best_idx integer;
  best double precision;
  rows_all jsonb := '[]';
  n_train bigint;
  n_valid bigint;
  msg text;
  state text;
BEGIN
  IF query IS NULL OR algorithm IS NULL OR grid IS NULL OR metric IS NULL THEN
    RAISE EXCEPTION 'tune: query, algorithm, grid and metric must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF seed IS NULL THEN
    RAISE EXCEPTION 'tune: seed must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF validation_fraction IS NULL OR NOT (validation_fraction > 0 AND validation_fraction < 1) THEN
    RAISE EXCEPTION 'tune: validation_fraction must be between 0 and 1 (exclusive), got %', validation_fraction
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  options := coalesce(options, '{}');
  IF jsonb_typeof(options) <> 'object' THEN
    RAISE EXCEPTION 'tune: options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT string_agg(o, ', ') INTO msg FROM jsonb_object_keys(options) AS o
    WHERE o NOT IN ('relevance_threshold', 'implicit_weight');
  IF msg IS NOT NULL THEN
    RAISE EXCEPTION 'tune: unknown option %', msg USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Valid options: relevance_threshold, implicit_weight (the metric names k, e.g. ''ndcg@10'').';
  END IF;
  IF jsonb_typeof(options->'relevance_threshold') NOT IN ('number', 'null')
     OR jsonb_typeof(options->'implicit_weight') NOT IN ('string') THEN
    RAISE EXCEPTION 'tune: option relevance_threshold must be a number, implicit_weight a string'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  threshold := (options->>'relevance_threshold')::double precision;
  weight_expr := CASE coalesce(options->>'implicit_weight', 'one') WHEN 'value' THEN 'r' WHEN 'one' THEN '1' END;
  IF weight_expr IS NULL THEN
    RAISE EXCEPTION 'tune: option implicit_weight must be "one" or "value"' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  CASE algorithm
    WHEN 'mf' THEN train_fn := 'train_mf'; rating_model := true;
    WHEN 'baseline' THEN train_fn := 'train_baseline'; rating_model := true;
    WHEN 'als' THEN train_fn := 'train_als'; rating_model := false;
    WHEN 'popularity' THEN train_fn := 'train_popularity'; rating_model := false;
    WHEN 'item_knn' THEN train_fn := 'train_item_knn'; rating_model := false;
    WHEN 'ease' THEN train_fn := 'train_ease'; rating_model := false;
    ELSE RAISE EXCEPTION 'tune: unknown algorithm "%" (use mf, baseline, als, popularity, item_knn or ease)', algorithm
           USING ERRCODE = 'invalid_parameter_value';
  END CASE;
  -- The metric: ndcg@k, precision@k, recall@k, map@k (higher is better), or rmse, mae
  -- (rating models only; lower is better).
  metric := lower(btrim(metric));
  IF metric IN ('rmse', 'mae') THEN
    IF NOT rating_model THEN
      RAISE EXCEPTION 'tune: metric % needs a rating model (mf or baseline), not %', metric, algorithm
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    mname := metric; k := 10; lower_better := true;
  ELSIF metric ~ '^(ndcg|precision|recall|map)@[0-9]{1,6}$' THEN
    mname := split_part(metric, '@', 1); k := split_part(metric, '@', 2)::integer; lower_better := false;
    IF k < 1 OR k > 100000 THEN
      RAISE EXCEPTION 'tune: k of metric % must be between 1 and 100000', metric USING ERRCODE = 'invalid_parameter_value';
    END IF;
  ELSE
    RAISE EXCEPTION 'tune: unknown metric "%"', metric USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Use ndcg@k, precision@k, recall@k or map@k (e.g. ''ndcg@10''), or rmse or mae for mf and baseline.';
  END IF;
  -- The grid: an array of option objects, or an object of arrays (every combination).
  IF jsonb_typeof(grid) = 'array' THEN
    SELECT array_agg(e ORDER BY n) INTO settings FROM jsonb_array_elements(grid) WITH ORDINALITY AS a(e, n);
    IF settings IS NULL THEN
      RAISE EXCEPTION 'tune: the grid is empty' USING ERRCODE = 'invalid_parameter_value',
        HINT = 'Pass an array of option objects (''[{"factors": 32}, {"factors": 64}]'') or an object of arrays (''{"factors": [32, 64]}'').';
    END IF;
    FOREACH s IN ARRAY settings LOOP
      IF jsonb_typeof(s) <> 'object' THEN
        RAISE EXCEPTION 'tune: every element of a grid array must be a JSON object of options, got %', s
          USING ERRCODE = 'invalid_parameter_value';
      END IF;
    END LOOP;
  ELSIF jsonb_typeof(grid) = 'object' THEN
    IF grid = '{}'::jsonb THEN
      RAISE EXCEPTION 'tune: the grid is empty' USING ERRCODE = 'invalid_parameter_value',
        HINT = 'Pass ''[{}]'' to score the defaults alone, or options with their values (''{"factors": [32, 64]}'').';
    END IF;
    settings := ARRAY['{}'::jsonb];
    FOR key, vals IN SELECT e.key, e.value FROM jsonb_each(grid) e LOOP
      IF jsonb_typeof(vals) <> 'array' THEN
        vals := jsonb_build_array(vals);
      END IF;
      IF jsonb_array_length(vals) = 0 THEN
        RAISE EXCEPTION 'tune: grid option "%" has no values', key USING ERRCODE = 'invalid_parameter_value';
      END IF;
      expanded := ARRAY[]::jsonb[];
      FOREACH s IN ARRAY settings LOOP
        FOR v IN SELECT e FROM jsonb_array_elements(vals) e LOOP
          expanded := expanded || (s || jsonb_build_object(key, v));
        END LOOP;
      END LOOP;
      settings := expanded;
      IF cardinality(settings) > 10000 THEN
        RAISE EXCEPTION 'tune: the grid has more than 10000 settings' USING ERRCODE = 'program_limit_exceeded';
      END IF;
    END LOOP;
  ELSE
    RAISE EXCEPTION 'tune: grid must be a JSON array of option objects or an object of arrays, got %', jsonb_typeof(grid)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF cardinality(settings) > 10000 THEN
    RAISE EXCEPTION 'tune: the grid has more than 10000 settings' USING ERRCODE = 'program_limit_exceeded';
  END IF;
  -- One SELECT, nothing else; it runs once, under the caller's search_path.
  user_query := recsys_internal.checked_select(query, 'tune');
  tmp := format('recsys_tune_%s_%s', pg_backend_pid(), md5(clock_timestamp()::text || random()::text));
  PERFORM recsys_internal.materialize_query(user_query, tmp, 'tune', caller_search_path);
  EXECUTE format('ALTER TABLE pg_temp.%I ALTER COLUMN r TYPE double precision, ADD COLUMN valid boolean', tmp);
  EXECUTE format('UPDATE pg_temp.%I SET valid = @extschema@.split_hash($1, u, i) < $2', tmp)
    USING seed, validation_fraction;
  EXECUTE format('SELECT count(*) FILTER (WHERE NOT valid), count(*) FILTER (WHERE valid) FROM pg_temp.%I '
                 'WHERE u IS NOT NULL AND i IS NOT NULL AND r IS NOT NULL', tmp)
    INTO n_train, n_valid;
  IF n_train = 0 OR n_valid = 0 THEN
    RAISE EXCEPTION 'tune: the validation split leaves % training and % validation rows', n_train, n_valid
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a query with more rows, or another validation_fraction.';
  END IF;
  idx := 0;
  FOREACH s IN ARRAY settings LOOP
    idx := idx + 1;
    t0 := clock_timestamp();
    BEGIN
      IF rating_model THEN
        EXECUTE format('SELECT @extschema@.%I(u, i, r, $1) FROM pg_temp.%I WHERE NOT valid', train_fn, tmp)
          INTO m USING s;
      ELSE
        EXECUTE format('SELECT @extschema@.%I(u, i, %s::double precision, $1) FROM pg_temp.%I '
                       'WHERE NOT valid AND ($2::double precision IS NULL OR r >= $2)', train_fn, weight_expr, tmp)
          INTO m USING s, threshold;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
      IF state IN ('57014', '57P01', '53200') THEN RAISE; END IF;  -- cancel, shutdown, out of memory: as they are
      RAISE EXCEPTION 'tune: setting % (%) failed: %', idx, s, msg USING ERRCODE = state;
    END;
    secs := extract(epoch FROM clock_timestamp() - t0);
    sc := NULL; rm := NULL; km := NULL;
    IF m IS NOT NULL THEN
      IF rating_model THEN
        EXECUTE format('SELECT @extschema@.rating_metrics($1, u, i, r) FROM pg_temp.%I WHERE valid', tmp)
          INTO rm USING m;
      END IF;
      EXECUTE format('SELECT @extschema@.ranking_metrics($1, u, i, $2) FROM pg_temp.%I '
                     'WHERE valid AND ($3::double precision IS NULL OR r >= $3)', tmp)
        INTO km USING m, jsonb_build_object('k', k), threshold;
      sc := CASE WHEN lower_better THEN (rm->>mname)::double precision ELSE (km->>mname)::double precision END;
    END IF;
    IF sc IS NOT NULL AND sc <> 'NaN'::double precision AND (best_idx IS NULL OR (lower_better AND sc < best) OR (NOT lower_better AND sc > best)) THEN
      best_idx := idx; best := sc;
    END IF;
    rows_all := rows_all || jsonb_build_object('setting', s, 'grid_index', idx, 'score', sc,
                                               'ranking', km, 'rating', rm, 'train_seconds', secs);
  END LOOP;
  IF best_idx IS NULL THEN
    RAISE EXCEPTION 'tune: no setting could be scored on the validation rows' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'The validation rows need users the training rows have (and, with relevance_threshold, rows above it).';
  END IF;
  -- The final model: the best setting on every row of the query.
  IF rating_model THEN
    EXECUTE format('SELECT @extschema@.%I(u, i, r, $1) FROM pg_temp.%I', train_fn, tmp) INTO m USING settings[best_idx];
  ELSE
    EXECUTE format('SELECT @extschema@.%I(u, i, %s::double precision, $1) FROM pg_temp.%I '
                   'WHERE $2::double precision IS NULL OR r >= $2', train_fn, weight_expr, tmp)
      INTO m USING settings[best_idx], threshold;
  END IF;
  EXECUTE format('DROP TABLE pg_temp.%I', tmp);
  -- The table of settings, best first (ties keep the grid order).
  SELECT jsonb_agg(e || jsonb_build_object('rank', n) ORDER BY n) INTO rows_all
  FROM (SELECT e, row_number() OVER (ORDER BY (e->>'score')::double precision * CASE WHEN lower_better THEN 1 ELSE -1 END
                                       NULLS LAST, (e->>'grid_index')::integer) AS n
        FROM jsonb_array_elements(rows_all) e) x;
  RETURN QUERY SELECT m, settings[best_idx], best, metric, rows_all;
END
$tune$;
COMMENT ON FUNCTION recsys_internal.tune(text, text, jsonb, text, double precision, bigint, jsonb, text) IS
  'The body of recsys.tune (called with the caller''s search_path)';

CREATE FUNCTION @extschema@.tune(
    query text,                          -- a SELECT whose first three columns are user, item, rating (or weight)
    algorithm text,                      -- 'als' | 'item_knn' | 'ease' | 'popularity' | 'mf' | 'baseline'
    grid jsonb,                          -- '[{...}, {...}]' or '{"option": [values], ...}' (every combination)
    metric text DEFAULT 'ndcg@10',       -- ndcg@k | precision@k | recall@k | map@k | rmse | mae
    validation_fraction double precision DEFAULT 0.2,
    seed bigint DEFAULT 42,
    options jsonb DEFAULT '{}')          -- relevance_threshold (none), implicit_weight ("one" | "value")
RETURNS TABLE(model @extschema@.model, best_setting jsonb, best_score double precision, metric_name text,
              results jsonb)
LANGUAGE sql VOLATILE
-- No SET search_path here: the caller's search_path is read and handed on, so the
-- query runs with the names the caller sees; the body names nothing unqualified.
AS $tunew$
  SELECT * FROM recsys_internal.tune(query, algorithm, grid, metric, validation_fraction, seed, options,
                                     pg_catalog.current_setting('search_path'))
$tunew$;
COMMENT ON FUNCTION @extschema@.tune(text, text, jsonb, text, double precision, bigint, jsonb) IS
  'Grid search in one call: scores every setting of grid (an array of option objects, or an object of arrays) on a validation split carved from the query''s rows by split_hash(seed, user, item), then trains the final model with the best setting on all of them; returns the model, the setting, its score and every setting''s scores (results, best first)';

-- The shared model store (issue 16): one mapped file per model for the whole server.
CREATE FUNCTION @extschema@.cache_status()
  RETURNS TABLE(entry text, fingerprint text, bytes bigint, last_used timestamptz, mapped_here boolean, readers integer)
  AS 'MODULE_PATHNAME', 'recsys_cache_status' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.cache_status() IS
  'The files of the shared model store (pg_recsys_cache in the data directory), one row each: file name, model fingerprint, size, last use (the LRU clock), whether this backend maps it, and how many backends map it';
CREATE FUNCTION @extschema@.shared_cache_stats(OUT directory text, OUT enabled boolean, OUT entries bigint,
    OUT bytes bigint, OUT budget_bytes bigint, OUT hits bigint, OUT builds bigint, OUT evictions bigint,
    OUT mapped_here integer, OUT local_hits bigint, OUT fallbacks bigint)
  AS 'MODULE_PATHNAME', 'recsys_shared_cache_stats' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.shared_cache_stats() IS
  'The shared model store in one row: directory, whether this backend uses it, files and bytes against recsys.shared_cache_size, server-wide hits (a backend mapped a file another built), builds and evictions, and this backend''s mappings, calls answered from them (local_hits) and models it cached privately instead (fallbacks)';

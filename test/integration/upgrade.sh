#!/usr/bin/env bash
# The upgrade path 0.1.0 -> 0.2.0 (issue 11):
#  1. CREATE EXTENSION recsys VERSION '0.1.0', train a model of every kind;
#  2. a pg_dump taken under 0.1.0;
#  3. ALTER EXTENSION recsys UPDATE: the same models, same fingerprints, serve the same
#     lists under the 0.2.0 names (user_id / item_id);
#  4. the upgraded catalog equals a fresh CREATE EXTENSION recsys (0.2.0), object for
#     object (functions, aggregates, operators, operator classes, types, schemas, tables and
#     views with columns, constraints, triggers, policies, indexes, grants and comments);
#  5. the 0.1.0 dump restores into a database with 0.2.0: same fingerprints.
#
# Needs a running server with recsys installed: PGHOST, PGPORT, PGUSER (superuser) and
# PG_BINDIR, as exported by test/run_tests.sh.
set -euo pipefail

: "${PGHOST:?set PGHOST}" "${PGPORT:?set PGPORT}" "${PGUSER:?set PGUSER}"
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
export PGHOST PGPORT PGUSER
export PGOPTIONS="-c client_min_messages=warning"
unset PGDATABASE

WORK=$(mktemp -d)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT

die() { echo "upgrade: FAIL: $*" >&2; exit 1; }
ok() { echo "upgrade: ok: $*"; }
sql() { local db=$1; shift; "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
query() { sql "$1" -At -c "$2"; }

OLD=recsys_it_upgrade_old
FRESH=recsys_it_upgrade_fresh
RESTORED=recsys_it_upgrade_restored
for db in "$OLD" "$FRESH" "$RESTORED"; do sql postgres -c "DROP DATABASE IF EXISTS $db"; done
for db in "$OLD" "$FRESH" "$RESTORED"; do sql postgres -c "CREATE DATABASE $db"; done

# 1. Version 0.1.0 and one model of every kind.
sql "$OLD" <<'EOF_SQL'
CREATE EXTENSION recsys VERSION '0.1.0';
CREATE TABLE events AS
  SELECT u, (u * 7 + g * 13) % 60 AS i, 1 + (u + g) % 5 AS r FROM generate_series(1, 80) u, generate_series(1, 12) g;
CREATE TABLE products AS
  SELECT i, jsonb_build_object('category', 'c' || (i % 6), 'tags', jsonb_build_array('t' || (i % 4), 't' || (i % 9)),
                               'price', 5 + i % 17) AS f
  FROM generate_series(0, 59) i;
CREATE TABLE models (kind text PRIMARY KEY, m recsys.model);
INSERT INTO models
  SELECT 'als', recsys.train_als(u, i, '{"factors": 4, "iterations": 3}'::jsonb) FROM events UNION ALL
  SELECT 'mf', recsys.train_mf(u, i, r::float8, '{"factors": 4, "epochs": 3}') FROM events UNION ALL
  SELECT 'baseline', recsys.train_baseline(u, i, r::float8) FROM events UNION ALL
  SELECT 'popularity', recsys.train_popularity(u, i) FROM events UNION ALL
  SELECT 'item_knn', recsys.train_item_knn(u, i) FROM events UNION ALL
  SELECT 'content', recsys.train_content(i, f) FROM products UNION ALL
  SELECT 'kmeans', recsys.kmeans(ARRAY[u % 7, u % 11]::real[], 3) FROM events;
CREATE TABLE before AS
  SELECT kind, recsys.model_info(m)->>'fingerprint' AS fingerprint FROM models;
CREATE TABLE lists_before AS
  SELECT kind, (SELECT array_agg(item::text) FROM recsys.recommend(m, 5, 5)) AS recs
  FROM models WHERE kind IN ('als', 'mf', 'baseline', 'popularity', 'item_knn')
  UNION ALL
  SELECT 'content', (SELECT array_agg(item::text) FROM recsys.recommend_content(m, ARRAY[1, 2], 5)) FROM models WHERE kind = 'content'
  UNION ALL
  SELECT 'kmeans', ARRAY[recsys.cluster(m, ARRAY[1, 2]::real[])::text] FROM models WHERE kind = 'kmeans';
EOF_SQL
[ "$(query "$OLD" "SELECT extversion FROM pg_extension WHERE extname = 'recsys'")" = 0.1.0 ] || die "not at 0.1.0"
[ "$(query "$OLD" "SELECT count(*) FROM before WHERE fingerprint IS NOT NULL")" = 7 ] || die "models of 0.1.0"
ok "0.1.0 installed, 7 models trained"

# 2. A dump under 0.1.0.
"$PG_BINDIR/pg_dump" -Fc -d "$OLD" -f "$WORK/old.dump"
ok "pg_dump under 0.1.0"

# 3. The update.
sql "$OLD" -c "ALTER EXTENSION recsys UPDATE"
[ "$(query "$OLD" "SELECT extversion FROM pg_extension WHERE extname = 'recsys'")" = 0.2.0 ] || die "not at 0.2.0"
changed=$(query "$OLD" "SELECT count(*) FROM models JOIN before USING (kind) WHERE recsys.model_info(m)->>'fingerprint' <> before.fingerprint")
[ "$changed" = 0 ] || die "$changed fingerprints changed by the update"
differ=$(query "$OLD" "
  WITH after AS (
    SELECT kind, (SELECT array_agg(item_id::text) FROM recsys.recommend(m, 5, 5)) AS recs
    FROM models WHERE kind IN ('als', 'mf', 'baseline', 'popularity', 'item_knn')
    UNION ALL
    SELECT 'content', (SELECT array_agg(item_id::text) FROM recsys.recommend_content(m, ARRAY[1, 2], 5)) FROM models WHERE kind = 'content'
    UNION ALL
    SELECT 'kmeans', ARRAY[recsys.cluster(m, ARRAY[1, 2]::real[])::text] FROM models WHERE kind = 'kmeans')
  SELECT count(*) FROM after FULL JOIN lists_before b USING (kind) WHERE after.recs IS DISTINCT FROM b.recs")
[ "$differ" = 0 ] || die "$differ kinds serve other lists after the update"
# The 0.2.0 API on the old models: equality, new columns, a retrain gives an equal model.
[ "$(query "$OLD" "SELECT count(DISTINCT m) FROM models")" = 7 ] || die "count(DISTINCT model)"
[ "$(query "$OLD" "SELECT count(*) FROM models a, models b WHERE a.m OPERATOR(recsys.=) b.m")" = 7 ] || die "model ="
[ "$(query "$OLD" "SELECT count(*) FROM models, recsys.recommend_all(m, 2, NULL::int) WHERE kind = 'als' AND user_id = 3")" = 2 ] ||
  die "recommend_all under 0.2.0"
ok "ALTER EXTENSION UPDATE: same fingerprints, same lists, 0.2.0 names and equality work"

# 4. The upgraded catalog equals a fresh 0.2.0 one.
sql "$FRESH" -c "CREATE EXTENSION recsys"
describe() {
  query "$1" "
  WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'recsys'),
  members AS (SELECT classid, objid FROM pg_depend, ext WHERE refclassid = 'pg_extension'::regclass
                AND refobjid = ext.oid AND deptype = 'e')
  SELECT * FROM (
    SELECT 'function ' || p.oid::regprocedure::text || ' | ' ||
           concat_ws(' | ', p.prokind, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.provolatile,
                     p.proisstrict, p.proparallel, p.prosecdef, p.proconfig::text, p.prorows, p.procost, p.prosrc, p.probin,
                     coalesce(obj_description(p.oid, 'pg_proc'), '(no comment)'),
                     (SELECT concat_ws(',', a.aggtransfn::regprocedure, a.aggfinalfn::regprocedure, a.aggcombinefn::regprocedure,
                                       a.aggserialfn::regprocedure, a.aggdeserialfn::regprocedure, a.aggfinalmodify,
                                       a.aggtranstype::regtype) FROM pg_aggregate a WHERE a.aggfnoid = p.oid))
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'operator ' || o.oid::regoperator::text || ' | ' ||
           concat_ws(' | ', o.oprcode::regprocedure, o.oprcom::regoperator, o.oprnegate::regoperator, o.oprrest, o.oprjoin,
                     o.oprcanhash, o.oprcanmerge, coalesce(obj_description(o.oid, 'pg_operator'), '(no comment)'))
    FROM members m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid
    UNION ALL
    SELECT 'opclass ' || c.opcnamespace::regnamespace || '.' || c.opcname || ' | ' ||
           concat_ws(' | ', (SELECT amname FROM pg_am WHERE oid = c.opcmethod), c.opcintype::regtype, c.opcdefault,
                     (SELECT string_agg(ao.amopstrategy || '=' || ao.amopopr::regoperator, ',' ORDER BY ao.amopstrategy)
                      FROM pg_amop ao WHERE ao.amopfamily = c.opcfamily),
                     (SELECT string_agg(ap.amprocnum || '=' || ap.amproc::regprocedure, ',' ORDER BY ap.amprocnum)
                      FROM pg_amproc ap WHERE ap.amprocfamily = c.opcfamily))
    FROM members m JOIN pg_opclass c ON m.classid = 'pg_opclass'::regclass AND m.objid = c.oid
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text || ' | ' ||
           concat_ws(' | ', t.typinput::regprocedure, t.typoutput::regprocedure, t.typreceive::regprocedure,
                     t.typsend::regprocedure, t.typstorage, t.typalign, coalesce(obj_description(t.oid, 'pg_type'), '(no comment)'))
    FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT 'schema ' || n.nspname || ' | ' || coalesce(n.nspacl::text, '') || ' | ' ||
           coalesce(obj_description(n.oid, 'pg_namespace'), '(no comment)')
    FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND m.objid = n.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text || ' | ' ||
           concat_ws(' | ', c.relkind, c.relrowsecurity, c.reloptions::text, c.relacl::text,
                     coalesce(obj_description(c.oid, 'pg_class'), '(no comment)'),
                     (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
                                        CASE WHEN a.attnotnull THEN ' not null' ELSE '' END ||
                                        coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '') ||
                                        coalesce(' collate ' || (SELECT collname FROM pg_collation WHERE oid = a.attcollation), ''),
                                        ', ' ORDER BY a.attnum)
                      FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                     (SELECT string_agg(co.conname || ' ' || pg_get_constraintdef(co.oid), ', ' ORDER BY co.conname)
                      FROM pg_constraint co WHERE co.conrelid = c.oid),
                     (SELECT string_agg(pg_get_triggerdef(t.oid), ', ' ORDER BY t.tgname)
                      FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
                     (SELECT string_agg(concat_ws(' ', p.polname, p.polcmd, p.polpermissive, p.polroles::text,
                                                  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)),
                                        ', ' ORDER BY p.polname)
                      FROM pg_policy p WHERE p.polrelid = c.oid),
                     (SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY pg_get_indexdef(i.indexrelid))
                      FROM pg_index i WHERE i.indrelid = c.oid),
                     CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END,
                     (SELECT 'config dump ' || (c.oid = ANY (e.extconfig))::text FROM pg_extension e WHERE e.extname = 'recsys'))
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
  ) d(line) ORDER BY 1"
}
describe "$OLD" >"$WORK/upgraded.txt"
describe "$FRESH" >"$WORK/fresh.txt"
[ "$(wc -l <"$WORK/fresh.txt")" -gt 100 ] || die "catalog description too short: $(wc -l <"$WORK/fresh.txt") lines"
if ! diff -u "$WORK/fresh.txt" "$WORK/upgraded.txt" >"$WORK/catalog.diff"; then
  head -n 60 "$WORK/catalog.diff"
  die "the upgraded catalog differs from a fresh 0.2.0 install"
fi
ok "upgraded catalog equals a fresh 0.2.0 install ($(wc -l <"$WORK/fresh.txt") objects)"

# 5. The 0.1.0 dump restores under 0.2.0.
"$PG_BINDIR/pg_restore" -d "$RESTORED" "$WORK/old.dump"
[ "$(query "$RESTORED" "SELECT extversion FROM pg_extension WHERE extname = 'recsys'")" = 0.2.0 ] ||
  die "restore did not create 0.2.0"
lost=$(query "$RESTORED" "SELECT count(*) FROM before b LEFT JOIN models m USING (kind)
                           WHERE m.m IS NULL OR recsys.model_info(m.m)->>'fingerprint' <> b.fingerprint")
[ "$lost" = 0 ] || die "$lost models lost or changed by restoring a 0.1.0 dump under 0.2.0"
ok "a 0.1.0 dump restores under 0.2.0 with the same fingerprints"

for db in "$OLD" "$FRESH" "$RESTORED"; do sql postgres -c "DROP DATABASE $db"; done
echo "upgrade: all checks passed"

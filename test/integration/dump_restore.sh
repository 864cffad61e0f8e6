#!/usr/bin/env bash
# Models survive pg_dump / restore (plain and custom format, i.e. the text I/O) and
# binary COPY (send / recv) unchanged: same fingerprints, same recommendations. A
# corrupted binary COPY must fail with an error, never crash the backend.
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
trap 'rm -rf "$WORK"' EXIT

die() { echo "dump_restore: FAIL: $*" >&2; exit 1; }
ok() { echo "dump_restore: ok: $*"; }
sql() { local db=$1; shift; "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
query() { sql "$1" -At -c "$2"; }

SRC=recsys_it_dump_src
PLAIN=recsys_it_dump_plain
CUSTOM=recsys_it_dump_custom
for db in "$SRC" "$PLAIN" "$CUSTOM"; do
  sql postgres -c "DROP DATABASE IF EXISTS $db"
done
sql postgres -c "CREATE DATABASE $SRC"

# Three models: text users with int items, int users with int items (both small,
# stored inline), and one large enough to be TOASTed out of line.
sql "$SRC" <<'EOF'
SET recsys.threads = 2;
CREATE EXTENSION recsys;
SELECT setseed(0.42) \g /dev/null
CREATE TABLE events AS
  SELECT (random() * 199)::int AS u, (random() * random() * 99)::int AS i FROM generate_series(1, 5000);
CREATE TABLE models (name text PRIMARY KEY, m recsys.model);
INSERT INTO models
  SELECT 'text_users', recsys.train_als('user-' || u, i, '{"factors": 8, "iterations": 4, "seed": 1}'::jsonb) FROM events
  UNION ALL
  SELECT 'int_ids', recsys.train_als(u, i, '{"factors": 8, "iterations": 4, "seed": 2}'::jsonb) FROM events
  UNION ALL
  SELECT 'large', recsys.train_als(u * 1000 + i % 37, i, '{"factors": 64, "iterations": 2, "seed": 3}'::jsonb) FROM events;
EOF
large_bytes=$(query "$SRC" "SELECT (recsys.model_info(m)->>'bytes')::int FROM models WHERE name = 'large'")
[ "$large_bytes" -gt 100000 ] || die "the large model has only $large_bytes bytes"
toast=$(query "$SRC" "SELECT reltoastrelid::regclass FROM pg_class WHERE oid = 'models'::regclass")
chunks=$(query "$SRC" "SELECT count(*) FROM $toast")
[ "$chunks" -gt 0 ] || die "the large model is not stored out of line ($toast is empty)"

# Everything that must survive: fingerprints, recommendations (rounded only to hide the
# text formatting of reals), the serving functions' view of the model.
SIGNATURE_SQL="
SELECT name, recsys.model_info(m)->>'fingerprint', recsys.model_info(m)->>'bytes',
       (SELECT string_agg(item_id || ':' || score, ',')
          FROM recsys.recommend(m, (SELECT min(user_id) FROM recsys.user_factors(m)), 10, NULL::text)),
       (SELECT string_agg(item_id || ':' || score, ',') FROM recsys.recommend(m, 'user-7'::text, 5, NULL::int)),
       (SELECT string_agg(item_id || ':' || score, ',') FROM recsys.recommend(m, 7, 5, NULL::int)),
       (SELECT count(*) FROM recsys.item_factors(m)),
       md5(m::text)
FROM models ORDER BY name"
query "$SRC" "$SIGNATURE_SQL" >"$WORK/src.sig"
[ "$(wc -l <"$WORK/src.sig")" -eq 3 ] || die "expected 3 models in the source database"
grep -q '^text_users|[0-9a-f]\{16\}|' "$WORK/src.sig" || die "no fingerprint in: $(cat "$WORK/src.sig")"

compare_sig() { # db label
  query "$1" "$SIGNATURE_SQL" >"$WORK/$1.sig"
  if ! diff -u "$WORK/src.sig" "$WORK/$1.sig"; then
    die "$2: models differ after the round trip (diff above)"
  fi
  ok "$2: fingerprints and recommendations match"
}

# pg_dump, plain format, restored with psql.
"$PG_BINDIR/pg_dump" -d "$SRC" -Fp -f "$WORK/dump.sql"
grep -q "recsys:" "$WORK/dump.sql" || die "plain dump holds no model text ('recsys:...')"
sql postgres -c "CREATE DATABASE $PLAIN"
sql "$PLAIN" -f "$WORK/dump.sql" >/dev/null
compare_sig "$PLAIN" "pg_dump plain + psql"

# pg_dump, custom format, restored with pg_restore.
"$PG_BINDIR/pg_dump" -d "$SRC" -Fc -f "$WORK/dump.custom"
sql postgres -c "CREATE DATABASE $CUSTOM"
"$PG_BINDIR/pg_restore" --exit-on-error -d "$CUSTOM" "$WORK/dump.custom"
compare_sig "$CUSTOM" "pg_dump custom + pg_restore"

# Binary COPY round trip.
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$SRC" -c "COPY models TO STDOUT (FORMAT binary)" >"$WORK/models.bin"
[ -s "$WORK/models.bin" ] || die "binary COPY produced no data"
sql "$SRC" -c "CREATE TABLE models_copy (LIKE models)"
sql "$SRC" -c "COPY models_copy FROM STDIN (FORMAT binary)" <"$WORK/models.bin"
same=$(query "$SRC" "
  SELECT count(*) = 3 AND bool_and(recsys.model_info(a.m)->>'fingerprint' = recsys.model_info(b.m)->>'fingerprint'
                                   AND a.m::text = b.m::text)
  FROM models a JOIN models_copy b USING (name)")
[ "$same" = t ] || die "binary COPY round trip changed a model"
ok "binary COPY round trip: identical models"
recs=$(query "$SRC" "
  SELECT (SELECT string_agg(item_id || ':' || score, ',') FROM models, recsys.recommend(m, 7, 10) WHERE name = 'int_ids') =
         (SELECT string_agg(item_id || ':' || score, ',') FROM models_copy, recsys.recommend(m, 7, 10) WHERE name = 'int_ids')")
[ "$recs" = t ] || die "recommendations differ after binary COPY"
ok "binary COPY round trip: same recommendations"

# Corrupted binary COPY. A single-column COPY of one model: 19-byte file header, then
# per row a 2-byte field count and a 4-byte field length, then the model bytes.
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$SRC" \
  -c "COPY (SELECT m FROM models WHERE name = 'int_ids') TO STDOUT (FORMAT binary)" >"$WORK/one.bin"
total=$(stat -c %s "$WORK/one.bin")
payload_len=$(od -An -tu1 -j 21 -N4 "$WORK/one.bin" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
[ "$payload_len" -gt 1000 ] && [ "$total" -eq $((19 + 2 + 4 + payload_len + 2)) ] ||
  die "unexpected binary COPY layout: $total bytes, field length $payload_len"
sql "$SRC" -c "CREATE TABLE models_bad (m recsys.model)"

flip_byte() { # file offset: xor the byte at offset with 0x55
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((b ^ 0x55)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# A session that must survive: a backend crash would terminate it too.
"$PG_BINDIR/psql" -X -q -d "$SRC" -c "SELECT pg_sleep(8)" >/dev/null 2>&1 &
watcher=$!
sleep 0.5

expect_copy_error() { # file label
  local out
  if out=$("$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$SRC" \
    -c "COPY models_bad FROM STDIN (FORMAT binary)" <"$1" 2>&1); then
    die "$2: corrupted binary COPY was accepted"
  fi
  grep -q "ERROR:  invalid recsys model" <<<"$out" || die "$2: unexpected error: $out"
  ok "$2: rejected ($(grep -o 'invalid recsys model[^"]*' <<<"$out" | head -n 1))"
}
for where in middle magic section_table end; do
  cp "$WORK/one.bin" "$WORK/bad.bin"
  case $where in
    middle) offset=$((25 + payload_len / 2)) ;;
    magic) offset=25 ;;          # first byte after the varlena word: the magic number
    section_table) offset=$((25 + 108 + 8)) ;; # offset field of the first section entry
    end) offset=$((25 + payload_len - 120)) ;; # item popularity (the history, last, is not checksummed)
  esac
  flip_byte "$WORK/bad.bin" "$offset"
  cmp -s "$WORK/one.bin" "$WORK/bad.bin" && die "flipping byte $offset changed nothing"
  expect_copy_error "$WORK/bad.bin" "byte flipped at the $where ($offset)"
done
# a payload cut short (field length adjusted, so COPY itself is well formed)
head -c $((25 + 200)) "$WORK/one.bin" >"$WORK/short.bin"
printf '\377\377' >>"$WORK/short.bin"
printf '\000\000\000\310' | dd of="$WORK/short.bin" bs=1 seek=21 conv=notrunc status=none
expect_copy_error "$WORK/short.bin" "truncated model"

count=$(query "$SRC" "SELECT count(*) FROM models_bad")
[ "$count" = 0 ] || die "corrupted rows were stored ($count)"
wait "$watcher" || die "a concurrent session died: the backend crashed"
ok "no backend crashed"

for db in "$SRC" "$PLAIN" "$CUSTOM"; do
  sql postgres -c "DROP DATABASE $db"
done
echo "dump_restore: all checks passed"

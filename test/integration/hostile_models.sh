#!/usr/bin/env bash
# Models whose checksums are right but whose content is hostile or foreign (issue 10,
# defects 7 and 8):
#  - a model trained in a SQL_ASCII database, holding text IDs that are not UTF-8,
#    restored into a UTF8 database: every call that would return such an ID fails with
#    a clear error (never returns invalid text); model_info still works;
#  - the same with the bytes rewritten and the model resealed (test/tools/model_surgery);
#  - a parameters section crafted to inject keys into model_info ("algorithm": "fake"):
#    model_info parses the section on its own and refuses it;
#  - a model of a future format version: refused with a clear error.
#
# Needs a running server with recsys installed: PGHOST, PGPORT, PGUSER (superuser) and
# PG_BINDIR, as exported by test/run_tests.sh; a C++ compiler for the surgery tool.
set -euo pipefail

: "${PGHOST:?set PGHOST}" "${PGPORT:?set PGPORT}" "${PGUSER:?set PGUSER}"
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PGHOST PGPORT PGUSER
export PGOPTIONS="-c client_min_messages=warning"
unset PGDATABASE

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

die() { echo "hostile_models: FAIL: $*" >&2; exit 1; }
ok() { echo "hostile_models: ok: $*"; }
sql() { local db=$1; shift; "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
query() { sql "$1" -At -c "$2"; }
# Runs SQL that must fail; prints its error message.
must_fail() {
  local db=$1 q=$2 out
  if out=$("$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db" -At -c "$q" 2>&1); then
    die "expected an error from: $q  (got: $out)"
  fi
  echo "$out"
}

# Stores a model's text form under a name in the UTF8 database.
insert_model() { echo "INSERT INTO models VALUES ('$1', :'m')" | sql "$UTF" -v m="$(cat "$2")"; }

${CXX:-g++} -std=c++17 -O1 -Wall -Wextra -I"$ROOT/src/core" -isystem /usr/include/eigen3 -o "$WORK/model_surgery" \
  "$ROOT/test/tools/model_surgery.cpp" "$ROOT/src/core/model_format.cpp" "$ROOT/src/core/keys.cpp"

ASCII=recsys_it_ascii
UTF=recsys_it_utf8
for db in "$ASCII" "$UTF"; do sql postgres -c "DROP DATABASE IF EXISTS $db"; done
sql postgres -c "CREATE DATABASE $ASCII ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
sql postgres -c "CREATE DATABASE $UTF ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
sql "$ASCII" -c "CREATE EXTENSION recsys"
sql "$UTF" -c "CREATE EXTENSION recsys; CREATE TABLE models (name text PRIMARY KEY, m recsys.model)"

# 1. Trained in SQL_ASCII with the byte 0xff in item and user IDs (Latin-1 data stored
#    as is), carried over in the text form pg_dump uses.
query "$ASCII" "SELECT recsys.train_als(u, i, '{\"factors\": 2, \"iterations\": 2}'::jsonb)
                FROM (VALUES (E'u\\xff', 'a'), (E'u\\xff', E'b\\xff'), ('v', 'a'), ('v', 'c')) AS t(u, i)" >"$WORK/ascii.txt"
insert_model ascii "$WORK/ascii.txt"
ok "a SQL_ASCII model with non-UTF-8 IDs loads into a UTF8 database (restore loses nothing)"
[ "$(query "$UTF" "SELECT recsys.model_info(m)->>'items' FROM models WHERE name = 'ascii'")" = 3 ] ||
  die "model_info of the SQL_ASCII model"
for q in "SELECT count(*) FROM models, recsys.recommend_all(m, 3) WHERE name = 'ascii'" \
  "SELECT count(*) FROM models, recsys.recommend(m, 'v'::text, 3) WHERE name = 'ascii'" \
  "SELECT count(*) FROM models, recsys.similar_items(m, 'a'::text, 3) WHERE name = 'ascii'" \
  "SELECT count(*) FROM models, recsys.item_factors(m) WHERE name = 'ascii'" \
  "SELECT count(*) FROM models, recsys.user_factors(m) WHERE name = 'ascii'"; do
  err=$(must_fail "$UTF" "$q")
  echo "$err" | grep -q 'not valid UTF8' || die "unclear error for invalid text: $err"
done
ok "calls that would return non-UTF-8 IDs fail with: $(echo "$err" | grep -m1 -o 'a text ID.*UTF8')"
# Calls that return no ID still work.
[ "$(query "$UTF" "SELECT recsys.score(m, 'v'::text, 'a'::text) IS NOT NULL FROM models WHERE name = 'ascii'")" = t ] ||
  die "score on the SQL_ASCII model should still work"
ok "score on the SQL_ASCII model still works"

# 2. The same through surgery on a model trained in UTF8: 'zz' -> 0xff 0xfe.
query "$UTF" "SELECT recsys.train_als(u, i, '{\"factors\": 2, \"iterations\": 2, \"regularization\": 0.01}'::jsonb)
              FROM (VALUES ('u1', 'ab'), ('u1', 'ac'), ('u2', 'zz'), ('u2', 'ab')) AS t(u, i)" >"$WORK/utf.txt"
"$WORK/model_surgery" replace 'zz' '\xff\xfe' <"$WORK/utf.txt" >"$WORK/bad_utf.txt"
insert_model resealed "$WORK/bad_utf.txt"
err=$(must_fail "$UTF" "SELECT * FROM models, recsys.recommend_all(m, 5) WHERE name = 'resealed'")
echo "$err" | grep -q 'not valid UTF8' || die "resealed model: $err"
ok "a resealed model with invalid UTF-8 IDs fails clearly"

# 3. model_info cannot be fooled by a crafted parameters section. The section starts
#    {"factors": 2, "iterations": 2, "regularization": 0.01, ... ; the crafted one closes
#    the object early and adds keys that, spliced into model_info's JSON, would override
#    "algorithm".
old='"factors": 2, "iterations": 2, "regularization": 0.01,'
new='"f": 2}, "algorithm": "fake", "x": {"r": 0.01,'
while [ ${#new} -lt ${#old} ]; do new="$new "; done
"$WORK/model_surgery" replace "$old" "$new" <"$WORK/utf.txt" >"$WORK/inject.txt"
insert_model inject "$WORK/inject.txt"
err=$(must_fail "$UTF" "SELECT recsys.model_info(m)->>'algorithm' FROM models WHERE name = 'inject'")
echo "$err" | grep -qi 'json' || die "crafted parameters: unexpected error: $err"
ok "model_info refuses a crafted parameters section: $(echo "$err" | head -n 1)"
# The honest model still reports itself.
[ "$(query "$UTF" "SELECT recsys.model_info(m)->>'algorithm' FROM models WHERE name = 'resealed'")" = implicit_als ] ||
  die "model_info of a valid model"
ok "model_info of a valid model"

# 4. A model of a future format version is refused with words that say what to do,
#    through every input path (text input; binary COPY goes through the same validator).
"$WORK/model_surgery" version 999 <"$WORK/utf.txt" >"$WORK/future.txt"
err=$(echo "SELECT recsys.model_info(:'m'::recsys.model)" | "$PG_BINDIR/psql" -X -q -d "$UTF" -v m="$(cat "$WORK/future.txt")" 2>&1 || true)
echo "$err" | grep -q 'written by a newer recsys' || die "future format version: $err"
ok "a model of format version 999 is refused: newer recsys needed"

for db in "$ASCII" "$UTF"; do sql postgres -c "DROP DATABASE $db"; done
echo "hostile_models: all checks passed"

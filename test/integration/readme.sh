#!/usr/bin/env bash
# The README runs as pasted: every ```sql block of README.md, then of the doc/*.md pages
# (DOC_FILES below), runs in order in ONE psql session (as a
# reader pasting them would) in a fresh database, from the repository root, with
# ON_ERROR_STOP. The sample data is loaded by the README's own blocks (its \copy of
# test/data/*.csv), so the README's set-up is what is tested. On an error the test prints
# the file, the block's first line and the statement's line, and psql's error.
#
# A block that is only a fragment may be skipped by an HTML comment on the line before its
# fence (blank lines between are allowed), always with a reason:
#   <!-- readme-test: skip (why this block cannot run as pasted) -->
# Blocks of other languages (```sh, ```bash, output) are not run; the test checks instead
#   - that the README's set-up block has exactly the two commands `bash test/demo.sh` and
#     `bash test/run_tests.sh` and that both scripts exist;
#   - that the sample-data loading the README's SQL describes (its CREATE TABLE and \copy
#     lines for test/data) is, line for line, what test/demo.sql runs;
#   - that the README's way to keep a cluster works: `bash test/pg_cluster.sh start` leaves
#     one running, the psql command it prints connects, and the stop command it prints
#     stops it and removes its directory (the README names both, and `demo.sh --keep`).
# Every block must end its last statement (`;` or a psql backslash command), so that
# blocks never run into each other. A query that returns no rows fails the test too: an
# example that shows nothing (a wrong ID, an ID of the wrong type, an empty table) is a
# broken example, even when PostgreSQL raises no error.
#
# Run by test/run_tests.sh with PGHOST/PGPORT/PGUSER/PG_BINDIR exported; also by hand
# against any cluster where the extension is installed: bash test/integration/readme.sh
# (READMETEST_KEEP_DB=1 keeps the database for a look afterwards).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PSQL="${PG_BINDIR:+$PG_BINDIR/}psql"
# README.md first, then every doc/*.md page in name order (their SQL continues the tour).
DOC_FILES=(README.md)
for f in doc/*.md; do [[ -f "$f" ]] && DOC_FILES+=("$f"); done
START=$(date +%s)

TMP=$(mktemp -d /tmp/recsys_readme.XXXXXX)
DB="readme_test_$$"
ROLES_BEFORE=""
created_roles=()
kept_cluster=""
cleanup() {
  set +e
  [[ -z "$kept_cluster" ]] || bash "$ROOT/test/pg_cluster.sh" stop "$kept_cluster" >/dev/null 2>&1
  if [[ "${READMETEST_KEEP_DB:-0}" != 1 ]]; then
    "$PSQL" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    # roles the blocks created (cluster-wide objects), never a role that existed before
    local r
    for r in "${created_roles[@]+"${created_roles[@]}"}"; do
      grep -qx "$r" <<<"$ROLES_BEFORE" || "$PSQL" -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
    done
  else
    echo "database $DB kept"
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

errors=0
problem() {
  echo "readme test: $*" >&2
  errors=$((errors + 1))
}

# ---------------------------------------------------------------------------------
# 1. Extract the blocks. combined.sql gets every SQL block; map.txt maps each of its lines
#    to "file:line:block-start".
combined=$TMP/combined.sql
map=$TMP/map.txt
: >"$combined"
: >"$map"
n_blocks=0
n_skipped=0
n_lines=0
setup_blocks=()  # the ```sh / ```bash blocks' text, for the set-up check

for file in "${DOC_FILES[@]}"; do
  lineno=0
  in_block=""   # "", sql, skip, other
  block_start=0
  last_text=""  # the last non-blank line outside blocks
  block_text=""
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    if [[ -z "$in_block" ]]; then
      if [[ "$line" =~ ^[[:space:]]*\`\`\`[[:space:]]*([A-Za-z0-9_+-]*) ]]; then
        lang=${BASH_REMATCH[1]}
        block_start=$lineno
        block_text=""
        if [[ "$lang" == sql ]]; then
          if [[ "$line" =~ ^[[:space:]]+ ]]; then
            problem "$file:$lineno: an indented \`\`\`sql block (the test reads only blocks at the start of a line)"
          fi
          if [[ "$last_text" =~ \<\!--[[:space:]]*readme-test:[[:space:]]*skip ]]; then
            if [[ "$last_text" =~ readme-test:[[:space:]]*skip[[:space:]]*\(([^\)]+)\) ]]; then
              echo "skipped: $file:$lineno (${BASH_REMATCH[1]})"
              n_skipped=$((n_skipped + 1))
              in_block=skip
            else
              problem "$file:$((lineno - 1)): a skip marker needs a reason: <!-- readme-test: skip (reason) -->"
              in_block=skip
            fi
          else
            in_block=sql
            n_blocks=$((n_blocks + 1))
            # a marker in the output, to tell which block printed what
            printf '\\echo @@readme-block %s:%s\n' "$file" "$lineno" >>"$combined"
            n_lines=$((n_lines + 1))
            echo "$n_lines $file:$lineno:$lineno" >>"$map"
          fi
        else
          in_block=other
          block_lang=$lang
        fi
      elif [[ "$line" =~ [^[:space:]] ]]; then
        last_text=$line
      fi
      continue
    fi
    # inside a block
    if [[ "$line" =~ ^[[:space:]]*\`\`\`[[:space:]]*$ ]]; then
      if [[ "$in_block" == sql ]]; then
        # the block's last statement must be complete
        last=$(printf '%s' "$block_text" | sed -e 's/[[:space:]]*--.*$//' -e '/^[[:space:]]*$/d' | tail -n 1)
        if [[ -z "$last" ]]; then
          problem "$file:$block_start: an empty sql block"
        elif [[ ! "$last" =~ \;[[:space:]]*$ && ! "$last" =~ ^[[:space:]]*\\ ]]; then
          problem "$file:$block_start: the block's last statement does not end with ';': $last"
        fi
      elif [[ "$in_block" == other && ( "$block_lang" == sh || "$block_lang" == bash ) ]]; then
        setup_blocks+=("$file:$block_start"$'\n'"$block_text")
      fi
      in_block=""
      last_text=""
      continue
    fi
    block_text+="$line"$'\n'
    if [[ "$in_block" == sql ]]; then
      printf '%s\n' "$line" >>"$combined"
      n_lines=$((n_lines + 1))
      echo "$n_lines $file:$lineno:$block_start" >>"$map"
    fi
  done <"$file"
  [[ -z "$in_block" ]] || problem "$file:$block_start: a block is never closed"
done
echo "sql blocks: $n_blocks to run, $n_skipped skipped, in ${DOC_FILES[*]}"
((n_blocks > 0)) || problem "no sql block found"

# ---------------------------------------------------------------------------------
# 2. The set-up commands: one sh/bash block whose commands are exactly these two.
want=$'bash test/demo.sh\nbash test/run_tests.sh'
found_setup=""
for b in "${setup_blocks[@]+"${setup_blocks[@]}"}"; do
  where=${b%%$'\n'*}
  cmds=$(printf '%s\n' "${b#*$'\n'}" | sed -e 's/[[:space:]]*#.*$//' -e 's/[[:space:]]*$//' -e '/^$/d')
  if [[ "$where" == README.md:* && "$cmds" == "$want" ]]; then found_setup=$where; fi
done
if [[ -n "$found_setup" ]]; then
  echo "set-up commands: README block at $found_setup"
else
  problem "README.md has no sh block made of exactly the two set-up commands: bash test/demo.sh, bash test/run_tests.sh"
fi
for s in test/demo.sh test/run_tests.sh; do [[ -f "$s" ]] || problem "$s does not exist"; done

# The sample-data loading: the README's CREATE TABLE lines for the tables it \copy-s
# from test/data, and the \copy lines, are exactly those of test/demo.sql.
copy_lines=$(grep -E '^\\copy [a-z_]+ FROM .test/data/' "$combined" || true)
if [[ -z "$copy_lines" ]]; then
  problem "the README's SQL loads no sample data (no \\copy ... FROM 'test/data/...')"
fi
while IFS= read -r l; do
  [[ -n "$l" ]] || continue
  grep -qxF -- "$l" test/demo.sql || problem "README loads the sample with a line test/demo.sql does not run: $l"
  table=$(sed -E 's/^\\copy ([a-z_]+) .*/\1/' <<<"$l")
  create=$(grep -E "^CREATE TABLE $table \(" "$combined" | head -n 1 || true)
  if [[ -z "$create" ]]; then
    problem "README \\copy-s into $table but creates it in no block with CREATE TABLE $table (...)"
  elif ! grep -qxF -- "$create" test/demo.sql; then
    problem "README creates $table unlike test/demo.sql: $create"
  fi
done <<<"$copy_lines"
while IFS= read -r l; do
  [[ -n "$l" ]] || continue
  grep -qxF -- "$l" <<<"$copy_lines" || problem "test/demo.sql loads sample data the README does not: $l"
done < <(grep -E '^\\copy ' test/demo.sql)

# The bare word `user` in SQL is SQL's USER, the current role: `SELECT user FROM t` returns
# the role's name in every row, silently. No example may use it (nor a quoted "user"
# column, which 0.2.0 no longer returns). Comments and string literals are ignored.
while IFS= read -r hit; do
  n=${hit%%:*}
  src=$(awk -v n="$n" '$1 == n { print $2 }' "$map")
  problem "${src%:*}: the word user in SQL (the current role, not a column): ${hit#*:}"
done < <(sed -e "s/'[^']*'//g" -e 's/--.*$//' "$combined" | grep -niwE '"?user"?' || true)

# ---------------------------------------------------------------------------------
# 3. Run the blocks in one session in a fresh database.
ROLES_BEFORE=$("$PSQL" -X -qAt -d postgres -c 'SELECT rolname FROM pg_roles')
while IFS= read -r r; do [[ -n "$r" ]] && created_roles+=("$r"); done < <(
  grep -oiE 'CREATE (ROLE|USER) [a-z_][a-z0-9_]*' "$combined" | awk '{print tolower($3)}' | sort -u)
for r in "${created_roles[@]+"${created_roles[@]}"}"; do
  grep -qx "$r" <<<"$ROLES_BEFORE" && problem "role $r, which the README creates, already exists in this cluster"
done
if ((errors > 0)); then
  echo "readme test: $errors problem(s) before running the blocks" >&2
  exit 1
fi

"$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB TEMPLATE template0" >/dev/null
set +e
PGOPTIONS="-c statement_timeout=120s" "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$combined" \
  >"$TMP/out.txt" 2>"$TMP/err.txt"
status=$?
set -e
# psql names the combined file and its line: turn that into the README's file and line.
translate() {
  local l n src
  while IFS= read -r l; do
    if [[ "$l" =~ ^psql:[^:]*combined\.sql:([0-9]+):(.*)$ ]]; then
      n=${BASH_REMATCH[1]}
      src=$(awk -v n="$n" '$1 == n { print $2 }' "$map")
      IFS=: read -r f ln bs <<<"$src"
      echo "$f:$ln (block starting at line $bs):${BASH_REMATCH[2]}"
    else
      echo "$l"
    fi
  done
}
if [[ -s "$TMP/err.txt" ]]; then
  echo "--- psql messages (notices included):"
  translate <"$TMP/err.txt"
fi
if grep -q 'WARNING:' "$TMP/err.txt"; then
  problem "a block raised a WARNING (above)"
fi
if ((status != 0)); then
  problem "a block failed (psql exit status $status); the error is above"
fi
# psql prints "(0 rows)" under an empty result
while IFS= read -r where; do
  problem "$where (block starting there): a query returned no rows"
done < <(awk '/^@@readme-block / { b = $2 } /^\(0 rows\)$/ { print b }' "$TMP/out.txt")
# ---------------------------------------------------------------------------------
# 4. A cluster to keep, as the README says (its commands must be in the README).
for c in 'bash test/demo.sh --keep' 'bash test/pg_cluster.sh start' 'bash test/pg_cluster.sh stop'; do
  grep -qF -- "$c" README.md || problem "README.md does not name \`$c\`"
done
grep -qE '^ *--keep\)' test/demo.sh || problem "test/demo.sh has no --keep option"
if start_out=$(bash test/pg_cluster.sh start 2>&1); then
  kept_cluster=$(sed -nE 's#^ *bash test/pg_cluster\.sh stop (/tmp/recsys_pg\.[A-Za-z0-9]+)$#\1#p' <<<"$start_out")
  connect=$(grep -E '^ *psql -h /tmp/recsys_pg\.[A-Za-z0-9]+ -p [0-9]+ -U postgres$' <<<"$start_out" | head -n 1 || true)
  if [[ -z "$kept_cluster" || -z "$connect" ]]; then
    problem "pg_cluster.sh start printed no psql or stop command: $start_out"
  else
    read -r -a words <<<"$connect"
    if [[ "$("${PSQL}" "${words[@]:1}" -X -d postgres -Atc 'SELECT 1' 2>&1)" != 1 ]]; then
      problem "the printed command does not connect: $connect"
    fi
    bash test/pg_cluster.sh stop "$kept_cluster" >/dev/null || problem "pg_cluster.sh stop failed"
    [[ ! -e "$kept_cluster" ]] || problem "pg_cluster.sh stop left $kept_cluster"
    kept_cluster=""
    echo "kept cluster: pg_cluster.sh start / psql / stop work as the README says"
  fi
else
  problem "bash test/pg_cluster.sh start failed: $start_out"
fi

elapsed=$(($(date +%s) - START))
if ((errors > 0)); then
  echo "readme test: FAILED ($errors problem(s), ${elapsed} s)" >&2
  exit 1
fi
echo "readme test: $n_blocks sql blocks ($n_lines lines) ran without error in ${elapsed} s"

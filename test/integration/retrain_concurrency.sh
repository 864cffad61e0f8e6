#!/usr/bin/env bash
# Retrains against serving by name (issue 14):
#  1. one retrain holds its recommender (a transaction kept open after CALL retrain):
#     a second CALL retrain returns at once with a notice, and serving by name does not
#     wait for the open retrain;
#  2. pgbench, 4 clients serving by name for RECSYS_CONCURRENCY_SECONDS (default 25 s),
#     while two sessions run CALL retrain back to back on changing data: 0 failed
#     calls, every retrain either swapped a model in or stepped aside with the notice
#     (the catalog counts exactly the swaps the sessions report), no failure recorded;
#  3. pg_dump / pg_restore keeps the recommender, both its models and its view.
#
# Needs a running server with recsys installed: PGHOST, PGPORT, PGUSER (superuser) and
# PG_BINDIR, as exported by test/run_tests.sh.
set -euo pipefail

: "${PGHOST:?set PGHOST}" "${PGPORT:?set PGPORT}" "${PGUSER:?set PGUSER}"
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
export PGHOST PGPORT PGUSER
export PGOPTIONS="-c client_min_messages=warning"
unset PGDATABASE
DB=recsys_it_retrain_concurrency
SECONDS_LOAD=${RECSYS_CONCURRENCY_SECONDS:-25}
CLIENTS=4

die() { echo "retrain_concurrency: FAIL: $*" >&2; exit 1; }
ok() { echo "retrain_concurrency: ok: $*"; }
sql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

WORK=$(mktemp -d)
chmod 755 "$WORK"
trap 'jobs -p | xargs -r kill 2>/dev/null; rm -rf "$WORK"' EXIT

"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB"
"$PG_BINDIR/psql" -X -q -d postgres -c "CREATE DATABASE $DB"
sql <<'EOF'
CREATE EXTENSION recsys;
CREATE TABLE events AS
  SELECT u AS user_id, (u * 7 + g * 13 + (u % 11) * g) % 2000 AS item_id
  FROM generate_series(1, 4000) u, generate_series(1, 15) g;
SELECT recsys.create_recommender('conc', 'als', 'SELECT user_id, item_id FROM public.events',
                                 '{"factors": 16, "iterations": 6, "seed": 5}');
CALL recsys.retrain('conc');
EOF
ok "recommender conc trained ($(sql -c "SELECT rows_trained FROM recsys.recommenders WHERE name = 'conc'") rows)"

# 1. A retrain left open holds the recommender; a second one steps aside at once.
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$DB" >"$WORK/holder.out" 2>&1 <<'EOF' &
BEGIN;
CALL recsys.retrain('conc');
SELECT pg_sleep(4);
COMMIT;
EOF
HOLDER=$!
for _ in $(seq 1 100); do
  [ "$(sql -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1919118201 AND granted")" = 1 ] && break
  sleep 0.05
done
# ... and wait until its retrain has swapped (the catalog row is then locked by it).
for _ in $(seq 1 100); do
  [ "$(sql -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%' AND state = 'active'")" = 1 ] && break
  sleep 0.05
done
t0=$(now_ms)
second=$(PGOPTIONS="-c client_min_messages=notice" sql -c "CALL recsys.retrain('conc')" 2>&1)
elapsed=$(($(now_ms) - t0))
echo "$second" | grep -q 'recommender "conc" is being retrained by another session: nothing done' ||
  die "the second retrain did not step aside: $second"
[ "$elapsed" -lt 1500 ] || die "the second retrain took $elapsed ms to step aside"
t0=$(now_ms)
served=$(sql -c "SET statement_timeout = '2s'" -c "SELECT count(*) FROM recsys.recommend('conc', 7, 10)")
serve_ms=$(($(now_ms) - t0))
[ "$served" = 10 ] || die "serving during an open retrain: $served"
wait "$HOLDER" || { cat "$WORK/holder.out"; die "the holding retrain failed"; }
ok "a second retrain stepped aside in $elapsed ms; serving did not wait for the open one ($serve_ms ms)"

# 2. Serving under back-to-back retrains from two sessions.
cat >"$WORK/serve.sql" <<'EOF'
\set uid random(1, 4000)
SELECT count(*) FROM recsys.recommend('conc', :uid, 10);
EOF
SWAPS_BEFORE=$(sql -c "SELECT swaps FROM recsys.recommenders WHERE name = 'conc'")
retrainer() {
  local id=$1 n=0 done=0 skipped=0 out
  local deadline=$(($(now_ms) + SECONDS_LOAD * 1000 - 1500))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    n=$((n + 1))
    sql -c "INSERT INTO events SELECT 100000 + $id * 1000 + $n, g FROM generate_series(1, 10) g" || return 1
    out=$(PGOPTIONS="-c client_min_messages=notice" sql -c "CALL recsys.retrain('conc')" 2>&1) || { echo "$out"; return 1; }
    if echo "$out" | grep -q "is being retrained by another session"; then
      skipped=$((skipped + 1))
    elif [ -n "$out" ]; then
      echo "$out"
      return 1
    else
      done=$((done + 1))
    fi
  done
  echo "$done $skipped"
}
retrainer 1 >"$WORK/r1.out" 2>&1 &
R1=$!
retrainer 2 >"$WORK/r2.out" 2>&1 &
R2=$!
set +e
"$PG_BINDIR/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECONDS_LOAD" -f "$WORK/serve.sql" "$DB" >"$WORK/pgbench.out" 2>&1
PGBENCH_STATUS=$?
wait "$R1"; S1=$?
wait "$R2"; S2=$?
set -e
grep -E "number of (transactions actually processed|failed)|latency average|latency stddev|tps" "$WORK/pgbench.out" || true
[ "$PGBENCH_STATUS" = 0 ] || { tail -n 20 "$WORK/pgbench.out"; die "pgbench exited with status $PGBENCH_STATUS"; }
grep -q "number of failed transactions: 0 " "$WORK/pgbench.out" || die "serving calls failed"
grep -qiE "aborted|error" "$WORK/pgbench.out" && { grep -iE "aborted|error" "$WORK/pgbench.out" | head; die "pgbench errors"; }
[ "$S1" = 0 ] && [ "$S2" = 0 ] || { cat "$WORK/r1.out" "$WORK/r2.out"; die "a retrain session failed"; }
read -r D1 K1 <"$WORK/r1.out"
read -r D2 K2 <"$WORK/r2.out"
SWAPS=$(($(sql -c "SELECT swaps FROM recsys.recommenders WHERE name = 'conc'") - SWAPS_BEFORE))
echo "retrain_concurrency: retrains: session 1 swapped $D1, stepped aside $K1; session 2 swapped $D2, stepped aside $K2; catalog counts $SWAPS swaps"
[ "$SWAPS" = $((D1 + D2)) ] || die "the catalog counts $SWAPS swaps, the sessions $((D1 + D2))"
[ "$SWAPS" -ge 3 ] || die "only $SWAPS retrains in $SECONDS_LOAD s"
[ -z "$(sql -c "SELECT last_error FROM recsys.recommenders WHERE name = 'conc' AND last_error IS NOT NULL")" ] ||
  die "a retrain failed: $(sql -c "SELECT last_error FROM recsys.recommenders WHERE name = 'conc'")"
sql -c "CALL recsys.retrain('conc')"
LAST_USER=$(sql -c "SELECT max(user_id) FROM events")
[ "$(sql -c "SELECT count(*) FROM recsys.recommend('conc', $LAST_USER, 3, cold_start => false)")" = 3 ] ||
  die "the last retrain's model is not served"
ok "$CLIENTS clients served by name for $SECONDS_LOAD s under $SWAPS swaps with 0 failed calls"

# 3. pg_dump keeps the recommender (an extension configuration table): both models,
#    the status, and serving by name right after the restore.
sql -c "SELECT recsys.create_recommendation_view('conc', 3, 'public.conc_top3')" >/dev/null
"$PG_BINDIR/pg_dump" -Fc -d "$DB" -f "$WORK/conc.dump"
"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS ${DB}_restored" -c "CREATE DATABASE ${DB}_restored"
"$PG_BINDIR/pg_restore" -d "${DB}_restored" "$WORK/conc.dump"
SIG="SELECT r.swaps || ' ' || r.has_previous || ' ' || (recsys.model_info('conc')->>'fingerprint') || ' ' ||
            (SELECT string_agg(item_id::text, ',') FROM recsys.recommend('conc', 7, 5)) || ' ' ||
            (SELECT count(*) FROM public.conc_top3)
     FROM recsys.recommenders r WHERE r.name = 'conc'"
BEFORE=$(sql -c "$SIG")
AFTER=$("$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -d "${DB}_restored" -c "$SIG")
[ -n "$BEFORE" ] && [ "$BEFORE" = "$AFTER" ] || die "after pg_dump/pg_restore: '$AFTER', before: '$BEFORE'"
ok "pg_dump/pg_restore keeps the recommender, its models and its view (swaps, previous, fingerprint, list, view rows: $AFTER)"

"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE $DB" -c "DROP DATABASE ${DB}_restored"
echo "retrain_concurrency: all checks passed"

#!/usr/bin/env bash
# A recommender retrained by pg_cron, for real (issue 14):
#  1. a recommender with a trained model and new rows in its source table;
#  2. a schedule of every minute ('* * * * *'): recsys creates the pg_cron job
#     recsys.<name> with the command CALL recsys.retrain('<name>');
#  3. while the job runs, pgbench serves by name with 4 clients (persistent sessions,
#     so each backend's by-name cache must notice the swap) and logs which model each
#     call saw;
#  4. checks: the job ran and succeeded (cron.job_run_details), the model changed, no
#     call failed, no session served the old model after the job had committed (+0.5 s),
#     every session served the new one after that, and recsys.recommenders reports the
#     run; an ordinary role's scheduled recommender ran as that role; the schedule is
#     then removed with the recommender (no job left).
#
# Needs a running server with recsys installed and pg_cron loaded
# (shared_preload_libraries = 'pg_cron', cron.database_name = 'postgres', as
# test/run_tests.sh configures it): PGHOST, PGPORT, PGUSER (superuser) and PG_BINDIR.
# Takes 65 to 90 s (the job starts on the next minute).
set -euo pipefail

: "${PGHOST:?set PGHOST}" "${PGPORT:?set PGPORT}" "${PGUSER:?set PGUSER}"
PG_BINDIR=${PG_BINDIR:-$(pg_config --bindir)}
export PGHOST PGPORT PGUSER
export PGOPTIONS="-c client_min_messages=warning"
DB=postgres  # pg_cron's database (cron.database_name)
NAME=it_sched_shop
CLIENTS=4

die() { echo "scheduled_retrain: FAIL: $*" >&2; exit 1; }
ok() { echo "scheduled_retrain: ok: $*"; }
sql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }

WORK=$(mktemp -d)
chmod 755 "$WORK"
created_cron=0
created_recsys=0
cleanup() {
  set +e
  sql -c "SELECT recsys.drop_recommender('$NAME') FROM recsys_internal.recommenders WHERE name = '$NAME'" >/dev/null 2>&1
  sql -c "SET ROLE it_sched_alice" -c "SELECT recsys.drop_recommender('it_sched_alice') FROM recsys_internal.recommenders
          WHERE name = 'it_sched_alice'" >/dev/null 2>&1
  sql -c "DROP TABLE IF EXISTS it_sched_events, it_sched_seen, it_sched_alice_events" >/dev/null 2>&1
  sql -c "REVOKE ALL ON SCHEMA recsys, cron FROM it_sched_alice" -c "DROP ROLE IF EXISTS it_sched_alice" >/dev/null 2>&1
  [ "$created_recsys" = 1 ] && sql -c "DROP EXTENSION IF EXISTS recsys" >/dev/null 2>&1
  [ "$created_cron" = 1 ] && sql -c "DROP EXTENSION IF EXISTS pg_cron" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

sql -c "SHOW shared_preload_libraries" | grep -q pg_cron ||
  die "pg_cron is not in shared_preload_libraries (test/run_tests.sh configures it)"
[ "$(sql -c "SHOW cron.database_name")" = "$DB" ] || die "cron.database_name is not $DB"
if [ "$(sql -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'")" = 0 ]; then
  sql -c "CREATE EXTENSION pg_cron"
  created_cron=1
fi
if [ "$(sql -c "SELECT count(*) FROM pg_extension WHERE extname = 'recsys'")" = 0 ]; then
  sql -c "CREATE EXTENSION recsys"
  created_recsys=1
fi

# 1. A recommender with a live model; then new rows (a new user), so the next model differs.
sql <<EOF
DROP TABLE IF EXISTS it_sched_events, it_sched_seen;
CREATE TABLE it_sched_events AS
  SELECT u AS user_id, (u * 7 + g * 13 + (u % 11) * g) % 3000 AS item_id
  FROM generate_series(1, 6000) u, generate_series(1, 20) g;
CREATE TABLE it_sched_seen (at timestamptz, pid integer, fingerprint text);
SELECT recsys.create_recommender('$NAME', 'als', 'SELECT user_id, item_id FROM public.it_sched_events',
                                 '{"factors": 32, "iterations": 8, "seed": 3}');
CALL recsys.retrain('$NAME');
INSERT INTO it_sched_events SELECT 999999, g FROM generate_series(1, 30) g;
EOF
OLD_FP=$(sql -c "SELECT recsys.model_info('$NAME')->>'fingerprint'")
OLD_SWAPS=$(sql -c "SELECT swaps FROM recsys.recommenders WHERE name = '$NAME'")
[ -n "$OLD_FP" ] || die "no initial model"
ok "recommender $NAME trained (model $OLD_FP), new rows added"

# An ordinary role schedules its own recommender: its job runs as that role.
sql <<'EOF'
DROP ROLE IF EXISTS it_sched_alice;
CREATE ROLE it_sched_alice LOGIN;
GRANT USAGE ON SCHEMA recsys, cron TO it_sched_alice;
CREATE TABLE it_sched_alice_events AS SELECT user_id, item_id FROM it_sched_events WHERE user_id <= 500;
ALTER TABLE it_sched_alice_events OWNER TO it_sched_alice;
SET ROLE it_sched_alice;
SELECT recsys.create_recommender('it_sched_alice', 'popularity',
  'SELECT user_id, item_id FROM public.it_sched_alice_events WHERE current_user = ''it_sched_alice''',
  '{}', '* * * * *');
RESET ROLE;
EOF
[ "$(sql -c "SELECT username FROM cron.job WHERE jobname = 'recsys.it_sched_alice'")" = it_sched_alice ] ||
  die "the ordinary role's job does not run as that role"

# 2. The schedule.
sql -c "SELECT recsys.alter_recommender('$NAME', schedule => '* * * * *')" >/dev/null
JOBID=$(sql -c "SELECT jobid FROM cron.job WHERE jobname = 'recsys.$NAME' AND schedule = '* * * * *'
                AND command = 'CALL recsys.retrain(''$NAME'')'")
[ -n "$JOBID" ] || die "no pg_cron job recsys.$NAME"
ok "pg_cron job $JOBID created: $(sql -c "SELECT schedule || ' ' || command FROM cron.job WHERE jobid = $JOBID")"

# 3. Serving by name under load until some seconds after the next minute's run.
cat >"$WORK/serve.sql" <<'EOF'
\set uid random(1, 6000)
SELECT count(*) FROM recsys.recommend('NAME', :uid, 10);
EOF
cat >"$WORK/seen.sql" <<'EOF'
INSERT INTO it_sched_seen SELECT clock_timestamp(), pg_backend_pid(), recsys.model_info('NAME')->>'fingerprint';
EOF
sed -i "s/NAME/$NAME/" "$WORK/serve.sql" "$WORK/seen.sql"
SECONDS_NOW=$(date -u +%-S)
DURATION=$((60 - SECONDS_NOW + 15))
echo "scheduled_retrain: serving with $CLIENTS clients for $DURATION s (the job starts in $((60 - SECONDS_NOW)) s)"
set +e
"$PG_BINDIR/pgbench" -n -c "$CLIENTS" -j 2 -T "$DURATION" -f "$WORK/serve.sql@4" -f "$WORK/seen.sql@1" "$DB" \
  >"$WORK/pgbench.out" 2>&1
PGBENCH_STATUS=$?
set -e
grep -E "number of (transactions actually processed|failed)|latency average|tps" "$WORK/pgbench.out" || true
[ "$PGBENCH_STATUS" = 0 ] || { tail -n 20 "$WORK/pgbench.out"; die "pgbench exited with status $PGBENCH_STATUS"; }
if grep -q "number of failed transactions" "$WORK/pgbench.out"; then
  grep -q "number of failed transactions: 0 " "$WORK/pgbench.out" || die "serving calls failed during the retrain"
fi
grep -qiE "aborted|error" "$WORK/pgbench.out" && { grep -iE "aborted|error" "$WORK/pgbench.out" | head; die "pgbench errors"; }
ok "0 failed serving calls"

# 4. The job ran, the model changed, and the sessions switched when it committed.
RUN=$(sql -c "SELECT status || '|' || coalesce(return_message, '') FROM cron.job_run_details WHERE jobid = $JOBID
              ORDER BY start_time DESC LIMIT 1")
[ -n "$RUN" ] || die "the job did not run within $DURATION s"
[ "${RUN%%|*}" = succeeded ] || die "the job did not succeed: $RUN"
NEW_FP=$(sql -c "SELECT recsys.model_info('$NAME')->>'fingerprint'")
[ "$NEW_FP" != "$OLD_FP" ] || die "the model did not change"
[ "$(sql -c "SELECT swaps > $OLD_SWAPS AND last_error IS NULL FROM recsys.recommenders WHERE name = '$NAME'")" = t ] ||
  die "recsys.recommenders: $(sql -c "SELECT swaps, last_error FROM recsys.recommenders WHERE name = '$NAME'")"
[ "$(sql -c "SELECT count(*) FROM recsys.recommend('$NAME', 999999, 5, cold_start => false)")" = 5 ] ||
  die "the new user is not served by the new model"
ok "job ran ($(sql -c "SELECT round(extract(epoch FROM end_time - start_time)::numeric, 2) FROM cron.job_run_details
                        WHERE jobid = $JOBID ORDER BY start_time DESC LIMIT 1") s), model $OLD_FP -> $NEW_FP"
# The first run's end (pg_cron records it after the command committed) against what the
# sessions saw: nobody saw the old model later than 0.5 s after, everybody saw the new.
CHECK=$(sql <<EOF
WITH run AS (SELECT start_time, end_time FROM cron.job_run_details WHERE jobid = $JOBID AND status = 'succeeded'
             ORDER BY start_time LIMIT 1),
per_pid AS (
  SELECT pid, max(at) FILTER (WHERE fingerprint = '$OLD_FP') AS last_old,
         min(at) FILTER (WHERE fingerprint = '$NEW_FP') AS first_new, count(*) AS calls
  FROM it_sched_seen GROUP BY pid)
SELECT count(*) || ' sessions, ' ||
       count(*) FILTER (WHERE last_old > run.end_time + interval '0.5 s') || ' served the old model late, ' ||
       count(*) FILTER (WHERE first_new IS NULL) || ' never served the new one, ' ||
       count(*) FILTER (WHERE first_new < run.start_time) || ' saw it before the run; ' ||
       'switch at +' || coalesce(round(extract(epoch FROM max(first_new) - run.end_time)::numeric, 3)::text, '?') ||
       ' s after the job ended (training ' || round(extract(epoch FROM run.end_time - run.start_time)::numeric, 2) || ' s)'
FROM per_pid, run GROUP BY run.start_time, run.end_time
EOF
)
echo "scheduled_retrain: $CHECK"
echo "$CHECK" | grep -qE "^$CLIENTS sessions, 0 served the old model late, 0 never served the new one, 0 saw it before the run" ||
  die "sessions did not switch to the new model at the commit: $CHECK"
ok "every serving session switched to the new model right after the commit"
STATUS=$(sql -c "SELECT cron_jobid = $JOBID AND last_run_status = 'succeeded' AND next_run_at > now()
                 FROM recsys.recommenders WHERE name = '$NAME'")
[ "$STATUS" = t ] || die "recsys.recommenders does not report the pg_cron run: $(sql -c "SELECT cron_jobid, last_run_at, last_run_status, next_run_at FROM recsys.recommenders WHERE name = '$NAME'")"
ok "recsys.recommenders reports the last run and the next one"

ALICE=$(sql -c "SELECT d.status || ' ' || (r.swaps >= 1) || ' ' || r.rows_trained || ' ' || coalesce(r.last_error, '-')
                FROM recsys.recommenders r JOIN cron.job j ON j.jobname = 'recsys.' || r.name
                JOIN cron.job_run_details d ON d.jobid = j.jobid WHERE r.name = 'it_sched_alice'
                ORDER BY d.start_time LIMIT 1")
[ "$ALICE" = "succeeded true 10000 -" ] || die "the ordinary role's scheduled retrain: $ALICE (status swaps rows error)"
ok "an ordinary role's job ran as that role: its query saw its rows, one swap"

# A schedule pg_cron rejects, then removing the schedule and the recommender.
if sql -c "SELECT recsys.alter_recommender('$NAME', schedule => 'every tuesday')" >/dev/null 2>"$WORK/err"; then
  die "a bad schedule was accepted"
fi
grep -q "invalid schedule" "$WORK/err" || die "bad schedule error: $(cat "$WORK/err")"
[ "$(sql -c "SELECT schedule FROM cron.job WHERE jobid = $JOBID")" = '* * * * *' ] || die "a refused schedule changed the job"
sql -c "SELECT recsys.drop_recommender('$NAME')" >/dev/null
[ "$(sql -c "SELECT count(*) FROM cron.job WHERE jobname = 'recsys.$NAME'")" = 0 ] || die "the job outlived its recommender"
ok "a bad schedule is refused; dropping the recommender removes its job"
echo "scheduled_retrain: all checks passed"

#!/usr/bin/env bash
# Source this file to get a throwaway PostgreSQL cluster for tests, the demo and the
# benchmarks: start_cluster creates it in a temporary directory, owned by a non-root
# user (PostgreSQL refuses to run as root), on a free port, with its socket in that
# directory; stop_cluster (also run on exit) stops it and removes everything.
# After start_cluster: PGHOST, PGPORT, PGUSER, PGDATABASE and PG_BINDIR are exported.
# With RECSYS_KEEP_CLUSTER=1 the cluster is left running on exit (print_cluster_usage
# says how to connect and how to stop it).
#
# Run as a command, for a cluster to experiment with (it uses the pg_config on PATH;
# the extension must be installed there, e.g. by test/demo.sh or make install):
#   bash test/pg_cluster.sh start        # starts one, prints how to connect and stop it
#   bash test/pg_cluster.sh stop DIR     # stops the cluster in DIR and removes DIR

PG_BINDIR="$(pg_config --bindir)"
export PG_BINDIR
RECSYS_CLUSTER_DIR=""

# The user that owns and runs the cluster.
cluster_user() {
  if [[ $(id -u) -ne 0 ]]; then id -un; elif id postgres >/dev/null 2>&1; then echo postgres; else
    id recsys_test >/dev/null 2>&1 || useradd --system --no-create-home recsys_test
    echo recsys_test
  fi
}

# Runs a command as the cluster user.
as_cluster_user() {
  local u; u="$(cluster_user)"
  if [[ $(id -u) -ne 0 ]]; then "$@"; else runuser -u "$u" -- "$@"; fi
}

# start_cluster [extra postgresql.conf lines...]
start_cluster() {
  local u; u="$(cluster_user)"
  RECSYS_CLUSTER_DIR="$(mktemp -d /tmp/recsys_pg.XXXXXX)"
  chmod 755 "$RECSYS_CLUSTER_DIR"
  chown "$u" "$RECSYS_CLUSTER_DIR"
  [[ "${RECSYS_KEEP_CLUSTER:-0}" == 1 ]] || trap stop_cluster EXIT
  as_cluster_user "$PG_BINDIR/initdb" -D "$RECSYS_CLUSTER_DIR/data" -U postgres -A trust --no-sync >/dev/null
  {
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$RECSYS_CLUSTER_DIR'"
    echo "fsync = off"
    echo "max_worker_processes = 8"
    echo "max_parallel_workers = 4"
    echo "shared_buffers = 256MB"
    for line in "$@"; do echo "$line"; done
  } >>"$RECSYS_CLUSTER_DIR/data/postgresql.conf"
  local port tries=0
  while :; do
    port=$((20000 + RANDOM % 30000))
    if as_cluster_user "$PG_BINDIR/pg_ctl" -D "$RECSYS_CLUSTER_DIR/data" -o "-p $port" -l "$RECSYS_CLUSTER_DIR/server.log" -w -t 60 start >/dev/null 2>&1; then
      break
    fi
    tries=$((tries + 1))
    if ((tries >= 5)); then
      echo "could not start PostgreSQL; server log:" >&2
      cat "$RECSYS_CLUSTER_DIR/server.log" >&2 || true
      return 1
    fi
  done
  export PGHOST="$RECSYS_CLUSTER_DIR" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
}

stop_cluster() {
  if [[ -n "$RECSYS_CLUSTER_DIR" && -d "$RECSYS_CLUSTER_DIR" ]]; then
    as_cluster_user "$PG_BINDIR/pg_ctl" -D "$RECSYS_CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$RECSYS_CLUSTER_DIR"
  fi
  RECSYS_CLUSTER_DIR=""
}

# Prints how to reach the running cluster from another shell, and how to stop it.
print_cluster_usage() {
  cat <<EOF
The cluster keeps running (data and socket in $RECSYS_CLUSTER_DIR, port $PGPORT).
Connect from the repository root (the README's \\copy paths are relative to it):
  psql -h $PGHOST -p $PGPORT -U postgres
or set PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=postgres for any client.
Stop it and remove its files:
  bash test/pg_cluster.sh stop $RECSYS_CLUSTER_DIR
EOF
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      RECSYS_KEEP_CLUSTER=1
      start_cluster
      print_cluster_usage
      ;;
    stop)
      dir="${2:-}"
      # only what start_cluster makes: /tmp/recsys_pg.XXXXXX holding a data directory
      if [[ ! "$dir" =~ ^/tmp/recsys_pg\.[A-Za-z0-9]+/?$ || ! -f "$dir/data/PG_VERSION" ]]; then
        echo "usage: bash test/pg_cluster.sh stop /tmp/recsys_pg.XXXXXX (a directory made by start)" >&2
        exit 2
      fi
      RECSYS_CLUSTER_DIR="${dir%/}"
      stop_cluster
      echo "stopped and removed ${dir%/}"
      ;;
    *)
      echo "usage: bash test/pg_cluster.sh start | stop DIR   (or source it: start_cluster, stop_cluster)" >&2
      exit 2
      ;;
  esac
fi

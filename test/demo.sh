#!/usr/bin/env bash
# The recsys demo, end to end on a fresh Debian 12 machine: installs what is missing,
# builds and installs the extension, starts a throwaway PostgreSQL cluster, loads the
# built-in shop sample (test/data), trains implicit ALS in SQL and prints a customer's
# history, recommendations and similar products.
#   Usage: bash test/demo.sh           # the cluster is removed at the end
#          bash test/demo.sh --keep    # the cluster keeps running, to experiment with;
#                                      # it prints how to connect and how to stop it
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") ;;
  --keep) export RECSYS_KEEP_CLUSTER=1 ;;
  *) echo "usage: bash test/demo.sh [--keep]" >&2; exit 2 ;;
esac
bash test/install_deps.sh
echo "== building and installing recsys"
make -j"$(nproc)" >/dev/null
make install >/dev/null
source test/pg_cluster.sh
start_cluster
echo "== throwaway cluster on port $PGPORT"
psql -X -q -v ON_ERROR_STOP=1 -f test/demo.sql
if [[ "${RECSYS_KEEP_CLUSTER:-0}" == 1 ]]; then
  echo
  echo "== the demo's tables (products, events, shop_model, also_bought, catalogue_model, segments) are in database postgres"
  print_cluster_usage
fi

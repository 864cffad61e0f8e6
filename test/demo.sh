#!/usr/bin/env bash
# The recsys demo, end to end on a fresh Debian 12 machine: installs what is missing,
# builds and installs the extension, starts a throwaway PostgreSQL cluster, loads the
# built-in shop sample (test/data), trains implicit ALS in SQL and prints a customer's
# history, recommendations and similar products.   Usage: bash test/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/install_deps.sh
echo "== building and installing recsys"
make -j"$(nproc)" >/dev/null
make install >/dev/null
source test/pg_cluster.sh
start_cluster
echo "== throwaway cluster on port $PGPORT"
psql -X -q -v ON_ERROR_STOP=1 -f test/demo.sql

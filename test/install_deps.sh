#!/usr/bin/env bash
# Installs the Debian packages recsys needs to build, test and run its demo, when any
# is missing. Run as root on Debian 12 (bookworm); a no-op when all are present.
set -euo pipefail
# clang, libclang-rt-14-dev (libFuzzer) and llvm (llvm-symbolizer): the fuzz harnesses;
# postgresql-15-cron: scheduled retraining in the test cluster.
PACKAGES=(build-essential cmake pkg-config postgresql-15 postgresql-15-cron postgresql-server-dev-15 libeigen3-dev
  googletest libgtest-dev clang libclang-rt-14-dev llvm)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# Services the farm tests use beyond SQLite: PostgreSQL (the store on a real server) and Debian's Chromium (the web
# page in a headless browser). Installs them from Debian's packages where this runs as root with apt, starts
# PostgreSQL, and prints `export S2R_TEST_POSTGRES_URL=...` for scripts/test.sh to eval. Where any step is not
# possible it prints nothing for it, and the tests that need it skip with the reason.
set -uo pipefail
log() { echo "test_services: $*" >&2; }
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
  missing=()
  command -v pg_ctlcluster > /dev/null || missing+=(postgresql)
  command -v chromium > /dev/null || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from Debian's packages"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}") > /dev/null 2>&1 \
      || log "apt-get install ${missing[*]} failed"
  fi
fi
if command -v pg_ctlcluster > /dev/null && [ "$(id -u)" = 0 ]; then
  version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
  if [ -n "$version" ]; then
    pg_lsclusters -h 2>/dev/null | grep -q "^$version main" || pg_createcluster "$version" main > /dev/null 2>&1
    pg_ctlcluster "$version" main start > /dev/null 2>&1 || true
    for _ in $(seq 1 30); do su postgres -c "pg_isready -q" && break; sleep 0.5; done
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='s2r'\"" | grep -q 1 \
      || su postgres -c "psql -qc \"CREATE ROLE s2r LOGIN PASSWORD 's2r'\"" > /dev/null
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='s2r_test'\"" | grep -q 1 \
      || su postgres -c "psql -qc 'CREATE DATABASE s2r_test OWNER s2r'" > /dev/null
    if su postgres -c "pg_isready -q"; then
      echo "export S2R_TEST_POSTGRES_URL=postgresql+psycopg://s2r:s2r@127.0.0.1:5432/s2r_test"
    else
      log "PostgreSQL did not start; its tests will skip"
    fi
  fi
fi

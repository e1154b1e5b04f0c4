#!/usr/bin/env bash
# bash .ci/postgres.sh   (as root, Debian; idempotent: safe to run again)
#
# A PostgreSQL server on 127.0.0.1 for the distributed-search test
# (tests/test_search_distributed.py). Installs the Debian package if missing,
# starts a cluster, creates a test role and database, and prints their URL as
# the last line of stdout:
#     export OPTUNA_TEST_POSTGRES_URL=$(bash .ci/postgres.sh | tail -1)
# The role's password is a fixed throw-away one for a server that listens on
# localhost only; nothing else is exported or written outside the cluster.
set -euo pipefail

PG_USER=${PG_USER:-optuna}
PG_PASSWORD=${PG_PASSWORD:-optuna}
PG_DB=${PG_DB:-optuna_test}
PG_PORT=${PG_PORT:-5432}

log() { echo "postgres.sh: $*" >&2; }

if ! command -v pg_lsclusters >/dev/null 2>&1; then
    log "installing postgresql (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

# The newest installed server version; Debian's postgresql package makes a
# cluster "main" for it, which may be missing in containers: create it then.
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters --no-header | awk '{print $1" "$2}' | grep -qx "$version main"; then
    log "creating cluster $version/main on port $PG_PORT"
    pg_createcluster --port "$PG_PORT" "$version" main >&2
fi
port=$(pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
if ! pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    log "starting cluster $version/main"
    # localhost only: the test server is not for the network
    pg_ctlcluster "$version" main start -o "-c listen_addresses=127.0.0.1" >&2
fi

for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { log "the server did not come up on 127.0.0.1:$port"; exit 1; }

as_postgres() { su postgres -c "psql -v ON_ERROR_STOP=1 -q -p $port $*" ; }
if [ "$(as_postgres "-tAc \"SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'\"")" != "1" ]; then
    as_postgres "-c \"CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'\"" >&2
fi
if [ "$(as_postgres "-tAc \"SELECT 1 FROM pg_database WHERE datname = '$PG_DB'\"")" != "1" ]; then
    as_postgres "-c \"CREATE DATABASE $PG_DB OWNER $PG_USER\"" >&2
fi
log "ready on 127.0.0.1:$port, database $PG_DB"
echo "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$port/$PG_DB"

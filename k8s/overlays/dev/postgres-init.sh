#!/bin/bash
# Runs once, on an empty data directory, from the postgres image's docker-entrypoint-initdb.d:
# one role and one database per Bugnet service, each role owning only its own database (the
# same layout `bugnet-stack up` provisions). Passwords come from <SVC>_DB_PASSWORD; they are
# passed to psql as variables and quoted by format(%L), never spliced into SQL text.
set -euo pipefail

# BUGNET_DATABASES overrides the list (tests provision throwaway names with it).
# shellcheck disable=SC2206
services=(${BUGNET_DATABASES:-auth bugs analytics integrations})

for svc in "${services[@]}"; do
    var="${svc^^}_DB_PASSWORD"
    password="${!var:-}"
    if [ -z "$password" ]; then
        echo "init.sh: $var is not set; set it in .env" >&2
        exit 1
    fi
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v svc="$svc" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'svc', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'svc') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'svc', :'svc')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'svc') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'svc') \gexec
SQL
    echo "init.sh: database $svc with its own role"
done

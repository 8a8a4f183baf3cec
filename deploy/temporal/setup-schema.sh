#!/bin/sh
# Temporal's own schema, with the admin-tools image (temporal-sql-tool reads SQL_PLUGIN,
# SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD from the environment). Safe to run on every
# `docker compose up`: a database that has a schema is only brought up to date.
set -eu
SCHEMA=/etc/temporal/schema/postgresql/v12

until nc -z "$SQL_HOST" "$SQL_PORT"; do
  echo "waiting for PostgreSQL at $SQL_HOST:$SQL_PORT"
  sleep 1
done

prepare() {
  db=$1
  dir=$2
  if ! temporal-sql-tool --db "$db" update-schema -d "$SCHEMA/$dir/versioned"; then
    # A new database has no version table yet: create it, then apply every version.
    temporal-sql-tool --db "$db" setup-schema -v 0.0
    temporal-sql-tool --db "$db" update-schema -d "$SCHEMA/$dir/versioned"
  fi
}

prepare temporal temporal
prepare temporal_visibility visibility
echo "Temporal schema is up to date"

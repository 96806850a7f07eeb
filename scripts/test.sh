#!/usr/bin/env bash
# Installs the portal with its test tools and runs the test suite; arguments go to pytest.
# DATABASE_URL / REDIS_URL in the environment run it on PostgreSQL / the Redis broker.
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Installs the portal with its test tools and runs the test suite; arguments go to pytest.
# DATABASE_URL / REDIS_URL in the environment run it on PostgreSQL / the Redis broker.
source "$(dirname "$0")/_venv.sh"
# The admin-flow tests drive headless Chromium: install Debian's packages when we can,
# otherwise those tests are skipped (REQUIRE_BROWSER=1 turns the skip into a failure).
if ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing chromium and chromium-driver for the browser tests…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
      >/tmp/portal-apt.log 2>&1 || echo "Could not install chromium (see /tmp/portal-apt.log)."
  else
    echo "Note: without chromium and chromedriver the browser tests are skipped."
  fi
fi
exec .venv/bin/python -m pytest "$@"

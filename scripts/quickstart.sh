#!/usr/bin/env bash
# Installs the portal and runs it on this machine: SQLite, web server and django-q2 worker
# together, with the Wix sandbox filled with demo data. Ctrl-C stops both.
source "$(dirname "$0")/_venv.sh"
export PORTAL_DEBUG=${PORTAL_DEBUG:-1} PORTAL_SANDBOX=${PORTAL_SANDBOX:-1}
exec .venv/bin/python manage.py quickstart "$@"

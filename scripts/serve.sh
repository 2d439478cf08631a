#!/usr/bin/env bash
# One command from a fresh clone to a running service with demo data on SQLite:
#   bash scripts/serve.sh
# Creates .venv, installs, migrates instance/xinyuan.sqlite3, seeds the demo community and serves
# the API at http://127.0.0.1:5000 (PORT=… to change). Ctrl-C stops it.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
export FLASK_APP=wsgi
mkdir -p instance
flask db upgrade
flask seed demo
echo "Serving on http://127.0.0.1:${PORT:-5000}  (API docs: http://127.0.0.1:${PORT:-5000}/api/v1/docs)"
exec gunicorn --workers "${WORKERS:-2}" --bind "127.0.0.1:${PORT:-5000}" --access-logfile - wsgi:app

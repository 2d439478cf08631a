#!/usr/bin/env bash
# One command that installs what the tests need and runs the whole suite:
#   bash scripts/test.sh            (SQLite)
#   TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test bash scripts/test.sh
# Extra arguments go to pytest (e.g. -k auth -x).
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" test
exec python -m pytest "$@"

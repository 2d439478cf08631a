#!/usr/bin/env bash
# One command from a fresh clone to a running service with demo data on SQLite:
#   bash scripts/serve.sh
# Creates .venv, installs, migrates instance/xinyuan.sqlite3 (or DATABASE_URL), seeds the demo
# community with eight weeks of history (`flask seed demo --weeks 8`: wishes, ratings, reports,
# activities, redemptions, frozen weekly champions, closed months; only on the first run),
# prints a board page and the demo logins, and serves on http://127.0.0.1:5000.
#   PORT=5050 bash scripts/serve.sh          another port; QR codes and posters encode it
#   HOST=0.0.0.0 bash scripts/serve.sh       serve the LAN: QR codes carry this machine's LAN
#                                            address, so a phone on the same Wi-Fi can scan a poster
#   PUBLIC_BASE_URL=https://… bash …         the address QR codes encode (behind a proxy)
#   WORKERS=1, EXTRAS=postgres (pip extras to install, e.g. with a PostgreSQL DATABASE_URL)
#                                            WORKERS overrides gunicorn.conf.py's worker count;
#                                            that file decides the rest (worker class, request
#                                            limits, JSON access log on stdout, proxies)
#   DEMO_WEEKS=0 bash scripts/serve.sh       the demo community without history (default 8)
# Ctrl-C stops it.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh" "${EXTRAS:-}"
export FLASK_APP=wsgi

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5000}

# The first non-loopback IPv4 address: the one the default route leaves by (connect() on a UDP
# socket only picks a route, it sends nothing), else the first of `hostname -I`.
lan_address() {
  python - <<'PY' 2>/dev/null || true
import socket
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
    sock.connect(("10.255.255.255", 1))
    address = sock.getsockname()[0]
if not address.startswith("127.") and address != "0.0.0.0":
    print(address)
PY
}

if [ -z "${PUBLIC_BASE_URL:-}" ]; then
  case "$HOST" in
    0.0.0.0)
      address=$(lan_address)
      if [ -z "$address" ]; then
        address=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' \
                  | grep -v '^127\.' | head -n 1 || true)
      fi
      if [ -z "$address" ]; then
        echo "No LAN address found; QR codes will say 127.0.0.1 (set PUBLIC_BASE_URL)." >&2
        address=127.0.0.1
      fi
      ;;
    *) address=$HOST ;;
  esac
  PUBLIC_BASE_URL="http://${address}:${PORT}"
fi
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL%/}

mkdir -p instance
flask db upgrade
flask seed demo --weeks "${DEMO_WEEKS:-8}"

echo
echo "Serving on ${HOST}:${PORT}; QR codes and posters encode ${PUBLIC_BASE_URL}"
case "$HOST" in
  0.0.0.0) echo "On a phone on the same network, open ${PUBLIC_BASE_URL}/ or scan a poster." ;;
esac
echo "API docs: ${PUBLIC_BASE_URL}/api/v1/docs"
# gunicorn reads ./gunicorn.conf.py by itself; only the address and an explicit WORKERS are flags.
exec gunicorn ${WORKERS:+--workers "$WORKERS"} --bind "${HOST}:${PORT}" wsgi:app

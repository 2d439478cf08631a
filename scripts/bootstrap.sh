# Sourced by serve.sh and test.sh: make .venv with Python 3.11+ and install the project into it.
# Re-installs only when setup.cfg/pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$candidate; break
    fi
  done
fi
[ -n "$PYTHON" ] || { echo "Python 3.11 or newer is needed (python3.11 not found)." >&2; exit 1; }

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=${1:-}
stamp=".venv/.installed${extras:+-$extras}"
want=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  echo "$want" > "$stamp"
fi
# The compiled gettext catalogues are committed; recompile one only when its .po was edited
# after it (scripts/i18n.sh compile does them all).
for po in app/translations/*/LC_MESSAGES/*.po; do
  if [ "$po" -nt "${po%.po}.mo" ]; then .venv/bin/pybabel -q compile -i "$po" -o "${po%.po}.mo"; fi
done
export PATH="$PWD/.venv/bin:$PATH"

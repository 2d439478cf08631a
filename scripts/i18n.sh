#!/usr/bin/env bash
# The gettext catalogues under app/translations, kept with pybabel (from .venv):
#   scripts/i18n.sh extract   write each domain's template to build/i18n/<domain>.pot (or $I18N_OUT)
#   scripts/i18n.sh update    extract, then merge new and changed msgids into the .po files;
#                             fill in every empty msgstr, then run `compile`
#   scripts/i18n.sh compile   compile each .po to the .mo the app loads; commit both
# Two domains:
#   messages  Chinese msgids (N_, gettext, _ in app/**.py; _ in app/templates), per babel.cfg;
#             the English is in en/LC_MESSAGES/messages.po (Chinese needs no catalogue).
#   fields    the schema layer's English messages (F_ in app/errors.py and the schemas:
#             marshmallow's and our validators'); the Chinese is in zh/LC_MESSAGES/fields.po.
# tests/test_i18n.py fails while a msgid has no translation or a .mo does not match its .po.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYBABEL=${PYBABEL:-.venv/bin/pybabel}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${I18N_OUT:-build/i18n}  # where `extract` writes the .pot files
DIR=app/translations

extract() {
  mkdir -p "$OUT"
  "$PYBABEL" -q extract -F babel.cfg --add-location=file --sort-output --no-wrap --project=xinyuan \
    --ignore-dirs=".* ._ node_modules build instance" -o "$OUT/messages.pot" .
  "$PYBABEL" -q extract --no-default-keywords -k F_ --add-location=file --sort-output --no-wrap \
    --project=xinyuan -o "$OUT/fields.pot" app
}

update() {
  extract
  "$PYBABEL" -q update -i "$OUT/messages.pot" -d "$DIR" -D messages -l en --init-missing \
    --no-fuzzy-matching --ignore-obsolete --no-wrap
  "$PYBABEL" -q update -i "$OUT/fields.pot" -d "$DIR" -D fields -l zh --init-missing \
    --no-fuzzy-matching --ignore-obsolete --no-wrap
  "$PYTHON" - "$DIR" <<'PY'
import pathlib, sys
from babel.messages.pofile import read_po
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/LC_MESSAGES/*.po")):
    with path.open("rb") as f:
        for message in read_po(f):
            if message.id and not message.string:
                print(f"{path}: to translate: {message.id}", file=sys.stderr)
PY
}

compile() {
  "$PYBABEL" compile -d "$DIR" -D messages --statistics
  "$PYBABEL" compile -d "$DIR" -D fields --statistics
}

case "${1:-}" in
  extract) extract; echo "Templates written to $OUT/." ;;
  update) update ;;
  compile) compile ;;
  *) echo "usage: $0 extract|update|compile" >&2; exit 2 ;;
esac

"""One way to translate every human text: gettext catalogues through Flask-Babel.

Chinese comes first: a message's id *is* its Chinese text, so Chinese needs no catalogue and
app/translations/en/LC_MESSAGES/messages.po holds the English. Mark a text for extraction where it
is defined (`N_("积分不足。")`, a no-op) and translate it where it is shown (`gettext(text)`, or
`{{ _("…") }}` in a template). Placeholders are `{name}`, filled by `translate(text, name=…)`.

English texts arriving from the schema layer (marshmallow's "Missing data for required field."
and our own validators' messages) are the other way round: they are marked `F_` and live in the
"fields" domain, whose zh catalogue (translations/zh/LC_MESSAGES/fields.po) holds the Chinese.
scripts/i18n.sh extracts, updates and compiles both.

The language of a request: the `lang` cookie (zh or en), else Accept-Language, else Chinese.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from flask import Flask, has_request_context, request
from flask_babel import Domain, get_locale
from flask_babel import gettext as gettext

from app.extensions import babel

SUPPORTED = ("zh", "en")
DEFAULT = "zh"
COOKIE = "lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"

# marshmallow's field messages and ours: English msgids, Chinese in translations/zh/…/fields.po.
fields_domain = Domain(domain="fields")
_FIELD_TEMPLATES: list[str] = []  # every F_ text, in the order marked
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def N_(text: str) -> str:
    """Mark a Chinese text for extraction into the messages catalogue; translate it later."""
    return text


def F_(text: str) -> str:
    """Mark an English schema-layer message for the "fields" catalogue, and register it so a
    field error with this text (its `{name}` placeholders standing for any value) is translated."""
    if text not in _FIELD_TEMPLATES:
        _FIELD_TEMPLATES.append(text)
        _field_patterns.cache_clear()
    return text


@functools.cache
def _field_patterns() -> list[tuple[re.Pattern, str]]:
    def pattern(template: str) -> re.Pattern:
        parts = _PLACEHOLDER.split(template)  # literal, name, literal, name, …, literal
        return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
                                  for i, part in enumerate(parts)))

    # Longest literal text first: "… {min} and less than or equal to {max}." is tried before
    # "… {min}." (whose {min} would otherwise swallow the rest).
    return sorted(((pattern(t), t) for t in _FIELD_TEMPLATES),
                  key=lambda pair: -len(_PLACEHOLDER.sub("", pair[1])))


def translate_field_message(text: str) -> str:
    """A schema-layer message ("Shorter than minimum length 2.") in the request's language."""
    for pattern, template in _field_patterns():
        found = pattern.fullmatch(text)
        if found:
            return fields_domain.gettext(template).format(**found.groupdict())
    return text


def translate(text: str, **params) -> str:
    """The text in the request's language, with its `{name}` placeholders filled."""
    translated = gettext(text)
    return translated.format(**params) if params else translated


def select_locale() -> str:
    """A `lang` cookie of zh or en wins; then the best of Accept-Language; then Chinese."""
    if not has_request_context():  # the CLI, a shell: Chinese
        return DEFAULT
    chosen = request.cookies.get(COOKIE)
    if chosen in SUPPORTED:
        return chosen
    best = request.accept_languages.best_match(["zh", "zh-CN", "en", "en-US", "en-GB"])
    return "en" if best and best.startswith("en") else DEFAULT


def current_language() -> str:
    """Return the request's language, zh or en (zh outside a request)."""
    if not has_request_context():
        return DEFAULT
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else DEFAULT


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)

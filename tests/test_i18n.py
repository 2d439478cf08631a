"""One translation mechanism: gettext catalogues (Flask-Babel), Chinese first.

The `lang` cookie (zh/en) wins over Accept-Language; every marked text has its translation in
the committed catalogue, and the committed .mo files say what their .po files say.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import render_template_string

from app.errors import message_for
from app.i18n import current_language

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "app" / "translations"
# domain -> the catalogue holding its translations (messages: Chinese msgids; fields: English)
CATALOGUES = {"messages": TRANSLATIONS / "en" / "LC_MESSAGES" / "messages.po",
              "fields": TRANSLATIONS / "zh" / "LC_MESSAGES" / "fields.po"}
PLACEHOLDER = re.compile(r"\{(\w*)\}")
NOT_FOUND = {"zh": "找不到该资源，请检查地址是否正确。", "en": "Not found; check the address."}


def read_catalogue(path: Path):
    with path.open("rb") as f:
        return read_mo(f) if path.suffix == ".mo" else read_po(f)


def translations(catalogue) -> dict[str, str]:
    return {m.id: m.string for m in catalogue if m.id and not m.fuzzy}


def speaking(client, lang: str | None):
    """The test client with a `lang` cookie (or none), as the language switch would leave it."""
    if lang is None:
        client.delete_cookie("lang")
    else:
        client.set_cookie("lang", lang)
    return client


def not_found(client, **headers):
    response = client.get("/api/v1/no-such-thing", headers=headers)
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert response.get_json()["error"] == "not_found"
    return response.get_json()["message"]


# --- choosing the language ---------------------------------------------------------------------

@pytest.mark.parametrize(("cookie", "accept", "expected"), [
    ("en", "zh", "en"),            # the cookie wins over Accept-Language…
    ("zh", "en", "zh"),            # …both ways
    ("en", "zh-CN,zh;q=0.9", "en"),
    ("zh", "en-US,en;q=0.8", "zh"),
    (None, "en", "en"),            # no cookie: Accept-Language decides
    (None, "zh-CN", "zh"),
    (None, None, "zh"),            # neither: Chinese
    ("fr", "en", "en"),            # a cookie we do not speak is ignored
    ("EN", "zh", "zh"),
    ("", None, "zh"),
])
def test_the_lang_cookie_wins_over_accept_language(client, cookie, accept, expected):
    headers = {"Accept-Language": accept} if accept is not None else {}
    assert not_found(speaking(client, cookie), **headers) == NOT_FOUND[expected]


def test_current_language_follows_the_cookie_and_is_chinese_outside_a_request(app):
    assert current_language() == "zh"
    with app.test_request_context(headers={"Cookie": "lang=en", "Accept-Language": "zh"}):
        assert current_language() == "en"
    with app.test_request_context(headers={"Accept-Language": "en-GB"}):
        assert current_language() == "en"
    with app.app_context():  # the CLI: no request, Chinese, and no error
        assert current_language() == "zh"
        assert message_for("not_found") == NOT_FOUND["zh"]


def test_templates_translate_with_the_same_catalogue(app):
    page = "{{ _('积分不足。') }}|{{ _('您好，{name}').format(name='王阿姨') }}"
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        assert render_template_string(page) == "Not enough points.|Hello, 王阿姨"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert render_template_string(page) == "Not enough points.|Hello, 王阿姨"
    with app.test_request_context(headers={"Cookie": "lang=zh", "Accept-Language": "en"}):
        assert render_template_string(page) == "积分不足。|您好，王阿姨"


# --- API errors in both languages ----------------------------------------------------------------

@pytest.mark.parametrize(("lang", "message", "field_message"), [
    ("zh", "提交的内容有误，请按 errors 中各字段的提示修改后重试。", "长度必须在 8 到 128 个字符之间。"),
    ("en", "Some fields are invalid; fix each one as described in errors and try again.",
     "Length must be between 8 and 128."),
])
def test_a_validation_error_in_each_language(client, lang, message, field_message):
    registration = {"phone": "13800138000", "password": "short", "display_name": "王"}
    response = speaking(client, lang).post("/api/v1/auth/register", json=registration)
    assert response.status_code == 422
    body = response.get_json()
    assert (body["error"], body["message"]) == ("validation_error", message)
    assert body["errors"]["password"] == [field_message]


@pytest.mark.parametrize(("lang", "message"), [
    ("zh", "此地址不支持 DELETE 请求。"),
    ("en", "This address does not accept DELETE requests."),
])
def test_a_message_with_a_placeholder_in_each_language(client, lang, message):
    response = speaking(client, lang).delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert (response.get_json()["error"], response.get_json()["message"]) == (
        "method_not_allowed", message)


@pytest.mark.parametrize(("lang", "message"), [
    ("zh", "该手机号已注册，请直接登录。"),
    ("en", "This phone number is already registered; please log in."),
])
def test_a_domain_slug_in_each_language(client, lang, message):
    registration = {"phone": "13900139000", "password": "long enough 马", "display_name": "李"}
    assert client.post("/api/v1/auth/register", json=registration).status_code == 201
    other = "zh" if lang == "en" else "en"
    again = speaking(client, lang).post("/api/v1/auth/register", json=registration,
                                        headers={"Accept-Language": other})
    assert again.status_code == 409
    assert (again.get_json()["error"], again.get_json()["message"]) == ("phone_registered", message)


def test_a_field_message_from_a_service_in_each_language(client, factory, world):
    """A service's ValidationFailed message (with role labels filled in) is translated too."""
    outsider = factory.user("外人")
    url = f"/api/v1/communities/{world.community.id}/teams"
    team = client.post(url, json={"name": "红马甲"}, headers=factory.headers(world.organiser))
    assert team.status_code == 201, team.get_json()
    members = f"/api/v1/teams/{team.get_json()['id']}/members"
    messages = {}
    for lang in ("zh", "en"):
        response = speaking(client, lang).post(members, json={"user_id": outsider.id},
                                               headers=factory.headers(world.organiser))
        assert response.status_code == 422, response.get_json()
        messages[lang] = response.get_json()["errors"]["user_id"]
    assert messages == {"zh": ["必须是本社区的志愿者 或 社区工作人员。"],
                        "en": ["Must be a volunteer or organiser of this community."]}


# --- the catalogues --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """Each domain's .pot, extracted afresh from the code by scripts/i18n.sh."""
    out = tmp_path_factory.mktemp("i18n")
    subprocess.run([str(ROOT / "scripts" / "i18n.sh"), "extract"], check=True, cwd=ROOT,
                   env={**os.environ, "I18N_OUT": str(out)}, capture_output=True)
    return out


@pytest.mark.parametrize("domain", sorted(CATALOGUES))
def test_every_marked_text_has_a_translation(templates, domain):
    wanted = [m.id for m in read_catalogue(templates / f"{domain}.pot") if m.id]
    assert wanted, f"nothing extracted for {domain}"
    have = translations(read_catalogue(CATALOGUES[domain]))
    untranslated = [msgid for msgid in wanted if not (have.get(msgid) or "").strip()]
    assert not untranslated, (
        f"no translation in {CATALOGUES[domain].relative_to(ROOT)} for {untranslated}: "
        "run scripts/i18n.sh update, fill in each msgstr, then scripts/i18n.sh compile")


# Translations that use a parameter the Chinese leaves out (their callers pass both).
EXTRA_PARAMS = {
    "该心愿当前状态为“{state_label}”，不能执行“{action}”。": {"state"},
    "该兑换当前状态为“{state_label}”，不能再{action_label}。": {"state", "action"},
}


@pytest.mark.parametrize("domain", sorted(CATALOGUES))
def test_placeholders_survive_translation(domain):
    """A translation uses only the msgid's `{name}`s (or fewer): any other would fail .format."""
    wrong = {msgid: text for msgid, text in translations(read_catalogue(CATALOGUES[domain])).items()
             if not set(PLACEHOLDER.findall(text))
             <= set(PLACEHOLDER.findall(msgid)) | EXTRA_PARAMS.get(msgid, set())}
    assert not wrong, wrong


@pytest.mark.parametrize("domain", sorted(CATALOGUES))
def test_the_committed_mo_matches_its_po(tmp_path, domain):
    po = CATALOGUES[domain]
    committed = po.with_suffix(".mo")
    assert committed.is_file(), f"{committed} is missing: run scripts/i18n.sh compile"
    fresh = tmp_path / "fresh.mo"
    with fresh.open("wb") as f:
        write_mo(f, read_catalogue(po))
    assert translations(read_catalogue(committed)) == translations(read_catalogue(fresh)), (
        f"{committed.relative_to(ROOT)} is stale: run scripts/i18n.sh compile")

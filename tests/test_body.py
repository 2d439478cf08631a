"""Request bodies with text no database can store are refused before any view runs."""

import pytest
import sqlalchemy as sa

from app.auth.models import User
from app.extensions import db


@pytest.mark.parametrize("raw, field", [
    ('{"phone": "13800138000", "password": "pass\\u0000word", "display_name": "王"}', "password"),
    ('{"phone": "13800138000", "password": "password1", "display_name": "\\ud83d"}',
     "display_name"),
    ('{"phone": "13800138000", "password": "password1", "display_name": "王", "x\\u0000": 1}',
     "x\x00"),
])
def test_nul_and_lone_surrogates_are_422_and_nothing_is_written(client, app, raw, field):
    response = client.post("/api/v1/auth/register", data=raw, content_type="application/json")
    assert response.status_code == 422, response.json
    assert response.json["error"] == "validation_error"
    assert list(response.json["errors"]) == [field]
    assert "NUL" in response.json["errors"][field][0]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


def test_nested_bad_text_is_located(client):
    raw = '{"phone": "13800138000", "password": ["ok", "\\u0000"]}'
    response = client.post("/api/v1/auth/login", data=raw, content_type="application/json",
                           headers={"Accept-Language": "en"})
    assert response.status_code == 422
    assert list(response.json["errors"]) == ["password"]


def test_emoji_pairs_are_fine(client):
    raw = ('{"phone": "13800138000", "password": "password1", '
           '"display_name": "\\ud83d\\ude00 王阿姨"}')
    response = client.post("/api/v1/auth/register", data=raw, content_type="application/json")
    assert response.status_code == 201, response.json
    assert response.json["display_name"] == "😀 王阿姨"

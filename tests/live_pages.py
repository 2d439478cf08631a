"""The demo community behind real gunicorn workers, and the steps browser tests share."""

from __future__ import annotations

import io
import re

import requests
import sqlalchemy as sa

from app.extensions import db

PASSWORD = "xinyuan2026"
ORGANISER, VOLUNTEER = "13800000001", "13800000011"


def api_token(server, phone: str) -> str:
    answer = requests.post(f"{server.url}/api/v1/auth/login",
                           json={"phone": phone, "password": PASSWORD}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert found, "no QR code in the image"
    return found[0].text


def sign_in(page, phone: str) -> None:
    page.goto("/login")
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/$"))


def wish_id_of(page) -> int:
    return int(re.search(r"/wishes/(\d+)", page.url).group(1))



def volunteer_user_id(app) -> int:
    from app.auth.models import User

    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.phone == VOLUNTEER))


def adjust(server, token: str, community_id: int, user_id: int, amount: int) -> bool:
    answer = requests.post(f"{server.url}/api/v1/communities/{community_id}/adjustments",
                           json={"user_id": user_id, "amount": amount, "reason": "兑换日前补录积分"},
                           headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return answer.status_code == 201

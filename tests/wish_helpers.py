"""Helpers shared by the board and micro-wish tests (issue 4). Not a test module.

`Kit` drives the API through Flask's test client with tokens made by the `factory` fixture (no
login round-trips), and reads the database directly to prove what a request wrote or did not.
The live-server helpers drive real gunicorn workers with `requests`.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from tests.helpers import reading

API = "/api/v1"
PASSWORD = "correct horse 马"  # what the `factory` fixture's users have (tests/conftest.py)
LIVE_TIMEOUT = 60

# What each action needs in its body to be valid (so a refusal is never a 422).
PAYLOADS: dict[str, dict] = {
    "approve": {"level": 3},
    "reject": {"reason": "不属于微心愿范围"},
    "cancel": {"reason": "已经解决了"},
    "claim": {},
    "assign": {},  # volunteer_id filled in by the caller
    "release": {"reason": "临时有事"},
    "extend": {},
    "fulfil": {"note": "已上门更换水龙头"},
    "confirm": {"rating": 4, "comment": "很满意"},
    "dispute": {"reason": "还在漏水"},
}


# --- responses ----------------------------------------------------------------------------

# --- the database -------------------------------------------------------------------------

@contextmanager
def writing(app):
    """A fresh app context whose one write transaction commits at the end."""
    from app.db import write_transaction
    from app.extensions import db

    with app.app_context():
        try:
            with write_transaction(db.session):
                yield db.session
        finally:
            db.session.remove()


def counts(app) -> dict[str, int]:
    """Row counts of every table a wish request could write."""
    from app.auth.models import User
    from app.communities.models import Membership
    from app.ledger.models import Account, Entry, Transfer
    from app.wishes.models import (
        Board,
        ClaimLapse,
        ContactReveal,
        RetiredBoardToken,
        Wish,
        WishEvent,
        WishSettings,
    )

    models = {"wishes": Wish, "wish_events": WishEvent, "contact_reveals": ContactReveal,
              "claim_lapses": ClaimLapse, "transfers": Transfer, "entries": Entry,
              "accounts": Account, "memberships": Membership, "users": User, "boards": Board,
              "retired_board_tokens": RetiredBoardToken, "wish_settings": WishSettings}
    with reading(app) as session:
        return {name: session.scalar(sa.select(sa.func.count()).select_from(model))
                for name, model in models.items()}


def wish_row(app, wid: int) -> dict:
    """The stored wish, every column, as a plain dict."""
    from app.wishes.models import Wish

    with reading(app) as session:
        return dict(session.execute(sa.select(Wish.__table__).where(Wish.id == wid))
                    .mappings().one())


def wish_state(app, wid: int) -> dict:
    """Everything about one wish a refused request must leave as it was."""
    from app.ledger.models import Transfer
    from app.wishes.models import ClaimLapse, Wish, WishEvent

    with reading(app) as session:
        return {
            "row": dict(session.execute(sa.select(Wish.__table__).where(Wish.id == wid))
                        .mappings().one()),
            "events": [dict(e) for e in session.execute(sa.select(WishEvent.__table__).where(
                WishEvent.wish_id == wid).order_by(WishEvent.id)).mappings()],
            "lapses": session.scalar(sa.select(sa.func.count()).select_from(ClaimLapse)
                                     .where(ClaimLapse.wish_id == wid)),
            "transfers": session.scalar(sa.select(sa.func.count()).select_from(Transfer)),
        }


def set_wish_columns(app, wid: int, **values) -> None:
    """Move a wish's clock by writing its timestamps (wishes are not append-only)."""
    from app.wishes.models import Wish

    with writing(app) as session:
        session.execute(sa.update(Wish).where(Wish.id == wid).values(**values))


def award_transfers(app, wid: int) -> list[dict]:
    from app.ledger.models import Transfer

    with reading(app) as session:
        return [dict(r) for r in session.execute(sa.select(Transfer.__table__).where(
            Transfer.key == f"wish:{wid}:award")).mappings().all()]


def aware(value: datetime) -> datetime:
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- driving the API through the test client ----------------------------------------------

class Kit:
    """One community's wish scheme as the tests use it: people, a board, helpers to act."""

    def __init__(self, app, client, factory, world):
        self.app, self.client, self.factory, self.w = app, client, factory, world
        self._headers: dict[int, dict] = {}
        self.community = world.community
        self.cid = world.community.id
        self.organiser, self.volunteer, self.resident = (
            world.organiser, world.volunteer, world.resident)
        self.volunteer2 = factory.member(world.community, factory.user("张志愿"), "volunteer")
        self.board = self.create_board(self.cid, "远创樾府 3 栋", location="东门公示栏")

    # people and requests
    def h(self, user) -> dict:
        if user.id not in self._headers:
            self._headers[user.id] = self.factory.headers(user)
        return self._headers[user.id]

    def get(self, path: str, user, headers: dict | None = None, **kw):
        return self.client.get(API + path, headers={**self.h(user), **(headers or {})}, **kw)

    def post(self, path: str, user, body: dict | None = None, headers: dict | None = None,
             **kw):
        return self.client.post(API + path, json=body if body is not None else {},
                                headers={**self.h(user), **(headers or {})}, **kw)

    def patch(self, path: str, user, body: dict):
        return self.client.patch(API + path, json=body, headers=self.h(user))

    def ok(self, response, status: int = 200) -> dict:
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    # boards and settings
    def create_board(self, cid: int, name: str, **fields) -> dict:
        organiser = self.organiser if cid == self.cid else self.w.other_organiser
        return self.ok(self.post(f"/communities/{cid}/boards", organiser,
                                 {"name": name, **fields}), 201)

    def settings(self, **changes) -> dict:
        return self.ok(self.patch(f"/communities/{self.cid}/wish-settings", self.organiser,
                                  changes))

    def rule_points(self, level: int) -> int:
        body = self.ok(self.get(f"/communities/{self.cid}/points-rules", self.organiser))
        return next(r["points"] for r in body["rules"]
                    if r["category"] == "wish" and r["level"] == level)

    def factor(self, rating: int) -> int:
        body = self.ok(self.get(f"/communities/{self.cid}/points-rules", self.organiser))
        return body["satisfaction_factors"][str(rating)]

    # wishes
    def post_wish(self, user=None, board: dict | None = None, **fields) -> dict:
        body = {"title": "厨房水龙头漏水", "description": "家里只有两位老人，想请人帮忙换个水龙头。",
                "category": "repair", "contact_phone": "13812345678",
                "address": "远创樾府 3 栋 502 室", **fields}
        board = board or self.board
        return self.ok(self.post(f"/boards/{board['id']}/wishes", user or self.resident, body),
                       201)

    def act(self, wid: int, action: str, user, **payload):
        body = {**PAYLOADS[action], **payload}
        if action == "assign":
            body.setdefault("volunteer_id", self.volunteer.id)
        return self.post(f"/wishes/{wid}/{action}", user, body)

    def do(self, wid: int, action: str, user, **payload) -> dict:
        return self.ok(self.act(wid, action, user, **payload))

    def wish(self, wid: int, user=None) -> dict:
        return self.ok(self.get(f"/wishes/{wid}", user or self.organiser))

    def make(self, state: str, *, owner=None, claimer=None, level: int = 3, rating: int = 5,
             **fields) -> int:
        """A fresh wish brought to `state` through the API."""
        owner = owner or self.resident
        claimer = claimer or self.volunteer
        wid = self.post_wish(owner, **fields)["id"]
        path = {
            "pending": [],
            "open": [("approve", self.organiser, {"level": level})],
            "rejected": [("reject", self.organiser, {})],
            "cancelled": [("cancel", owner, {})],
        }
        path["claimed"] = [*path["open"], ("claim", claimer, {})]
        path["fulfilled"] = [*path["claimed"], ("fulfil", claimer, {})]
        path["closed"] = [*path["fulfilled"], ("confirm", owner, {"rating": rating})]
        for action, actor, payload in path[state]:
            self.do(wid, action, actor, **payload)
        assert self.wish(wid)["status"] == state
        return wid

    def points(self, user, cid: int | None = None) -> dict:
        return self.ok(self.get(f"/me/points?community_id={cid or self.cid}", user))

    def tick(self, app=None):
        result = (app or self.app).test_cli_runner().invoke(args=["wishes", "tick"])
        assert result.exit_code == 0, (result.output, result.exception)
        return result.output


def tick_counts(output: str) -> dict[str, int]:
    return {label: int(n) for label, n in re.findall(r"^(.+?): (\d+)$", output, re.M)}


# --- live servers -------------------------------------------------------------------------

def assert_server_healthy(server) -> None:
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "database is locked" not in log, log[-4000:]
    assert "WORKER TIMEOUT" not in log, log[-4000:]


def error_slug(response) -> str | None:
    """The `error` slug of a `requests` response (asserting the JSON envelope), or None."""
    if response.status_code < 400:
        return None
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    return response.json()["error"]


# --- QR codes -----------------------------------------------------------------------------

def decode_png(png: bytes) -> list:
    import io

    import zxingcpp
    from PIL import Image

    return zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))


_RECT = re.compile(r"M(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)H(\d+(?:\.\d+)?)V(\d+(?:\.\d+)?)H\1z")


def rasterise_svg(svg: str, scale: int = 8) -> bytes:
    """Draw a QR SVG made of unit-square path segments (qrcode's SvgPathImage) as a PNG, so the
    SVG too can be read by the QR decoder rather than trusted by its look."""
    import io

    from PIL import Image, ImageDraw

    view = re.search(r'viewBox="0 0 (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)"', svg)
    assert view, svg[:300]
    width, height = float(view.group(1)), float(view.group(2))
    paths = " ".join(re.findall(r'<path[^>]* d="([^"]+)"', svg))
    rects = _RECT.findall(paths)
    assert rects, "no modules found in the SVG path"
    assert len(_RECT.sub("", paths).strip()) == 0, "SVG path has commands this reader ignores"
    image = Image.new("L", (int(width * scale), int(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in rects:
        draw.rectangle([float(x0) * scale, float(y0) * scale,
                        float(x1) * scale - 1, float(y1) * scale - 1], fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()

"""Page quality on every phone page: axe, size, tap targets, type, labels, CSP — and Lighthouse.

One world for the module: the demo community (`flask seed demo`) behind two real gunicorn
workers, brought through the API into a state where every page has something to show (a wish
in each state, a proxy wish, redemptions awaiting pickup and handed over, a counter receipt, an
adjustment, a reset code, problem reports in each state (one with a photo, one flagged as a
possible duplicate), an upcoming activity, one under way and one completed). Then every
page template, for the role that uses it, at 375×667 (the main ones at 360×640 too), and the
forms in their error state:

- axe-core finds no violation; nothing scrolls sideways; body text is 18 px;
- every visible tap target is at least 44 px high (a link inside a sentence aside: axe's
  target-size rule and Lighthouse judge those); every input has a visible label;
- the answer carries the CSP; HTML + CSS + JS (images aside) is at most 60 KB;
- no request leaves our host, no CSP violation, no console error.

Lighthouse (mobile profile) scores one page of each template: accessibility and best
practices at least 95 (enforced), performance reported. The figures go to
tests/screenshots/quality.json and lighthouse.json (git-ignored) for the closing note.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from tests.activity_helpers import set_times
from tests.browser import (
    PHONE,
    SCREENSHOTS,
    SMALL_PHONE,
    PhonePages,
    axe_violations,
    cookie_header,
    format_violations,
    lighthouse,
    screenshot,
)
from tests.conftest import ROOT, _empty_postgres, base_config, start_gunicorn
from tests.live_pages import ORGANISER, PASSWORD, VOLUNTEER, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.live]

RESIDENT = "13800000021"  # 王女士
VOLUNTEER_2 = "13800000012"  # 陈秀英
MAX_BYTES = 60 * 1024
MIN_TAP = 44
LIGHTHOUSE_MIN = 95
LIGHTHOUSE_PARALLEL = 3
SCREENSHOT_EACH = os.environ.get("XINYUAN_QUALITY_SCREENSHOTS") == "1"  # to look at them all

QUALITY: dict[str, dict] = {}  # page id → figures, written to quality.json at module teardown
LIGHTHOUSE_RESULTS: dict[str, dict] = {}  # template → scores, written to lighthouse.json


# --- the world ----------------------------------------------------------------------------

class Api:
    """The HTTP API as a client uses it: Bearer tokens, JSON, the status checked."""

    def __init__(self, url: str):
        self.url = url
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def login(self, phone: str) -> str:
        answer = requests.post(f"{self.url}/api/v1/auth/login",
                               json={"phone": phone, "password": PASSWORD}, timeout=10)
        assert answer.status_code == 200, answer.text
        self.tokens[phone] = answer.json()["access_token"]
        self.ids[phone] = answer.json()["user"]["id"]
        return phone

    def call(self, phone: str, method: str, path: str, body: dict | None = None,
             status: int | tuple = (200, 201), files: dict | None = None) -> dict:
        """JSON, or (with `files`) multipart with the body as its form fields."""
        sent = {"data": body, "files": files} if files else {"json": body}
        answer = requests.request(method, f"{self.url}/api/v1{path}", timeout=15, **sent,
                                  headers={"Authorization": f"Bearer {self.tokens[phone]}"})
        wanted = status if isinstance(status, tuple) else (status,)
        assert answer.status_code in wanted, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else {}


class Fresh:
    """A world value made when a page's URL is formatted, not when the world is built: a
    check-in QR's token works for 2 minutes only."""

    def __init__(self, make: Callable[[], str]):
        self.make = make

    def __format__(self, spec: str) -> str:
        return format(self.make(), spec)


def _database(template: dict, folder) -> str:
    """A database of this module's own: the migrated template, copied (or PostgreSQL emptied)."""
    if template["kind"] == "postgresql":
        _empty_postgres(template["tables"])
        return template["url"]
    path = folder / "quality.sqlite3"
    shutil.copyfile(template["path"], path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def site(_template, tmp_path_factory):
    """The demo community behind two workers, with something on every page."""
    from app import create_app
    from app.db import utcnow
    from app.demo import seed_demo
    from app.extensions import db
    from app.wishes.service import escalate

    folder = tmp_path_factory.mktemp("quality")
    database_url = _database(_template, folder)
    app = create_app({**base_config(database_url), "DEMO_PASSWORD": PASSWORD})
    with app.app_context():
        seeded = seed_demo()
        db.session.commit()
    # Long-lived access cookies: Lighthouse replays a context's cookies, which must not need
    # a refresh (that would rotate the refresh token under the browser's feet).
    server = start_gunicorn(database_url, folder, 2, DEMO_PASSWORD=PASSWORD, JWT_ACCESS_SECONDS=4 * 3600)
    try:
        def move(activity_id: int, starts_in: timedelta) -> None:
            """Activities are published with a start ahead; the clock moves them into the past."""
            set_times(app, activity_id, starts_in=starts_in)

        world = _fill(Api(server.url), seeded, move)
        with app.app_context():  # `flask wishes tick` would do this a day later
            assert escalate(world["escalated"], utcnow() + timedelta(hours=25))
            db.session.commit()
        world["url"] = server.url
        yield world
    finally:
        server.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _fill(api: Api, seeded: dict, move: Callable[[int, timedelta], None]) -> dict:
    """Wishes in every state, redemptions, a counter receipt, an adjustment, a reset code,
    reports and activities."""
    cid = seeded["community_id"]
    board_id, _name, board_url = seeded["boards"][0]
    organiser, volunteer, volunteer_2, resident = (
        api.login(p) for p in (ORGANISER, VOLUNTEER, VOLUNTEER_2, RESIDENT))
    world = {"community_id": cid, "board": board_url.rsplit("/", 1)[1],
             "volunteer_id": api.ids[volunteer], "resident_id": api.ids[resident]}

    def post(title, category="repair", who=resident, **extra) -> int:
        body = {"title": title, "category": category, "description": "下午两点以后在家。",
                "contact_phone": "13955550001", "address": "远创樾府 5 栋 301", **extra}
        return api.call(who, "POST", f"/boards/{board_id}/wishes", body)["id"]

    def act(who, wid, action, **body) -> None:
        api.call(who, "POST", f"/wishes/{wid}/{action}", body)

    world["pending"] = post("帮忙看看电视没信号", "digital")
    world["open"] = post("陪奶奶去社区医院复查", "companionship")
    act(organiser, world["open"], "approve", level=2)
    world["escalated"] = post("楼道灯不亮了", "repair")
    act(organiser, world["escalated"], "approve", level=1)
    world["claimed"] = post("帮忙取一下快递", "errands")
    act(organiser, world["claimed"], "approve", level=1)
    act(volunteer, world["claimed"], "claim")
    world["fulfilled"] = post("帮忙换个灯泡", "repair")
    act(organiser, world["fulfilled"], "approve", level=3)
    act(volunteer, world["fulfilled"], "claim")
    act(volunteer, world["fulfilled"], "fulfil", note="已换好新灯泡，试过了")
    world["closed"] = post("修一下厨房水龙头", "repair")
    act(organiser, world["closed"], "approve", level=4)
    act(volunteer, world["closed"], "claim")
    act(volunteer, world["closed"], "fulfil", note="换了新的阀芯，不漏了")
    act(resident, world["closed"], "confirm", rating=5, comment="小王师傅很及时，谢谢！")
    world["rejected"] = post("帮我买彩票", "errands")
    act(organiser, world["rejected"], "reject", reason="这个不属于微心愿的帮办范围，请谅解。")
    # Posted by the organiser for a resident without a phone: one waiting for review, one done
    # by a volunteer and waiting for the organiser to confirm it for the resident.
    proxy = {"on_behalf_of": {"name": "周大爷", "phone": "13955550002"}}
    world["proxy"] = post("帮忙读一下医保报销的信", "policy", who=organiser, **proxy)
    world["proxy_fulfilled"] = post("帮忙把旧衣服送到回收点", "errands", who=organiser, **proxy)
    act(organiser, world["proxy_fulfilled"], "approve", level=2)
    act(volunteer_2, world["proxy_fulfilled"], "claim")
    act(volunteer_2, world["proxy_fulfilled"], "fulfil", note="已送到")

    # Points to spend: an audited adjustment for each volunteer.
    api.call(organiser, "POST", f"/communities/{cid}/adjustments",
             {"user_id": api.ids[volunteer], "amount": 500, "reason": "上周大扫除补录积分"})
    api.call(organiser, "POST", f"/communities/{cid}/adjustments",
             {"user_id": api.ids[volunteer_2], "amount": 80, "reason": "敬老院陪伴活动"})
    rewards = {r["name"]: r["id"] for r in
               api.call(organiser, "GET", f"/communities/{cid}/rewards?per_page=50")["items"]}
    world["reward"] = rewards["食用油 5L"]
    awaiting = api.call(volunteer, "POST", f"/rewards/{rewards['理发一次']}/redeem", {"quantity": 1})
    world["awaiting"], world["pickup_code"] = awaiting["id"], awaiting["pickup_code"]
    handed = api.call(volunteer, "POST", f"/rewards/{rewards['洗衣液 2kg']}/redeem", {"quantity": 1})
    api.call(organiser, "POST", f"/redemptions/{handed['id']}/fulfil",
             {"pickup_code": handed["pickup_code"]})
    world["handed"] = handed["id"]
    # Exchange day at the counter: the volunteer's member code, two rewards, one receipt.
    code = api.call(volunteer, "GET", "/me/member-card")["code"]
    world["member_code"] = code
    made = [api.call(organiser, "POST", f"/rewards/{rewards[name]}/redeem",
                     {"quantity": 1, "for_user_id": api.ids[volunteer], "member_code": code})["id"]
            for name in ("大米 5kg", "洗衣液 2kg")]
    world["receipt"] = ",".join(str(i) for i in made)
    # A reset code for 周大爷 (the resident), as an organiser issues it.
    uncle = next(a for a in seeded["accounts"] if a[2] == "周大爷")[1]
    api.login(uncle)
    api.call(organiser, "POST", f"/communities/{cid}/members/{api.ids[uncle]}/password-reset")

    # Boards: one closed, one whose QR was replaced.
    closed = api.call(organiser, "POST", f"/communities/{cid}/boards",
                      {"name": "老年活动室", "location": "活动室门口"})
    api.call(organiser, "PATCH", f"/boards/{closed['id']}", {"enabled": False})
    world["closed_board"] = closed["token"]
    moved = api.call(organiser, "POST", f"/communities/{cid}/boards",
                     {"name": "菜市场公告栏", "location": "菜市场东门"})
    api.call(organiser, "POST", f"/boards/{moved['id']}/rotate-token")
    world["replaced_board"] = moved["token"]
    _reports(api, world, cid, organiser, volunteer)
    _activities(api, world, cid, organiser, volunteer, volunteer_2, move)
    _webhooks(api, world, cid, organiser, resident)
    return world


def _webhooks(api, world: dict, cid: int, organiser: str, resident: str) -> None:
    """A WeCom group robot and a json webhook; a wish posted after them leaves a pending
    delivery in each one's table. The robot's host does not resolve (.invalid): the test
    message's answer is a refusal shown in words, and nothing leaves the machine."""
    robot = api.call(organiser, "POST", f"/communities/{cid}/webhooks", {
        "name": "居委会工作群", "format": "wecom",
        "url": "https://qyapi.weixin.invalid/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4",
        "events": ["wish.posted", "wish.disputed", "report.filed"],
        "quiet_start": "22:00", "quiet_end": "07:00"}, status=201)
    api.call(organiser, "POST", f"/communities/{cid}/webhooks", {
        "name": "社区信息系统", "format": "json", "url": "https://hooks.example.invalid/xinyuan",
        "events": ["wish.posted", "points.awarded"], "secret": "a-long-test-secret"}, status=201)
    board_id = api.call(organiser, "GET", f"/communities/{cid}/boards")["items"][0]["id"]
    api.call(resident, "POST", f"/boards/{board_id}/wishes", {
        "title": "楼道灯不亮", "category": "repair", "description": "3 楼的灯坏了一周了。"},
        status=201)
    world["webhook"] = robot["id"]


def _photo_jpeg() -> bytes:
    """A phone-sized photo (a few KB of flat colour): big enough for the page's photo at the
    phone's pixel ratio, as a real one is (Lighthouse's image-size-responsive)."""
    from PIL import Image

    image = Image.new("RGB", (1280, 960), (120, 130, 140))
    image.paste((200, 60, 40), (160, 240, 1120, 720))  # something to look at
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def _reports(api: Api, world: dict, cid: int, organiser: str, volunteer: str) -> None:
    """The volunteer's reports: one with a photo accepted, assigned and resolved; one rejected;
    one accepted, one in progress; one pending and the same one filed again (flagged)."""

    def report(category, location, description, photo=None) -> dict:
        body = {"category": category, "location": location, "description": description}
        files = {"photo": ("photo.jpg", photo, "image/jpeg")} if photo else None
        return api.call(volunteer, "POST", f"/communities/{cid}/reports", body, status=201,
                        files=files)

    def act(rid, action, **body) -> None:
        api.call(organiser, "POST", f"/reports/{rid}/{action}", body)

    resolved = report("fire_lane", "远创樾府 3 栋东侧消防通道",
                      "两辆电动车停在消防通道上，已经堵了两天。", photo=_photo_jpeg())
    assert resolved["has_photo"], resolved
    act(resolved["id"], "accept", level=3)
    act(resolved["id"], "assign", to="物业维修班 张师傅")
    act(resolved["id"], "resolve", note="已联系车主挪车，通道已畅通。谢谢您的上报！")
    world["report"] = resolved["id"]
    rejected = report("other", "小区外的马路", "马路对面的红绿灯时间太短。")
    act(rejected["id"], "reject", reason="不属于本社区管辖范围，已转告交警中队。")
    accepted = report("facility", "2 栋电梯", "电梯按钮 5 楼不亮。")
    act(accepted["id"], "accept", level=2)
    in_progress = report("sanitation", "菜市场东门垃圾桶", "垃圾桶满了没人清。")
    act(in_progress["id"], "accept", level=1)
    act(in_progress["id"], "assign", to="环卫所")
    first = report("manhole", "5 栋门口", "井盖松了，踩上去会晃。")
    again = report("manhole", "5 栋门口", "井盖松了，踩上去会晃，请尽快处理。")
    assert again["possible_duplicate_of"] == first["id"], again
    world["report_pending"], world["report_flagged"] = first["id"], again["id"]


def _activities(api: Api, world: dict, cid: int, organiser: str, volunteer: str,
                volunteer_2: str, move: Callable[[int, timedelta], None]) -> None:
    """An activity ahead with places left, one that started minutes ago with the volunteer
    signed up (check-in open), and one completed that the volunteer attended."""

    def publish(title, place, **extra) -> int:
        start = datetime.now(UTC) + timedelta(days=3)
        body = {"title": title, "description": "请穿运动鞋，带好水杯。\n工具由社区提供。",
                "place": place, "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=2)).isoformat(), "capacity": 10,
                "level": 2, "hours": 2.5, **extra}
        return api.call(organiser, "POST", f"/communities/{cid}/activities", body, status=201)["id"]

    def signup(who, aid) -> None:
        api.call(who, "POST", f"/activities/{aid}/signup")

    upcoming = publish("社区花园除草", "中心花园")
    signup(volunteer_2, upcoming)
    world["activity_upcoming"] = upcoming

    live = publish("重阳节敬老院陪伴", "管园村敬老院", capacity=8, level=3, hours=2)
    signup(volunteer, live)
    signup(volunteer_2, live)
    move(live, timedelta(minutes=-5))  # under way: check-in open until the end
    api.call(organiser, "POST", f"/activities/{live}/checkin",
             {"user_id": api.ids[volunteer_2]})
    world["activity_live"] = live
    # The QR's token, fetched when the scan page's URL is formatted (it lasts 2 minutes).
    world["checkin_token"] = Fresh(lambda: api.call(
        organiser, "GET", f"/activities/{live}/checkin-code")["token"])

    done = publish("河道垃圾清理", "东沙河步道", level=2, hours=1.5)
    signup(volunteer, done)
    signup(volunteer_2, done)  # does not come: recorded absent
    move(done, timedelta(hours=-3))
    api.call(organiser, "POST", f"/activities/{done}/checkin", {"user_id": api.ids[volunteer]})
    api.call(organiser, "POST", f"/activities/{done}/complete")
    world["activity_done"] = done


# --- phones, one per role (and size and language), signed in once ---------------------------

PHONES = {"visitor": None, "resident": RESIDENT, "volunteer": VOLUNTEER, "organiser": ORGANISER}


class Phones:
    def __init__(self, browser, url: str):
        self.pages = PhonePages(browser)
        self.url = url
        self.open: dict[tuple, object] = {}

    def get(self, role: str, size: tuple[int, int], lang: str):
        key = (role, size, lang)
        if key not in self.open:
            page = self.pages(self.url, size=size)
            page.on("dialog", lambda dialog: dialog.accept())  # data-confirm asks first
            if PHONES[role]:
                sign_in(page, PHONES[role])
            if lang == "en":
                page.goto("/lang/en?next=/")
            self.pages.watch(page).clear()
            self.open[key] = page
        return self.open[key]

    def watch(self, page):
        return self.pages.watch(page)


@pytest.fixture(scope="module")
def phones(chromium, site):
    found = Phones(chromium, site["url"])
    yield found
    found.pages.close()


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if QUALITY:
        (SCREENSHOTS / "quality.json").write_text(
            json.dumps(QUALITY, ensure_ascii=False, indent=1, sort_keys=True))


# --- the pages ----------------------------------------------------------------------------

def submit(button: str, fill: dict | None = None) -> Callable:
    """A form sent by tapping its button (after filling `fill`): the answer to the POST."""

    def drive(page):
        for label, value in (fill or {}).items():
            page.get_by_label(label, exact=True).fill(value)
        with page.expect_navigation() as answer:
            page.get_by_role("button", name=button, exact=True).first.click()
        return answer.value

    return drive


def reset_code_for(name: str) -> Callable:
    def drive(page):
        item = page.locator(".org-member", has=page.get_by_role("heading", name=name, exact=True))
        with page.expect_navigation() as answer:
            item.get_by_role("button", name=re.compile("发重置码")).click()
        return answer.value

    return drive


@dataclass(frozen=True)
class Spec:
    name: str
    role: str
    url: str  # with {placeholders} from the world
    status: int = 200
    drive: Callable | None = field(default=None, compare=False)  # then a form's answer
    template: str | None = None  # Lighthouse scores this page for that template
    small: bool = False  # also at 360×640
    lang: str = "zh"


PAGES = [
    # visitors
    Spec("visitor-home", "visitor", "/", template="account/home.html"),
    Spec("login", "visitor", "/login", template="account/login.html", small=True),
    Spec("login-error", "visitor", "/login", 422, submit("登录"), small=True),
    Spec("register", "visitor", "/register", template="account/register.html"),
    Spec("register-error", "visitor", "/register", 422, submit("注册并登录")),
    Spec("reset", "visitor", "/reset", template="recovery/reset.html"),
    Spec("reset-error", "visitor", "/reset", 422, submit("设置新密码")),
    Spec("board", "visitor", "/b/{board}", template="board/board.html", small=True),
    Spec("board-closed", "visitor", "/b/{closed_board}", template="board/closed.html"),
    Spec("board-replaced", "visitor", "/b/{replaced_board}", 410),
    Spec("board-missing", "visitor", "/b/no-such-board", 404),
    Spec("poster", "visitor", "/b/{board}/poster", template="poster.html"),
    Spec("not-found", "visitor", "/no/such/page", 404),
    Spec("public-notice", "visitor", "/p/guanyuan", template="public/notice.html", small=True),
    Spec("public-notice-en", "visitor", "/p/guanyuan", lang="en"),
    Spec("public-notice-signed-in", "volunteer", "/p/guanyuan"),  # the same page: nothing personal
    Spec("public-poster", "visitor", "/p/guanyuan/poster", template="public/poster.html"),
    Spec("public-missing", "visitor", "/p/no-such-community", 404),
    # residents
    Spec("resident-home", "resident", "/", small=True),
    Spec("wish-form", "resident", "/b/{board}/wish", template="board/wish_form.html", small=True),
    Spec("wish-form-error", "resident", "/b/{board}/wish", 422, submit("提交心愿"), small=True),
    Spec("my-wishes", "resident", "/me/wishes", template="resident/my_wishes.html", small=True),
    Spec("wish-pending", "resident", "/wishes/{pending}"),
    Spec("wish-fulfilled", "resident", "/wishes/{fulfilled}", template="resident/wish.html",
         small=True),
    Spec("wish-confirm-error", "resident", "/wishes/{fulfilled}", 422, submit("确认并评价"),
         small=True),
    Spec("wish-closed", "resident", "/wishes/{closed}"),
    Spec("wish-rejected", "resident", "/wishes/{rejected}"),
    Spec("logout", "resident", "/logout", template="account/logout.html"),
    # volunteers; the scan page first: Lighthouse starts on it while its token is fresh
    Spec("scan", "volunteer", "/a/{activity_live}/checkin?t={checkin_token}",
         template="activities/scan.html", small=True),
    Spec("volunteer-home", "volunteer", "/"),
    Spec("volunteer-wishes", "volunteer", "/volunteer/wishes", template="volunteer/wishes.html",
         small=True),
    Spec("wish-open", "volunteer", "/wishes/{open}", small=True),
    Spec("wish-claimed", "volunteer", "/wishes/{claimed}", small=True),
    Spec("points", "volunteer", "/me/points", template="volunteer/points.html", small=True),
    Spec("leaderboard-week", "volunteer", "/leaderboard?period=week",
         template="volunteer/leaderboard.html"),
    Spec("leaderboard-month", "volunteer", "/leaderboard?period=month"),
    Spec("leaderboard-all", "volunteer", "/leaderboard?period=all", small=True),
    Spec("store", "volunteer", "/store", template="store/index.html", small=True),
    Spec("store-confirm", "volunteer", "/store/rewards/{reward}", template="store/confirm.html",
         small=True),
    Spec("redemptions", "volunteer", "/store/redemptions", template="store/redemptions.html"),
    Spec("redemption-awaiting", "volunteer", "/store/redemptions/{awaiting}",
         template="store/redemption.html", small=True),
    Spec("redemption-handed", "volunteer", "/store/redemptions/{handed}"),
    Spec("card", "volunteer", "/me/card", template="store/card.html", small=True),
    Spec("forbidden", "volunteer", "/organiser/review", 403),
    Spec("report-form", "volunteer", "/reports/new", template="reports/new.html", small=True),
    Spec("report-form-error", "volunteer", "/reports/new", 422, submit("提交上报"), small=True),
    Spec("my-reports", "volunteer", "/me/reports", template="reports/mine.html"),
    Spec("report-resolved", "volunteer", "/reports/{report}", template="reports/report.html"),
    Spec("report-pending", "volunteer", "/reports/{report_flagged}"),
    Spec("leaderboard-reports", "volunteer", "/leaderboard?period=all&source=report"),
    Spec("activities", "volunteer", "/activities", template="activities/index.html"),
    Spec("activity-upcoming", "volunteer", "/activities/{activity_upcoming}",
         template="activities/activity.html", small=True),
    Spec("activity-live", "volunteer", "/activities/{activity_live}"),
    Spec("activity-done", "volunteer", "/activities/{activity_done}"),
    Spec("checkin-code", "volunteer", "/activities/checkin", template="activities/code.html"),
    Spec("checkin-code-error", "volunteer", "/activities/checkin", 422, submit("签到")),
    Spec("certificate", "volunteer", "/me/service-hours", template="activities/certificate.html"),
    # organisers
    Spec("organiser-home", "organiser", "/", small=True),
    Spec("dashboard", "organiser", "/organiser/dashboard", template="organiser/dashboard.html",
         small=True),
    Spec("dashboard-bad-month", "organiser", "/organiser/dashboard?month=2026-13", 422),
    Spec("dashboard-forbidden", "volunteer", "/organiser/dashboard", 403),
    Spec("review", "organiser", "/organiser/review", template="organiser/review.html", small=True),
    Spec("dispatch", "organiser", "/organiser/dispatch", template="organiser/dispatch.html"),
    Spec("assign", "organiser", "/organiser/dispatch/{escalated}", template="organiser/assign.html",
         small=True),
    Spec("proxy", "organiser", "/organiser/proxy", template="organiser/proxy.html", small=True),
    Spec("wish-proxy", "organiser", "/wishes/{proxy}"),
    Spec("wish-organiser", "organiser", "/wishes/{proxy_fulfilled}"),
    Spec("boards", "organiser", "/organiser/boards", template="organiser/boards.html"),
    Spec("pickup", "organiser", "/organiser/pickup", template="organiser/pickup.html"),
    Spec("pickup-code", "organiser", "/organiser/pickup?code={pickup_code}", small=True),
    Spec("counter", "organiser", "/organiser/counter", template="organiser/counter.html"),
    Spec("counter-member", "organiser", "/organiser/counter?member_code={member_code}",
         small=True),
    Spec("counter-error", "organiser", "/organiser/counter?member_code={member_code}", 422,
         submit("兑换并打印小票"), small=True),
    Spec("receipt", "organiser", "/organiser/counter/receipts/{receipt}",
         template="organiser/receipt.html"),
    Spec("members", "organiser", "/organiser/members", template="organiser/members.html"),
    Spec("reset-code", "organiser", "/organiser/members", 200, reset_code_for("吴阿姨")),
    Spec("passbook", "organiser", "/organiser/passbook/{volunteer_id}",
         template="organiser/passbook.html"),
    Spec("report-queue", "organiser", "/organiser/reports", template="reports/queue.html",
         small=True),
    Spec("report-queue-error", "organiser", "/organiser/reports", 422, submit("受理"), small=True),
    Spec("report-queue-flagged", "organiser", "/organiser/reports?view=all&flagged=1"),
    Spec("report-organiser", "organiser", "/reports/{report}"),
    Spec("organiser-activities", "organiser", "/organiser/activities",
         template="activities/organiser_index.html"),
    Spec("activity-form", "organiser", "/organiser/activities/new", template="activities/form.html"),
    Spec("activity-form-error", "organiser", "/organiser/activities/new", 422, submit("发布活动")),
    Spec("activity-manage", "organiser", "/organiser/activities/{activity_live}",
         template="activities/manage.html"),
    Spec("activity-manage-upcoming", "organiser", "/organiser/activities/{activity_upcoming}"),
    Spec("activity-manage-done", "organiser", "/organiser/activities/{activity_done}"),
    Spec("checkin-screen", "organiser", "/organiser/activities/{activity_live}/checkin",
         template="activities/screen.html"),
    # the inbox (the world's people have notifications by then: their wishes moved on)
    Spec("inbox", "resident", "/me/notifications", template="account/inbox.html", small=True),
    Spec("inbox-settings", "resident", "/me/notifications/settings",
         template="account/notification_settings.html"),
    Spec("webhooks", "organiser", "/organiser/webhooks", template="organiser/webhooks.html",
         small=True),
    Spec("webhooks-error", "organiser", "/organiser/webhooks", 422, submit("添加"), small=True),
    Spec("webhook", "organiser", "/organiser/webhooks/{webhook}",
         template="organiser/webhook.html", small=True),
    Spec("webhook-error", "organiser", "/organiser/webhooks/{webhook}", 422,
         submit("保存修改", {"接收地址": "ftp://example.org/"})),
    # in English
    Spec("en-login", "visitor", "/login", lang="en"),
    Spec("en-board", "visitor", "/b/{board}", lang="en"),
    Spec("en-home", "organiser", "/", lang="en"),
    Spec("en-dashboard", "organiser", "/organiser/dashboard", lang="en"),
    Spec("en-review", "organiser", "/organiser/review", lang="en"),
    Spec("en-counter-member", "organiser", "/organiser/counter?member_code={member_code}",
         lang="en"),
    Spec("en-points", "volunteer", "/me/points", lang="en"),
    Spec("en-my-reports", "volunteer", "/me/reports", lang="en"),
    Spec("en-activity-manage", "organiser", "/organiser/activities/{activity_live}", lang="en"),
    Spec("en-inbox", "resident", "/me/notifications", lang="en"),
]

CASES = [pytest.param(spec, PHONE, id=f"{spec.name}@375") for spec in PAGES] + [
    pytest.param(spec, SMALL_PHONE, id=f"{spec.name}@360") for spec in PAGES if spec.small]


# What the page itself measures: sideways scrolling, body type, tap targets, labels.
MEASURE = r"""(minTap) => {
  const shown = (el) => {
    // checkVisibility: false inside a closed <details> (content-visibility: hidden) too.
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return el.checkVisibility({visibilityProperty: true}) && r.width >= 2 && r.height >= 2
      && s.visibility !== "hidden" && s.display !== "none"
      && r.right > 0 && r.bottom > 0 && r.left < document.documentElement.scrollWidth;
  };
  const describe = (el) => {
    const r = el.getBoundingClientRect();
    const text = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim();
    return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${el.className ?
      "." + String(el.className).trim().split(/\s+/).join(".") : ""} "${text.slice(0, 30)}" `
      + `${Math.round(r.width)}×${Math.round(r.height)}`;
  };
  const radio = (el) => el && el.tagName === "INPUT" && ["radio", "checkbox"].includes(el.type);
  // A link inside a sentence: inline, with words (not just " · " between links) around it
  // in the same block.
  const inText = (el) => {
    if (getComputedStyle(el).display !== "inline") return false;
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
    if (!block) return false;
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    let words = "";
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest("a, button")) words += node.nodeValue;
    }
    return words.replace(/[\s\p{P}\p{S}]/gu, "").length > 0;
  };
  const small = [], inline = [];
  for (const el of document.querySelectorAll(
      "a[href], button, input:not([type=hidden]), select, textarea, summary, label")) {
    if (el.tagName === "LABEL" && !radio(el.control)) continue;  // a field's label is no target
    if (radio(el) && [...el.labels].some((l) => l.getBoundingClientRect().height >= minTap)) continue;
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.height >= minTap - 0.5) continue;
    if ((el.tagName === "A" || el.classList.contains("link-button")) && inText(el)) {
      inline.push(describe(el));
      continue;
    }
    small.push(describe(el));
  }
  const unlabelled = [];
  for (const el of document.querySelectorAll(
      "input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea")) {
    const folded = el.closest("details:not([open])") && !el.closest("summary");
    if (folded || (!shown(el) && !radio(el))) continue;  // a radio may be drawn by its label
    const labels = [...(el.labels || [])].filter((l) => shown(l) && l.innerText.trim());
    if (!labels.length) unlabelled.push(describe(el));
  }
  const images = new Set(["img", "image", "media"]);
  return {
    scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
    fontSize: getComputedStyle(document.body).fontSize,
    small, unlabelled, inline,
    resources: performance.getEntriesByType("resource")
      .filter((e) => !images.has(e.initiatorType) && !/\.(png|svg|jpe?g|gif|webp|ico)(\?|$)/.test(e.name))
      .map((e) => e.name),
  };
}"""

_SIZES: dict[str, int] = {}  # static file URL → bytes (fetched once)


def _resource_bytes(page, url: str) -> int:
    if url not in _SIZES:
        answer = page.context.request.get(url)
        _SIZES[url] = len(answer.body())
    return _SIZES[url]


@pytest.mark.parametrize(("spec", "size"), CASES)
def test_page_quality(site, phones, spec: Spec, size):
    page = phones.get(spec.role, size, spec.lang)
    watch = phones.watch(page)
    watch.clear()
    url = spec.url.format(**site)
    response = page.goto(url)
    if spec.drive:
        assert response.status == 200, f"{url} answered {response.status}"
        response = spec.drive(page)
    page.wait_for_load_state("load")

    failures = []
    if response.status != spec.status:
        failures.append(f"status {response.status}, expected {spec.status}")
    csp = response.headers.get("content-security-policy", "")
    if "default-src 'self'" not in csp or "unsafe-inline" in csp:
        failures.append(f"Content-Security-Policy missing or lax: {csp!r}")
    violations = axe_violations(page)
    if violations:
        failures.append(f"axe: {len(violations)} violation(s)\n" + format_violations(violations))
    measured = page.evaluate(MEASURE, MIN_TAP)
    if measured["scrollWidth"] > measured["innerWidth"]:
        failures.append(f"scrolls sideways: {measured['scrollWidth']} px in a "
                        f"{measured['innerWidth']} px screen")
    if measured["fontSize"] != "18px":
        failures.append(f"body text is {measured['fontSize']}, not 18px")
    if measured["small"]:
        failures.append(f"tap targets under {MIN_TAP} px: " + "; ".join(measured["small"]))
    if measured["unlabelled"]:
        failures.append("inputs without a visible label: " + "; ".join(measured["unlabelled"]))
    html = len(response.body())
    weight = html + sum(_resource_bytes(page, u) for u in dict.fromkeys(measured["resources"])
                        if urlsplit(u).netloc == urlsplit(site["url"]).netloc)
    if weight > MAX_BYTES:
        failures.append(f"{weight} bytes of HTML, CSS and JS (at most {MAX_BYTES})")
    if response.status >= 400:  # chromium logs the page's own (expected) status as an error
        said = f"the server responded with a status of {response.status} "
        watch.console_errors[:] = [e for e in watch.console_errors
                                   if not (said in e and e.endswith(f"({response.url})"))]
    failures += watch.problems()
    watch.clear()
    if SCREENSHOT_EACH:
        screenshot(page, f"quality-{spec.name}@{size[0]}")

    QUALITY[f"{spec.name}@{size[0]}"] = {
        "url": urlsplit(page.url).path, "status": response.status, "axe": len(violations),
        "bytes": weight, "html_bytes": html, "size": f"{size[0]}x{size[1]}",
        "links_in_text": measured["inline"]}
    if failures:
        pytest.fail(f"{spec.name} ({url}) at {size[0]}×{size[1]}:\n"
                    + "\n".join(f"- {f}" for f in failures), pytrace=False)


# --- Lighthouse: one page of each template -------------------------------------------------

TEMPLATED = [spec for spec in PAGES if spec.template]
GROUPS = {role: [spec for spec in TEMPLATED if spec.role == role]
          for role in ("visitor", "resident", "volunteer", "organiser")}


def test_every_full_page_template_is_scored():
    """Each template rendering a whole 200 page has a page in the Lighthouse list."""
    templates = ROOT / "app" / "templates"
    full = {str(p.relative_to(templates)) for p in templates.rglob("*.html")
            if p.parts[-2] != "components"}
    not_scored = {
        "base.html",  # extended by the others
        "docs.html",  # /api/v1/docs: its own test (test_docs_browser.py)
        "resident/actions.html",  # macros of resident/wish.html
        "errors/page.html", "board/missing.html", "board/replaced.html",  # 403/404/410: axe only
        "organiser/reset_code.html",  # the answer to a POST: axe only (Lighthouse only GETs)
        "activities/_parts.html",  # macros of the activity pages
        "public/_layout.html",  # the frame of the public pages (no login state, cacheable)
        "organiser/_webhook_form.html",  # the fields shared by the webhook pages' two forms
    }
    assert full - not_scored == {spec.template for spec in TEMPLATED}


@pytest.mark.slow
@pytest.mark.parametrize("role", list(GROUPS))
def test_lighthouse(site, phones, role):
    specs = GROUPS[role]
    page = phones.get(role, PHONE, "zh")

    # The phone's cookies are read here: Playwright's sync API stays on this thread.
    jobs = [(spec, site["url"] + spec.url.format(**site)) for spec in specs]
    jobs = [(spec, url, cookie_header(page.context, url) or None) for spec, url in jobs]

    def score(job) -> dict:
        _spec, url, headers = job
        return lighthouse(url, headers=headers)

    with ThreadPoolExecutor(max_workers=LIGHTHOUSE_PARALLEL) as pool:
        results = list(pool.map(score, jobs))
    below = []
    for (spec, url, _headers), result in zip(jobs, results, strict=True):
        LIGHTHOUSE_RESULTS[spec.template] = {"page": spec.name, "url": spec.url, **result}
        if result["final_url"] != url:  # e.g. sent to /login: not the page meant
            below.append(f"- {spec.template}: asked for {url}, scored {result['final_url']}")
            continue
        low = [f"{name} {result[name]}" for name in ("accessibility", "best-practices")
               if result[name] is None or result[name] < LIGHTHOUSE_MIN]
        if low:
            below.append(f"- {spec.template} ({spec.url}): {', '.join(low)}; "
                         f"failing audits: {', '.join(result['failing']) or '-'}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "lighthouse.json").write_text(
        json.dumps(LIGHTHOUSE_RESULTS, ensure_ascii=False, indent=1, sort_keys=True))
    if below:
        pytest.fail(f"Lighthouse: accessibility or best practices under {LIGHTHOUSE_MIN}, or not "
                    "the page meant:\n" + "\n".join(below), pytrace=False)

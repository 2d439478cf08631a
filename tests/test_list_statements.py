"""Every list endpoint issues as many SQL statements for a page of 100 as for a page of 5.

The endpoints are found in our own OpenAPI document (every GET that takes `per_page`), so a list
added later is covered without touching this file — except that it fails until RECIPES says how
to call the new list. Each list is seeded with more than 100 rows (varied states, several
people), so a page of 100 really holds 100 items; the statements of one request are counted with
a `before_cursor_execute` listener on the engine. An N+1 (a lazy load or a query per item) makes
the big page issue more statements than the small one, and the failure prints both counts and
the statements of the bigger page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db

API = "/api/v1"
ROWS = 105  # items seeded per list: more than the largest page
SMALL = 5


@dataclass
class Seeded:
    """Who and what the recipes name: user objects by role, ids by what they are."""

    users: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)


# path → (who asks, path parameters, query) for one page of that list, every item of which the
# seed below made more than 100 of. A new list endpoint fails the coverage test until it is here.
RECIPES = {
    "/api/v1/communities": lambda s: ("admin", {}, {}),
    "/api/v1/communities/{cid}/members": lambda s: ("organiser", {"cid": s.ids["cid"]}, {}),
    "/api/v1/communities/{cid}/teams": lambda s: ("volunteer", {"cid": s.ids["cid"]}, {}),
    "/api/v1/me/ledger": lambda s: ("volunteer", {}, {"community_id": s.ids["cid"]}),
    "/api/v1/communities/{cid}/accounts/{uid}/ledger": lambda s: (
        "organiser", {"cid": s.ids["cid"], "uid": s.users["volunteer"].id}, {}),
    "/api/v1/communities/{cid}/audit-log": lambda s: ("organiser", {"cid": s.ids["cid"]}, {}),
    "/api/v1/communities/{cid}/boards": lambda s: ("organiser", {"cid": s.ids["cid"]}, {}),
    "/api/v1/wishes": lambda s: (
        "organiser", {}, {"community_id": s.ids["cid"], "board_id": s.ids["board"]}),
    "/api/v1/communities/{cid}/claim-lapses": lambda s: ("organiser", {"cid": s.ids["cid"]},
                                                         {}),
    "/api/v1/communities/{cid}/rewards": lambda s: ("volunteer", {"cid": s.ids["cid"]}, {}),
    "/api/v1/redemptions": lambda s: ("organiser", {}, {"community_id": s.ids["cid"]}),
    "/api/v1/communities/{cid}/reports": lambda s: ("organiser", {"cid": s.ids["cid"]}, {}),
    "/api/v1/communities/{cid}/activities": lambda s: ("volunteer", {"cid": s.ids["cid"]}, {}),
    "/api/v1/activities/{activity_id}/attendance": lambda s: (
        "organiser", {"activity_id": s.ids["crowded_activity"]}, {}),
    "/api/v1/me/activities": lambda s: ("volunteer", {}, {"community_id": s.ids["cid"]}),
    "/api/v1/me/notifications": lambda s: ("volunteer", {}, {}),
    "/api/v1/communities/{cid}/webhooks": lambda s: ("organiser", {"cid": s.ids["cid"]}, {}),
    "/api/v1/webhooks/{wid}/deliveries": lambda s: ("organiser", {"wid": s.ids["webhook"]},
                                                    {}),
}

# The same lists seen by someone else, where what they are shown is built differently.
EXTRA_VIEWS = {
    "/api/v1/wishes": [lambda s: ("volunteer", {}, {"community_id": s.ids["cid"]})],
}


def list_endpoints(client) -> dict[str, int]:
    """path → the largest `per_page` it allows, for every GET in the OpenAPI document that pages."""
    document = client.get(f"{API}/openapi.json").get_json()
    found = {}
    for path, operations in document["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        parameters = [*operations.get("parameters", []), *get.get("parameters", [])]
        for parameter in parameters:
            if parameter["name"] == "per_page" and parameter["in"] == "query":
                found[path] = min(100, parameter.get("schema", {}).get("maximum", 100))
    return found


def test_every_discovered_list_endpoint_has_a_recipe(client):
    discovered = set(list_endpoints(client))
    assert discovered, "the OpenAPI document lists no endpoint with per_page"
    assert discovered - set(RECIPES) == set(), "list endpoints without a recipe in RECIPES"
    assert set(RECIPES) - discovered == set(), "RECIPES names endpoints the API no longer has"


# --- seeding ------------------------------------------------------------------------------

def _seed(app, factory, world) -> Seeded:
    """More than 100 of everything a list shows, in the community of `world`, through services."""
    from app.activities import service as activities
    from app.activities.models import SIGNED_UP, SignUp
    from app.auth.models import User
    from app.communities import service as communities
    from app.communities.models import Community, Membership, Role, TeamMember, VolunteerProfile
    from app.db import write_transaction
    from app.ledger import service as ledger
    from app.notifications.models import Webhook
    from app.reports import service as reports
    from app.store import service as store
    from app.wishes import service as wishes
    from app.wishes.models import Wish

    seeded = Seeded(users={"admin": world.admin, "organiser": world.organiser,
                           "volunteer": world.volunteer, "resident": world.resident})
    cid = world.community.id
    seeded.ids["cid"] = cid
    now = datetime.now(UTC)
    with app.test_request_context(), write_transaction(db.session):
        session = db.session
        # Communities the admin sees, and the people of ours: volunteers (some with a
        # profile) and residents who post wishes and file reports.
        session.add_all(Community(name=f"社区{i}", code=f"c{i:03d}") for i in range(ROWS))
        people = [User(phone=str(13900000000 + i), display_name=f"志愿者{i}",
                       password_hash=factory.password_hash) for i in range(ROWS)]
        residents = [User(phone=str(13600000000 + i), display_name=f"居民{i}",
                          password_hash=factory.password_hash) for i in range(10)]
        session.add_all(people + residents)
        session.flush()
        session.add_all(Membership(community_id=cid, user_id=u.id, role=Role.VOLUNTEER.value)
                        for u in people)
        session.add_all(Membership(community_id=cid, user_id=u.id, role=Role.RESIDENT.value)
                        for u in residents)
        session.add_all(VolunteerProfile(user_id=u.id, skills=["repair"], tags=["党员"])
                        for u in people[::3])
        session.flush()
        organiser = session.get(User, world.organiser.id)
        volunteer = session.get(User, world.volunteer.id)
        community = session.get(Community, cid)

        # Teams, each led by one volunteer with two more members.
        for i in range(ROWS):
            team = communities.create_team(community, f"服务队{i}", description="测试",
                                           leader_id=people[i].id)
            for other in (people[(i + 1) % ROWS], people[(i + 2) % ROWS]):
                team.members.append(TeamMember(user_id=other.id, community_id=cid))
        session.flush()

        # A webhook subscribed before anything happens collects a delivery per event.
        hook = Webhook(community_id=cid, url="https://example.invalid/hook", format="json",
                       name="json", events=["wish.posted", "report.filed",
                                            "redemption.created"], created_by_id=organiser.id)
        session.add(hook)
        session.flush()
        seeded.ids["webhook"] = hook.id

        # Points: adjustments for the volunteer (ledger, audit log, inbox), and for everyone
        # who redeems below.
        for i in range(ROWS):
            ledger.adjust(cid, volunteer.id, 50 + i, f"测试发放{i}", organiser.id)
        for person in people[:20] + residents:
            ledger.adjust(cid, person.id, 500, "测试发放", organiser.id)

        # Boards; most wishes go on the first.
        boards = [wishes.create_board(cid, f"公示栏{i}", location=f"{i} 栋") for i in range(ROWS)]
        seeded.ids["board"] = boards[0].id

        # Rewards and redemptions of several people, some handed over or cancelled.
        rewards = [store.create_reward(cid, {"name": f"奖品{i}", "kind": "goods", "cost": 1,
                                             "stock": 1000}) for i in range(ROWS)]
        redeemers = [volunteer, *people[:20], *residents]
        for i in range(ROWS):
            redemption = store.redeem(rewards[i % 7].id, redeemers[i % len(redeemers)].id, 1,
                                      organiser.id)
            if i % 5 == 1:
                store.fulfil(redemption.id, redemption.pickup_code, organiser.id)
            elif i % 5 == 2:
                store.cancel(redemption.id, organiser.id, reason="测试取消")

        # Wishes in every state with several claimants; each claim first lapses once, so the
        # community's claim-lapse list fills too.
        states = ["pending", "open", "claimed", "fulfilled", "closed", "rejected", "cancelled"]
        for i in range(ROWS + 15):
            owner = residents[i % len(residents)]
            wish = wishes.post_wish(boards[0] if i < ROWS + 5 else boards[1], owner, {
                "title": f"心愿{i}", "description": "想请人帮忙", "category": "repair",
                "contact_phone": "13812345678", "address": f"{i} 号"})
            state = states[i % len(states)]
            if state == "pending":
                continue
            if state == "rejected":
                wishes.act(wish.id, "reject", organiser, reason="不属于微心愿范围")
                continue
            if state == "cancelled":
                wishes.act(wish.id, "cancel", owner, reason="已经解决了")
                continue
            wishes.act(wish.id, "approve", organiser, level=1 + i % 3)
            late = people[(i + 7) % ROWS]
            wishes.act(wish.id, "claim", late)
            session.execute(sa.update(Wish).where(Wish.id == wish.id)
                            .values(fulfil_due_at=now - timedelta(hours=1)))
            assert wishes.lapse(wish.id, now)
            if state == "open":
                continue
            claimer = people[i % ROWS]
            wishes.act(wish.id, "claim", claimer)
            if state == "claimed":
                continue
            wishes.act(wish.id, "fulfil", claimer, note="已上门")
            if state == "closed":
                wishes.act(wish.id, "confirm", owner, rating=4 + i % 2, comment="很满意")
        for i in range(ROWS):  # more lapses: claims on open wishes of the second board
            wish = wishes.post_wish(boards[2], residents[0], {
                "title": f"限时心愿{i}", "description": "想请人帮忙", "category": "errands",
                "contact_phone": "13812345678", "address": "1 号"})
            wishes.act(wish.id, "approve", organiser, level=1)
            wishes.act(wish.id, "claim", people[i])
            session.execute(sa.update(Wish).where(Wish.id == wish.id)
                            .values(fulfil_due_at=now - timedelta(hours=1)))
            assert wishes.lapse(wish.id, now)

        # Reports in several states.
        for i in range(ROWS):
            reporter = residents[i % len(residents)] if i % 2 else people[i]
            report = reports.file_report(cid, reporter, {
                "category": "fire_lane", "description": "消防通道被堵", "location": f"{i} 栋东侧"})
            match i % 4:
                case 1:
                    reports.act(report.id, "accept", organiser, level=1)
                case 2:
                    reports.act(report.id, "reject", organiser, reason="不属实")
                case 3:
                    reports.act(report.id, "accept", organiser, level=2)
                    reports.act(report.id, "assign", organiser, to="物业")

        # Activities: the volunteer signs up to each; one of them is signed up by everyone.
        starts = now + timedelta(days=3)
        created = [activities.create(cid, {
            "title": f"活动{i}", "description": "陪老人聊天", "place": "敬老院",
            "starts_at": starts + timedelta(hours=i), "ends_at": starts + timedelta(hours=i + 2),
            "capacity": ROWS + 10, "level": 1 + i % 3, "half_hours": 4}, organiser.id)
            for i in range(ROWS)]
        # (rows made directly: the sign-up service checks the signed-in user of a request)
        signups = [(activity, volunteer) for activity in created]
        signups += [(created[0], person) for person in people]
        session.add_all(SignUp(community_id=cid, activity_id=activity.id, user_id=person.id,
                               status=SIGNED_UP, created_at=now) for activity, person in signups)
        for activity in created:
            activity.signed_up = 1 + (ROWS if activity is created[0] else 0)
        seeded.ids["crowded_activity"] = created[0].id

        # More webhooks, made after the events so they hold no deliveries.
        session.add_all(Webhook(community_id=cid, url=f"https://example.invalid/{i}",
                                format="wecom" if i % 2 else "json", name=f"群{i}",
                                events=["wish.posted"], created_by_id=organiser.id)
                        for i in range(ROWS))
    return seeded


# --- counting -----------------------------------------------------------------------------

class StatementLog:
    """The SQL statements the engine sends while `listening` is set."""

    def __init__(self):
        self.statements: list[str] = []
        self.listening = False

    def __call__(self, _conn, _cursor, statement, _parameters, _context, _executemany):
        if self.listening:
            self.statements.append(statement)

    def run(self, call):
        self.statements, self.listening = [], True
        try:
            response = call()
        finally:
            self.listening = False
        return response, self.statements


def _url(path: str, params: dict, query: dict, per_page: int) -> str:
    filled = re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]), path)
    arguments = "&".join(f"{k}={v}" for k, v in {**query, "per_page": per_page}.items())
    return f"{filled}?{arguments}"


def test_list_statements_do_not_grow_with_the_page(app, client, factory, world):
    endpoints = list_endpoints(client)
    missing = set(endpoints) - set(RECIPES)
    assert not missing, f"list endpoints without a recipe: {sorted(missing)}"
    seeded = _seed(app, factory, world)
    headers = {role: factory.headers(user) for role, user in seeded.users.items()}
    log = StatementLog()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", log)
    problems, table = [], []
    try:
        for path, largest in sorted(endpoints.items()):
            for recipe in [RECIPES[path], *EXTRA_VIEWS.get(path, [])]:
                role, params, query = recipe(seeded)
                counts, statements = {}, {}
                client.get(_url(path, params, query, SMALL), headers=headers[role])  # warm up
                for per_page in (SMALL, largest):
                    url = _url(path, params, query, per_page)
                    response, sent = log.run(
                        lambda u=url, h=headers[role]: client.get(u, headers=h))
                    body = response.get_json()
                    if response.status_code != 200:
                        problems.append(f"{url} as {role}: {response.status_code} "
                                        f"{response.get_data(as_text=True)[:300]}")
                        break
                    if len(body["items"]) != per_page:
                        problems.append(f"{url} as {role}: {len(body['items'])} items, not "
                                        f"{per_page} (seed more)")
                        break
                    counts[per_page], statements[per_page] = len(sent), sent
                else:
                    table.append(f"{path} as {role}: {counts[SMALL]} / {counts[largest]}")
                    if counts[SMALL] != counts[largest]:
                        listing = "\n    ".join(statements[largest])
                        problems.append(
                            f"{path} as {role}: {counts[SMALL]} statements at per_page={SMALL}, "
                            f"{counts[largest]} at per_page={largest}; those of the bigger "
                            f"page:\n    {listing}")
    finally:
        sa.event.remove(engine, "before_cursor_execute", log)
    print("statements at per_page=5 / 100:\n" + "\n".join(table))
    assert not problems, "\n\n".join(problems)


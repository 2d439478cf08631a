"""Communities, members and their roles (issue #2).

Every refusal is checked three ways: the status, the JSON error envelope, and that the database
holds exactly what it held before the request.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from app.communities.models import Community, Membership, Team, TeamMember, VolunteerProfile
from app.extensions import db
from tests.helpers import assert_error, assert_field_error, call
from tests.helpers import refuse_each as refuse_each_case

API = "/api/v1"
MISSING = 999_999
# Who may not, and what they get: a member without the role 403, anyone who cannot see the
# community 404 (exactly like a missing id), no token 401.
REFUSED_CALLERS = {
    "resident": (403, "role_required"),
    "volunteer": (403, "role_required"),
    "other_community": (404, "not_found"),  # its organiser and its volunteer
    "outsider": (404, "not_found"),
    "anonymous": (401, "unauthorized"),
}


# --- helpers ------------------------------------------------------------------------------

def snapshot(app) -> dict:
    """Every row this domain owns, in a comparable form."""
    with app.app_context():
        def rows(*columns):
            return sorted(tuple(r) for r in db.session.execute(sa.select(*columns)).all())

        return {
            "communities": rows(Community.id, Community.name, Community.code, Community.street,
                                Community.district),
            "memberships": rows(Membership.community_id, Membership.user_id, Membership.role),
            "teams": rows(Team.id, Team.community_id, Team.name, Team.description, Team.leader_id),
            "team_members": rows(TeamMember.team_id, TeamMember.user_id, TeamMember.community_id),
            "profiles": [
                (p.user_id, p.party_member, p.status, list(p.skills), list(p.tags))
                for p in db.session.scalars(
                    sa.select(VolunteerProfile).order_by(VolunteerProfile.user_id))
            ],
        }


def refuse_each(client, app, method: str, url: str, headers: dict, cases) -> None:
    refuse_each_case(client, method, url, headers, cases, lambda: snapshot(app))


def role_of(app, community_id: int, user_id: int) -> str | None:
    with app.app_context():
        return db.session.scalar(sa.select(Membership.role).where(
            Membership.community_id == community_id, Membership.user_id == user_id))


def organisers(app, community_id: int) -> list[int]:
    with app.app_context():
        return sorted(db.session.scalars(sa.select(Membership.user_id).where(
            Membership.community_id == community_id, Membership.role == "organiser")))


# --- creating and seeing communities ------------------------------------------------------

def community_body(**overrides) -> dict:
    return {"name": "芙蓉社区二期", "code": "furong-2", "street": "幸福街道", "district": "镜湖区",
            **overrides}


def test_admin_creates_a_community(world, client, factory, app):
    response = client.post(f"{API}/communities", json=community_body(),
                           headers=factory.headers(world.admin))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body["id"], int)
    assert {k: body[k] for k in ("name", "code", "street", "district")} == {
        "name": "芙蓉社区二期", "code": "furong-2", "street": "幸福街道", "district": "镜湖区"}
    assert body["created_at"].endswith("+08:00")
    with app.app_context():
        stored = db.session.get(Community, body["id"])
        assert (stored.name, stored.code, stored.street, stored.district) == (
            "芙蓉社区二期", "furong-2", "幸福街道", "镜湖区")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Membership).where(
            Membership.community_id == body["id"])) == 0
    # The admin sees it; nobody else does.
    assert client.get(f"{API}/communities/{body['id']}",
                      headers=factory.headers(world.admin)).status_code == 200
    assert_error(client.get(f"{API}/communities/{body['id']}",
                            headers=factory.headers(world.organiser)), 404, "not_found")


def test_street_and_district_are_optional(world, client, factory):
    response = client.post(f"{API}/communities", json={"name": "小村", "code": "xiaocun"},
                           headers=factory.headers(world.admin))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert (response.json["street"], response.json["district"]) == ("", "")


def test_admin_creates_a_community_with_its_first_organiser(world, client, factory, app):
    first = factory.user("张主任", phone="13912345678")
    response = client.post(f"{API}/communities",
                           json=community_body(organiser_phone="13912345678"),
                           headers=factory.headers(world.admin))
    assert response.status_code == 201, response.get_data(as_text=True)
    cid = response.json["id"]
    assert role_of(app, cid, first.id) == "organiser"
    me = client.get(f"{API}/me", headers=factory.headers(first)).get_json()
    assert {"community_id": cid, "role": "organiser"} in me["memberships"]
    # The new organiser can run the community at once.
    members = client.get(f"{API}/communities/{cid}/members", headers=factory.headers(first))
    assert members.status_code == 200
    assert [m["user_id"] for m in members.json["items"]] == [first.id]


def test_unregistered_first_organiser_creates_nothing(world, client, factory, app):
    before = snapshot(app)
    response = client.post(f"{API}/communities",
                           json=community_body(organiser_phone="13900000001"),
                           headers=factory.headers(world.admin))
    body = assert_error(response, 404, "user_not_registered")
    assert "organiser_phone" in body.get("errors", {}) or "phone" in body.get("errors", {})
    assert snapshot(app) == before


def test_first_organiser_phone_must_be_a_mobile_number(world, client, factory, app):
    factory.user("已注册", phone="13912345678")
    phones = ["1391234567", "23912345678", "139123456789", "13９12345678", "1391234567٨",
              "+8613912345678", "139 1234 5678", "139123456\n78", "abc", 13912345678, "", True]
    refuse_each(client, app, "POST", f"{API}/communities", factory.headers(world.admin),
                [(community_body(organiser_phone=phone), "organiser_phone") for phone in phones])


def test_only_an_admin_creates_communities(world, client, factory, app):
    before = snapshot(app)
    for who in ("organiser", "other_organiser", "volunteer", "resident", "outsider"):
        response = client.post(f"{API}/communities", json=community_body(),
                               headers=factory.headers(getattr(world, who)))
        assert_error(response, 403, "admin_required", who)
        # Even a body that would fail validation is refused for the role first.
        response = client.post(f"{API}/communities", json={"code": "X"},
                               headers=factory.headers(getattr(world, who)))
        assert_error(response, 403, "admin_required", who)
    assert snapshot(app) == before


def test_creating_a_community_needs_a_token(world, client, app):
    before = snapshot(app)
    assert_error(client.post(f"{API}/communities", json=community_body()), 401, "unauthorized")
    assert_error(client.post(f"{API}/communities", json=community_body(),
                             headers={"Authorization": "Bearer not-a-jwt"}), 401)
    assert snapshot(app) == before


def test_duplicate_code_is_a_conflict(world, client, factory, app):
    before = snapshot(app)
    response = client.post(f"{API}/communities", json=community_body(code="guanyuan"),
                           headers=factory.headers(world.admin))
    assert_error(response, 409, "community_code_taken")
    assert snapshot(app) == before


INVALID_CODES = ["GuanYuan", "guan yuan", "g", "a" * 33, "管园", "guan_yuan", "-guanyuan",
                 " guanyuan", "guanyuan ", "guanyuan\n", "\nguanyuan", "ｇｕａｎ", "guan.yuan",
                 "guan/yuan", "", None, 12, ["guan"], True]


def test_invalid_codes_are_refused(world, client, factory, app):
    refuse_each(client, app, "POST", f"{API}/communities", factory.headers(world.admin),
                [(community_body(code=code), "code") for code in INVALID_CODES])


def test_valid_codes_are_accepted(world, client, factory, app):
    headers = factory.headers(world.admin)
    for code in ["ab", "a" * 32, "0-9", "guan-yuan-2", "2024", "a-"]:
        response = client.post(f"{API}/communities", json=community_body(code=code), headers=headers)
        assert response.status_code == 201, (code, response.get_data(as_text=True))
        assert response.json["code"] == code
        with app.app_context():
            assert db.session.get(Community, response.json["id"]).code == code


def test_required_community_fields(world, client, factory, app):
    cases = []
    for field in ("name", "code"):
        body = community_body()
        del body[field]
        cases.append((body, field))
    refuse_each(client, app, "POST", f"{API}/communities", factory.headers(world.admin), cases)


BAD_COMMUNITY_TEXT = [
    ("name", ""), ("name", "   "), ("name", "\t\n"), ("name", "\u3000"), ("name", "管" * 65),
    ("name", "a" * 65), ("name", 5), ("name", None), ("name", ["管园村"]), ("name", {"zh": "管园村"}),
    ("name", "管园\x00村"), ("name", "管\x07园"), ("name", "管园\n村"), ("name", "\u202e管园村"),
    ("name", "管园\u200b村"), ("name", "\x1b[31m管园村"), ("street", "街" * 65), ("street", None),
    ("street", 3), ("district", "区" * 65), ("district", "镜湖\r区"), ("district", False),
]


def test_bad_community_text_is_refused(world, client, factory, app):
    refuse_each(client, app, "POST", f"{API}/communities", factory.headers(world.admin),
                [(community_body(**{field: value}), field) for field, value in BAD_COMMUNITY_TEXT])


def test_unknown_community_fields_are_refused(world, client, factory, app):
    fields = ["id", "community_id", "is_admin", "created_at", "organiser_id", "role", "Name"]
    refuse_each(client, app, "POST", f"{API}/communities", factory.headers(world.admin),
                [(community_body(**{field: 1}), field) for field in fields])


ROUND_TRIP_NAMES = [
    "管" * 64, "a" * 64, "“红色足印”社区🏡", "Robert'); DROP TABLE communities;--", "x' OR '1'='1",
    "👨‍👩‍👧 家庭社区", "Ünïcødé ñame", "社区 % _ \\ 村", "𠀀𠀁社区",
]


def test_community_names_round_trip(world, client, factory, app):
    headers = factory.headers(world.admin)
    for i, name in enumerate(ROUND_TRIP_NAMES):
        response = client.post(f"{API}/communities", json=community_body(name=name, code=f"rt-{i}"),
                               headers=headers)
        assert response.status_code == 201, (name, response.get_data(as_text=True))
        assert response.json["name"] == name
        cid = response.json["id"]
        assert client.get(f"{API}/communities/{cid}", headers=headers).json["name"] == name
        with app.app_context():
            assert db.session.get(Community, cid).name == name
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Community)) == \
            2 + len(ROUND_TRIP_NAMES)


def test_names_are_trimmed(world, client, factory):
    response = client.post(f"{API}/communities", json=community_body(name="  管园新村 "),
                           headers=factory.headers(world.admin))
    assert response.status_code == 201
    assert response.json["name"] == "管园新村"


def test_bad_bodies(world, client, factory, app):
    headers = factory.headers(world.admin)
    before = snapshot(app)
    assert_error(client.post(f"{API}/communities", data='{"name": "x",',
                             content_type="application/json", headers=headers), 400)
    assert_error(client.post(f"{API}/communities", json=[community_body()], headers=headers), 422)
    assert_error(client.post(f"{API}/communities", json="furong", headers=headers), 422)
    assert_error(client.post(f"{API}/communities", headers=headers), 422)
    assert snapshot(app) == before


# --- listing and reading communities ------------------------------------------------------

def test_list_shows_only_my_communities(world, client, factory):
    def codes(user):
        response = client.get(f"{API}/communities", headers=factory.headers(user))
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == {"items", "page", "per_page", "total"}
        assert body["total"] == len(body["items"])
        return [c["code"] for c in body["items"]]

    both = factory.member(world.other, factory.user("两边都有"), "resident")
    factory.member(world.community, both, "volunteer")
    assert codes(world.organiser) == ["guanyuan"]
    assert codes(world.volunteer) == ["guanyuan"]
    assert codes(world.resident) == ["guanyuan"]
    assert codes(world.other_organiser) == ["furong"]
    assert codes(world.outsider) == []
    assert codes(both) == ["guanyuan", "furong"]
    assert codes(world.admin) == ["guanyuan", "furong"]


def test_list_is_paginated(world, client, factory):
    for i in range(23):
        factory.community(f"c{i:02d}", f"社区{i}")
    headers = factory.headers(world.admin)
    seen = []
    for page in (1, 2, 3):
        body = client.get(f"{API}/communities?page={page}&per_page=10", headers=headers).get_json()
        assert (body["page"], body["per_page"], body["total"]) == (page, 10, 25)
        assert len(body["items"]) == (10 if page < 3 else 5)
        seen += [c["id"] for c in body["items"]]
    assert len(set(seen)) == 25 and seen == sorted(seen)
    beyond = client.get(f"{API}/communities?page=4&per_page=10", headers=headers).get_json()
    assert beyond["items"] == [] and beyond["total"] == 25
    default = client.get(f"{API}/communities", headers=headers).get_json()
    assert (default["page"], default["per_page"], len(default["items"])) == (1, 20, 20)
    most = client.get(f"{API}/communities?per_page=100", headers=headers).get_json()
    assert (most["per_page"], len(most["items"])) == (100, 25)


def test_bad_paging_is_refused(world, client, factory):
    headers = factory.headers(world.admin)
    for query in ["per_page=101", "per_page=1000000", "per_page=0", "per_page=-1", "page=0",
                  "page=-3", "per_page=abc", "page=1.5", "per_page=1e3", "page="]:
        response = client.get(f"{API}/communities?{query}", headers=headers)
        assert_field_error(response, query.split("=")[0], note=query)


def test_member_reads_their_community(world, client, factory):
    for who in ("organiser", "volunteer", "resident", "admin"):
        response = client.get(f"{API}/communities/{world.community.id}",
                              headers=factory.headers(getattr(world, who)))
        assert response.status_code == 200, who
        assert response.json["name"] == "管园村" and response.json["code"] == "guanyuan"


def test_community_of_others_looks_missing(world, client, factory):
    for who in ("other_organiser", "other_volunteer", "outsider"):
        headers = factory.headers(getattr(world, who))
        hidden = client.get(f"{API}/communities/{world.community.id}", headers=headers)
        missing = client.get(f"{API}/communities/{MISSING}", headers=headers)
        assert_error(hidden, 404, "not_found", who)
        assert hidden.get_json() == missing.get_json()
        assert hidden.headers.get("Content-Length") == missing.headers.get("Content-Length")


def test_missing_community_for_an_admin(world, client, factory):
    assert_error(client.get(f"{API}/communities/{MISSING}", headers=factory.headers(world.admin)),
                 404, "not_found")


def test_huge_and_malformed_ids_are_just_not_found(world, client, factory, app):
    """Ids past any real one (and past PostgreSQL's integer) are a 404, never a 500."""
    headers = factory.headers(world.organiser)
    before = snapshot(app)
    cid = world.community.id
    for method, path in [
        ("GET", "/communities/2147483648"), ("GET", "/communities/9223372036854775808"),
        ("GET", "/communities/99999999999999999999999"), ("GET", "/communities/-1"),
        ("GET", "/communities/abc"), ("GET", "/communities/2147483648/members"),
        ("POST", "/communities/99999999999999999999/members"),
        ("PATCH", f"/communities/{cid}/members/2147483648"),
        ("PATCH", f"/communities/{cid}/members/99999999999999999999999"),
        ("DELETE", f"/communities/{cid}/members/9223372036854775808"),
        ("DELETE", "/communities/2147483648/members/1"),
        ("GET", "/communities/2147483647"), ("PATCH", f"/communities/{cid}/members/2147483647"),
    ]:
        body = {"user_id": world.outsider.id, "role": "resident"} if method == "POST" else (
            {"role": "resident"} if method == "PATCH" else None)
        assert_error(call(client, method, path, headers, body), 404, "not_found", (method, path))
    assert snapshot(app) == before


def test_english_messages_on_request(world, client, factory):
    response = client.get(f"{API}/communities/{MISSING}",
                          headers=factory.headers(world.organiser, **{"Accept-Language": "en"}))
    body = assert_error(response, 404, "not_found")
    assert body["message"].isascii()
    chinese = client.get(f"{API}/communities/{MISSING}", headers=factory.headers(world.organiser))
    assert not assert_error(chinese, 404)["message"].isascii()


# --- who may not: every organiser endpoint x every caller without the role -------------------

MEMBER_ENDPOINTS = {
    "add_member": ("POST", "/communities/{cid}/members",
                   lambda w: {"user_id": w.target.id, "role": "organiser"}, 201),
    "list_members": ("GET", "/communities/{cid}/members?role=organiser", None, 200),
    "promote_member": ("PATCH", "/communities/{cid}/members/{uid}",
                       lambda w: {"role": "organiser"}, 200),
    "demote_organiser": ("PATCH", "/communities/{cid}/members/{oid}",
                         lambda w: {"role": "resident"}, 200),
    "remove_member": ("DELETE", "/communities/{cid}/members/{uid}", None, 204),
    "remove_organiser": ("DELETE", "/communities/{cid}/members/{oid}", None, 204),
}


@pytest.fixture
def guarded(world, factory):
    """The world plus a registered user to add and a second organiser (so demoting one is legal)."""
    world.factory = factory
    world.target = factory.user("新来的")
    world.second_organiser = factory.member(world.community, factory.user("赵委员"), "organiser")
    return world


def _request(client, world, endpoint, cid, headers):
    method, path, body, _ = MEMBER_ENDPOINTS[endpoint]
    url = path.format(cid=cid, uid=world.volunteer.id, oid=world.second_organiser.id)
    return call(client, method, url, headers, body(world) if body else None)


def callers(world, who) -> list[dict]:
    """The request headers of each person in a REFUSED_CALLERS group."""
    if who == "anonymous":
        return [{}, {"Authorization": "Bearer abc.def.ghi"}, {"Authorization": "Basic eDp5"}]
    people = ([world.other_organiser, world.other_volunteer] if who == "other_community"
              else [getattr(world, who)])
    factory = world.factory
    return [factory.headers(person) for person in people]


@pytest.mark.parametrize("who", list(REFUSED_CALLERS))
@pytest.mark.parametrize("endpoint", list(MEMBER_ENDPOINTS))
def test_who_may_not(guarded, client, app, endpoint, who):
    status, error = REFUSED_CALLERS[who]
    before = snapshot(app)
    for headers in callers(guarded, who):
        response = _request(client, guarded, endpoint, guarded.community.id, headers)
        # A forged or foreign token is a 401 too; its slug may say why (e.g. invalid token).
        slug = None if who == "anonymous" and headers else error
        body = assert_error(response, status, slug, headers)
        if status == 403:
            assert "社区工作人员" in body["message"]
        if status == 404:
            missing = _request(client, guarded, endpoint, MISSING, headers)
            assert body == missing.get_json()
        assert snapshot(app) == before


@pytest.mark.parametrize("endpoint", list(MEMBER_ENDPOINTS))
def test_admin_may(guarded, client, factory, app, endpoint):
    """The control for the refusals above: the same request succeeds for a platform admin
    (who is no member); the organiser's own success is in the happy-path tests below."""
    before = snapshot(app)
    response = _request(client, guarded, endpoint, guarded.community.id,
                        factory.headers(guarded.admin))
    assert response.status_code == MEMBER_ENDPOINTS[endpoint][3], response.get_data(as_text=True)
    if MEMBER_ENDPOINTS[endpoint][0] == "GET":
        assert snapshot(app) == before
    else:
        assert snapshot(app) != before


@pytest.mark.parametrize("path", ["/communities", "/communities/{cid}", "/me",
                                  "/communities/{cid}/members"])
def test_reads_need_a_token(world, client, path):
    assert_error(client.get(f"{API}{path.format(cid=world.community.id)}"), 401, "unauthorized")


# --- members: happy paths -----------------------------------------------------------------

def test_add_member_by_phone(world, client, factory, app):
    newcomer = factory.user("刘阿姨", phone="13612345678")
    response = client.post(f"{API}/communities/{world.community.id}/members",
                           json={"phone": "13612345678", "role": "resident"},
                           headers=factory.headers(world.organiser))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert {k: body[k] for k in ("user_id", "community_id", "role", "display_name", "phone")} == {
        "user_id": newcomer.id, "community_id": world.community.id, "role": "resident",
        "display_name": "刘阿姨", "phone": "13612345678"}
    assert body["created_at"].endswith("+08:00")
    assert role_of(app, world.community.id, newcomer.id) == "resident"
    # Now they see the community, and only that one.
    mine = client.get(f"{API}/communities", headers=factory.headers(newcomer)).get_json()
    assert [c["id"] for c in mine["items"]] == [world.community.id]


@pytest.mark.parametrize("role", ["resident", "volunteer", "organiser"])
def test_add_member_by_user_id_with_each_role(world, client, factory, app, role):
    newcomer = factory.user("新成员")
    response = client.post(f"{API}/communities/{world.community.id}/members",
                           json={"user_id": newcomer.id, "role": role},
                           headers=factory.headers(world.organiser))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["role"] == role
    assert role_of(app, world.community.id, newcomer.id) == role
    can_list = client.get(f"{API}/communities/{world.community.id}/members",
                          headers=factory.headers(newcomer))
    assert can_list.status_code == (200 if role == "organiser" else 403)


def test_a_user_may_belong_to_two_communities(world, client, factory, app):
    response = client.post(f"{API}/communities/{world.other.id}/members",
                           json={"user_id": world.volunteer.id, "role": "organiser"},
                           headers=factory.headers(world.other_organiser))
    assert response.status_code == 201
    assert role_of(app, world.community.id, world.volunteer.id) == "volunteer"
    assert role_of(app, world.other.id, world.volunteer.id) == "organiser"
    me = client.get(f"{API}/me", headers=factory.headers(world.volunteer)).get_json()
    assert me["memberships"] == [
        {"community_id": world.community.id, "role": "volunteer"},
        {"community_id": world.other.id, "role": "organiser"},
    ]


def test_admin_adds_a_member_without_being_one(world, client, factory, app):
    response = client.post(f"{API}/communities/{world.community.id}/members",
                           json={"user_id": world.outsider.id, "role": "volunteer"},
                           headers=factory.headers(world.admin))
    assert response.status_code == 201
    assert role_of(app, world.community.id, world.outsider.id) == "volunteer"
    assert role_of(app, world.community.id, world.admin.id) is None


def test_list_members_with_role_filter_and_pages(world, client, factory):
    for i in range(5):
        factory.member(world.community, factory.user(f"志愿者{i}"), "volunteer")
    factory.member(world.other, factory.user("别处志愿者"), "volunteer")
    headers = factory.headers(world.organiser)
    url = f"{API}/communities/{world.community.id}/members"

    everyone = client.get(url, headers=headers).get_json()
    assert everyone["total"] == 8 and len(everyone["items"]) == 8
    assert all(m["community_id"] == world.community.id for m in everyone["items"])
    assert {m["user_id"]: m["role"] for m in everyone["items"]}[world.resident.id] == "resident"

    volunteers = client.get(f"{url}?role=volunteer", headers=headers).get_json()
    assert volunteers["total"] == 6
    assert {m["role"] for m in volunteers["items"]} == {"volunteer"}
    assert world.volunteer.id in [m["user_id"] for m in volunteers["items"]]

    organisers_page = client.get(f"{url}?role=organiser", headers=headers).get_json()
    assert [m["user_id"] for m in organisers_page["items"]] == [world.organiser.id]
    assert organisers_page["items"][0]["display_name"] == "李书记"

    residents = client.get(f"{url}?role=resident", headers=headers).get_json()
    assert [m["user_id"] for m in residents["items"]] == [world.resident.id]

    page2 = client.get(f"{url}?role=volunteer&per_page=4&page=2", headers=headers).get_json()
    assert (page2["total"], page2["page"], page2["per_page"], len(page2["items"])) == (6, 2, 4, 2)
    ids = [m["user_id"] for m in volunteers["items"]]
    assert [m["user_id"] for m in page2["items"]] == ids[4:]


def test_list_members_bad_query(world, client, factory):
    headers = factory.headers(world.organiser)
    for query in ["role=admin", "role=Organiser", "role=", "role=organiser'--", "per_page=101",
                  "role=organiser&per_page=0", "page=0"]:
        response = client.get(f"{API}/communities/{world.community.id}/members?{query}",
                              headers=headers)
        assert_field_error(response, query.split("&")[-1].split("=")[0], note=query)


def test_change_role(world, client, factory, app):
    headers = factory.headers(world.organiser)
    url = f"{API}/communities/{world.community.id}/members/{world.resident.id}"
    response = client.patch(url, json={"role": "volunteer"}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["role"] == "volunteer" and response.json["user_id"] == world.resident.id
    assert role_of(app, world.community.id, world.resident.id) == "volunteer"
    response = client.patch(url, json={"role": "organiser"}, headers=headers)
    assert response.json["role"] == "organiser"
    assert organisers(app, world.community.id) == sorted([world.organiser.id, world.resident.id])
    # The promoted one can act as organiser; the old organiser can step down now.
    response = client.patch(f"{API}/communities/{world.community.id}/members/{world.organiser.id}",
                            json={"role": "resident"}, headers=factory.headers(world.resident))
    assert response.status_code == 200
    assert organisers(app, world.community.id) == [world.resident.id]


def test_same_role_again_is_fine(world, client, factory, app):
    response = client.patch(f"{API}/communities/{world.community.id}/members/{world.organiser.id}",
                            json={"role": "organiser"}, headers=factory.headers(world.organiser))
    assert response.status_code == 200
    assert organisers(app, world.community.id) == [world.organiser.id]


def test_remove_member(world, client, factory, app):
    headers = factory.headers(world.organiser)
    response = client.delete(f"{API}/communities/{world.community.id}/members/{world.resident.id}",
                             headers=headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert role_of(app, world.community.id, world.resident.id) is None
    assert_error(client.get(f"{API}/communities/{world.community.id}",
                            headers=factory.headers(world.resident)), 404)
    # Removing again: no longer a member.
    assert_error(client.delete(f"{API}/communities/{world.community.id}/members/{world.resident.id}",
                               headers=headers), 404)
    # Other members are untouched.
    assert role_of(app, world.community.id, world.volunteer.id) == "volunteer"


def test_removed_member_can_be_added_again(world, client, factory, app):
    headers = factory.headers(world.organiser)
    base = f"{API}/communities/{world.community.id}/members"
    assert client.delete(f"{base}/{world.volunteer.id}", headers=headers).status_code == 204
    response = client.post(base, json={"user_id": world.volunteer.id, "role": "resident"},
                           headers=headers)
    assert response.status_code == 201
    assert role_of(app, world.community.id, world.volunteer.id) == "resident"


# --- members: rules -----------------------------------------------------------------------

def test_adding_an_existing_member_is_a_conflict(world, client, factory, app):
    before = snapshot(app)
    headers = factory.headers(world.organiser)
    for who in ("resident", "volunteer", "organiser"):
        user = getattr(world, who)
        for identity in ({"phone": user.phone}, {"user_id": user.id}):
            for role in ("resident", "organiser"):
                response = client.post(f"{API}/communities/{world.community.id}/members",
                                       json={**identity, "role": role}, headers=headers)
                assert_error(response, 409, "already_member", (who, identity, role))
                assert snapshot(app) == before


def test_adding_an_unregistered_phone(world, client, factory, app):
    before = snapshot(app)
    response = client.post(f"{API}/communities/{world.community.id}/members",
                           json={"phone": "13900000009", "role": "resident"},
                           headers=factory.headers(world.organiser))
    body = assert_error(response, 404, "user_not_registered")
    assert "phone" in body["errors"]
    assert snapshot(app) == before


def test_adding_a_missing_user_id(world, client, factory, app):
    before = snapshot(app)
    response = client.post(f"{API}/communities/{world.community.id}/members",
                           json={"user_id": MISSING, "role": "resident"},
                           headers=factory.headers(world.organiser))
    assert_error(response, 404, "user_not_registered")
    assert snapshot(app) == before


def test_last_organiser_cannot_step_down_or_leave(world, client, factory, app):
    url = f"{API}/communities/{world.community.id}/members/{world.organiser.id}"
    before = snapshot(app)
    for who in ("organiser", "admin"):
        headers = factory.headers(getattr(world, who))
        for role in ("volunteer", "resident"):
            assert_error(client.patch(url, json={"role": role}, headers=headers), 409,
                         "last_organiser")
        assert_error(client.delete(url, headers=headers), 409, "last_organiser")
        assert snapshot(app) == before
    english = client.delete(url, headers=factory.headers(world.organiser, **{"Accept-Language": "en"}))
    assert "organiser" in assert_error(english, 409, "last_organiser")["message"]


def test_one_of_two_organisers_may_go_but_not_both(world, client, factory, app):
    second = factory.member(world.community, factory.user("赵委员"), "organiser")
    headers = factory.headers(world.organiser)
    base = f"{API}/communities/{world.community.id}/members"
    assert client.patch(f"{base}/{second.id}", json={"role": "volunteer"},
                        headers=headers).status_code == 200
    assert_error(client.patch(f"{base}/{world.organiser.id}", json={"role": "volunteer"},
                              headers=headers), 409, "last_organiser")
    assert client.patch(f"{base}/{second.id}", json={"role": "organiser"},
                        headers=headers).status_code == 200
    assert client.delete(f"{base}/{world.organiser.id}", headers=headers).status_code == 204
    assert organisers(app, world.community.id) == [second.id]
    assert_error(client.delete(f"{base}/{second.id}", headers=factory.headers(second)), 409,
                 "last_organiser")
    assert organisers(app, world.community.id) == [second.id]


def test_organisers_of_another_community_do_not_count(world, client, factory, app):
    # Two organisers in total, but one of them organises the other community.
    url = f"{API}/communities/{world.community.id}/members/{world.organiser.id}"
    assert_error(client.patch(url, json={"role": "resident"}, headers=factory.headers(world.organiser)),
                 409, "last_organiser")
    assert organisers(app, world.community.id) == [world.organiser.id]


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
def test_changing_someone_who_is_not_a_member(world, client, factory, app, method):
    before = snapshot(app)
    headers = factory.headers(world.organiser)
    for uid in (world.other_volunteer.id, world.outsider.id, world.admin.id, MISSING):
        response = call(client, method, f"/communities/{world.community.id}/members/{uid}", headers,
                        {"role": "resident"} if method == "PATCH" else None)
        assert_error(response, 404, "not_found")
    # Nor can an organiser reach a member of another community through their own.
    response = call(client, method, f"/communities/{world.other.id}/members/{world.other_volunteer.id}",
                    headers, {"role": "resident"} if method == "PATCH" else None)
    assert_error(response, 404, "not_found")
    assert snapshot(app) == before


def _team(client, factory, world, name="“红色足印”老党员志愿服务队", leader=None, members=()):
    headers = factory.headers(world.organiser)
    response = client.post(f"{API}/communities/{world.community.id}/teams",
                           json={"name": name, "leader_id": leader.id if leader else None},
                           headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    tid = response.json["id"]
    for user in members:
        added = client.post(f"{API}/teams/{tid}/members", json={"user_id": user.id}, headers=headers)
        assert added.status_code == 201, added.get_data(as_text=True)
    return tid


def _team_state(app, tid):
    with app.app_context():
        team = db.session.get(Team, tid)
        return team.leader_id, sorted(m.user_id for m in team.members)


def test_removing_a_member_removes_them_from_teams_and_leadership(world, client, factory, app):
    helper = factory.member(world.community, factory.user("小蜜蜂"), "volunteer")
    led = _team(client, factory, world, "红色足印", leader=world.volunteer, members=[helper])
    joined = _team(client, factory, world, "小蜜蜂", leader=helper, members=[world.volunteer])
    # The same person also volunteers in another community's team, which must be untouched.
    factory.member(world.other, world.volunteer, "volunteer")
    other_team = client.post(f"{API}/communities/{world.other.id}/teams",
                             json={"name": "芙蓉队", "leader_id": world.volunteer.id},
                             headers=factory.headers(world.other_organiser)).json["id"]

    response = client.delete(f"{API}/communities/{world.community.id}/members/{world.volunteer.id}",
                             headers=factory.headers(world.organiser))
    assert response.status_code == 204
    assert _team_state(app, led) == (None, [helper.id])
    assert _team_state(app, joined) == (helper.id, [helper.id])
    assert _team_state(app, other_team) == (world.volunteer.id, [world.volunteer.id])
    shown = client.get(f"{API}/teams/{led}", headers=factory.headers(world.organiser)).get_json()
    assert shown["leader_id"] is None and shown["leader_name"] is None
    assert [m["user_id"] for m in shown["members"]] == [helper.id]


def test_demoting_to_resident_removes_from_teams(world, client, factory, app):
    helper = factory.member(world.community, factory.user("小蜜蜂"), "volunteer")
    led = _team(client, factory, world, "红色足印", leader=world.volunteer, members=[helper])
    joined = _team(client, factory, world, "小蜜蜂", leader=helper, members=[world.volunteer])
    response = client.patch(f"{API}/communities/{world.community.id}/members/{world.volunteer.id}",
                            json={"role": "resident"}, headers=factory.headers(world.organiser))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["role"] == "resident"
    assert role_of(app, world.community.id, world.volunteer.id) == "resident"
    assert _team_state(app, led) == (None, [helper.id])
    assert _team_state(app, joined) == (helper.id, [helper.id])


def test_demoting_organiser_to_volunteer_keeps_teams(world, client, factory, app):
    second = factory.member(world.community, factory.user("赵委员"), "organiser")
    tid = _team(client, factory, world, "红色足印", leader=second, members=[world.volunteer])
    response = client.patch(f"{API}/communities/{world.community.id}/members/{second.id}",
                            json={"role": "volunteer"}, headers=factory.headers(world.organiser))
    assert response.status_code == 200
    assert _team_state(app, tid) == (second.id, sorted([second.id, world.volunteer.id]))


# --- members: bad input -------------------------------------------------------------------

ADD_MEMBER_BAD_INPUT = [
    ({"role": "resident"}, "phone"),
    ({"phone": "13700000001", "user_id": 2, "role": "resident"}, "phone"),
    ({"user_id": 2}, "role"),
    ({"user_id": 2, "role": "admin"}, "role"),
    ({"user_id": 2, "role": "Organiser"}, "role"),
    ({"user_id": 2, "role": ""}, "role"),
    ({"user_id": 2, "role": 3}, "role"),
    ({"user_id": 2, "role": None}, "role"),
    ({"user_id": 2, "role": ["organiser"]}, "role"),
    ({"user_id": "5", "role": "resident"}, "user_id"),
    ({"user_id": 5.0, "role": "resident"}, "user_id"),
    ({"user_id": 5.5, "role": "resident"}, "user_id"),
    ({"user_id": True, "role": "resident"}, "user_id"),
    ({"user_id": None, "role": "resident"}, "user_id"),
    ({"user_id": 0, "role": "resident"}, "user_id"),
    ({"user_id": -1, "role": "resident"}, "user_id"),
    ({"user_id": 2**31, "role": "resident"}, "user_id"),
    ({"user_id": 2**70, "role": "resident"}, "user_id"),
    ({"phone": "1370000000", "role": "resident"}, "phone"),
    ({"phone": "13７00000001", "role": "resident"}, "phone"),
    ({"phone": "1370000000١", "role": "resident"}, "phone"),
    ({"phone": 13700000001, "role": "resident"}, "phone"),
    ({"phone": "137-0000-0001", "role": "resident"}, "phone"),
    ({"phone": "13700000001\n13700000002", "role": "resident"}, "phone"),
    ({"user_id": 2, "role": "resident", "community_id": 2}, "community_id"),
    ({"user_id": 2, "role": "resident", "id": 7}, "id"),
    ({"user_id": 2, "role": "resident", "is_admin": True}, "is_admin"),
    ({"user_id": 2, "role": "resident", "points": 100}, "points"),
]


def test_add_member_bad_input(world, client, factory, app):
    refuse_each(client, app, "POST", f"{API}/communities/{world.community.id}/members",
                factory.headers(world.organiser), ADD_MEMBER_BAD_INPUT)


CHANGE_ROLE_BAD_INPUT = [
    ({}, "role"),
    ({"role": "admin"}, "role"),
    ({"role": 3}, "role"),
    ({"role": None}, "role"),
    ({"role": " organiser"}, "role"),
    ({"role": "organiser", "user_id": 5}, "user_id"),
    ({"role": "organiser", "community_id": 2}, "community_id"),
    ({"role": "organiser", "is_admin": True}, "is_admin"),
]


def test_change_role_bad_input(world, client, factory, app):
    refuse_each(client, app, "PATCH",
                f"{API}/communities/{world.community.id}/members/{world.resident.id}",
                factory.headers(world.organiser), CHANGE_ROLE_BAD_INPUT)


def test_member_endpoints_refuse_malformed_json(world, client, factory, app):
    before = snapshot(app)
    headers = factory.headers(world.organiser)
    base = f"{API}/communities/{world.community.id}/members"
    assert_error(client.post(base, data="{", content_type="application/json", headers=headers), 400)
    assert_error(client.patch(f"{base}/{world.resident.id}", data="role=organiser",
                              content_type="application/json", headers=headers), 400)
    assert_error(client.post(base, json=[{"user_id": world.outsider.id, "role": "resident"}],
                             headers=headers), 422)
    assert snapshot(app) == before


def test_unsupported_methods(world, client, factory):
    headers = factory.headers(world.organiser)
    assert_error(client.put(f"{API}/communities/{world.community.id}", json={}, headers=headers), 405)
    assert_error(client.delete(f"{API}/communities/{world.community.id}", headers=headers), 405)
    assert_error(client.put(f"{API}/communities/{world.community.id}/members/{world.resident.id}",
                            json={"role": "volunteer"}, headers=headers), 405)


# --- concurrency: organisers demoting each other at the same moment -------------------------

@pytest.mark.live
def test_organisers_demoting_each_other_at_once_leave_one(live_server, factory, app):
    import requests

    server = live_server(workers=4)
    # (number of organisers, what each does to the next one round the circle)
    rounds = [
        (2, ["PATCH", "PATCH"]), (2, ["DELETE", "DELETE"]), (2, ["PATCH", "DELETE"]),
        (3, ["PATCH", "PATCH", "PATCH"]), (4, ["PATCH", "DELETE", "PATCH", "DELETE"]),
        (2, ["PATCH", "PATCH"]), (3, ["DELETE", "PATCH", "DELETE"]), (4, ["PATCH"] * 4),
    ]
    for number, (count, methods) in enumerate(rounds):
        people = [factory.user(f"书记{number}-{i}") for i in range(count)]
        community = factory.community(f"race-{number}", f"赛跑社区{number}", organiser=people[0])
        for person in people[1:]:
            factory.member(community, person, "organiser")
        headers = [factory.headers(person) for person in people]
        barrier = threading.Barrier(count)

        def act(i, community=community, people=people, headers=headers, methods=methods,
                barrier=barrier, count=count):
            target = people[(i + 1) % count]
            url = f"{server.url}{API}/communities/{community.id}/members/{target.id}"
            barrier.wait(timeout=30)
            return requests.request(methods[i], url, headers=headers[i],
                                    json={"role": "resident"} if methods[i] == "PATCH" else None,
                                    timeout=60)

        with ThreadPoolExecutor(count) as pool:
            responses = list(pool.map(act, range(count)))

        remaining = organisers(app, community.id)
        statuses = [r.status_code for r in responses]
        assert remaining, f"round {number}: no organiser left after {statuses}"
        for response in responses:
            assert response.headers["Content-Type"].startswith("application/json") or \
                response.status_code == 204, response.text
            if response.status_code >= 400:
                # The caller lost the role (403), was removed (404), or was the last one (409).
                assert (response.status_code, response.json()["error"]) in {
                    (403, "role_required"), (404, "not_found"), (409, "last_organiser")
                }, response.text
            else:
                assert response.status_code in (200, 204), response.text
        successes = sum(r.status_code < 400 for r in responses)
        assert len(remaining) == count - successes, (statuses, remaining)
        assert successes >= 1, statuses

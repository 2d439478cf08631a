"""Volunteer teams (志愿服务队) and their members (issue #2)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.communities.models import Membership, Team, TeamMember
from app.extensions import db
from tests.helpers import assert_error, assert_field_error, call
from tests.helpers import refuse_each as refuse_each_case

API = "/api/v1"
MISSING = 999_999
RED = "“红色足印”老党员志愿服务队"
BEES = "外卖小哥\"小蜜蜂\"志愿服务队"


# --- helpers ------------------------------------------------------------------------------

def snapshot(app) -> dict:
    with app.app_context():
        def rows(*columns):
            return sorted(tuple(r) for r in db.session.execute(sa.select(*columns)).all())

        return {
            "memberships": rows(Membership.community_id, Membership.user_id, Membership.role),
            "teams": rows(Team.id, Team.community_id, Team.name, Team.description, Team.leader_id),
            "team_members": rows(TeamMember.team_id, TeamMember.user_id, TeamMember.community_id),
        }


def refuse_each(client, app, method: str, url: str, headers: dict, cases) -> None:
    refuse_each_case(client, method, url, headers, cases, lambda: snapshot(app))


def team_state(app, tid: int):
    """(name, description, leader_id, sorted member ids) as stored, or None if gone."""
    with app.app_context():
        team = db.session.get(Team, tid)
        if team is None:
            return None
        members = sorted(db.session.scalars(
            sa.select(TeamMember.user_id).where(TeamMember.team_id == tid)))
        return team.name, team.description, team.leader_id, members


@pytest.fixture
def red(world, client, org):
    """RED, led by the volunteer (who is therefore in it)."""
    response = client.post(f"{API}/communities/{world.community.id}/teams",
                           json={"name": RED, "description": "老党员发挥余热",
                                 "leader_id": world.volunteer.id}, headers=org)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json["id"]


# --- happy paths --------------------------------------------------------------------------

def test_create_team_round_trips_chinese_exactly(world, client, factory, app, org):
    description = "由退休老党员组成，开展“邻里守望”、义务理发、代买代办等服务。"
    response = client.post(f"{API}/communities/{world.community.id}/teams",
                           json={"name": RED, "description": description,
                                 "leader_id": world.volunteer.id}, headers=org)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["name"] == RED and body["description"] == description
    assert body["community_id"] == world.community.id
    assert body["leader_id"] == world.volunteer.id and body["leader_name"] == "王建国"
    assert [m["user_id"] for m in body["members"]] == [world.volunteer.id]
    assert body["members"][0]["display_name"] == "王建国"
    assert body["members"][0]["joined_at"].endswith("+08:00")
    assert body["created_at"].endswith("+08:00")
    assert team_state(app, body["id"]) == (RED, description, world.volunteer.id, [world.volunteer.id])
    # The raw bytes carry the characters themselves, not escapes, and read back identical.
    assert RED.encode() in response.get_data()
    shown = client.get(f"{API}/teams/{body['id']}", headers=factory.headers(world.resident))
    assert shown.get_json()["name"] == RED and shown.get_json()["description"] == description


def test_create_team_without_leader(world, client, app, org):
    response = client.post(f"{API}/communities/{world.community.id}/teams", json={"name": BEES},
                           headers=org)
    assert response.status_code == 201
    body = response.get_json()
    assert (body["leader_id"], body["leader_name"], body["members"], body["description"]) == (
        None, None, [], "")
    assert team_state(app, body["id"]) == (BEES, "", None, [])


def test_organiser_may_lead(world, client, app, org):
    response = client.post(f"{API}/communities/{world.community.id}/teams",
                           json={"name": BEES, "leader_id": world.organiser.id}, headers=org)
    assert response.status_code == 201
    assert team_state(app, response.json["id"])[2:] == (world.organiser.id, [world.organiser.id])


def test_any_member_lists_and_reads_teams(world, client, factory, org, red):
    other_team = client.post(f"{API}/communities/{world.community.id}/teams", json={"name": BEES},
                             headers=org).json["id"]
    client.post(f"{API}/communities/{world.other.id}/teams", json={"name": "芙蓉队"},
                headers=factory.headers(world.other_organiser))
    for who in ("resident", "volunteer", "organiser", "admin"):
        headers = factory.headers(getattr(world, who))
        listing = client.get(f"{API}/communities/{world.community.id}/teams", headers=headers)
        assert listing.status_code == 200, who
        body = listing.get_json()
        assert set(body) == {"items", "page", "per_page", "total"}
        assert body["total"] == 2
        assert [t["id"] for t in body["items"]] == [red, other_team]
        assert [t["name"] for t in body["items"]] == [RED, BEES]
        one = client.get(f"{API}/teams/{red}", headers=headers)
        assert one.status_code == 200 and one.json["name"] == RED


def test_team_list_is_paginated(world, client, org):
    for i in range(7):
        assert client.post(f"{API}/communities/{world.community.id}/teams",
                           json={"name": f"第{i}队"}, headers=org).status_code == 201
    url = f"{API}/communities/{world.community.id}/teams"
    page = client.get(f"{url}?per_page=3&page=3", headers=org).get_json()
    assert (page["total"], page["page"], page["per_page"]) == (7, 3, 3)
    assert [t["name"] for t in page["items"]] == ["第6队"]
    assert_field_error(client.get(f"{url}?per_page=101", headers=org), "per_page")
    assert_field_error(client.get(f"{url}?page=0", headers=org), "page")


def test_patch_team(world, client, factory, app, org, red):
    second = factory.member(world.community, factory.user("张师傅"), "volunteer")
    response = client.patch(f"{API}/teams/{red}", json={"name": "红色足印 🚩", "description": "新说明"},
                            headers=org)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert (response.json["name"], response.json["description"]) == ("红色足印 🚩", "新说明")
    assert team_state(app, red) == ("红色足印 🚩", "新说明", world.volunteer.id, [world.volunteer.id])

    # A new leader joins the team; the old one stays a member.
    response = client.patch(f"{API}/teams/{red}", json={"leader_id": second.id}, headers=org)
    assert response.status_code == 200
    assert response.json["leader_id"] == second.id and response.json["leader_name"] == "张师傅"
    assert team_state(app, red)[2:] == (second.id, sorted([world.volunteer.id, second.id]))

    # Clearing the leader keeps the members.
    response = client.patch(f"{API}/teams/{red}", json={"leader_id": None}, headers=org)
    assert response.status_code == 200 and response.json["leader_id"] is None
    assert team_state(app, red)[2:] == (None, sorted([world.volunteer.id, second.id]))

    # Making an existing member the leader adds no second membership row.
    response = client.patch(f"{API}/teams/{red}", json={"leader_id": world.volunteer.id}, headers=org)
    assert response.status_code == 200 and response.json["leader_name"] == "王建国"
    assert team_state(app, red)[2:] == (world.volunteer.id, sorted([world.volunteer.id, second.id]))

    # The description may be emptied, but the name may not.
    response = client.patch(f"{API}/teams/{red}", json={"description": ""}, headers=org)
    assert response.status_code == 200 and response.json["description"] == ""
    assert team_state(app, red)[1] == ""

    # Keeping one's own name is not a clash; an empty patch changes nothing.
    assert client.patch(f"{API}/teams/{red}", json={"name": "红色足印 🚩"},
                        headers=org).status_code == 200
    before = snapshot(app)
    assert client.patch(f"{API}/teams/{red}", json={}, headers=org).status_code == 200
    assert snapshot(app) == before


def test_delete_team(world, client, factory, app, org, red):
    client.post(f"{API}/teams/{red}/members", json={"user_id": world.organiser.id}, headers=org)
    response = client.delete(f"{API}/teams/{red}", headers=org)
    assert response.status_code == 204 and response.get_data() == b""
    assert team_state(app, red) is None
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TeamMember)) == 0
        # The people are still members of the community.
        assert db.session.scalar(sa.select(Membership.role).where(
            Membership.user_id == world.volunteer.id)) == "volunteer"
    assert_error(client.get(f"{API}/teams/{red}", headers=org), 404, "not_found")
    assert_error(client.delete(f"{API}/teams/{red}", headers=org), 404, "not_found")
    # The name is free again.
    assert client.post(f"{API}/communities/{world.community.id}/teams", json={"name": RED},
                       headers=org).status_code == 201


def test_add_and_remove_team_members(world, client, factory, app, org, red):
    second = factory.member(world.community, factory.user("张师傅"), "volunteer")
    response = client.post(f"{API}/teams/{red}/members", json={"user_id": second.id}, headers=org)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["id"] == red
    assert [m["user_id"] for m in response.json["members"]] == sorted([world.volunteer.id, second.id])
    response = client.post(f"{API}/teams/{red}/members", json={"user_id": world.organiser.id},
                           headers=org)
    assert response.status_code == 201
    assert team_state(app, red)[3] == sorted([world.volunteer.id, second.id, world.organiser.id])

    response = client.delete(f"{API}/teams/{red}/members/{second.id}", headers=org)
    assert response.status_code == 204 and response.get_data() == b""
    assert team_state(app, red)[2:] == (world.volunteer.id,
                                        sorted([world.volunteer.id, world.organiser.id]))
    shown = client.get(f"{API}/teams/{red}", headers=org).get_json()
    assert second.id not in [m["user_id"] for m in shown["members"]]


def test_removing_the_leader_from_the_team_clears_leadership(world, client, app, org, red):
    assert client.delete(f"{API}/teams/{red}/members/{world.volunteer.id}",
                         headers=org).status_code == 204
    assert team_state(app, red)[2:] == (None, [])
    shown = client.get(f"{API}/teams/{red}", headers=org).get_json()
    assert shown["leader_id"] is None and shown["leader_name"] is None and shown["members"] == []


def test_a_person_may_be_in_several_teams(world, client, app, org, red):
    bees = client.post(f"{API}/communities/{world.community.id}/teams",
                       json={"name": BEES, "leader_id": world.volunteer.id}, headers=org).json["id"]
    assert team_state(app, red)[3] == [world.volunteer.id]
    assert team_state(app, bees)[3] == [world.volunteer.id]
    assert client.delete(f"{API}/teams/{bees}/members/{world.volunteer.id}",
                         headers=org).status_code == 204
    assert team_state(app, red)[2:] == (world.volunteer.id, [world.volunteer.id])


# --- rules --------------------------------------------------------------------------------

def test_team_name_is_unique_per_community(world, client, factory, app, org, red):
    url = f"{API}/communities/{world.community.id}/teams"
    before = snapshot(app)
    assert_error(client.post(url, json={"name": RED}, headers=org), 409, "team_name_taken")
    # Surrounding spaces are trimmed, so this is the same name.
    assert_error(client.post(url, json={"name": f"  {RED} "}, headers=org), 409, "team_name_taken")
    assert snapshot(app) == before
    # Another community may use it.
    other = client.post(f"{API}/communities/{world.other.id}/teams", json={"name": RED},
                        headers=factory.headers(world.other_organiser))
    assert other.status_code == 201
    # Renaming onto an existing name is a clash too.
    bees = client.post(url, json={"name": BEES}, headers=org).json["id"]
    before = snapshot(app)
    assert_error(client.patch(f"{API}/teams/{bees}", json={"name": RED}, headers=org), 409,
                 "team_name_taken")
    assert snapshot(app) == before


def test_adding_someone_already_in_the_team(world, client, app, org, red):
    before = snapshot(app)
    assert_error(client.post(f"{API}/teams/{red}/members", json={"user_id": world.volunteer.id},
                             headers=org), 409, "already_in_team")
    assert snapshot(app) == before


INELIGIBLE = ["resident", "other_volunteer", "other_organiser", "outsider", "admin", "missing"]


def _ineligible_ids(world):
    return [MISSING if who == "missing" else getattr(world, who).id for who in INELIGIBLE]


def test_leader_must_be_volunteer_or_organiser_here(world, client, app, org, red):
    for uid in _ineligible_ids(world):
        refuse_each(client, app, "POST", f"{API}/communities/{world.community.id}/teams", org,
                    [({"name": BEES, "leader_id": uid}, "leader_id")])
        refuse_each(client, app, "PATCH", f"{API}/teams/{red}", org,
                    [({"leader_id": uid}, "leader_id"),
                     ({"name": "改名", "leader_id": uid}, "leader_id")])


def test_team_member_must_be_volunteer_or_organiser_here(world, client, app, org, red):
    refuse_each(client, app, "POST", f"{API}/teams/{red}/members", org,
                [({"user_id": uid}, "user_id") for uid in _ineligible_ids(world)])


def test_removing_someone_not_in_the_team(world, client, factory, app, org, red):
    before = snapshot(app)
    for uid in (world.organiser.id, world.resident.id, world.other_volunteer.id, MISSING):
        assert_error(client.delete(f"{API}/teams/{red}/members/{uid}", headers=org), 404,
                     "not_found")
    assert_error(client.delete(f"{API}/teams/{MISSING}/members/{world.volunteer.id}", headers=org),
                 404, "not_found")
    assert snapshot(app) == before


def test_teams_of_another_community_are_invisible_to_its_organiser(world, client, factory, app, red):
    """The other community's organiser cannot reach this team, nor pull its people into theirs."""
    other_headers = factory.headers(world.other_organiser)
    own = client.post(f"{API}/communities/{world.other.id}/teams", json={"name": "芙蓉队"},
                      headers=other_headers).json["id"]
    before = snapshot(app)
    assert_field_error(client.post(f"{API}/teams/{own}/members", json={"user_id": world.volunteer.id},
                                   headers=other_headers), "user_id")
    assert_field_error(client.patch(f"{API}/teams/{own}", json={"leader_id": world.volunteer.id},
                                    headers=other_headers), "leader_id")
    assert snapshot(app) == before


# --- bad input ----------------------------------------------------------------------------

CREATE_TEAM_BAD_INPUT = [
    ({}, "name"),
    ({"description": "没有名字"}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "\u3000\u3000"}, "name"),
    ({"name": None}, "name"),
    ({"name": 5}, "name"),
    ({"name": ["队"]}, "name"),
    ({"name": "队" * 65}, "name"),
    ({"name": "a" * 65}, "name"),
    ({"name": "红色\x00足印"}, "name"),
    ({"name": "红色\n足印"}, "name"),
    ({"name": "红色\x1b[31m足印"}, "name"),
    ({"name": "\u202e红色足印"}, "name"),
    ({"name": "红色\ufeff足印"}, "name"),
    ({"name": "队", "description": "说" * 501}, "description"),
    ({"name": "队", "description": None}, "description"),
    ({"name": "队", "description": 12}, "description"),
    ({"name": "队", "description": "第一行\x07"}, "description"),
    ({"name": "队", "leader_id": "5"}, "leader_id"),
    ({"name": "队", "leader_id": 5.0}, "leader_id"),
    ({"name": "队", "leader_id": True}, "leader_id"),
    ({"name": "队", "leader_id": 0}, "leader_id"),
    ({"name": "队", "leader_id": -3}, "leader_id"),
    ({"name": "队", "leader_id": 2**31}, "leader_id"),
    ({"name": "队", "leader_id": 2**64}, "leader_id"),
    ({"name": "队", "leader_id": [2]}, "leader_id"),
    ({"name": "队", "id": 1}, "id"),
    ({"name": "队", "community_id": 2}, "community_id"),
    ({"name": "队", "members": [2]}, "members"),
    ({"name": "队", "role": "organiser"}, "role"),
    ({"name": "队", "created_at": "2024-01-01T00:00:00+08:00"}, "created_at"),
]


def test_create_team_bad_input(world, client, app, org):
    refuse_each(client, app, "POST", f"{API}/communities/{world.community.id}/teams", org,
                CREATE_TEAM_BAD_INPUT)


PATCH_TEAM_BAD_INPUT = [
    ({"name": ""}, "name"),
    ({"name": " \t "}, "name"),
    ({"name": None}, "name"),
    ({"name": "队" * 65}, "name"),
    ({"name": "\x00"}, "name"),
    ({"description": "说" * 501}, "description"),
    ({"description": None}, "description"),
    ({"leader_id": "5"}, "leader_id"),
    ({"leader_id": 5.0}, "leader_id"),
    ({"leader_id": False}, "leader_id"),
    ({"leader_id": 2**31}, "leader_id"),
    ({"role": "organiser"}, "role"),
    ({"id": 99}, "id"),
    ({"community_id": 2}, "community_id"),
    ({"members": []}, "members"),
    ({"name": "新名", "community_id": 2}, "community_id"),
]


def test_patch_team_bad_input(world, client, app, org, red):
    refuse_each(client, app, "PATCH", f"{API}/teams/{red}", org, PATCH_TEAM_BAD_INPUT)


ADD_TEAM_MEMBER_BAD_INPUT = [
    ({}, "user_id"),
    ({"user_id": None}, "user_id"),
    ({"user_id": "5"}, "user_id"),
    ({"user_id": 5.0}, "user_id"),
    ({"user_id": True}, "user_id"),
    ({"user_id": 0}, "user_id"),
    ({"user_id": 2**31}, "user_id"),
    ({"user_id": 2**70}, "user_id"),
    ({"user_id": 2, "role": "leader"}, "role"),
    ({"user_id": 2, "team_id": 1}, "team_id"),
    ({"phone": "13700000001"}, "phone"),
]


def test_add_team_member_bad_input(world, client, app, org, red):
    refuse_each(client, app, "POST", f"{API}/teams/{red}/members", org, ADD_TEAM_MEMBER_BAD_INPUT)


def test_team_bodies_that_are_not_objects(world, client, app, org, red):
    before = snapshot(app)
    url = f"{API}/communities/{world.community.id}/teams"
    assert_error(client.post(url, data='{"name": ', content_type="application/json", headers=org), 400)
    assert_error(client.post(url, json=["队"], headers=org), 422)
    assert_error(client.patch(f"{API}/teams/{red}", json="改名", headers=org), 422)
    assert_error(client.post(f"{API}/teams/{red}/members", json=5, headers=org), 422)
    assert snapshot(app) == before


UNUSUAL_NAMES = [
    "队" * 64, "a" * 64, "🚩" * 64, "外卖小哥“小蜜蜂”🐝", "Robert'); DROP TABLE teams;--",
    "'; DELETE FROM team_members WHERE '1'='1", "👩‍🔧 维修队", "%_%", "Ça va — ok", "队\u200d员",
    "𠀀𠀁𠀂", "<script>alert(1)</script>",
]


def test_unusual_names_are_stored_literally(world, client, app, org):
    for name in UNUSUAL_NAMES:
        response = client.post(f"{API}/communities/{world.community.id}/teams",
                               json={"name": name, "description": name}, headers=org)
        assert response.status_code == 201, (name, response.get_data(as_text=True))
        tid = response.json["id"]
        assert (response.json["name"], response.json["description"]) == (name, name)
        assert team_state(app, tid)[:2] == (name, name)
        assert client.get(f"{API}/teams/{tid}", headers=org).json["name"] == name
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Team)) == len(UNUSUAL_NAMES)


def test_description_at_its_limit(world, client, app, org):
    response = client.post(f"{API}/communities/{world.community.id}/teams",
                           json={"name": "队", "description": "说" * 500}, headers=org)
    assert response.status_code == 201
    assert team_state(app, response.json["id"])[1] == "说" * 500


def test_huge_team_ids_are_just_not_found(world, client, app, org, red):
    before = snapshot(app)
    for method, path, body in [
        ("GET", "/teams/2147483648", None), ("GET", "/teams/99999999999999999999", None),
        ("PATCH", "/teams/2147483648", {"name": "x"}), ("DELETE", "/teams/9223372036854775808", None),
        ("POST", "/teams/2147483648/members", {"user_id": world.volunteer.id}),
        ("DELETE", f"/teams/{red}/members/99999999999999999999", None),
        ("DELETE", f"/teams/{red}/members/2147483648", None),
        ("GET", "/communities/2147483648/teams", None),
        ("POST", "/communities/2147483648/teams", {"name": "x"}),
        ("GET", "/teams/-1", None), ("GET", "/teams/2147483647", None),
    ]:
        assert_error(call(client, method, path, org, body), 404, "not_found", (method, path))
    assert snapshot(app) == before


# --- who may not ------------------------------------------------------------------------

@pytest.fixture
def teams_world(world, factory, client, org, red):
    world.red = red
    world.helper = factory.member(world.community, factory.user("张师傅"), "volunteer")
    return world


ORGANISER_ENDPOINTS = {
    "create_team": ("POST", "/communities/{cid}/teams",
                    lambda w: {"name": BEES, "leader_id": w.helper.id}, 201),
    "patch_team": ("PATCH", "/teams/{tid}", lambda w: {"name": "改名了"}, 200),
    "change_leader": ("PATCH", "/teams/{tid}", lambda w: {"leader_id": w.helper.id}, 200),
    "delete_team": ("DELETE", "/teams/{tid}", None, 204),
    "add_team_member": ("POST", "/teams/{tid}/members", lambda w: {"user_id": w.helper.id}, 201),
    "remove_team_member": ("DELETE", "/teams/{tid}/members/{uid}", None, 204),
}
MEMBER_ENDPOINTS = {
    "list_teams": ("GET", "/communities/{cid}/teams", None, 200),
    "get_team": ("GET", "/teams/{tid}", None, 200),
}


def _request(client, world, endpoints, endpoint, headers, *, missing=False):
    method, path, body, _ = endpoints[endpoint]
    cid = MISSING if missing else world.community.id
    tid = MISSING if missing else world.red
    url = path.format(cid=cid, tid=tid, uid=world.volunteer.id)
    return call(client, method, url, headers, body(world) if body else None)


ALL_ENDPOINTS = {**ORGANISER_ENDPOINTS, **MEMBER_ENDPOINTS}

# Who may not, and what they get: a member without the role 403, anyone who cannot see the
# community 404 (exactly like a missing id), no token 401. Members may read teams.
REFUSED_CALLERS = {
    "resident": (403, "role_required"),
    "volunteer": (403, "role_required"),
    "other_community": (404, "not_found"),  # its organiser and its volunteer
    "outsider": (404, "not_found"),
    "anonymous": (401, "unauthorized"),
}


def callers(world, factory, who) -> list[dict]:
    if who == "anonymous":
        return [{}, {"Authorization": "Bearer x.y.z"}]
    people = ([world.other_organiser, world.other_volunteer] if who == "other_community"
              else [getattr(world, who)])
    return [factory.headers(person) for person in people]


CASES = [(endpoint, who) for endpoint in ORGANISER_ENDPOINTS for who in REFUSED_CALLERS] + [
    (endpoint, who) for endpoint in MEMBER_ENDPOINTS
    for who in ("other_community", "outsider", "anonymous")]


@pytest.mark.parametrize(("endpoint", "who"), CASES)
def test_who_may_not(teams_world, client, factory, app, endpoint, who):
    status, error = REFUSED_CALLERS[who]
    before = snapshot(app)
    for headers in callers(teams_world, factory, who):
        response = _request(client, teams_world, ALL_ENDPOINTS, endpoint, headers)
        slug = None if who == "anonymous" and headers else error
        body = assert_error(response, status, slug, headers)
        if status == 404:
            missing = _request(client, teams_world, ALL_ENDPOINTS, endpoint, headers, missing=True)
            assert body == missing.get_json()
        assert snapshot(app) == before


@pytest.mark.parametrize("endpoint", list(ALL_ENDPOINTS))
def test_admin_may(teams_world, client, factory, app, endpoint):
    """The control for the refusals above: the same request succeeds for a platform admin (no
    member); the organiser's and members' own successes are in the happy-path tests above."""
    before = snapshot(app)
    response = _request(client, teams_world, ALL_ENDPOINTS, endpoint,
                        factory.headers(teams_world.admin))
    assert response.status_code == ALL_ENDPOINTS[endpoint][3], response.get_data(as_text=True)
    if ALL_ENDPOINTS[endpoint][0] == "GET":
        assert snapshot(app) == before
    else:
        assert snapshot(app) != before


def test_team_of_another_community_through_own_id_space(world, client, factory, app, red):
    """An organiser of the other community gets 404 on this community's team even via POST/DELETE
    with a body naming one of their own volunteers."""
    headers = factory.headers(world.other_organiser)
    before = snapshot(app)
    assert_error(client.post(f"{API}/teams/{red}/members", json={"user_id": world.other_volunteer.id},
                             headers=headers), 404, "not_found")
    assert_error(client.patch(f"{API}/teams/{red}", json={"leader_id": world.other_volunteer.id},
                              headers=headers), 404, "not_found")
    assert snapshot(app) == before

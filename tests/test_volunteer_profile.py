"""The volunteer profile (party member, in service or retired, skills, tags) and the skills list."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.communities.models import VolunteerProfile
from app.extensions import db
from tests.helpers import assert_error, assert_field_error

API = "/api/v1"
URL = f"{API}/me/volunteer-profile"


def stored(app, user_id: int):
    """(party_member, status, skills, tags) as stored, or None when there is no profile."""
    with app.app_context():
        profile = db.session.get(VolunteerProfile, user_id)
        if profile is None:
            return None
        return profile.party_member, profile.status, list(profile.skills), list(profile.tags)


def all_profiles(app):
    with app.app_context():
        return [(p.user_id, p.party_member, p.status, list(p.skills), list(p.tags))
                for p in db.session.scalars(sa.select(VolunteerProfile)
                                            .order_by(VolunteerProfile.user_id))]


@pytest.fixture
def skills(client, world, factory) -> dict[str, str]:
    response = client.get(f"{API}/skills", headers=factory.headers(world.volunteer))
    assert response.status_code == 200
    return {s["code"]: s["label"] for s in response.get_json()}


# --- the skills list ----------------------------------------------------------------------

def test_skills_list(client, world, factory):
    response = client.get(f"{API}/skills", headers=factory.headers(world.resident))
    assert response.status_code == 200
    items = response.get_json()
    assert isinstance(items, list) and len(items) >= 5
    assert all(set(s) == {"code", "label"} for s in items)
    codes = [s["code"] for s in items]
    assert len(codes) == len(set(codes))
    assert all(code.isascii() and code == code.lower() and code for code in codes)
    labels = {s["label"] for s in items}
    # The skills the product names (PRODUCT.md, "People").
    assert {"水电维修", "家政", "陪护", "法律咨询", "跑腿代购"} <= labels


# --- reading and writing the profile ------------------------------------------------------

def test_me_without_a_profile(client, world, factory):
    me = client.get(f"{API}/me", headers=factory.headers(world.volunteer)).get_json()
    assert me["id"] == world.volunteer.id and me["display_name"] == "王建国"
    assert me["memberships"] == [{"community_id": world.community.id, "role": "volunteer"}]
    assert me["volunteer_profile"] is None


def test_set_the_whole_profile(client, world, factory, app, skills):
    chosen = list(skills)[:2]
    headers = factory.headers(world.volunteer)
    response = client.patch(URL, json={"party_member": True, "status": "retired", "skills": chosen,
                                       "tags": ["老党员", "热心肠"]}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["party_member"] is True and body["status"] == "retired"
    assert body["skills"] == chosen
    assert body["skill_labels"] == [skills[c] for c in chosen]
    assert body["tags"] == ["老党员", "热心肠"]
    assert body["updated_at"].endswith("+08:00")
    assert stored(app, world.volunteer.id) == (True, "retired", chosen, ["老党员", "热心肠"])
    me = client.get(f"{API}/me", headers=headers).get_json()
    assert me["volunteer_profile"] == body


def test_patch_is_partial(client, world, factory, app, skills):
    headers = factory.headers(world.volunteer)
    codes = list(skills)
    assert client.patch(URL, json={"party_member": True, "status": "in_service",
                                   "skills": codes[:3], "tags": ["骑手"]},
                        headers=headers).status_code == 200

    assert client.patch(URL, json={"tags": ["夜班", "骑手"]}, headers=headers).status_code == 200
    assert stored(app, world.volunteer.id) == (True, "in_service", codes[:3], ["夜班", "骑手"])

    assert client.patch(URL, json={"skills": [codes[4]]}, headers=headers).status_code == 200
    assert stored(app, world.volunteer.id) == (True, "in_service", [codes[4]], ["夜班", "骑手"])

    assert client.patch(URL, json={"party_member": False}, headers=headers).status_code == 200
    assert stored(app, world.volunteer.id) == (False, "in_service", [codes[4]], ["夜班", "骑手"])

    assert client.patch(URL, json={"status": None}, headers=headers).status_code == 200
    assert stored(app, world.volunteer.id) == (False, None, [codes[4]], ["夜班", "骑手"])

    assert client.patch(URL, json={"skills": [], "tags": []}, headers=headers).status_code == 200
    assert stored(app, world.volunteer.id) == (False, None, [], [])

    # An empty patch changes nothing but is fine.
    response = client.patch(URL, json={}, headers=headers)
    assert response.status_code == 200
    assert stored(app, world.volunteer.id) == (False, None, [], [])


def test_first_partial_patch_creates_a_default_profile(client, world, factory, app):
    response = client.patch(URL, json={"tags": ["新人"]}, headers=factory.headers(world.resident))
    assert response.status_code == 200
    assert stored(app, world.resident.id) == (False, None, [], ["新人"])


def test_profiles_are_per_person(client, world, factory, app, skills):
    code = next(iter(skills))
    client.patch(URL, json={"party_member": True, "skills": [code]},
                 headers=factory.headers(world.volunteer))
    client.patch(URL, json={"status": "retired"}, headers=factory.headers(world.organiser))
    assert stored(app, world.volunteer.id) == (True, None, [code], [])
    assert stored(app, world.organiser.id) == (False, "retired", [], [])
    assert stored(app, world.resident.id) is None
    other = client.get(f"{API}/me", headers=factory.headers(world.organiser)).get_json()
    assert other["volunteer_profile"]["skills"] == []


def test_duplicates_are_collapsed_keeping_order(client, world, factory, app, skills):
    a, b = list(skills)[:2]
    response = client.patch(URL, json={"skills": [b, a, b, a], "tags": ["乙", "甲", "乙", " 甲 "]},
                            headers=factory.headers(world.volunteer))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["skills"] == [b, a]
    assert response.json["tags"] == ["乙", "甲"]
    assert stored(app, world.volunteer.id)[2:] == ([b, a], ["乙", "甲"])


def test_all_skills_and_ten_tags(client, world, factory, app, skills):
    tags = [f"标签{i}" for i in range(9)] + ["长" * 16]
    response = client.patch(URL, json={"skills": list(skills), "tags": tags},
                            headers=factory.headers(world.volunteer))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert stored(app, world.volunteer.id)[2:] == (list(skills), tags)


def test_unusual_tags_are_kept(client, world, factory, app):
    headers = factory.headers(world.volunteer)
    for tag in ["🚲骑手", "a", "x' OR 1=1 --", "Ça", "👩‍🔧", "  修车  ", "𠀀", "<b>热心</b>"]:
        response = client.patch(URL, json={"tags": [tag]}, headers=headers)
        assert response.status_code == 200, (tag, response.get_data(as_text=True))
        assert response.json["tags"] == [tag.strip()]
        assert stored(app, world.volunteer.id)[3] == [tag.strip()]


# --- refusals -----------------------------------------------------------------------------

BAD_PROFILE_INPUT = [
    ({"party_member": "yes"}, "party_member"),
    ({"party_member": "true"}, "party_member"),
    ({"party_member": 1}, "party_member"),
    ({"party_member": 0}, "party_member"),
    ({"party_member": None}, "party_member"),
    ({"party_member": [True]}, "party_member"),
    ({"status": "active"}, "status"),
    ({"status": "Retired"}, "status"),
    ({"status": ""}, "status"),
    ({"status": "退休"}, "status"),
    ({"status": 1}, "status"),
    ({"status": True}, "status"),
    ({"skills": ["flying"]}, "skills"),
    ({"skills": ["水电维修"]}, "skills"),
    ({"skills": ["REPAIR"]}, "skills"),
    ({"skills": ["repair "]}, "skills"),
    ({"skills": "repair"}, "skills"),
    ({"skills": None}, "skills"),
    ({"skills": [1]}, "skills"),
    ({"skills": [None]}, "skills"),
    ({"skills": {"repair": True}}, "skills"),
    ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
    ({"tags": ["长" * 17]}, "tags"),
    ({"tags": ["a" * 17]}, "tags"),
    ({"tags": [""]}, "tags"),
    ({"tags": ["   "]}, "tags"),
    ({"tags": ["好\x00"]}, "tags"),
    ({"tags": ["好\n人"]}, "tags"),
    ({"tags": ["\u202e好人"]}, "tags"),
    ({"tags": [5]}, "tags"),
    ({"tags": [None]}, "tags"),
    ({"tags": "老党员"}, "tags"),
    ({"tags": None}, "tags"),
    ({"user_id": 2}, "user_id"),
    ({"is_admin": True}, "is_admin"),
    ({"points": 100}, "points"),
    ({"updated_at": "2020-01-01T00:00:00Z"}, "updated_at"),
    ({"skill_labels": ["家政"]}, "skill_labels"),
    ({"party_member": True, "role": "organiser"}, "role"),
    ({"tags": ["ok"], "skills": ["repair", "nope"]}, "skills"),
]


def test_bad_profile_input(client, world, factory, app, skills):
    headers = factory.headers(world.volunteer)
    code = next(iter(skills))
    # Start from a known profile and prove each refusal leaves it untouched.
    assert client.patch(URL, json={"party_member": False, "status": "in_service",
                                   "skills": [code], "tags": ["原样"]},
                        headers=headers).status_code == 200
    before = all_profiles(app)
    assert before == [(world.volunteer.id, False, "in_service", [code], ["原样"])]
    for body, field in BAD_PROFILE_INPUT:
        assert_field_error(client.patch(URL, json=body, headers=headers), field, note=body)
        assert all_profiles(app) == before, body


def test_a_refusal_writes_nothing_even_if_other_fields_are_fine(client, world, factory, app):
    headers = factory.headers(world.volunteer)
    response = client.patch(URL, json={"party_member": True, "status": "retired", "skills": ["nope"]},
                            headers=headers)
    assert_field_error(response, "skills")
    assert stored(app, world.volunteer.id) is None
    assert client.get(f"{API}/me", headers=headers).json["volunteer_profile"] is None


def test_profile_bodies_that_are_not_objects(client, world, factory, app):
    headers = factory.headers(world.volunteer)
    assert_error(client.patch(URL, data="{party_member: true}", content_type="application/json",
                              headers=headers), 400)
    assert_error(client.patch(URL, json=[{"party_member": True}], headers=headers), 422)
    assert_error(client.patch(URL, json=True, headers=headers), 422)
    assert all_profiles(app) == []


def test_profile_needs_a_token(client, world, app):
    assert_error(client.patch(URL, json={"party_member": True}), 401, "unauthorized")
    assert_error(client.patch(URL, json={"party_member": True},
                              headers={"Authorization": "Bearer nope"}), 401)
    assert_error(client.get(f"{API}/me"), 401, "unauthorized")
    assert all_profiles(app) == []


def test_profile_other_methods(client, world, factory, app):
    headers = factory.headers(world.volunteer)
    for method in ("GET", "PUT", "POST", "DELETE"):
        response = client.open(URL, method=method, json={"party_member": True}, headers=headers)
        assert_error(response, 405, "method_not_allowed", method)
    assert all_profiles(app) == []

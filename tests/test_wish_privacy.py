"""Who sees what of a wish: contact phone and address in full only for the owner, the
community's organisers and the volunteer who holds it (each reveal to that volunteer logged);
masked for everyone else. Lists: visibility per role, filters, paging, sort by skill match."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.helpers import assert_error, reading
from tests.wish_helpers import Kit, counts, set_wish_columns

PHONE, MASKED, ADDRESS = "13812345678", "138****5678", "远创樾府 3 栋 502 室"


@pytest.fixture
def kit(app, client, factory, world):
    kit = Kit(app, client, factory, world)
    kit.neighbour = factory.member(world.community, factory.user("邻居刘"), "resident")
    return kit


def reveals(app, wid: int | None = None) -> list[tuple[int, int]]:
    from app.wishes.models import ContactReveal

    with reading(app) as session:
        query = sa.select(ContactReveal.wish_id, ContactReveal.viewer_id).order_by(
            ContactReveal.id)
        if wid is not None:
            query = query.where(ContactReveal.wish_id == wid)
        return [tuple(r) for r in session.execute(query)]


def assert_full(wish: dict) -> None:
    assert wish["contact_phone"] == PHONE
    assert wish["address"] == ADDRESS
    assert wish["contact_revealed"] is True


def assert_masked(wish: dict, owner_name: str) -> None:
    assert wish["contact_phone"] == MASKED
    assert wish["address"] is None
    assert wish["contact_revealed"] is False
    assert wish["owner_id"] is None
    text = json.dumps(wish, ensure_ascii=False)
    # Nothing personal anywhere in the body: not in the timeline, not in a note.
    assert PHONE not in text and ADDRESS not in text
    assert owner_name not in text, "the owner's name shows although it is masked"


def posted(kit) -> int:
    return kit.post_wish(kit.resident, contact_phone=PHONE, address=ADDRESS)["id"]


# --- one wish, each role ------------------------------------------------------------------

@pytest.mark.parametrize("state", ["pending", "open", "claimed", "fulfilled", "closed"])
def test_owner_and_organisers_see_contact_details_in_full_without_a_reveal_log(kit, app,
                                                                              state):
    wid = kit.make(state, contact_phone=PHONE, address=ADDRESS)
    logged = reveals(app)  # the claim's own answer showed the claimer: logged as theirs
    assert {viewer for _w, viewer in logged} <= {kit.volunteer.id}
    for user in (kit.resident, kit.organiser, kit.w.admin):
        wish = kit.wish(wid, user)
        assert_full(wish)
        assert wish["owner_name"] == kit.resident.display_name
    assert kit.wish(wid, kit.resident)["owner_id"] == kit.resident.id
    assert reveals(app) == logged


@pytest.mark.parametrize("state", ["pending", "open", "claimed", "fulfilled", "closed"])
def test_other_volunteers_and_residents_see_them_masked(kit, app, state):
    wid = kit.make(state, contact_phone=PHONE, address=ADDRESS)
    logged = reveals(app)
    for user in (kit.volunteer2, kit.neighbour):
        wish = kit.wish(wid, user)
        assert_masked(wish, kit.resident.display_name)
        assert wish["owner_name"] == kit.resident.display_name[0] + "*" * (
            len(kit.resident.display_name) - 1)
    assert reveals(app) == logged
    # Another community's people do not see the wish at all.
    for user in (kit.w.other_organiser, kit.w.other_volunteer, kit.w.outsider):
        assert_error(kit.get(f"/wishes/{wid}", user), 404)


def test_the_claimer_sees_them_while_holding_and_every_look_is_logged(kit, app):
    wid = posted(kit)
    kit.do(wid, "approve", kit.organiser, level=1)
    # Before claiming: masked, like any volunteer.
    assert_masked(kit.wish(wid, kit.volunteer), kit.resident.display_name)
    assert reveals(app) == []
    claimed = kit.do(wid, "claim", kit.volunteer)
    logged = len(reveals(app, wid))
    if claimed["contact_revealed"]:  # the claim's own answer is a reveal too
        assert_full(claimed)
        assert logged == 1
    for n in range(1, 4):
        assert_full(kit.wish(wid, kit.volunteer))
        assert reveals(app, wid) == [(wid, kit.volunteer.id)] * (logged + n)
    kit.do(wid, "fulfil", kit.volunteer)
    logged = len(reveals(app, wid))
    assert_full(kit.wish(wid, kit.volunteer))  # still holds it while awaiting confirmation
    assert len(reveals(app, wid)) == logged + 1
    # Closed: the volunteer no longer sees them, and nothing more is logged.
    kit.do(wid, "confirm", kit.resident, rating=5)
    logged = len(reveals(app, wid))
    wish = kit.wish(wid, kit.volunteer)
    assert wish["contact_phone"] == MASKED and wish["address"] is None
    assert wish["contact_revealed"] is False
    assert len(reveals(app, wid)) == logged
    # The owner and organisers looking were never logged as reveals.
    assert {viewer for _w, viewer in reveals(app)} == {kit.volunteer.id}


@pytest.mark.parametrize("how", ["release", "organiser_release", "lapse"])
def test_a_former_claimer_sees_them_masked(kit, app, how):
    wid = posted(kit)
    kit.do(wid, "approve", kit.organiser, level=1)
    kit.do(wid, "claim", kit.volunteer)
    assert_full(kit.wish(wid, kit.volunteer))
    if how == "release":
        kit.do(wid, "release", kit.volunteer)
    elif how == "organiser_release":
        kit.do(wid, "release", kit.organiser)
    else:
        from datetime import timedelta

        from app.db import utcnow

        set_wish_columns(app, wid, fulfil_due_at=utcnow() - timedelta(minutes=1))
        kit.tick()
    logged = len(reveals(app, wid))
    wish = kit.wish(wid, kit.volunteer)
    assert wish["status"] == "open"
    assert_masked(wish, kit.resident.display_name)
    assert len(reveals(app, wid)) == logged
    # The next claimer sees them.
    kit.do(wid, "claim", kit.volunteer2)
    assert_full(kit.wish(wid, kit.volunteer2))
    assert_masked(kit.wish(wid, kit.volunteer), kit.resident.display_name)


def test_a_list_that_shows_the_claimer_the_contact_details_logs_the_reveal(kit, app):
    wid = posted(kit)
    kit.do(wid, "approve", kit.organiser, level=1)
    kit.do(wid, "claim", kit.volunteer)
    logged = len(reveals(app, wid))
    page = kit.ok(kit.get("/wishes?claimed_by_me=true", kit.volunteer))
    (item,) = page["items"]
    if item["contact_revealed"]:
        assert_full(item)
        assert len(reveals(app, wid)) == logged + 1, "a list revealed contact details unlogged"
    else:
        assert item["contact_phone"] == MASKED and item["address"] is None
    # Other volunteers' lists mask them.
    for item in kit.ok(kit.get("/wishes", kit.volunteer2))["items"]:
        assert_masked(item, kit.resident.display_name)


def test_a_wish_without_contact_details_needs_no_reveal(kit, app):
    wid = kit.make("claimed", contact_phone=None, address=None)
    wish = kit.wish(wid, kit.volunteer)
    assert wish["contact_phone"] is None and wish["address"] is None
    assert reveals(app) == []


def test_proxy_posted_wishes_mask_the_residents_name_and_phone(kit, app):
    body = {"title": "帮老人买降压药", "category": "errands", "address": ADDRESS,
            "on_behalf_of": {"name": "周大爷", "phone": PHONE}}
    wid = kit.ok(kit.post(f"/boards/{kit.board['id']}/wishes", kit.organiser, body), 201)["id"]
    kit.do(wid, "approve", kit.organiser, level=1)
    wish = kit.wish(wid, kit.volunteer2)
    assert_masked(wish, "周大爷")
    assert wish["owner_name"] == "周**"
    kit.do(wid, "claim", kit.volunteer)
    wish = kit.wish(wid, kit.volunteer)
    assert_full(wish)
    assert wish["owner_name"] == "周大爷"


def test_the_public_board_page_shows_no_personal_data(kit, client):
    wid = posted(kit)
    kit.do(wid, "approve", kit.organiser, level=1)
    kit.do(wid, "claim", kit.volunteer)
    html = client.get(f"/b/{kit.board['token']}").get_data(as_text=True)
    assert "厨房水龙头漏水" in html  # the title is public
    for secret in (PHONE, MASKED, ADDRESS, kit.resident.display_name, kit.resident.phone):
        assert secret not in html


# --- lists: who sees which wishes ---------------------------------------------------------

@pytest.fixture
def spread(kit):
    """Wishes in every state on two boards of the community, and one in the other community."""
    kit.settings(max_active_claims=20)
    kit.board2 = kit.create_board(kit.cid, "第二网格")
    s = {}
    s["pending"] = kit.make("pending", category="repair")
    s["open"] = kit.make("open", category="errands")
    s["claimed"] = kit.make("claimed", category="repair")
    s["fulfilled"] = kit.make("fulfilled", category="companionship")
    s["closed"] = kit.make("closed", category="other")
    s["rejected"] = kit.make("rejected", category="repair")
    s["cancelled"] = kit.make("cancelled", category="policy")
    s["neighbour_pending"] = kit.make("pending", owner=kit.neighbour, category="repair")
    s["board2_open"] = kit.post_wish(kit.neighbour, board=kit.board2, category="life_help")["id"]
    kit.do(s["board2_open"], "approve", kit.organiser, level=1)
    s["held_by_2"] = kit.make("claimed", owner=kit.neighbour, claimer=kit.volunteer2)
    other_board = kit.create_board(kit.w.other.id, "芙蓉墙")
    s["elsewhere"] = kit.post_wish(kit.w.other_volunteer, board=other_board)["id"]
    kit.do(s["elsewhere"], "approve", kit.w.other_organiser, level=1)
    kit.spread = s
    return s


def ids(kit, user, query: str = "") -> list[int]:
    page = kit.ok(kit.get(f"/wishes?per_page=100{query}", user))
    assert page["total"] == len(page["items"])
    return [w["id"] for w in page["items"]]


def test_organisers_see_every_wish_of_their_communities_newest_first(kit, spread):
    mine = sorted((v for k, v in spread.items() if k != "elsewhere"), reverse=True)
    assert ids(kit, kit.organiser) == mine
    assert ids(kit, kit.w.other_organiser) == [spread["elsewhere"]]
    assert set(ids(kit, kit.w.admin)) == set(spread.values())
    assert ids(kit, kit.w.outsider) == []


def test_residents_see_their_own_and_the_public_states_of_others(kit, spread):
    public = {"open", "claimed", "fulfilled", "closed", "board2_open", "held_by_2"}
    mine = {"pending", "open", "claimed", "fulfilled", "closed", "rejected", "cancelled"}
    assert set(ids(kit, kit.resident)) == {spread[k] for k in public | mine}
    assert set(ids(kit, kit.neighbour)) == {spread[k] for k in public | {"neighbour_pending"}}
    assert set(ids(kit, kit.resident, "&mine=true")) == {spread[k] for k in mine}


def test_volunteers_see_the_public_states_and_what_they_hold(kit, spread):
    public = {"open", "claimed", "fulfilled", "closed", "board2_open", "held_by_2"}
    for volunteer in (kit.volunteer, kit.volunteer2):
        assert set(ids(kit, volunteer)) == {spread[k] for k in public}
    assert set(ids(kit, kit.volunteer, "&claimed_by_me=true")) == {
        spread["claimed"], spread["fulfilled"], spread["closed"]}
    assert ids(kit, kit.volunteer2, "&claimed_by_me=true") == [spread["held_by_2"]]
    assert ids(kit, kit.volunteer, "&status=open") == sorted(
        [spread["open"], spread["board2_open"]], reverse=True)


def test_list_filters(kit, spread, factory):
    s, o = spread, kit.organiser
    assert set(ids(kit, o, f"&board_id={kit.board2['id']}")) == {s["board2_open"]}
    assert set(ids(kit, o, f"&board_id={kit.board['id']}")) == {
        v for k, v in s.items() if k not in ("board2_open", "elsewhere")}
    assert set(ids(kit, o, "&status=pending")) == {s["pending"], s["neighbour_pending"]}
    assert set(ids(kit, o, "&status=claimed")) == {s["claimed"], s["held_by_2"]}
    assert set(ids(kit, o, "&category=repair")) == {
        s["pending"], s["claimed"], s["rejected"], s["neighbour_pending"], s["held_by_2"]}
    assert set(ids(kit, o, "&category=repair&status=pending")) == {
        s["pending"], s["neighbour_pending"]}
    assert set(ids(kit, o, f"&community_id={kit.cid}")) == {
        v for k, v in s.items() if k != "elsewhere"}
    assert ids(kit, o, f"&community_id={kit.w.other.id}") == []
    # Someone in both communities narrows by community.
    both = factory.member(kit.w.other, kit.volunteer, "volunteer")
    assert ids(kit, both, f"&community_id={kit.w.other.id}") == [s["elsewhere"]]
    assert s["elsewhere"] in ids(kit, both)
    assert s["elsewhere"] not in ids(kit, both, f"&community_id={kit.cid}")
    # Escalated: the dispatch queue.
    from app.db import utcnow

    set_wish_columns(kit.app, s["open"], escalated_at=utcnow())
    assert ids(kit, o, "&escalated=true") == [s["open"]]
    assert s["open"] not in ids(kit, o, "&escalated=false")
    assert kit.wish(s["open"])["escalated"] is True


@pytest.mark.parametrize("query", ["status=lost", "category=food", "per_page=101", "page=0",
                                   "board_id=x", "after=0", "mine=maybe", "sort=random"])
def test_bad_list_queries_are_refused(kit, query):
    assert_error(kit.get(f"/wishes?{query}", kit.organiser), 422)


def test_paging_by_page_and_by_after(kit, app):
    made = [kit.post_wish(kit.resident, title=f"心愿 {n}")["id"] for n in range(23)]
    newest_first = sorted(made, reverse=True)
    pages = [kit.ok(kit.get(f"/wishes?per_page=10&page={p}", kit.organiser)) for p in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [10, 10, 3]
    assert all(p["total"] == 23 and p["per_page"] == 10 for p in pages)
    assert [w["id"] for p in pages for w in p["items"]] == newest_first
    assert kit.ok(kit.get("/wishes?per_page=10&page=4", kit.organiser))["items"] == []
    # Keyset: follow next_after to the end, no gaps, no repeats.
    seen, after = [], None
    for _ in range(10):
        query = "/wishes?per_page=10" + (f"&after={after}" if after else "")
        page = kit.ok(kit.get(query, kit.organiser))
        seen += [w["id"] for w in page["items"]]
        after = page.get("next_after")
        if after is None:
            break
    assert seen == newest_first
    # `after` is exclusive and combines with filters.
    tail = kit.ok(kit.get(f"/wishes?per_page=5&after={newest_first[4]}", kit.organiser))
    assert [w["id"] for w in tail["items"]] == newest_first[5:10]
    kit.do(newest_first[7], "approve", kit.organiser, level=1)
    page = kit.ok(kit.get(f"/wishes?status=open&after={newest_first[3]}", kit.organiser))
    assert [w["id"] for w in page["items"]] == [newest_first[7]]


def test_sort_by_match_puts_wishes_fitting_my_skills_first(kit):
    categories = ["errands", "repair", "other", "companionship", "repair", "life_help",
                  "digital", "errands"]
    made = {}
    for category in categories:
        wid = kit.post_wish(kit.resident, category=category)["id"]
        kit.do(wid, "approve", kit.organiser, level=1)
        made[wid] = category
    kit.ok(kit.patch("/me/volunteer-profile", kit.volunteer, {"skills": ["repair", "legal"]}))
    kit.ok(kit.patch("/me/volunteer-profile", kit.volunteer2, {"skills": ["caregiving"]}))
    newest = sorted(made, reverse=True)

    def order(user):
        return [w["id"] for w in kit.ok(kit.get("/wishes?sort=match&per_page=100",
                                                user))["items"]]

    repair = [w for w in newest if made[w] == "repair"]
    assert order(kit.volunteer) == repair + [w for w in newest if w not in repair]
    care = [w for w in newest if made[w] in ("companionship", "life_help")]
    assert order(kit.volunteer2) == care + [w for w in newest if w not in care]
    # No skills: newest first, like the default order.
    assert order(kit.neighbour) == newest
    assert [w["id"] for w in kit.ok(kit.get("/wishes?per_page=100", kit.volunteer))["items"]] \
        == newest


def test_every_list_item_is_masked_for_people_who_may_not_see(kit, spread):
    neighbours = {spread["neighbour_pending"], spread["board2_open"], spread["held_by_2"]}
    logged = counts(kit.app)["contact_reveals"]
    for user, own_or_held in ((kit.volunteer2, {spread["held_by_2"]}),
                              (kit.neighbour, neighbours)):
        items = kit.ok(kit.get("/wishes?per_page=100", user))["items"]
        assert {w["id"] for w in items} & own_or_held
        for item in items:
            if item["id"] in own_or_held:
                assert_full(item)
                continue
            owner = kit.neighbour if item["id"] in neighbours else kit.resident
            assert_masked(item, owner.display_name)
    # Only volunteer 2's look at the wish they hold was a reveal.
    assert counts(kit.app)["contact_reveals"] == logged + 1


def test_keyset_paging_refuses_match_order(client, world, factory):
    headers = factory.headers(world.volunteer)
    response = client.get("/api/v1/wishes", query_string={"sort": "match", "after": 5},
                          headers=headers)
    assert response.status_code == 422
    assert "after" in response.get_json()["errors"]
    matched = client.get("/api/v1/wishes", query_string={"sort": "match"}, headers=headers)
    assert matched.status_code == 200 and matched.get_json()["next_after"] is None

"""Leaderboards (issue 3): points earned in Asia/Shanghai periods, ties, teams, frozen weeks.

Entries are append-only, so to put points in the past the tests move the ledger service's
clock (`app.ledger.service.utcnow`) while posting; the leaderboard's own "today" is real.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.db import write_transaction
from app.extensions import db
from app.ledger import leaderboard, service
from app.ledger.models import LeaderboardSnapshot, TransferKind
from tests.helpers import assert_error, reading
from tests.ledger_helpers import API, adjust, ledger_rows, set_clock

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), SHANGHAI).astimezone(UTC)


def today_shanghai() -> date:
    return datetime.now(SHANGHAI).date()


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


THIS_MONDAY = monday_of(today_shanghai())
LAST_WEEK = THIS_MONDAY - timedelta(days=7)
TWO_WEEKS_AGO = THIS_MONDAY - timedelta(days=14)


class Ledger:
    """Posts points at a chosen moment through the ledger service."""

    def __init__(self, app, community_id: int):
        self.app, self.cid = app, community_id
        self.n = 0

    def _post(self, when: datetime, fn):
        with pytest.MonkeyPatch.context() as patch:
            set_clock(patch, when)
            with self.app.app_context(), write_transaction(db.session):
                return fn()

    def earn(self, user, amount: int, when: datetime, kind=TransferKind.EARN_WISH):
        self.n += 1
        n = self.n

        def post():
            return service.transfer(self.cid, service.issuance_account(self.cid),
                                    service.user_account(self.cid, user.id), amount, kind,
                                    f"test:{n}:award").transfer.amount
        assert self._post(when, post) == amount

    def redeem(self, user, amount: int, when: datetime, refund: bool = False):
        self.n += 1
        n = self.n

        def post():
            mine = service.user_account(self.cid, user.id)
            store = service.store_account(self.cid)
            service.transfer(self.cid, mine, store, amount, TransferKind.REDEMPTION,
                             f"redemption:{n}")
            if refund:
                service.transfer(self.cid, store, mine, amount, TransferKind.REFUND,
                                 f"redemption:{n}:refund")
        self._post(when, post)

    def adjust(self, user, amount: int, when: datetime, actor):
        self._post(when, lambda: service.adjust(self.cid, user.id, amount, "调整", actor.id))


@pytest.fixture
def ledger(app, world):
    return Ledger(app, world.community.id)


@pytest.fixture
def member(world, factory):
    headers = factory.headers(world.volunteer)

    def read(client, **query):
        response = client.get(f"{API}/communities/{world.community.id}/leaderboard",
                              query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()
    return read


def ranking(body: dict, key: str = "user_id") -> list[tuple]:
    return [(item["rank"], item[key], item["points"]) for item in body["items"]]


def freeze(app, *args: str):
    result = app.test_cli_runner().invoke(args=["leaderboard", "freeze", *args])
    return result


def froze_count(result) -> int:
    assert result.exit_code == 0, result.output
    match = re.search(r"froze (\d+)", result.output)
    assert match, result.output
    return int(match.group(1))


# --- periods ------------------------------------------------------------------------------

def test_weeks_start_on_monday_midnight_in_shanghai(client, world, ledger, member):
    sunday_night = shanghai(LAST_WEEK - timedelta(days=1), 23, 59, 59)  # 15:59:59 UTC Sunday
    monday_midnight = shanghai(LAST_WEEK, 0, 0, 0)  # 16:00 UTC on Sunday
    ledger.earn(world.volunteer, 10, sunday_night)
    ledger.earn(world.resident, 20, monday_midnight)
    earlier = member(client, period="week", on=(LAST_WEEK - timedelta(days=3)).isoformat())
    assert (earlier["start"], earlier["end"]) == (TWO_WEEKS_AGO.isoformat(), LAST_WEEK.isoformat())
    assert ranking(earlier) == [(1, world.volunteer.id, 10)]
    for day in (LAST_WEEK, LAST_WEEK + timedelta(days=6)):  # its Monday and its Sunday
        later = member(client, period="week", on=day.isoformat())
        assert (later["start"], later["end"]) == (
            LAST_WEEK.isoformat(), THIS_MONDAY.isoformat())
        assert ranking(later) == [(1, world.resident.id, 20)]
        assert later["frozen"] is False  # never frozen: computed live
    assert ranking(member(client, period="all")) == [(1, world.resident.id, 20),
                                                     (2, world.volunteer.id, 10)]


def test_this_week_is_the_default(client, world, ledger, member):
    ledger.earn(world.volunteer, 10, shanghai(LAST_WEEK, 9))
    now = datetime.now(UTC)
    ledger.earn(world.resident, 7, now)
    body = member(client)
    assert (body["period"], body["by"]) == ("week", "volunteer")
    assert body["start"] == monday_of(now.astimezone(SHANGHAI).date()).isoformat()
    assert ranking(body) == [(1, world.resident.id, 7)]
    assert body["frozen"] is False
    assert body["champion"] == body["items"][0]


def test_months_are_shanghai_calendar_months(client, world, ledger, member):
    first_of_this_month = today_shanghai().replace(day=1)
    first_of_last_month = (first_of_this_month - timedelta(days=1)).replace(day=1)
    last_day_before = first_of_last_month - timedelta(days=1)
    ledger.earn(world.volunteer, 10, shanghai(last_day_before, 23, 59, 59))
    ledger.earn(world.resident, 20, shanghai(first_of_last_month, 0, 0, 0))
    ledger.earn(world.resident, 5, shanghai(first_of_this_month - timedelta(days=1), 23, 59))
    earlier = member(client, period="month", on=last_day_before.isoformat())
    assert earlier["start"] == last_day_before.replace(day=1).isoformat()
    assert earlier["end"] == first_of_last_month.isoformat()
    assert ranking(earlier) == [(1, world.volunteer.id, 10)]
    later = member(client, period="month", on=(first_of_last_month + timedelta(days=14)).isoformat())
    assert (later["start"], later["end"]) == (first_of_last_month.isoformat(),
                                              first_of_this_month.isoformat())
    assert ranking(later) == [(1, world.resident.id, 25)]
    assert ranking(member(client, period="month")) == []
    everything = member(client, period="all")
    assert (everything["start"], everything["end"]) == (None, None)
    assert ranking(everything) == [(1, world.resident.id, 25), (2, world.volunteer.id, 10)]


# --- what counts ----------------------------------------------------------------------------

def test_points_earned_count_not_the_balance(client, world, ledger, member, factory):
    when = shanghai(LAST_WEEK, 10)
    later = when + timedelta(hours=1)
    spender, saver, corrected = world.volunteer, world.resident, world.organiser
    ledger.earn(spender, 30, when)
    ledger.earn(spender, 20, when, kind=TransferKind.EARN_REPORT)
    ledger.redeem(spender, 45, later)  # spending does not lower the rank...
    ledger.earn(saver, 40, when)
    ledger.redeem(saver, 10, later, refund=True)  # ...and a refund is not earning
    ledger.earn(corrected, 30, when)
    ledger.adjust(corrected, 15, later, world.organiser)  # adjustments correct what was earned
    ledger.adjust(corrected, -5, later, world.organiser)
    body = member(client, period="week", on=LAST_WEEK.isoformat())
    assert ranking(body) == [(1, spender.id, 50), (2, saver.id, 40), (3, corrected.id, 40)]
    by_user = {item["user_id"]: item for item in body["items"]}
    assert by_user[spender.id]["wishes_fulfilled"] == 1  # one wish award, one report
    assert by_user[saver.id]["wishes_fulfilled"] == 1
    assert by_user[spender.id]["display_name"] == "王建国"
    # Someone whose points were all taken back is not on the board.
    factory.member(world.community, world.other_volunteer, "volunteer")
    ledger.earn(world.other_volunteer, 5, when)
    ledger.adjust(world.other_volunteer, -5, later, world.organiser)
    body = member(client, period="week", on=LAST_WEEK.isoformat())
    assert world.other_volunteer.id not in {item["user_id"] for item in body["items"]}


def test_other_communities_points_do_not_count(client, world, app, member):
    other = Ledger(app, world.other.id)
    other.earn(world.other_volunteer, 99, shanghai(LAST_WEEK, 10))
    assert member(client, period="all")["items"] == []


# --- ties ---------------------------------------------------------------------------------

def test_equal_points_rank_the_earlier_achiever_first(client, world, ledger, member):
    base = shanghai(LAST_WEEK, 10)
    # The resident (the higher user id) reaches 30 first, so ranks first.
    ledger.earn(world.resident, 30, base)
    ledger.earn(world.volunteer, 10, base + timedelta(minutes=1))
    ledger.earn(world.volunteer, 20, base + timedelta(minutes=2))
    ledger.earn(world.organiser, 31, base + timedelta(minutes=3))
    assert world.volunteer.id < world.resident.id
    body = member(client, period="week", on=LAST_WEEK.isoformat())
    assert ranking(body) == [(1, world.organiser.id, 31), (2, world.resident.id, 30),
                             (3, world.volunteer.id, 30)]
    assert body["champion"]["user_id"] == world.organiser.id
    # The answer is the same every time.
    assert all(member(client, period="week", on=LAST_WEEK.isoformat()) == body
               for _ in range(3))
    # When the volunteer then earns more, the order follows the points.
    ledger.earn(world.volunteer, 2, base + timedelta(minutes=4))
    assert ranking(member(client, period="week", on=LAST_WEEK.isoformat()))[0] == (
        1, world.volunteer.id, 32)


def make_team(client, org, cid: int, name: str, members) -> int:
    response = client.post(f"{API}/communities/{cid}/teams", json={"name": name}, headers=org)
    assert response.status_code == 201, response.get_data(as_text=True)
    tid = response.get_json()["id"]
    for user in members:
        added = client.post(f"{API}/teams/{tid}/members", json={"user_id": user.id}, headers=org)
        assert added.status_code in (200, 201), added.get_data(as_text=True)
    return tid


def test_team_leaderboard_sums_members_and_breaks_ties_by_lower_id(
        client, world, factory, ledger, member):
    org = factory.headers(world.organiser)
    cid = world.community.id
    helper = factory.member(world.community, factory.user("赵小蜜蜂"), "volunteer")
    loner = factory.member(world.community, factory.user("钱独行"), "volunteer")
    red = make_team(client, org, cid, "“红色足印”老党员志愿服务队", [world.volunteer, helper])
    bees = make_team(client, org, cid, "小蜜蜂志愿服务队", [helper])
    twin = make_team(client, org, cid, "小蜜蜂二队", [helper])
    empty = make_team(client, org, cid, "空队", [])
    base = shanghai(LAST_WEEK, 10)
    ledger.earn(world.volunteer, 25, base)
    ledger.earn(helper, 15, base + timedelta(minutes=1))
    ledger.earn(loner, 100, base + timedelta(minutes=2))  # in no team
    body = member(client, period="week", by="team", on=LAST_WEEK.isoformat())
    assert body["by"] == "team"
    # bees and twin: the same member, the same points, the same moment: lower id first.
    assert bees < twin
    assert ranking(body, "team_id") == [(1, red, 40), (2, bees, 15), (3, twin, 15)]
    assert empty not in {item["team_id"] for item in body["items"]}
    assert body["items"][0]["display_name"] == "“红色足印”老党员志愿服务队"
    assert body["champion"]["team_id"] == red


# --- limits and validation ----------------------------------------------------------------

def test_limit_champion_and_validation(client, world, factory, ledger, member):
    empty = member(client, period="all")
    assert (empty["items"], empty["champion"]) == ([], None)
    base = shanghai(LAST_WEEK, 10)
    people = [world.volunteer, world.resident, world.organiser]
    for n, person in enumerate(people):
        ledger.earn(person, 10 * (n + 1), base + timedelta(minutes=n))
    top = member(client, period="all", limit=2)
    assert ranking(top) == [(1, world.organiser.id, 30), (2, world.resident.id, 20)]
    assert top["champion"] == top["items"][0]
    url = f"{API}/communities/{world.community.id}/leaderboard"
    headers = factory.headers(world.volunteer)
    for query in ({"period": "year"}, {"by": "street"}, {"limit": 0}, {"limit": 101},
                  {"limit": "ten"}, {"on": "2025-13-01"}):
        assert_error(client.get(url, query_string=query, headers=headers), 422)
    # Any member may look; others not at all.
    assert client.get(url, headers=factory.headers(world.resident)).status_code == 200
    for user in (world.other_organiser, world.outsider):
        assert_error(client.get(url, headers=factory.headers(user)), 404)
    assert_error(client.get(url), 401)


# --- frozen weeks -------------------------------------------------------------------------

def test_freeze_stores_closed_weeks_and_they_never_change(client, world, app, ledger, member):
    base = shanghai(LAST_WEEK, 10)
    ledger.earn(world.volunteer, 30, shanghai(TWO_WEEKS_AGO, 10))
    ledger.earn(world.volunteer, 40, base)
    ledger.earn(world.resident, 35, base + timedelta(minutes=1))
    ledger.earn(world.organiser, 5, datetime.now(UTC))  # this week: stays live
    live = member(client, period="week", on=LAST_WEEK.isoformat())
    assert live["frozen"] is False
    assert ranking(live) == [(1, world.volunteer.id, 40), (2, world.resident.id, 35)]
    live_team = member(client, period="week", by="team", on=LAST_WEEK.isoformat())

    # Closed weeks: two here (from the first entry's week), and last week of the community
    # with no entries.
    assert froze_count(freeze(app)) == 3
    frozen = member(client, period="week", on=(LAST_WEEK + timedelta(days=3)).isoformat())
    assert frozen["frozen"] is True and frozen["frozen_at"]
    assert frozen["items"] == live["items"]
    assert frozen["champion"]["user_id"] == world.volunteer.id
    assert member(client, period="week", by="team", on=LAST_WEEK.isoformat())["items"] == (
        live_team["items"])

    # A later adjustment, dated inside that week, lands in the ledger...
    ledger.adjust(world.resident, 40, base + timedelta(days=2), world.organiser)
    assert ranking(member(client, period="all"))[0] == (1, world.resident.id, 75)
    with app.app_context():  # computed afresh, last week would now have another champion
        recomputed = leaderboard.live_ranking(world.community.id, "week", LAST_WEEK,
                                              "volunteer", 10)
    assert (recomputed[0]["user_id"], recomputed[0]["points"]) == (world.resident.id, 75)
    # ...but the champion of the closed week stays who it was.
    after = member(client, period="week", on=LAST_WEEK.isoformat())
    assert after["frozen"] is True
    assert after["items"] == live["items"]
    assert after["champion"]["user_id"] == world.volunteer.id
    assert after["frozen_at"] == frozen["frozen_at"]
    # The current week is never frozen.
    current = member(client, period="week")
    assert current["frozen"] is False and ranking(current) == [(1, world.organiser.id, 5)]

    # Running it again (cron) freezes nothing and changes nothing.
    state = ledger_rows(app)
    assert froze_count(freeze(app)) == 0
    assert ledger_rows(app) == state
    assert member(client, period="week", on=LAST_WEEK.isoformat()) == after


def test_freeze_a_given_week_and_refuse_an_open_one(client, world, app, ledger, member):
    ledger.earn(world.volunteer, 12, shanghai(TWO_WEEKS_AGO, 10))
    assert froze_count(freeze(app, "--week", (TWO_WEEKS_AGO + timedelta(days=4)).isoformat())) == 2
    body = member(client, period="week", on=TWO_WEEKS_AGO.isoformat())
    assert body["frozen"] is True and ranking(body) == [(1, world.volunteer.id, 12)]
    assert froze_count(freeze(app, "--week", TWO_WEEKS_AGO.isoformat())) == 0
    state = ledger_rows(app)
    refused = freeze(app, "--week", today_shanghai().isoformat())
    assert refused.exit_code != 0
    assert ledger_rows(app) == state
    # Last week was skipped by hand; the cron run picks it up (for both communities).
    assert member(client, period="week", on=LAST_WEEK.isoformat())["frozen"] is False
    assert froze_count(freeze(app)) == 2
    assert member(client, period="week", on=LAST_WEEK.isoformat())["frozen"] is True


def test_adjustment_over_http_dated_in_a_frozen_week(client, world, app, factory, ledger, member,
                                                     monkeypatch):
    org = factory.headers(world.organiser)
    ledger.earn(world.volunteer, 20, shanghai(LAST_WEEK, 10))
    ledger.earn(world.resident, 10, shanghai(LAST_WEEK, 11))
    assert froze_count(freeze(app)) == 2
    before = member(client, period="week", on=LAST_WEEK.isoformat())
    set_clock(monkeypatch, shanghai(LAST_WEEK + timedelta(days=5), 20))
    response = adjust(client, org, world.community.id, world.resident.id, 50, "补记上周活动")
    assert response.status_code == 201, response.get_data(as_text=True)
    monkeypatch.undo()
    assert member(client, period="week", on=LAST_WEEK.isoformat()) == before
    assert ranking(member(client, period="month", on=LAST_WEEK.isoformat()))[0][1] == (
        world.resident.id)


def test_overlapping_freeze_runs_store_each_week_once(app, world, ledger):
    """Cron on two servers may run the freeze at the same moment: neither run may fail, and
    each closed week is stored once (what `flask leaderboard freeze` does, in 4 threads)."""
    ledger.earn(world.volunteer, 10, shanghai(TWO_WEEKS_AGO, 10))
    ledger.earn(world.resident, 20, shanghai(LAST_WEEK, 10))
    runs = 4
    barrier = threading.Barrier(runs)
    frozen, errors = [], []

    def run():
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                count = 0
                for cid in (world.community.id, world.other.id):
                    with write_transaction(db.session):
                        count += sum(leaderboard.freeze_week(cid, week)
                                     for week in leaderboard.weeks_to_freeze(cid))
                frozen.append(count)
        except Exception as error:  # collected: the test fails on any
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    # Two weeks here, last week there; a run counts a week it stored any ranking of.
    assert len(frozen) == runs and all(count <= 3 for count in frozen) and sum(frozen) >= 3
    with reading(app):
        stored = {(s.community_id, s.week_start, s.by): s.ranking for s in db.session.scalars(
            sa.select(LeaderboardSnapshot))}
        expected = {}
        for cid, week in ((world.community.id, TWO_WEEKS_AGO), (world.community.id, LAST_WEEK),
                          (world.other.id, LAST_WEEK)):
            for by in ("volunteer", "team"):
                expected[cid, week, by] = leaderboard._jsonable(leaderboard.live_ranking(
                    cid, "week", week, by, 100))
    assert stored == expected
    assert [r["user_id"] for r in stored[world.community.id, LAST_WEEK, "volunteer"]] == [
        world.resident.id]
    assert froze_count(freeze(app)) == 0


def test_a_week_frozen_by_hand_does_not_hide_an_older_one(client, world, app, ledger, member):
    ledger.earn(world.volunteer, 12, shanghai(TWO_WEEKS_AGO, 10))
    ledger.earn(world.resident, 20, shanghai(LAST_WEEK, 10))
    assert froze_count(freeze(app, "--week", LAST_WEEK.isoformat())) == 2  # both communities
    assert member(client, period="week", on=TWO_WEEKS_AGO.isoformat())["frozen"] is False
    assert froze_count(freeze(app)) == 1  # the older week cron had missed, for this community
    older = member(client, period="week", on=TWO_WEEKS_AGO.isoformat())
    assert older["frozen"] is True and ranking(older) == [(1, world.volunteer.id, 12)]
    assert froze_count(freeze(app)) == 0


# --- the pre-aggregated totals (app/ledger/totals.py) -------------------------------------

def test_a_team_is_its_current_members_and_a_members_loss_costs_it_nothing(
        client, world, factory, ledger, member):
    """Team totals follow membership at once (joining brings the member's points of the
    period, leaving takes them away), and a member whose period nets a loss adds nothing."""
    org = factory.headers(world.organiser)
    cid = world.community.id
    helper = factory.member(world.community, factory.user("赵小蜜蜂"), "volunteer")
    team = make_team(client, org, cid, "红色足印", [world.volunteer])
    ledger.earn(helper, 40, shanghai(LAST_WEEK, 10))  # points to lose, from an earlier week
    ledger.earn(world.volunteer, 30, datetime.now(UTC))
    ledger.earn(helper, 20, datetime.now(UTC))
    week = {"period": "week", "by": "team"}
    assert ranking(member(client, **week), "team_id") == [(1, team, 30)]

    added = client.post(f"{API}/teams/{team}/members", json={"user_id": helper.id}, headers=org)
    assert added.status_code in (200, 201), added.get_data(as_text=True)
    assert ranking(member(client, **week), "team_id") == [(1, team, 50)]
    for source, points in (("wish", 50), ("report", None)):
        body = member(client, source=source, **week)
        assert ranking(body, "team_id") == ([(1, team, points)] if points else [])

    # The helper's week goes below zero: the team keeps only the volunteer's 30...
    ledger.adjust(helper, -25, datetime.now(UTC), world.organiser)
    assert ranking(member(client, **week), "team_id") == [(1, team, 30)]
    assert ranking(member(client, period="week")) == [(1, world.volunteer.id, 30)]
    # ...and counts the helper again once they are back above it.
    ledger.earn(helper, 10, datetime.now(UTC))
    assert ranking(member(client, **week), "team_id") == [(1, team, 35)]

    gone = client.delete(f"{API}/teams/{team}/members/{world.volunteer.id}", headers=org)
    assert gone.status_code in (200, 204), gone.get_data(as_text=True)
    assert ranking(member(client, **week), "team_id") == [(1, team, 5)]
    assert client.delete(f"{API}/teams/{team}", headers=org).status_code in (200, 204)
    assert member(client, **week)["items"] == []


def test_a_ranking_reflects_the_transfer_committed_just_before(client, world, ledger, member):
    for n in range(1, 6):
        ledger.earn(world.resident, 7, datetime.now(UTC))
        assert ranking(member(client, period="week")) == [(1, world.resident.id, 7 * n)]
        assert ranking(member(client, period="month")) == [(1, world.resident.id, 7 * n)]
        assert ranking(member(client, period="all")) == [(1, world.resident.id, 7 * n)]


def test_verify_finds_tampered_totals_and_rebuild_restores_them(app, world, ledger):
    ledger.earn(world.volunteer, 40, shanghai(LAST_WEEK, 10))
    ledger.earn(world.resident, 15, datetime.now(UTC), kind=TransferKind.EARN_REPORT)
    from app.ledger.models import LeaderboardTotal
    from app.ledger.verify import verify

    with app.app_context(), write_transaction(db.session):
        db.session.execute(sa.update(LeaderboardTotal).where(
            LeaderboardTotal.subject_id == world.volunteer.id, LeaderboardTotal.period == "week")
            .values(points=LeaderboardTotal.points + 1))
        db.session.execute(sa.delete(LeaderboardTotal).where(
            LeaderboardTotal.subject_id == world.resident.id,
            LeaderboardTotal.source == "report"))
    with app.app_context():
        problems = next(r for r in verify() if r.community_id == world.community.id).violations
        db.session.remove()
    assert any("leaderboard total" in p and f"volunteer {world.volunteer.id} week" in p
               for p in problems), problems
    assert any("report" in p and f"volunteer {world.resident.id}" in p for p in problems), problems

    result = app.test_cli_runner().invoke(args=["leaderboard", "rebuild-totals"])
    assert result.exit_code == 0, result.output
    assert "guanyuan: leaderboard totals rebuilt" in result.output
    with app.app_context():
        assert [r.violations for r in verify()] == [[], []]
        db.session.remove()
    refused = app.test_cli_runner().invoke(args=["leaderboard", "rebuild-totals", "--community",
                                                 "nowhere"])
    assert refused.exit_code != 0 and "nowhere" in refused.output


def test_standing_ranks_anyone_as_the_whole_ranking_does(app, world, factory, ledger):
    """The pages' own-rank read (its rows and two counts) agrees with the full ranking, ties
    (the earlier achiever, then the lower id) and all."""
    people = [factory.member(world.community, factory.user(f"志愿者{n}"), "volunteer")
              for n in range(13)]
    moment = datetime.now(UTC) - timedelta(minutes=30)
    for n, person in enumerate(people):
        ledger.earn(person, 10 + (n % 4) * 5, moment + timedelta(seconds=n))
    with reading(app):
        full = leaderboard.leaderboard(world.community.id, "week", "volunteer", 100)["items"]
        for person in people:
            own, count = leaderboard.standing(world.community.id, "week", "volunteer",
                                              [person.id])
            assert own == [row for row in full if row["user_id"] == person.id]
            assert count == len(full) == 13
        nobody, count = leaderboard.standing(world.community.id, "week", "volunteer",
                                             [world.outsider.id])
        assert nobody == [] and count == 13

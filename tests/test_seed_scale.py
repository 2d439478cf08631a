"""scripts/seed_scale.py at a tiny scale: the bulk seeder of the benchmarks (issues 10, 12)
leaves a database the app agrees with — `flask ledger verify` passes, the stats endpoint counts
what was written, and the leaderboards' pre-aggregates rank what the seeded transfers earned."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.ledger.totals import SOURCE_OF_KIND
from app.ledger.verify import verify
from tests.conftest import ROOT

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
CST = timedelta(hours=8)


def _seed_scale():
    if "seed_scale" not in sys.modules:
        spec = importlib.util.spec_from_file_location("seed_scale",
                                                      ROOT / "scripts" / "seed_scale.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["seed_scale"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["seed_scale"]


def _in(moment: datetime | None, first: date, last: date) -> bool:
    return moment is not None and first <= (moment + CST).date() <= last


def test_seed_writes_a_ledger_that_verifies_and_stats_that_add_up(app, database_url, client,
                                                                   factory):
    seed_scale = _seed_scale()
    shape = seed_scale.Shape(wishes=300, communities=3, months=2, now=NOW, keep=True)
    seeded = seed_scale.seed(database_url, shape, progress=lambda _line: None)

    with app.app_context():
        reports = verify()
        db.session.remove()
    assert [r.code for r in reports] == ["scale001", "scale002", "scale003"]
    assert all(r.ok for r in reports), [v for r in reports for v in r.violations[:5]]
    assert all(r.entries > 0 for r in reports)
    assert sum(len(c.wishes) for c in seeded.communities) == 300

    community = seeded.communities[0]
    first, last = date(2026, 11, 1), date(2026, 11, 30)
    organiser = type("Organiser", (), {"id": community.organiser_ids[0]})
    response = client.get(f"/api/v1/communities/{community.id}/stats",
                          query_string={"from": first.isoformat(), "to": last.isoformat()},
                          headers=factory.headers(organiser))
    assert response.status_code == 200, response.get_data(as_text=True)
    stats = response.get_json()

    cohort = [w for w in community.wishes if _in(w["created_at"], first, last)]
    by_status = {s: sum(1 for w in cohort if w["status"] == s)
                 for s in ("closed", "cancelled", "rejected", "open", "claimed")}
    wishes = stats["wishes"]
    assert wishes["posted"] == len(cohort) > 0
    assert {s: wishes[s] for s in by_status} == by_status
    assert wishes["completion_rate"] == round(
        by_status["closed"] / (len(cohort) - by_status["cancelled"] - by_status["rejected"]), 4)
    rated = [w["rating"] for w in cohort if w["rating"] and not w["rating_auto"]]
    assert wishes["satisfaction"]["count"] == len(rated)
    claimed = wishes["time_to_claim_seconds"]
    assert 0 < claimed["median"] <= claimed["p90"]

    issued = sum(t[7] for t in community.transfers
                 if t[3].startswith("earn_") and _in(t[10], first, last))
    redeemed = sum(t[7] for t in community.transfers
                   if t[3] == "redemption" and _in(t[10], first, last))
    assert stats["points"]["issued"] == issued > 0
    assert stats["points"]["redeemed"] == redeemed
    assert stats["volunteers"]["active"] > 0
    assert stats["reports"]["received"] == sum(
        1 for r in community.reports if _in(r["created_at"], first, last))


def _week_earnings(community, first: date, last: date, source: str | None) -> dict[int, list]:
    """user id → [points, wishes fulfilled] earned in [first, last], from the seeded transfers."""
    user_of = {a["id"]: a["user_id"] for a in community.accounts if a["kind"] == "user"}
    earned = defaultdict(lambda: [0, 0])
    for _id, _cid, _key, kind, _src, destination, _req, amount, _memo, _actor, at in \
            community.transfers:
        if kind in SOURCE_OF_KIND and amount > 0 and _in(at, first, last) and (
                source is None or SOURCE_OF_KIND[kind] == source):
            earned[user_of[destination]][0] += amount
            earned[user_of[destination]][1] += kind == "earn_wish"
    return earned


def test_seed_writes_the_leaderboard_totals_a_ranking_of_the_transfers(app, database_url,
                                                                      client, factory):
    seed_scale = _seed_scale()
    shape = seed_scale.Shape(wishes=400, communities=2, months=1, now=NOW, keep=True,
                             ledger_rows=600, first_wishes=100)
    seeded = seed_scale.seed(database_url, shape, progress=lambda _line: None)
    community = seeded.communities[0]
    assert len(community.volunteer_ids) >= 8 and len(community.wishes) == 100
    assert seeded.counts["leaderboard_totals"] > 0
    with app.app_context():
        assert all(r.ok for r in verify()), "the totals or the ledger do not verify"
        members = defaultdict(set)
        for team_id, user_id in db.session.execute(sa.text(
                "SELECT team_id, user_id FROM team_members WHERE community_id = :c"),
                {"c": community.id}):
            members[team_id].add(user_id)
        db.session.remove()

    monday = (NOW + CST).date() - timedelta(days=(NOW + CST).date().weekday())
    organiser = type("Organiser", (), {"id": community.organiser_ids[0]})
    for by, source in (("volunteer", None), ("volunteer", "activity"), ("team", None)):
        earned = _week_earnings(community, monday, monday + timedelta(days=6), source)
        if by == "team":
            earned = {team: [sum(earned[u][i] for u in users if u in earned and earned[u][0] > 0)
                             for i in (0, 1)] for team, users in members.items()}
        expected = sorted((p for p, _w in earned.values() if p > 0), reverse=True)[:10]
        response = client.get(f"/api/v1/communities/{community.id}/leaderboard",
                              query_string={"period": "week", "by": by, "on": NOW.date(),
                                            **({"source": source} if source else {})},
                              headers=factory.headers(organiser))
        assert response.status_code == 200, response.get_data(as_text=True)
        board = response.get_json()
        assert not board["frozen"] and board["start"] == monday.isoformat()
        items, key = board["items"], "user_id" if by == "volunteer" else "team_id"
        assert [i["points"] for i in items] == expected and expected, (by, source)
        assert all([i["points"], i["wishes_fulfilled"]] == list(earned[i[key]]) for i in items)

"""What the public notice page (公示栏) of a community shows: read by anyone, without a login.

Only what a community posts on its notice board: the weekly 积分冠军 (last closed week's, as
frozen by `flask leaderboard freeze`) and this week's live leader, the week's rankings, this
month's 办结率, the boards' 红黄蓝, the points rules and the store's rewards. Never a phone, an
address, a wish's description or anything else personal: people appear by display name only,
and every name goes through `public_name`, which masks it for those who asked (王** for 王小明).
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from app.communities.models import Community, VolunteerProfile
from app.extensions import db
from app.i18n import N_
from app.ledger import leaderboard
from app.ledger import service as ledger
from app.stats import ratings
from app.stats import service as stats
from app.store import service as store
from app.store.models import REWARD_KINDS

TOP = 10
MAX_REWARDS = 30  # one printed page of them
MASKED = "masked"
CATEGORY_LABELS = {"wish": N_("微心愿"), "report": N_("随手拍"), "activity": N_("志愿活动")}


def community_by_code(code: str) -> Community | None:
    return db.session.scalar(sa.select(Community).where(Community.code == code))


def public_name(name: str, choice: str | None) -> str:
    """A person's name as the public page shows it: in full, or masked (王小明 → 王**)."""
    if choice != MASKED or not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def _choices(user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return dict(db.session.execute(
        sa.select(VolunteerProfile.user_id, VolunteerProfile.public_name)
        .where(VolunteerProfile.user_id.in_(user_ids))).all())


def _people(rows: list[dict], choices: dict[int, str]) -> list[dict]:
    """Ranking rows with nothing but rank, public name, points and wishes done."""
    return [{"rank": r["rank"], "display_name": public_name(r["display_name"],
                                                             choices.get(r["user_id"])),
             "points": r["points"], "wishes_fulfilled": r["wishes_fulfilled"]} for r in rows]


def _teams(rows: list[dict]) -> list[dict]:
    return [{"rank": r["rank"], "display_name": r["display_name"], "points": r["points"],
             "wishes_fulfilled": r["wishes_fulfilled"]} for r in rows]


def notice(community: Community) -> dict:
    """Everything the notice page shows, already stripped to what may be public."""
    cid = community.id
    today = stats.today()
    last_week = leaderboard.week_start(today) - timedelta(days=7)
    champion = leaderboard.leaderboard(cid, "week", "volunteer", 1, on=last_week)
    volunteers = leaderboard.leaderboard(cid, "week", "volunteer", TOP, on=today)
    teams = leaderboard.leaderboard(cid, "week", "team", TOP, on=today)
    choices = _choices({r["user_id"] for r in champion["items"] + volunteers["items"]})
    people = _people(volunteers["items"], choices)
    return {
        "today": today,
        "champion": {
            "start": last_week, "end": last_week + timedelta(days=6),
            "frozen": champion["frozen"],
            "person": (_people(champion["items"], choices) or [None])[0],
        },
        "week": {"start": leaderboard.week_start(today), "end": today,
                 "leader": people[0] if people else None,
                 "volunteers": people, "teams": _teams(teams["items"])},
        "month": _month_figures(cid, today),
        "ratings": board_colours(cid, today),
        "rules": _rules(cid),
        "rewards": _rewards(cid),
    }


def _month_figures(cid: int, today: date) -> dict:
    first, _last = stats.month_bounds(today)
    wishes = stats.community_stats([cid], first, today)["wishes"]
    rate = stats.completion_rate(wishes)
    return {"start": first, "end": today, "posted": wishes["posted"], "closed": wishes["closed"],
            "counted": wishes["posted"] - wishes["cancelled"] - wishes["rejected"],
            "completion_rate": rate, "percent": percent(rate)}


def percent(rate: float | None) -> str | None:
    """0.8571 → '85.7%', 1.0 → '100%' (None stays None: nothing to count yet)."""
    if rate is None:
        return None
    return f"{rate * 100:.1f}".removesuffix(".0") + "%"


def board_colours(cid: int, today: date) -> dict:
    """Each board's 红黄蓝 for last month and this month so far, whether each month is final."""
    months = [stats.previous_month(today.replace(day=1)), today.replace(day=1)]
    boards: dict[int, dict] = {}
    for month in months:
        for row in ratings.month_ratings(cid, month):
            board = boards.setdefault(row["board_id"], {"name": row["board_name"], "cells": {}})
            board["cells"][month] = row["rating"]
    return {"months": [{"month": m, "closed": ratings.is_closed(cid, m)} for m in months],
            "boards": [boards[b] for b in sorted(boards)]}


def _rules(cid: int) -> dict:
    document = ledger.rules_document(cid)
    table: dict[str, dict[int, int]] = {}
    for rule in document["rules"]:
        table.setdefault(rule["category"], {})[rule["level"]] = rule["points"]
    return {"levels": list(ledger.LEVELS),
            "rows": [{"category": c, "label": CATEGORY_LABELS[c], "points": table[c]}
                     for c in ledger.CATEGORIES if c in table],
            "factors": [(n, document["satisfaction_factors"][f"star_{n}"])
                        for n in range(5, 0, -1)],
            "daily_earn_cap": document["daily_earn_cap"],
            "expiry_months": document["expiry_months"]}


def _rewards(cid: int) -> list[dict]:
    found = db.session.scalars(store.rewards_query(cid, only_active=True).limit(MAX_REWARDS))
    return [{"name": r.name, "kind": r.kind, "kind_label": REWARD_KINDS[r.kind], "cost": r.cost,
             "stock": r.stock} for r in found]

"""The floor: a few lines of Flask per benchmarked request doing only its essential work.

scripts/bench measures our app against this one in the same run, on the same database (the same
tables, rows and indexes), under the same gunicorn settings. Each view verifies the JWT with
PyJWT (the app's secret, HS256), checks that its login (the `fam` claim) is not revoked and
loads the user in one statement, then does what the request must do in raw SQL (psycopg on
PostgreSQL, sqlite3 on SQLite) over one connection per worker process, and answers the same
status and JSON keys as our app (tests/test_bench.py compares them), so the floor cannot
silently do less work. Writes run in one transaction (BEGIN IMMEDIATE on SQLite, with the
pragmas of app/db.py), with conditional UPDATEs in place of read-then-write.

    FLOOR_DATABASE_URL=postgresql+psycopg://… FLOOR_SECRET=… gunicorn -c gunicorn.conf.py \\
        --pythonpath scripts 'floor_app:create_app()'
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone

import jwt
from flask import Flask, g, jsonify, request
from jinja2 import Environment

SHANGHAI = timezone(timedelta(hours=8))  # Asia/Shanghai keeps UTC+8 without daylight saving
PUBLIC_STATES = ("open", "claimed", "fulfilled", "closed")
# The transfer kinds a leaderboard counts: what was earned, and adjustments (signed).
COUNTED_KINDS = ("earn_wish", "earn_report", "earn_activity", "adjustment")
KINDS_SQL = ", ".join(f"'{k}'" for k in COUNTED_KINDS)
PUBLIC_SQL = ", ".join(f"'{s}'" for s in ("open", "claimed", "fulfilled", "closed"))
SOURCES = {"wish": "earned_wish", "report": "earned_report", "activity": "earned_activity",
           "adjustment": "adjusted"}
PICKUP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CATEGORY_LABELS = {"life_help": "生活帮扶", "repair": "维修", "errands": "跑腿代办",
                   "companionship": "陪伴", "policy": "政策咨询", "digital": "数字助老",
                   "other": "其他"}
STATUS_LABELS = {"pending": "待审核", "open": "待认领", "claimed": "已认领", "fulfilled": "待确认",
                 "closed": "已完成", "rejected": "未通过", "cancelled": "已撤回"}
DEFAULT_CLAIMS, DEFAULT_FULFIL_DAYS = 3, 3  # wishes/service.py DEFAULT_SETTINGS


class Refusal(Exception):
    def __init__(self, status: int, slug: str):
        super().__init__(slug)
        self.status, self.slug = status, slug


# --- the database: one connection per worker ---------------------------------------------

class Database:
    """One connection, opened lazily in the worker (after gunicorn forks), and `:name` SQL."""

    def __init__(self, url: str):
        self.postgres = url.startswith("postgresql")
        self.url = url
        self._conn = None
        self._sql: dict[str, str] = {}
        self._tables: dict[str, bool] = {}

    def connection(self):
        if self._conn is None:
            if self.postgres:
                import psycopg
                from psycopg.rows import dict_row

                conninfo = re.sub(r"^postgresql(\+\w+)?://", "postgresql://", self.url)
                # Autocommit: a read is one statement, no BEGIN/COMMIT round trips; writes
                # open a transaction explicitly (write()).
                self._conn = psycopg.connect(conninfo, autocommit=True, row_factory=dict_row,
                                             prepare_threshold=0)
            else:
                path = re.sub(r"^sqlite:/{2,3}", "", self.url)
                path = "/" + path.lstrip("/") if self.url.startswith("sqlite:////") else path
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                # The pragmas of app/db.py configure_sqlite.
                busy = int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000"))
                for pragma in (f"busy_timeout = {busy}", "journal_mode = WAL",
                               "synchronous = NORMAL", "foreign_keys = ON"):
                    conn.execute(f"PRAGMA {pragma}")
                self._conn = conn
        return self._conn

    def _text(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = re.sub(r":(\w+)", r"%(\1)s", sql) if self.postgres else sql
            self._sql[sql] = found
        return found

    def all(self, sql: str, **params) -> list:
        return [dict(r) for r in self.connection().execute(self._text(sql), params).fetchall()]

    def one(self, sql: str, **params) -> dict | None:
        row = self.connection().execute(self._text(sql), params).fetchone()
        return dict(row) if row is not None else None

    def run(self, sql: str, **params) -> int:
        return self.connection().execute(self._text(sql), params).rowcount

    def has_table(self, name: str) -> bool:
        """Whether the schema has a table (asked once per worker)."""
        if name not in self._tables:
            self._tables[name] = self.one(
                "SELECT to_regclass(:name) IS NOT NULL AS found" if self.postgres else
                "SELECT count(*) > 0 AS found FROM sqlite_master WHERE type = 'table' "
                "AND name = :name", name=name)["found"]
        return bool(self._tables[name])

    def begin(self) -> None:
        self.connection().execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.connection().execute("COMMIT")

    def rollback(self) -> None:
        self.connection().execute("ROLLBACK")

    def stamp(self, moment: datetime):
        """A UTC time as the column stores it (SQLite: naive text, like app.db.UTCDateTime)."""
        return moment if self.postgres else moment.replace(tzinfo=None).isoformat(" ")

    def when(self, value) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def local_iso(db: Database, value) -> str | None:
    moment = db.when(value)
    return moment.astimezone(SHANGHAI).isoformat() if moment else None


# --- who is asking ------------------------------------------------------------------------

def authenticate(db: Database, secret: str, *, cookie: bool = False) -> dict:
    """Verify the access JWT and, in one statement, that its login is live and its user exists."""
    if cookie:
        token = request.cookies.get("xy_access", "")
    else:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer":
            raise Refusal(401, "unauthorized")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"])
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise Refusal(401, "unauthorized") from None
    if claims.get("type") != "access" or not claims.get("fam"):
        raise Refusal(401, "unauthorized")
    user = db.one("SELECT u.id, u.display_name, f.revoked_at FROM token_families f "
                  "JOIN users u ON u.id = f.user_id WHERE f.id = :fam AND u.id = :uid",
                  fam=claims["fam"], uid=user_id)
    if user is None or user["revoked_at"] is not None:
        raise Refusal(401, "token_revoked")
    return user


def week_bounds(now: datetime) -> tuple[date, date, datetime, datetime]:
    """This Asia/Shanghai week (Monday 00:00 to Monday 00:00) as local dates and UTC instants."""
    today = now.astimezone(SHANGHAI).date()
    start = today - timedelta(days=today.weekday())
    end = start + timedelta(days=7)

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).astimezone(UTC)

    return start, end, midnight(start), midnight(end)


def mask_phone(phone: str | None) -> str | None:
    return phone[:3] + "****" + phone[-4:] if phone else None


def mask_name(name: str | None) -> str | None:
    return name[0] + "*" * max(1, len(name) - 1) if name else None


# --- SQL ----------------------------------------------------------------------------------

# Membership and the account row by its unique key (community_id, key), in one statement.
ACCOUNT = """
    SELECT m.role, a.id, a.balance, a.earned_total, a.redeemed_total, a.entry_count,
           a.earned_wish, a.earned_report, a.earned_activity, a.adjusted
    FROM memberships m
    LEFT JOIN points_accounts a ON a.community_id = m.community_id AND a.key = :key
    WHERE m.community_id = :cid AND m.user_id = :uid
"""
# The newest page of an account's entries by the (account_id, id) index.
ENTRIES = """
    SELECT e.id, e.transfer_id, e.amount, e.balance_after, e.created_at, t.kind,
           t.key AS reference, t.memo
    FROM ledger_entries e JOIN ledger_transfers t ON t.id = e.transfer_id
    WHERE e.account_id = :aid ORDER BY e.account_id DESC, e.id DESC LIMIT :n
"""
# The week's top 10, live: every counted entry of the community's user accounts in the week,
# summed per user (the entries' (community_id, created_at) range), ranked in SQL with the
# app's tie-break (the earlier last entry first, then the lower id).
LEADERBOARD = f"""
    SELECT a.user_id, u.display_name, SUM(e.amount) AS points,
           SUM(CASE WHEN t.kind = 'earn_wish' AND e.amount > 0 THEN 1 ELSE 0 END)
               AS wishes_fulfilled,
           MAX(e.id) AS last_entry_id, MAX(e.created_at) AS last_earned_at
    FROM ledger_entries e
    JOIN points_accounts a ON a.id = e.account_id
    JOIN ledger_transfers t ON t.id = e.transfer_id
    JOIN users u ON u.id = a.user_id
    WHERE e.community_id = :cid AND e.created_at >= :start AND e.created_at < :end
      AND a.kind = 'user' AND t.kind IN ({KINDS_SQL})
    GROUP BY a.user_id, u.display_name
    HAVING SUM(e.amount) > 0
    ORDER BY points DESC, last_entry_id, a.user_id
    LIMIT :n
"""
# The same top 10 where the schema keeps the week's points per volunteer (leaderboard_totals,
# kept by transfer()): one range of its rank index, the last entry's time by primary key.
LEADERBOARD_TOTALS = """
    SELECT t.subject_id AS user_id, u.display_name, t.points, t.wishes_fulfilled,
           t.last_entry_id, e.created_at AS last_earned_at
    FROM leaderboard_totals t
    JOIN users u ON u.id = t.subject_id
    LEFT JOIN ledger_entries e ON e.id = t.last_entry_id
    WHERE t.community_id = :cid AND t.period = 'week' AND t.period_start = :week
      AND t.source = 'all' AND t.by = 'volunteer' AND t.points > 0
    ORDER BY t.points DESC, t.last_entry_id, t.subject_id
    LIMIT :n
"""
WISH_COLUMNS = ("id", "community_id", "board_id", "title", "description", "category", "status",
                "level", "claimer_id", "claimed_at", "fulfil_due_at", "fulfil_extended",
                "fulfilled_at", "fulfil_note", "rating", "comment", "closed_at",
                "points_awarded", "points_capped", "reason", "created_at", "updated_at",
                "opened_at")
WISH_SELECT = (", ".join(f"w.{c}" for c in WISH_COLUMNS)
               + ", w.owner_id, w.proxy_name, w.contact_phone, w.address, w.escalated_at,"
                 " b.name AS board_name, o.display_name AS owner_name,"
                 " c.display_name AS claimer_name")
WISH_JOINS = ("JOIN boards b ON b.id = w.board_id LEFT JOIN users o ON o.id = w.owner_id "
              "LEFT JOIN users c ON c.id = w.claimer_id")
# The lots a debit takes, oldest first (first in, first out), as set-based statements: the
# uses are inserted from a running sum, then the lots lowered by their use.
LOT_USES = """
    INSERT INTO points_lot_uses (lot_id, transfer_id, amount)
    SELECT id, :tid, CASE WHEN remaining < :n - before THEN remaining ELSE :n - before END
    FROM (SELECT id, remaining,
                 SUM(remaining) OVER (ORDER BY earned_on, id) - remaining AS before
          FROM points_lots WHERE account_id = :aid AND remaining > 0) AS ordered
    WHERE before < :n
"""
LOTS_TAKEN = """
    UPDATE points_lots SET remaining = remaining - (
        SELECT u.amount FROM points_lot_uses u
        WHERE u.lot_id = points_lots.id AND u.transfer_id = :tid)
    WHERE id IN (SELECT lot_id FROM points_lot_uses WHERE transfer_id = :tid)
"""

BOARD_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ board.name }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<h1>{{ board.community_name }} · {{ board.name }}</h1><p>{{ board.street }} · {{ board.location }}</p>
<p><a href="/b/{{ board.token }}/wish">发布心愿</a></p><ul>
{% for w in wishes %}<li>{{ w.title }} · {{ w.category }} · {{ w.date }} · {{ w.status }}</li>{% endfor %}
</ul><p>{{ page }} / {{ pages }}</p></body></html>""")
POINTS_PAGE = Environment(autoescape=True).from_string("""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>我的积分</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head><body>
<h1>我的积分</h1><p>{{ user.display_name }}：{{ account.balance }} 分</p>
<p>累计获得 {{ account.earned_total }} · 已兑换 {{ account.redeemed_total }} · 本周 {{ week }}</p>
<ul>{% for e in entries %}
<li>{{ e.created_at }} {{ e.memo }} {{ e.amount }} → {{ e.balance_after }}</li>{% endfor %}</ul>
</body></html>""")


# --- the app ------------------------------------------------------------------------------

def create_app(database_url: str | None = None, secret: str | None = None) -> Flask:
    app = Flask(__name__)
    db = Database(database_url or os.environ["FLOOR_DATABASE_URL"])
    secret = secret or os.environ["FLOOR_SECRET"]
    app.config["FLOOR_DB"] = db

    @app.teardown_request
    def end_transaction(_error):
        # A failure mid-write (an error this floor does not name) must not leave it open.
        if g.get("in_transaction"):
            db.rollback()

    @app.errorhandler(Refusal)
    def refused(error: Refusal):
        if g.get("in_transaction"):
            db.rollback()
            g.in_transaction = False
        return jsonify(code=error.status, error=error.slug, message=error.slug), error.status

    def begin():
        db.begin()
        g.in_transaction = True

    def commit():
        db.commit()
        g.in_transaction = False

    def account_of(cid: int, uid: int) -> dict:
        row = db.one(ACCOUNT, cid=cid, uid=uid, key=f"user:{uid}")
        if row is None:
            raise Refusal(404, "not_found")
        return row

    def community_arg() -> int:
        try:
            return int(request.args["community_id"])
        except (KeyError, ValueError):
            raise Refusal(422, "validation_failed") from None

    @app.get("/readyz")
    def ready():
        db.one("SELECT 1 AS ok")
        return {"status": "ok"}

    @app.get("/api/v1/me/points")
    def points():
        user = authenticate(db, secret)
        cid = community_arg()
        a = account_of(cid, user["id"])
        # pending, service hours and expiry are other causes' figures; the floor of this read
        # is the account row (the definition), so they answer their empty values.
        return {"community_id": cid, "balance": a["balance"] or 0,
                "earned_total": a["earned_total"] or 0,
                "redeemed_total": a["redeemed_total"] or 0, "pending": 0,
                "by_source": {s: a[c] or 0 for s, c in SOURCES.items()},
                "service_hours": 0.0, "expiring": None}

    @app.get("/api/v1/me/ledger")
    def ledger():
        user = authenticate(db, secret)
        cid = community_arg()
        per_page = min(100, int(request.args.get("per_page", 20)))
        a = account_of(cid, user["id"])
        rows = db.all(ENTRIES, aid=a["id"], n=per_page + 1) if a["id"] else []
        items = [{**r, "created_at": local_iso(db, r["created_at"])} for r in rows[:per_page]]
        return {"items": items, "page": 1, "per_page": per_page, "total": a["entry_count"] or 0,
                "next_after": items[-1]["id"] if len(rows) > per_page else None}

    @app.get("/api/v1/communities/<int:cid>/leaderboard")
    def leaderboard(cid: int):
        user = authenticate(db, secret)
        if db.one("SELECT 1 AS x FROM memberships WHERE community_id = :cid AND user_id = :uid",
                  cid=cid, uid=user["id"]) is None:
            raise Refusal(404, "not_found")
        start, end, start_utc, end_utc = week_bounds(datetime.now(UTC))
        limit = min(100, int(request.args.get("limit", 10)))
        if db.has_table("leaderboard_totals"):
            rows = db.all(LEADERBOARD_TOTALS, cid=cid, n=limit,
                          week=start if db.postgres else start.isoformat())
        else:
            rows = db.all(LEADERBOARD, cid=cid, start=db.stamp(start_utc),
                          end=db.stamp(end_utc), n=limit)
        items = [{"rank": i, "user_id": r["user_id"], "display_name": r["display_name"],
                  "points": int(r["points"]), "wishes_fulfilled": int(r["wishes_fulfilled"]),
                  "last_earned_at": local_iso(db, r["last_earned_at"])}
                 for i, r in enumerate(rows, start=1)]
        return {"period": "week", "by": "volunteer", "source": None,
                "start": start.isoformat(), "end": end.isoformat(), "frozen": False,
                "frozen_at": None, "champion": items[0] if items else None, "items": items}

    def present(w: dict, viewer_id: int, organiser: bool) -> dict:
        full = organiser or w["owner_id"] == viewer_id
        holds = w["claimer_id"] == viewer_id and w["status"] in ("claimed", "fulfilled")
        shows = full or holds
        owner_name = w["owner_name"] or w["proxy_name"]
        body = {c: w[c] for c in WISH_COLUMNS}
        for c in ("claimed_at", "fulfil_due_at", "fulfilled_at", "closed_at", "created_at",
                  "updated_at", "opened_at"):
            body[c] = local_iso(db, body[c])
        body["fulfil_extended"] = bool(body["fulfil_extended"])
        body.update(
            category_label=CATEGORY_LABELS.get(w["category"], w["category"]),
            status_label=STATUS_LABELS[w["status"]], board_name=w["board_name"],
            owner_id=w["owner_id"] if full else None,
            owner_name=owner_name if shows else mask_name(owner_name),
            posted_by_proxy=w["owner_id"] is None, claimer_name=w["claimer_name"],
            contact_phone=w["contact_phone"] if shows else mask_phone(w["contact_phone"]),
            address=w["address"] if shows else None, contact_revealed=shows,
            escalated=w["escalated_at"] is not None and w["status"] == "open",
            pending_points=None)
        return body

    @app.get("/api/v1/wishes")
    def wishes():
        user = authenticate(db, secret)
        cid = community_arg()
        per_page = min(100, int(request.args.get("per_page", 20)))
        member = db.one("SELECT role FROM memberships WHERE community_id = :cid AND "
                        "user_id = :uid", cid=cid, uid=user["id"])
        if member is None:  # the app lists nothing of a community one is not in
            return {"items": [], "page": 1, "per_page": per_page, "total": 0, "next_after": None}
        organiser = member["role"] == "organiser"
        visible = "w.community_id = :cid" + ("" if organiser else (
            " AND (w.owner_id = :uid OR w.claimer_id = :uid"
            f" OR w.status IN ({PUBLIC_SQL}))"))
        total = db.one(f"SELECT count(*) AS n FROM wishes w WHERE {visible}",
                       cid=cid, uid=user["id"])["n"]
        rows = db.all(f"SELECT {WISH_SELECT} FROM wishes w {WISH_JOINS} WHERE {visible} "
                      "ORDER BY w.id DESC LIMIT :n", cid=cid, uid=user["id"], n=per_page)
        items = [present(r, user["id"], organiser) for r in rows]
        more = len(items) == per_page and total > per_page
        return {"items": items, "page": 1, "per_page": per_page, "total": total,
                "next_after": items[-1]["id"] if more else None}

    @app.post("/api/v1/wishes/<int:wid>/claim")
    def claim(wid: int):
        user = authenticate(db, secret)
        uid, now = user["id"], datetime.now(UTC)
        begin()
        # The wish and the claimer's membership, locked (PostgreSQL; SQLite's BEGIN IMMEDIATE
        # holds the write lock), with the community's limits and the claims held now.
        wish = db.one(
            "SELECT w.community_id, w.status, w.owner_id, m.role, s.max_active_claims, "
            "s.fulfil_days, (SELECT count(*) FROM wishes h WHERE h.claimer_id = :uid "
            "AND h.status = 'claimed') AS active FROM wishes w JOIN memberships m "
            "ON m.community_id = w.community_id AND m.user_id = :uid "
            "LEFT JOIN wish_settings s ON s.community_id = w.community_id WHERE w.id = :wid"
            + (" FOR UPDATE OF w, m" if db.postgres else ""), uid=uid, wid=wid)
        if wish is None:
            raise Refusal(404, "not_found")
        if wish["status"] != "open":
            raise Refusal(409, "invalid_transition")
        if wish["role"] != "volunteer":
            raise Refusal(403, "forbidden")
        if wish["owner_id"] == uid:
            raise Refusal(403, "own_wish")
        if wish["active"] >= (wish["max_active_claims"] or DEFAULT_CLAIMS):
            raise Refusal(409, "claim_limit_reached")
        due = now + timedelta(days=wish["fulfil_days"] or DEFAULT_FULFIL_DAYS)
        db.run("UPDATE wishes SET status = 'claimed', claimer_id = :uid, claimed_at = :now, "
               "fulfil_due_at = :due, fulfil_extended = :f, updated_at = :now WHERE id = :wid",
               uid=uid, now=db.stamp(now), due=db.stamp(due), f=False, wid=wid)
        db.run("INSERT INTO wish_events (wish_id, community_id, actor_id, action, from_status, "
               "to_status, by_proxy, created_at) VALUES (:wid, :cid, :uid, 'claim', 'open', "
               "'claimed', :f, :now)", wid=wid, cid=wish["community_id"], uid=uid, f=False,
               now=db.stamp(now))
        row = db.one(f"SELECT {WISH_SELECT} FROM wishes w {WISH_JOINS} WHERE w.id = :wid",
                     wid=wid)
        if row["contact_phone"] or row["address"]:
            # The claimer is now shown whom to help: that sight is logged, as the app does.
            db.run("INSERT INTO contact_reveals (wish_id, community_id, viewer_id, created_at) "
                   "VALUES (:wid, :cid, :uid, :now)", wid=wid, cid=wish["community_id"],
                   uid=uid, now=db.stamp(now))
        # The timeline, names in full: the claimer now holds the wish, so may see the owner's.
        events = db.all("SELECT e.action, e.from_status, e.to_status, e.actor_id, "
                        "COALESCE(u.display_name, '系统') AS actor_name, e.by_proxy, e.note, "
                        "e.created_at FROM wish_events e LEFT JOIN users u ON u.id = e.actor_id "
                        "WHERE e.wish_id = :wid ORDER BY e.id", wid=wid)
        commit()
        timeline = [{**e, "by_proxy": bool(e["by_proxy"]),
                     "created_at": local_iso(db, e["created_at"])} for e in events]
        return {**present(row, uid, False), "timeline": timeline}

    @app.post("/api/v1/rewards/<int:rid>/redeem")
    def redeem(rid: int):
        user = authenticate(db, secret)
        body = request.get_json(silent=True)
        quantity = body.get("quantity") if isinstance(body, dict) else None
        if type(quantity) is not int or not 1 <= quantity <= 10:
            raise Refusal(422, "validation_failed")
        uid, now = user["id"], datetime.now(UTC)
        begin()
        reward = db.one("SELECT r.community_id, r.name, r.kind, r.cost, r.stock, r.active, "
                        "r.per_user_monthly_limit FROM rewards r JOIN memberships m "
                        "ON m.community_id = r.community_id AND m.user_id = :uid "
                        "WHERE r.id = :rid" + (" FOR UPDATE OF r" if db.postgres else ""),
                        uid=uid, rid=rid)
        if reward is None:
            raise Refusal(404, "not_found")
        if not reward["active"]:
            raise Refusal(409, "reward_inactive")
        cid, total = reward["community_id"], reward["cost"] * quantity
        if reward["per_user_monthly_limit"] is not None:
            local = now.astimezone(SHANGHAI)
            month = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            taken = db.one("SELECT COALESCE(SUM(quantity), 0) AS n FROM redemptions "
                           "WHERE reward_id = :rid AND user_id = :uid AND status IN "
                           "('awaiting_pickup', 'fulfilled') AND created_at >= :since",
                           rid=rid, uid=uid, since=db.stamp(month.astimezone(UTC)))["n"]
            if taken + quantity > reward["per_user_monthly_limit"]:
                raise Refusal(409, "limit_reached")
        if reward["stock"] is not None and db.run(
                "UPDATE rewards SET stock = stock - :q WHERE id = :rid AND stock >= :q",
                q=quantity, rid=rid) != 1:
            raise Refusal(409, "out_of_stock")
        # Debit the user, then credit the store: every redemption locks them in this order.
        debit = db.one("UPDATE points_accounts SET balance = balance - :n, "
                       "redeemed_total = redeemed_total + :n, entry_count = entry_count + 1 "
                       "WHERE community_id = :cid AND key = :key AND balance >= :n "
                       "RETURNING id, balance", n=total, cid=cid, key=f"user:{uid}")
        if debit is None:
            raise Refusal(409, "insufficient_points")
        credit = db.one("UPDATE points_accounts SET balance = balance + :n, "
                        "redeemed_total = redeemed_total - :n, entry_count = entry_count + 1 "
                        "WHERE community_id = :cid AND key = 'store' RETURNING id, balance",
                        n=total, cid=cid)
        code = "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(10))
        stamp = db.stamp(now)
        redemption = db.one(
            "INSERT INTO redemptions (community_id, reward_id, user_id, reward_name, "
            "reward_kind, unit_cost, quantity, cost_total, status, pickup_code, "
            "wrong_code_attempts, at_counter, created_by_id, created_at) VALUES (:cid, :rid, "
            ":uid, :name, :kind, :cost, :q, :total, 'awaiting_pickup', :code, 0, :f, :uid, "
            ":now) RETURNING id", cid=cid, rid=rid, uid=uid, name=reward["name"],
            kind=reward["kind"], cost=reward["cost"], q=quantity, total=total, code=code,
            f=False, now=stamp)
        transfer = db.one(
            "INSERT INTO ledger_transfers (community_id, key, kind, source_id, destination_id, "
            "requested_amount, amount, memo, actor_id, created_at) VALUES (:cid, :key, "
            "'redemption', :src, :dst, :n, :n, :memo, :uid, :now) RETURNING id",
            cid=cid, key=f"redemption:{redemption['id']}:debit", src=debit["id"],
            dst=credit["id"], n=total, memo=f"兑换：{reward['name']} × {quantity}"[:200],
            uid=uid, now=stamp)
        db.run("INSERT INTO ledger_entries (transfer_id, community_id, account_id, amount, "
               "balance_after, created_at) VALUES (:tid, :cid, :src, :neg, :sb, :now), "
               "(:tid, :cid, :dst, :n, :db, :now)", tid=transfer["id"], cid=cid,
               src=debit["id"], dst=credit["id"], neg=-total, n=total, sb=debit["balance"],
               db=credit["balance"], now=stamp)
        db.run(LOT_USES, tid=transfer["id"], n=total, aid=debit["id"])
        db.run(LOTS_TAKEN, tid=transfer["id"])
        commit()
        return {"id": redemption["id"], "community_id": cid, "reward_id": rid,
                "reward_name": reward["name"], "reward_kind": reward["kind"], "user_id": uid,
                "user_name": user["display_name"], "quantity": quantity,
                "unit_cost": reward["cost"], "cost_total": total, "status": "awaiting_pickup",
                "pickup_code": code, "at_counter": False, "created_by_id": uid,
                "created_at": local_iso(db, now), "fulfilled_at": None,
                "fulfilled_by_id": None, "cancelled_at": None, "cancel_reason": None,
                "locked_until": None}, 201

    @app.get("/b/<token>")
    def board_page(token: str):
        board = db.one("SELECT b.id, b.name, b.location, b.token, b.enabled, "
                       "c.name AS community_name, c.street FROM boards b "
                       "JOIN communities c ON c.id = b.community_id WHERE b.token = :token",
                       token=token)
        if board is None:
            return "<!doctype html><title>找不到心愿墙</title>", 404
        public = f"board_id = :bid AND status IN ({PUBLIC_SQL})"
        total = db.one(f"SELECT count(*) AS n FROM wishes WHERE {public}", bid=board["id"])["n"]
        rows = db.all(f"SELECT title, category, status, created_at FROM wishes WHERE {public} "
                      "ORDER BY id DESC LIMIT 20", bid=board["id"])
        wishes = [{"title": r["title"], "category": CATEGORY_LABELS.get(r["category"], ""),
                   "status": STATUS_LABELS[r["status"]],
                   "date": db.when(r["created_at"]).astimezone(SHANGHAI).date()} for r in rows]
        return BOARD_PAGE.render(board=board, wishes=wishes, page=1,
                                 pages=max(1, -(-total // 20)))

    @app.get("/me/points")
    def points_page():
        try:
            user = authenticate(db, secret, cookie=True)
        except Refusal:
            return "", 302, {"Location": "/login?next=/me/points"}
        member = db.one("SELECT community_id FROM memberships WHERE user_id = :uid "
                        "ORDER BY id LIMIT 1", uid=user["id"])
        if member is None:
            return "<!doctype html><title>403</title>", 403
        cid = member["community_id"]
        a = account_of(cid, user["id"])
        entries = db.all(ENTRIES, aid=a["id"], n=20) if a["id"] else []
        _, _, start_utc, end_utc = week_bounds(datetime.now(UTC))
        week = db.one("SELECT COALESCE(SUM(e.amount), 0) AS n FROM ledger_entries e "
                      "JOIN ledger_transfers t ON t.id = e.transfer_id WHERE e.account_id = :aid "
                      "AND e.created_at >= :start AND e.created_at < :end "
                      f"AND t.kind IN ({KINDS_SQL})", aid=a["id"] or 0,
                      start=db.stamp(start_utc), end=db.stamp(end_utc))["n"]
        return POINTS_PAGE.render(user=user, account=a, entries=entries, week=week)

    return app

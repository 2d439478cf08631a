#!/usr/bin/env python
"""Fill a database with a year of life in many communities, in bulk, for the benchmarks.

    .venv/bin/python scripts/seed_scale.py                                  # issue 12's full size
    .venv/bin/python scripts/seed_scale.py --small --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_small
    .venv/bin/python scripts/seed_scale.py --small --database-url sqlite:////tmp/bench.sqlite3

The full size: 500 000 wishes in 50 communities, 100 000 users, ≥ 1 000 000 ledger entries and
~50 000 redemptions; the first community (the leaderboard's) with 10 000 volunteers and
≥ 1 000 000 entries. `--small`: the 1 k database of the same code path (a first community of
100 wishes, 10 volunteers and ~1 000 entries, then two of 2 500 wishes over 3 months).

It WIPES the database (PostgreSQL: DROP SCHEMA public CASCADE; SQLite: deletes the file), builds
the schema with the real migrations (`flask db upgrade`), then writes, community by community
(PostgreSQL: COPY; SQLite: executemany batches):

- communities under 5 streets and 2 districts; organisers, volunteers (profiles, 3 teams) and
  residents; 8 boards (网格) each, two of them auto-approving; the points rules and policy;
- N wishes over the last `--months` months at Asia/Shanghai daytimes, each lived through the
  real lifecycle in order: post → approve (or auto-approve, reject, cancel) → claim (escalation
  after 24 h and dispatch, lapses, releases, extensions) → fulfil (disputes) → confirm with a
  rating, or auto-confirm after 7 days at 5 stars (rating_auto); every step a wish_event, a
  step that would fall after "now" does not happen, so recent wishes are still in flight;
- problem reports (filed, accepted with points, assigned, resolved, rejected, duplicates),
  volunteer activities with sign-ups, check-ins and service hours, and 爱心超市 redemptions
  (a few cancelled and refunded);
- the ledger of all that, as transfer() would have left it: one transfer per cause under its
  key, posted in time order under the daily earning cap, its two entries with running
  balance_after, the accounts' stored balance / earned (by source) / redeemed totals and
  entry counts, and the points lots (first in, first out) with their uses — so
  `flask ledger verify` passes.

`--ledger-rows N` (default 1 000 000; --small 1 000) makes the first community one whose ledger
holds at least N entries (a volunteer per 100 entries and a couple of dozen activities a day),
for the leaderboard and export benchmarks. After the rows, each community's leaderboard totals
are recomputed from its entries (totals.rebuild), as transfer() would have kept them.
Board quality varies (time to claim and satisfaction), so the 红黄蓝 ratings come out mixed.
The services would take hours at this scale; this takes minutes. Import `seed()` to seed an
existing schema (tests/test_seed_scale.py does, at a tiny scale).
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import json
import math
import random
import re
import secrets
import sys
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_big"
SECRET = "bench-secret-" + "b" * 40
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
PROTECTED = re.compile(r"^(test|postgres|template\d*)$", re.IGNORECASE)

# Asia/Shanghai has kept UTC+8 without daylight saving since 1991: a fixed offset is exact here
# and far cheaper than a zoneinfo conversion per timestamp.
CST = timedelta(hours=8)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)

# The app's defaults (wishes/service.py DEFAULT_SETTINGS, ledger DEFAULT_RULES/POLICY).
FULFIL_DAYS, EXTENSION_DAYS, AUTO_CONFIRM_DAYS, AUTO_RATING = 3, 3, 7, 5
ESCALATE_HOURS, MAX_ACTIVE_CLAIMS, DAILY_CAP = 24, 3, 200
WISH_POINTS = (10, 20, 30, 50, 80)
REPORT_POINTS = (5, 10, 15, 20, 30)
ACTIVITY_POINTS = (10, 20, 30, 40, 50)
FACTORS = {1: 0, 2: 0, 3: 60, 4: 80, 5: 100}
# The chance that an attendance in the big community is followed by a redemption: 50 000
# redemptions in the district at 1 000 000 entries there.
BUSY_REDEEM = 0.025


# --- what to make -------------------------------------------------------------------------

@dataclass
class Shape:
    wishes: int = 500_000
    communities: int = 50
    months: int = 12
    ledger_rows: int = 0  # entries wanted in the first community (0: its ordinary share)
    first_wishes: int | None = None  # wishes of the first community (None: its even share)
    seed: int = 20261
    now: datetime | None = None
    keep: bool = False  # keep the generated rows in memory (tests compare stats with them)

    def wishes_of(self, index: int) -> int:
        if self.first_wishes is not None:
            if index == 0:
                return self.first_wishes
            base, extra = divmod(self.wishes - self.first_wishes, self.communities - 1)
            return base + (1 if index - 1 < extra else 0)
        base, extra = divmod(self.wishes, self.communities)
        return base + (1 if index < extra else 0)


@dataclass
class CommunityData:
    """What one community was given (kept only with Shape.keep)."""

    id: int
    code: str
    organiser_ids: list[int]
    volunteer_ids: list[int]
    board_ids: list[int]
    wishes: list[dict] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    activities: list[dict] = field(default_factory=list)
    signups: list[dict] = field(default_factory=list)
    transfers: list[tuple] = field(default_factory=list)  # TRANSFER_COLUMNS
    accounts: list[dict] = field(default_factory=list)


@dataclass
class Seeded:
    now: datetime
    start: datetime
    communities: list[CommunityData]
    counts: dict[str, int]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)  # phase → seconds


# --- names, places, words -----------------------------------------------------------------

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
            "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
            "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = ("建国秀英强磊丽芳军伟敏静丹洋勇艳杰娟涛明超霞平刚桂兰华玉梅红燕鹏辉宇浩凯晨欣怡佳"
         "雪琳婷颖子涵博文思雨嘉轩志诚海波春生德福永振兴立新秋菊淑珍凤英金花荣玉兰云飞")
PLACE_A = "管园芙蓉桃花东风和平光明长青新民幸福红星向阳朝阳建设文化胜利团结前进解放人民迎宾"
PLACE_B = ("社区", "村")
STREETS = ("幸福街道", "和平街道", "光明街道", "长青街道", "新民街道")
DISTRICTS = ("镜湖区", "弋江区")
ESTATES = ("康居", "锦绣", "翠竹", "金色", "阳光", "和美", "馨苑", "丽景")
TEAMS = (("“红色足印”老党员志愿服务队", "退休老党员组成，常年为小区老人提供维修、陪护和代办服务。"),
         ("“小蜜蜂”外卖小哥志愿队", "外卖骑手利用送餐间隙跑腿代购、随手拍报送小区问题。"),
         ("巾帼志愿服务队", "社区妇女骨干组成，开展邻里探访和助老服务。"))
SKILLS = ("repair", "housekeeping", "caregiving", "errands", "driving", "counselling", "legal",
          "digital", "tutoring")
TAGS = ("老党员", "在职党员", "双报到", "外卖小哥", "热心肠", "楼栋长")
WISHES = {
    "life_help": [("帮忙打扫卫生", "家里老人行动不便，想请志愿者帮忙打扫一下屋子。"),
                  ("换季衣物整理", "想请人帮忙把冬天的被子和衣服收起来。")],
    "repair": [("水龙头漏水", "厨房水龙头一直滴水，想请会修的志愿者帮忙看看。"),
               ("楼道灯不亮", "家门口的灯坏了，晚上出门不方便。"),
               ("修理纱窗", "卧室纱窗破了个洞，蚊子很多。")],
    "errands": [("代买药品", "腿脚不方便，想请人帮忙去药店买常用药。"),
                ("代取快递", "快递放在小区门口驿站，想请人帮忙取一下。")],
    "companionship": [("陪老人聊聊天", "子女在外地，老人想有人陪着说说话。"),
                      ("陪同去医院复查", "下周要去医院复查，想请人陪同。")],
    "policy": [("咨询养老保险", "想了解一下城乡居民养老保险怎么续缴。"),
               ("咨询低保申请", "想知道申请低保需要准备哪些材料。")],
    "digital": [("教我用手机挂号", "想学会用手机在医院公众号上挂号。"),
                ("手机视频通话", "想学会和外地的孙子视频通话。")],
    "other": [("帮忙写一副春联", "想请会写毛笔字的志愿者帮忙写一副春联。")],
}
CATEGORY_WEIGHTS = {"life_help": 18, "repair": 24, "errands": 18, "companionship": 14,
                    "policy": 8, "digital": 12, "other": 6}
COMMENTS = ("非常感谢，志愿者很热心！", "很及时，谢谢！", "服务很好。", "比预想的慢了一点。",
            "问题解决了，点赞。")
FULFIL_NOTES = ("已上门处理完毕。", "已办好，老人很满意。", "已完成，留了联系方式方便下次。")
REPORT_CATEGORIES = {"manhole": "井盖破损", "fire_lane": "消防通道堵塞", "clutter": "乱堆乱放",
                     "sanitation": "环境卫生", "facility": "设施损坏", "other": "其他"}
ASSIGNEES = ("物业公司", "网格员", "社区居委会", "市政维修")
ACTIVITY_TITLES = ("小区环境清洁日", "敬老院探访", "义务理发", "垃圾分类宣传", "防诈骗宣传",
                   "关爱留守儿童", "义诊进社区", "文明交通劝导")
# (name, kind, cost): cheap goods first, so a few points already buy something.
REWARDS = (("纸巾一包", "goods", 5), ("肥皂一块", "goods", 10), ("洗衣液 2kg", "goods", 60),
           ("大米 5kg", "goods", 100), ("理发一次", "service", 40),
           ("家政服务 2 小时", "service", 200), ("民主评议加分", "honour", 300))
PICKUP_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

# Weights of the local hour at which people post and act (a few after 22:00 and 00:00, so
# days and months have their edge cases).
POST_HOURS = [*range(7, 24), 0]
POST_WEIGHTS = [3, 8, 10, 10, 7, 3, 3, 6, 7, 7, 6, 7, 8, 6, 3, 1.5, 0.8, 0.4]


# --- the columns written ------------------------------------------------------------------

TRANSFER_COLUMNS = ("id", "community_id", "key", "kind", "source_id", "destination_id",
                    "requested_amount", "amount", "memo", "actor_id", "created_at")
ENTRY_COLUMNS = ("id", "transfer_id", "community_id", "account_id", "amount", "balance_after",
                 "created_at")
LOT_COLUMNS = ("id", "community_id", "account_id", "transfer_id", "earned_at", "earned_on",
               "amount", "remaining", "expired")
LOT_USE_COLUMNS = ("id", "lot_id", "transfer_id", "amount")
EVENT_COLUMNS = ("id", "wish_id", "community_id", "actor_id", "action", "from_status",
                 "to_status", "note", "by_proxy", "created_at")
REPORT_EVENT_COLUMNS = ("id", "report_id", "community_id", "actor_id", "action", "from_status",
                        "to_status", "note", "created_at")
ACCOUNT_COLUMNS = ("id", "community_id", "key", "kind", "user_id", "balance", "earned_total",
                   "redeemed_total", "earned_wish", "earned_report", "earned_activity",
                   "adjusted", "entry_count", "created_at")
# Tables whose `id` comes from a sequence, in the order they are written (foreign keys).
ID_TABLES = ("users", "communities", "memberships", "teams", "boards", "points_accounts",
             "rewards", "wishes", "wish_events", "claim_lapses", "reports", "report_events",
             "activities", "activity_signups", "ledger_transfers", "ledger_entries",
             "redemptions", "points_lots", "points_lot_uses")


# --- writing --------------------------------------------------------------------------------

class Writer:
    """Bulk rows into PostgreSQL by COPY (SqliteWriter: executemany batches on SQLite)."""

    def __init__(self, url: str, fk_checks: bool = False):
        self.url = make_url(url)
        self.rows_written: dict[str, int] = defaultdict(int)
        import psycopg

        self.conn = psycopg.connect(
            self.url.set(drivername="postgresql").render_as_string(hide_password=False))
        if not fk_checks:
            # No foreign-key trigger per row (3× faster COPY): the ids are the seeder's own, the
            # SQLite run of tests/test_seed_scale.py checks them with foreign keys on, and
            # `ledger verify` checks the ledger after. Needs a superuser (postgres here).
            with self.conn.cursor() as cur:
                cur.execute("SET session_replication_role = replica")

    def max_ids(self) -> dict[str, int]:
        found = {}
        for table in ID_TABLES:
            found[table] = int(self.scalar(f"SELECT coalesce(max(id), 0) FROM {table}"))
        return found

    def scalar(self, sql: str):
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()[0]

    def write(self, table: str, columns: tuple[str, ...], rows) -> int:
        n = 0
        with self.conn.cursor() as cur, cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(v, ensure_ascii=False)
                                if isinstance(v, list | dict) else v for v in row])
                n += 1
        self.rows_written[table] += n
        return n

    def commit(self) -> None:
        self.conn.commit()

    def finish(self) -> None:
        """Sequences past the ids written, so the app's own inserts carry on after them."""
        with self.conn.cursor() as cur:
            for table in ID_TABLES:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"coalesce((SELECT max(id) FROM {table}), 1), "
                            f"(SELECT max(id) FROM {table}) IS NOT NULL)")
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class SqliteWriter(Writer):
    """The same through SQLAlchemy Core and the models' tables (their types bind the values)."""

    BATCH = 5000

    def __init__(self, url: str):
        from app.extensions import db

        self.url = make_url(url)
        self.rows_written = defaultdict(int)
        self.engine = sa.create_engine(self.url)
        self.tables = db.metadata.tables
        self.conn = self.engine.connect()
        self.conn.exec_driver_sql("PRAGMA foreign_keys = ON")  # outside a transaction, or no-op
        self.conn.commit()

    def scalar(self, sql: str):
        return self.conn.exec_driver_sql(sql).scalar()

    def write(self, table: str, columns: tuple[str, ...], rows) -> int:
        target, batch, n = self.tables[table], [], 0
        for row in rows:
            batch.append(dict(zip(columns, row, strict=True)))
            if len(batch) == self.BATCH:
                self.conn.execute(target.insert(), batch)
                n, batch = n + len(batch), []
        if batch:
            self.conn.execute(target.insert(), batch)
            n += len(batch)
        self.rows_written[table] += n
        return n

    def commit(self) -> None:
        self.conn.commit()

    def finish(self) -> None:
        self.commit()

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()
        self.engine.dispose()


def open_writer(url: str, fk_checks: bool = False) -> Writer:
    if make_url(url).get_backend_name() == "postgresql":
        return Writer(url, fk_checks)
    return SqliteWriter(url)  # always with foreign keys on


def dict_rows(rows: list[dict], columns: tuple[str, ...]):
    return ([row[c] for c in columns] for row in rows)


# --- time -----------------------------------------------------------------------------------

def local_day(moment: datetime) -> date:
    return (moment + CST).date()


def at_local(day: date, hour: int, minute: int, second: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC) - CST


def human(rng: random.Random, moment: datetime) -> datetime:
    """When a person does something due at `moment`: not between 23:00 and 07:00 local time."""
    local = moment + CST
    if 7 <= local.hour < 23:
        return moment
    day = local.date() if local.hour < 7 else local.date() + DAY
    return at_local(day, 7, rng.randrange(60), rng.randrange(60)) + rng.randrange(3) * HOUR


def lognormal(rng: random.Random, median: timedelta, sigma: float) -> timedelta:
    return median * rng.lognormvariate(0.0, sigma)


class Clock:
    """The window: `days` Asia/Shanghai days ending today, busier towards the end (growth)."""

    def __init__(self, now: datetime, months: int):
        self.now = now
        self.today = local_day(now)
        self.first = self.today - timedelta(days=round(months * 365 / 12) - 1)
        self.start = at_local(self.first, 0, 0, 0)
        span = (self.today - self.first).days + 1
        self.days = [self.first + timedelta(days=i) for i in range(span)]
        weights = [0.7 + 0.6 * i / max(1, span - 1) for i in range(span)]
        self.cum_days = list(_accumulate(weights))
        self.cum_hours = list(_accumulate(POST_WEIGHTS))

    def moment(self, rng: random.Random) -> datetime:
        """A posting time at a local daytime (a few late), never after now."""
        while True:
            day = rng.choices(self.days, cum_weights=self.cum_days)[0]
            hour = rng.choices(POST_HOURS, cum_weights=self.cum_hours)[0]
            if hour == 0:
                day += DAY
            moment = at_local(day, hour, rng.randrange(60), rng.randrange(60))
            if self.start <= moment <= self.now:
                return moment


def _accumulate(values):
    total = 0.0
    for v in values:
        total += v
        yield total


class Stop(Exception):
    """A step would happen after now: the rest of this life has not happened yet."""


# --- one community --------------------------------------------------------------------------

class Ids:
    def __init__(self, start: dict[str, int]):
        self.last = dict(start)

    def next(self, table: str) -> int:
        self.last[table] += 1
        return self.last[table]


@dataclass
class Person:
    id: int
    name: str
    phone: str


class CommunityBuilder:
    def __init__(self, index: int, wishes: int, ledger_rows: int, clock: Clock, ids: Ids,
                 seed: int):
        self.index = index
        self.n_wishes = wishes
        self.ledger_rows = ledger_rows
        self.clock = clock
        self.now = clock.now
        self.ids = ids
        self.rng = random.Random(seed * 1000 + index)
        self.tables: dict[str, tuple[tuple[str, ...], list]] = {}
        self.seq = 0

    # -- people and places --

    def rows(self, table: str, columns: tuple[str, ...]) -> list:
        if table not in self.tables:
            self.tables[table] = (columns, [])
        return self.tables[table][1]

    def name(self) -> str:
        rng = self.rng
        given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
        return rng.choice(SURNAMES) + given

    def person(self, role: str, joined: datetime) -> Person:
        uid = self.ids.next("users")
        p = Person(uid, self.name(), f"158{uid:08d}")
        self.rows("users", ("id", "phone", "display_name", "password_hash", "is_admin",
                            "created_at")).append(
            (uid, p.phone, p.name, "!bench-no-login", False, joined))
        self.rows("memberships", ("id", "community_id", "user_id", "role", "created_at")).append(
            (self.ids.next("memberships"), self.cid, uid, role, joined))
        return p

    def build_people(self) -> None:
        rng, start = self.rng, self.clock.start
        wpc = self.n_wishes
        self.cid = self.ids.next("communities")
        self.code = f"scale{self.index + 1:03d}"
        a = PLACE_A[(2 * self.index) % len(PLACE_A):][:2] or "新村"
        name = f"{a}{self.index + 1}{PLACE_B[self.index % 2]}"
        self.rows("communities", ("id", "name", "code", "street", "district", "created_at")).append(
            (self.cid, name, self.code, STREETS[self.index % len(STREETS)],
             DISTRICTS[self.index % len(DISTRICTS)], start - 30 * DAY))
        joined = lambda: start - timedelta(days=rng.uniform(1, 29))  # noqa: E731
        self.organisers = [self.person("organiser", joined()) for _ in range(3)]
        # The ordinary crew; the leaderboard's community has one volunteer per 100 entries
        # (10 000 at 1 000 000, the issue's test case), its store no busier than the others'.
        self.ordinary_volunteers = max(8, round(wpc / 70))
        n_volunteers = self.ordinary_volunteers
        if self.ledger_rows:
            n_volunteers = max(n_volunteers, self.ledger_rows // 100)
        self.volunteers = [self.person("volunteer", joined()) for _ in range(n_volunteers)]
        # One resident per 6 wishes: 100 000 users in all at 500 000 wishes in 50 communities.
        self.residents = [self.person("resident", joined()) for _ in range(max(15, round(wpc / 6)))]
        # A few volunteers do much of the work, as everywhere.
        self.cum_volunteers = list(_accumulate(
            1.0 / (1 + i) ** 0.6 for i in range(len(self.volunteers))))
        self.cum_residents = list(_accumulate(
            1.0 / (1 + i) ** 0.4 for i in range(len(self.residents))))
        profiles = self.rows("volunteer_profiles", ("user_id", "party_member", "status", "skills",
                                                    "tags", "public_name", "updated_at"))
        for v in self.volunteers:
            profiles.append((v.id, rng.random() < 0.6, rng.choice(("in_service", "retired")),
                             rng.sample(SKILLS, rng.randint(1, 3)),
                             rng.sample(TAGS, rng.randint(0, 2)),
                             "masked" if rng.random() < 0.1 else "full", start))
        teams = self.rows("teams", ("id", "community_id", "name", "description", "leader_id",
                                    "created_at"))
        members = self.rows("team_members", ("team_id", "user_id", "community_id", "joined_at"))
        in_team = [v for v in self.volunteers if rng.random() < 0.6]
        for t, (team_name, about) in enumerate(TEAMS):
            team_members = in_team[t::len(TEAMS)]
            tid = self.ids.next("teams")
            teams.append((tid, self.cid, team_name, about,
                          team_members[0].id if team_members else None, start - 20 * DAY))
            members.extend((tid, m.id, self.cid, start - 10 * DAY) for m in team_members)
        boards = self.rows("boards", ("id", "community_id", "name", "location", "grid_label",
                                      "auto_approve", "enabled", "token", "created_at"))
        self.boards = []
        for b in range(8):
            bid = self.ids.next("boards")
            estate = ESTATES[(self.index + b) % len(ESTATES)]
            # quality: 0 (needs attention, 蓝) … 1 (红旗网格); it drives claim speed and ratings
            quality = rng.random()
            self.boards.append({"id": bid, "auto": b < 2, "quality": quality,
                                "claim_median": timedelta(hours=2 + 28 * (1 - quality) ** 2)})
            boards.append((bid, self.cid, f"{estate}小区心愿墙", f"{estate}小区{b + 1}栋旁",
                           f"第{b + 1}网格", b < 2, True, secrets.token_urlsafe(24),
                           start - 25 * DAY))
        self.cum_boards = list(_accumulate((3, 2, 2, 1.5, 1, 1, 0.7, 0.5)))
        self.rows("points_policies", ("community_id", "factor_1", "factor_2", "factor_3",
                                      "factor_4", "factor_5", "daily_earn_cap", "expiry_months",
                                      "updated_at")).append(
            (self.cid, *FACTORS.values(), DAILY_CAP, None, start - 30 * DAY))
        rules = self.rows("points_rules", ("community_id", "category", "level", "points"))
        for category, points in (("wish", WISH_POINTS), ("report", REPORT_POINTS),
                                 ("activity", ACTIVITY_POINTS)):
            rules.extend((self.cid, category, level, p) for level, p in enumerate(points, 1))
        rewards = self.rows("rewards", ("id", "community_id", "name", "description", "kind",
                                        "cost", "stock", "per_user_monthly_limit", "active",
                                        "image_url", "created_at"))
        self.rewards = []
        for reward_name, kind, cost in REWARDS:
            rid = self.ids.next("rewards")
            self.rewards.append({"id": rid, "name": reward_name, "kind": kind, "cost": cost})
            rewards.append((rid, self.cid, reward_name, "爱心超市兑换", kind, cost,
                            None if kind == "honour" else 500, None, True, None, start - 30 * DAY))
        self.rewards.sort(key=lambda r: r["cost"])
        self.reward_costs = [r["cost"] for r in self.rewards]
        self.active_until: dict[int, list[datetime]] = defaultdict(list)
        self.intents: list = []  # (time, seq, kind, payload) for the ledger

    def volunteer(self) -> Person:
        return self.rng.choices(self.volunteers, cum_weights=self.cum_volunteers)[0]

    def free_volunteer(self, at: datetime, owner_id: int | None) -> Person:
        """A volunteer with fewer than max_active_claims claims held at `at`."""
        for _ in range(12):
            v = self.volunteer()
            if v.id == owner_id:
                continue
            held = self.active_until[v.id]
            held[:] = [end for end in held if end > at]
            if len(held) < MAX_ACTIVE_CLAIMS:
                return v
        return next(v for v in self.volunteers if v.id != owner_id)

    def intent(self, at: datetime, kind: str, payload: dict) -> None:
        self.seq += 1
        self.intents.append((at, self.seq, kind, payload))

    # -- wishes --

    def build_wishes(self) -> None:
        rng, clock = self.rng, self.clock
        created = sorted(clock.moment(rng) for _ in range(self.n_wishes))
        self.wishes, self.events, self.lapses = [], [], []
        categories = list(CATEGORY_WEIGHTS)
        cum_categories = list(_accumulate(CATEGORY_WEIGHTS.values()))
        for at in created:
            board = rng.choices(self.boards, cum_weights=self.cum_boards)[0]
            category = rng.choices(categories, cum_weights=cum_categories)[0]
            title, description = rng.choice(WISHES[category])
            proxy = rng.random() < 0.05
            owner = None if proxy else rng.choices(self.residents,
                                                   cum_weights=self.cum_residents)[0]
            author = rng.choice(self.organisers) if proxy else owner
            wish = {
                "id": self.ids.next("wishes"), "community_id": self.cid, "board_id": board["id"],
                "owner_id": owner.id if owner else None,
                "proxy_name": self.name() if proxy else None,
                "proxy_phone": f"139{rng.randrange(10**8):08d}" if proxy else None,
                "posted_by_id": author.id, "title": title, "description": description,
                "category": category, "contact_phone": None,
                "address": f"{rng.randint(1, 30)}栋{rng.randint(1, 4)}单元"
                           f"{rng.randint(1, 18)}0{rng.randint(1, 4)}室",
                "status": "pending", "level": None, "opened_at": None, "escalated_at": None,
                "claimer_id": None, "claimed_at": None, "fulfil_due_at": None,
                "fulfil_extended": False, "fulfilled_at": None, "fulfil_note": None,
                "rating": None, "rating_auto": False, "comment": None, "closed_at": None,
                "points_awarded": None, "points_capped": None, "reason": None,
                "created_at": at, "updated_at": at}
            if proxy:
                wish["contact_phone"] = wish["proxy_phone"]
            elif rng.random() < 0.6:
                wish["contact_phone"] = owner.phone
            self.wishes.append(wish)
            with suppress(Stop):
                self.live(wish, board, owner, author)

    def step(self, wish: dict, at: datetime, actor: Person | None, action: str, to: str,
             note: str | None = None, by_proxy: bool = False) -> None:
        if at > self.now:
            raise Stop
        self.events.append([at, wish["id"], self.cid, actor.id if actor else None, action,
                            wish["status"] if action != "post" else None, to,
                            note[:500] if note else None, by_proxy])
        wish["status"], wish["updated_at"] = to, at

    def live(self, wish: dict, board: dict, owner: Person | None, author: Person) -> None:
        """The wish's life through the transition table, in order, until now."""
        rng, at = self.rng, wish["created_at"]
        proxy = owner is None
        acting_owner = author if proxy else owner  # the organiser acts for a proxy wish
        self.step(wish, at, author, "post", "pending", by_proxy=proxy)
        fate = rng.random()
        if board["auto"]:
            wish["level"], wish["opened_at"] = 1, at
            self.step(wish, at, None, "approve", "open", note="自动通过")
        else:
            review = human(rng, at + lognormal(rng, 2 * HOUR, 1.0))
            if fate < 0.01:
                cancel = at + (review - at) * rng.random()
                wish["reason"] = "已自行解决"
                self.step(wish, cancel, acting_owner, "cancel", "cancelled", note="已自行解决",
                          by_proxy=proxy)
                return
            if fate < 0.04:
                reason = "不属于微心愿范围，请联系物业"
                self.step(wish, review, rng.choice(self.organisers), "reject", "rejected",
                          note=reason)
                wish["reason"] = reason
                return
            level = rng.choices((1, 2, 3, 4, 5), weights=(40, 30, 18, 8, 4))[0]
            if review <= self.now:
                wish["level"], wish["opened_at"] = level, review
            self.step(wish, review, rng.choice(self.organisers), "approve", "open",
                      note=f"等级 {level}")
        lapsed = False
        while True:  # open: until claimed (again after a lapse or a release)
            opened = wish["opened_at"]
            claim_at = opened + lognormal(rng, board["claim_median"], 1.0)
            if rng.random() < 0.025:
                cancel = human(rng, opened + lognormal(rng, 5 * HOUR, 1.0))
                if cancel < claim_at:
                    wish["reason"] = "不需要了"
                    self.step(wish, cancel, acting_owner, "cancel", "cancelled",
                              note="不需要了", by_proxy=proxy)
                    return
            dispatcher = None
            escalate_at = opened + ESCALATE_HOURS * HOUR + timedelta(seconds=rng.randrange(60))
            if claim_at > escalate_at:
                self.step(wish, escalate_at, None, "escalate", "open",
                          note="长时间无人认领，已转入派单队列")
                wish["escalated_at"] = escalate_at
                if rng.random() < 0.6:
                    dispatcher = rng.choice(self.organisers)
                    claim_at = human(rng, escalate_at + lognormal(rng, 2 * HOUR, 0.8))
            claim_at = human(rng, claim_at)
            volunteer = self.free_volunteer(claim_at, wish["owner_id"])
            if dispatcher:
                self.step(wish, claim_at, dispatcher, "assign", "claimed",
                          note=f"派单给 {volunteer.name}")
            else:
                self.step(wish, claim_at, volunteer, "claim", "claimed")
            due = claim_at + FULFIL_DAYS * DAY
            wish.update(claimer_id=volunteer.id, claimed_at=claim_at, fulfil_due_at=due,
                        fulfil_extended=False)
            held = self.active_until[volunteer.id]
            fate = rng.random()
            if fate < 0.03 and not lapsed:
                lapsed = True
                lapse_at = due + timedelta(seconds=rng.randrange(60))
                held.append(lapse_at)
                self.step(wish, lapse_at, None, "lapse", "open",
                          note=f"{volunteer.name} 未在期限内完成，心愿重新开放认领")
                self.lapses.append((self.ids.next("claim_lapses"), self.cid, volunteer.id,
                                    wish["id"], due, lapse_at))
                self.reopen(wish, lapse_at)
                continue
            if fate < 0.05:
                release = human(rng, claim_at + lognormal(rng, 5 * HOUR, 0.8))
                if release < due:
                    held.append(release)
                    self.step(wish, release, volunteer, "release", "open",
                              note="临时有事，无法前往")
                    self.reopen(wish, release)
                    continue
            break
        if fate < 0.10:
            extend = claim_at + timedelta(days=rng.uniform(1.0, 2.5))
            self.step(wish, extend, volunteer, "extend", "claimed", note=f"延期 {EXTENSION_DAYS} 天")
            due += EXTENSION_DAYS * DAY
            wish.update(fulfil_due_at=due, fulfil_extended=True)
        fulfil = human(rng, claim_at + lognormal(rng, 18 * HOUR, 0.9))
        if fulfil >= due:
            fulfil = due - timedelta(minutes=rng.randint(10, 120))
        held.append(fulfil if fulfil <= self.now else datetime.max.replace(tzinfo=UTC))
        note = rng.choice(FULFIL_NOTES)
        self.step(wish, fulfil, volunteer, "fulfil", "fulfilled", note=note)
        wish.update(fulfilled_at=fulfil, fulfil_note=note)
        if rng.random() < 0.02:
            dispute = human(rng, fulfil + lognormal(rng, 5 * HOUR, 0.8))
            if dispute < fulfil + AUTO_CONFIRM_DAYS * DAY:
                self.step(wish, dispute, acting_owner, "dispute", "claimed",
                          note="还没有修好，请再来看看", by_proxy=proxy)
                wish.update(fulfilled_at=None, fulfil_note=None,
                            fulfil_due_at=dispute + FULFIL_DAYS * DAY)
                fulfil = human(rng, dispute + lognormal(rng, 12 * HOUR, 0.7))
                fulfil = min(fulfil, dispute + (FULFIL_DAYS * DAY - HOUR))
                self.step(wish, fulfil, volunteer, "fulfil", "fulfilled", note=note)
                wish.update(fulfilled_at=fulfil, fulfil_note=note)
        confirm = human(rng, fulfil + lognormal(rng, 8 * HOUR, 1.2))
        auto_at = fulfil + AUTO_CONFIRM_DAYS * DAY + timedelta(seconds=rng.randrange(60))
        if rng.random() < 0.8 and confirm < auto_at:
            q = board["quality"]
            rating = rng.choices((5, 4, 3, 2, 1), weights=(
                35 + 40 * q, 35 - 10 * q, 20 - 15 * q, 6 - 4 * q, 4 - 3 * q))[0]
            comment = rng.choice(COMMENTS) if rng.random() < 0.4 else None
            self.step(wish, confirm, acting_owner, "confirm", "closed",
                      note=f"{rating} 星" + (f"：{comment}" if comment else ""), by_proxy=proxy)
            wish.update(rating=rating, comment=comment, closed_at=confirm)
            actor_id = acting_owner.id
        else:
            self.step(wish, auto_at, None, "auto_confirm", "closed",
                      note=f"超过 {AUTO_CONFIRM_DAYS} 天未确认，系统按 {AUTO_RATING} 星自动确认")
            wish.update(rating=AUTO_RATING, rating_auto=True, closed_at=auto_at)
            actor_id = None
        wish["points_awarded"], wish["points_capped"] = 0, 0
        points = WISH_POINTS[wish["level"] - 1] * FACTORS[wish["rating"]] // 100
        if points > 0:
            self.intent(wish["closed_at"], "earn", {
                "kind": "earn_wish", "key": f"wish:{wish['id']}:award", "user_id": volunteer.id,
                "points": points, "memo": f"微心愿：{wish['title']}"[:200], "actor_id": actor_id,
                "target": wish})

    def reopen(self, wish: dict, at: datetime) -> None:
        wish.update(claimer_id=None, claimed_at=None, fulfil_due_at=None, fulfil_extended=False,
                    opened_at=at, escalated_at=None)

    # -- reports --

    def build_reports(self) -> None:
        rng = self.rng
        self.reports, self.report_events = [], []
        created = sorted(self.clock.moment(rng) for _ in range(max(2, self.n_wishes // 10)))
        categories = list(REPORT_CATEGORIES)
        for at in created:
            reporter = self.volunteer()
            category = rng.choice(categories)
            location = f"{rng.choice(ESTATES)}小区{rng.randint(1, 30)}栋"
            report = {"id": self.ids.next("reports"), "community_id": self.cid,
                      "reporter_id": reporter.id, "category": category,
                      "description": f"{location}附近{REPORT_CATEGORIES[category]}，请尽快处理。",
                      "location": location, "location_key": location, "status": "pending",
                      "level": None, "points_awarded": None, "points_capped": None,
                      "assigned_to": None, "resolution_note": None, "reject_reason": None,
                      "duplicate_of": None, "possible_duplicate_of": None, "photo_key": None,
                      "photo_type": None, "photo_bytes": None, "photo_width": None,
                      "photo_height": None, "created_at": at, "updated_at": at,
                      "accepted_at": None, "resolved_at": None}
            self.reports.append(report)
            with suppress(Stop):
                self.report_life(report, reporter)

    def report_step(self, report: dict, at: datetime, actor: Person, action: str, to: str,
                    note: str | None = None) -> list:
        if at > self.now:
            raise Stop
        event = [at, report["id"], self.cid, actor.id, action,
                 report["status"] if action != "file" else None, to, note]
        self.report_events.append(event)
        report["status"], report["updated_at"] = to, at
        return event

    def report_life(self, report: dict, reporter: Person) -> None:
        rng, at = self.rng, report["created_at"]
        self.report_step(report, at, reporter, "file", "pending")
        organiser = rng.choice(self.organisers)
        review = human(rng, at + lognormal(rng, 4 * HOUR, 1.0))
        fate = rng.random()
        if fate < 0.08:
            reason = "不属于社区处理范围"
            self.report_step(report, review, organiser, "reject", "rejected", note=reason)
            report["reject_reason"] = reason
            return
        earlier = [r for r in self.reports[-20:-1] if r["category"] == report["category"]]
        if fate < 0.13 and earlier:
            self.report_step(report, review, organiser, "duplicate", "duplicate",
                             note=f"与 #{earlier[-1]['id']} 重复")
            report["duplicate_of"] = earlier[-1]["id"]
            return
        level = rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        event = self.report_step(report, review, organiser, "accept", "accepted")
        report.update(level=level, accepted_at=review, points_awarded=0, points_capped=0)
        self.intent(review, "earn", {
            "kind": "earn_report", "key": f"report:{report['id']}:award",
            "user_id": reporter.id, "points": REPORT_POINTS[level - 1],
            "memo": f"随手拍：{REPORT_CATEGORIES[report['category']]} {report['location']}"[:200],
            "actor_id": organiser.id, "target": report, "event": event, "level": level})
        assign = human(rng, review + lognormal(rng, 3 * HOUR, 0.8))
        to = rng.choice(ASSIGNEES)
        self.report_step(report, assign, organiser, "assign", "in_progress", note=f"分办给 {to}")
        report["assigned_to"] = to
        resolve = human(rng, assign + lognormal(rng, 30 * HOUR, 0.9))
        note = "已处理完毕，感谢反映。"
        self.report_step(report, resolve, organiser, "resolve", "resolved", note=note)
        report.update(resolution_note=note, resolved_at=resolve)

    # -- activities --

    def build_activities(self) -> None:
        rng, clock = self.rng, self.clock
        self.activities, self.signups = [], []
        span_days = len(clock.days)
        ordinary = max(1, round(self.n_wishes / 2400 * span_days / 30))
        plans = [(clock.moment(rng), rng.randint(15, 40), False) for _ in range(ordinary)]
        if self.ledger_rows:
            # The leaderboard's (and export's) community: enough attendances (a few with a
            # redemption after) to bring its ledger to `ledger_rows` entries; ~52 attendees an
            # activity, or all its volunteers when fewer (the small database's ten).
            have = 2 * (self.earnings_so_far() + ordinary * 25)
            attendances = max(0, math.ceil((self.ledger_rows - have) * 1.04
                                           / (2 + 2 * BUSY_REDEEM)))
            per_activity = min(52, len(self.volunteers))
            plans += [(clock.moment(rng), 60, True)
                      for _ in range(math.ceil(attendances / per_activity))]
        plans.sort(key=lambda p: p[0])
        for planned, capacity, busy in plans:
            starts = at_local(local_day(planned), rng.choice((9, 14, 15)), 0, 0)
            half_hours = rng.choice((2, 4, 6)) if busy else rng.choice((2, 3, 4, 6, 8))
            ends = starts + half_hours * 30 * timedelta(minutes=1)
            level = 1 if busy else rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
            organiser = rng.choice(self.organisers)
            created = min(starts - timedelta(days=rng.uniform(3, 10)), self.now)
            completed = human(rng, ends + lognormal(rng, 1 * HOUR, 0.6))
            if created > self.now:
                continue
            done = completed <= self.now
            activity = {"id": self.ids.next("activities"), "community_id": self.cid,
                        "title": rng.choice(ACTIVITY_TITLES), "description": "欢迎志愿者报名参加。",
                        "place": "社区党群服务中心", "starts_at": starts, "ends_at": ends,
                        "capacity": capacity, "level": level, "half_hours": half_hours,
                        "status": "completed" if done else "published", "signed_up": 0,
                        "created_by_id": organiser.id, "created_at": created,
                        "updated_at": completed if done else created,
                        "completed_at": completed if done else None,
                        "completed_by_id": organiser.id if done else None,
                        "cancelled_at": None, "cancel_reason": None}
            self.activities.append(activity)
            wanted = rng.randint(capacity * 3 // 4, capacity) if busy else rng.randint(
                capacity // 2, capacity)
            people = rng.sample(self.volunteers, min(wanted, len(self.volunteers)))
            for volunteer in people:
                self.sign_up(activity, volunteer, organiser, busy)

    def earnings_so_far(self) -> int:
        return sum(1 for i in self.intents if i[2] == "earn")

    def sign_up(self, activity: dict, volunteer: Person, organiser: Person, busy: bool) -> None:
        rng, starts = self.rng, activity["starts_at"]
        signed = min(starts - timedelta(hours=rng.uniform(2, 72)), self.now)
        if signed < activity["created_at"]:
            signed = activity["created_at"]
        signup = {"id": self.ids.next("activity_signups"), "community_id": self.cid,
                  "activity_id": activity["id"], "user_id": volunteer.id, "status": "signed_up",
                  "walk_in": False, "created_at": signed, "cancelled_at": None,
                  "checked_in_at": None, "checked_in_by_id": None, "checkin_method": None,
                  "points_awarded": None, "points_capped": None, "half_hours_credited": None}
        self.signups.append(signup)
        fate = rng.random()
        if fate < 0.05 and not busy:
            cancelled = signed + (starts - signed) * rng.random()
            if cancelled <= self.now:
                signup.update(status="cancelled", cancelled_at=cancelled)
                return
        activity["signed_up"] += 1
        checkin = starts + timedelta(minutes=rng.uniform(-15, 30))
        if (fate < 0.17 and not busy) or checkin > self.now:
            if activity["status"] == "completed":  # never came: absent on completion
                signup.update(status="absent", points_awarded=0, points_capped=0,
                              half_hours_credited=0)
            return
        method = rng.choices(("qr", "code", "organiser"), weights=(60, 30, 10))[0]
        signup.update(status="attended", checked_in_at=checkin, checkin_method=method,
                      checked_in_by_id=organiser.id if method == "organiser" else volunteer.id)
        if activity["status"] != "completed":
            return
        signup.update(half_hours_credited=activity["half_hours"], points_awarded=0,
                      points_capped=0)
        done = activity["completed_at"]
        self.intent(done, "earn", {
            "kind": "earn_activity", "key": f"activity:{activity['id']}:{volunteer.id}",
            "user_id": volunteer.id, "points": ACTIVITY_POINTS[activity["level"] - 1],
            "memo": f"志愿服务：{activity['title']}"[:200], "actor_id": organiser.id,
            "target": signup})
        if busy and rng.random() < BUSY_REDEEM:  # a cheap redemption after a few attendances
            at = human(rng, done + lognormal(rng, 20 * HOUR, 0.8))
            if at <= self.now:
                self.intent(at, "redeem", {"user_id": volunteer.id,
                                           "within": ACTIVITY_POINTS[0]})

    # -- the store --

    def plan_redemptions(self) -> None:
        """About every other volunteer of an ordinary crew redeems something a month (the big
        community's many volunteers share its ordinary crew's redemptions)."""
        rng = self.rng
        chance = 0.5 * min(1.0, self.ordinary_volunteers / len(self.volunteers))
        for volunteer in self.volunteers:
            for month_start in self.clock.days[::30]:
                if rng.random() < chance:
                    day = month_start + timedelta(days=rng.randrange(30))
                    at = at_local(day, rng.randint(8, 20), rng.randrange(60), rng.randrange(60))
                    if self.clock.start <= at <= self.now:
                        self.intent(at, "redeem", {"user_id": volunteer.id, "within": None})

    # -- the ledger, as transfer() leaves it --

    def post_ledger(self) -> None:
        rng = self.rng
        self.accounts: dict[object, dict] = {}
        self.transfers, self.entries, self.lots, self.lot_uses = [], [], [], []
        self.redemptions = []
        self.issuance = self.account("issuance", None, self.clock.start - 30 * DAY)
        self.store = self.account("store", None, self.clock.start - 30 * DAY)
        self.open_lots: dict[int, list[list]] = defaultdict(list)  # account → its lots, FIFO
        self.first_open: dict[int, int] = defaultdict(int)
        self.earned_on_day: dict[tuple[int, date], int] = defaultdict(int)
        self.uses_of: dict[int, list[tuple[int, int]]] = {}  # debit transfer → (lot, taken)
        queue = self.intents
        heapq.heapify(queue)
        while queue:
            at, _seq, kind, payload = heapq.heappop(queue)
            if kind == "earn":
                self.earn(at, payload)
            elif kind == "redeem":
                self.redeem(at, payload, queue)
            else:
                self.refund(at, payload)
        del rng

    def account(self, kind: str, user_id: int | None, at: datetime) -> dict:
        key = f"user:{user_id}" if kind == "user" else kind
        if key not in self.accounts:
            self.accounts[key] = {
                "id": self.ids.next("points_accounts"), "community_id": self.cid, "key": key,
                "kind": kind, "user_id": user_id, "balance": 0, "earned_total": 0,
                "redeemed_total": 0, "earned_wish": 0, "earned_report": 0, "earned_activity": 0,
                "adjusted": 0, "entry_count": 0, "created_at": at}
        return self.accounts[key]

    def transfer(self, at: datetime, kind: str, key: str, source: dict, destination: dict,
                 requested: int, amount: int, memo: str, actor_id: int | None) -> int:
        tid = self.ids.next("ledger_transfers")
        self.transfers.append((tid, self.cid, key, kind, source["id"], destination["id"],
                               requested, amount, memo, actor_id, at))
        if amount > 0:
            for account, delta in ((source, -amount), (destination, amount)):
                account["balance"] += delta
                account["entry_count"] += 1
                if kind.startswith("earn_"):
                    account["earned_total"] += delta
                    account[kind.replace("earn_", "earned_")] += delta
                elif kind in ("redemption", "refund"):
                    account["redeemed_total"] -= delta
                self.entries.append((self.ids.next("ledger_entries"), tid, self.cid,
                                     account["id"], delta, account["balance"], at))
        return tid

    def earn(self, at: datetime, p: dict) -> None:
        user = self.account("user", p["user_id"], at)
        day = local_day(at)
        room = max(0, DAILY_CAP - self.earned_on_day[(user["id"], day)])
        amount = min(p["points"], room)
        tid = self.transfer(at, p["kind"], p["key"], self.issuance, user, p["points"], amount,
                            p["memo"], p["actor_id"])
        p["target"]["points_awarded"], p["target"]["points_capped"] = amount, p["points"] - amount
        if "event" in p:
            p["event"][7] = f"等级 {p['level']}，{amount} 积分"
        if amount:
            self.earned_on_day[(user["id"], day)] += amount
            lot = [self.ids.next("points_lots"), self.cid, user["id"], tid, at, day, amount,
                   amount, 0]
            self.lots.append(lot)
            self.open_lots[user["id"]].append(lot)

    def redeem(self, at: datetime, p: dict, queue: list) -> None:
        rng = self.rng
        user = self.accounts.get(f"user:{p['user_id']}")
        if user is None:
            return
        limit = min(user["balance"], p["within"] or user["balance"])
        affordable = bisect.bisect_right(self.reward_costs, limit)
        if affordable == 0:
            return
        reward = self.rewards[rng.randrange(affordable)] if p["within"] is None else \
            self.rewards[affordable - 1]
        rid = self.ids.next("redemptions")
        organiser = rng.choice(self.organisers)
        at_counter = rng.random() < 0.3
        memo = f"兑换：{reward['name']} × 1"
        tid = self.transfer(at, "redemption", f"redemption:{rid}:debit", user, self.store,
                            reward["cost"], reward["cost"], memo,
                            organiser.id if at_counter else p["user_id"])
        self.take_from_lots(user["id"], reward["cost"], tid)
        code = "".join(rng.choice(PICKUP_ALPHABET) for _ in range(4)) + _base31(rid, 6)
        row = {"id": rid, "community_id": self.cid, "reward_id": reward["id"],
               "user_id": p["user_id"], "reward_name": reward["name"],
               "reward_kind": reward["kind"], "unit_cost": reward["cost"], "quantity": 1,
               "cost_total": reward["cost"], "status": "awaiting_pickup", "pickup_code": code,
               "wrong_code_attempts": 0, "locked_until": None, "at_counter": at_counter,
               "created_by_id": organiser.id if at_counter else p["user_id"], "created_at": at,
               "fulfilled_at": None, "fulfilled_by_id": None, "cancelled_at": None,
               "cancelled_by_id": None, "cancel_reason": None}
        self.redemptions.append(row)
        if at_counter:
            row.update(status="fulfilled", fulfilled_at=at, fulfilled_by_id=organiser.id)
            return
        if rng.random() < 0.015:
            cancel = human(rng, at + lognormal(rng, 6 * HOUR, 0.8))
            if cancel <= self.now:
                row.update(status="cancelled", cancelled_at=cancel, cancelled_by_id=p["user_id"],
                           cancel_reason="不需要了")
                self.seq += 1
                heapq.heappush(queue, (cancel, self.seq, "refund",
                                       {"row": row, "debit": tid, "user": user}))
            return
        pickup = human(rng, at + lognormal(rng, 8 * HOUR, 0.8))
        if pickup <= self.now:
            row.update(status="fulfilled", fulfilled_at=pickup, fulfilled_by_id=organiser.id)

    def refund(self, at: datetime, p: dict) -> None:
        row, user = p["row"], p["user"]
        tid = self.transfer(at, "refund", f"redemption:{row['id']}:refund", self.store, user,
                            row["cost_total"], row["cost_total"],
                            f"退还：{row['reward_name']} × 1", p["row"]["cancelled_by_id"])
        lots = {lot[0]: (i, lot) for i, lot in enumerate(self.open_lots[user["id"]])}
        for lot_id, taken in sorted(self.uses_of.pop(p["debit"])):
            index, lot = lots[lot_id]
            lot[7] += taken
            self.first_open[user["id"]] = min(self.first_open[user["id"]], index)
            self.lot_uses.append((self.ids.next("points_lot_uses"), lot_id, tid, -taken))

    def take_from_lots(self, account_id: int, points: int, tid: int) -> None:
        lots, left, taken = self.open_lots[account_id], points, []
        i = self.first_open[account_id]
        while left:
            lot = lots[i]
            take = min(left, lot[7])
            if take:
                lot[7] -= take
                left -= take
                taken.append((lot[0], take))
                self.lot_uses.append((self.ids.next("points_lot_uses"), lot[0], tid, take))
            if lot[7] == 0:
                i += 1
        self.first_open[account_id] = i
        self.uses_of[tid] = taken

    # -- out --

    def finish_rows(self) -> None:
        """Timeline ids in time order (as the app's inserts would have numbered them)."""
        self.events.sort(key=lambda e: (e[0], e[1]))
        self.event_rows = [(self.ids.next("wish_events"), *e[1:], e[0]) for e in self.events]
        self.report_events.sort(key=lambda e: (e[0], e[1]))
        self.report_event_rows = [(self.ids.next("report_events"), *e[1:], e[0])
                                  for e in self.report_events]

    def write(self, writer: Writer) -> None:
        for table, (columns, rows) in self.tables.items():
            if table not in ("points_policies", "points_rules", "rewards"):
                writer.write(table, columns, rows)
        for table in ("points_policies", "points_rules", "rewards"):
            writer.write(table, *self.tables[table])
        writer.write("points_accounts", ACCOUNT_COLUMNS,
                     dict_rows(list(self.accounts.values()), ACCOUNT_COLUMNS))
        write_dicts(writer, "wishes", self.wishes)
        writer.write("wish_events", EVENT_COLUMNS, self.event_rows)
        writer.write("claim_lapses", ("id", "community_id", "user_id", "wish_id", "due_at",
                                      "created_at"), self.lapses)
        write_dicts(writer, "reports", self.reports)
        writer.write("report_events", REPORT_EVENT_COLUMNS, self.report_event_rows)
        write_dicts(writer, "activities", self.activities)
        write_dicts(writer, "activity_signups", self.signups)
        writer.write("ledger_transfers", TRANSFER_COLUMNS, self.transfers)
        writer.write("ledger_entries", ENTRY_COLUMNS, self.entries)
        write_dicts(writer, "redemptions", self.redemptions)
        writer.write("points_lots", LOT_COLUMNS, self.lots)
        writer.write("points_lot_uses", LOT_USE_COLUMNS, self.lot_uses)

    def kept(self) -> CommunityData:
        return CommunityData(self.cid, self.code, [o.id for o in self.organisers],
                             [v.id for v in self.volunteers], [b["id"] for b in self.boards],
                             self.wishes, self.reports, self.activities, self.signups,
                             self.transfers, list(self.accounts.values()))


def write_dicts(writer: Writer, table: str, rows: list[dict]) -> None:
    if rows:
        columns = tuple(rows[0])
        writer.write(table, columns, dict_rows(rows, columns))


def _base31(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, r = divmod(n, len(PICKUP_ALPHABET))
        digits.append(PICKUP_ALPHABET[r])
    return "".join(reversed(digits))


# --- the whole database ---------------------------------------------------------------------

def seed(url: str, shape: Shape, *, progress=print, fk_checks: bool = False) -> Seeded:
    """Write `shape` into the (migrated) database at `url`; ids continue after existing rows."""
    from app.db import utcnow

    started = time.perf_counter()
    now = (shape.now or utcnow()).astimezone(UTC).replace(microsecond=0)
    clock = Clock(now, shape.months)
    writer = open_writer(url, fk_checks)
    kept: list[CommunityData] = []
    written: list[tuple[int, str]] = []  # (id, code) of each community written
    try:
        ids = Ids(writer.max_ids())
        for index in range(shape.communities):
            t0 = time.perf_counter()
            builder = CommunityBuilder(index, shape.wishes_of(index),
                                       shape.ledger_rows if index == 0 else 0, clock, ids,
                                       shape.seed)
            builder.build_people()
            builder.build_wishes()
            builder.build_reports()
            builder.build_activities()
            builder.plan_redemptions()
            builder.post_ledger()
            builder.finish_rows()
            t1 = time.perf_counter()
            builder.write(writer)
            writer.commit()
            written.append((builder.cid, builder.code))
            if shape.keep:
                kept.append(builder.kept())
            progress(f"  {builder.code}: {len(builder.wishes):>7,} wishes, "
                     f"{len(builder.event_rows):>8,} events, {len(builder.transfers):>8,} "
                     f"transfers, {len(builder.entries):>9,} entries, "
                     f"{len(builder.activities):>5,} activities  "
                     f"(made in {t1 - t0:5.1f} s, written in {time.perf_counter() - t1:5.1f} s)")
        writer.finish()
    finally:
        writer.close()
    phases = {"generate and write": time.perf_counter() - started}
    t0 = time.perf_counter()
    counts = dict(writer.rows_written)
    counts["leaderboard_totals"] = rebuild_totals(url, written, progress)
    phases["leaderboard totals"] = time.perf_counter() - t0
    return Seeded(now, clock.start, kept, counts, time.perf_counter() - started, phases)


def rebuild_totals(url: str, communities: list[tuple[int, str]], progress=print) -> int:
    """The leaderboards' pre-aggregates of each community, recomputed set-based from its entries.

    The rows went in without transfer(), which keeps `leaderboard_totals` as it posts; this is
    what `flask leaderboard rebuild-totals` does, one community per transaction, and `ledger
    verify` (check 8) proves the result equals the entries."""
    from sqlalchemy.orm import Session

    from app.ledger import totals

    engine = sa.create_engine(url)
    rows = 0
    try:
        if engine.dialect.name == "postgresql":
            # COPY left no statistics: without them the planner guesses nested loops over
            # a million entries.
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE ledger_entries, ledger_transfers, "
                                     "points_accounts, team_members"))
        for cid, code in communities:
            t0 = time.perf_counter()
            with Session(engine) as session, session.begin():
                totals.rebuild(cid, session=session)
                n = session.scalar(sa.select(sa.func.count()).select_from(
                    totals.LeaderboardTotal).where(totals.LeaderboardTotal.community_id == cid))
            rows += n
            seconds = time.perf_counter() - t0
            if seconds >= 1 or cid == communities[0][0]:
                progress(f"  {code}: {n:>9,} leaderboard totals rebuilt in {seconds:5.1f} s")
    finally:
        engine.dispose()
    return rows


# --- the command ----------------------------------------------------------------------------

def check_target(url_text: str, wipe: bool) -> sa.URL:
    """Refuse databases that must not be wiped."""
    url = make_url(url_text)
    backend = url.get_backend_name()
    if backend == "postgresql":
        name = url.database or ""
        if url.host not in LOCAL_HOSTS:
            sys.exit(f"refusing: {url.host!r} is not a local PostgreSQL")
        if PROTECTED.match(name):
            sys.exit(f"refusing: database {name!r} is protected")
        if "bench" not in name.lower() and not wipe:
            sys.exit(f"refusing: {name!r} does not look like a benchmark database; pass --wipe")
    elif backend == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:":
            sys.exit("give an SQLite file, e.g. sqlite:////tmp/bench.sqlite3")
        if "bench" not in Path(path).name.lower() and not wipe:
            sys.exit(f"refusing: {path} does not look like a benchmark file; pass --wipe")
    else:
        sys.exit(f"unsupported database {backend!r}: PostgreSQL or SQLite")
    return url


def app_config(url: str) -> dict:
    return {"TESTING": True, "ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": SECRET, "JWT_SECRET_KEY": SECRET,
            "JWT_ACCESS_TOKEN_EXPIRES": timedelta(hours=2), "RATELIMIT_STORAGE_URI": "memory://"}


def ensure_database(url: sa.URL) -> None:
    """Create the PostgreSQL database if it does not exist yet."""
    if url.get_backend_name() != "postgresql":
        return
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                           {"n": url.database}) is None:
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def reset_schema(url: sa.URL) -> None:
    """Empty the database and build the schema with the real migrations (flask db upgrade)."""
    from flask_migrate import upgrade

    from app import create_app
    from app.extensions import db

    if url.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                Path(url.database + suffix).unlink()
    else:
        ensure_database(url)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
    app = create_app(app_config(url.render_as_string(hide_password=False)))
    with app.app_context():
        upgrade()
        db.engine.dispose()


# Tables the statistics and exports read by time, and their time column.
TIMED = {"wishes": "created_at", "wish_events": "created_at", "reports": "created_at",
         "report_events": "created_at", "activities": "starts_at",
         "activity_signups": "created_at", "ledger_transfers": "created_at",
         "ledger_entries": "created_at", "redemptions": "created_at", "points_lots": "earned_at"}


def interleave(url: sa.URL) -> None:
    """Put each table's rows in time order on disk, as a real history leaves them.

    The seeder writes community after community, so a community's rows are contiguous: the
    planner then sees `community_id` perfectly correlated with the heap, and prefers the
    single-column index plus a filter over (community_id, created_at) — a plan production,
    where all communities write at once, would never get. CLUSTER on a temporary index on the
    time column undoes that (PostgreSQL only)."""
    if url.get_backend_name() != "postgresql":
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table, column in TIMED.items():
                conn.execute(sa.text(f"CREATE INDEX tmp_seed_time ON {table} ({column}, id)"))
                conn.execute(sa.text(f"CLUSTER {table} USING tmp_seed_time"))
                conn.execute(sa.text("DROP INDEX tmp_seed_time"))
    finally:
        engine.dispose()


def analyse(url: sa.URL) -> None:
    """What autovacuum would do after a load this size: fresh statistics, the visibility map."""
    engine = sa.create_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE)" if url.get_backend_name() == "postgresql"
                                 else "ANALYZE"))
    finally:
        engine.dispose()


def run_verify(url: sa.URL) -> tuple[bool, list[str]]:
    from app import create_app
    from app.extensions import db
    from app.ledger.verify import verify

    app = create_app(app_config(url.render_as_string(hide_password=False)))
    with app.app_context():
        try:
            reports = verify()
            failed = [r for r in reports if not r.ok]
            lines = [f"{len(reports) - len(failed)} of {len(reports)} communities OK; "
                     f"{sum(r.entries for r in reports):,} entries, "
                     f"{sum(r.transfers for r in reports):,} transfers"]
            lines += [r.summary() for r in failed[:5]]
            lines += [f"  - {v}" for r in failed[:5] for v in r.violations[:10]]
            return not failed, lines
        finally:
            db.session.remove()
            db.engine.dispose()


SUMMARY_TABLES = ("users", "communities", "memberships", "volunteer_profiles", "team_members",
                  "wishes", "wish_events", "reports", "activities", "activity_signups",
                  "redemptions", "ledger_transfers", "ledger_entries", "points_lots",
                  "leaderboard_totals")


def print_summary(url: sa.URL, counts: dict[str, int], phases: dict[str, float], total: float,
                  ok: bool) -> None:
    """The counts (and the leaderboard community's), and the time of each phase."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            first = conn.execute(sa.text(
                "SELECT c.id, c.code, "
                "(SELECT count(*) FROM memberships m WHERE m.community_id = c.id "
                " AND m.role = 'volunteer'), "
                "(SELECT count(*) FROM ledger_entries e WHERE e.community_id = c.id) "
                "FROM communities c ORDER BY c.id LIMIT 1")).one()
    finally:
        engine.dispose()
    print("\nrows written")
    for table in SUMMARY_TABLES:
        print(f"  {table:<20} {counts.get(table, 0):>11,}")
    print(f"  the leaderboard's community {first[1]} (id {first[0]}): {first[2]:,} volunteers, "
          f"{first[3]:,} ledger entries")
    print("phase                     seconds")
    for phase, seconds in phases.items():
        print(f"  {phase:<22} {seconds:>8.1f}")
    print(f"  {'total':<22} {total:>8.1f}   ledger verify: {'PASS' if ok else 'FAIL'}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_URL,
                        help=f"SQLAlchemy URL of the database to WIPE and fill "
                             f"(default {DEFAULT_URL}; created if missing)")
    parser.add_argument("--wishes", type=int, default=500_000, help="wishes in all (500 000)")
    parser.add_argument("--communities", type=int, default=None,
                        help="communities (50; --small: 2)")
    parser.add_argument("--months", type=int, default=None,
                        help="months of history (12; --small: 3)")
    parser.add_argument("--small", action="store_true",
                        help="the 1 k baseline: a first community of 100 wishes, 10 volunteers "
                             "and ~1 000 entries (the leaderboard's), then 2 of 2 500 wishes "
                             "over 3 months, so a month of one has as many wishes as in the big "
                             "database (≈ 830) and only the database's size differs")
    parser.add_argument("--ledger-rows", type=int, default=None,
                        help="make the first community's ledger hold at least this many "
                             "entries, with a volunteer per 100 (1 000 000; --small: 1 000)")
    parser.add_argument("--first-wishes", type=int, default=None,
                        help="wishes of the first community (its even share; --small: 100)")
    parser.add_argument("--seed", type=int, default=20261, help="random seed (20261)")
    parser.add_argument("--now", default=None,
                        help="the moment the history ends, ISO 8601 with offset (default: now)")
    parser.add_argument("--wipe", action="store_true",
                        help="allow a database whose name does not contain 'bench'")
    parser.add_argument("--no-verify", action="store_true", help="skip `ledger verify` after")
    parser.add_argument("--no-interleave", action="store_true",
                        help="leave each community's rows contiguous on disk (no CLUSTER by time)")
    parser.add_argument("--fk-checks", action="store_true",
                        help="PostgreSQL: keep the foreign-key triggers on while loading (slower)")
    parser.add_argument("--json", type=Path, default=None, help="also write a summary here")
    args = parser.parse_args(argv)
    if args.small:
        args.wishes = 5_100
        if args.first_wishes is None:
            args.first_wishes = 100
    if args.ledger_rows is None:
        args.ledger_rows = 1_000 if args.small else 1_000_000
    if args.communities is None:
        args.communities = 3 if args.small else 50
    if args.first_wishes is not None and not (
            args.communities > 1 and 1 <= args.first_wishes <= args.wishes - args.communities):
        parser.error("--first-wishes needs 2+ communities and leaves the others a wish each")
    if args.months is None:
        args.months = 3 if args.small else 12
    if not 1 <= args.communities <= 10_000 or args.wishes < args.communities:
        parser.error("need 1…10 000 communities and at least one wish each")
    if not 1 <= args.months <= 60:
        parser.error("--months must be 1…60")
    if args.now:
        args.now = datetime.fromisoformat(args.now)
        if args.now.tzinfo is None:
            parser.error("--now needs an offset, e.g. 2026-12-01T12:00:00+08:00")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = check_target(args.database_url, args.wipe)
    shape = Shape(wishes=args.wishes, communities=args.communities, months=args.months,
                  ledger_rows=args.ledger_rows, first_wishes=args.first_wishes, seed=args.seed,
                  now=args.now)
    print(f"WILL WIPE {url.render_as_string()} and seed {shape.wishes:,} wishes in "
          f"{shape.communities} communities over {shape.months} months"
          + (f", {shape.ledger_rows:,}+ ledger entries in the first" if shape.ledger_rows else ""),
          flush=True)
    started = time.perf_counter()
    reset_schema(url)
    phases = {"schema (migrations)": time.perf_counter() - started}
    print(f"schema built by the migrations in {phases['schema (migrations)']:.1f} s", flush=True)
    seeded = seed(url.render_as_string(hide_password=False), shape,
                  progress=lambda line: print(line, flush=True), fk_checks=args.fk_checks)
    phases.update(seeded.phases)
    print(f"written in {seeded.seconds:.1f} s: " + ", ".join(
        f"{table} {n:,}" for table, n in seeded.counts.items() if n), flush=True)
    t0 = time.perf_counter()
    if not args.no_interleave and url.get_backend_name() == "postgresql":
        interleave(url)
        phases["CLUSTER by time"] = time.perf_counter() - t0
        print(f"rows put in time order (CLUSTER) in {phases['CLUSTER by time']:.1f} s", flush=True)
        t0 = time.perf_counter()
    analyse(url)
    analysed = "VACUUM ANALYZE" if url.get_backend_name() == "postgresql" else "ANALYZE"
    phases[analysed] = time.perf_counter() - t0
    print(f"{analysed} in {phases[analysed]:.1f} s", flush=True)
    ok, lines = True, []
    if not args.no_verify:
        t0 = time.perf_counter()
        ok, lines = run_verify(url)
        phases["ledger verify"] = time.perf_counter() - t0
        print(f"ledger verify ({phases['ledger verify']:.1f} s): " + "\n".join(lines), flush=True)
    total = time.perf_counter() - started
    print(f"history from {seeded.start.isoformat()} to {seeded.now.isoformat()}; "
          f"total {total:.1f} s")
    print_summary(url, seeded.counts, phases, total, ok)
    if args.json:
        args.json.write_text(json.dumps({
            "database": url.render_as_string(), "wishes": shape.wishes,
            "communities": shape.communities, "months": shape.months,
            "ledger_rows": shape.ledger_rows, "now": seeded.now.isoformat(),
            "counts": seeded.counts, "seconds": seeded.seconds, "verify_ok": ok,
            "verify": lines}, ensure_ascii=False, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Weeks of believable life in the demo community (`flask seed demo --weeks N`).

The history is lived in order, through the real services, under one clock (`frozen_clock`): a
resident posts at 19:40, the organiser approves the next morning, a volunteer claims, fulfils,
the resident confirms with stars, and the ledger posts the points at that moment. Every night at
00:05 the jobs cron would run (`flask wishes tick`, `leaderboard freeze` on Mondays,
`stats close-month` on the 1st) run too. Nothing writes a balance or a ledger row directly, so
`flask ledger verify` passes on the result. A seeded random (`random.Random(SEED)`) makes the
same history every time for the same weeks and day.

The three boards live differently, so the 红黄蓝 table is mixed: 远创樾府 is quick and well rated
(红), the 物业群 QR is slower (黄), and the 村委会 board waits days for a dispatch (蓝).

Idempotent: a community that has any wish or ledger transfer already gets no history.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask import g

from app.activities import service as activities
from app.activities.models import Activity
from app.auth.models import User
from app.communities.models import Community, Membership, Role
from app.db import frozen_clock, utcnow
from app.demo import COMMUNITY, PEOPLE, _user
from app.errors import APIError
from app.extensions import db
from app.ledger import leaderboard
from app.ledger import service as ledger
from app.ledger.models import Transfer
from app.localtime import SHANGHAI, local_date
from app.reports import service as reports
from app.stats import ratings
from app.store import service as store
from app.store.models import Reward
from app.wishes import service as wishes
from app.wishes import transitions as lifecycle
from app.wishes.models import Board, Wish

SEED = 2026

# Residents who scan a board's QR during the history (a post makes them members).
NEIGHBOURS = [
    ("13800000031", "钱大妈"), ("13800000032", "郑阿姨"), ("13800000033", "冯先生"),
    ("13800000034", "何奶奶"), ("13800000035", "许师傅"), ("13800000036", "黄女士"),
    ("13800000037", "林大爷"), ("13800000038", "高阿姨"), ("13800000039", "罗先生"),
    ("13800000040", "梁奶奶"),
]
# Elderly people without a phone of their own: the 网格员 posts for them (by proxy).
PROXIED = [("孙奶奶", "13912340001"), ("马大爷", "13912340002"), ("朱奶奶", "13912340003")]

# (category, title, description, what the volunteer notes when done)
WISHES = [
    ("repair", "楼道灯坏了", "我们单元三楼的楼道灯坏了好几天，晚上上下楼黑乎乎的，老人怕摔。",
     "已更换 LED 灯泡，试过声控正常。"),
    ("repair", "厨房水龙头漏水", "厨房水龙头一直滴水，拧紧也不管用，想请人帮忙换一个。",
     "已上门更换水龙头，检查不再漏水。"),
    ("repair", "卫生间下水道堵了", "卫生间地漏下水很慢，有异味，家里没有工具。",
     "已疏通地漏，清理出头发和杂物。"),
    ("repair", "防盗门锁不好用", "防盗门锁芯有点卡，钥匙经常拧不动。", "已给锁芯上油调整，开关顺畅。"),
    ("repair", "纱窗破了想换", "卧室纱窗破了个洞，蚊子老往屋里飞。", "已更换纱网。"),
    ("errands", "帮忙取药", "老伴腿脚不便，想请人帮忙去社区卫生服务站取降压药，处方已开好。",
     "已把药取回送到家里，交代了用法。"),
    ("errands", "代买米面油", "家里米快吃完了，一个人扛不动，想请人帮忙买一袋米和一桶油。",
     "已代买送到家，小票已交给老人。"),
    ("errands", "帮忙取快递", "快递放在东门驿站，我刚做完手术不方便下楼。", "已取回两个快递送到家门口。"),
    ("errands", "代缴水电费", "不会用手机缴费，想请人帮忙去营业厅交一下水电费。", "已代缴，缴费凭证已送回。"),
    ("companionship", "陪老人去医院复查", "母亲下周要去市医院复查，子女在外地，想请人陪同挂号、取报告。",
     "已陪同复查，报告已取，医生说恢复得不错。"),
    ("companionship", "周末陪独居老人聊聊天", "隔壁独居的老人最近情绪不太好，希望有人周末去看看他。",
     "已上门陪老人聊了一下午，约好下周再来。"),
    ("companionship", "陪老人散步晒太阳", "老人坐轮椅，想请人推着在小区里转一转。",
     "已推老人在小区花园散步一小时。"),
    ("life_help", "帮忙打扫卫生", "老两口年纪大了，想请人帮忙擦擦窗户、拖拖地。", "已帮忙打扫客厅和厨房。"),
    ("life_help", "帮忙搬个衣柜", "想把旧衣柜从卧室搬到阳台，一个人搬不动。", "已和队友一起搬好。"),
    ("life_help", "帮老人做顿饭", "老人刚出院行动不便，想请人帮忙做一顿热乎饭。",
     "已做好两菜一汤，老人吃得很香。"),
    ("digital", "教老人用手机视频通话", "想和外地的孙子视频，但不会用微信视频。",
     "已教会微信视频通话，老人自己打通了一次。"),
    ("digital", "帮忙在手机上预约挂号", "想预约市医院的专家号，手机上不会操作。",
     "已帮忙预约周三上午的专家号。"),
    ("digital", "教我用手机付款", "买菜都要扫码，想学学怎么用手机付款。", "已教会扫码付款和查看账单。"),
    ("policy", "咨询高龄津贴怎么申请", "家里老人今年满 80 岁，想问问高龄津贴怎么申请，要带什么材料。",
     "已讲解申请流程，材料清单写在纸上给老人了。"),
    ("policy", "咨询医保报销", "住院费用怎么报销，异地就医要办什么手续？",
     "已帮忙查询报销政策并陪同去窗口办理。"),
]
ADDRESSES = ["远创樾府 {b} 栋 {f}0{u} 室", "管园村 {b} 组 {f}{u} 号"]
COMMENTS = {5: ["非常满意，谢谢！", "来得很及时，态度特别好。", "党员同志真贴心，给你们点赞！", None],
            4: ["挺好的，谢谢。", "办好了，就是稍微晚了一点。", None],
            3: ["还行吧。", "问题解决了，但来得有点晚。"],
            2: ["等了好几天才有人来。"], 1: ["不太满意。"]}
REJECT_REASONS = ["属于物业维修范围，已转物业公司处理", "不属于微心愿范围，已电话联系说明"]
CANCEL_REASONS = ["已经解决了", "家里人回来帮忙弄好了"]

# (category, location, description)
REPORTS = [
    ("fire_lane", "远创樾府 3 栋楼道口", "楼道口停了好几辆电瓶车，还在充电，堵住了消防通道。"),
    ("manhole", "远创樾府东门人行道", "东门人行道上的井盖松动，踩上去会晃，晚上容易绊倒。"),
    ("sanitation", "管园村 2 组垃圾收集点", "垃圾桶坏了，垃圾溢出来了，有异味。"),
    ("clutter", "远创樾府 8 栋一单元楼道", "楼道里堆了旧家具和纸箱，影响通行。"),
    ("facility", "远创樾府中心花园", "健身器材的螺丝松了，老人锻炼不安全。"),
    ("facility", "管园村村委会门口", "路灯不亮，晚上走路看不清。"),
    ("fire_lane", "远创樾府地下车库入口", "车库入口的消防通道被私家车占了。"),
    ("clutter", "管园村 4 组路口", "路口有人堆放建筑垃圾，占了半条路。"),
]
REPORT_HANDLERS = ["远创樾府物业公司", "村委会网格员", "街道城管中队"]

# (title, description, place, level, half hours, capacity)
ACTIVITIES = [
    ("楼道乱堆放清理志愿服务", "清理楼道杂物、劝导电瓶车不进楼道。请穿方便活动的衣服。", "远创樾府 8 栋",
     2, 5, 8),
    ("垃圾分类宣传进小区", "在小区门口摆摊讲解垃圾分类，发放宣传册。", "远创樾府东门广场", 1, 4, 6),
    ("重阳敬老陪伴", "到村里独居老人家中陪伴聊天、读报。", "管园村党群服务中心", 2, 6, 10),
]


# --- how each board lives -----------------------------------------------------------------

@dataclass(frozen=True)
class Pace:
    per_day: float            # wishes posted a day, on average
    review: tuple[int, int]   # minutes from post to the organiser's review
    take: tuple[int, int]     # minutes from open to claim or dispatch
    dispatch: float           # share taken by an organiser's dispatch (派单) rather than a claim
    fulfil: tuple[int, int]   # minutes from claim to done
    confirm: tuple[int, int]  # minutes from done to the resident's confirmation
    stars: dict[int, int]     # rating weights
    levels: dict[int, int]    # approval level weights
    troubles: bool            # this board gets the lapses, disputes and auto-confirmations


PACES = {  # by board name (app/demo.py BOARDS)
    "远创樾府": Pace(0.9, (30, 180), (60, 480), 0.1, (180, 1200), (60, 600),
                 {5: 82, 4: 16, 3: 2}, {1: 30, 2: 45, 3: 25}, False),
    "远创樾府 物业群帮办码": Pace(0.7, (0, 0), (1200, 3600), 0.2, (600, 2880), (240, 1800),
                        {5: 45, 4: 45, 3: 8, 2: 2}, {1: 1}, True),
    "管园村村委会": Pace(0.55, (120, 1200), (4200, 9000), 0.7, (720, 3600), (240, 2400),
                   {5: 35, 4: 40, 3: 20, 2: 5}, {1: 30, 2: 40, 3: 20, 4: 10}, True),
}


@dataclass
class Plan:
    """One wish to live: who posts it where, and what will happen to it."""

    board: Board
    posted_at: datetime
    text: tuple
    owner: User | None
    proxy: tuple[str, str] | None
    fate: str = "normal"  # normal, rejected, cancel_pending, cancel_open, dispute, lapse,
    #                       release, auto, extend
    delays: dict = field(default_factory=dict)  # minutes that override the board's pace
    wish_id: int | None = None
    claims: int = 0


@contextmanager
def acting_as(user: User):
    """What a logged-in request would have (as app/web/session.py sets it for pages):
    `current_user` for the services that read it."""
    keys = ("_jwt_extended_jwt_user", "_jwt_extended_jwt")
    before = {key: g.get(key) for key in keys}
    g._jwt_extended_jwt_user = {"loaded_user": user}
    g._jwt_extended_jwt = {"sub": str(user.id), "type": "access"}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                g.pop(key, None)
            else:
                setattr(g, key, value)


def has_history(community_id: int) -> bool:
    return (db.session.scalar(sa.select(Wish.id).where(Wish.community_id == community_id)
                              .limit(1)) is not None
            or db.session.scalar(sa.select(Transfer.id).where(
                Transfer.community_id == community_id).limit(1)) is not None)


def seed_history(weeks: int, password_hash: str, seed: int = SEED) -> dict:
    """Live `weeks` weeks up to now in the demo community; {"skipped": True} if it has any."""
    community = db.session.scalar(sa.select(Community).where(Community.code == COMMUNITY["code"]))
    if weeks <= 0 or has_history(community.id):
        return {"skipped": True}
    life = Life(community, weeks, utcnow(), random.Random(seed),  # noqa: S311  (made-up, repeatable demo data)
                password_hash)
    life.plan()
    life.run()
    return life.summary()


class Life:
    def __init__(self, community: Community, weeks: int, now: datetime, rng: random.Random,
                 password_hash: str):
        self.cid, self.now, self.rng = community.id, now, rng
        self.start = datetime.combine(
            leaderboard.week_start(local_date(now)) - timedelta(weeks=weeks), time.min, SHANGHAI)
        self.queue: list = []
        self.order = itertools.count()
        self.refused: Counter = Counter()
        people = {phone: db.session.scalar(sa.select(User).where(User.phone == phone))
                  for phone, *_rest in PEOPLE}
        self.organisers = [people[p] for p, _n, role, *_r in PEOPLE if role == Role.ORGANISER]
        self.chief, self.grid = self.organisers[0], self.organisers[-1]
        self.volunteers = [people[p] for p, _n, role, *_r in PEOPLE if role == Role.VOLUNTEER]
        self.skills = {u.id: set((profile or {}).get("skills", ()))
                       for (p, _n, role, profile, _t), u in
                       ((row, people[row[0]]) for row in PEOPLE) if role == Role.VOLUNTEER}
        residents = [people[p] for p, _n, role, *_r in PEOPLE if role == Role.RESIDENT]
        self.residents = residents + [_user(p, n, password_hash) for p, n in NEIGHBOURS]
        self.boards = {b.name: b for b in db.session.scalars(
            sa.select(Board).where(Board.community_id == self.cid).order_by(Board.id))}
        self.plans: list[Plan] = []

    # --- time -------------------------------------------------------------------------------

    def local(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), SHANGHAI).astimezone(UTC)

    def awake(self, moment: datetime, first: int = 7, last: int = 21) -> datetime:
        """The moment, or the next one between first:00 and last:00 Shanghai (people sleep)."""
        here = moment.astimezone(SHANGHAI)
        if here.hour < first:
            here = here.replace(hour=first, minute=self.rng.randrange(60))
        elif here.hour >= last:
            here = (here + timedelta(days=1)).replace(hour=first, minute=self.rng.randrange(60))
        return here.astimezone(UTC)

    def after(self, moment: datetime, span: tuple[int, int], **awake) -> datetime:
        low, high = span
        return self.awake(moment + timedelta(minutes=self.rng.randint(low, max(low, high))),
                          **awake)

    def at(self, moment: datetime, step, *args) -> None:
        """Schedule a step; one that would happen after now does not happen (yet)."""
        if moment <= self.now:
            heapq.heappush(self.queue, (moment, next(self.order), step, args))

    def run(self) -> None:
        while self.queue:
            moment, _n, step, args = heapq.heappop(self.queue)
            with frozen_clock(moment):
                try:
                    with db.session.begin_nested():
                        step(*args)
                except APIError as refused:  # e.g. a volunteer at their claim limit
                    self.refused[refused.slug] += 1
        with frozen_clock(self.now):
            self.cron(final=True)

    # --- the plan -----------------------------------------------------------------------------

    def plan(self) -> None:
        rng, day = self.rng, self.start.date()
        last_day = local_date(self.now)
        while day <= last_day:
            self.at(self.local(day, 0, 5), self.cron)
            for name, pace in PACES.items():
                count = sum(rng.random() < pace.per_day / 2 for _ in range(2))
                for _ in range(count):
                    hour = rng.choice([7, 8, 9, 10, 11, 14, 15, 16, 17, 19, 20, 21])
                    moment = self.local(day, hour, rng.randrange(60))
                    if moment < self.now - timedelta(hours=4):
                        self.plans.append(self.new_plan(self.boards[name], moment))
            day += timedelta(days=1)
        self.plans.sort(key=lambda p: p.posted_at)
        self.assign_fates()
        self.add_tail()
        for plan in self.plans:
            self.at(plan.posted_at, self.post, plan)
        self.plan_reports()
        self.plan_activities()
        self.plan_store()

    def new_plan(self, board: Board, moment: datetime, **fields) -> Plan:
        proxy = None
        owner = self.rng.choice(self.residents)
        if board.name == "管园村村委会" and self.rng.random() < 0.3:
            proxy, owner = self.rng.choice(PROXIED), None
        return Plan(board=board, posted_at=moment, text=self.rng.choice(WISHES), owner=owner,
                    proxy=proxy, **fields)

    def assign_fates(self) -> None:
        """Give some wishes trouble; each kind at least once, early enough to play out."""
        rng = self.rng
        settled = [p for p in self.plans if p.posted_at < self.now - timedelta(days=12)]
        if not settled:
            settled = self.plans[: max(1, len(self.plans) // 2)]
        troubled = [p for p in settled if PACES[p.board.name].troubles]
        manual = [p for p in settled if not p.board.auto_approve]
        n = len(self.plans)
        wanted = [("auto", troubled, max(1, n // 25)), ("dispute", troubled, max(1, n // 40)),
                  ("lapse", [p for p in troubled if not p.board.auto_approve], max(1, n // 40)),
                  ("release", troubled, 1), ("extend", troubled, max(1, n // 40)),
                  ("rejected", manual, max(1, n // 25)), ("cancel_pending", manual, 1),
                  ("cancel_open", [p for p in settled if p.board.auto_approve], max(1, n // 50))]
        for fate, pool, count in wanted:
            free = [p for p in pool if p.fate == "normal"]
            for plan in rng.sample(free, min(count, len(free))):
                plan.fate = fate

    def add_tail(self) -> None:
        """The last days: wishes still waiting at every step, so every state shows now."""
        a, b, c = (self.boards[name] for name in PACES)
        now = self.now
        self.plans += [
            self.new_plan(c, now - timedelta(minutes=50), delays={"review": 240}),  # pending
            self.new_plan(b, now - timedelta(hours=5), delays={"take": 600}),        # open
            self.new_plan(c, now - timedelta(hours=30), delays={"review": 60, "take": 3000}),
            self.new_plan(a, now - timedelta(hours=20),                              # claimed
                          delays={"review": 60, "take": 120, "fulfil": 2400}),
            self.new_plan(a, now - timedelta(days=3),                                # fulfilled
                          delays={"review": 60, "take": 100, "fulfil": 600}, fate="auto"),
        ]
        self.plans.sort(key=lambda p: p.posted_at)

    # --- a wish's life ------------------------------------------------------------------------

    def pace(self, plan: Plan) -> Pace:
        return PACES[plan.board.name]

    def delay(self, plan: Plan, step: str, since: datetime) -> datetime:
        if step in plan.delays:
            return since + timedelta(minutes=plan.delays.pop(step))
        span = getattr(self.pace(plan), step)
        return self.after(since, span, **({"first": 8, "last": 19} if step == "review" else {}))

    def wish(self, plan: Plan) -> Wish:
        return db.session.get(Wish, plan.wish_id, populate_existing=True)

    def owner_side(self, plan: Plan) -> User:
        return plan.owner if plan.owner is not None else self.grid

    def post(self, plan: Plan) -> None:
        category, title, description, _note = plan.text
        floor, unit = self.rng.randint(1, 18), self.rng.randint(1, 4)
        address = self.rng.choice(ADDRESSES).format(b=self.rng.randint(1, 12), f=floor, u=unit)
        data = {"title": title, "description": description, "category": category,
                "address": address}
        author = plan.owner
        if plan.proxy is not None:
            author = self.grid
            data["on_behalf_of"] = {"name": plan.proxy[0], "phone": plan.proxy[1]}
        else:
            data["contact_phone"] = author.phone
        wish = wishes.post_wish(plan.board, author, data)
        plan.wish_id = wish.id
        now = utcnow()
        if plan.fate == "cancel_pending":
            self.at(now + timedelta(minutes=self.rng.randint(20, 90)), self.cancel, plan)
        elif wish.status == lifecycle.PENDING:
            self.at(self.delay(plan, "review", now), self.review, plan)
        else:
            self.opened(plan, now)

    def review(self, plan: Plan) -> None:
        if self.wish(plan).status != lifecycle.PENDING:
            return
        reviewer = self.rng.choice(self.organisers)
        if plan.fate == "rejected":
            wishes.act(plan.wish_id, "reject", reviewer, reason=self.rng.choice(REJECT_REASONS))
            return
        level = self.pick(self.pace(plan).levels)
        wishes.act(plan.wish_id, "approve", reviewer, level=level)
        self.opened(plan, utcnow())

    def opened(self, plan: Plan, now: datetime) -> None:
        if plan.fate == "cancel_open":
            self.at(now + timedelta(hours=self.rng.randint(3, 20)), self.cancel, plan)
        else:
            self.at(self.delay(plan, "take", now), self.take, plan)

    def cancel(self, plan: Plan) -> None:
        if self.wish(plan).status in (lifecycle.PENDING, lifecycle.OPEN):
            wishes.act(plan.wish_id, "cancel", self.owner_side(plan),
                       reason=self.rng.choice(CANCEL_REASONS))

    def take(self, plan: Plan) -> None:
        wish = self.wish(plan)
        if wish.status != lifecycle.OPEN:
            return
        dispatch = self.rng.random() < self.pace(plan).dispatch
        for volunteer in self.candidates(wish):
            try:
                with db.session.begin_nested():
                    if dispatch:
                        wishes.act(wish.id, "assign", self.grid, volunteer_id=volunteer.id)
                    else:
                        wishes.act(wish.id, "claim", volunteer)
                break
            except APIError:
                continue
        else:  # everyone is busy: someone looks again in the evening
            self.at(utcnow() + timedelta(hours=6), self.take, plan)
            return
        plan.claims += 1
        now = utcnow()
        if plan.fate == "lapse" and plan.claims == 1:
            # Nobody does it: the nightly tick releases it after the deadline, then someone
            # else takes it the day after.
            self.at(self.awake(now + timedelta(days=4, hours=2)), self.take, plan)
        elif plan.fate == "release" and plan.claims == 1:
            self.at(self.after(now, (240, 900)), self.release, plan)
        else:
            if plan.fate == "extend" and plan.claims == 1:
                self.at(self.after(now, (1500, 2400)), self.extend, plan)
                plan.delays.setdefault("fulfil", self.rng.randint(3600, 5000))
            self.at(self.delay(plan, "fulfil", now), self.fulfil, plan)

    def candidates(self, wish: Wish) -> list[User]:
        from app.wishes.models import CATEGORIES

        wanted = set(CATEGORIES[wish.category]["skills"])
        pool = list(self.volunteers)
        self.rng.shuffle(pool)
        pool.sort(key=lambda u: not (self.skills[u.id] & wanted))  # matching skills first
        if len(pool) > 2 and self.rng.random() < 0.35:  # not always the best match
            pool.insert(0, pool.pop(self.rng.randrange(1, len(pool))))
        return pool

    def release(self, plan: Plan) -> None:
        wish = self.wish(plan)
        if wish.status == lifecycle.CLAIMED:
            wishes.act(wish.id, "release", db.session.get(User, wish.claimer_id),
                       reason="临时要出差，先放出来让其他志愿者接")
            self.at(self.after(utcnow(), (120, 600)), self.take, plan)

    def extend(self, plan: Plan) -> None:
        wish = self.wish(plan)
        if wish.status == lifecycle.CLAIMED:
            wishes.act(wish.id, "extend", db.session.get(User, wish.claimer_id))

    def fulfil(self, plan: Plan) -> None:
        wish = self.wish(plan)
        if wish.status != lifecycle.CLAIMED:
            return
        wishes.act(wish.id, "fulfil", db.session.get(User, wish.claimer_id), note=plan.text[3])
        now = utcnow()
        if plan.fate == "auto":
            return  # the resident never confirms: the nightly tick does after 7 days
        if plan.fate == "dispute":
            self.at(self.after(now, (120, 720)), self.dispute, plan)
        else:
            self.at(self.delay(plan, "confirm", now), self.confirm, plan)

    def dispute(self, plan: Plan) -> None:
        if self.wish(plan).status != lifecycle.FULFILLED:
            return
        wishes.act(plan.wish_id, "dispute", self.owner_side(plan), reason="还是没弄好，麻烦再来看看")
        plan.fate = "disputed"
        self.at(self.after(utcnow(), (600, 1800)), self.fulfil, plan)

    def confirm(self, plan: Plan) -> None:
        if self.wish(plan).status != lifecycle.FULFILLED:
            return
        stars = self.pick(self.pace(plan).stars)
        if plan.fate == "disputed":
            stars = min(stars, 4)
        wishes.act(plan.wish_id, "confirm", self.owner_side(plan), rating=stars,
                   comment=self.rng.choice(COMMENTS[stars]))

    def pick(self, weights: dict[int, int]) -> int:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    # --- the nightly jobs ---------------------------------------------------------------------

    def cron(self, final: bool = False) -> None:
        """What cron runs after midnight: the wish deadlines, freezing weeks, closing months."""
        now = utcnow()
        if not final:
            ours = set(db.session.scalars(sa.select(Wish.id).where(
                Wish.community_id == self.cid, Wish.status.in_(
                    [lifecycle.OPEN, lifecycle.CLAIMED, lifecycle.FULFILLED]))))
            for due, step in ((wishes.due_auto_confirm, wishes.auto_confirm),
                              (wishes.due_lapses, wishes.lapse),
                              (wishes.due_escalations, wishes.escalate)):
                for wish_id in due(now):
                    if wish_id in ours:
                        step(wish_id, now)
        today = local_date(now)
        if final or today.weekday() == 0:  # `flask leaderboard freeze`, Mondays
            for week in leaderboard.weeks_to_freeze(self.cid, today):
                if week >= self.start.date():  # not the empty week before the history began
                    leaderboard.freeze_week(self.cid, week)
        if final or today.day == 1:  # `flask stats close-month`, on the 1st
            for month in ratings.months_to_close(self.cid, today):
                ratings.close_month(self.cid, month)

    # --- reports (随手拍) -----------------------------------------------------------------------

    def plan_reports(self) -> None:
        rng = self.rng
        reporters = [u for u in self.volunteers if u.phone in ("13800000013", "13800000014")]
        reporters += self.volunteers[:1]
        days = (self.now - self.start).days
        count = max(4, days * 2 // 7)
        moments = sorted(self.awake(self.start + timedelta(minutes=rng.randrange(days * 1440)),
                                    first=8) for _ in range(count))
        moments = [m for m in moments if m < self.now - timedelta(hours=2)]
        moments.append(self.now - timedelta(hours=1))  # still waiting for an organiser
        for index, moment in enumerate(moments):
            text = REPORTS[index % len(REPORTS)]
            self.at(moment, self.file_report, rng.choice(reporters), text, index)
        if len(moments) > 3:  # a second volunteer reports the same thing the same day
            other = self.volunteers[3]
            self.at(moments[1] + timedelta(hours=1), self.file_report, other,
                    REPORTS[1], -1)

    def file_report(self, reporter: User, text: tuple, index: int) -> None:
        category, location, description = text
        report = reports.file_report(self.cid, reporter, {
            "category": category, "location": location, "description": description})
        review = self.after(utcnow(), (60, 900), first=8, last=19)
        if index == -1:
            original = report.possible_duplicate_of or db.session.scalar(
                sa.select(reports.Report.id).where(
                    reports.Report.community_id == self.cid, reports.Report.id != report.id,
                    reports.Report.location == location).order_by(reports.Report.id).limit(1))
            if original is not None:
                self.at(review, self.review_report, report.id, "duplicate", original)
                return
        fate = "reject" if index % 7 == 4 else "accept"
        self.at(review, self.review_report, report.id, fate, None)

    def review_report(self, report_id: int, fate: str, original: int | None) -> None:
        organiser = self.rng.choice(self.organisers)
        if fate == "duplicate":
            reports.act(report_id, "duplicate", organiser, of=original)
        elif fate == "reject":
            reports.act(report_id, "reject", organiser, reason="经核实已由物业处理完毕")
        else:
            reports.act(report_id, "accept", organiser, level=self.rng.choice([1, 1, 2, 2, 3]))
            self.at(self.after(utcnow(), (30, 240), first=8, last=19), self.assign_report,
                    report_id)

    def assign_report(self, report_id: int) -> None:
        reports.act(report_id, "assign", self.grid, to=self.rng.choice(REPORT_HANDLERS))
        self.at(self.after(utcnow(), (600, 4000), first=8, last=19), self.resolve_report,
                report_id)

    def resolve_report(self, report_id: int) -> None:
        reports.act(report_id, "resolve", self.grid, note="已处置完毕，现场已拍照回访，居民满意。")

    # --- activities -----------------------------------------------------------------------------

    def plan_activities(self) -> None:
        days = (self.now - self.start).days
        # Saturdays of the history, the first one in its second week at the latest.
        saturdays = [self.start.date() + timedelta(days=5 + 7 * w) for w in range(days // 7 + 1)]
        held = [d for d in saturdays if self.local(d, 12) < self.now][1::3][:2]
        if not held and saturdays and self.local(saturdays[0], 12) < self.now:
            held = saturdays[:1]
        for index, day in enumerate(held):
            self.at(self.local(day - timedelta(days=5), 10), self.publish_activity,
                    ACTIVITIES[index], self.local(day, 9), True)
        # One still to come, with its first sign-ups.
        coming = self.local(local_date(self.now) + timedelta(days=4), 9)
        self.at(self.now - timedelta(days=2), self.publish_activity, ACTIVITIES[2], coming, False)

    def publish_activity(self, text: tuple, starts_at: datetime, held: bool) -> None:
        title, description, place, level, half_hours, capacity = text
        activity = activities.create(self.cid, {
            "title": title, "description": description, "place": place,
            "starts_at": starts_at, "ends_at": starts_at + timedelta(minutes=30 * half_hours),
            "capacity": capacity, "level": level, "half_hours": half_hours}, self.chief.id)
        now = utcnow()
        people = self.rng.sample(self.volunteers, len(self.volunteers))
        for offset, person in enumerate(people[:4] if held else people[:2]):
            self.at(now + timedelta(hours=3 + 5 * offset), self.sign_up, activity.id, person)
        if not held:
            return
        self.at(now + timedelta(hours=30), self.cancel_sign_up, activity.id, people[3])
        for offset, person in enumerate(people[:2]):  # people[2] signed up but stays away
            self.at(starts_at - timedelta(minutes=12 - 3 * offset), self.check_in, activity.id,
                    person)
        self.at(starts_at + timedelta(minutes=20), self.walk_in, activity.id, people[4])
        self.at(starts_at + timedelta(minutes=30 * half_hours + 15), self.complete_activity,
                activity.id)

    def sign_up(self, activity_id: int, person: User) -> None:
        with acting_as(person):
            activities.signup(activity_id, person.id)

    def cancel_sign_up(self, activity_id: int, person: User) -> None:
        with acting_as(person):
            activities.cancel_signup(activity_id, person.id)

    def check_in(self, activity_id: int, person: User) -> None:
        # At the door the 网格员 ticks the list (a volunteer's own check-in by QR or code
        # commits its attempt counter at once, which a history lived in one transaction
        # cannot have).
        with acting_as(self.grid):
            activities.mark_present(activity_id, person.id, self.grid.id)

    def walk_in(self, activity_id: int, person: User) -> None:
        with acting_as(self.grid):
            activities.mark_present(activity_id, person.id, self.grid.id)

    def complete_activity(self, activity_id: int) -> None:
        with acting_as(self.chief):
            activities.complete(activity_id, self.chief.id)

    # --- the store and an adjustment --------------------------------------------------------------

    def plan_store(self) -> None:
        days = (self.now - self.start).days
        middle = self.start + timedelta(days=days // 2)
        self.at(self.awake(middle + timedelta(hours=10), first=9), self.adjust)
        last_days = self.now - timedelta(days=4)
        for offset, outcome in enumerate(("fulfilled", "cancelled", "waiting")):
            moment = self.awake(last_days + timedelta(hours=5 + 20 * offset), first=9, last=18)
            self.at(moment, self.redeem, offset, outcome)

    def adjust(self) -> None:
        volunteer = next(u for u in self.volunteers if u.phone == "13800000012")
        ledger.adjust(self.cid, volunteer.id, 20, "补录：协助组织楼道清理（纸质签到表）", self.chief.id,
                      client_key="demo-history-adjustment")

    def redeem(self, offset: int, outcome: str) -> None:
        balances = {u.id: (ledger.find_user_account(self.cid, u.id) or None)
                    for u in self.volunteers}
        richest = sorted(self.volunteers,
                         key=lambda u: -(balances[u.id].balance if balances[u.id] else 0))
        person = richest[offset % len(richest)]
        balance = balances[person.id].balance if balances[person.id] else 0
        rewards = db.session.scalars(sa.select(Reward).where(
            Reward.community_id == self.cid, Reward.active.is_(True), Reward.kind != "honour",
            Reward.cost <= balance).order_by(Reward.cost.desc())).all()
        if not rewards:
            return
        reward = rewards[min(offset, len(rewards) - 1)]  # rice, oil, a haircut: not all alike
        redemption = store.redeem(reward.id, person.id, 1, person.id)
        now = utcnow()
        if outcome == "fulfilled":
            self.at(self.after(now, (600, 1500), first=9, last=17), self.pick_up,
                    redemption.id, redemption.pickup_code)
        elif outcome == "cancelled":
            self.at(self.after(now, (60, 600)), self.cancel_redemption, redemption.id,
                    person.id)

    def pick_up(self, redemption_id: int, code: str) -> None:
        store.fulfil(redemption_id, code, self.grid.id)

    def cancel_redemption(self, redemption_id: int, person_id: int) -> None:
        store.cancel(redemption_id, person_id, reason="想换别的奖品")

    # --- what happened ------------------------------------------------------------------------------

    def summary(self) -> dict:
        by_state = dict(db.session.execute(
            sa.select(Wish.status, sa.func.count()).where(Wish.community_id == self.cid)
            .group_by(Wish.status)).all())
        issuance = ledger.issuance_account(self.cid)
        issued = db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Transfer.amount), 0))
                                   .where(Transfer.community_id == self.cid,
                                          Transfer.source_id == issuance))
        from app.ledger.models import LeaderboardSnapshot
        from app.reports.models import Report
        from app.stats.models import ClosedMonth
        from app.store.models import Redemption

        def count(model, *where):
            return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

        return {
            "skipped": False, "start": self.start.date(), "end": local_date(self.now),
            "wishes": {s: by_state.get(s, 0) for s in lifecycle.STATUSES},
            "points_issued": int(issued),
            "reports": count(Report, Report.community_id == self.cid),
            "activities": count(Activity, Activity.community_id == self.cid),
            "redemptions": count(Redemption, Redemption.community_id == self.cid),
            "weeks_frozen": count(LeaderboardSnapshot, LeaderboardSnapshot.community_id == self.cid,
                                  LeaderboardSnapshot.by == "volunteer"),
            "months_closed": count(ClosedMonth, ClosedMonth.community_id == self.cid),
            "members": count(Membership, Membership.community_id == self.cid),
        }

"""A believable demo community, from the source articles: 幸福街道 管园村 and its volunteers.

Every object is found by its natural key before it is created, so seeding twice changes nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app

from app.auth.models import User
from app.auth.passwords import hash_password
from app.communities.models import Community, Membership, Role, Team, TeamMember, VolunteerProfile
from app.communities.service import teams_changed
from app.extensions import db
from app.store.models import Reward
from app.wishes.models import Board
from app.wishes.service import create_board, public_url

COMMUNITY = {"code": "guanyuan", "name": "管园村", "street": "幸福街道", "district": "镜湖区"}

# (phone, name, role, profile or None, team or None)
PEOPLE = [
    ("13800000001", "李书记", Role.ORGANISER, None, None),
    ("13800000002", "张网格员", Role.ORGANISER, None, None),
    ("13800000011", "王建国", Role.VOLUNTEER,
     {"party_member": True, "status": "retired", "skills": ["repair", "errands"], "tags": ["老党员"]},
     "red"),
    ("13800000012", "陈秀英", Role.VOLUNTEER,
     {"party_member": True, "status": "retired", "skills": ["caregiving", "housekeeping"],
      "tags": ["老党员", "热心肠"]}, "red"),
    ("13800000013", "刘强", Role.VOLUNTEER,
     {"party_member": False, "status": "in_service", "skills": ["errands", "driving"],
      "tags": ["外卖小哥"]}, "bee"),
    ("13800000014", "赵磊", Role.VOLUNTEER,
     {"party_member": True, "status": "in_service", "skills": ["errands", "digital"],
      "tags": ["外卖小哥"]}, "bee"),
    ("13800000015", "孙丽", Role.VOLUNTEER,
     {"party_member": True, "status": "in_service", "skills": ["legal", "tutoring"],
      "tags": ["在职党员", "双报到"]}, None),
    ("13800000021", "王女士", Role.RESIDENT, None, None),
    ("13800000022", "周大爷", Role.RESIDENT, None, None),
    ("13800000023", "吴阿姨", Role.RESIDENT, None, None),
]

TEAMS = {
    "red": ("“红色足印”老党员志愿服务队", "退休老党员组成，常年为小区老人提供维修、陪护和代办服务。",
            "13800000011"),
    "bee": ("“小蜜蜂”外卖小哥志愿队", "外卖骑手利用送餐间隙跑腿代购、随手拍报送小区问题。",
            "13800000013"),
}

ADMIN = ("13900000000", "平台管理员")

# (name, kind, cost, stock, monthly limit per person, description)
REWARDS = [
    ("大米 5kg", "goods", 100, 20, 2, "爱心超市实物兑换"),
    ("食用油 5L", "goods", 120, 15, 1, "爱心超市实物兑换"),
    ("洗衣液 2kg", "goods", 60, 30, None, "爱心超市实物兑换"),
    ("家政服务 2 小时", "service", 200, 5, 1, "由合作家政公司上门服务"),
    ("理发一次", "service", 40, 10, 2, "社区理发志愿点"),
    ("党员民主评议加分", "honour", 300, None, 1, "年度党员民主评议加分项，经党总支审核"),
]

# (name, location, grid label, auto-approve)
BOARDS = [
    ("远创樾府", "远创樾府东门公示栏", "第一网格", False),
    ("远创樾府 物业群帮办码", "远创樾府业主微信群", "第一网格", True),
    ("管园村村委会", "村委会一楼党群服务中心", "第二网格", False),
]


def _user(phone: str, name: str, password_hash: str, is_admin: bool = False) -> User:
    user = db.session.scalar(sa.select(User).where(User.phone == phone))
    if user is None:
        user = User(phone=phone, display_name=name, password_hash=password_hash, is_admin=is_admin)
        db.session.add(user)
        db.session.flush()
    return user


def seed_demo(weeks: int = 0) -> dict:
    """The community, its people, teams, boards and rewards; with `weeks`, that many weeks of
    history lived up to now (app/demo_history.py), unless it has a history already."""
    password = current_app.config["DEMO_PASSWORD"]
    password_hash = hash_password(password)

    community = db.session.scalar(sa.select(Community).where(Community.code == COMMUNITY["code"]))
    if community is None:
        community = Community(**COMMUNITY)
        db.session.add(community)
        db.session.flush()

    accounts = [("admin", ADMIN[0], ADMIN[1])]
    _user(*ADMIN, password_hash, is_admin=True)
    users: dict[str, User] = {}
    for phone, name, role, profile, _team in PEOPLE:
        user = users[phone] = _user(phone, name, password_hash)
        accounts.append((role.value, phone, name))
        if Membership.find(community.id, user.id) is None:
            db.session.add(Membership(community_id=community.id, user_id=user.id, role=role.value))
        if profile and db.session.get(VolunteerProfile, user.id) is None:
            db.session.add(VolunteerProfile(user_id=user.id, **profile))
    db.session.flush()

    for key, (name, description, leader_phone) in TEAMS.items():
        team = db.session.scalar(sa.select(Team).where(
            Team.community_id == community.id, Team.name == name))
        if team is None:
            team = Team(community_id=community.id, name=name, description=description,
                        leader_id=users[leader_phone].id)
            db.session.add(team)
            db.session.flush()
        for phone, *_rest, team_key in PEOPLE:
            if team_key == key and db.session.get(TeamMember, (team.id, users[phone].id)) is None:
                db.session.add(TeamMember(team_id=team.id, user_id=users[phone].id,
                                          community_id=community.id))
        db.session.flush()
        teams_changed(community.id, [team.id])

    for name, location, grid, auto in BOARDS:
        if db.session.scalar(sa.select(Board.id).where(
                Board.community_id == community.id, Board.name == name)) is None:
            create_board(community.id, name, location, grid, auto_approve=auto)
    for name, kind, cost, stock, limit, description in REWARDS:
        if db.session.scalar(sa.select(Reward.id).where(
                Reward.community_id == community.id, Reward.name == name)) is None:
            db.session.add(Reward(community_id=community.id, name=name, kind=kind, cost=cost,
                                  stock=stock, per_user_monthly_limit=limit,
                                  description=description))
    db.session.flush()

    history = None
    if weeks > 0:
        from app.demo_history import seed_history

        history = seed_history(weeks, password_hash)
    boards = db.session.scalars(sa.select(Board).where(Board.community_id == community.id)
                                .order_by(Board.id)).all()
    return {"password": password, "accounts": accounts, "community_id": community.id,
            "boards": [(b.id, b.name, public_url(b)) for b in boards], "history": history}

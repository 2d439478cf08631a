"""Points lots (first in, first out) and optional expiry (issue 9, must-have 4).

Every credit to a user's account opens a lot; debits take the oldest lots first; a refund
gives its redemption's lots back with their dates; `flask points expire` posts each lot past
its date as an ordinary transfer to the community's expiry account; `GET /me/points` says what
expires next; `flask ledger verify` proves the lots sum to the balances. The race at the end
runs the expiry job beside redemptions over real gunicorn workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import ROOT, TEST_SECRET
from tests.helpers import assert_error, assert_field_error, reading
from tests.ledger_helpers import adjust, assert_verified, ledger_rows, set_clock
from tests.store_helpers import balance, give_points, make_reward, redeem, writing
from tests.test_store_concurrency import assert_server_healthy, fire, outcome

API = "/api/v1"
NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def rules_body(client, headers, cid) -> dict:
    document = client.get(f"{API}/communities/{cid}/points-rules", headers=headers).get_json()
    return {"rules": document["rules"],
            "satisfaction_factors": document["satisfaction_factors"], "daily_earn_cap": None}


def set_expiry(client, headers, cid, months) -> dict:
    response = client.put(f"{API}/communities/{cid}/points-rules", headers=headers,
                          json={**rules_body(client, headers, cid), "expiry_months": months})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def earn(app, monkeypatch, cid, uid, amount, when, key):
    """Post an earning as if at `when` (the ledger's clock moved there)."""
    from app.ledger import service
    from app.ledger.models import TransferKind

    set_clock(monkeypatch, when)
    with writing(app):
        service.transfer(cid, service.issuance_account(cid), service.user_account(cid, uid),
                         amount, TransferKind.EARN_REPORT, key)


def lots(app, cid, uid) -> list[tuple]:
    """(earned_on, amount, remaining, expired) of the user's lots, oldest first."""
    from app.ledger.models import Account, PointsLot

    with reading(app) as session:
        return [tuple(r) for r in session.execute(
            sa.select(PointsLot.earned_on, PointsLot.amount, PointsLot.remaining,
                      PointsLot.expired)
            .join(Account, Account.id == PointsLot.account_id)
            .where(Account.community_id == cid, Account.key == f"user:{uid}")
            .order_by(PointsLot.earned_on, PointsLot.id))]


def expiry_transfers(app, cid) -> list[dict]:
    from app.ledger.models import Transfer

    with reading(app) as session:
        return [dict(r) for r in session.execute(
            sa.select(Transfer.key, Transfer.amount, Transfer.source_id)
            .where(Transfer.community_id == cid, Transfer.kind == "expiry")
            .order_by(Transfer.id)).mappings()]


def run_expire(app) -> str:
    result = app.test_cli_runner().invoke(args=["points", "expire"])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


# --- lots ---------------------------------------------------------------------------------

def test_spending_takes_the_oldest_points_first(app, client, world, org, monkeypatch):
    cid, uid = world.community.id, world.volunteer.id
    earn(app, monkeypatch, cid, uid, 10, NOW - timedelta(days=3), "report:1:award")
    earn(app, monkeypatch, cid, uid, 20, NOW - timedelta(days=2), "report:2:award")
    earn(app, monkeypatch, cid, uid, 30, NOW - timedelta(days=1), "report:3:award")
    set_clock(monkeypatch, NOW)

    assert adjust(client, org, cid, uid, -15, "录错了").status_code == 201
    assert [lot[2] for lot in lots(app, cid, uid)] == [0, 15, 30]
    assert adjust(client, org, cid, uid, 5, "补发").status_code == 201
    assert [lot[1:3] for lot in lots(app, cid, uid)] == [(10, 0), (20, 15), (30, 30), (5, 5)]
    assert_verified(app)


def test_a_refund_gives_back_the_lots_it_took_with_their_dates(app, client, world, org,
                                                               factory, monkeypatch):
    cid, uid = world.community.id, world.volunteer.id
    earn(app, monkeypatch, cid, uid, 10, NOW - timedelta(days=40), "report:1:award")
    earn(app, monkeypatch, cid, uid, 10, NOW - timedelta(days=5), "report:2:award")
    set_clock(monkeypatch, NOW)
    reward = make_reward(client, org, cid, name="洗衣液", cost=15, stock=3)
    vol = factory.headers(world.volunteer)
    redemption = redeem(client, vol, reward["id"]).get_json()
    assert [lot[2] for lot in lots(app, cid, uid)] == [0, 5]

    cancelled = client.post(f"{API}/redemptions/{redemption['id']}/cancel", headers=vol, json={})
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    assert [(lot[0], lot[2]) for lot in lots(app, cid, uid)] == [
        ((NOW - timedelta(days=40)).date(), 10), ((NOW - timedelta(days=5)).date(), 10)]
    assert len(lots(app, cid, uid)) == 2  # no new lot: the old ones were refilled
    assert_verified(app)


# --- expiry -------------------------------------------------------------------------------

def test_expiry_is_off_by_default_and_set_in_the_points_rules(app, client, world, org, vol):
    cid = world.community.id
    document = client.get(f"{API}/communities/{cid}/points-rules", headers=org).get_json()
    assert document["expiry_months"] is None
    assert set_expiry(client, org, cid, 12)["expiry_months"] == 12
    # A PUT without the field leaves it as it is; null turns expiry off.
    body = rules_body(client, org, cid)
    assert client.put(f"{API}/communities/{cid}/points-rules", headers=org,
                      json=body).get_json()["expiry_months"] == 12
    assert set_expiry(client, org, cid, None)["expiry_months"] is None
    points = client.get(f"{API}/me/points?community_id={cid}", headers=vol).get_json()
    assert points["expiring"] is None


@pytest.mark.parametrize("months", [0, -1, 121, "12", 1.5, True, 10**12])
def test_bad_expiry_months_are_refused_and_change_nothing(app, client, world, org, months):
    cid = world.community.id
    before = client.get(f"{API}/communities/{cid}/points-rules", headers=org).get_json()
    response = client.put(f"{API}/communities/{cid}/points-rules", headers=org,
                          json={**rules_body(client, org, cid), "expiry_months": months})
    assert_field_error(response, "expiry_months", case=months)
    assert client.get(f"{API}/communities/{cid}/points-rules", headers=org).get_json() == before


def test_only_an_organiser_of_the_community_sets_expiry(app, client, world, factory, vol):
    cid = world.community.id
    body = {**rules_body(client, factory.headers(world.organiser), cid), "expiry_months": 6}
    for headers, status in ((vol, 403), (factory.headers(world.resident), 403),
                            (factory.headers(world.other_organiser), 404)):
        assert_error(client.put(f"{API}/communities/{cid}/points-rules", headers=headers,
                                json=body), status)
    assert client.get(f"{API}/communities/{cid}/points-rules",
                      headers=vol).get_json()["expiry_months"] is None


def test_points_expire_at_shanghai_midnight_of_their_date(app, client, world, org, vol,
                                                          monkeypatch):
    cid, uid = world.community.id, world.volunteer.id
    # Earned at 23:30 on 31 January in Shanghai (15:30 UTC): after one month they expire at
    # 00:00 on 28 February (February has no 31st), Shanghai time.
    earned = datetime(2026, 1, 31, 15, 30, tzinfo=UTC)
    earn(app, monkeypatch, cid, uid, 40, earned, "report:1:award")
    earn(app, monkeypatch, cid, uid, 25, earned + timedelta(days=10), "report:2:award")
    set_clock(monkeypatch, datetime(2026, 2, 27, 15, 59, tzinfo=UTC))  # 23:59 on the 27th
    set_expiry(client, org, cid, 1)

    summary = client.get(f"{API}/me/points?community_id={cid}", headers=vol).get_json()
    assert summary["expiring"] == {"points": 40, "on": "2026-02-28"}
    run_expire(app)
    assert expiry_transfers(app, cid) == []

    set_clock(monkeypatch, datetime(2026, 2, 27, 16, 0, tzinfo=UTC))  # 00:00 on the 28th
    assert "expired 40 points in 1 accounts" in run_expire(app)
    assert balance(app, cid, uid) == 25
    (posted,) = expiry_transfers(app, cid)
    assert posted["amount"] == 40 and posted["key"].startswith("expiry:lot:")
    summary = client.get(f"{API}/me/points?community_id={cid}", headers=vol).get_json()
    assert summary["expiring"] == {"points": 25, "on": "2026-03-10"}
    assert summary["balance"] == 25

    # Safe to repeat: nothing more is posted.
    before = ledger_rows(app)
    assert "expired 0 points in 0 accounts" in run_expire(app)
    assert ledger_rows(app) == before
    assert_verified(app)


def test_a_redemption_posts_due_expiries_first_and_never_spends_them(app, client, world, org,
                                                                     factory, monkeypatch):
    cid, uid = world.community.id, world.volunteer.id
    earn(app, monkeypatch, cid, uid, 30, NOW - timedelta(days=70), "report:1:award")
    earn(app, monkeypatch, cid, uid, 20, NOW - timedelta(days=3), "report:2:award")
    set_clock(monkeypatch, NOW)
    set_expiry(client, org, cid, 2)
    reward = make_reward(client, org, cid, name="大米", cost=25, stock=5)
    vol = factory.headers(world.volunteer)

    # 50 on the books, but 30 of them expired: 25 cannot be paid, and nothing is posted.
    before = ledger_rows(app)
    assert_error(redeem(client, vol, reward["id"]), 409, "insufficient_points")
    assert ledger_rows(app) == before

    cheaper = make_reward(client, org, cid, name="肥皂", cost=15, stock=5)
    assert redeem(client, vol, cheaper["id"]).status_code == 201
    assert balance(app, cid, uid) == 5
    assert [t["amount"] for t in expiry_transfers(app, cid)] == [30]
    assert [lot[2:] for lot in lots(app, cid, uid)] == [(0, 30), (5, 0)]
    assert_verified(app)


def test_a_refund_into_an_expired_lot_expires_again(app, client, world, org, factory,
                                                    monkeypatch):
    cid, uid = world.community.id, world.volunteer.id
    earn(app, monkeypatch, cid, uid, 30, NOW - timedelta(days=20), "report:1:award")
    set_clock(monkeypatch, NOW)
    reward = make_reward(client, org, cid, name="理发", kind="service", cost=20, stock=5)
    vol = factory.headers(world.volunteer)
    redemption = redeem(client, vol, reward["id"]).get_json()
    set_expiry(client, org, cid, 1)
    later = NOW + timedelta(days=15)
    set_clock(monkeypatch, later)
    run_expire(app)  # the 10 left of the lot expire
    assert balance(app, cid, uid) == 0

    assert client.post(f"{API}/redemptions/{redemption['id']}/cancel", headers=vol,
                       json={}).status_code == 200
    assert balance(app, cid, uid) == 20  # refunded into the lot, with its old date…
    run_expire(app)  # …so it expires too, under a key of its own
    assert balance(app, cid, uid) == 0
    keys = [t["key"] for t in expiry_transfers(app, cid)]
    assert len(keys) == 2 and len(set(keys)) == 2 and keys[1].endswith(":10")
    assert_verified(app)


def test_me_points_shows_points_by_source_and_service_hours(app, client, world, org, vol,
                                                            monkeypatch):
    from app.ledger import service
    from app.ledger.models import TransferKind

    cid, uid = world.community.id, world.volunteer.id
    with writing(app):
        account, issuance = service.user_account(cid, uid), service.issuance_account(cid)
        service.transfer(cid, issuance, account, 30, TransferKind.EARN_WISH, "wish:1:award")
        service.transfer(cid, issuance, account, 10, TransferKind.EARN_REPORT, "report:1:award")
        service.transfer(cid, issuance, account, 20, TransferKind.EARN_ACTIVITY,
                         f"activity:1:{uid}")
    assert adjust(client, org, cid, uid, -5, "多记了").status_code == 201
    summary = client.get(f"{API}/me/points?community_id={cid}", headers=vol).get_json()
    assert summary["by_source"] == {"wish": 30, "report": 10, "activity": 20, "adjustment": -5}
    assert summary["balance"] == 55 and summary["earned_total"] == 55
    assert isinstance(summary["service_hours"], int | float)

    board = client.get(f"{API}/communities/{cid}/leaderboard?period=all&source=report",
                       headers=vol).get_json()
    assert [(r["user_id"], r["points"]) for r in board["items"]] == [(uid, 10)]
    assert board["source"] == "report"
    assert_field_error(client.get(f"{API}/communities/{cid}/leaderboard?source=gift",
                                  headers=vol), "source")


@pytest.mark.corrupts_ledger
def test_verify_finds_lots_that_do_not_match_the_balance(app, world, org, monkeypatch):
    from app.extensions import db
    from app.ledger.models import PointsLot
    from app.ledger.verify import verify

    give_points(app, world.community.id, [world.volunteer.id], 10, world.organiser.id)
    with writing(app):
        db.session.execute(sa.update(PointsLot).values(remaining=PointsLot.remaining - 3))
    with reading(app):
        (report, *_) = verify(world.community.code)
    assert any("its lots hold 7 points" in v for v in report.violations), report.violations
    assert any("uses took 0" in v for v in report.violations), report.violations


# --- the migration opens lots for balances held before it ---------------------------------

def test_the_migration_opens_lots_for_existing_balances(make_app, scratch_database_url):
    from flask_migrate import upgrade

    app = make_app(SQLALCHEMY_DATABASE_URI=scratch_database_url)
    with app.app_context():
        from app.extensions import db

        upgrade(revision="0007")
        with db.engine.begin() as conn:
            run = conn.exec_driver_sql
            run("INSERT INTO users (id, phone, display_name, password_hash, is_admin, "
                "created_at) VALUES (1, '13800000001', '王', 'x', false, '2026-01-01')")
            run("INSERT INTO communities (id, name, code, street, district, created_at) "
                "VALUES (1, '管园村', 'g', '', '', '2026-01-01')")
            run("INSERT INTO points_accounts (id, community_id, key, kind, user_id, balance, "
                "earned_total, redeemed_total, entry_count, created_at) VALUES "
                "(1, 1, 'issuance', 'issuance', NULL, -60, 0, 0, 3, '2026-01-01'), "
                "(2, 1, 'store', 'store', NULL, 25, 0, 0, 1, '2026-01-01'), "
                "(3, 1, 'user:1', 'user', 1, 35, 60, 25, 4, '2026-01-01')")
            for n, (src, dst, amount, day, kind) in enumerate(
                    [(1, 3, 10, 1, "earn_report"), (1, 3, 20, 2, "earn_report"),
                     (3, 2, 25, 3, "redemption"), (1, 3, 30, 4, "earn_report")], start=1):
                run(f"INSERT INTO ledger_transfers (id, community_id, key, kind, source_id, "
                    f"destination_id, requested_amount, amount, memo, created_at) VALUES "
                    f"({n}, 1, 'k{n}', '{kind}', {src}, {dst}, {amount}, {amount}, '', "
                    f"'2026-03-0{day} 20:00:00.000000')")
                run(f"INSERT INTO ledger_entries (transfer_id, community_id, account_id, amount, "
                    f"balance_after, created_at) VALUES ({n}, 1, {src}, {-amount}, 0, "
                    f"'2026-03-0{day} 20:00:00.000000'), ({n}, 1, {dst}, {amount}, 0, "
                    f"'2026-03-0{day} 20:00:00.000000')")
        upgrade()
        with db.engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT transfer_id, earned_on, amount, remaining FROM points_lots "
                "ORDER BY id").all()
            sources = conn.exec_driver_sql(
                "SELECT earned_report, adjusted FROM points_accounts WHERE id = 3").one()
        db.session.remove()
        db.engine.dispose()
    # 35 held: the newest credit (30, transfer 4) and 5 of the one before (transfer 2); the
    # 20:00 UTC postings fell on the next day in Shanghai.
    assert [(t, str(on), n, left) for t, on, n, left in found] == [
        (2, "2026-03-03", 5, 5), (4, "2026-03-05", 30, 30)]
    assert tuple(sources) == (60, 0)  # the per-source totals were counted from the entries


# --- the expiry job racing redemptions over live workers ----------------------------------

@pytest.mark.live
def test_the_expiry_job_racing_redemptions_spends_no_expired_point(live_server, app, client,
                                                                   world, factory, org,
                                                                   monkeypatch, database_url):
    cid = world.community.id
    volunteers = [factory.member(world.community, factory.user(f"骑手{n}"), "volunteer")
                  for n in range(17)]
    for v in volunteers:  # 30 points earned 70 days ago (expired), 20 earned 3 days ago
        earn(app, monkeypatch, cid, v.id, 30, NOW - timedelta(days=70), f"report:{v.id}:a")
        earn(app, monkeypatch, cid, v.id, 20, datetime.now(UTC) - timedelta(days=3),
             f"report:{v.id}:b")
    monkeypatch.undo()
    # The old lots were earned 70 days before NOW, in June 2026: long expired by today.
    set_expiry(client, org, cid, 2)
    reward = make_reward(client, org, cid, name="鸡蛋一盒", cost=10, stock=1000)
    headers = [factory.headers(v) for v in volunteers]
    server = live_server(workers=4)

    environment = {**os.environ, "XINYUAN_ENV": "testing", "DATABASE_URL": database_url,
                   "SECRET_KEY": TEST_SECRET, "JWT_SECRET_KEY": TEST_SECRET,
                   "FLASK_APP": "wsgi"}
    job_output: list[str] = []

    def expiry_job():
        for _ in range(2):
            done = subprocess.run([sys.executable, "-m", "flask", "points", "expire"], cwd=ROOT,
                                  env=environment, capture_output=True, text=True, timeout=120)
            job_output.append(done.stdout + done.stderr)

    job = threading.Thread(target=expiry_job)
    job.start()
    calls = [(lambda h=h: requests.post(f"{server.url}{API}/rewards/{reward['id']}/redeem",
                                        json={"quantity": 1}, headers=h, timeout=120))
             for h in headers for _ in range(3)]
    responses, _wall, _durations = fire(calls)
    job.join()

    counts = Counter(outcome(r) for r in responses)
    # Each volunteer holds 20 unexpired points: two redemptions of 10 go through, the third
    # would need an expired point and is refused — whoever came first, the job or a request.
    assert counts == {"201": 34, "409 insufficient_points": 17}, counts
    assert all("Traceback" not in out for out in job_output), job_output
    for v in volunteers:
        assert balance(app, cid, v.id) == 0
        assert lots(app, cid, v.id)[0][3] == 30  # the old lot expired whole
    expired = expiry_transfers(app, cid)
    assert len(expired) == 17 and {t["amount"] for t in expired} == {30}
    assert_verified(app)
    assert_server_healthy(server)


def test_add_months_keeps_the_day_or_takes_the_months_last():
    from app.localtime import add_months

    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2026, 12, 15), 12) == date(2027, 12, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


def test_the_daily_cap_counts_every_source_together(app, client, world, org, monkeypatch):
    """Wishes, reports and activities share one daily earning cap; adjustments do not count."""
    from app.ledger import service
    from app.ledger.models import TransferKind

    cid, uid = world.community.id, world.volunteer.id
    body = {**rules_body(client, org, cid), "daily_earn_cap": 50}
    assert client.put(f"{API}/communities/{cid}/points-rules", headers=org,
                      json=body).status_code == 200
    set_clock(monkeypatch, NOW)
    posted = []
    with writing(app):
        account, issuance = service.user_account(cid, uid), service.issuance_account(cid)
        for kind, key in ((TransferKind.EARN_WISH, "wish:1:award"),
                          (TransferKind.EARN_REPORT, "report:1:award"),
                          (TransferKind.EARN_ACTIVITY, f"activity:1:{uid}")):
            posted.append(service.transfer(cid, issuance, account, 20, kind, key).transfer.amount)
    assert posted == [20, 20, 10]
    assert adjust(client, org, cid, uid, 30, "防汛值守").status_code == 201
    assert balance(app, cid, uid) == 80
    assert_verified(app)


# --- the pages ----------------------------------------------------------------------------

def test_my_points_page_shows_sources_hours_and_what_expires(app, client, world, org, factory,
                                                             monkeypatch):
    from tests.pages_helpers import page, signed_in, text_of

    cid, uid = world.community.id, world.volunteer.id
    earn(app, monkeypatch, cid, uid, 15, datetime.now(UTC) - timedelta(days=2), "report:1:award")
    monkeypatch.undo()
    set_expiry(client, org, cid, 1)
    other = factory.member(world.community, factory.user("赵师傅"), "volunteer")
    give_points(app, cid, [other.id], 40, world.organiser.id)

    signed_in(client, world.volunteer)
    words = text_of(page(client, "/me/points"))
    assert "随手拍反映问题 15" in words and "帮居民实现心愿 0" in words
    assert "志愿时长 0 小时" in words
    assert "有 15 积分将在" in words and "零点过期" in words

    board = text_of(page(client, "/leaderboard?period=all&source=report"))
    assert "王建国" in board and "赵师傅" not in board  # 赵师傅's points are an adjustment
    assert "赵师傅" in text_of(page(client, "/leaderboard?period=all"))
    refused = page(client, "/leaderboard?source=gift", status=422)
    assert "积分来源" in text_of(refused)

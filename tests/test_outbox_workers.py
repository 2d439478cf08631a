"""Two real `flask outbox run` processes share the outbox: every event reaches the receiver once.

Runs on the database under test (SQLite here; PostgreSQL when the suite runs with
TEST_DATABASE_URL), so both claim paths — BEGIN IMMEDIATE and FOR UPDATE SKIP LOCKED — are
proved with real processes, then stopped with SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from app.db import write_transaction
from app.extensions import db
from app.notifications import outbox
from app.notifications.models import Delivery
from tests.conftest import ROOT, TEST_SECRET
from tests.helpers import reading
from tests.webhook_helpers import WISH, Receiver, add_hook

EVENTS = 500


def start_worker(database_url: str, log_path, *args: str) -> subprocess.Popen:
    environment = {
        **os.environ, "XINYUAN_ENV": "testing", "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET, "JWT_SECRET_KEY": TEST_SECRET,
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32", "WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,0.5",
        "WEBHOOK_JITTER": "0", "WEBHOOK_TIMEOUT": "5",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "run", *args],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=log_path.open("wb"))


def pending(app) -> int:
    with reading(app) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Delivery).where(
            Delivery.status != "delivered"))


@pytest.mark.slow
def test_two_workers_deliver_each_of_500_events_exactly_once(app, factory, database_url,
                                                             tmp_path):
    organiser = factory.user("李书记")
    community = factory.community("yuanchuang", "远创樾府", organiser=organiser)
    # a receiver a little slow to answer, so the two workers really overlap
    receiver = Receiver(delay=0.01)
    try:
        add_hook(app, community.id, receiver.url(), secret="two-workers")
        with app.app_context():
            with write_transaction(db.session):
                expected = {str(outbox.emit("wish.posted", community.id,
                                            subject=("wish", n), data=WISH))
                            for n in range(EVENTS)}
            db.session.remove()

        workers = [start_worker(database_url, tmp_path / f"worker-{n}.log",
                                "--batch", "20", "--idle", "0.1") for n in range(2)]
        try:
            deadline = time.monotonic() + 180
            while pending(app) and time.monotonic() < deadline:
                for worker in workers:
                    assert worker.poll() is None, (tmp_path / "worker-0.log").read_text()
                time.sleep(0.2)
            time.sleep(1.0)  # room for a duplicate, were there going to be one
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            outputs = []
            for worker in workers:
                try:
                    out, _ = worker.communicate(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    out, _ = worker.communicate()
                outputs.append(out.decode())

        logs = [(tmp_path / f"worker-{n}.log").read_text() for n in range(2)]
        assert [w.returncode for w in workers] == [0, 0], (outputs, logs)
        assert not any("Traceback" in log for log in logs), logs
        assert pending(app) == 0

        seen = Counter(r["headers"]["X-Xinyuan-Event-Id"] for r in receiver.requests)
        assert set(seen) == expected, "some events were never delivered"
        duplicates = {event_id: n for event_id, n in seen.items() if n > 1}
        assert not duplicates, f"delivered more than once: {duplicates}"

        delivered = [int(re.search(r"delivered=(\d+)", out).group(1)) for out in outputs]
        assert sum(delivered) == EVENTS, outputs
        assert all(delivered), f"one worker did all the work: {outputs}"
        with reading(app) as session:
            attempts = session.execute(sa.select(Delivery.status, Delivery.attempts,
                                                 Delivery.lease_owner)).all()
        assert attempts and all(row == ("delivered", 1, None) for row in attempts)
    finally:
        receiver.stop()


@pytest.mark.slow
def test_a_waiting_worker_stops_on_sigterm(app, factory, database_url, tmp_path):
    community = factory.community("yuanchuang", "远创樾府", organiser=factory.user("李书记"))
    receiver = Receiver()
    try:
        add_hook(app, community.id, receiver.url())
        worker = start_worker(database_url, tmp_path / "idle.log", "--idle", "0.2")
        with app.app_context():
            with write_transaction(db.session):
                outbox.emit("wish.posted", community.id, subject=("wish", 1), data=WISH)
            db.session.remove()
        deadline = time.monotonic() + 60
        while pending(app) and time.monotonic() < deadline:  # delivered: the worker is up
            assert worker.poll() is None, (tmp_path / "idle.log").read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # now waiting for work
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=15)
        assert worker.returncode == 0, (tmp_path / "idle.log").read_text()
        assert out.decode().strip() == "delivered=1 retrying=0 failed=0 held=0"
    finally:
        receiver.stop()

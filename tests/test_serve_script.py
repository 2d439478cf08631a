"""`bash scripts/serve.sh` as a newcomer runs it: migrates, seeds, prints where to start, serves,
and the QR codes encode the address it serves on (PORT, or the LAN address with HOST=0.0.0.0)."""

from __future__ import annotations

import io
import ipaddress
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, _free_port

pytestmark = pytest.mark.live

DEMO_PASSWORD = "xinyuan2026"
# Whatever the outer environment says, the script derives these itself.
DROPPED = ("PUBLIC_BASE_URL", "HOST", "PORT", "DATABASE_URL", "XINYUAN_ENV", "SECRET_KEY",
           "JWT_SECRET_KEY", "DEMO_PASSWORD", "FLASK_APP", "WORKERS", "EXTRAS")


class Served:
    def __init__(self, process: subprocess.Popen, log: Path, port: int):
        self.process, self.log, self.port = process, log, port

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def printed(self, label: str) -> str:
        match = re.search(rf"^\s*{re.escape(label)}:\s+(\S+)", self.output, re.MULTILINE)
        assert match, f"serve.sh did not print {label!r}:\n{self.output[-3000:]}"
        return match.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def serve(tmp_path):
    """Run scripts/serve.sh on a free port and a database of its own; wait for /readyz."""
    started: list[Served] = []

    def start(**env) -> Served:
        port = _free_port()
        log = tmp_path / f"serve-{port}.log"
        environment = {k: v for k, v in os.environ.items() if k not in DROPPED}
        environment.update(PORT=str(port), WORKERS="1", EXTRAS="test",
                           DATABASE_URL=f"sqlite:///{tmp_path / f'serve-{port}.sqlite3'}", **env)
        process = subprocess.Popen(["bash", "scripts/serve.sh"], cwd=ROOT, env=environment,
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        served = Served(process, log, port)
        started.append(served)
        # The first run after setup.cfg changed reinstalls the package: allow for it.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve.sh exited {process.returncode}:\n{served.output[-3000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return served
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve.sh did not become ready:\n{served.output[-3000:]}")

    yield start
    for served in started:
        served.stop()


def board_qr_text(port: int) -> str:
    import zxingcpp
    from PIL import Image

    base = f"http://127.0.0.1:{port}/api/v1"
    login = requests.post(f"{base}/auth/login", timeout=10,
                          json={"phone": "13800000001", "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    png = requests.get(f"{base}/boards/1/qrcode.png", timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    [code] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))
    return code.text


def test_serve_prints_where_to_start_and_the_qr_codes_encode_its_port(serve):
    served = serve()
    origin = f"http://127.0.0.1:{served.port}"

    board_url = served.printed("board page")
    assert re.fullmatch(rf"{re.escape(origin)}/b/[\w-]{{16,}}", board_url), board_url
    assert "远创樾府" in served.output
    page = requests.get(board_url, timeout=10)
    assert page.status_code == 200 and "远创樾府" in page.text
    assert served.printed("home page") == f"{origin}/"
    assert served.printed("organiser") == "13800000001"
    assert served.printed("volunteer") == "13800000011"
    assert served.printed("resident") == "13800000021"
    assert served.printed("password") == DEMO_PASSWORD

    assert board_qr_text(served.port) == board_url  # the QR says the port served, not 5000

    # Eight weeks of history: the notice page has last week's frozen champion and a closed month.
    notice = requests.get(f"{origin}/p/guanyuan", timeout=10)
    assert notice.status_code == 200
    assert notice.text.count("已定") >= 2 and "尚未结算" not in notice.text


def test_serve_on_all_interfaces_puts_the_lan_address_in_the_qr_codes(serve):
    served = serve(HOST="0.0.0.0", DEMO_WEEKS="0")  # addresses, not history: seed no weeks
    if "No LAN address found" in served.output:
        pytest.skip("this machine has no non-loopback IPv4 address")
    board_url = served.printed("board page")
    match = re.fullmatch(rf"http://([\d.]+):{served.port}/b/[\w-]+", board_url)
    assert match, board_url
    address = ipaddress.ip_address(match.group(1))
    assert address.version == 4 and not address.is_loopback and not address.is_unspecified
    assert f"http://{address}:{served.port}/" in served.output  # printed for the phone
    # Asked over loopback only (it listens on every interface): the QR carries the LAN address.
    assert board_qr_text(served.port) == board_url

"""Remake the README's phone screenshots (docs/screenshots/*.png) in Debian's chromium at 375×667.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--scale 2] [--full-page]

Starts the service (gunicorn) on a temporary SQLite database seeded with `flask seed demo`, adds a
little activity through the API (the resident posts wishes, the organiser approves two, a volunteer
claims and fulfils one, the resident confirms it), signs in as the resident, a volunteer and the
organiser through the login page and saves one PNG per entry of SHOTS. A page that answers anything
but 200, a login that does not go through or a request to another host stops it with exit code 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent

# (file name, who is signed in, path: {board} is the demo board 远创樾府's token)
SHOTS = [
    ("resident-board", "resident", "/b/{board}"),
    ("resident-wishes", "resident", "/me/wishes"),
    ("resident-wish", "resident", "/wishes/1"),
    ("volunteer-wishes", "volunteer", "/volunteer/wishes"),
    ("volunteer-points", "volunteer", "/me/points"),
    ("volunteer-store", "volunteer", "/store"),
    ("volunteer-card", "volunteer", "/me/card"),
    ("organiser-home", "organiser", "/"),
    ("organiser-review", "organiser", "/organiser/review"),
    ("organiser-counter", "organiser", "/organiser/counter"),
]
LOGINS = {"organiser": "13800000001", "volunteer": "13800000011", "resident": "13800000021"}
PASSWORD = "xinyuan2026"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WISHES = [  # (title, description, category) posted by the resident on the demo board
    ("帮忙修一下厨房水龙头", "水龙头一直滴水，家里只有我一个人，拧不动。", "repair"),
    ("想请人陪我去社区医院复诊", "周三上午九点的号，腿脚不方便，想有人陪着去。", "companionship"),
    ("帮忙代买一袋大米", "楼层高没有电梯，扛不动大米，五公斤的就行。", "errands"),
]


class Failed(Exception):
    pass


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flask(*args: str, env: dict) -> str:
    done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise Failed(f"flask {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def start_service(workdir: Path) -> tuple[subprocess.Popen, str, str]:
    """Migrate, seed and serve on a free port; the base URL and the demo board's token."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FLASK_APP": "wsgi", "XINYUAN_ENV": "development", "PUBLIC_BASE_URL": base,
           "DATABASE_URL": f"sqlite:///{workdir / 'screenshots.sqlite3'}",
           "DEMO_PASSWORD": PASSWORD, "LOGIN_RATE_LIMIT": "100 per minute",
           "RATELIMIT_STORAGE_URI": "memory://"}
    flask("db", "upgrade", env=env)
    seeded = flask("seed", "demo", env=env)
    match = re.search(r"board page:\s+\S+/b/(\S+)", seeded)
    if not match:
        raise Failed(f"`flask seed demo` printed no board page:\n{seeded}")
    log = (workdir / "gunicorn.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Failed(f"gunicorn exited:\n{(workdir / 'gunicorn.log').read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base, match.group(1)
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.terminate()
    raise Failed("gunicorn did not become ready in 30 s")


def api(base: str, method: str, path: str, token: str | None = None, **body) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.request(method, f"{base}/api/v1{path}", json=body or None, headers=headers,
                                timeout=15)
    if response.status_code >= 300:
        raise Failed(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def add_activity(base: str) -> None:
    """Wishes in every state the main pages show: pending review, open, and one confirmed."""
    token = {role: api(base, "POST", "/auth/login", phone=phone, password=PASSWORD)["access_token"]
             for role, phone in LOGINS.items()}
    wishes = [api(base, "POST", "/boards/1/wishes", token["resident"], title=title,
                  description=description, category=category)["id"]
              for title, description, category in WISHES]
    for wish in wishes[:2]:
        api(base, "POST", f"/wishes/{wish}/approve", token["organiser"], level=2)
    api(base, "POST", f"/wishes/{wishes[0]}/claim", token["volunteer"])
    api(base, "POST", f"/wishes/{wishes[0]}/fulfil", token["volunteer"], note="换了新的阀芯，不滴水了。")
    api(base, "POST", f"/wishes/{wishes[0]}/confirm", token["resident"], rating=5,
        comment="王师傅手艺好，人也热心，谢谢！")


def log_in(page, base: str, role: str) -> None:
    response = page.goto(f"{base}/login?next={quote('/')}")
    if response is None or response.status != 200:
        raise Failed(f"/login answered {response.status if response else 'nothing'}")
    page.fill('[name="phone"]', LOGINS[role])
    page.fill('[name="password"]', PASSWORD)
    page.press('[name="password"]', "Enter")
    try:
        page.wait_for_url(lambda url: urlsplit(url).path != "/login", timeout=10_000)
    except Exception:  # Playwright's TimeoutError: say what the page said instead
        raise Failed(f"signing in as the {role} ({LOGINS[role]}) did not leave /login: "
                     f"{page.inner_text('body')[:300]!r}") from None


def take(base: str, board: str, out: Path, scale: int, full_page: bool) -> list[str]:
    from playwright.sync_api import sync_playwright

    failures: list[str] = []
    offsite: list[str] = []
    origin = urlsplit(base)

    def route(route):
        parts = urlsplit(route.request.url)
        if parts.scheme in {"data", "blob"} or parts.netloc == origin.netloc:
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for role in dict.fromkeys(role for _name, role, _path in SHOTS):
            context = browser.new_context(
                viewport={"width": 375, "height": 667}, device_scale_factor=scale, is_mobile=True,
                has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai")
            context.route("**/*", route)
            page = context.new_page()
            log_in(page, base, role)
            for name, who, path in SHOTS:
                if who != role:
                    continue
                url = base + path.format(board=board)
                response = page.goto(url, wait_until="networkidle")
                if response is None or response.status != 200:
                    failures.append(f"{path} as the {role}: {response.status if response else 'no answer'}")
                    continue
                page.screenshot(path=str(out / f"{name}.png"), full_page=full_page)
                print(f"  {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}/{name}.png  "
                      f"{path} ({role})")
            context.close()
        browser.close()
    failures += [f"request to another host: {url}" for url in offsite]
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--scale", type=int, default=2, help="device pixel ratio (default 2)")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not one screen")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="xinyuan-screenshots-") as tmp:
        try:
            process, base, board = start_service(Path(tmp))
        except Failed as error:
            print(error, file=sys.stderr)
            return 1
        try:
            add_activity(base)
            failures = take(base, board, args.out.resolve(), args.scale, args.full_page)
        except Failed as error:
            failures = [str(error)]
        finally:
            process.terminate()
            process.wait(timeout=15)
    if failures:
        print("Screenshots FAILED:\n" + "\n".join(f"- {f}" for f in failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

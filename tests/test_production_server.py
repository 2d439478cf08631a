"""The production server (issue 12, must-have 6): gunicorn.conf.py, its JSON refusals and JSON
access log, the request id, and the client's address behind a trusted proxy.

The live tests start gunicorn from the project folder exactly as `gunicorn wsgi:app` does, so
they read the project's gunicorn.conf.py (worker class, request limits, access log format).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from datetime import datetime
from http import HTTPStatus
from urllib.parse import quote

import pytest
import requests
from flask import current_app, request

from tests.conftest import PASSWORD
from tests.helpers import assert_error

LOGIN = "/api/v1/auth/login"
ENVELOPE_KEYS = {"code", "status", "error", "message", "errors"}
TIMEOUT = 30


# --- helpers ------------------------------------------------------------------------------

def assert_json_refusal(response, status: int, slug: str) -> dict:
    """gunicorn refused it, in our envelope: never its HTML page."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"] == "application/json", response.headers
    assert "<html" not in response.text.lower()
    body = response.json()
    assert set(body) <= ENVELOPE_KEYS, body
    assert body["code"] == status and body["status"] == HTTPStatus(status).phrase, body
    assert body["error"] == slug, body
    assert body["message"].strip(), body
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    return body


def raw_exchange(server, data: bytes) -> tuple[int, dict, bytes]:
    """Send bytes no HTTP library would send; the status, headers and body of the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    return int(status_line.split()[1]), headers, body


def access_lines(server, request_id: str, wait: float = 5.0) -> list[dict]:
    """The server's JSON access-log lines naming `request_id` (waiting for the log to flush)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for line in server.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)  # every access line must be valid JSON
                if entry.get("request_id") == request_id:
                    found.append(entry)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def assert_server_healthy(server) -> None:
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "exited with code" not in log, log[-4000:]  # no worker died on a refusal


# --- through a live gunicorn --------------------------------------------------------------

live = pytest.mark.live


@live
def test_a_long_legal_query_string_is_served(live_server):
    server = live_server(workers=1)
    # 6 000 bytes of query: many filters or a long export URL, well past gunicorn's default
    # 4094-byte request line and within the 8190 gunicorn.conf.py allows.
    query = "note=" + quote("心愿" * 333) + "&" + "&".join(f"f{n}=v{n:04d}" for n in range(240))
    query = query[:6000]
    assert len(query) == 6000
    response = requests.get(f"{server.url}/readyz?{query}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    assert response.json()["database"] == "ok"
    (entry,) = access_lines(server, response.headers["X-Request-ID"])
    assert entry["query"] == query and entry["status"] == 200
    assert_server_healthy(server)


@live
@pytest.mark.parametrize("threads", [1, 2], ids=["sync", "gthread"])
def test_an_over_long_request_line_is_refused_in_json(live_server, threads):
    server = live_server(workers=1, GUNICORN_THREADS=threads)
    response = requests.get(f"{server.url}/api/v1/wishes?filler={'x' * 20000}", timeout=TIMEOUT)
    body = assert_json_refusal(response, 414, "uri_too_long")
    assert "8190" in body["message"]  # it says what the limit is
    # The refusal is logged like any request, under the id the client was given.
    (entry,) = access_lines(server, response.headers["X-Request-ID"])
    assert entry["status"] == 414 and entry["bytes"] == len(response.content)
    assert entry["remote_addr"] == "127.0.0.1"
    # The worker lives on and serves the next request.
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
    assert_server_healthy(server)


@live
def test_oversized_and_too_many_headers_are_refused_in_json(live_server):
    server = live_server(workers=1)
    response = requests.get(f"{server.url}/healthz", headers={"X-Filler": "y" * 9000},
                            timeout=TIMEOUT)
    assert_json_refusal(response, 431, "headers_too_large")
    many = {f"X-Filler-{n}": "y" for n in range(120)}  # gunicorn allows 100 header fields
    response = requests.get(f"{server.url}/healthz", headers=many, timeout=TIMEOUT)
    assert_json_refusal(response, 431, "headers_too_large")
    # A cookie of 7 000 bytes is long but legal (limit_request_field_size 8190).
    response = requests.get(f"{server.url}/healthz", headers={"Cookie": "k=" + "c" * 7000},
                            timeout=TIMEOUT)
    assert response.status_code == 200
    assert_server_healthy(server)


@live
def test_malformed_requests_are_refused_in_json(live_server):
    server = live_server(workers=1)
    for data in (b"GARBAGE\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
                 b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"):
        status, headers, body = raw_exchange(server, data)
        assert status == 400, (data, body)
        assert headers["content-type"] == "application/json", (data, headers)
        envelope = json.loads(body)
        assert envelope["error"] == "bad_request" and envelope["code"] == 400, envelope
        assert re.search(r"[\u4e00-\u9fff]", envelope["message"])  # Chinese by default

    # When gunicorn read the headers before refusing, the message is in the language asked for.
    status, headers, body = raw_exchange(server, (
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nAccept-Language: en\r\nX-Request-ID: two-lengths\r\n"
        b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"))
    assert status == 400 and json.loads(body)["message"].isascii(), body
    assert headers["x-request-id"] == "two-lengths"
    assert access_lines(server, "two-lengths")[0]["method"] == "POST"
    assert_server_healthy(server)


@live
def test_an_access_log_line_is_json_with_the_request_id(live_server):
    server = live_server(workers=1)
    agent = 'probe "quoted" \\ back\\slash 心愿'
    before = datetime.now().astimezone()
    response = requests.get(f"{server.url}/healthz?a=1&b=%22", headers={"User-Agent": agent.encode()},
                            timeout=TIMEOUT)
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    (entry,) = access_lines(server, request_id)
    assert set(entry) == {"time", "remote_addr", "method", "path", "query", "status", "bytes",
                          "duration_ms", "user_agent", "request_id"}
    assert abs((datetime.fromisoformat(entry["time"]) - before).total_seconds()) < 30
    assert (entry["remote_addr"], entry["method"], entry["path"], entry["query"]) == (
        "127.0.0.1", "GET", "/healthz", "a=1&b=%22")
    assert entry["status"] == 200 and entry["bytes"] == len(response.content)
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    # Headers travel as latin-1; the line carries exactly what gunicorn received.
    assert entry["user_agent"] == agent.encode().decode("latin-1")
    assert_server_healthy(server)


@live
def test_an_incoming_request_id_is_kept_and_a_malformed_one_replaced(live_server):
    server = live_server(workers=1)
    kept = requests.get(f"{server.url}/healthz", headers={"X-Request-ID": "nginx-4f2a.9_Z"},
                        timeout=TIMEOUT)
    assert kept.headers["X-Request-ID"] == "nginx-4f2a.9_Z"
    assert access_lines(server, "nginx-4f2a.9_Z")
    forged = 'x", "status": 200, "forged": "'
    replaced = requests.get(f"{server.url}/healthz", headers={"X-Request-ID": forged},
                            timeout=TIMEOUT)
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])
    assert access_lines(server, replaced.headers["X-Request-ID"])
    assert "forged" not in server.log.read_text(errors="replace")


@live
def test_behind_one_trusted_proxy_the_access_log_names_the_client(live_server):
    server = live_server(workers=1, TRUSTED_PROXIES=1)
    response = requests.get(f"{server.url}/healthz", timeout=TIMEOUT, headers={
        "X-Forwarded-For": "198.51.100.1, 203.0.113.7", "X-Request-ID": "via-nginx"})
    assert response.status_code == 200
    # The proxy appended the address it saw (203.0.113.7); what the client wrote before it
    # (198.51.100.1) is not believed.
    assert access_lines(server, "via-nginx")[0]["remote_addr"] == "203.0.113.7"

    untrusting = live_server(workers=1)  # TRUSTED_PROXIES unset: 0
    requests.get(f"{untrusting.url}/healthz", timeout=TIMEOUT, headers={
        "X-Forwarded-For": "203.0.113.7", "X-Request-ID": "spoofed"})
    assert access_lines(untrusting, "spoofed")[0]["remote_addr"] == "127.0.0.1"


# --- in process: the request id and ProxyFix ----------------------------------------------

@pytest.mark.parametrize("incoming", [
    "", " ", "a" * 65, "has space", "semi;colon", "caf\u00e9", "<script>", "a/b", "a:b",
])
def test_a_malformed_request_id_is_replaced(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), incoming


@pytest.mark.parametrize("incoming", ["a", "a" * 64, "A-z_0.9", "01HZX3K8Q5"])
def test_a_sane_request_id_is_kept(client, incoming):
    assert client.get("/healthz", headers={"X-Request-ID": incoming}).headers[
        "X-Request-ID"] == incoming


def test_every_response_has_its_own_request_id(client, vol):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5
    # Refusals carry one too: a 404, a 401, a 422.
    for response in (client.get("/api/v1/nowhere"), client.get("/api/v1/me"),
                     client.get("/api/v1/wishes?per_page=0", headers=vol)):
        assert response.status_code in {401, 404, 422}
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


def test_a_rate_limited_response_keeps_the_request_id(make_app):
    client = make_app(LOGIN_RATE_LIMIT="1 per minute").test_client()
    body = {"phone": "13800138000", "password": PASSWORD}
    client.post(LOGIN, json=body)
    refused = client.post(LOGIN, json=body, headers={"X-Request-ID": "limited-1"})
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["X-Request-ID"] == "limited-1"


def probing_app(make_app, **settings):
    """An app with one extra route that logs a line and answers the address it saw."""
    app = make_app(**settings)

    @app.get("/_probe")
    def probe():
        current_app.logger.warning("probe from %s", request.remote_addr)
        return {"remote_addr": request.remote_addr, "scheme": request.scheme,
                "host": request.host}

    return app


def test_app_log_records_carry_the_request_id(make_app, caplog):
    client = probing_app(make_app).test_client()
    client.get("/_probe", headers={"X-Request-ID": "trace-77"})
    response = client.get("/_probe")
    records = [r for r in caplog.records if r.getMessage().startswith("probe from")]
    assert [r.request_id for r in records] == ["trace-77", response.headers["X-Request-ID"]]
    # Outside a request the attribute is there too, so a formatter may always use it.
    outside = logging.getLogger("app").makeRecord("app", logging.INFO, __file__, 1, "outside",
                                                  (), None)
    assert outside.request_id == "-"


def test_without_trusted_proxies_forwarded_headers_are_ignored(make_app):
    client = probing_app(make_app).test_client()
    seen = client.get("/_probe", headers={"X-Forwarded-For": "203.0.113.7",
                                          "X-Forwarded-Proto": "https",
                                          "X-Forwarded-Host": "evil.example"}).json
    assert seen == {"remote_addr": "127.0.0.1", "scheme": "http", "host": "localhost"}


def test_behind_one_trusted_proxy_the_client_is_the_last_forwarded_address(make_app):
    client = probing_app(make_app, TRUSTED_PROXIES=1).test_client()
    seen = client.get("/_probe", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7",
                                          "X-Forwarded-Proto": "https",
                                          "X-Forwarded-Host": "xinyuan.example"}).json
    assert seen == {"remote_addr": "203.0.113.7", "scheme": "https", "host": "xinyuan.example"}
    # A request that did not come through the proxy (no header) keeps the peer address.
    assert client.get("/_probe").json["remote_addr"] == "127.0.0.1"


def test_behind_two_trusted_proxies_the_second_address_from_the_right_is_the_client(make_app):
    client = probing_app(make_app, TRUSTED_PROXIES=2).test_client()
    seen = client.get("/_probe", headers={
        "X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.0.0.2"}).json
    assert seen["remote_addr"] == "203.0.113.7"


def _login_statuses(client, addresses, proxy="127.0.0.1"):
    body = {"phone": "13800138000", "password": "wrong password"}
    return [client.post(LOGIN, json=body, headers={"X-Forwarded-For": address},
                        environ_base={"REMOTE_ADDR": proxy}).status_code
            for address in addresses]


def test_behind_a_trusted_proxy_the_login_limit_counts_per_real_client(make_app):
    client = make_app(TRUSTED_PROXIES=1, LOGIN_RATE_LIMIT="3 per minute").test_client()
    # Every request arrives from the proxy's address; the limit still tells clients apart.
    assert _login_statuses(client, ["203.0.113.7"] * 4) == [401, 401, 401, 429]
    assert _login_statuses(client, ["203.0.113.8"] * 3) == [401, 401, 401]
    assert _login_statuses(client, ["203.0.113.7"]) == [429]
    # A client cannot escape its budget by writing another address before the proxy's.
    assert _login_statuses(client, ["1.2.3.4, 203.0.113.7"]) == [429]


def test_without_trusted_proxies_a_forged_address_does_not_escape_the_login_limit(make_app):
    client = make_app(LOGIN_RATE_LIMIT="3 per minute").test_client()
    forged = [f"203.0.113.{n}" for n in range(1, 6)]
    assert _login_statuses(client, forged, proxy="10.9.8.7") == [401, 401, 401, 429, 429]

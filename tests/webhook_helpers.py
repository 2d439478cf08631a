"""Shared by the webhook tests (issue 11): a scripted HTTP receiver on 127.0.0.1, a wish's
event data with personal data in it, and a webhook row made directly. Not a test module."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from app.db import write_transaction
from app.extensions import db
from app.notifications.models import Webhook

PHONE = "13812345678"
WISH = {"title": f"楼道灯坏了 请联系{PHONE}", "board": "远创樾府3栋", "category": "维修",
        "level": 2, "claimer": "王建国",
        # what a careless caller might put in: it must never leave in a payload
        "description": "家里只有两位老人", "phone": PHONE, "address": "远创樾府3栋502室",
        "holder_id": 7}
HEADLINE = "【心愿】新心愿 · 远创樾府3栋 · 维修：楼道灯坏了 请联系138****5678"


SECRET = "SECb7e1d2c3a4f5e6d7c8b9a0f1e2d3c4b5a6"
WECOM = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2sifa5aaa"
DINGTALK = "https://oapi.dingtalk.com/robot/send?access_token=4f2c0b8e9d7a6c5b4a3f2e1d0c9b8a7f"


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST and answers from a script."""

    OK = (200, '{"errcode":0,"errmsg":"ok"}')

    def __init__(self, delay: float = 0.0):
        self.requests: list[dict] = []
        self.script: list[tuple] = []
        self.delay = delay
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # headers and body go in two writes; without this, Nagle and delayed ACKs make
            # every answer wait ~40 ms
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                with receiver.lock:
                    receiver.requests.append({
                        "path": parts.path, "query": parse_qs(parts.query),
                        "raw_query": parts.query, "headers": dict(self.headers.items()),
                        "body": body})
                    answer = receiver.script.pop(0) if receiver.script else receiver.OK
                status, text, *rest = answer
                extra = rest[0] if rest else {}
                pause = extra.pop("delay", receiver.delay) if isinstance(extra, dict) else 0
                if pause:
                    time.sleep(pause)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    data = text.encode()
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, *answers: tuple) -> None:
        self.script.extend(answers)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_hook(app, community_id: int, url: str, fmt: str = "json", *, secret=None,
             events=("wish.posted", "wish.escalated", "report.filed", "redemption.created"),
             **fields) -> int:
    with app.app_context():
        with write_transaction(db.session) as session:
            hook = Webhook(community_id=community_id, url=url, format=fmt, events=list(events),
                           secret=secret, name=fmt, **fields)
            session.add(hook)
            session.flush()
            hook_id = hook.id
        db.session.remove()
    return hook_id

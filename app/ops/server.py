"""gunicorn's side of the production server: JSON refusals and JSON access-log lines.

gunicorn parses the request line and headers itself and refuses what breaks its limits (a
request line over `limit_request_line`: 414; a header over `limit_request_field_size` or too
many headers: 431; a malformed request: 400) before Flask ever sees it, answering with its own
HTML page. Our workers answer those in the API's one error envelope instead (app/errors.py),
in the language the request asked for when its headers could be read, and log them like any
other request. `gunicorn.conf.py` names the worker class and the logger class.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from http import HTTPStatus
from types import SimpleNamespace

from gunicorn import util
from gunicorn.glogging import Logger, SafeAtoms
from gunicorn.http import errors as http_errors
from gunicorn.http.wsgi import default_environ
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from app.errors import MESSAGES, envelope, message_for, register_messages
from app.i18n import N_
from app.ops.request_id import HEADER, request_id_from

register_messages({
    "uri_too_long": N_("请求地址过长（上限 {limit} 字节），请减少筛选条件后重试。"),
    "headers_too_large": N_("请求头过大，请清除本站的 Cookie 后重试。"),
    "not_implemented": N_("服务器不支持该请求的传输编码。"),
})

# What gunicorn refuses -> (status, slug); the first matching class wins (order matters where
# one class derives from another). Anything else reaching handle_error is our fault: a 500.
REFUSALS: tuple[tuple[type[BaseException], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "uri_too_long"),
    (http_errors.LimitRequestHeaders, 431, "headers_too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "not_implemented"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden"),
    (http_errors.ExpectationFailed, 417, "bad_request"),
    (http_errors.InvalidRequestLine, 400, "bad_request"),
    (http_errors.InvalidRequestMethod, 400, "bad_request"),
    (http_errors.InvalidHTTPVersion, 400, "bad_request"),
    (http_errors.InvalidHeaderName, 400, "bad_request"),
    (http_errors.InvalidHeader, 400, "bad_request"),
    (http_errors.ObsoleteFolding, 400, "bad_request"),
    (http_errors.InvalidProxyLine, 400, "bad_request"),
    (http_errors.InvalidProxyHeader, 400, "bad_request"),
    (http_errors.InvalidSchemeHeaders, 400, "bad_request"),
    (http_errors.InvalidChunkSize, 400, "bad_request"),
    (http_errors.ChunkMissingTerminator, 400, "bad_request"),
    (http_errors.InvalidChunkExtension, 400, "bad_request"),
    (http_errors.InvalidH2CPreface, 400, "bad_request"),
)
# A response header the application built badly is a 500, though it derives from InvalidHeader.
APPLICATION_FAULTS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)


def refusal_for(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, APPLICATION_FAULTS):
        return None
    for kind, status, slug in REFUSALS:
        if isinstance(exc, kind):
            return status, slug
    return None


class JSONRefusals:
    """Worker mixin: answer the requests gunicorn refuses with our JSON error envelope."""

    def handle_error(self, req, client, addr, exc):
        try:
            self.refuse(req, client, addr, exc)
        except Exception:  # never let an error page take the worker down: gunicorn's own
            self.log.exception("Could not refuse in JSON; falling back to gunicorn's page.")
            super().handle_error(req, client, addr, exc)

    def refuse(self, req, client, addr, exc) -> None:
        addr = addr or ("", -1)  # a unix socket has no peer address
        if req is None and hasattr(getattr(exc, "req", None), "headers"):
            req = exc.req  # a bad header: the request line and the headers before it were read
        refusal = refusal_for(exc)
        if refusal is None:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
            status, slug, params = 500, "internal_error", {}
        else:
            status, slug = refusal
            params = {"limit": self.cfg.limit_request_line} if slug == "uri_too_long" else {}
            self.log.warning("Invalid request from ip=%s: %s", addr[0], exc)
        headers = dict(req.headers) if req is not None else {}
        request_id = request_id_from(headers.get(HEADER.upper()))
        body = self.refusal_body(status, slug, params, headers)
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                "Connection: close\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"{HEADER}: {request_id}\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                "Cache-Control: no-store\r\n\r\n").encode("latin-1")
        self.log_refusal(req, client, addr, status, request_id, len(body))
        try:
            util.write_nonblock(client, head + body)
        except OSError:
            self.log.debug("Failed to send error message.")

    def refusal_body(self, status: int, slug: str, params: dict, headers: dict) -> bytes:
        """The envelope as the app writes it, in the language the request's headers ask for."""
        language = {"Accept-Language": headers["ACCEPT-LANGUAGE"]} \
            if "ACCEPT-LANGUAGE" in headers else {}
        if "COOKIE" in headers:
            language["Cookie"] = headers["COOKIE"]
        try:
            with self.wsgi.test_request_context(headers=language):
                response, _status = envelope(status, slug, message_for(slug, **params))
                return response.get_data()
        except Exception:  # no Flask app to ask (or it failed): the Chinese text, untranslated
            self.log.debug("Writing the refusal without the application.", exc_info=True)
            text = MESSAGES.get(slug, MESSAGES["bad_request"])
            return json.dumps({"code": status, "status": HTTPStatus(status).phrase,
                               "error": slug, "message": text.format(**params)},
                              ensure_ascii=False).encode()

    def log_refusal(self, req, client, addr, status, request_id, length) -> None:
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["PATH_INFO"] = req.path
        else:  # the request line itself was refused: nothing of it is known
            environ = {"REQUEST_METHOD": "-", "RAW_URI": "-", "SERVER_PROTOCOL": "-",
                       "PATH_INFO": "-", "QUERY_STRING": ""}
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = addr[0], str(addr[1])
        response = SimpleNamespace(status=str(status), sent=length,
                                   headers=[(HEADER, request_id)])
        self.log.access(response, req if req is not None else [], environ, timedelta(0))


class JSONRefusalSyncWorker(JSONRefusals, SyncWorker):
    """gunicorn's sync worker, refusing in JSON."""


class JSONRefusalThreadWorker(JSONRefusals, ThreadWorker):
    """gunicorn's gthread worker, refusing in JSON."""


class JSONAtoms(SafeAtoms):
    """Atoms escaped for a JSON string (gunicorn's own escape only adds a backslash before a
    double quote, so a user agent ending in a backslash would break the line)."""

    def __init__(self, atoms):
        dict.__init__(self, atoms)  # escaped when read: a line uses a dozen of ~60 atoms

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if isinstance(value, str):
            return json.dumps(value)[1:-1]
        return value


class JSONAccessLogger(Logger):
    """gunicorn's logger with ISO 8601 times, atoms safe inside JSON strings, and the
    duration in milliseconds with a fraction (`%(duration_ms)s`)."""

    atoms_wrapper_class = JSONAtoms

    def now(self):
        return datetime.now().astimezone().isoformat(timespec="milliseconds")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["duration_ms"] = round(request_time / timedelta(milliseconds=1), 2)
        atoms["B"] = atoms["B"] or 0  # bytes: a number even when nothing was sent
        return atoms

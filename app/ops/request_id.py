"""A request id on every request: on `g`, on the response, in the access log and the app's logs.

A proxy or a client that already named the request (X-Request-ID) keeps its name, so one id
follows the request through nginx, gunicorn's access log and our own log lines; a name that is
not a short token (≤ 64 of [A-Za-z0-9._-]) is replaced, since it would go into logs verbatim
and could forge or break their lines.
"""

from __future__ import annotations

import logging
import re
import uuid

from flask import Flask, g, has_request_context, request

HEADER = "X-Request-ID"
SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(incoming: str | None) -> str:
    """The incoming id when it is sane, else a new one."""
    if incoming is not None and SANE_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def current_request_id() -> str:
    """This request's id (named on first use), or "-" outside a request (CLI, start-up)."""
    if not has_request_context():
        return "-"
    if "request_id" not in g:
        g.request_id = request_id_from(request.headers.get(HEADER))
    return g.request_id


def _install_log_record_factory() -> None:
    # Every record gets `request_id`, including those of child loggers (app.store.service …),
    # which a filter on the app's logger would miss; a formatter may then use %(request_id)s.
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return  # one factory for every app built in this process

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    factory.adds_request_id = True
    logging.setLogRecordFactory(factory)


# At import, before any app configures logging, so no record is ever without the attribute.
_install_log_record_factory()


def init_request_id(app: Flask) -> None:
    # Named on first use as well, since a before_request hook registered earlier (the rate
    # limiter's) may refuse the request before this one runs.
    @app.before_request
    def name_the_request():
        current_request_id()  # returns nothing: a value here would answer the request

    @app.after_request
    def tell_the_request_id(response):
        # Also read back by gunicorn's access log ({x-request-id}o in gunicorn.conf.py).
        response.headers[HEADER] = current_request_id()
        return response

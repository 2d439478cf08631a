"""gunicorn's settings for Xinyuan, read from the working directory: `gunicorn wsgi:app` (and
`scripts/serve.sh`) in the project folder pick them up; command-line flags override them.

A sync worker is killed when it has not reported to the arbiter for `timeout` seconds, and it
reports only between requests: a streamed export is one long request, so the default 30 s
would cut a big ledger export short (the client sees a broken chunked stream, never a short
file). Five minutes is several times what 1 000 000 ledger rows take here (see README,
"Benchmarks of the numbers"); set GUNICORN_TIMEOUT for more. (The gthread worker, our
default, reports from its main loop while a thread streams, so there `timeout` only catches
a stuck process.)
"""

import multiprocessing
import os

timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))

# --- workers -------------------------------------------------------------------------------
# Measured on this 2-core machine (wrk -t2 -c32 -d8s on GET /api/v1/me/points, PostgreSQL on
# the same host, while other work ran; README "Production" has the figures): 2 gthread
# workers × 2 threads served more than 2 sync workers in 13 of 14 same-round pairs (with
# connection reuse and with Connection: close), e.g. 461 against 311 req/s on the quietest
# machine; their p99 was lower under heavy background load but wider on a quiet machine (305-
# 481 ms against 129-231 ms in 3 of 4 pairs): set GUNICORN_THREADS=1 for the tightest tail.
# 3, 4 or 5 sync workers were never reliably better than 2 (quiet: 2 sync 311-381 req/s, 3
# sync 224-239). A request here is mostly CPU (JWT, SQLAlchemy, JSON), so one process per
# core, the second thread running while the first waits for PostgreSQL; the "2 × cores + 1"
# rule is for requests that mostly wait. gthread also keeps the worker's heartbeat going while
# a thread streams an export.
cores = multiprocessing.cpu_count()
workers = int(os.environ.get("WEB_CONCURRENCY") or os.environ.get("GUNICORN_WORKERS") or cores)
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Our worker classes answer what gunicorn refuses by itself in JSON (app/ops/server.py);
# GUNICORN_THREADS=1 gives the sync worker (one connection at a time, no keep-alive). Note that
# `-k sync` on the command line alone still runs gthread (gunicorn swaps a sync worker for its
# gthread one when threads > 1): give `--threads 1` with it.
worker_class = ("app.ops.server.JSONRefusalThreadWorker" if threads > 1
                else "app.ops.server.JSONRefusalSyncWorker")

# --- database connections ------------------------------------------------------------------
# Each worker process has its own SQLAlchemy pool: DATABASE_POOL_SIZE kept open plus
# DATABASE_MAX_OVERFLOW opened under load (app/config.py; 2 + 2 by default). A request uses
# one connection: a sync worker needs 1 at a time, a gthread worker one per thread (2 here),
# so 2 + 2 leaves room for a thread count of 4. The sum over every instance must stay below
# PostgreSQL's max_connections (100 here: `psql -c 'show max_connections'`, 3 of them
# reserved for superusers), with room left for migrations, `flask` commands, psql, backups:
#     instances × workers × (pool_size + max_overflow)  <  max_connections − reserved − spare
#     2 instances × 2 workers × (2 + 2) = 16 of 97 here.
# At 8 cores (8 workers) 2 instances would hold up to 128: set DATABASE_MAX_OVERFLOW=0 (2 per
# worker, one per thread: 32), or raise max_connections, or put PgBouncer in front.

# --- request limits ------------------------------------------------------------------------
# gunicorn refuses a request line over 4094 bytes by default; a wish list with many filters
# or an export URL may be longer. 8190 is gunicorn's maximum short of "unlimited" (0), and
# what nginx's default `large_client_header_buffers 4 8k` lets through anyway; a bounded line
# keeps a worker from buffering megabytes of URL. One header may be as long (a big Cookie).
limit_request_line = 8190
limit_request_field_size = 8190

# --- logs ----------------------------------------------------------------------------------
# One JSON object per request on stdout (the logger escapes every value for JSON and writes
# ISO 8601 times); the request id is the response's X-Request-ID (app/ops/request_id.py), so
# a line can be matched with the app's log records and the proxy's log.
logger_class = "app.ops.server.JSONAccessLogger"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = (
    '{"time": "%(t)s", "remote_addr": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"query": "%(q)s", "status": %(s)s, "bytes": %(B)s, "duration_ms": %(duration_ms)s, '
    '"user_agent": "%(a)s", "request_id": "%({x-request-id}o)s"}'
)

# --- behind a reverse proxy ----------------------------------------------------------------
# The app believes X-Forwarded-For/-Proto/-Host from TRUSTED_PROXIES proxies (ProxyFix, in
# app/__init__.py); gunicorn believes X-Forwarded-Proto only from the addresses listed here.
# Both trust nobody by default, so a client cannot claim another address or https.
if int(os.environ.get("TRUSTED_PROXIES") or 0) > 0:
    forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
else:
    forwarded_allow_ips = ""

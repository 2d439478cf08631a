"""gunicorn's settings for Xinyuan, read from the working directory: `gunicorn wsgi:app` (and
`scripts/serve.sh`) in the project folder pick them up; command-line flags override them.

A sync worker is killed when it has not reported to the arbiter for `timeout` seconds, and it
reports only between requests: a streamed export is one long request, so the default 30 s
would cut a big ledger export short (the client sees a broken chunked stream, never a short
file). Five minutes is several times what 1 000 000 ledger rows take here (see README,
"Benchmarks of the numbers"); set GUNICORN_TIMEOUT for more.
"""

import os

timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))

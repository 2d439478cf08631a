"""Security headers on every response Flask answers: pages, API, static files and errors.

Pages get a strict Content-Security-Policy: everything from our own origin, no inline script or
style (so no `'unsafe-inline'`), no plugins, no framing, forms post only to us. Every other
response (JSON, images, scripts) gets a policy that allows nothing at all, so a JSON body or an
SVG opened directly in a browser can never run or load anything.
"""

from __future__ import annotations

from flask import Flask, Response

PAGE_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",  # Swagger UI's stylesheet draws its icons as data: SVGs
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
])
RESOURCE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Set the headers a view has not set itself (a view may narrow or relax its own CSP)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    policy = PAGE_POLICY if response.mimetype == "text/html" else RESOURCE_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    return response


def register_security_headers(app: Flask) -> None:
    # after_request also runs for responses made by error handlers (404, 405, 413, 429, 500),
    # for redirects and for static files: everything Flask answers passes through it.
    app.after_request(add_security_headers)

"""CSRF protection for HTML forms, independent of any login: a double-submit token plus a same-origin check.

    token = csrf.token(request)                   # the browser's token (a new one if it has none)
    response = csrf.remember(response, request, token)   # Set-Cookie when the browser lacks it
    problem = csrf.check(request, form)           # None when the POST is ours, else a sentence why not

The token is a random value kept in a cookie (`HttpOnly; SameSite=Lax`, `Secure` over HTTPS) and
repeated in each form's hidden field; a POST passes when both are present and equal (compared in
constant time). Another site can make a browser send the cookie, but cannot read it to fill in the
field. Before that, the request's own words about where it comes from are checked when the browser
sends them: `Sec-Fetch-Site` must say same-origin, and `Origin` / `Referer` must name this host.
Our pages send `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` with a form
POST: that says nothing, so it is treated as absent and the token decides.

The login form (`login.py`) uses it as it is: the token is not tied to the session.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "llmtool_csrf"
FIELD = "csrf_token"
_TOKEN_BYTES = 32
_MAX_LENGTH = 128
R = TypeVar("R", bound=Response)
EXPIRED = ("this form's security token is missing or out of date (cookies may be off, or the page was "
           "open for a long time): go back, reload the page and send it again")
FOREIGN = "this form was sent from another site; llmtool only accepts its own forms"


def token(request: Request) -> str:
    """The browser's token from its cookie, or a new random one (set it with `remember`)."""
    current = request.cookies.get(COOKIE, "")
    if _well_formed(current):
        return current
    cached: str | None = getattr(request.state, "csrf_token", None)
    if cached is None:
        cached = request.state.csrf_token = secrets.token_urlsafe(_TOKEN_BYTES)
    return cached


def remember(response: R, request: Request, value: str, path: str = "/") -> R:
    """Set the cookie when the browser does not hold `value` yet."""
    if request.cookies.get(COOKIE) != value:
        response.set_cookie(COOKIE, value, path=path, httponly=True, samesite="lax", secure=over_https(request))
    return response


def check(request: Request, form: Mapping[str, object]) -> str | None:
    """None when the POST comes from one of our forms; else the sentence for a 403 page."""
    if not same_origin(request):
        return FOREIGN
    cookie = request.cookies.get(COOKIE, "")
    field = form.get(FIELD)
    if not isinstance(field, str) or not _well_formed(cookie) or not _well_formed(field):
        return EXPIRED
    if not hmac.compare_digest(cookie.encode(), field.encode()):
        return EXPIRED
    return None


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site; True when it says nothing."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    # A reverse proxy may pass the public host on in X-Forwarded-Host (a form cannot set that header).
    hosts = {request.headers.get("host", "").lower(),
             request.headers.get("x-forwarded-host", "").split(",")[0].strip().lower()} - {""}
    for header in ("origin", "referer"):
        value = request.headers.get(header)
        if value is None or value.strip() in ("", "null"):
            continue
        if urlsplit(value.strip()).netloc.lower() not in hosts:
            return False
    return True


def over_https(request: Request) -> bool:
    """The browser reached us over HTTPS, directly or through a proxy that says so (X-Forwarded-Proto)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _well_formed(value: str) -> bool:
    return 16 <= len(value) <= _MAX_LENGTH and value.isascii() and value.isprintable()

"""The login of `/api`: an API token, HTTP Basic with the same users (and check) as the login form,
or the session.

    user = await api_user(request)      # None without logins; else the login, or a 401 / 429 problem

Scripts send `Authorization: Bearer llmt_…` (a token its user made at `/api/tokens`) or
`Authorization: Basic …` (the 401 carries `WWW-Authenticate: Basic`). Basic is throttled like the
login form (429 `too-many-logins` with Retry-After; the right password during a lock-out is refused
too), and a verified user name and password is remembered for a minute, so a script's requests are
not each a slow hash check. A browser logged in at `/login` may use its session cookie instead
(lite.js's EventSource does), for anything that changes state only from our own origin; so may a
request a trusted reverse proxy vouches for. The password never leaves this function.
`request.state.login_method` says which it was: "token", "basic" or "session".
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from llmtool.web import csrf
from llmtool.web.context import AppContext, app_context
from llmtool.web.login import client_address, session_user
from llmtool.web.problems import PROBLEM_TYPES, Problem, ProblemType

REALM = 'Basic realm="llmtool", charset="UTF-8"'
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The login throttle's refusal (its slug is part of the API, like problems.py's).
PROBLEM_TYPES.setdefault("too-many-logins", ProblemType(429, "Too many failed logins"))


def credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic …` header, or None when there is none or it is malformed."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def api_user(request: Request) -> str | None:
    """The dependency every `/api` route has: the login name, None when no logins are configured.

    A bearer token, HTTP Basic (scripts), or the browser's login session (lite.js's EventSource); a
    session alone changes nothing unless the request shows it comes from our own pages (a cross-site
    form cannot)."""
    context: AppContext = app_context(request)
    accounts = context.accounts
    if accounts is None:
        return None
    header = request.headers.get("authorization")
    token = bearer(header)
    if token is not None:
        user = await accounts.tokens.user_of(context.service.store, token, accounts.stamp)
        if user is None:
            raise Problem("unauthorized", "the API token is unknown or revoked, or was made before its user's "
                          "password changed: make a new one at POST /api/tokens",
                          headers={"WWW-Authenticate": 'Bearer realm="llmtool"'})
        return _logged_in(request, user, "token")
    given = credentials(header)
    if given is None:
        user = await session_user(request, context)
        if user is not None and (request.method in SAFE_METHODS or _from_our_pages(request)):
            return _logged_in(request, user, "session")
        raise Problem("unauthorized", "log in with HTTP Basic (the user name and password of the llmtool login) "
                      "or an API token (Authorization: Bearer …)", headers={"WWW-Authenticate": REALM})
    name, password = given
    outcome = None
    if name and password and len(name) <= 200:
        outcome = await accounts.authenticate(name, password, client_address(request, accounts))
    if outcome is not None and outcome.refusal is not None:
        raise Problem("too-many-logins", outcome.refusal.message,
                      headers={"Retry-After": str(outcome.refusal.seconds)})
    if outcome is None or outcome.user is None:
        raise Problem("unauthorized", "the user name or password is wrong", headers={"WWW-Authenticate": REALM})
    return _logged_in(request, outcome.user, "basic")


def _logged_in(request: Request, user: str, method: str) -> str:
    request.state.user = user
    request.state.login_method = method
    return user


def _from_our_pages(request: Request) -> bool:
    """The browser says the request comes from this origin (Sec-Fetch-Site, or an Origin of ours)."""
    if not csrf.same_origin(request):
        return False
    origin = request.headers.get("origin", "").strip()
    return request.headers.get("sec-fetch-site") == "same-origin" or origin not in ("", "null")

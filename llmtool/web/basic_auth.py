"""The login of `/api`: HTTP Basic with the same users (and check) as the login form, or the session.

    user = await api_user(request)      # None without logins; else the login, or a 401 problem

Scripts send `Authorization: Basic …` (the 401 carries `WWW-Authenticate: Basic`). A browser logged in
at `/login` may use its session cookie instead (lite.js's EventSource does), for anything that changes
state only from our own origin. The password never leaves this function.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from llmtool.web import csrf
from llmtool.web.context import AppContext, app_context
from llmtool.web.login import session_user
from llmtool.web.problems import Problem

REALM = 'Basic realm="llmtool", charset="UTF-8"'
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


async def api_user(request: Request) -> str | None:
    """The dependency every `/api` route has: the login name, None when no logins are configured.

    HTTP Basic (scripts) or the browser's login session (lite.js's EventSource); a session alone
    changes nothing unless the request shows it comes from our own pages (a cross-site form cannot)."""
    context: AppContext = app_context(request)
    check = context.auth
    if check is None:
        return None
    given = credentials(request.headers.get("authorization"))
    if given is None:
        user = await session_user(request, context)
        if user is not None and (request.method in SAFE_METHODS or _from_our_pages(request)):
            request.state.user = user
            return user
    if given is None or not check(*given):
        raise Problem(
            "unauthorized",
            "log in with HTTP Basic (the user name and password of the llmtool login)"
            if given is None else "the user name or password is wrong",
            headers={"WWW-Authenticate": REALM},
        )
    request.state.user = given[0]
    return given[0]


def _from_our_pages(request: Request) -> bool:
    """The browser says the request comes from this origin (Sec-Fetch-Site, or an Origin of ours)."""
    if not csrf.same_origin(request):
        return False
    origin = request.headers.get("origin", "").strip()
    return request.headers.get("sec-fetch-site") == "same-origin" or origin not in ("", "null")

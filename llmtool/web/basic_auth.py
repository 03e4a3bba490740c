"""HTTP Basic for `/api`: the same users (and the same check) as the Gradio login.

    user = await api_user(request)      # None without logins; else the login, or a 401 problem

Scripts send `Authorization: Basic …`; browsers ask for it once (the 401 carries
`WWW-Authenticate: Basic`). The password never leaves this function.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Request

from llmtool.web.context import AppContext, app_context
from llmtool.web.problems import Problem

REALM = 'Basic realm="llmtool", charset="UTF-8"'


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


def api_user(request: Request) -> str | None:
    """The dependency every `/api` route has: the login name, None when no logins are configured."""
    context: AppContext = app_context(request)
    check = context.auth
    if check is None:
        return None
    given = credentials(request.headers.get("authorization"))
    if given is None or not check(*given):
        raise Problem(
            "unauthorized",
            "log in with HTTP Basic (the user name and password of the llmtool login)"
            if given is None else "the user name or password is wrong",
            headers={"WWW-Authenticate": REALM},
        )
    request.state.user = given[0]
    return given[0]

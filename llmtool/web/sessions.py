"""Login sessions kept server-side in the run store, behind a signed cookie.

    sessions = context.sessions
    value = await sessions.create("ann", stamp)   # the cookie's value: a random token, signed
    user = await sessions.user_of(value, accounts.stamp)  # "ann"; None when forged, unknown, ended,
                                                  # expired, or her password changed / she was removed
    await sessions.end(value)                      # log out (this process at once, others within CACHE_SECONDS)

The cookie holds `token.signature`: a random 256-bit token signed (HMAC, itsdangerous) with the
deployment's secret key, which every process reads from the store. A forged or altered value fails
the signature check before any database lookup. The store keeps the SHA-256 of the token, never the
token: a copy of the database gives no working cookie. A session also keeps the `stamp` of the
password it was opened with (`llmtool.accounts`): once the password changes or the user is removed,
`user_of` ends it at its next use, in every process, whatever the cache holds.

A session ends after `ui.session_idle_minutes` without use (default 12 h) or `ui.session_max_days`
after login (default 7 days), whichever comes first. A verified session is remembered in memory for
`CACHE_SECONDS`, so the many requests of one Gradio page (the queue, uploads, files) do not each read
the database; last use is written at most once per `TOUCH_EVERY`. A logout in one process therefore
reaches the others within `CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from llmtool.store import RunStore, SessionRecord, StoreError
from llmtool.web.csrf import over_https

COOKIE = "llmtool_session"
CACHE_SECONDS = 5.0
TOUCH_EVERY = 60.0
_SALT = "llmtool-session"
_MAX_COOKIE = 200
_MAX_CACHED = 10_000

log = logging.getLogger(__name__)


@dataclass
class _Cached:
    record: SessionRecord
    checked: float  # time.monotonic() of the last database read


class Sessions:
    """Create, verify and end login sessions. `store` returns the run store (None: runs are not kept,
    so nobody can log in); `clock` is Unix time (tests move it)."""

    def __init__(self, secret_key: str, store: Callable[[], RunStore | None], *, idle_seconds: float,
                 max_seconds: float, clock: Callable[[], float] = time.time,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self._signer = Signer(secret_key, salt=_SALT)
        self._store = store
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}

    # -- the cookie value --------------------------------------------------------------------------
    def token(self, value: str | None) -> str | None:
        """The token inside a cookie value whose signature is ours, else None (no database read)."""
        if not value or len(value) > _MAX_COOKIE or not value.isascii():
            return None
        try:
            return self._signer.unsign(value).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None

    # -- sessions ----------------------------------------------------------------------------------
    async def create(self, user: str, stamp: str = "") -> str:
        """A new session for `user` (opened under the password whose `stamp` is given); returns the
        cookie value. Raises StoreError when it cannot be kept."""
        store = self._required_store()
        token = secrets.token_urlsafe(32)
        now = self.clock()
        record = SessionRecord(token_hash=_hash(token), user=user, created_at=now, last_seen=now,
                               expires_at=now + self.max_seconds, stamp=stamp)
        try:
            await store.purge_sessions(now, self.idle_seconds)  # a cheap indexed delete, once per login
            await store.create_session(record)
        except SQLAlchemyError as exc:
            raise StoreError(f"the session could not be saved: {type(exc).__name__}") from None
        return self._signer.sign(token).decode("ascii")

    async def user_of(self, value: str | None, stamp_of: Callable[[str], str | None] | None = None) -> str | None:
        """The login name of a live session, or None (forged, unknown, ended, idle or too old; or,
        with `stamp_of` (the accounts' `stamp`), of a removed user or opened under an older password)."""
        token = self.token(value)
        if token is None:
            return None
        key = _hash(token)
        cached = self._cache.get(key)
        record: SessionRecord | None
        if cached is not None and time.monotonic() - cached.checked < self.cache_seconds:
            record = cached.record
        else:
            record = await self._read(key)
            if record is None:
                self._cache.pop(key, None)
                return None
            cached = self._remember(key, record)
        now = self.clock()
        stale = stamp_of is not None and stamp_of(record.user) != record.stamp
        if stale or now >= record.expires_at or now - record.last_seen >= self.idle_seconds:
            self._cache.pop(key, None)
            await self._delete(key)
            return None
        if now - record.last_seen >= TOUCH_EVERY:
            cached.record = record.model_copy(update={"last_seen": now})
            store = self._store()
            if store is not None:
                try:
                    await store.touch_session(key, now)
                except SQLAlchemyError:
                    log.warning("could not note a session's last use", exc_info=True)
        return record.user

    async def end(self, value: str | None) -> None:
        """Log this session out (a forged or unknown value: nothing to do)."""
        token = self.token(value)
        if token is not None:
            key = _hash(token)
            self._cache.pop(key, None)
            await self._delete(key)

    async def end_all(self, user: str) -> int:
        """Log out every session of `user` (this process at once, others within `cache_seconds`)."""
        for key in [k for k, c in self._cache.items() if c.record.user == user]:
            self._cache.pop(key, None)
        store = self._required_store()
        return await store.delete_user_sessions(user)

    # -- the cookie --------------------------------------------------------------------------------
    def set_cookie(self, response: Response, request: Request, value: str) -> None:
        response.set_cookie(COOKIE, value, max_age=int(self.max_seconds), path="/", httponly=True,
                            samesite="lax", secure=over_https(request))

    @staticmethod
    def clear_cookie(response: Response, request: Request) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=over_https(request))

    # -- helpers -----------------------------------------------------------------------------------
    def _required_store(self) -> RunStore:
        store = self._store()
        if store is None:
            raise StoreError("the run store is not open, and logins are kept there")
        return store

    async def _read(self, key: str) -> SessionRecord | None:
        store = self._store()
        if store is None:
            return None
        try:
            return await store.get_session(key)
        except SQLAlchemyError:
            log.warning("could not read a session from the run store", exc_info=True)
            return None

    async def _delete(self, key: str) -> None:
        store = self._store()
        if store is None:
            return
        try:
            await store.delete_session(key)
        except SQLAlchemyError:
            log.warning("could not delete a session from the run store", exc_info=True)

    def _remember(self, key: str, record: SessionRecord) -> _Cached:
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()  # rare; the next requests read the database again
        cached = self._cache[key] = _Cached(record, time.monotonic())
        return cached


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()

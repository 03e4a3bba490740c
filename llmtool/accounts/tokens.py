"""API tokens for scripts: `Authorization: Bearer llmt_…` on `/api`, made and revoked by their user.

    token, record = await issue(store, "ann", "nightly eval", stamp=accounts.stamp("ann"))  # shown once
    user = await checker.user_of(store, token, accounts.stamp)    # "ann"; None: unknown, revoked, stale
    await revoke(store, checker, "ann", record.id)

A token is 256 random bits (`secrets.token_urlsafe`) behind the prefix `llmt_` (which secret scanners
and our redaction can spot); the store keeps its SHA-256 only. A token made under one password stops
working when the password changes or the user is removed (its `stamp`), like a session.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from llmtool.store import RunStore, StoreError
from llmtool.store.tokens import MAX_PER_USER, TokenRecord

PREFIX = "llmt_"
CACHE_SECONDS = 5.0
TOUCH_EVERY = 60.0
MAX_NAME = 100
_MAX_TOKEN = 200
_MAX_CACHED = 10_000

log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


def well_formed(token: str) -> bool:
    return token.startswith(PREFIX) and 20 < len(token) <= _MAX_TOKEN and token.isascii() and token.isprintable()


async def issue(store: RunStore, user: str, name: str, stamp: str | None, *,
                clock: Callable[[], float] = time.time) -> tuple[str, TokenRecord]:
    """A new token for `user`: (the token, shown once; its record). StoreError when it cannot be kept
    or the user has `MAX_PER_USER` already."""
    if stamp is None:
        raise StoreError(f"there is no user {user!r}")
    name = " ".join(name.split())[:MAX_NAME] or "token"
    token = PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(id=secrets.token_hex(6), token_hash=token_hash(token), user=user, name=name,
                         stamp=stamp, created_at=clock())
    try:
        if await store.count_tokens(user) >= MAX_PER_USER:
            raise StoreError(f"{user} has {MAX_PER_USER} tokens already: revoke one first")
        await store.create_token(record)
    except SQLAlchemyError as exc:
        raise StoreError(f"the token could not be saved: {type(exc).__name__}") from None
    return token, record


@dataclass
class _Cached:
    record: TokenRecord
    checked: float


class TokenChecker:
    """Bearer tokens → their user, with a short memory (a script's many requests read the store once
    per `cache_seconds`; a revocation in another process reaches this one within that time)."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, _Cached] = {}

    async def user_of(self, store: RunStore | None, token: str, stamp_of: Callable[[str], str | None]) -> str | None:
        """The user a live token belongs to, or None (malformed, unknown, revoked, or made under an
        older password or for a removed user)."""
        if store is None or not well_formed(token):
            return None
        key = token_hash(token)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached.checked < self.cache_seconds:
            record: TokenRecord | None = cached.record
        else:
            try:
                record = await store.token_by_hash(key)
            except SQLAlchemyError:
                log.warning("could not read an API token from the run store", exc_info=True)
                return None
            if record is None:
                self._cache.pop(key, None)
                return None
            self._remember(key, record)
        assert record is not None
        if stamp_of(record.user) != record.stamp:
            self._cache.pop(key, None)
            return None
        now = self.clock()
        if record.last_used is None or now - record.last_used >= TOUCH_EVERY:
            self._remember(key, record.model_copy(update={"last_used": now}))
            try:
                await store.touch_token(key, now)
            except SQLAlchemyError:
                log.warning("could not note an API token's last use", exc_info=True)
        return record.user

    def forget(self, user: str | None = None, token_id: str | None = None) -> None:
        """Drop remembered tokens: one (by id), a user's, or all."""
        for key in [k for k, c in self._cache.items()
                    if (user is None or c.record.user == user) and (token_id is None or c.record.id == token_id)]:
            del self._cache[key]

    def _remember(self, key: str, record: TokenRecord) -> None:
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = _Cached(record, time.monotonic())


async def revoke(store: RunStore, checker: TokenChecker | None, user: str, token_id: str) -> bool:
    """Revoke one of `user`'s tokens; False when they have none by that id."""
    if checker is not None:
        checker.forget(user=user, token_id=token_id)
    try:
        return await store.delete_token(user, token_id)
    except SQLAlchemyError as exc:
        raise StoreError(f"the token could not be revoked: {type(exc).__name__}") from None


async def end_user_logins(store: RunStore, user: str) -> tuple[int, int]:
    """End every session and revoke every token of `user` (a new password, a removed user);
    returns (sessions, tokens)."""
    try:
        return await store.delete_user_sessions(user), await store.delete_user_tokens(user)
    except SQLAlchemyError as exc:
        raise StoreError(f"the user's sessions and tokens could not be ended: {type(exc).__name__}") from None

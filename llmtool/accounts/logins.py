"""The logins of one server: the users (file and `LLMTOOL_USERS`), their roles, password checks with
throttling, and the reverse-proxy header.

    accounts = Accounts.load(settings)                    # None: no users configured, no login
    outcome = await accounts.authenticate("ann", pw, "203.0.113.9")
    outcome.user            # "ann" when right; None when wrong
    outcome.refusal         # throttled: how long to wait, and the sentence to show (429)
    accounts.principal("ann")                             # Principal(user, role, policy) or None
    accounts.stamp("ann")                                 # what her sessions and tokens were made under

A password check (argon2: ~0.1 s and 64 MiB) runs in a worker thread (argon2-cffi and bcrypt release
the GIL), at most `HASHING_AT_ONCE` at a time, and only after the throttle said yes; an unknown user
is checked against a dummy hash of the same cost, so the time taken does not tell who exists. A
verified user name and password is remembered for `cache_seconds` (by a keyed digest, never the
password), so a script's HTTP Basic requests are not each a hash check; a new password, a removed
user or any change of the file forgets it.

The file is looked at (one `stat`) at most once a second and read again when its size, time or inode
changed. A file that has become wrong keeps the last good users in force and says why in the log; at
start-up (`load`) it stops the server instead.

`Accounts(settings, check=fn)` wraps a bare `(user, password) -> bool` (library use, tests): the same
throttling, every user a `member`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llmtool.accounts import passwords
from llmtool.accounts.network import TrustedProxies, client_address
from llmtool.accounts.principal import Principal
from llmtool.accounts.throttle import MemoryThrottle, Refusal, Throttle, throttle_keys
from llmtool.accounts.tokens import TokenChecker
from llmtool.accounts.users import USERS_ENV, UserEntry, exposure_warning, parse_users, read_text
from llmtool.errors import InvalidRequestError
from llmtool.settings import Settings

log = logging.getLogger(__name__)

PasswordCheck = Callable[[str, str], bool]
HASHING_AT_ONCE = 2
CACHE_SECONDS = 60.0
RECHECK_SECONDS = 1.0
_MAX_CACHED = 10_000
_MAX_PASSWORD = 1024


@dataclass(frozen=True)
class Outcome:
    """A login attempt's result: `user` when the password was right; `refusal` when the throttle
    turned it away (the password was not even checked, or its failure began a lock-out)."""

    user: str | None = None
    refusal: Refusal | None = None


@dataclass(frozen=True)
class _FileState:
    signature: tuple[int, int, int] | None  # mtime_ns, size, inode; None: the file could not be read
    users: dict[str, UserEntry]


class Accounts:
    def __init__(self, settings: Settings, *, users_file: Path | None = None, env_text: str | None = None,
                 check: PasswordCheck | None = None, throttle: Throttle | None = None,
                 cache_seconds: float = CACHE_SECONDS, recheck_seconds: float = RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if check is not None and (users_file is not None or env_text is not None):
            raise ValueError("give a users file / LLMTOOL_USERS, or a bare check, not both")
        self.settings = settings
        self.roles = settings.roles
        self.users_file = Path(users_file).expanduser() if users_file is not None else None
        self.throttle: Throttle = throttle or MemoryThrottle(settings.accounts.throttle)
        self.proxies = TrustedProxies(settings.accounts.trusted_proxies)
        self.proxy_header = (settings.accounts.proxy_user_header or "").strip().lower() or None
        self.tokens = TokenChecker()  # bearer tokens → their user (llmtool/accounts/tokens.py)
        self.cache_seconds = cache_seconds
        self.recheck_seconds = recheck_seconds
        self.clock = clock
        self._bare = check
        self._env: dict[str, UserEntry] = (
            parse_users(env_text, USERS_ENV, self.roles) if env_text is not None else {}
        )
        self._file: _FileState | None = None
        self._checked_at = clock()
        if self.users_file is not None:
            self._file = self._read_file()  # at start-up a wrong file is an error, not a log line
        self._users = self._merged()
        self._dummy: str | None = None
        if check is None:
            self._dummy_hash()  # at start-up, so the first unknown user's check costs what a known one's does
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[float, str]] = {}
        self._hashing: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        # The synchronous check (`AppContext.auth`; Gradio's own `auth=` under `gradio app.py`): one
        # object for the lifetime of these accounts. Unthrottled: prefer `authenticate`.
        self.check: PasswordCheck = check if check is not None else self._check_now

    @classmethod
    def load(cls, settings: Settings, environ: Mapping[str, str] = os.environ) -> Accounts | None:
        """The accounts of `settings.ui.users_file` and `LLMTOOL_USERS`; None when neither is set (no
        login). A configured file that is empty still means logins (nobody can log in yet)."""
        users_file = settings.ui.users_file
        env_text = environ.get(USERS_ENV) or None
        if users_file is None and env_text is None:
            return None
        return cls(settings, users_file=users_file, env_text=env_text)

    # -- who exists ---------------------------------------------------------------------------------
    @property
    def warnings(self) -> list[str]:
        """What an administrator should hear about the users file (printed at start-up and by the CLI)."""
        found = exposure_warning(self.users_file) if self.users_file is not None else None
        return [found] if found else []

    def users(self) -> dict[str, UserEntry]:
        self.refresh()
        return dict(self._users)

    def principal(self, user: str | None) -> Principal | None:
        """Who `user` is and what their role lets them do; None for nobody (or a removed user)."""
        if user is None:
            return None
        if self._bare is not None:
            return Principal(user=user, role="member", policy=self.roles["member"])
        self.refresh()
        entry = self._users.get(user)
        policy = self.roles.get(entry.role) if entry is not None else None
        return None if entry is None or policy is None else Principal(user=user, role=entry.role, policy=policy)

    def stamp(self, user: str) -> str | None:
        """A digest of `user`'s password hash (sessions and tokens keep it: a new one ends them);
        None when there is no such user. "" for a bare check, which knows no hashes."""
        if self._bare is not None:
            return ""
        self.refresh()
        entry = self._users.get(user)
        return None if entry is None else entry.stamp

    # -- passwords ----------------------------------------------------------------------------------
    async def authenticate(self, user: str, password: str, address: str | None) -> Outcome:
        """Check a login: throttle first, then the cache, then the hash (in a thread, a few at a time)."""
        self.refresh()
        keys = throttle_keys(user, address)
        refused = await self.throttle.refusal(keys)
        if refused is not None:
            return Outcome(refusal=refused)
        cache_key = self._cache_digest(user, password)
        cached = self._cache.get(cache_key)
        current = self.stamp(user)
        if cached is not None and cached[0] > self.clock() and current is not None and cached[1] == current:
            await self.throttle.success(keys)
            return Outcome(user=user)
        async with self._semaphore():
            refused = await self.throttle.refusal(keys)  # failures counted while this one waited its turn
            if refused is not None:
                return Outcome(refusal=refused)
            entry = self._users.get(user)
            right = await asyncio.to_thread(self._verify, user, password, entry)
        if right:
            await self.throttle.success(keys)
            self._remember(cache_key, entry.stamp if entry is not None else "")
            return Outcome(user=user)
        verdict = await self.throttle.failure(keys)
        if verdict.locked is not None:
            log.warning("logins locked for %s after repeated failures (%s)", user[:50], address or "no address")
            return Outcome(refusal=verdict.locked)
        if verdict.delay:
            await asyncio.sleep(verdict.delay)
        return Outcome()

    def _check_now(self, user: str, password: str) -> bool:
        self.refresh()
        return self._verify(user, password, self._users.get(user))

    def _verify(self, user: str, password: str, entry: UserEntry | None) -> bool:
        if self._bare is not None:
            return bool(self._bare(user, password))
        if len(password) > _MAX_PASSWORD:
            password = password[:_MAX_PASSWORD]  # same cost as any other; can never match a real one
            entry = None
        if entry is None or entry.hash == passwords.NO_PASSWORD:
            passwords.verify(password, self._dummy_hash())  # as long as a real check: no user enumeration
            return False
        return passwords.verify(password, entry.hash)

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._hashing is None or self._hashing[0] is not loop:
            self._hashing = (loop, asyncio.Semaphore(HASHING_AT_ONCE))
        return self._hashing[1]

    def _cache_digest(self, user: str, password: str) -> bytes:
        return hmac.new(self._cache_key, f"{user}\0{password}".encode(errors="replace"), hashlib.sha256).digest()

    def _remember(self, key: bytes, stamp: str) -> None:
        if self.cache_seconds <= 0:
            return
        if len(self._cache) >= _MAX_CACHED:
            now = self.clock()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
        self._cache[key] = (self.clock() + self.cache_seconds, stamp)

    def forget(self) -> None:
        """Forget every remembered login (the users changed)."""
        self._cache.clear()

    # -- the network --------------------------------------------------------------------------------
    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address (behind `trusted_proxies`, from X-Forwarded-For)."""
        return client_address(peer, forwarded_for, self.proxies)

    def proxy_user(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The login a trusted reverse proxy names in `proxy_user_header`, when it is a known user;
        None otherwise (no header configured, an untrusted peer, an unknown name)."""
        if self.proxy_header is None or not self.proxies.trusts(peer):
            return None
        name = headers.get(self.proxy_header, "").strip()
        if not name:
            return None
        if self.principal(name) is None:
            log.warning("the proxy named %r, who is not in the users file", name[:50])
            return None
        return name

    # -- the file -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the users file again if it changed (looked at with one stat, at most once a second)."""
        if self.users_file is None:
            return
        now = self.clock()
        if now - self._checked_at < self.recheck_seconds:
            return
        self._checked_at = now
        kept = self._file.users if self._file is not None else {}
        try:
            signature: tuple[int, int, int] | None = _signature(self.users_file)
        except OSError as exc:
            signature = None
            if self._file is not None and self._file.signature is not None:
                log.error("cannot read the users file %s (%s): the users read before stay in force",
                          self.users_file, exc.strerror)
        if self._file is not None and signature == self._file.signature:
            return
        if signature is None:
            self._file = _FileState(None, kept)
            return
        try:
            state = self._read_file()
        except InvalidRequestError as error:
            log.error("the users file changed but cannot be used: %s; the users read before stay in force",
                      error.message)
            self._file = _FileState(signature, kept)
            return
        before, self._file = self._users, state
        self._users = self._merged()
        changed = sorted(name for name in before.keys() | self._users.keys()
                         if getattr(before.get(name), "hash", None) != getattr(self._users.get(name), "hash", None))
        self._dummy = None  # made again, at the new users' cost, by the next check (in its thread)
        self.forget()
        log.info("the users file %s was read again: %d users; added, removed or with a new password: %s",
                 self.users_file, len(self._users), ", ".join(changed) or "none")

    def _read_file(self) -> _FileState:
        assert self.users_file is not None
        signature = _signature_or_error(self.users_file)
        users = parse_users(read_text(self.users_file), str(self.users_file), self.roles)
        for warning in self.warnings:
            log.warning("%s", warning)
        return _FileState(signature, users)

    def _merged(self) -> dict[str, UserEntry]:
        return (self._file.users if self._file is not None else {}) | self._env

    def _dummy_hash(self) -> str:
        """A hash at the cost of the users' own (the first user's), made in a worker thread."""
        if self._dummy is None:
            reference = next((entry.hash for entry in self._users.values()
                              if entry.hash != passwords.NO_PASSWORD), None)
            self._dummy = passwords.dummy_like(reference)
        return self._dummy


def _signature(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return info.st_mtime_ns, info.st_size, info.st_ino


def _signature_or_error(path: Path) -> tuple[int, int, int]:
    try:
        return _signature(path)
    except FileNotFoundError:
        raise InvalidRequestError(f"cannot read the users file {path}: it does not exist "
                                  f"(`llmtool users add NAME --users-file {path}` creates it)") from None
    except OSError as exc:
        raise InvalidRequestError(f"cannot read the users file {path}: {exc.strerror}") from None

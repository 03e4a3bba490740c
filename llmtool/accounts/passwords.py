"""Password hashes: argon2id for new ones, bcrypt (`htpasswd -B`) accepted, through pwdlib.

    hashed = hash_password("correct horse battery")     # $argon2id$v=19$m=65536,t=3,p=4$…
    verify("correct horse battery", hashed)              # True; ~0.05–0.15 s and 64 MiB: call it off the loop
    kind(hashed)                                         # "argon2", "bcrypt", or None (not a hash)
    stamp(hashed)                                        # a short digest: sessions and tokens remember it

A users file holds only hashes; a line whose second field is not one is refused (`users.py`).
`dummy_like(hashed)` makes a hash of a random password at the same cost, which an unknown user's
login is checked against, so the answer takes as long as a known user's.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Literal

from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

log = logging.getLogger(__name__)

Kind = Literal["argon2", "bcrypt"]
NO_PASSWORD = "!"  # a users-file entry that cannot log in with a password (proxy header, tokens only)
# argon2-cffi's defaults (RFC 9106's second recommendation): 3 passes over 64 MiB, 4 lanes.
ARGON2 = Argon2Hasher()
BCRYPT = BcryptHasher()
_ARGON2_COST = re.compile(r"^\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=(\d+),t=(\d+),p=(\d+)\$")
_BCRYPT_COST = re.compile(r"^\$2[abxy]\$(\d{2})\$")


def hash_password(password: str) -> str:
    """A new argon2id hash (the production cost: never lowered for tests, see `dummy_like`)."""
    return ARGON2.hash(password)


def kind(value: str) -> Kind | None:
    """What hash `value` is, or None when it is not one we accept (plain text, another scheme)."""
    if Argon2Hasher.identify(value):
        return "argon2"
    if BcryptHasher.identify(value):
        return "bcrypt"
    return None


def verify(password: str, hashed: str) -> bool:
    """Whether `password` matches `hashed`; never raises (a broken hash or a password bcrypt cannot
    take, over 72 bytes, is a mismatch). Slow on purpose: call it in a thread."""
    try:
        if kind(hashed) == "argon2":
            return ARGON2.verify(password, hashed)
        if kind(hashed) == "bcrypt":
            return BCRYPT.verify(password, hashed)
    except Exception as exc:  # bcrypt 5 refuses passwords over 72 bytes with ValueError
        log.debug("a password could not be checked: %s", type(exc).__name__)
    return False


def dummy_like(hashed: str | None) -> str:
    """A hash of a random password at the cost of `hashed` (argon2's memory, passes and lanes, or
    bcrypt's rounds); the production argon2 cost when there is none."""
    if hashed is not None:
        argon2 = _ARGON2_COST.match(hashed)
        if argon2 is not None:
            memory, passes, lanes = (int(group) for group in argon2.groups())
            try:
                return Argon2Hasher(time_cost=passes, memory_cost=memory, parallelism=lanes).hash(_random())
            except Exception:  # parameters argon2 refuses: that user cannot log in either
                log.debug("cannot make a dummy hash at the cost of %s", hashed[:40])
        bcrypt = _BCRYPT_COST.match(hashed)
        if bcrypt is not None:
            return BcryptHasher(rounds=min(max(int(bcrypt.group(1)), 4), 31)).hash(_random())
    return hash_password(_random())


def stamp(hashed: str) -> str:
    """A digest of a password hash: a session or token made under it ends when the hash changes."""
    return hashlib.sha256(hashed.encode()).hexdigest()[:32]


def _random() -> str:
    return secrets.token_urlsafe(16)

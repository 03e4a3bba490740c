"""What the accounts tests share: cheap hashes (the test's own low-cost hasher: production hashes
are never made cheaper), a users file written like an administrator would, and a bcrypt line as
`htpasswd -B` writes it."""

from __future__ import annotations

from pathlib import Path

import bcrypt
from pwdlib.hashers.argon2 import Argon2Hasher

# argon2id at the lowest cost argon2 takes: ~1 ms instead of ~0.1 s. Verifying a hash costs what
# the hash says, so a users file of these makes every check (and the dummy one) fast.
CHEAP = Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1)


def htpasswd_bcrypt(password: str, rounds: int = 4) -> str:
    """What `htpasswd -B` writes: bcrypt with the `$2y$` prefix (the same algorithm as `$2b$`)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()
    return "$2y$" + hashed[4:]


def users_file(folder: Path, users: dict[str, str], roles: dict[str, str] | None = None, *,
               name: str = "users.txt") -> Path:
    """A users file (mode 0600) of `name:cheap-argon2-hash[:role]` lines."""
    roles = roles or {}
    path = folder / name
    path.write_text("".join(f"{user}:{CHEAP.hash(password)}" + (f":{roles[user]}" if user in roles else "") + "\n"
                            for user, password in users.items()))
    path.chmod(0o600)
    return path

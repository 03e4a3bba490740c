"""The users file: `user:hash[:role]` lines, read, checked and rewritten.

    alice:$argon2id$v=19$m=65536,t=3,p=4$…:admin      # llmtool users add alice --role admin
    bob:$2y$05$…                                        # htpasswd -B users.txt bob (a member)
    proxy-only:!:partner                                # no password: the proxy header or a token only

Blank lines and `#` comments are kept. A line without a role is a `member`; a role the settings do
not define, a password in plain text, a malformed line or a name given twice is refused, naming the
line. `LLMTOOL_USERS` takes the same entries, one per line (argon2 hashes contain commas), and its
entries override the file's.

`UsersFile` edits the file for the `llmtool users` commands: the user's line replaced, added or
removed, everything else as it was, written atomically (a temporary file renamed over it) with mode
0600 (only its owner may read it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llmtool.accounts import passwords
from llmtool.errors import InvalidRequestError

USERS_ENV = "LLMTOOL_USERS"
DEFAULT_ROLE = "member"
MAX_NAME = 200


@dataclass(frozen=True)
class UserEntry:
    name: str
    hash: str  # argon2 or bcrypt, or passwords.NO_PASSWORD
    role: str
    where: str  # "users.txt line 3", for messages

    @property
    def stamp(self) -> str:
        return passwords.stamp(self.hash)


def check_name(name: str) -> str | None:
    """Why `name` cannot be a user name, or None when it can."""
    if not name:
        return "a user name cannot be empty"
    if len(name) > MAX_NAME:
        return f"a user name has at most {MAX_NAME} characters"
    if ":" in name or any(c.isspace() or not c.isprintable() for c in name) or name.startswith("#"):
        return f"the user name {name!r} may not contain ':', spaces or control characters, nor start with '#'"
    return None


def hash_advice(name: str, source: str) -> str:
    if source == USERS_ENV:
        return (f"make the line with `llmtool users add {name} --users-file FILE` (it asks for the password and "
                f"writes its argon2 hash) or `htpasswd -nB {name}`, and put that line here")
    return (f"run `llmtool users add {name} --users-file {source}` (it asks for the password and writes its "
            f"argon2 hash), or `htpasswd -B {source} {name}`")


def parse_entry(entry: str, where: str, source: str, roles: Iterable[str]) -> UserEntry | None:
    """One `user:hash[:role]` entry (None for a blank or `#` line); InvalidRequestError naming `where`."""
    entry = entry.strip()
    if not entry or entry.startswith("#"):
        return None
    parts = entry.split(":")
    name = parts[0].strip()
    secret = parts[1].strip() if len(parts) > 1 else ""
    if len(parts) < 2 or not name or not secret:
        raise InvalidRequestError(f"{where}: expected user:hash or user:hash:role, got an entry without both")
    problem = check_name(name)
    if problem is not None:
        raise InvalidRequestError(f"{where}: {problem}")
    if secret != passwords.NO_PASSWORD and passwords.kind(secret) is None:
        # Never echo the line: it holds a password.
        raise InvalidRequestError(
            f"{where}: the password of {name!r} is in plain text (or a hash llmtool does not know); "
            f"only argon2 and bcrypt hashes are accepted: {hash_advice(name, source)}"
        )
    if len(parts) > 3:
        raise InvalidRequestError(f"{where}: expected user:hash or user:hash:role, got {len(parts)} fields")
    role = parts[2].strip() if len(parts) == 3 and parts[2].strip() else DEFAULT_ROLE
    known = sorted(roles)
    if role not in known:
        raise InvalidRequestError(
            f"{where}: unknown role {role!r} for {name!r}; the roles are {', '.join(known)} "
            f"(a new one is defined under [roles.{role}] in the config file)"
        )
    return UserEntry(name=name, hash=secret, role=role, where=where)


def parse_users(text: str, source: str, roles: Iterable[str]) -> dict[str, UserEntry]:
    """Every entry of a users file (or of `LLMTOOL_USERS`: `source` names it), one per line."""
    roles = list(roles)
    users: dict[str, UserEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source} line {number}" if source != USERS_ENV else f"{USERS_ENV} entry {number}"
        entry = parse_entry(line, where, source, roles)
        if entry is None:
            continue
        if entry.name in users:
            raise InvalidRequestError(f"{where}: {entry.name!r} is already given on {users[entry.name].where}")
        users[entry.name] = entry
    return users


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequestError(f"cannot read the users file {path}: it does not exist "
                                  f"(`llmtool users add NAME --users-file {path}` creates it)") from None
    except OSError as exc:
        raise InvalidRequestError(f"cannot read the users file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRequestError(f"cannot read the users file {path}: it is not UTF-8 text") from None


def exposure_warning(path: Path) -> str | None:
    """A sentence when other users of the machine may read or change the file (its hashes can be
    guessed at offline), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode) or not mode & 0o077:
        return None
    return (f"the users file {path} can be read by other users of this machine (mode "
            f"{stat.filemode(mode)}): its password hashes can be guessed at offline; `chmod 600 {path}`")


class UsersFile:
    """The users file as the `llmtool users` commands edit it."""

    def __init__(self, path: Path, roles: Iterable[str]) -> None:
        self.path = path
        self.roles = list(roles)

    def exists(self) -> bool:
        return self.path.exists()

    def users(self) -> dict[str, UserEntry]:
        return parse_users(read_text(self.path), str(self.path), self.roles) if self.exists() else {}

    def put(self, entry: UserEntry) -> bool:
        """Add the user, or replace their line; True when they were there before."""
        line = f"{entry.name}:{entry.hash}" + (f":{entry.role}" if entry.role != DEFAULT_ROLE else "")
        lines, found = self._lines(), False
        for index, text in enumerate(lines):
            if self._name(text) == entry.name:
                lines[index], found = line, True
        if not found:
            lines.append(line)
        self._write(lines)
        return found

    def remove(self, name: str) -> bool:
        lines = self._lines()
        kept = [text for text in lines if self._name(text) != name]
        if len(kept) == len(lines):
            return False
        self._write(kept)
        return True

    def _lines(self) -> list[str]:
        if not self.exists():
            return []
        self.users()  # refuse to rewrite a file that is wrong: say which line first
        return read_text(self.path).splitlines()

    @staticmethod
    def _name(line: str) -> str | None:
        text = line.strip()
        return None if not text or text.startswith("#") else text.split(":", 1)[0].strip()

    def _write(self, lines: list[str]) -> None:
        write_private(self.path, "".join(f"{line}\n" for line in lines))


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: a temporary file (mode 0600) in the same folder,
    flushed to disk, renamed over it. A reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise

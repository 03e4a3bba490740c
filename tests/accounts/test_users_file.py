"""The users file: hashed lines with roles, what is refused (naming the line), the warning for a file
others can read, and the atomic 0600 rewrite the commands use."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from llmtool.accounts import passwords
from llmtool.accounts.users import UserEntry, UsersFile, exposure_warning, parse_users
from llmtool.errors import InvalidRequestError
from tests.accounts.support import CHEAP, htpasswd_bcrypt

ROLES = ["admin", "member", "partner"]


def test_argon2_and_htpasswd_bcrypt_lines_with_and_without_a_role() -> None:
    argon2, bcrypt_line = CHEAP.hash("argon pass 1"), htpasswd_bcrypt("bcrypt pass 2")
    users = parse_users(f"# the team\n\nann:{argon2}:admin\n  bob:{bcrypt_line}  \ncarl:{argon2}:partner\n",
                        "users.txt", ROLES)
    assert {name: (entry.role, passwords.kind(entry.hash)) for name, entry in users.items()} == {
        "ann": ("admin", "argon2"), "bob": ("member", "bcrypt"), "carl": ("partner", "argon2")}
    assert users["bob"].where == "users.txt line 4"
    assert passwords.verify("argon pass 1", users["ann"].hash)
    assert passwords.verify("bcrypt pass 2", users["bob"].hash) and not passwords.verify("bcrypt pass", users["bob"].hash)


def test_a_production_hash_is_argon2id_at_64_mib() -> None:
    hashed = passwords.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify("a long enough password", hashed) and not passwords.verify("another", hashed)


@pytest.mark.parametrize("line", ["ann:hunter2", "ann:correct horse:admin", "ann:$1$md5crypt$x", "ann:a:b:c:d"])
def test_a_plain_text_password_is_refused_saying_how_to_hash_it(line: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_users(f"# ok\n{line}\n", "users.txt", ROLES)
    message = caught.value.message
    assert message.startswith("users.txt line 2: the password of 'ann' is in plain text")
    assert "llmtool users add ann --users-file users.txt" in message and "htpasswd -B" in message
    assert "hunter2" not in message and "horse" not in message  # the password is never echoed


def test_an_unknown_role_is_refused_naming_the_line() -> None:
    text = f"ann:{CHEAP.hash('x')}\nbob:{CHEAP.hash('y')}:boss\n"
    with pytest.raises(InvalidRequestError, match=r"^users\.txt line 2: unknown role 'boss' for 'bob'; the roles are "
                                                  r"admin, member, partner \(a new one is defined under \[roles\.boss\]"):
        parse_users(text, "users.txt", ROLES)
    assert parse_users(text, "users.txt", [*ROLES, "boss"])["bob"].role == "boss"  # a role of the config


@pytest.mark.parametrize(("text", "expected"), [
    ("ann", "line 1: expected user:hash or user:hash:role"),
    (":{h}", "line 1: expected user:hash"),
    ("ann:", "line 1: expected user:hash"),
    ("a b:{h}", "line 1: the user name 'a b' may not contain"),
    ("ann:{h}\nann:{h}", "line 2: 'ann' is already given on users.txt line 1"),
    ("ann:{h}:admin:extra", "line 1: expected user:hash or user:hash:role, got 4 fields"),
])
def test_malformed_lines_name_their_line(text: str, expected: str) -> None:
    with pytest.raises(InvalidRequestError, match=expected):
        parse_users(text.replace("{h}", CHEAP.hash("pw")), "users.txt", ROLES)


def test_the_environment_takes_one_entry_per_line_and_names_the_entry() -> None:
    hashed = CHEAP.hash("pw")
    assert "," in hashed  # why LLMTOOL_USERS cannot be comma-separated any more
    users = parse_users(f"ann:{hashed}\nbob:{hashed}:partner", "LLMTOOL_USERS", ROLES)
    assert sorted(users) == ["ann", "bob"]
    with pytest.raises(InvalidRequestError, match=r"^LLMTOOL_USERS entry 2: the password of 'bob' is in plain text "
                                                  r".*`llmtool users add bob --users-file FILE`"):
        parse_users(f"ann:{hashed}\nbob:pw", "LLMTOOL_USERS", ROLES)


def test_a_file_others_can_read_gets_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text(f"ann:{CHEAP.hash('pw')}\n")
    path.chmod(0o644)
    warning = exposure_warning(path)
    assert warning is not None and "can be read by other users of this machine (mode -rw-r--r--)" in warning
    assert f"chmod 600 {path}" in warning
    path.chmod(0o600)
    assert exposure_warning(path) is None


def test_the_commands_rewrite_the_file_atomically_with_mode_0600_keeping_comments(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text(f"# staff\nann:{CHEAP.hash('a')}:admin\n\n# partners\nbob:{CHEAP.hash('b')}:partner\n")
    path.chmod(0o644)
    before = path.stat().st_ino
    users = UsersFile(path, ROLES)
    assert users.put(UserEntry("carl", CHEAP.hash("c"), "member", "")) is False
    assert path.stat().st_ino != before  # a new file renamed over the old one, never written in place
    assert users.put(UserEntry("bob", CHEAP.hash("b2"), "partner", "")) is True
    assert users.remove("ann") is True and users.remove("nobody") is False
    lines = path.read_text().splitlines()
    assert lines[0] == "# staff" and lines[2] == "# partners"
    assert [line.split(":")[0] for line in lines if line and not line.startswith("#")] == ["bob", "carl"]
    assert lines[3].endswith(":partner") and not lines[4].endswith(":member")  # member is the default, unwritten
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["users.txt"]  # no temporary file left


def test_a_wrong_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("ann:plain-text\n")
    with pytest.raises(InvalidRequestError, match="line 1: the password of 'ann' is in plain text"):
        UsersFile(path, ROLES).put(UserEntry("bob", CHEAP.hash("b"), "member", ""))
    assert path.read_text() == "ann:plain-text\n"

"""`llmtool users`: passwords asked twice (or read from a pipe), never on the command line; the
minimum length; roles checked; passwd and remove end the user's sessions and API tokens in the store."""

from __future__ import annotations

import asyncio
import io
import stat
from pathlib import Path

import pytest

from llmtool.accounts import Accounts, passwords
from llmtool.cli import main
from llmtool.settings import load_settings
from llmtool.store import SessionRecord, open_store
from llmtool.store.tokens import TokenRecord
from tests.accounts.support import users_file


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A users file setting (ui.users_file) and a run store in tmp_path; returns the users file's path."""
    monkeypatch.setenv("LLMTOOL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.setenv("LLMTOOL_UI__USERS_FILE", str(tmp_path / "users.txt"))
    monkeypatch.delenv("LLMTOOL_USERS", raising=False)
    return tmp_path / "users.txt"


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *argv])


def test_add_from_a_pipe_writes_an_argon2_line_mode_0600(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, "add", "ann", "--role", "partner", stdin="a good long password\nignored\n") == 0
    assert "added ann (partner)" in capsys.readouterr().err
    name, hashed, role = env.read_text().strip().split(":")
    assert (name, role) == ("ann", "partner") and hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify("a good long password", hashed)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert run(monkeypatch, "add", "bob", stdin="bob's long password\n") == 0
    assert env.read_text().splitlines()[1].count(":") == 1  # a member: no role written
    assert run(monkeypatch, "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == ["ann  partner   argon2", "bob  member    argon2"]
    accounts = Accounts.load(load_settings())
    assert accounts is not None and accounts.principal("ann").role == "partner"  # type: ignore[union-attr]


def test_on_a_terminal_the_password_is_asked_twice(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["first long password", "second long password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["users", "add", "ann"]) == 2
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err and not env.exists()
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="": prompts.append(prompt) or "same long password")
    assert main(["users", "add", "ann"]) == 0
    assert prompts == ["New password for ann: ", "The same again: "]


def test_short_passwords_unknown_roles_and_twice_added_users_are_refused(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, "add", "ann", stdin="elevenchars\n") == 2
    assert "the password has 11 characters; at least 12 are needed" in capsys.readouterr().err
    monkeypatch.setenv("LLMTOOL_ACCOUNTS__MIN_PASSWORD_LENGTH", "20")
    assert run(monkeypatch, "add", "ann", stdin="twelve chars\n") == 2
    assert "at least 20 are needed" in capsys.readouterr().err
    monkeypatch.delenv("LLMTOOL_ACCOUNTS__MIN_PASSWORD_LENGTH")
    assert run(monkeypatch, "add", "ann", "--role", "boss", stdin="a good long password\n") == 2
    assert "--role boss: the roles are admin, member, partner" in capsys.readouterr().err
    assert run(monkeypatch, "add", "ann", stdin="\n") == 2
    assert "no password given" in capsys.readouterr().err
    assert not env.exists()
    assert run(monkeypatch, "add", "ann", stdin="a good long password\n") == 0
    assert run(monkeypatch, "add", "ann", stdin="a good long password\n") == 2
    assert "ann is already a user" in capsys.readouterr().err
    assert run(monkeypatch, "passwd", "nobody", stdin="a good long password\n") == 1


def test_a_users_file_others_can_read_is_warned_about(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    users_file(env.parent, {"ann": "x"}).chmod(0o644)
    assert run(monkeypatch, "list") == 0
    assert "warning: the users file" in capsys.readouterr().err
    assert run(monkeypatch, "role", "ann", "admin") == 0  # any rewrite makes it 0600
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    capsys.readouterr()
    assert run(monkeypatch, "list") == 0
    assert "warning" not in capsys.readouterr().err


def test_passwd_and_remove_end_the_users_sessions_and_tokens(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ann", "bob"):
        assert run(monkeypatch, "add", name, stdin=f"{name}'s long password\n") == 0
    url = f"sqlite+aiosqlite:///{env.parent / 'runs.db'}"

    async def seed() -> None:
        store = await open_store(url)
        for index, user in enumerate(["ann", "ann", "bob"]):
            await store.create_session(SessionRecord(token_hash=str(index) * 64, user=user, created_at=1e9,
                                                     last_seen=1e9, expires_at=2e9))
            await store.create_token(TokenRecord(id=f"t{index}", token_hash=chr(97 + index) * 64, user=user,
                                                 name="x", created_at=1e9))
        await store.aclose()

    async def left() -> tuple[list[str], list[str]]:
        store = await open_store(url)
        sessions = [u for u in ("ann", "bob") for i in range(3) if (s := await store.get_session(str(i) * 64))
                    and s.user == u]
        tokens = [t.user for u in ("ann", "bob") for t in await store.list_tokens(u)]
        await store.aclose()
        return sessions, tokens

    asyncio.run(seed())
    assert run(monkeypatch, "passwd", "ann", stdin="ann's new long password\n") == 0
    assert "ended 2 sessions and revoked 2 tokens of ann" in capsys.readouterr().err
    assert asyncio.run(left()) == (["bob"], ["bob"])
    assert run(monkeypatch, "remove", "bob") == 0
    assert "ended 1 session and revoked 1 token of bob" in capsys.readouterr().err
    assert asyncio.run(left()) == ([], [])
    assert [line.split(":")[0] for line in env.read_text().splitlines()] == ["ann"]
    assert run(monkeypatch, "remove", "bob") == 1


def test_tokens_are_made_listed_and_revoked_from_the_command_line(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, "add", "ann", stdin="ann's long password\n") == 0
    capsys.readouterr()
    assert run(monkeypatch, "token", "ann", "--name", "nightly eval") == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("llmt_") and len(token) > 40 and "shown only now" in err
    token_id = err.split("token ")[1].split(" ")[0]
    assert run(monkeypatch, "tokens", "ann") == 0
    listed = capsys.readouterr().out
    assert token_id in listed and "nightly eval" in listed and token not in listed
    assert run(monkeypatch, "revoke", "ann", "nope") == 1
    assert run(monkeypatch, "revoke", "ann", token_id) == 0
    assert run(monkeypatch, "tokens", "ann") == 0
    assert "ann has no API tokens" in capsys.readouterr().err
    assert run(monkeypatch, "token", "nobody") == 1

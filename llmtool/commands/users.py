"""`llmtool users`: the logins of the users file, and their API tokens.

    llmtool users add ann --role partner        # asks for the password twice (never on the command line)
    echo "$PW" | llmtool users add ci-bot       # not a terminal: the first line of stdin
    llmtool users passwd ann                    # a new password: her sessions and tokens end
    llmtool users role ann member               # another role, at once (no new login needed)
    llmtool users remove ann                    # gone: her sessions and tokens end
    llmtool users list
    llmtool users token ann --name nightly      # an API token for her scripts, printed once
    llmtool users tokens ann                    # her tokens (never the tokens themselves)
    llmtool users revoke ann 3f2a9c1e7b4d

The users file is `--users-file F`, else `ui.users_file` from the settings (LLMTOOL_UI__USERS_FILE,
`[ui] users_file` in the config). It is rewritten atomically, mode 0600; a server reading it sees the
change within a second. Sessions and tokens live in the run store (`database_url`).

Exit codes: 0 done, 1 no such user or token, 2 bad usage (a short or mismatched password, an unknown
role, a wrong users file, an unusable store).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from llmtool.accounts import passwords
from llmtool.accounts.tokens import end_user_logins, issue, revoke
from llmtool.accounts.users import USERS_ENV, UserEntry, UsersFile, check_name, exposure_warning, parse_users
from llmtool.console import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from llmtool.errors import InvalidRequestError
from llmtool.settings import Settings, load_settings
from llmtool.store import RunStore, StoreError, open_store


def register(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser(
        "users", help="add, change or remove logins; API tokens",
        description="The logins of the users file (user:hash[:role] lines) and their API tokens.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--users-file", type=Path, metavar="FILE",
                        help="the users file (default: ui.users_file from the settings)")
    actions = users.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", parents=[common], help="a new login (asks for its password twice)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", default="member", help="admin, member (default), partner, or a [roles.X] of the config")
    add.set_defaults(handler=_add)

    passwd = actions.add_parser("passwd", parents=[common], help="a new password (ends the user's sessions and tokens)")
    passwd.add_argument("name", metavar="NAME")
    passwd.set_defaults(handler=_passwd)

    role = actions.add_parser("role", parents=[common], help="give a user another role")
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", metavar="ROLE")
    role.set_defaults(handler=_role)

    remove = actions.add_parser("remove", parents=[common], help="remove a login (ends its sessions and tokens)")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=_remove)

    actions.add_parser("list", parents=[common], help="the users and their roles").set_defaults(handler=_list)

    token = actions.add_parser("token", parents=[common], help="make an API token for a user (printed once)")
    token.add_argument("name", metavar="NAME")
    token.add_argument("--name", dest="label", default="", metavar="LABEL", help="what the token is for")
    token.set_defaults(handler=_token)

    tokens = actions.add_parser("tokens", help="a user's API tokens (not the tokens themselves)")
    tokens.add_argument("name", metavar="NAME")
    tokens.set_defaults(handler=_tokens)

    revoke_ = actions.add_parser("revoke", help="revoke one of a user's API tokens")
    revoke_.add_argument("name", metavar="NAME")
    revoke_.add_argument("token_id", metavar="ID")
    revoke_.set_defaults(handler=_revoke)


# -- the handlers ---------------------------------------------------------------------------------
def _add(args: argparse.Namespace) -> int:
    settings, users = _open(args)
    _valid_name(args.name)
    if args.role not in settings.roles:
        raise InvalidRequestError(f"--role {args.role}: the roles are {', '.join(sorted(settings.roles))} "
                                  f"(a new one is defined under [roles.{args.role}] in the config file)")
    if args.name in users.users():
        raise InvalidRequestError(f"{args.name} is already a user of {users.path}: "
                                  f"`llmtool users passwd {args.name}` sets a new password")
    password = read_password(args.name, settings.accounts.min_password_length)
    users.put(UserEntry(args.name, passwords.hash_password(password), args.role, ""))
    print(f"· added {args.name} ({args.role}) to {users.path}", file=sys.stderr)
    _env_notice(args.name)
    return EXIT_OK


def _passwd(args: argparse.Namespace) -> int:
    settings, users = _open(args)
    entry = users.users().get(args.name)
    if entry is None:
        return _no_user(args.name, users)
    password = read_password(args.name, settings.accounts.min_password_length)
    users.put(UserEntry(entry.name, passwords.hash_password(password), entry.role, ""))
    print(f"· new password for {args.name} in {users.path}", file=sys.stderr)
    _env_notice(args.name)
    return _end_logins(settings, args.name)


def _role(args: argparse.Namespace) -> int:
    settings, users = _open(args)
    entry = users.users().get(args.name)
    if entry is None:
        return _no_user(args.name, users)
    if args.role not in settings.roles:
        raise InvalidRequestError(f"{args.role}: the roles are {', '.join(sorted(settings.roles))}")
    users.put(UserEntry(entry.name, entry.hash, args.role, ""))
    print(f"· {args.name} is now {args.role}", file=sys.stderr)
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    settings, users = _open(args)
    if not users.remove(args.name):
        return _no_user(args.name, users)
    print(f"· removed {args.name} from {users.path}", file=sys.stderr)
    _env_notice(args.name)
    return _end_logins(settings, args.name)


def _list(args: argparse.Namespace) -> int:
    settings, users = _open(args)
    listed = {name: (entry, str(users.path)) for name, entry in users.users().items()}
    if os.environ.get(USERS_ENV):
        for name, entry in parse_users(os.environ[USERS_ENV], USERS_ENV, settings.roles).items():
            listed[name] = (entry, USERS_ENV)
    if not listed:
        print(f"no users in {users.path}", file=sys.stderr)
        return EXIT_OK
    width = max(len(name) for name in listed)
    for name, (entry, source) in sorted(listed.items()):
        how = "no password" if entry.hash == passwords.NO_PASSWORD else passwords.kind(entry.hash)
        print(f"{name:<{width}}  {entry.role:<8}  {how}" + (f"  (from {USERS_ENV})" if source == USERS_ENV else ""))
    return EXIT_OK


def _token(args: argparse.Namespace) -> int:
    settings, users = _open(args)
    entry = users.users().get(args.name)
    if entry is None:
        return _no_user(args.name, users)

    async def body(store: RunStore) -> int:
        token, record = await issue(store, entry.name, args.label or "made with llmtool users token", entry.stamp)
        print(token)
        print(f"· token {record.id} for {entry.name}: shown only now; send it as `Authorization: Bearer …`; "
              f"`llmtool users revoke {entry.name} {record.id}` revokes it", file=sys.stderr)
        return EXIT_OK

    return _with_store(settings, body)


def _tokens(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)

    async def body(store: RunStore) -> int:
        found = await store.list_tokens(args.name)
        if not found:
            print(f"{args.name} has no API tokens", file=sys.stderr)
        for record in found:
            used = _when(record.last_used) if record.last_used is not None else "never used"
            print(f"{record.id}  {_when(record.created_at)}  {used:<16}  {record.name}")
        return EXIT_OK

    return _with_store(settings, body)


def _revoke(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)

    async def body(store: RunStore) -> int:
        if not await revoke(store, None, args.name, args.token_id):
            print(f"llmtool: {args.name} has no token {args.token_id}", file=sys.stderr)
            return EXIT_FAILED
        print(f"· revoked token {args.token_id} of {args.name} (servers stop taking it within seconds)",
              file=sys.stderr)
        return EXIT_OK

    return _with_store(settings, body)


# -- helpers --------------------------------------------------------------------------------------
def read_password(name: str, minimum: int, stdin: TextIO | None = None) -> str:
    """The new password: asked twice on a terminal (never echoed); otherwise the first line of stdin."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        password = getpass.getpass(f"New password for {name}: ")
        if getpass.getpass("The same again: ") != password:
            raise InvalidRequestError("the two passwords differ; nothing was changed")
    else:
        password = stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidRequestError("no password given; nothing was changed")
    if len(password) < minimum:
        raise InvalidRequestError(f"the password has {len(password)} characters; at least {minimum} are needed "
                                  "(accounts.min_password_length); nothing was changed")
    if password.strip().casefold() == name.casefold():
        raise InvalidRequestError("the password cannot be the user name; nothing was changed")
    return password


def _open(args: argparse.Namespace) -> tuple[Settings, UsersFile]:
    settings = load_settings(args.config)
    path = args.users_file or settings.ui.users_file
    if path is None:
        raise InvalidRequestError("which users file? give --users-file FILE (or set ui.users_file, "
                                  "LLMTOOL_UI__USERS_FILE)")
    users = UsersFile(Path(path).expanduser(), settings.roles)
    warning = exposure_warning(users.path)
    if warning is not None:
        print(f"llmtool: warning: {warning}", file=sys.stderr)
    return settings, users


def _valid_name(name: str) -> None:
    problem = check_name(name)
    if problem is not None:
        raise InvalidRequestError(problem)


def _no_user(name: str, users: UsersFile) -> int:
    print(f"llmtool: {name} is not a user of {users.path}", file=sys.stderr)
    return EXIT_FAILED


def _env_notice(name: str) -> None:
    if any(line.split(":", 1)[0].strip() == name for line in os.environ.get(USERS_ENV, "").splitlines()):
        print(f"llmtool: note: {USERS_ENV} also names {name}, and a server takes that entry over the file's",
              file=sys.stderr)


def _end_logins(settings: Settings, name: str) -> int:
    async def body(store: RunStore) -> int:
        sessions, tokens = await end_user_logins(store, name)
        print(f"· ended {sessions} session{'' if sessions == 1 else 's'} and revoked {tokens} "
              f"token{'' if tokens == 1 else 's'} of {name}", file=sys.stderr)
        return EXIT_OK

    code = _with_store(settings, body)
    if code != EXIT_OK:
        print(f"llmtool: {name}'s sessions and tokens stop working anyway at their next use (they were made "
              "under the old password)", file=sys.stderr)
        return EXIT_OK
    return code


def _with_store(settings: Settings, body: Callable[[RunStore], Awaitable[int]]) -> int:
    async def main() -> int:
        try:
            store = await open_store(settings.database_url)
        except StoreError as error:
            print(f"llmtool: cannot open the run store: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        try:
            return await body(store)
        except StoreError as error:
            print(f"llmtool: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        except SQLAlchemyError as error:
            print(f"llmtool: the run store failed: {type(error).__name__}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            await store.aclose()

    return asyncio.run(main())


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")

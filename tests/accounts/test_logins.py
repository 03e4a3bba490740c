"""Password checks: throttled before hashing, off the event loop, a dummy check for unknown users, a
short memory of verified credentials; the users file read again when it changes; principals."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llmtool.accounts import Accounts, MemoryThrottle, passwords
from llmtool.accounts.throttle import throttle_keys
from llmtool.settings import LoginThrottle, load_settings
from tests.accounts.support import CHEAP, htpasswd_bcrypt, users_file

THROTTLE = {"free_failures": 2, "delay": 0.05, "lock_after": 5, "lock_minutes": 1, "window_minutes": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def accounts_for(path: Path, **options: Any) -> Accounts:
    settings = load_settings(accounts={"throttle": THROTTLE}, roles={"auditor": {"models": ["demo:*"]}})
    return Accounts(settings, users_file=path, **options)


# -- the throttle alone, on a clock the test moves ------------------------------------------------
async def test_failures_are_free_then_slowed_then_locked_and_a_lock_ends() -> None:
    clock = Clock()
    throttle = MemoryThrottle(LoginThrottle(free_failures=3, delay=1.0, lock_after=6, lock_minutes=15), clock)
    keys = throttle_keys("Ann", "203.0.113.9")
    delays = []
    for _ in range(5):
        assert await throttle.refusal(keys) is None
        delays.append((await throttle.failure(keys)).delay)
        clock.now += 10
    assert delays == [0, 0, 0, 1.0, 2.0]  # three free, then growing
    clock.now -= 9.5  # half a second after the 5th failure: too soon
    early = await throttle.refusal(keys)
    assert early is not None and not early.locked and early.seconds == 2
    assert "wait 2 seconds" in early.message
    clock.now += 9.5
    locked = (await throttle.failure(keys)).locked  # the 6th: locked
    assert locked is not None and locked.seconds == 900 and "locked for 15 minutes" in locked.message
    clock.now += 14 * 60
    still = await throttle.refusal(["user:ann"])  # the user name (any case) is locked…
    assert still is not None and still.locked
    assert await throttle.refusal(["address:203.0.113.9"]) is not None  # …and so is the address
    assert await throttle.refusal(throttle_keys("bob", "198.51.100.1")) is None  # others are not
    clock.now += 61
    assert await throttle.refusal(keys) is None  # the lock ended; the free failures are free again
    assert (await throttle.failure(keys)).delay == 0


async def test_a_success_forgets_the_user_names_failures_not_the_addresss() -> None:
    clock = Clock()
    throttle = MemoryThrottle(LoginThrottle(free_failures=1, delay=1.0, lock_after=10), clock)
    for _ in range(3):
        await throttle.failure(throttle_keys("ann", "10.0.0.1"))
        clock.now += 100
    await throttle.success(throttle_keys("ann", "10.0.0.1"))
    assert (await throttle.failure(throttle_keys("ann", "10.0.0.2"))).delay == 0  # ann starts afresh
    assert (await throttle.failure(throttle_keys("bob", "10.0.0.1"))).delay == 3.0  # 10.0.0.1 does not


# -- accounts -------------------------------------------------------------------------------------
async def test_right_wrong_unknown_and_roles(tmp_path: Path) -> None:
    path = users_file(tmp_path, {"ann": "ann's password", "carl": "carl's password"}, {"carl": "auditor"})
    path.write_text(path.read_text() + f"bob:{htpasswd_bcrypt('bob password')}:partner\n")
    accounts = accounts_for(path)
    assert (await accounts.authenticate("ann", "ann's password", "10.0.0.1")).user == "ann"
    assert (await accounts.authenticate("bob", "bob password", "10.0.0.1")).user == "bob"
    assert (await accounts.authenticate("ann", "wrong", "10.0.0.1")).user is None
    assert (await accounts.authenticate("nobody", "ann's password", "10.0.0.1")).user is None
    ann, bob, carl = (accounts.principal(name) for name in ("ann", "bob", "carl"))
    assert ann is not None and ann.role == "member" and ann.may_use_model("openai:gpt-4.1")
    assert bob is not None and bob.role == "partner" and not bob.may_use_model("openai:gpt-4.1")
    assert carl is not None and carl.role == "auditor" and carl.may_use_model("demo:echo")
    assert accounts.principal("nobody") is None and accounts.principal(None) is None


async def test_checks_run_off_the_event_loop_two_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = accounts_for(users_file(tmp_path, {"ann": "ann's password"}), cache_seconds=0)
    loop_thread, running, most = threading.get_ident(), [0], [0]
    real = passwords.verify

    def slow_verify(password: str, hashed: str) -> bool:
        assert threading.get_ident() != loop_thread
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.05)
        running[0] -= 1
        return real(password, hashed)

    monkeypatch.setattr(passwords, "verify", slow_verify)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    beat = asyncio.create_task(ticker())
    outcomes = await asyncio.gather(*(accounts.authenticate("ann", "ann's password", f"10.0.0.{i}") for i in range(6)))
    beat.cancel()
    assert all(outcome.user == "ann" for outcome in outcomes)
    assert most[0] == 2  # a couple at a time, never more
    assert ticks >= 20  # ~0.15 s of checking: the loop went on ticking meanwhile


async def test_an_unknown_user_costs_a_check_at_the_users_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = accounts_for(users_file(tmp_path, {"ann": "ann's password"}))
    checked: list[str] = []
    real = passwords.verify
    monkeypatch.setattr(passwords, "verify", lambda password, hashed: checked.append(hashed) or real(password, hashed))
    assert (await accounts.authenticate("mallory", "guess", None)).user is None
    assert len(checked) == 1
    ann_cost = accounts.users()["ann"].hash.split("$")[3]
    assert checked[0].startswith("$argon2id$") and checked[0].split("$")[3] == ann_cost == "m=8,t=1,p=1"


async def test_verified_credentials_are_remembered_briefly_and_forgotten_on_a_new_password(tmp_path: Path,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = users_file(tmp_path, {"ann": "ann's password"})
    clock = Clock()
    accounts = accounts_for(path, clock=clock, cache_seconds=60)
    checked: list[str] = []
    real = passwords.verify
    monkeypatch.setattr(passwords, "verify", lambda password, hashed: checked.append(hashed) or real(password, hashed))
    for _ in range(3):
        assert (await accounts.authenticate("ann", "ann's password", None)).user == "ann"
    assert len(checked) == 1  # one hash check, then the memory
    assert (await accounts.authenticate("ann", "ann's passwordX", None)).user is None and len(checked) == 2
    clock.now += 61
    assert (await accounts.authenticate("ann", "ann's password", None)).user == "ann" and len(checked) == 3
    users_file(tmp_path, {"ann": "a new password!"})  # passwd: the old one is forgotten at once
    clock.now += 1
    assert (await accounts.authenticate("ann", "ann's password", None)).user is None
    assert (await accounts.authenticate("ann", "a new password!", None)).user == "ann"


async def test_the_right_password_during_a_lock_out_is_refused_without_hashing(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = accounts_for(users_file(tmp_path, {"ann": "ann's password"}))
    outcomes = [await accounts.authenticate("ann", f"guess {i}", "10.0.0.9") for i in range(5)]
    assert [o.refusal is not None for o in outcomes] == [False, False, False, False, True]
    checked: list[str] = []
    monkeypatch.setattr(passwords, "verify", lambda password, hashed: checked.append(hashed) or True)
    locked = await accounts.authenticate("ann", "ann's password", "10.0.0.1")
    assert locked.user is None and locked.refusal is not None and locked.refusal.locked and checked == []
    other = await accounts.authenticate("bob", "whatever", "10.0.0.9")  # the address is locked too
    assert other.refusal is not None and checked == []


async def test_parallel_guesses_do_not_get_past_the_throttle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = accounts_for(users_file(tmp_path, {"ann": "ann's password"}))
    checked: list[str] = []
    real = passwords.verify
    monkeypatch.setattr(passwords, "verify", lambda password, hashed: checked.append(hashed) or real(password, hashed))
    outcomes = await asyncio.gather(*(accounts.authenticate("ann", f"guess {i}", "10.0.0.9") for i in range(50)))
    assert sum(o.refusal is not None for o in outcomes) >= 45
    assert len(checked) <= 4  # two free failures, then the next try waits: the rest refused unhashed


async def test_the_file_is_read_again_when_it_changes_and_a_broken_edit_keeps_the_last_users(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = users_file(tmp_path, {"ann": "ann's password"})
    clock = Clock()
    accounts = accounts_for(path, clock=clock)
    users_file(tmp_path, {"ann": "ann's password", "bob": "bob's password"}, {"bob": "partner"})
    assert accounts.principal("bob") is None  # not looked at again within a second
    clock.now += 1.1
    bob = accounts.principal("bob")
    assert bob is not None and bob.role == "partner"
    stamp = accounts.stamp("ann")
    path.write_text(path.read_text() + "carl:plain-text\n")
    clock.now += 1.1
    with caplog.at_level(logging.ERROR):
        assert accounts.principal("bob") is not None and accounts.stamp("ann") == stamp
    assert "the users file changed but cannot be used" in caplog.text and "line 3" in caplog.text
    users_file(tmp_path, {"bob": "bob's password"})
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1))
    clock.now += 1.1
    assert accounts.principal("ann") is None and accounts.stamp("ann") is None  # removed
    assert accounts.principal("bob") is not None and accounts.principal("bob").role == "member"  # type: ignore[union-attr]


def test_a_stamp_changes_with_the_password_only(tmp_path: Path) -> None:
    path = users_file(tmp_path, {"ann": "ann's password"})
    first = Accounts(load_settings(), users_file=path).stamp("ann")
    path.write_text(path.read_text().strip() + ":partner\n")  # another role, the same hash
    assert Accounts(load_settings(), users_file=path).stamp("ann") == first
    users_file(tmp_path, {"ann": "another password"})
    assert Accounts(load_settings(), users_file=path).stamp("ann") not in (first, None)


def test_a_bare_check_is_throttled_too_and_everyone_is_a_member() -> None:
    accounts = Accounts(load_settings(), check=lambda user, password: password == "pw")
    assert accounts.check("x", "pw") and accounts.stamp("anyone") == ""
    member = accounts.principal("anyone")
    assert member is not None and member.role == "member"
    assert isinstance(accounts.throttle, MemoryThrottle)


def test_no_users_configured_is_no_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLMTOOL_USERS", raising=False)
    assert Accounts.load(load_settings()) is None
    empty = tmp_path / "users.txt"
    empty.write_text("# nobody yet\n")
    accounts = Accounts.load(load_settings(ui={"users_file": str(empty)}))
    assert accounts is not None and accounts.users() == {}  # a file, even empty, means logins


def test_cheap_test_hashes_are_cheap_and_production_ones_are_not() -> None:
    cheap, real = CHEAP.hash("pw"), passwords.hash_password("pw")
    started = time.perf_counter()
    passwords.verify("pw", cheap)
    cheap_cost = time.perf_counter() - started
    started = time.perf_counter()
    passwords.verify("pw", real)
    assert time.perf_counter() - started > 5 * cheap_cost


async def test_a_line_without_a_password_never_logs_in_by_password_but_by_proxy(tmp_path: Path) -> None:
    path = users_file(tmp_path, {"ann": "ann's password"})
    path.write_text(path.read_text() + "sso-only:!:partner\n")
    settings = load_settings(accounts={"trusted_proxies": ["10.0.0.0/8"], "proxy_user_header": "X-Forwarded-User"})
    accounts = Accounts(settings, users_file=path)
    assert (await accounts.authenticate("sso-only", "!", None)).user is None
    assert (await accounts.authenticate("sso-only", "", None)).user is None
    assert accounts.proxy_user("10.1.2.3", {"x-forwarded-user": "sso-only"}) == "sso-only"
    assert accounts.proxy_user("192.0.2.1", {"x-forwarded-user": "sso-only"}) is None  # not a trusted peer
    assert accounts.proxy_user("10.1.2.3", {"x-forwarded-user": "mallory"}) is None  # not a user
    assert accounts.client("10.1.2.3", "198.51.100.7, 10.0.0.5") == "198.51.100.7"
    assert accounts.client("192.0.2.1", "198.51.100.7") == "192.0.2.1"  # a claim from an untrusted peer

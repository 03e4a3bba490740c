"""Logins and what they may do: users, roles, passwords, throttling, tokens.

    principal.py   Principal(user, role, policy): what a login's role lets it do
    logins.py      Accounts: the users file and LLMTOOL_USERS, password checks (throttled, off the loop),
                   the reverse-proxy header; `accounts.principal(user)`
    users.py       the users file: `user:hash[:role]` lines, parsed, checked, rewritten atomically
    passwords.py   argon2 (new) and bcrypt (htpasswd -B) hashes, through pwdlib
    throttle.py    slowing down and locking out password guesses, per user name and client address
    tokens.py      API tokens for scripts (Bearer), kept as SHA-256 in the run store
    network.py     the client's address and trusted reverse proxies
"""

from llmtool.accounts.logins import Accounts, Outcome, PasswordCheck
from llmtool.accounts.principal import Principal
from llmtool.accounts.throttle import MemoryThrottle, Refusal, Throttle

__all__ = ["Accounts", "MemoryThrottle", "Outcome", "PasswordCheck", "Principal", "Refusal", "Throttle"]

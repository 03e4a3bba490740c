"""Logins and what they may do: users, roles, passwords, throttling, tokens (see principal.py)."""

from llmtool.accounts.principal import Principal

__all__ = ["Principal"]

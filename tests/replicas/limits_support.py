"""What the tests of limits shared across replicas use: roles with limits, the logins of those roles,
and a replica in a process of its own for the test that kills it.

    python -m tests.replicas.limits_support DATABASE_URL REDIS_URL LEASE

The process opens a service on the shared store with its limits in Redis (entries living `LEASE`
seconds without renewal), starts one long demo run as ann (a login whose role runs one at a time),
says `run ID` once the run streams, and waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from llmtool.accounts.principal import Principal
from llmtool.replicas.limits import share_limits
from llmtool.service import LLMService, RunOrigin, RunRequest
from llmtool.settings import Settings
from tests.replicas.conftest import replica_settings, words

# ann and dan run one at a time (five a minute); bob starts three a minute, as many at once as he likes;
# cat has a budget.
ROLES: dict[str, Any] = {
    "partner": {"models": ["demo:*", "openai:gpt-4.1*"], "max_concurrent_runs": 1, "runs_per_minute": 5},
    "metered": {"models": ["demo:*"], "runs_per_minute": 3},
    "budgeted": {"models": ["demo:*", "openai:gpt-4.1*"], "daily_budget": 0.5},
}
ROLE_OF = {"ann": "partner", "bob": "metered", "cat": "budgeted", "dan": "partner"}
RENEW_EVERY = 0.1  # seconds between renewals of a replica's entries in the tests


def limited_settings(database_url: str, redis_url: str | None, **overrides: Any) -> Settings:
    return replica_settings(database_url, redis_url, roles=ROLES, **overrides)


def principals(settings: Settings) -> Callable[[str], Principal | None]:
    def find(user: str) -> Principal | None:
        role = ROLE_OF.get(user)
        return None if role is None else Principal(user=user, role=role, policy=settings.roles[role])

    return find


def origin(user: str) -> RunOrigin:
    return RunOrigin(user=user, source="api")


async def main(database_url: str, redis_url: str, lease: float) -> None:
    settings = limited_settings(database_url, redis_url)
    service = await LLMService.open(settings, principals=principals(settings))
    share_limits(service, None, redis_url, lease=lease, renew_every=RENEW_EVERY)
    run = await service.submit(RunRequest(prompt=words(20_000)), origin("ann"))  # ~50 s: killed long before
    async for _ in run.events():
        if len(run.log) >= 5:
            break
    print(f"run {run.id}", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))

"""`GET /healthz` and `GET /readyz`: a load balancer's probes. No login.

    GET /healthz   200 {"status": "ok"} while the process serves HTTP (no service call)
    GET /readyz    200 {"status": "ready"} while this replica takes new runs; else 503
                   {"status": "draining" | "unavailable", "reason": "…"}

Ready means: not draining (SIGTERM was received, `drain.py`), the run store answers a `SELECT 1`,
and Redis (when `redis_url` is set) answers PING, each within `CHECK_TIMEOUT`. The answer is kept
for `CACHE_SECONDS`, so a balancer probing every replica often costs one query a second at most;
draining is reported at once (it needs no query).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Depends
from starlette.responses import JSONResponse

from llmtool.web.context import AppContext, context_dependency

router = APIRouter()
CHECK_TIMEOUT = 1.0  # seconds the store, then Redis, get to answer
CACHE_SECONDS = 1.0


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(context: AppContext = Depends(context_dependency)) -> JSONResponse:  # noqa: B008
    service = context.started_service()
    if service is not None and service.draining:
        return _answer(503, "draining", "the server is draining (shutting down): it takes no new runs")
    cached = context.readiness
    now = time.monotonic()
    if cached is None or now - cached[0] > CACHE_SECONDS:
        cached = (now, await _problem(context))
        context.readiness = cached
    problem = cached[1]
    if problem is not None:
        return _answer(503, "unavailable", problem)
    return _answer(200, "ready", None)


def _answer(status: int, word: str, reason: str | None) -> JSONResponse:
    body: dict[str, Any] = {"status": word}
    if reason is not None:
        body["reason"] = reason
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


async def _problem(context: AppContext) -> str | None:
    """Why this replica cannot take runs now (one sentence), or None."""
    service = context.started_service()
    if service is None or service.store is None:
        return "the server is starting: the run store is not open yet"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await service.store.ping()
    except Exception as error:  # a timeout, a refused connection, a broken database: not ready
        return f"the run store does not answer ({_why(error)})"
    replicas = context.replicas
    if replicas is not None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await replicas.client.ping()
        except Exception as error:
            return f"Redis does not answer ({_why(error)})"
    return None


def _why(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:g} s"
    return type(error).__name__

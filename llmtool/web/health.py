"""`GET /healthz`: the process serves HTTP. No login, no service call: a load balancer's probe."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}

"""`/api/tokens`: API tokens for a user's scripts, made and revoked under their own login.

    curl -su ann -X POST localhost:7860/api/tokens -H 'content-type: application/json' -d '{"name": "nightly"}'
    # 201 {"id": "3f2a9c1e7b4d", "name": "nightly", "token": "llmt_…", …}   (the token is shown only now)
    curl -H 'Authorization: Bearer llmt_…' localhost:7860/api/runs
    curl -su ann localhost:7860/api/tokens                      # her tokens, never the tokens themselves
    curl -su ann -X DELETE localhost:7860/api/tokens/3f2a9c1e7b4d   # 204: revoked

A token is made with the password (HTTP Basic) or a login session, never with another token (a
leaked token cannot make more that outlive it). Each user sees and revokes only their own: another's
id is 404. `llmtool users token NAME` makes one from the server's command line.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from llmtool.accounts.tokens import MAX_NAME, issue, revoke
from llmtool.settings import describe_validation_error
from llmtool.store import RunStore, StoreError
from llmtool.store.tokens import TokenRecord
from llmtool.web import apidocs
from llmtool.web.api_body import read_json
from llmtool.web.basic_auth import api_user
from llmtool.web.context import AppContext, context_dependency
from llmtool.web.problems import Problem

router = APIRouter(prefix="/tokens", tags=["tokens"])
Context = Annotated[AppContext, Depends(context_dependency)]
User = Annotated[str | None, Depends(api_user)]


class NewToken(BaseModel):
    name: str = Field("", max_length=MAX_NAME, description="What the token is for (shown in the list).")


class TokenInfo(BaseModel):
    id: str = Field(description="Names the token to revoke it: DELETE /api/tokens/{id}.")
    name: str
    created_at: float
    last_used: float | None = Field(description="Unix time of its last use (noted at most once a minute).")


class CreatedToken(TokenInfo):
    token: str = Field(description="Send as `Authorization: Bearer …`. Shown only in this answer; only a hash is kept.")


class TokenList(BaseModel):
    tokens: list[TokenInfo]


@router.post("", status_code=201, response_model=CreatedToken,
             responses=apidocs.problems(401, 413, 415, 422, 429, 503))
async def create_token(request: Request, context: Context, user: User) -> JSONResponse:
    """Make an API token for your scripts; the token is in this answer only."""
    owner, store = _owner(context, user)
    if getattr(request.state, "login_method", None) == "token":
        raise Problem("unauthorized", "a token cannot make another token: use your password (HTTP Basic) "
                      "or log in at /login", headers={"WWW-Authenticate": 'Basic realm="llmtool", charset="UTF-8"'})
    try:
        body = NewToken.model_validate(await read_json(request, limit=4096))
    except ValidationError as exc:
        raise Problem("invalid-request", describe_validation_error(exc)) from None
    accounts = context.accounts
    assert accounts is not None
    try:
        token, record = await issue(store, owner, body.name, accounts.stamp(owner))
    except StoreError as error:
        raise Problem("invalid-request" if "revoke one first" in error.message else "store-unavailable",
                      error.message) from None
    created = CreatedToken(token=token, **_info(record).model_dump())
    return JSONResponse(created.model_dump(), status_code=201, headers={
        "Location": f"/api/tokens/{record.id}", "Cache-Control": "no-store"})


@router.get("", response_model=TokenList, responses=apidocs.problems(401, 503))
async def list_tokens(context: Context, user: User) -> TokenList:
    """Your API tokens, oldest first (never the tokens themselves)."""
    owner, store = _owner(context, user)
    accounts = context.accounts
    assert accounts is not None
    current = accounts.stamp(owner)
    found = await store.list_tokens(owner)
    return TokenList(tokens=[_info(record) for record in found if record.stamp == current])


@router.delete("/{token_id}", status_code=204, responses=apidocs.problems(401, 404, 503))
async def delete_token(token_id: str, context: Context, user: User) -> Response:
    """Revoke one of your tokens: it stops working at once in this process, within seconds in others."""
    owner, store = _owner(context, user)
    accounts = context.accounts
    assert accounts is not None
    try:
        revoked = await revoke(store, accounts.tokens, owner, token_id[:40])
    except StoreError as error:
        raise Problem("store-unavailable", error.message) from None
    if not revoked:
        raise Problem("not-found", f"you have no API token {token_id[:40]}")
    return Response(status_code=204)


def _owner(context: AppContext, user: str | None) -> tuple[str, RunStore]:
    if user is None or context.accounts is None:
        raise Problem("not-found", "this server has no logins, so no API tokens: anyone who can reach it may use /api")
    store = context.service.store
    if store is None:
        raise Problem("store-unavailable", "API tokens are kept in the run store, which is not open")
    return user, store


def _info(record: TokenRecord) -> TokenInfo:
    return TokenInfo(id=record.id, name=record.name, created_at=record.created_at, last_used=record.last_used)

"""Key management over HTTP, for admins (the CLI does the same: `fraudagent keys`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from fraudagent.api import problems
from fraudagent.api.deps import Caller, CallerDep, TablesDep, require_role
from fraudagent.store import keys as key_store
from fraudagent.store.keys import ApiKey, Role

router = APIRouter(prefix="/v1/keys", tags=["keys"], responses=problems.responses(*problems.AUTHED))
AdminDep = Annotated[Caller, Depends(require_role("admin"))]
me_router = APIRouter(prefix="/v1", tags=["keys"], responses=problems.responses(*problems.AUTHED))


class KeyRequest(BaseModel):
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9 ._:\-]+$",
        description="who holds the key (it is logged: no emails)",
    )
    roles: list[Role] = Field(min_length=1, max_length=4)


class CreatedKey(BaseModel):
    key: ApiKey
    secret: str = Field(description="the API key; shown this once, only its hash is stored")


class KeyList(BaseModel):
    items: list[ApiKey]


@router.post("", response_model=CreatedKey, status_code=status.HTTP_201_CREATED)
async def create_key(body: KeyRequest, history: TablesDep, caller: AdminDep) -> CreatedKey:
    key, secret = await run_in_threadpool(
        key_store.create_key, history, name=body.name, roles=list(body.roles), created_by=caller.name
    )
    return CreatedKey(key=key, secret=secret)


@router.get("", response_model=KeyList)
def list_keys(history: TablesDep, _: AdminDep) -> KeyList:
    return KeyList(items=key_store.list_keys(history))


@router.delete("/{key_id}", response_model=ApiKey, responses=problems.responses(404, 409))
def revoke_key(
    request: Request,
    key_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")],
    history: TablesDep,
    caller: AdminDep,
) -> ApiKey:
    """Revoke a key; it stops working on this replica at once, elsewhere within the key cache time."""
    revoked = key_store.revoke_key(history, key_id=key_id, revoked_by=caller.name)
    request.app.state.keys.forget(key_id)
    return revoked


@me_router.get("/me", response_model=Caller)
def whoami(caller: CallerDep) -> Caller:
    """Who the presented key belongs to: its key id (never the secret), name and roles. Any valid key; the console
    uses it to decide what to show."""
    return caller

"""FastAPI dependencies: settings, stores, the investigator, and API-key auth with roles and rate limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from fraudagent.agent.pipeline import Investigator
from fraudagent.core.settings import Settings
from fraudagent.keys.service import LookupThrottled
from fraudagent.store.keys import Role
from fraudagent.store.tables import Tables

__all__ = ["Caller", "CallerDep", "InvestigatorDep", "Role", "SettingsDep", "TablesDep", "require_key", "require_role"]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


class Caller(BaseModel):
    """Who is calling: the key's id (never the key), its name and its roles."""

    key_id: str
    name: str
    roles: list[Role]

    def has(self, *roles: Role) -> bool:
        return "admin" in self.roles or any(r in self.roles for r in roles)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_investigator(request: Request) -> Investigator:
    return request.app.state.investigator


def get_tables(investigator: Annotated[Investigator, Depends(get_investigator)]) -> Tables:
    return investigator.history


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Every route but health needs an API key; returns who is calling, for the audit record.

    The configured key (FRAUDAGENT_API_KEY) is the bootstrap admin key; other keys are stored hashed in
    DynamoDB (`fraudagent keys create`). A missing, unknown, wrong or revoked key is 401; a key over its
    rate limit is 429 with Retry-After, and so is a client address over its limit of key look-ups in the
    store (checked before the read: made-up keys cost no DynamoDB read beyond that limit).
    """
    identity = None
    if credentials is not None:
        try:
            identity = request.app.state.keys.identify(
                credentials.credentials, client=request.client.host if request.client else None
            )
        except LookupThrottled as throttled:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS, str(throttled), headers={"Retry-After": str(throttled.retry_after)}
            ) from None
    if identity is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid API key is required (Authorization: Bearer <key>)")
    request.state.key_id = identity.key_id  # for the access log
    wait = request.app.state.rate_limiter.admit(identity.key_id)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"more than {request.app.state.rate_limiter.per_minute} requests a minute with this key; retry after"
            f" {wait} s",
            headers={"Retry-After": str(wait)},
        )
    return Caller(key_id=identity.key_id, name=identity.name, roles=identity.roles)


def require_role(*roles: Role) -> Callable[..., Caller]:
    """A dependency that admits a caller holding any of `roles` (admin holds all)."""

    def check(caller: Annotated[Caller, Depends(require_key)]) -> Caller:
        if not caller.has(*roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this route needs the role {' or '.join(roles)}")
        return caller

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
InvestigatorDep = Annotated[Investigator, Depends(get_investigator)]
TablesDep = Annotated[Tables, Depends(get_tables)]
CallerDep = Annotated[Caller, Depends(require_key)]

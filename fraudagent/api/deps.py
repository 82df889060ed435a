"""FastAPI dependencies: settings, stores, the investigator, and API-key auth."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from fraudagent.agent.pipeline import Investigator
from fraudagent.core.settings import Settings
from fraudagent.tools.history import History

_bearer = HTTPBearer(auto_error=False, description="API key")

Role = Literal["analyst", "ticketing", "evaluator", "admin"]


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


def get_history(investigator: Annotated[Investigator, Depends(get_investigator)]) -> History:
    return investigator.history


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Every route but health needs an API key; returns who is calling, for the audit record.

    The configured key (FRAUDAGENT_API_KEY) is the bootstrap admin key.
    """
    expected = request.app.state.settings.api_key
    if credentials is None or expected is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid API key is required (Authorization: Bearer <key>)")
    return Caller(key_id="bootstrap", name="bootstrap admin key", roles=["admin"])


def require_role(*roles: Role) -> Callable[..., Caller]:
    """A dependency that admits a caller holding any of `roles` (admin holds all)."""

    def check(caller: Annotated[Caller, Depends(require_key)]) -> Caller:
        if not caller.has(*roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this route needs the role {' or '.join(roles)}")
        return caller

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
InvestigatorDep = Annotated[Investigator, Depends(get_investigator)]
HistoryDep = Annotated[History, Depends(get_history)]
CallerDep = Annotated[Caller, Depends(require_key)]

"""FastAPI dependencies: settings, stores, the investigator, and API-key auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fraudagent.agent.pipeline import Investigator
from fraudagent.core.settings import Settings
from fraudagent.tools.history import History

_bearer = HTTPBearer(auto_error=False, description="API key")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_investigator(request: Request) -> Investigator:
    return request.app.state.investigator


def get_history(investigator: Annotated[Investigator, Depends(get_investigator)]) -> History:
    return investigator.history


def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Every route but health needs the API key; returns who is calling, for the audit record."""
    expected = request.app.state.settings.api_key
    if credentials is None or expected is None or not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "a valid API key is required (Authorization: Bearer <key>)")
    return "api-key"


SettingsDep = Annotated[Settings, Depends(get_settings)]
InvestigatorDep = Annotated[Investigator, Depends(get_investigator)]
HistoryDep = Annotated[History, Depends(get_history)]
CallerDep = Annotated[str, Depends(require_key)]

"""Chat requests, stored messages and sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_ID = r"^S-[0-9a-f]{32}$"


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str | None = Field(
        default=None, pattern=SESSION_ID, description="continue this session; omit to start one"
    )
    message: str = Field(min_length=1, max_length=2000, description="the analyst's question")


class ChatMessage(BaseModel):
    n: int = Field(description="position in the session, from 1")
    role: Literal["analyst", "assistant"]
    text: str
    at: datetime
    by: str | None = Field(default=None, description="the caller's key name (analyst messages)")
    cited_ids: list[str] = Field(default_factory=list)
    tool_used: str | None = None
    model_unavailable: bool = False


class ChatSession(BaseModel):
    session_id: str
    case_id: str
    created_at: datetime
    created_by: str
    messages: list[ChatMessage]


class ChatFinal(BaseModel):
    """The data of the stream's `final` event."""

    session_id: str
    answer: str
    cited_ids: list[str] = Field(description="only ids that resolve in the case's evidence pack")
    unresolved_ids: list[str] = Field(
        description="ids the model wrote that are not this case's evidence (dropped from cited_ids)"
    )
    tool_used: str
    model_unavailable: bool
    model: str
    first_token_s: float | None
    model_wait_s: float | None = Field(
        default=None, description="of first_token_s, seconds spent waiting for the model (other callers ahead)"
    )
    total_s: float

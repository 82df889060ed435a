"""Chat routes: POST /v1/cases/{case_id}/chat (SSE) and GET /v1/cases/{case_id}/chat/{session_id}."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from sse_starlette import EventSourceResponse

from fraudagent import store
from fraudagent.agent.scheduler import ModelBusy
from fraudagent.api import problems
from fraudagent.api.deps import Caller, InvestigatorDep, TablesDep, require_role
from fraudagent.chat import flows
from fraudagent.chat.models import SESSION_ID, ChatRequest, ChatSession
from fraudagent.store import audit
from fraudagent.store import chats as chat_store

router = APIRouter(prefix="/v1/cases", tags=["chat"], responses=problems.responses(*problems.AUTHED))
AnalystDep = Annotated[Caller, Depends(require_role("analyst"))]
CaseId = Annotated[str, Path(max_length=128)]
SessionId = Annotated[str, Path(pattern=SESSION_ID)]


_STREAM = {
    200: {
        "description": (
            'server-sent events: `token` events ({"text": …}) as the model streams, then one `final` event'
            " ({session_id, answer, cited_ids, unresolved_ids, tool_used, model_unavailable, model, first_token_s,"
            " model_wait_s, total_s})"
        ),
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["token", "final"]},
                        "data": {"type": "string", "description": 'JSON: {"text": …} for token, ChatFinal for final'},
                    },
                }
            }
        },
    },
} | problems.responses(404)


@router.post("/{case_id}/chat", response_class=EventSourceResponse, responses=_STREAM)  # type: ignore[arg-type]
def chat(
    case_id: CaseId, body: ChatRequest, caller: AnalystDep, investigator: InvestigatorDep, tables: TablesDep
) -> EventSourceResponse:
    """Ask about a case; the answer streams as SSE and cites the case's evidence ids. Pass `session_id` to continue
    one of your own sessions (another analyst's session is 404; an admin continuing another's session is 403)."""
    store.cases.get_case(investigator.history, case_id)  # 404 before the stream starts
    if investigator.scheduler is not None and not investigator.scheduler.admits("interactive"):
        raise ModelBusy(
            "the model is busy and its queue is full; retry later", investigator.scheduler.typical_retry_after()
        )
    if body.session_id:
        try:
            chat_store.session_meta(
                tables,
                session_id=body.session_id,
                case_id=case_id,
                caller_key_id=caller.key_id,
                admin=caller.has("admin"),
                continuing=True,
            )
        except chat_store.NotOwner as error:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(error)) from None
        session_id = body.session_id
        earlier = chat_store.messages(tables, session_id=session_id)
    else:
        session_id = "S-" + uuid.uuid4().hex
        chat_store.create_session(
            tables, session_id=session_id, case_id=case_id, created_by=caller.name, caller_key_id=caller.key_id
        )
        audit.record(
            investigator.history,
            subject=audit.case_subject(case_id),
            action="chat.started",
            actor=caller.name,
            details={"session_id": session_id},
        )
        earlier = []
    events = flows.chat_turn(
        tables=tables,
        investigator=investigator,
        case_id=case_id,
        session_id=session_id,
        question=body.message,
        earlier=earlier,
        caller_name=caller.name,
    )
    return EventSourceResponse(events, ping=15, headers={"X-Session-Id": session_id})


@router.get("/{case_id}/chat/{session_id}", response_model=ChatSession, responses=problems.responses(404))  # type: ignore[arg-type]
def chat_history(case_id: CaseId, session_id: SessionId, caller: AnalystDep, tables: TablesDep) -> ChatSession:
    """The session's messages in order, with the evidence ids each answer cited. Only the analyst who started
    the session reads it (admins read any); for anyone else it does not exist (404)."""
    return chat_store.get_session(
        tables, session_id=session_id, case_id=case_id, caller_key_id=caller.key_id, admin=caller.has("admin")
    )

"""One chat turn: store the question, stream the agent's answer as SSE events, store the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from fraudagent.agent.chat import ChatAnswer, Turn, stream_answer
from fraudagent.chat.models import ChatFinal, ChatMessage
from fraudagent.store import chats as chat_store
from fraudagent.store.tables import Tables


def chat_turn(
    *,
    tables: Tables,
    investigator: Any,
    case_id: str,
    session_id: str,
    question: str,
    earlier: list[ChatMessage],
    caller_name: str,
) -> Iterator[dict[str, str]]:
    """SSE events: `token` ({"text": …}) as the model streams, then `final` (ChatFinal)."""
    asked = chat_store.append(
        tables,
        session_id=session_id,
        message=ChatMessage(
            n=len(earlier) + 1, role="analyst", text=question, at=datetime.now(timezone.utc), by=caller_name
        ),
    )
    turns = [Turn(role=m.role, text=m.text) for m in earlier if not m.model_unavailable]
    final: ChatAnswer | None = None
    for kind, value in stream_answer(investigator, case_id, question=question, earlier=turns):
        if kind == "token":
            yield {"event": "token", "data": json.dumps({"text": value})}
        else:
            final = value  # type: ignore[assignment]
    assert final is not None
    chat_store.append(
        tables,
        session_id=session_id,
        message=ChatMessage(
            n=asked.n + 1,
            role="assistant",
            text=final.answer,
            at=datetime.now(timezone.utc),
            cited_ids=final.cited_ids,
            tool_used=final.tool_used,
            model_unavailable=final.model_unavailable,
        ),
    )
    out = ChatFinal(
        session_id=session_id,
        answer=final.answer,
        cited_ids=final.cited_ids,
        unresolved_ids=final.unresolved_ids,
        tool_used=final.tool_used,
        model_unavailable=final.model_unavailable,
        model=final.model,
        first_token_s=final.first_token_s,
        model_wait_s=final.model_wait_s,
        total_s=final.total_s,
    )
    yield {"event": "final", "data": out.model_dump_json()}

"""A scripted chat model for unit tests of the prompt/report plumbing (never a stand-in for capability tests)."""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedToolModel(BaseChatModel):
    """Answers each call with the next scripted draft as JSON text (or raises the scripted error), as the server does
    under a response_format schema; records every prompt and the request body it was given."""

    script: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bodies: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append(list(messages))
        self.bodies.append(dict(kwargs.get("extra_body") or {}))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        text = step if isinstance(step, str) else json.dumps(step)
        message = AIMessage(
            content=text,
            response_metadata={"finish_reason": "stop"},
            usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def draft(**changes: Any) -> dict[str, Any]:
    """A draft in the shape the per-case schema asks for (agent/drafting.py), for the demo bundle's case C-000123."""
    args = {
        "typology": "account_takeover",
        "actions": ["lock_account"],
        "confidence": "high",
        "findings": ["fact:credential_change", "txn:E-99812"],
        "unknowns": ["holder_confirms"],
        "narrative": (
            "A password reset from a new device in RO was followed 19 minutes later by a 100.00 USD gift card."
        ),
    }
    args.update(changes)
    return args


class ScriptedStreamModel(BaseChatModel):
    """Streams a scripted answer in small pieces and records every prompt it was given (chat plumbing tests)."""

    answers: list[str] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    chunk_delay_s: float = 0.0  # a model that takes its time (preemption tests)

    @property
    def _llm_type(self) -> str:
        return "scripted-stream"

    def _next(self, messages: list[BaseMessage]) -> str:
        self.seen.append(list(messages))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._next(messages)))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any) -> Any:
        from langchain_core.messages import AIMessageChunk
        from langchain_core.outputs import ChatGenerationChunk

        text = self._next(messages)
        for i in range(0, len(text), 7):
            time.sleep(self.chunk_delay_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i : i + 7]))
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata={"finish_reason": "stop"}))

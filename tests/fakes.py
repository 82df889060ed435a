"""A scripted chat model for unit tests of the prompt/report plumbing (never a stand-in for capability tests)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field


class ScriptedToolModel(BaseChatModel):
    """Answers each call with the next scripted tool-call arguments (or raises the scripted error)."""

    script: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any) -> ChatResult:
        self.seen.append(list(messages))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        message = AIMessage(
            content="",
            tool_calls=[{"name": "Draft", "args": step, "id": f"call-{len(self.seen)}"}],
            usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Any, **_: Any) -> Any:
        return self

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, method: str | None = None, **_: Any) -> Any:
        return super().with_structured_output(schema, include_raw=include_raw)


def draft(**changes: Any) -> dict[str, Any]:
    args = {
        "narrative": "A password reset from a new device in RO was followed 19 minutes later by a 100.00 USD gift card.",
        "findings": [{"statement": "Gift card bought after a password reset.", "evidence_ids": ["txn:E-99801", "E-99812"]}],
        "typology": "account_takeover",
        "recommended_actions": ["lock_account"],
        "confidence": 0.8,
        "unknowns": ["whether the customer made the purchase"],
    }
    args.update(changes)
    return args


class ScriptedStreamModel(BaseChatModel):
    """Streams a scripted answer in small pieces and records every prompt it was given (chat plumbing tests)."""

    answers: list[str] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

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
            yield ChatGenerationChunk(message=AIMessageChunk(content=text[i : i + 7]))

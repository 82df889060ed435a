"""The LLM provider: any OpenAI-compatible chat endpoint, the local llama.cpp server by default."""

from __future__ import annotations

from typing import Any

from langchain_openai import ChatOpenAI

from fraudagent.core.settings import Settings


def chat_model(settings: Settings, *, model: str | None = None, max_tokens: int | None = None) -> ChatOpenAI:
    """A chat model for the configured endpoint; `model` overrides the configured one per request."""
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=model or settings.llm_model,
        temperature=settings.llm_temperature,
        max_tokens=max_tokens or settings.llm_max_tokens,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )


def structured(llm: ChatOpenAI, schema: type[Any]) -> Any:
    """Forced function calling: the only structured path that works on the local server (DESIGN.md)."""
    return llm.with_structured_output(schema, method="function_calling", include_raw=True)


def usage_of(raw: Any) -> tuple[int, int]:
    meta = getattr(raw, "usage_metadata", None) or {}
    return int(meta.get("input_tokens", 0)), int(meta.get("output_tokens", 0))

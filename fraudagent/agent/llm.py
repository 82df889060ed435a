"""The LLM provider: any OpenAI-compatible chat endpoint, the local llama.cpp server by default.

Drafts are streamed: the caller sees the answer as it forms, a call past its deadline is ended by
closing the stream (the llama.cpp server stops generating when its client goes away; a plain
request would run on to its token cap while the next case waits), and the token cap is sent as
`max_tokens` in the body (langchain-openai renames it to `max_completion_tokens`, which
llama-cpp-python's server ignores).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI

from fraudagent.agent.prompts import approx_tokens
from fraudagent.core.settings import Settings

log = logging.getLogger(__name__)
PREEMPTED = "stopped to give the model to interactive work"


def chat_model(settings: Settings, *, model: str | None = None, max_tokens: int | None = None) -> ChatOpenAI:
    """A chat model for the configured endpoint; `model` overrides the configured one per request."""
    cap = max_tokens or settings.llm_max_tokens
    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=model or settings.llm_model,
        temperature=settings.llm_temperature,
        max_tokens=cap,
        extra_body={"max_tokens": cap} if settings.llm_send_max_tokens else None,
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )


def structured(llm: ChatOpenAI, schema: type[Any]) -> Any:
    """Forced function calling: the only structured path that works on the local server (DESIGN.md)."""
    return llm.with_structured_output(schema, method="function_calling", include_raw=True)


def response_format(settings: Settings, schema: dict[str, Any]) -> dict[str, Any] | None:
    """How the endpoint is told to enforce the schema while decoding (settings.llm_schema_mode)."""
    if settings.llm_schema_mode == "llama_cpp":  # llama-cpp-python: json_object with a schema becomes a grammar
        return {"type": "json_object", "schema": schema}
    if settings.llm_schema_mode == "json_schema":  # OpenAI-style strict structured outputs: the root must be an object
        wrapped = {
            "type": "object",
            "properties": {"draft": schema},
            "required": ["draft"],
            "additionalProperties": False,
        }
        return {"type": "json_schema", "json_schema": {"name": "draft", "strict": True, "schema": wrapped}}
    return None


@dataclass
class ModelCall:
    """One streamed model call: what came back and what it cost."""

    text: str = ""
    completion_tokens: int = 0
    prompt_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None
    seconds: float = 0.0
    preempted: bool = False  # stopped to give the slot to interactive work: not the model's failure

    @property
    def complete(self) -> bool:
        return self.error is None and self.finish_reason is not None


def stream_call(
    llm: Any,
    messages: Sequence[BaseMessage],
    *,
    body: dict[str, Any],
    deadline_s: float,
    on_delta: Callable[[str, str], None] | None = None,
    cancel: threading.Event | None = None,
) -> ModelCall:
    """Stream one call; `on_delta(delta, text_so_far)` per chunk. Never raises for a model failure: the error is
    recorded. Past the deadline, or once `cancel` is set (the scheduler wants the slot for interactive work), the
    stream is closed, which ends the generation on the server too; `call.preempted` then says which."""
    call = ModelCall()
    started = time.perf_counter()
    pieces: list[str] = []
    if cancel is not None and cancel.is_set():
        call.preempted = True
        call.error = PREEMPTED
        return call
    stream = llm.stream(list(messages), extra_body=body) if body else llm.stream(list(messages))
    try:
        for chunk in stream:
            text = chunk.content if isinstance(chunk.content, str) else ""
            meta = getattr(chunk, "response_metadata", None) or {}
            if meta.get("finish_reason"):
                call.finish_reason = str(meta["finish_reason"])
            usage = getattr(chunk, "usage_metadata", None) or {}
            if usage:
                call.prompt_tokens = int(usage.get("input_tokens", 0)) or call.prompt_tokens
                call.completion_tokens = int(usage.get("output_tokens", 0)) or call.completion_tokens
            if text:
                pieces.append(text)
                if not usage:
                    call.completion_tokens += 1  # llama.cpp streams one token per chunk and reports no usage
                if on_delta is not None:
                    on_delta(text, "".join(pieces))
            if time.perf_counter() - started > deadline_s:
                call.error = f"deadline of {deadline_s:.0f} s passed"
                break
            if cancel is not None and cancel.is_set():
                call.preempted = True
                call.error = PREEMPTED
                break
    except Exception as error:  # unreachable model, timeout, server error: recorded, the caller decides
        call.error = type(error).__name__
        log.warning("model call failed: %s", call.error)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # closes the HTTP response: the server sees the client go and stops generating
    call.text = "".join(pieces)
    call.seconds = time.perf_counter() - started
    return call


@lru_cache(maxsize=2)
def _gguf_vocab(path: str) -> Any:
    from llama_cpp import Llama  # the embedded server's package; loads only the tokenizer (vocab_only)

    vocab = Llama(model_path=path, vocab_only=True, verbose=False)
    atexit.register(vocab.close)  # freed before the interpreter tears llama_cpp down (else a TypeError at exit)
    return vocab


def token_counter(settings: Settings) -> Callable[[str], int]:
    """Counts tokens as the embedded model does (its GGUF carries the tokenizer); an estimate for other endpoints."""
    if settings.llm_is_external or not settings.weights_path.exists():
        return approx_tokens
    try:
        vocab = _gguf_vocab(str(settings.weights_path))
    except Exception as error:  # an unreadable file is the server's problem to report; budgeting goes on
        log.warning("tokenizer unavailable (%s); estimating tokens", type(error).__name__)
        return approx_tokens
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def check_schema_support(settings: Settings, *, model: str | None = None) -> str | None:
    """Ask the endpoint once, at start-up, to decode under a small draft-shaped schema. Returns None when it can; a
    message when the endpoint answers but refuses the schema (a clear error then, instead of a fallback per case).
    An endpoint that does not answer at all is not this check's concern (reports fall back and say why)."""
    import httpx

    schema = {
        "type": "object",
        "properties": {
            "typology": {"enum": ["legitimate"]},
            "findings": {"type": "array", "items": {"enum": ["fact:a"]}, "maxItems": 2},
            "narrative": {"type": "string"},
        },
        "required": ["typology", "findings", "narrative"],
    }
    fmt = response_format(settings, schema)
    if fmt is None:
        return None
    body = {
        "model": model or settings.llm_model,
        "messages": [{"role": "user", "content": "{}"}],
        "max_tokens": 2,
        "response_format": fmt,
        "temperature": 0,
    }
    headers = {"Authorization": f"Bearer {settings.llm_api_key.get_secret_value()}"}
    try:
        response = httpx.post(
            f"{settings.llm_base_url.rstrip('/')}/chat/completions", json=body, headers=headers, timeout=60
        )
    except httpx.HTTPError:
        return None
    if response.status_code >= 400:
        return (
            f"the model endpoint refused a draft schema (HTTP {response.status_code}) in schema mode "
            f"{settings.llm_schema_mode!r}; set FRAUDAGENT_LLM_SCHEMA_MODE to one it supports "
            "(llama_cpp, json_schema, off)"
        )
    return None


class ChatContinuation:
    """Goes on with a chat answer that stopped to give the slot to a newer turn: the endpoint's own chat template
    (read from the embedded model's GGUF, the one its server renders chat requests with) renders the same prompt
    here, and a raw completion of that prompt plus the answer so far picks up where it stopped. The embedded server
    kept the stopped request's evaluated state (cli/llama_server.py), so only the few tokens since are evaluated
    again."""

    def __init__(self, settings: Settings, *, model: str | None, formatter: Any, eos: str) -> None:
        self.settings = settings
        self.model = model or settings.llm_model
        self.formatter = formatter
        self.eos = eos

    def prompt(self, messages: Sequence[BaseMessage], answer_so_far: str) -> str:
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        turns: list[Any] = [{"role": roles[m.type], "content": str(m.content)} for m in messages]
        rendered = self.formatter(messages=turns)
        return rendered.prompt + answer_so_far

    def stream(
        self, messages: Sequence[BaseMessage], answer_so_far: str, *, max_tokens: int
    ) -> Generator[tuple[str, bool], None, None]:
        """(text, finished) per streamed chunk; closing the generator closes the HTTP stream (the server stops)."""
        from openai import OpenAI

        client = OpenAI(
            base_url=self.settings.llm_base_url,
            api_key=self.settings.llm_api_key.get_secret_value(),
            timeout=self.settings.llm_timeout_s,
            max_retries=0,
        )
        stream = client.completions.create(
            model=self.model,
            prompt=self.prompt(messages, answer_so_far),
            max_tokens=max_tokens,
            temperature=self.settings.llm_temperature,
            stop=[self.eos],
            stream=True,
        )
        try:
            for chunk in stream:
                choice = chunk.choices[0] if chunk.choices else None
                if choice is not None:
                    yield choice.text or "", choice.finish_reason is not None
        finally:
            stream.close()
            client.close()


@lru_cache(maxsize=2)
def _chat_formatter(path: str) -> tuple[Any, str] | None:
    """The GGUF's chat template as llama-cpp-python's formatter, and its end-of-turn text; read and compiled once
    per weights file (not on every chat turn). None when the file has no template or cannot be read."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        vocab = _gguf_vocab(path)
        template = vocab.metadata.get("tokenizer.chat_template")
        eos, bos = vocab.token_eos(), vocab.token_bos()
        eos_text = vocab._model.token_get_text(eos) if eos != -1 else ""
        bos_text = vocab._model.token_get_text(bos) if bos != -1 else ""
    except Exception as error:  # no template, no resuming: chat answers then run to their end in one go
        log.warning("chat answers cannot be resumed (%s)", type(error).__name__)
        return None
    if not template:
        return None
    return Jinja2ChatFormatter(template=template, eos_token=eos_text, bos_token=bos_text), eos_text


def chat_continuation(settings: Settings, *, model: str | None = None) -> ChatContinuation | None:
    """A way to resume chat answers, when the endpoint is the embedded one-slot server whose template is known here;
    None otherwise (an external endpoint renders its own template, and one with several slots has no need)."""
    if (
        not settings.chat_yields_to_new_turns
        or settings.llm_is_external
        or settings.llm_parallel_calls > 1
        or not settings.weights_path.exists()
    ):
        return None
    found = _chat_formatter(str(settings.weights_path))
    if found is None:
        return None
    formatter, eos = found
    return ChatContinuation(settings, model=model, formatter=formatter, eos=eos)

"""Scripted chat models, and a scripted OpenAI-compatible endpoint, for tests of the plumbing (never a stand-in for
capability tests)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class ScriptedEndpoint:
    """A loopback OpenAI-compatible endpoint that answers at once, for API-wide tests (schemathesis): GET /models for
    readiness; a draft (response_format with a schema) gets the first choice of every enum in the schema's first
    branch, so it is valid for whatever case was asked; anything else (chat, a tool-calling agent) gets a sentence
    citing the prompt's first `txn:` id. Streamed or not, as asked. Counts the completions it served."""

    SENTENCE = "The case shows a password reset followed by a gift card purchase."

    def __init__(self) -> None:
        endpoint = self
        self.completions = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, body: bytes, media: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(
                    200,
                    json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]}).encode(),
                    "application/json",
                )

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                endpoint.completions += 1
                text = endpoint.answer(request)
                if not request.get("stream"):
                    reply = {
                        "id": "s",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "scripted",
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    }
                    self._send(200, json.dumps(reply).encode(), "application/json")
                    return
                pieces = [{"content": text[i : i + 40]} for i in range(0, len(text), 40)]
                chunks = [{"index": 0, "delta": p, "finish_reason": None} for p in pieces] + [
                    {"index": 0, "delta": {}, "finish_reason": "stop"}
                ]
                head = {"id": "s", "object": "chat.completion.chunk", "created": 0, "model": "scripted"}
                frames = "".join(f"data: {json.dumps(head | {'choices': [c]})}\n\n" for c in chunks)
                self._send(200, (frames + "data: [DONE]\n\n").encode(), "text/event-stream")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: dict[str, Any]) -> str:
        form = request.get("response_format") or {}
        schema = form.get("schema") or (form.get("json_schema") or {}).get("schema")
        if schema:
            wrapped = "draft" in schema.get("properties", {})
            branch = schema["properties"]["draft"] if wrapped else schema
            branch = branch.get("anyOf", [branch])[0]["properties"]
            chosen = {
                "typology": branch["typology"]["const"],
                "actions": branch["actions"]["items"]["enum"][:1],
                "confidence": branch["confidence"]["enum"][0],
                "findings": branch["findings"]["items"]["enum"][:1],
                "unknowns": [],
                "narrative": [self.SENTENCE],
            }
            return json.dumps({"draft": chosen} if wrapped else chosen)
        prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
        cited = re.search(r"txn:[A-Za-z0-9_.\-]+", prompt)
        return f"{self.SENTENCE[:-1]} [{cited.group(0) if cited else 'txn:none'}]."

    def __enter__(self) -> ScriptedEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

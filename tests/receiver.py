"""Test helpers: a loopback HTTP server that receives callbacks, and test callers with roles.

Until keys with roles are stored (issue 6, item 1) the tests give a second and third Bearer key the
ticketing and analyst roles through FastAPI's dependency override; the bootstrap key stays the real one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials

from fraudagent.api.deps import Caller, _bearer, require_key

TICKETING_KEY = "test-ticketing-key"
ANALYST_KEY = "test-analyst-key"


def with_test_callers(app: FastAPI) -> FastAPI:
    def callers(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Caller:
        if credentials is not None and credentials.credentials == TICKETING_KEY:
            return Caller(key_id="k-ticketing", name="ticketing system", roles=["ticketing"])
        if credentials is not None and credentials.credentials == ANALYST_KEY:
            return Caller(key_id="k-analyst", name="analyst ana", roles=["analyst"])
        return require_key(request, credentials)

    app.dependency_overrides[require_key] = callers
    return app


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    """Answers `fail_first` requests (or all, with fail_always) with 500, the rest with 200; keeps every request."""

    fail_first: int = 0
    fail_always: bool = False
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    failing = receiver.fail_always or len(receiver.received) <= receiver.fail_first
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fraud"

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

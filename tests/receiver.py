"""Test helpers: a loopback HTTP server that receives callbacks, and API keys with roles for a test server."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables


def role_keys(history: Tables) -> dict[str, str]:
    """Real keys (stored hashed, like `fraudagent keys create`): role -> secret."""
    names = {"ticketing": "ticketing system", "analyst": "analyst ana"}
    return {
        role: key_store.create_key(history, name=name, roles=[role], created_by="tests")[1]
        for role, name in names.items()
    }


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackReceiver:
    """Answers `fail_first` requests (or all, with fail_always) with 500, the rest with 200; keeps every request.
    With `redirect_to`, every answer is a 307 to that URL instead."""

    fail_first: int = 0
    fail_always: bool = False
    redirect_to: str | None = None
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    failing = receiver.fail_always or len(receiver.received) <= receiver.fail_first
                self.send_response(307 if receiver.redirect_to else 500 if failing else 200)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
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

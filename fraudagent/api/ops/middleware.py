"""One ASGI middleware around every request: its id, the body size limit, latency and the access log.

- `X-Request-ID`: taken from the request when it is a sane token (letters, digits, `-_.:`, at most 64),
  else made here; sent back on the response and put on every log line written while serving it.
- Bodies over FRAUDAGENT_API_MAX_BODY_BYTES get 413 problem+json: at once when Content-Length says so,
  otherwise as soon as the streamed body passes the limit; the same body either way (`problems.too_large`).
- `Cache-Control: no-store` on every response that does not set its own (API answers hold case data and
  must not sit in a browser's or a proxy's cache); static files (console, docs assets) are left alone.
- Latency goes into a histogram labelled by the route *template* (`/v1/cases/{case_id}`), never the raw
  path, so ids don't explode the label set; the access log line carries the same (no query strings, no PII).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fraudagent.api.ops.metrics import Metrics
from fraudagent.api.problems import BodyTooLarge, too_large
from fraudagent.core.logging import request_id

log = logging.getLogger("fraudagent.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
CACHEABLE_PREFIXES = ("/console/static/", "/docs/assets/")  # static files: they set (or leave) their own caching


class RequestMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "started": False}
        no_store_exempt = scope["path"].startswith(CACHEABLE_PREFIXES)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                extra = [(b"x-request-id", rid.encode())]
                if not no_store_exempt and not any(
                    k.lower() == b"cache-control" for k, _ in message.get("headers", [])
                ):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(
                        self.max_body_bytes
                    )  # FastAPI re-raises it from its body reading: problems answers it
            return message

        try:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body_bytes:
                await too_large(self.max_body_bytes)(scope, receive, send_with_id)
            else:
                try:
                    await self.app(scope, receive_limited, send_with_id)
                except BodyTooLarge:  # read outside FastAPI's handlers: the same answer
                    if state["started"]:
                        raise
                    await too_large(self.max_body_bytes)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(
                method=scope["method"], route=template, status=str(state["status"])
            ).observe(elapsed)
            if state["status"] == 429:
                self.metrics.rate_limited.inc()
            key_id = scope.get("state", {}).get("key_id")
            log.info(
                "%s %s %s %.1fms",
                scope["method"],
                template,
                state["status"],
                elapsed * 1000,
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": state["status"],
                    "ms": round(elapsed * 1000, 1),
                    "key_id": key_id,
                },
            )
            request_id.reset(token)

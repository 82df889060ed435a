"""Logging with redaction: card numbers, emails and IP addresses never reach a log line."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# (kind, pattern): personal data that must not reach logs or an external model provider.
PII_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("card", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("email", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("ip", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    ("ip", re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b")),
)


def redact(text: str) -> str:
    for kind, pattern in PII_PATTERNS:
        text = pattern.sub(f"[{kind}]", text)
    return text


# The request being served (set by the API's middleware, copied into worker threads with the context).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RedactingFilter(logging.Filter):
    """Redacts the message and any traceback, and stamps the record with the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        record.request_id = request_id.get()
        return True


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record is emitted, not when the handler was made: a CLI run inside
    a test runner gets a stderr that is closed afterwards, and later records must not go there."""

    def __init__(self) -> None:
        super().__init__()
        self._chosen: Any = None  # a stream set explicitly (`setStream`) wins

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return self._chosen or sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        self._chosen = value


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Logs on stderr: one JSON object per line (`fmt="json"`), or text for people."""
    handler = StderrHandler()
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "openai",
        "botocore",
        "urllib3",
        "chromadb",
        "sentence_transformers",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""Reading server-sent events in tests the way a client does: line by line, as they arrive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, JSON data) per server-sent event, as the lines arrive (comments such as pings are skipped)."""
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "" and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []

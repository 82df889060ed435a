"""The streamed report route's token events, without a server: throttled, and the last narrative never dropped.
Over real HTTP: tests/integration/test_report_stream.py."""

from __future__ import annotations

from typing import Any

from fraudagent.api.report_stream import Relay


def test_token_events_are_throttled_and_the_last_narrative_is_never_dropped() -> None:
    import asyncio

    async def run() -> list[tuple[str, Any]]:
        now = [0.0]
        relay = Relay(asyncio.get_running_loop(), interval=2, clock=lambda: now[0])  # whole seconds: no rounding
        relay.progress("drafting", {"attempt": 1})
        for i in range(1, 11):  # a chunk a second, at most one token event per 2 s
            now[0] = float(i)
            relay.progress("token", {"attempt": 1, "delta": "x", "narrative": "x" * i})
        relay.progress("whatever", {"n": 1})  # a stage this route does not know is not forwarded
        relay.progress("checks", {"attempt": 1, "ok": True, "problems": []})
        relay.progress("token", {"attempt": 2, "delta": "y", "narrative": None})  # held: the flush just sent one
        relay.finish("report", {"done": True})
        relay.close()
        relay.progress("drafting", {"attempt": 3})  # after close: nothing more is queued
        await asyncio.sleep(0.05)
        out = []
        while not relay.queue.empty():
            out.append(relay.queue.get_nowait())
        return out

    out = asyncio.run(run())
    tokens = [d["narrative"] for n, d in out if n == "token"]
    assert [n for n, _ in out][0] == "drafting" and [n for n, _ in out][-1] == "report"
    assert tokens == ["x", "xxx", "xxxxx", "xxxxxxx", "xxxxxxxxx", "xxxxxxxxxx", None]
    assert [n for n, _ in out].index("checks") == len(out) - 3  # the held "x"*10 went out just before the checks
    assert all(set(d) == {"attempt", "narrative"} for n, d in out if n == "token")

"""Admission to the model endpoint: a few calls at once, interactive work first, a bounded queue.

The embedded llama.cpp server has one slot: a chat turn sent while a report is being
drafted waits behind it, and a waiting request used to cut off the streaming one.
Every model call of this process goes through one scheduler: at most `slots` calls
run at once (a setting: 1 for the embedded server, more for an endpoint that serves
in parallel); when a slot frees, the oldest interactive waiter (a chat turn, a report
an analyst asked for) goes before any background one (summary jobs, eval runs,
automatic drafting). The queue is bounded: an interactive caller that would wait
behind a full queue, or past its wait limit, gets `ModelBusy` with a retry-after
hint at once instead of hanging.

A call already running is not made to wait for: when an interactive caller finds every
slot held and one of them by background work, that background call is asked to stop
(`Turn.preempted`; the model client closes its stream, which ends the generation on the
server) and to queue again. On one slot a chat turn then starts within a token or two of
a report in progress instead of after it; the report's next attempt starts over from the
server's prompt cache.

A chat turn that has shown its first token can also give its slot to a newer turn that has not
(`ModelScheduler.should_give_way`), when it can go on later from where it stopped (agent/chat.py, on the
embedded server): the one who just asked sees the start of their answer after the model has read their prompt
instead of after every answer ahead of it. Only its start jumps the queue: once it has shown a token it gives way to
older answers that stopped for it, which go on in the order they were asked (`Turn.origin`), so an answer waits for
a newer turn's prompt, not for all of its answer.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from fraudagent.core.errors import FraudAgentError

# "resume": an interactive call that gave its slot to a newer turn and goes on from where it stopped.
Priority = Literal["interactive", "resume", "background"]
_RANK: dict[Priority, int] = {"interactive": 0, "resume": 1, "background": 2}
_BACKGROUND = _RANK["background"]


class ModelBusy(FraudAgentError):
    """The model's queue is full, or the wait would pass the caller's limit."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


@dataclass(eq=False)
class Turn:
    """One held slot: how long the caller waited for it, and whether it is asked to give it back."""

    priority: Priority
    origin: int = 0  # when the call was first asked (a counter); a resumed chat answer keeps its first call's
    waited_s: float = 0.0
    preempted: threading.Event = field(default_factory=threading.Event)


@dataclass(order=True)
class _Waiter:
    rank: int
    seq: int
    event: threading.Event = field(compare=False, default_factory=threading.Event)


class ModelScheduler:
    def __init__(
        self,
        *,
        slots: int = 1,
        background_slots: int | None = None,
        max_waiting: int = 8,
        interactive_wait_s: float = 60.0,
        background_wait_s: float = 3600.0,
        typical_call_s: float = 20.0,
    ) -> None:
        self.slots = slots
        # Background work may hold at most this many slots, so that with several slots a chat turn finds one free
        # instead of waiting for (or preempting) a draft. None: all of them (one slot must be shared).
        self.background_slots = slots if background_slots is None else max(1, min(background_slots, slots))
        self.max_waiting = max_waiting
        self.wait_limit: dict[Priority, float] = {
            "interactive": interactive_wait_s,
            "resume": background_wait_s,  # the analyst is reading its start: it goes on, however long the queue
            "background": background_wait_s,
        }
        self.typical_call_s = typical_call_s
        self._lock = threading.Lock()
        self._running = 0
        self._holders: list[Turn] = []  # in the order they got their slot
        self._waiting: list[_Waiter] = []
        self.preemptions = 0
        self.yields = 0  # chat turns that gave their slot to a newer turn and went on later
        self._seq = itertools.count()
        self._granted_background = 0

    def _retry_after(self) -> int:
        return max(1, int(self.typical_call_s * (1 + len(self._waiting)) / self.slots))

    def typical_retry_after(self) -> int:
        """Seconds after which a refused caller may try again: the queue ahead of it at a typical call's length."""
        with self._lock:
            return self._retry_after()

    def admits(self, priority: Priority = "interactive") -> bool:
        """Would a caller of this priority be queued now (not refused)? For routes that must answer 503 before they
        start streaming."""
        with self._lock:
            return self._running < self.slots or self._queue_room(priority)

    def _queue_room(self, priority: Priority) -> bool:
        if priority != "interactive":  # background: bounded by the number of workers; a resumed turn must finish
            return True
        return sum(w.rank == 0 for w in self._waiting) < self.max_waiting

    def _background_running(self) -> int:
        return sum(t.priority == "background" for t in self._holders) + self._granted_background

    def _may_start(self, rank: int) -> bool:
        if self._running >= self.slots:
            return False
        return rank < _BACKGROUND or self._background_running() < self.background_slots

    def _wake_next(self) -> None:
        while self._waiting:
            eligible = [w for w in self._waiting if self._may_start(w.rank)]
            if not eligible:
                return
            waiter = min(eligible)
            self._waiting.remove(waiter)
            self._running += 1
            if waiter.rank == _BACKGROUND:
                self._granted_background += 1  # counted until its Turn joins the holders
            waiter.event.set()

    def _preempt_for_interactive(self) -> None:
        """Ask the newest background holders to give back as many slots as interactive callers are waiting."""
        free = self.slots - self._running
        wanted = sum(w.rank == 0 for w in self._waiting) - free - sum(t.preempted.is_set() for t in self._holders)
        for held in reversed(self._holders):
            if wanted <= 0:
                break
            if held.priority == "background" and not held.preempted.is_set():
                held.preempted.set()
                self.preemptions += 1
                wanted -= 1

    @contextmanager
    def turn(self, priority: Priority = "interactive", *, origin: int | None = None) -> Iterator[Turn]:
        """Hold a slot for one model call. A background caller must watch `Turn.preempted` and give the slot back
        soon after it is set (then queue again). A "resume" call passes its first call's `Turn.origin`: stopped
        answers go on in the order they were first asked."""
        started = time.monotonic()
        seq = next(self._seq)
        held = Turn(priority, origin=seq if origin is None else origin)
        with self._lock:
            if self._may_start(_RANK[priority]) and not any(w.rank <= _RANK[priority] for w in self._waiting):
                self._running += 1
                waiter = None
            elif not self._queue_room(priority):
                raise ModelBusy(f"the model is busy: {len(self._waiting)} calls are waiting", self._retry_after())
            else:
                waiter = _Waiter(_RANK[priority], held.origin if priority == "resume" else seq)
                self._waiting.append(waiter)
                if priority == "interactive":
                    self._preempt_for_interactive()
        if waiter is not None and not waiter.event.wait(self.wait_limit[priority]):
            with self._lock:
                if waiter in self._waiting:  # still queued: give up; else the slot was granted as we timed out
                    self._waiting.remove(waiter)
                    raise ModelBusy(f"the model stayed busy for {self.wait_limit[priority]:.0f} s", self._retry_after())
        held.waited_s = time.monotonic() - started
        with self._lock:
            if waiter is not None and priority == "background":
                self._granted_background -= 1
            self._holders.append(held)
        try:
            yield held
        finally:
            with self._lock:
                self._holders.remove(held)
                self._running -= 1
                self._wake_next()

    def should_give_way(self, held: Turn) -> bool:
        """Should this interactive holder, which has shown a token, give its slot back and go on later? Yes when a
        turn that has not started waits (its analyst sees nothing yet), or an answer asked before this one waits to
        go on (it stopped for this one's start). Never for background work, and not while a background holder
        could be asked to stop instead."""
        with self._lock:
            if held.priority == "background" or self._running < self.slots:
                return False
            if any(t.priority == "background" for t in self._holders):
                return False
            resume = _RANK["resume"]
            if not any(w.rank == 0 or (w.rank == resume and w.seq < held.origin) for w in self._waiting):
                return False
            self.yields += 1
            return True

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "running": self._running,
                "waiting_interactive": sum(w.rank < _BACKGROUND for w in self._waiting),
                "waiting_background": sum(w.rank == _BACKGROUND for w in self._waiting),
                "preemptions": self.preemptions,
                "yields": self.yields,
            }

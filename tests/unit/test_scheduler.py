"""The model scheduler (agent/scheduler.py): slots, interactive before background, a bounded queue. No servers."""

from __future__ import annotations

import threading
import time

import pytest

from fraudagent.agent.scheduler import ModelBusy, ModelScheduler


def _hold(
    scheduler: ModelScheduler, release: threading.Event, started: threading.Event, priority: str = "background"
) -> threading.Thread:
    def run() -> None:
        with scheduler.turn(priority):  # type: ignore[arg-type]
            started.set()
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    return thread


def _call(
    scheduler: ModelScheduler, order: list[str], name: str, priority: str, origin: int | None = None
) -> threading.Thread:
    """A model call in a thread that notes its name when it gets its slot."""

    def run() -> None:
        with scheduler.turn(priority, origin=origin):  # type: ignore[arg-type]
            order.append(name)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_interactive_callers_go_before_background_ones_that_came_first() -> None:
    scheduler = ModelScheduler(slots=1)
    release, started = threading.Event(), threading.Event()
    holder = _hold(scheduler, release, started)
    order: list[str] = []

    def call(name: str, priority: str) -> threading.Thread:
        return _call(scheduler, order, name, priority)

    threads = [call("summary-1", "background"), call("summary-2", "background")]
    _wait_for(lambda: scheduler.stats()["waiting_background"] == 2)
    threads.append(call("chat", "interactive"))
    _wait_for(lambda: scheduler.stats()["waiting_interactive"] == 1)
    release.set()
    for t in [holder, *threads]:
        t.join(5)
    assert order == ["chat", "summary-1", "summary-2"]
    stats = scheduler.stats()
    assert (stats["running"], stats["waiting_interactive"], stats["waiting_background"]) == (0, 0, 0)
    assert stats["preemptions"] == 1  # the background holder was asked for its slot when the chat came


def test_a_full_queue_refuses_interactive_callers_at_once_with_a_retry_hint() -> None:
    scheduler = ModelScheduler(slots=1, max_waiting=0, typical_call_s=20)
    release, started = threading.Event(), threading.Event()
    holder = _hold(scheduler, release, started)
    assert not scheduler.admits("interactive") and scheduler.admits("background")
    with pytest.raises(ModelBusy) as busy:
        with scheduler.turn("interactive"):
            pass
    assert busy.value.retry_after_s == 20
    release.set()
    holder.join(5)
    assert scheduler.admits("interactive")


def test_an_interactive_caller_waits_no_longer_than_its_limit() -> None:
    scheduler = ModelScheduler(slots=1, interactive_wait_s=0.2)
    release, started = threading.Event(), threading.Event()
    holder = _hold(scheduler, release, started)
    t0 = time.monotonic()
    with pytest.raises(ModelBusy):
        with scheduler.turn("interactive"):
            pass
    assert time.monotonic() - t0 >= 0.2 and scheduler.stats()["waiting_interactive"] == 0
    release.set()
    holder.join(5)


def test_several_slots_run_calls_side_by_side() -> None:
    scheduler = ModelScheduler(slots=2)
    release = threading.Event()
    holders = [_hold(scheduler, release, threading.Event()) for _ in range(2)]
    assert scheduler.stats()["running"] == 2
    release.set()
    for t in holders:
        t.join(5)


def test_a_failing_call_gives_its_slot_back() -> None:
    scheduler = ModelScheduler(slots=1)
    with pytest.raises(RuntimeError):
        with scheduler.turn("interactive"):
            raise RuntimeError("model error")
    with scheduler.turn("interactive") as turn:
        assert turn.waited_s < 1


def test_a_background_call_is_asked_for_its_slot_when_an_interactive_caller_comes_and_queues_again() -> None:
    scheduler = ModelScheduler(slots=1)
    order: list[str] = []
    holding = threading.Event()

    def background() -> None:
        for _ in range(3):  # as draft_with_retries does: stop when preempted, queue again
            with scheduler.turn("background") as turn:
                order.append("background")
                holding.set()
                if not turn.preempted.wait(5):
                    return
        order.append("gave up")

    worker = threading.Thread(target=background, daemon=True)
    worker.start()
    assert holding.wait(5)
    with scheduler.turn("interactive") as turn:
        order.append("chat")
        assert not turn.preempted.is_set()
        holding.clear()
    assert holding.wait(5)  # the background call got the slot back after the chat
    with scheduler.turn("interactive"):
        order.append("chat")
    worker.join(5)
    assert order == ["background", "chat", "background", "chat", "background"]
    assert scheduler.stats()["preemptions"] == 2


def test_interactive_calls_are_never_preempted() -> None:
    scheduler = ModelScheduler(slots=1, interactive_wait_s=0.3)
    release, started = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: _interactive_hold(scheduler, release, started), daemon=True)
    holder.start()
    assert started.wait(5)
    with pytest.raises(ModelBusy):
        with scheduler.turn("interactive"):
            pass
    release.set()
    holder.join(5)
    assert scheduler.stats()["preemptions"] == 0


def _interactive_hold(scheduler: ModelScheduler, release: threading.Event, started: threading.Event) -> None:
    with scheduler.turn("interactive") as turn:
        started.set()
        release.wait(10)
        assert not turn.preempted.is_set()


def test_background_work_leaves_the_reserved_slots_to_interactive_callers() -> None:
    """Four slots, background limited to two: two drafts run, the third waits although slots are free, and a chat
    turn starts at once without preempting anyone; when a draft ends, the waiting one takes its place."""
    scheduler = ModelScheduler(slots=4, background_slots=2)
    releases = [threading.Event(), threading.Event()]
    holders = [_hold(scheduler, r, threading.Event()) for r in releases]
    third_started = threading.Event()
    third = threading.Thread(target=lambda: _hold(scheduler, threading.Event(), third_started), daemon=True)
    third.start()
    _wait_for(lambda: scheduler.stats()["waiting_background"] == 1)
    assert scheduler.stats()["running"] == 2

    chat_release, chat_started = threading.Event(), threading.Event()
    chat = _hold(scheduler, chat_release, chat_started, priority="interactive")
    stats = scheduler.stats()
    assert (stats["running"], stats["waiting_background"], stats["preemptions"]) == (3, 1, 0)
    assert not third_started.is_set()

    releases[0].set()  # a draft ends: the waiting one starts (the chat still holds its slot)
    assert third_started.wait(5)
    chat_release.set()
    for t in [*holders, chat]:
        t.join(5)
    assert scheduler.stats()["waiting_background"] == 0


def test_without_a_background_limit_background_work_may_use_every_slot() -> None:
    scheduler = ModelScheduler(slots=2)
    releases = [threading.Event(), threading.Event()]
    holders = [_hold(scheduler, r, threading.Event()) for r in releases]
    assert scheduler.stats()["running"] == 2
    for r, t in zip(releases, holders, strict=True):
        r.set()
        t.join(5)


def test_a_started_chat_is_told_to_give_way_only_to_a_newer_turn_and_then_goes_before_background_work() -> None:
    """One slot held by a chat answer: with nobody waiting, or only background work or a resumed answer waiting, it
    keeps the slot; when a new turn waits it is told to give way (counted), the new turn runs first, and the
    resumed answer ("resume") runs before background work that queued earlier."""
    scheduler = ModelScheduler(slots=1)
    order: list[str] = []

    def call(name: str, priority: str) -> threading.Thread:
        return _call(scheduler, order, name, priority)

    with scheduler.turn("interactive") as chat:
        assert not scheduler.should_give_way(chat)  # nobody waits
        summary = call("summary", "background")
        _wait_for(lambda: scheduler.stats()["waiting_background"] == 1)
        assert not scheduler.should_give_way(chat)  # background work never makes a chat stop
        newer = call("newer chat", "interactive")
        _wait_for(lambda: scheduler.stats()["waiting_interactive"] == 1)
        assert scheduler.should_give_way(chat)
    with scheduler.turn("resume") as resumed:
        order.append("earlier chat, resumed")
        assert not scheduler.should_give_way(resumed)  # only background work waits
    for thread in (newer, summary):
        thread.join(5)
    assert order == ["newer chat", "earlier chat, resumed", "summary"]
    assert scheduler.stats()["yields"] == 1
    assert scheduler.stats()["preemptions"] == 0


def test_a_chat_does_not_give_way_while_a_background_call_holds_a_slot_that_can_be_asked_instead() -> None:
    scheduler = ModelScheduler(slots=2)
    release, started = threading.Event(), threading.Event()
    holder = _hold(scheduler, release, started)  # background, in the second slot
    with scheduler.turn("interactive") as chat:
        waiting = threading.Thread(target=lambda: scheduler.turn("interactive").__enter__(), daemon=True)
        waiting.start()
        _wait_for(lambda: scheduler.stats()["preemptions"] == 1)  # the draft was asked for its slot
        assert not scheduler.should_give_way(chat)
        release.set()
    holder.join(5)


def test_a_newer_turn_gives_way_after_its_first_token_to_older_answers_only_in_the_order_they_were_asked() -> None:
    """Only a turn's start jumps the queue: once the newer turn has shown a token, an older answer that stopped for
    it goes on first (oldest first), while a stopped answer asked after it does not make it stop."""
    scheduler = ModelScheduler(slots=1)
    with scheduler.turn("interactive") as older:
        pass
    with scheduler.turn("interactive") as middle:
        pass
    order: list[str] = []

    def resume(name: str, origin: int) -> threading.Thread:
        return _call(scheduler, order, name, "resume", origin=origin)

    with scheduler.turn("interactive") as newer:
        assert newer.origin > middle.origin > older.origin
        later = resume("asked after", newer.origin + 100)
        _wait_for(lambda: scheduler.stats()["waiting_interactive"] == 1)
        assert not scheduler.should_give_way(newer)  # asked after this one: it waits its turn
        threads = [resume("middle", middle.origin), resume("older", older.origin)]
        _wait_for(lambda: scheduler.stats()["waiting_interactive"] == 3)
        assert scheduler.should_give_way(newer)
    for thread in (*threads, later):
        thread.join(5)
    assert order == ["older", "middle", "asked after"]
    assert scheduler.stats()["yields"] == 1

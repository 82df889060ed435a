"""Analyst chat without servers: the tool is chosen in code, by keywords, and defaults to the evidence.
Over HTTP with sessions in DynamoDB Local: tests/integration/test_chat.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

from fraudagent.agent.chat import route


def test_routing_is_keyword_based_and_defaults_to_the_evidence() -> None:
    assert route("Which LINKED accounts?") == "linked_accounts"
    assert route("anything since the email change?") == "events_after_credential_change"
    assert route("past cases like this?") == "similar_cases"
    assert route("summarise the case") == "evidence"


def test_every_turn_of_a_session_starts_with_the_same_case_prefix_whatever_tool_it_uses() -> None:
    """The server's prefix cache only helps when a follow-up begins with the tokens the last turn began with: the
    system prompt and the case's evidence come first on every turn, a routed tool's lines come with the question."""
    from fraudagent.agent.chat import ToolResult, Turn, build_messages
    from fraudagent.agent.evidence import pack_from_bundle
    from fraudagent.agent.facts import add_facts
    from fraudagent.core.models import CaseBundle
    from tests.bundles import example

    pack = pack_from_bundle(CaseBundle.model_validate(example()), similar=[])
    add_facts(pack)
    first = build_messages(pack, ToolResult("evidence"), question="Why was it flagged?", earlier=[], token_budget=600)
    linked = ToolResult("linked_accounts", lines=["[acct:A-2] shares device D-1 with the case's account"])
    follow_up = build_messages(
        pack,
        linked,
        question="Which accounts are linked?",
        earlier=[Turn(role="analyst", text="Why was it flagged?"), Turn(role="assistant", text="A reset [txn:E-1].")],
        token_budget=600,
    )
    assert [m.content for m in follow_up[:2]] == [m.content for m in first[:2]]
    assert follow_up[2].content == first[2].content  # the earlier question, as it was asked
    assert follow_up[3].type == "ai" and "[txn:E-1]" in str(follow_up[3].content)
    assert "shares device D-1" in str(follow_up[-1].content)
    assert str(follow_up[-1].content).endswith("Question: Which accounts are linked?")
    assert "shares device" not in "".join(str(m.content) for m in follow_up[:-1])


def test_an_answer_that_gives_way_to_a_newer_turn_goes_on_from_what_it_streamed(monkeypatch: Any) -> None:
    """Plumbing of the hand-over (the real server: tests/integration/test_chat.py): after its first tokens an answer
    sees a newer turn waiting, closes its stream, lets the newer turn run, then goes on through the continuation
    with what it streamed so far and the tokens it has left; the analyst's stream and the final answer are whole."""
    from langchain_core.messages import AIMessageChunk

    from fraudagent.agent import chat
    from fraudagent.agent.evidence import pack_from_bundle
    from fraudagent.agent.facts import add_facts
    from fraudagent.agent.scheduler import ModelScheduler
    from fraudagent.core.models import CaseBundle
    from fraudagent.core.settings import Settings
    from tests.bundles import example

    scheduler = ModelScheduler(slots=1)
    order: list[str] = []
    closed: list[bool] = []
    newer_waiting = threading.Event()

    def newer_turn() -> None:
        with scheduler.turn("interactive"):
            order.append("newer turn")

    def first_stream(_messages: Any) -> Iterator[AIMessageChunk]:
        try:
            yield AIMessageChunk(content="The reset")
            threading.Thread(target=newer_turn, daemon=True).start()
            while scheduler.stats()["waiting_interactive"] == 0:
                time.sleep(0.01)
            newer_waiting.set()
            yield AIMessageChunk(content=" came first")
            yield AIMessageChunk(content=" [end].")  # not reached: the answer gave way after the last token
        finally:
            closed.append(True)

    class Continuation:
        seen: ClassVar[list[tuple[str, int]]] = []

        def stream(self, _messages: Any, so_far: str, *, max_tokens: int) -> Iterator[tuple[str, bool]]:
            order.append("resumed")
            self.seen.append((so_far, max_tokens))
            yield f" [{cited}].", False
            yield "", True

    settings = Settings(chat_max_tokens=50)
    pack = pack_from_bundle(CaseBundle.model_validate(example()), similar=[])
    add_facts(pack)
    cited = next(i for i in pack.items if i.startswith("txn:"))
    model = SimpleNamespace(stream=first_stream)
    monkeypatch.setattr(chat, "chat_model", lambda *_a, **_k: model)
    monkeypatch.setattr(chat, "chat_continuation", lambda *_a, **_k: Continuation())
    investigator = SimpleNamespace(
        settings=settings,
        model_factory=None,
        scheduler=scheduler,
        model_turn=scheduler.turn,
        evidence=lambda _case_id: pack,
    )
    events = list(chat.stream_answer(investigator, pack.case.case_id, question="What happened first?"))
    tokens = [text for kind, text in events if kind == "token"]
    final = events[-1][1]
    assert tokens == ["The reset", " came first", f" [{cited}]."]
    assert isinstance(final, chat.ChatAnswer) and not final.model_unavailable
    assert final.answer == f"The reset came first [{cited}]." and final.cited_ids == [cited]
    assert newer_waiting.is_set() and closed == [True]
    assert order == ["newer turn", "resumed"]
    assert Continuation.seen == [("The reset came first", 48)]
    assert scheduler.stats()["yields"] == 1

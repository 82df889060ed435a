"""Analyst chat without servers: the tool is chosen in code, by keywords, and defaults to the evidence.
Over HTTP with sessions in DynamoDB Local: tests/integration/test_chat.py."""

from __future__ import annotations

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

"""Analyst chat without servers: the tool is chosen in code, by keywords, and defaults to the evidence.
Over HTTP with sessions in DynamoDB Local: tests/integration/test_chat.py."""

from __future__ import annotations

from fraudagent.agent.chat import route


def test_routing_is_keyword_based_and_defaults_to_the_evidence() -> None:
    assert route("Which LINKED accounts?") == "linked_accounts"
    assert route("anything since the email change?") == "events_after_credential_change"
    assert route("past cases like this?") == "similar_cases"
    assert route("summarise the case") == "evidence"

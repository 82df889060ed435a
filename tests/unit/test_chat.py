"""Analyst chat over HTTP: SSE read by a real streaming client, sessions in DynamoDB Local across app
restarts, tools chosen in code, citations checked against the case's evidence, no reach into other cases."""

from __future__ import annotations

from fraudagent.agent.chat import route


def test_routing_is_keyword_based_and_defaults_to_the_evidence() -> None:
    assert route("Which LINKED accounts?") == "linked_accounts"
    assert route("anything since the email change?") == "events_after_credential_change"
    assert route("past cases like this?") == "similar_cases"
    assert route("summarise the case") == "evidence"

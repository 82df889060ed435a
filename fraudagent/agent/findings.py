"""Findings written by code: their statements, numbers and citations come from the evidence, never from a model.

Used by every path: the model names the items that matter (agent/drafting.py) and code writes the finding for
each; the policy requires some facts to be cited (verifier.required_findings); the deterministic report lists
every fact (agent/fallback.py); and every report carries the timeline around the event that opened the case.
"""

from __future__ import annotations

from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.report import Finding, FindingSource
from fraudagent.store.events import ScoredEvent

FACT_EVENTS = 8  # events a fact finding cites (facts choose which: agent/facts.py span)
TIMELINE_BEFORE = 4  # events before the trigger in the timeline finding


def _sentence(line: str) -> str:
    return line[:1].upper() + line[1:].rstrip(".") + "."


def item_finding(pack: EvidencePack, evidence_id: str, source: FindingSource = "model") -> Finding:
    """The finding for one item of the pack: a fact cites the events it rests on; an event its score."""
    item = pack.items[evidence_id]
    if item.kind == "fact":
        events = [f"txn:{e}" for e in item.rests_on if f"txn:{e}" in pack.items][:FACT_EVENTS]
        return Finding(statement=_sentence(item.line), evidence_ids=[evidence_id, *events], source=source)
    if item.kind == "txn":
        bare = evidence_id.removeprefix("txn:")
        score = f"score:{bare}"
        cites = [evidence_id, *([score] if score in pack.items else [])]
        scored = f" (model score {pack.items[score].data['score']:.2f})" if score in pack.items else ""
        return Finding(statement=f"Event {bare}: {item.line}{scored}.", evidence_ids=cites, source=source)
    label = {"acct": "Linked account", "dev": "Device"}.get(item.kind, "Item")
    return Finding(
        statement=f"{label} {evidence_id.partition(':')[2]}: {item.line}.", evidence_ids=[evidence_id], source=source
    )


def _short(scored: ScoredEvent) -> str:
    e = scored.event
    money = f" {e.amount} {e.currency}" if e.amount is not None else ""
    return f"{e.ts:%Y-%m-%d %H:%M} {e.type.value}{money} ({e.event_id})"


def timeline_finding(pack: EvidencePack) -> Finding | None:
    """What happened just before the case opened: the triggering event, the events right before it, and the last
    earlier use of its device or payment instrument (the history it departs from). Analysts read a case this way."""
    opened = pack.case.opened_at
    own = [s for s in pack.events if s.event.account_id == pack.case.account_id and s.event.ts <= opened]
    if not own:
        return None
    trigger_ids = pack.items["fact:trigger_event"].rests_on if "fact:trigger_event" in pack.items else []
    trigger = next((s for s in own if s.event.event_id in trigger_ids), own[-1])
    before = [s for s in own if s.event.ts <= trigger.event.ts and s is not trigger]
    chosen = before[-TIMELINE_BEFORE:]
    t = trigger.event
    departs = [
        s
        for s in before[: len(before) - len(chosen)]
        if (t.device_id and s.event.device_id == t.device_id)
        or (t.instrument_id and s.event.instrument_id == t.instrument_id)
    ]
    if departs:
        chosen = [departs[-1], *chosen]
    parts = "; ".join(_short(s) for s in chosen)
    statement = (
        f"Before the case opened: {parts}; then the event that opened it, {_short(trigger)}."
        if chosen
        else f"The event that opened the case: {_short(trigger)}."
    )
    ids = [f"txn:{s.event.event_id}" for s in [*chosen, trigger] if f"txn:{s.event.event_id}" in pack.items]
    return Finding(statement=statement, evidence_ids=ids, source="code") if ids else None

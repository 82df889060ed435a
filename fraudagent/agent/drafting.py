"""Constrained drafting: the model chooses within what the evidence and the policy allow, code writes the rest.

For each case a JSON schema is built from its evidence pack and the policy: the
typology is one the facts support, the actions are those the policy allows for
that typology (one `anyOf` branch per typology, so a typology-action pair the
policy forbids cannot be written), findings are ids of the pack's items, open
questions come from a fixed list, and the narrative comes last. The server
enforces the schema while decoding (llama.cpp turns it into a grammar), so the
model can neither invent an id nor type a finding's numbers: code renders each
finding from the item it names. What a schema cannot hold (the narrative's
numbers and dates) stays with the verifier.

Decision fields come first so that a draft cut off by the token cap still
carries them; `salvage` closes a cut-off narrative at its last full sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.findings import item_finding
from fraudagent.agent.policy import ClassifyRule, Facts, Policy
from fraudagent.agent.report import Finding
from fraudagent.core.models import Action, Typology

MAX_FINDINGS = 3
MAX_UNKNOWNS = 2
MAX_SENTENCES = 2
# One sentence: no quote or backslash, a period only inside a number (99.99), a period at the end. The server's
# grammar then closes the narrative after at most two sentences (an unbounded string let the 0.5B model run on
# to the token cap). Written with [.] rather than an escaped dot: llama.cpp's grammar parser rejects "\." and the
# server process dies on it.
SENTENCE_PATTERN = '^([^".\\\\]|[.][0-9])+[.]$'
Confidence = Literal["low", "medium", "high"]
CONFIDENCE: dict[str, float] = {"low": 0.35, "medium": 0.6, "high": 0.85}

# What is still unknown, as analysts ask it; the model picks by key (a few tokens), code writes the sentence.
OPEN_QUESTIONS: dict[str, str] = {
    "holder_confirms": "Whether the account holder recognises this activity.",
    "card_dispute": "Whether the card holder has disputed, or will dispute, these charges.",
    "device_owner": "Who controls the new device or network.",
    "linked_owners": "Whether the linked accounts belong to the same person or household.",
    "items_used": "Whether the purchased items were delivered and used.",
    "gift_recipients": "Who redeemed the gift cards or received the currency.",
    "travel": "Whether the customer was travelling or moved country.",
    "refund_reasons": "Whether the stated refund or dispute reasons are genuine.",
}
# Never high-impact, never clearing: what the model may recommend when it disagrees with the rules.
MILD_ACTIONS = (Action.escalate, Action.step_up_verification, Action.hold_purchases)


class ModelDraft(BaseModel):
    """What the model writes; the schema sent to the server narrows every field to the case."""

    typology: Typology
    actions: list[Action] = Field(min_length=1, max_length=2)
    confidence: Confidence
    findings: list[str] = Field(min_length=1, max_length=MAX_FINDINGS)
    unknowns: list[str] = Field(default_factory=list, max_length=MAX_UNKNOWNS)
    narrative: list[str] = Field(default_factory=list, max_length=MAX_SENTENCES, description="one sentence each")

    @field_validator("narrative", mode="before")
    @classmethod
    def _sentences(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value  # a schema-less endpoint may answer with one string

    @property
    def text(self) -> str:
        return " ".join(s.strip() for s in self.narrative if s.strip())


@dataclass(frozen=True)
class Choices:
    """What the model may choose for one case, computed by code from the facts and the policy."""

    rule: ClassifyRule
    suggested: list[Action]
    actions: dict[Typology, list[Action]]  # per typology the model may choose, in the order shown
    finding_ids: list[str]

    @property
    def typologies(self) -> list[Typology]:
        return list(self.actions)


def permitted_actions(
    policy: Policy, typology: Typology, facts: Facts, *, rule: ClassifyRule, suggested: list[Action]
) -> list[Action]:
    """Actions the model may recommend with this typology.

    The policy's own limits (allowed per typology, high-impact needs a fact, no clearing while strong fraud facts
    hold), and one of ours: a high-impact action needs the rules to suggest it. Locking out a customer or blocking
    a card on the model's word alone, against the rules, is what went wrong on the hand-written cases; escalating
    needs less evidence than clearing or locking.
    """
    order = [*suggested, *MILD_ACTIONS, *policy.typologies[typology].allowed]
    out: list[Action] = []
    for action in dict.fromkeys(order):
        if action not in policy.typologies[typology].allowed or policy.action_problems(typology, [action], facts):
            continue
        if action in policy.high_impact and action not in suggested:
            continue
        if typology is not rule.typology and action not in MILD_ACTIONS and action not in suggested:
            if not (typology is Typology.legitimate and action is Action.close_no_action):
                continue
        out.append(action)
    return out


def choices(pack: EvidencePack, policy: Policy, facts: Facts, *, shown: list[str]) -> Choices:
    """The typologies the facts support (the rules' first), their permitted actions, and the citable ids shown.

    A case whose customer-written text tries to instruct the reviewer leaves the model no decision: the rules'
    typology and suggestion are the only choices (the model still writes the narrative and picks the findings).
    Trying to steer the review is itself a signal, and nothing the text says can then move the outcome."""
    rule = policy.classify_case(facts)
    suggested = policy.decide(rule.typology, facts).suggested
    actions: dict[Typology, list[Action]] = {}
    if "injection_attempt" in facts:
        actions[rule.typology] = list(suggested)
    for typology in [] if actions else [rule.typology, *Typology]:
        if typology in actions or not policy.supported(typology, facts):
            continue
        permitted = permitted_actions(policy, typology, facts, rule=rule, suggested=suggested)
        if permitted:
            actions[typology] = permitted
    ids = [i for i in shown if i in pack.items and pack.items[i].kind in ("fact", "txn", "acct", "dev")]
    ids = [i for i in ids if i != "fact:injection_attempt"]  # reported by code on its own
    return Choices(rule=rule, suggested=suggested, actions=actions, finding_ids=ids or [f"acct:{pack.case.account_id}"])


def draft_schema(c: Choices) -> dict[str, Any]:
    """The JSON schema the server enforces: one branch per typology with that typology's actions."""

    def branch(typology: Typology, actions: list[Action]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "typology": {"const": typology.value},
                "actions": {
                    "type": "array",
                    "items": {"enum": [a.value for a in actions]},
                    "minItems": 1,
                    "maxItems": 2,
                },
                "confidence": {"enum": list(CONFIDENCE)},
                "findings": {
                    "type": "array",
                    "items": {"enum": c.finding_ids},
                    "minItems": 1,
                    "maxItems": MAX_FINDINGS,
                },
                "unknowns": {"type": "array", "items": {"enum": list(OPEN_QUESTIONS)}, "maxItems": MAX_UNKNOWNS},
                "narrative": {
                    "type": "array",
                    "items": {"type": "string", "pattern": SENTENCE_PATTERN},
                    "minItems": 1,
                    "maxItems": MAX_SENTENCES,
                },
            },
            "required": ["typology", "actions", "confidence", "findings", "unknowns", "narrative"],
            "additionalProperties": False,
        }

    branches = [branch(t, a) for t, a in c.actions.items()]
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


_NARRATIVE_START = re.compile(r'"narrative"\s*:\s*(\[|(?="))')  # a list of sentences, or one string (schema off)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_STRING_START = re.compile(r'\s*,?\s*"')


def _partial_string(text: str) -> tuple[str, int | None]:
    """The JSON string body `text` starts, decoded as far as it goes, and where its closing quote ends (None: cut
    off; a cut-off escape is dropped)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt == "u":
                if i + 6 > len(text):
                    break
                try:
                    out.append(chr(int(text[i + 2 : i + 6], 16)))
                except ValueError:
                    break
                i += 6
                continue
            out.append({"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), None


def _narrative(raw: str) -> tuple[int, list[str], str | None] | None:
    """Where the narrative array starts, its complete sentences, and the one being written (None when none is)."""
    m = _NARRATIVE_START.search(raw)
    if m is None:
        return None
    done: list[str] = []
    rest = raw[m.end() :]
    if not m.group(1):  # one string: its finished sentences are done, the rest is being written
        text, end = _partial_string(rest[1:])
        if end is not None:
            return m.start(), [text], None
        cut = max((e.end() for e in _SENTENCE_END.finditer(text)), default=0)
        return m.start(), [text[:cut].strip()] if cut else [], text[cut:].strip() or None
    while (s := _STRING_START.match(rest)) is not None:
        text, end = _partial_string(rest[s.end() :])
        if end is None:
            return m.start(), done, text
        done.append(text)
        rest = rest[s.end() + end :]
    return m.start(), done, None


def narrative_so_far(raw: str) -> str | None:
    """The narrative as the model is writing it (for streaming), or None before it starts."""
    found = _narrative(raw)
    if found is None:
        return None
    _, done, current = found
    return " ".join([*done, *([current] if current else [])])


def salvage(raw: str) -> str | None:
    """A cut-off draft made whole: the narrative keeps its complete sentences. None when the decision fields
    themselves were cut off (nothing to salvage)."""
    found = _narrative(raw)
    if found is None:
        return None
    start, done, _ = found
    return raw[:start] + '"narrative": ' + json.dumps(done) + "}"


def parse_draft(raw: str) -> tuple[ModelDraft | None, str | None]:
    """(draft, None) or (None, why not), in words that can be sent back to the model."""
    text = raw.strip()
    if not text:
        return None, "the answer was empty"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        mended = salvage(text)
        if mended is None:
            return None, "the answer was not complete JSON (cut off before the narrative); be brief"
        try:
            value = json.loads(mended)
        except json.JSONDecodeError:
            return None, "the answer was not valid JSON"
    try:
        return ModelDraft.model_validate(value), None
    except ValidationError as error:
        first = error.errors()[0]
        return None, f"the answer did not match the schema at {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def render_finding(pack: EvidencePack, evidence_id: str) -> Finding:
    """A finding's statement written by code from the item the model chose, citing it and what it rests on."""
    return item_finding(pack, evidence_id, "model")


def render_unknowns(keys: list[str]) -> list[str]:
    return [OPEN_QUESTIONS[k] for k in dict.fromkeys(keys) if k in OPEN_QUESTIONS]

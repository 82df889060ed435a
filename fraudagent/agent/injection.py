"""Instructions hidden in customer-written text: detect them, withhold them from the model, report them.

Text a customer or fraudster wrote (display names, gift messages, support chats,
dispute text, case notes, past-case narratives) is evidence. When it talks to
the reviewer, claims authority, names our actions or verdicts, or tries to close
a prompt section, that is itself a signal: honest customers don't address the
fraud model. Detection is heuristic and can miss; it is one layer. The others do
not depend on it: untrusted text is quoted as data and never placed in the
system prompt, and the policy refuses actions the system signals don't support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fraudagent.agent.evidence import EvidenceItem, EvidencePack
from fraudagent.core.models import Action, Typology

# Each pattern names what the text tries to do; the report says that, never the text itself
# (repeating a planted phrase would carry the attack into the ticket).
_SIGNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "tells the reader to ignore or replace instructions",
        re.compile(
            r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|the|your|these)\b.{0,20}"
            r"\b(instructions?|rules?|prompt|guidelines|signals?|evidence|password reset|alerts?)\b",
            re.I | re.S,
        ),
    ),
    (
        "claims to speak as the system, staff or an administrator",
        re.compile(
            r"(^|[\s\[<#(])(system|assistant|admin|administrator|developer|moderator)\s*[:\]>]"
            r"|\b(trust[- ]and[- ]safety|risk team|fraud"
            r" team|compliance|management)\b.{0,40}\b(override|approved|whitelist\w*|policy|verified|cleared)\b"
            r"|\b(override|whitelist(ed)?)\b",
            re.I,
        ),
    ),
    (
        "addresses the AI or the reviewer directly",
        re.compile(
            r"\b(you are|as the|to you|you must|note to"
            r" the)\b.{0,30}\b(ai|model|assistant|reviewer|analyst|investigator|agent|bot)\b"
            r"|\b(ai model|language model|reviewing assistant|the reviewer)\b",
            re.I,
        ),
    ),
    (
        "asks for a verdict, an action or a disclosure",
        re.compile(
            r"\b(recommend(ed)?( action)?|mark (this|the) case|output typology|typology|confidence \d|close the case|do"
            r" not (escalate|lock|flag|void)"
            r"|unlock the account|print your|system prompt|false positive|investigation complete)\b",
            re.I,
        ),
    ),
    (
        "tries to close or open a prompt section",
        re.compile(
            r"</?\s*(evidence|system|instructions?|information|context|im_start|im_end)\s*>|<\|[a-z_]+\|>|^\s*#{2,}",
            re.I | re.M,
        ),
    ),
)
_CATALOGUE = re.compile(
    r"\b("
    + "|".join(sorted({*(a.value for a in Action), *(t.value for t in Typology if t is not Typology.legitimate)}))
    + r")\b",
    re.I,
)
WITHHELD = "[withheld: instruction-like text, see the injection finding]"


@dataclass(frozen=True, slots=True)
class Flag:
    evidence_id: str
    field: str
    signs: tuple[str, ...]


def signs_of(text: str) -> tuple[str, ...]:
    """What the text tries to do; empty when it reads like ordinary customer text."""
    found = [label for label, pattern in _SIGNS if pattern.search(text)]
    if _CATALOGUE.search(text):
        found.append("names an action or typology from our catalogue")
    # One weak sign (e.g. "typology" in a complaint) is not enough; two, or a strong one, is.
    strong = {_SIGNS[0][0], _SIGNS[1][0], _SIGNS[4][0], "names an action or typology from our catalogue"}
    return tuple(found) if len(found) >= 2 or strong & set(found) else ()


def field_of(item: EvidenceItem) -> str:
    """What kind of customer text an item carries, for labels and findings."""
    if item.kind == "acct":
        return "display name"
    if item.kind == "case":
        return "past-case narrative"
    kind = item.data.get("type", "")
    return {
        "support_contact": "support chat",
        "chargeback": "dispute text",
        "refund_request": "refund reason",
        "gift_card_purchase": "gift message",
    }.get(kind, "customer message")


def scan(pack: EvidencePack) -> list[Flag]:
    """Flag every untrusted text in the pack that reads like instructions, the case note included."""
    flags: list[Flag] = []
    if pack.case.note and (found := signs_of(pack.case.note)):
        flags.append(Flag(f"case:{pack.case.case_id}", "case note", found))
    for item in pack.items.values():
        if item.untrusted and (found := signs_of(item.untrusted)):
            flags.append(Flag(item.id, field_of(item), found))
    return flags


def finding_text(flag: Flag, case_id: str) -> str:
    what = "; ".join(flag.signs[:2])
    if flag.field == "past-case narrative":
        return (
            f"The narrative of past case {flag.evidence_id.removeprefix('case:')} contains instruction-like text"
            f" ({what}); it was withheld from the model and not used."
        )
    if flag.field == "case note":
        return (
            f"The customer-written note on case {case_id} contains instructions addressed to the reviewer ({what});"
            " trying to steer a review is itself a fraud signal."
        )
    return (
        f"The {flag.field} on {flag.evidence_id} contains instructions addressed to the reviewer ({what}); trying to"
        " steer a review is itself a fraud signal."
    )

"""The verifier: code checks every claim of a draft against the evidence and the policy.

A claim is the narrative's sentences and each finding. In each, every date,
time, id and number must appear in the evidence (numbers within the rounding
the claim states: "100" matches 99.99, "0.9" matches 0.91, "91%" matches 0.91);
every cited id must resolve; the typology must be one the facts support; the
actions must be allowed by the policy. Problems are phrased so they can be sent
back to the model as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fraudagent.agent.drafting import Choices, ModelDraft, render_finding
from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.findings import item_finding
from fraudagent.agent.policy import Policy, facts_of
from fraudagent.agent.report import Finding
from fraudagent.core.models import Typology

_ISO_DATETIME = re.compile(
    r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
_SHORT_DATE = re.compile(r"(?<![\d-])(\d{2})-(\d{2})(?:\s+(\d{2}):(\d{2}))?(?![\d-])")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::\d{2})?(?![\d:])")
_ID = re.compile(r"\b(?:[a-z]+:)?([A-Z][A-Z0-9]{0,5}-[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Z][A-Z0-9]{0,5}-\d)\b")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\s*%)?(?![\w])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'«(])")


@dataclass
class Vocabulary:
    """Everything checkable the evidence contains."""

    dates: set[date] = field(default_factory=set)
    month_days: set[tuple[int, int]] = field(default_factory=set)
    times: set[tuple[int, int]] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    numbers: list[Decimal] = field(default_factory=list)

    def add_text(self, text: str) -> None:
        text = self._take_dates(text)
        for ident in _ids(text):
            self.ids.add(ident)
            self._add_number_parts(ident)
        text = _ID.sub(_drop_id, text)
        for m in _TIME.finditer(text):
            self.times.add((int(m.group(1)), int(m.group(2))))
        text = _TIME.sub(" ", text)
        for value, percent in _numbers(text):
            self.numbers.append(value)
            if percent:
                self.numbers.append(value / 100)

    def _take_dates(self, text: str) -> str:
        for m in _ISO_DATETIME.finditer(text):
            try:
                d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                continue
            self.dates.add(d)
            self.month_days.add((d.month, d.day))
            self.numbers += [Decimal(d.year), Decimal(d.day)]
            if m.group(4):
                self.times.add((int(m.group(4)), int(m.group(5))))
        text = _ISO_DATETIME.sub(" ", text)
        for m in _SHORT_DATE.finditer(text):
            self.month_days.add((int(m.group(1)), int(m.group(2))))
            if m.group(3):
                self.times.add((int(m.group(3)), int(m.group(4))))
        return _SHORT_DATE.sub(" ", text)

    def _add_number_parts(self, ident: str) -> None:
        for part in re.findall(r"\d+", ident):
            self.numbers.append(Decimal(part))

    def add_value(self, value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                self.add_value(v)
        elif isinstance(value, (list, tuple, set)):
            for v in value:
                self.add_value(v)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float, Decimal)):
            d = Decimal(str(value))
            self.numbers += [d, d * 100]  # a share 0.85 may be written 85%
        elif isinstance(value, datetime):
            self.add_text(value.isoformat())
        else:
            self.add_text(str(value))

    def knows_number(self, claimed: Decimal, decimals: int, percent: bool) -> bool:
        targets = [claimed, claimed / 100] if percent else [claimed]
        for known in self.numbers:
            for target in targets:
                if abs(known - target) < Decimal("0.005"):
                    return True
                # Within the rounding the claim states: "100" for 99.99, "0.9" for 0.91, "91%" for 0.912.
                places = decimals + (2 if percent and target is not claimed else 0)
                if _round(known, places) == _round(target, places):
                    return True
        return False


def _ids(text: str) -> list[str]:
    """Id-like tokens (E-0042, PI-5, txn:E-1); hyphenated words without a digit (e-mail) are not ids."""
    return [m.group(1) for m in _ID.finditer(text) if any(ch.isdigit() for ch in m.group(1))]


def _drop_id(m: re.Match[str]) -> str:
    return " " if any(ch.isdigit() for ch in m.group(1)) else m.group(0)


def _round(value: Decimal, places: int) -> Decimal:
    if places < 0:
        return value
    try:
        return value.quantize(Decimal(1).scaleb(-places))
    except InvalidOperation:  # more digits than the decimal context holds (a model writing a 29-digit number)
        return value


def _numbers(text: str) -> Iterable[tuple[Decimal, bool]]:
    for m in _NUMBER.finditer(text):
        try:
            yield Decimal(m.group(1).replace(",", "") + (m.group(2) or "")), bool(m.group(3))
        except InvalidOperation:
            continue


def vocabulary(pack: EvidencePack, rendered: str = "") -> Vocabulary:
    """What the model saw (the rendered block) plus everything in the pack."""
    vocab = Vocabulary()
    vocab.add_text(rendered)
    vocab.add_value(pack.case.model_dump(mode="json", exclude={"note"}))
    for item in pack.items.values():
        vocab.add_text(item.id)
        vocab.add_text(item.line)
        vocab.add_value({k: v for k, v in item.data.items() if k not in ("text", "display_name", "narrative")})
    return vocab


def claim_problems(text: str, vocab: Vocabulary) -> list[str]:
    """The dates, times, ids and numbers in one claim that the evidence does not contain."""
    problems: list[str] = []
    for m in _ISO_DATETIME.finditer(text):
        try:
            d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            problems.append(f"{m.group(0)} is not a date")
            continue
        if d not in vocab.dates:
            problems.append(f"the date {d.isoformat()} is not in the evidence")
        elif m.group(4) and (int(m.group(4)), int(m.group(5))) not in vocab.times:
            problems.append(f"the time {m.group(4)}:{m.group(5)} is not in the evidence")
    rest = _ISO_DATETIME.sub(" ", text)
    for m in _SHORT_DATE.finditer(rest):
        if (int(m.group(1)), int(m.group(2))) not in vocab.month_days:
            problems.append(f"the date {m.group(1)}-{m.group(2)} is not in the evidence")
        if m.group(3) and (int(m.group(3)), int(m.group(4))) not in vocab.times:
            problems.append(f"the time {m.group(3)}:{m.group(4)} is not in the evidence")
    rest = _SHORT_DATE.sub(" ", rest)
    for ident in _ids(rest):
        if ident not in vocab.ids:
            problems.append(f"the id {ident} is not in the evidence")
    rest = _ID.sub(_drop_id, rest)
    for m in _TIME.finditer(rest):
        if (int(m.group(1)), int(m.group(2))) not in vocab.times:
            problems.append(f"the time {m.group(0)} is not in the evidence")
    rest = _TIME.sub(" ", rest)
    for m in _NUMBER.finditer(rest):
        raw = m.group(1).replace(",", "") + (m.group(2) or "")
        decimals = len(m.group(2)) - 1 if m.group(2) else 0
        if not vocab.knows_number(Decimal(raw), decimals, bool(m.group(3))):
            problems.append(f"the number {m.group(0).strip()} is not in the evidence")
    return problems


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


@dataclass
class Verdict:
    """The outcome of checking one draft."""

    findings: list[Finding]
    narrative: str
    problems: list[str]  # everything wrong, as sent back to the model
    fatal: list[str]  # problems removing claims cannot fix (typology, actions, nothing citable left)
    removable: list[str]  # claims dropped to accept the draft as it is

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def acceptable(self) -> bool:
        """Only removable claims are wrong: the draft stands with them removed and listed."""
        return not self.fatal


def verify(
    draft: ModelDraft,
    pack: EvidencePack,
    policy: Policy,
    vocab: Vocabulary,
    *,
    choices: Choices,
    max_narrative: int,
) -> Verdict:
    """Check a draft: its narrative sentence by sentence against the evidence, its findings' ids, its typology
    against the facts and its actions against the policy and the rules (drafting.permitted_actions)."""
    facts = facts_of(pack.items)
    problems: list[str] = []
    fatal: list[str] = []
    removable: list[str] = []

    kept_sentences: list[str] = []
    for n, sentence in enumerate(sentences(draft.text[: max_narrative * 2]), start=1):
        found = claim_problems(sentence, vocab)
        if found:
            problems.append(f"narrative sentence {n}: " + "; ".join(found))
            removable.append(sentence)
        else:
            kept_sentences.append(sentence)
    narrative = " ".join(kept_sentences)
    if len(narrative) > max_narrative:
        removable.append(narrative[max_narrative:])
        problems.append(f"the narrative is longer than {max_narrative} characters")
        narrative = narrative[:max_narrative].rsplit(" ", 1)[0] + "…"

    findings: list[Finding] = []
    for ref in dict.fromkeys(draft.findings):
        resolved = pack.resolve(ref)
        if resolved is None or resolved == "fact:injection_attempt":
            problems.append(f"finding {ref} is not an id of this case's evidence")
            removable.append(ref)
            continue
        findings.append(render_finding(pack, resolved))
    if not findings:
        fatal.append("no finding names an item of the evidence")

    if not policy.supported(draft.typology, facts):
        needs = ", ".join(str(c) for c in policy.typologies[draft.typology].supported_by)
        fatal.append(f"typology {draft.typology.value} is not supported by the facts (needs one of: {needs})")
    else:
        actions = list(dict.fromkeys(draft.actions))
        fatal += policy.action_problems(draft.typology, actions, facts)
        permitted = choices.actions.get(draft.typology) or []
        if draft.typology not in choices.actions and not policy.action_problems(draft.typology, actions, facts):
            fatal.append(
                f"typology {draft.typology.value} is not open for this case "
                f"(the rules conclude {choices.rule.typology.value})"
            )
        beyond = [
            a.value
            for a in actions
            if draft.typology in choices.actions
            and a not in permitted
            and not policy.action_problems(draft.typology, [a], facts)
        ]
        if beyond:
            fatal.append(
                f"{', '.join(beyond)} for {draft.typology.value} goes beyond what the rules support "
                f"(they conclude {choices.rule.typology.value}: {', '.join(a.value for a in choices.suggested)}); "
                f"without them escalate or step up verification"
            )
    problems += fatal
    return Verdict(findings=findings, narrative=narrative, problems=problems, fatal=fatal, removable=removable)


def required_findings(pack: EvidencePack, policy: Policy, typology: Typology, findings: list[Finding]) -> list[Finding]:
    """Findings code adds for facts the policy requires a report of this typology to cite, if the draft left them
    out."""
    cited = {ref for f in findings for ref in f.evidence_ids}
    added: list[Finding] = []
    for fact_id in policy.required_citations(typology, facts_of(pack.items)):
        if fact_id in cited:
            continue
        added.append(item_finding(pack, fact_id, "code"))
    return added

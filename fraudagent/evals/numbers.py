"""Numbers, amounts, dates and times in report text, and the ones the evidence holds.

A report may only state numbers it can show: a stated amount, date, time,
score or count must appear in the case's evidence (its events, scores and
accounts, and the lines the evidence pack shows the agent, which include the
computed facts). Evidence ids (txn:E-1, A-00012, C-200001) are removed before
extraction so the digits inside ids are not counted as claims.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from fraudagent.core.models import CaseBundle

_IDS = re.compile(r"\b(?:txn|score|acct|dev|case|fact):[\w.:\-]+|\b[A-Z]{1,4}-[A-Za-z0-9][\w\-]*")
_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?\b")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)")


@dataclass(frozen=True)
class Claim:
    kind: str  # date | time | number
    text: str
    value: str  # normal form


def _normal_number(text: str) -> str | None:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    normal = value.normalize()
    return format(normal, "f")


def extract(text: str) -> list[Claim]:
    """Dates (YYYY-MM-DD), times (HH:MM) and numbers in `text`, ids removed first."""
    rest = _IDS.sub(" ", text)
    claims: list[Claim] = []
    for m in _DATE.finditer(rest):
        claims.append(Claim("date", m.group(0), m.group(0)))
    rest = _DATE.sub(" ", rest)
    for m in _TIME.finditer(rest):
        claims.append(Claim("time", m.group(0), f"{int(m.group(1)):02d}:{m.group(2)}"))
    rest = _TIME.sub(" ", rest)
    for m in _NUMBER.finditer(rest):
        normal = _normal_number(m.group(1) + (m.group(2) or ""))
        if normal is not None:
            claims.append(Claim("number", m.group(0), normal + m.group(3)))
    return claims


@dataclass
class KnownValues:
    """Every date, time and number the evidence supports."""

    dates: set[str]
    times: set[str]
    numbers: set[str]

    def supports(self, claim: Claim) -> bool:
        if claim.kind == "date":
            return claim.value in self.dates
        if claim.kind == "time":
            return claim.value in self.times
        if claim.value.endswith("%"):
            pct = claim.value[:-1]
            as_share = _normal_number(str(Decimal(pct) / 100))
            return pct in self.numbers or as_share in self.numbers
        return claim.value in self.numbers


def _add_ts(ts: datetime, dates: set[str], times: set[str]) -> None:
    for moment in (ts, ts.astimezone(timezone.utc)):
        dates.add(f"{moment:%Y-%m-%d}")
        times.add(f"{moment:%H:%M}")


def _add_number(value: Any, numbers: set[str]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value)):
        dec = Decimal(str(value))
        numbers.add(_normal_number(str(abs(dec))) or "")
        for places in (0, 1, 2):  # a score 0.9137 may be written 0.91
            numbers.add(_normal_number(str(round(abs(dec), places))) or "")


def known_values(bundle: CaseBundle, evidence_lines: Iterable[str] = ()) -> KnownValues:
    """What the bundle's events, scores and accounts hold, plus what the evidence lines state
    (computed facts, counts), plus the count of events of each type."""
    dates: set[str] = set()
    times: set[str] = set()
    numbers: set[str] = set()
    _add_ts(bundle.case.opened_at, dates, times)
    for account in bundle.accounts:
        _add_ts(account.created_at, dates, times)
    own = [e for e in bundle.events if e.account_id == bundle.case.account_id]
    for event in bundle.events:
        _add_ts(event.ts, dates, times)
        _add_number(event.amount, numbers)
    for score in bundle.scores or []:
        _add_number(score.score, numbers)
        for reason in score.reasons:
            _add_number(reason.value, numbers)
            _add_number(reason.contribution, numbers)
    for past in bundle.past_cases:
        _add_ts(past.closed_at, dates, times)
    counts = Counter(e.type for e in own)
    for n in [len(own), len(bundle.events), len(bundle.accounts) - 1, *counts.values()]:
        _add_number(n, numbers)
    for line in evidence_lines:
        for claim in extract(line):
            {"date": dates, "time": times, "number": numbers}[claim.kind].add(claim.value.rstrip("%"))
    numbers.discard("")
    return KnownValues(dates=dates, times=times, numbers=numbers)


def check_text(text: str, known: KnownValues) -> tuple[list[Claim], list[Claim]]:
    """(supported, unsupported) claims in `text`."""
    good: list[Claim] = []
    bad: list[Claim] = []
    for claim in extract(text):
        (good if known.supports(claim) else bad).append(claim)
    return good, bad

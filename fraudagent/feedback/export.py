"""Decided cases as an eval suite: each closed case as a bundle whose `expected` is the analyst's decision.

    <out>/suite.yaml          name, description, generator (the filters used, whether personal data was kept)
    <out>/cases/<case>.json   the case's bundle (as `fraudagent export` writes it) with `expected`:
                              typology and disposition as decided, acceptable_actions = the actions taken,
                              must_cite = the events the decided-on report's findings cited (facts resolved to
                              the events they rest on, through the report's evidence snapshot)

Personal data is replaced by stable tokens unless `keep_pii`: account ids, device ids, payment-instrument ids become
keyed hashes with their usual prefixes (so links between events, accounts and scores stay), IP addresses and display
names become `ip-…` / `[name-…]`, and emails, card numbers, IPs and display names inside free text become tokens. The
key is a per-deployment secret (FRAUDAGENT_EXPORT_PII_KEY, or one made once in the cache folder): the same value
gets the same token in every export, and tokens cannot be checked against guessed values without the key.
Nothing is written when no decided case matches.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from fraudagent import store
from fraudagent.agent.evidence_ids import bare
from fraudagent.agent.pii import KeyedPseudonyms
from fraudagent.bundles.service import PastCaseSink, export_bundle
from fraudagent.core.errors import InvalidInput, NotFound, Problem
from fraudagent.core.models import CaseBundle, Typology
from fraudagent.core.settings import Settings
from fraudagent.store import audit
from fraudagent.store import feedback as feedback_store
from fraudagent.store.cases import CaseFilters, CaseRecord
from fraudagent.store.tables import Tables

Progress = Callable[[str, int, int], None]
EXPORT_SUBJECT = "export#decided"


@dataclass(frozen=True)
class ExportResult:
    out: Path
    cases: list[str]
    keep_pii: bool
    audit_id: str


def pii_key(settings: Settings) -> bytes:
    """The deployment's pseudonymisation key: the setting, else a random key made once beside the cache."""
    if settings.export_pii_key is not None:
        return settings.export_pii_key.get_secret_value().encode()
    path = settings.cache_dir / "export-pii.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another export made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
    key = path.read_text().strip()
    if not key:
        raise InvalidInput(f"{path} is empty; remove it (a new key is made) or set FRAUDAGENT_EXPORT_PII_KEY", [])
    return key.encode()


def decided_cases(history: Tables, *, since: date | None, typology: Typology | None) -> list[CaseRecord]:
    """Closed cases decided on or after `since`, with the decided typology `typology`, oldest decision first."""
    found: list[CaseRecord] = []
    cursor: str | None = None
    while True:
        page, cursor = store.cases.list_cases(
            history, status="closed", limit=200, cursor=cursor, filters=CaseFilters(typology=typology)
        )
        found += page
        if cursor is None:
            break
    chosen = [
        r
        for r in found
        if r.decision is not None
        and (typology is None or r.decision.typology is typology)
        and (since is None or r.decision.decided_at.date() >= since)
    ]
    return sorted(chosen, key=lambda r: (r.decision.decided_at, r.case.case_id))  # type: ignore[union-attr]


def must_cite(history: Tables, record: CaseRecord, event_ids: set[str]) -> list[str]:
    """The events the findings of the report the decision was compared with (else the latest report) cited."""
    agreement = feedback_store.get_agreement(history, record.case.case_id)
    report_id = agreement["report_id"] if agreement else None
    if report_id is None:
        latest = store.reports.reports(history, record.case.case_id, limit=1)
        if not latest:
            return []
        report_id = latest[0]["report_id"]
    try:
        report, snapshot = store.reports.report_with_snapshot(history, case_id=record.case.case_id, report_id=report_id)
        items = json.loads(snapshot).get("items", {})
    except NotFound:  # a report stored without its snapshot: its direct citations only
        report, items = store.reports.get_report(history, case_id=record.case.case_id, report_id=report_id), {}
    cited: list[str] = []
    for finding in report.get("findings", []):
        if finding.get("source") == "injection":
            continue
        for ref in finding.get("evidence_ids", []):
            rests_on = items.get(ref, {}).get("rests_on") or [] if ref.startswith("fact:") else [ref]
            cited += [bare(r) for r in rests_on]
    return sorted({c for c in cited if c in event_ids})


def pseudonymise(doc: dict[str, Any], pseudo: KeyedPseudonyms) -> dict[str, Any]:
    """The bundle with personal data replaced by stable tokens (ids keep their links)."""
    acct = lambda a: pseudo.ident("acct", "A-", a)  # noqa: E731
    case = dict(doc["case"], account_id=acct(doc["case"]["account_id"]))
    if case.get("note"):
        case["note"] = pseudo.mask(case["note"])
    case["trigger"] = dict(case["trigger"], detail=pseudo.mask(case["trigger"].get("detail", "")))
    accounts = []
    for a in doc["accounts"]:
        a = dict(a, account_id=acct(a["account_id"]))
        if a.get("display_name"):
            a["display_name"] = pseudo.token("name", a["display_name"])
        accounts.append(a)
    events = []
    for e in doc.get("events", []):
        e = dict(e, account_id=acct(e["account_id"]))
        if e.get("device_id"):
            e["device_id"] = pseudo.ident("dev", "D-", e["device_id"])
        if e.get("instrument_id"):
            e["instrument_id"] = pseudo.ident("pi", "PI-", e["instrument_id"])
        if e.get("ip"):
            e["ip"] = "ip-" + pseudo.digest("ip", e["ip"])
        if e.get("text"):
            e["text"] = pseudo.mask(e["text"])
        events.append(e)
    past = [dict(p, account_id=acct(p["account_id"]), narrative=pseudo.mask(p["narrative"])) for p in doc["past_cases"]]
    return dict(doc, case=case, accounts=accounts, events=events, past_cases=past)


def export_decided(
    history: Tables,
    *,
    past_case_store: PastCaseSink | None,
    out: Path,
    since: date | None,
    typology: Typology | None,
    keep_pii: bool,
    key: bytes,
    actor: str,
    name: str | None = None,
    on_progress: Progress | None = None,
) -> ExportResult:
    """Write the decided cases as a suite folder at `out` (which must not exist or be empty); audited."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} exists and is not an empty folder; choose a new --out", [Problem("out", "exists")])
    records = decided_cases(history, since=since, typology=typology)
    if not records:
        filters = ", ".join(
            f for f in (f"since {since}" if since else "", f"typology {typology.value}" if typology else "") if f
        )
        raise InvalidInput(f"no decided cases{' (' + filters + ')' if filters else ''}: nothing was written", [])
    progress = on_progress or (lambda *_: None)
    bundles: list[CaseBundle] = []
    for n, record in enumerate(records, start=1):
        assert record.decision is not None
        doc = export_bundle(history, record.case.case_id, past_case_store=past_case_store)
        doc["past_cases"] = doc.get("past_cases", [])
        event_ids = {e["event_id"] for e in doc.get("events", [])}
        doc["expected"] = {
            "typology": record.decision.typology.value,
            "disposition": record.decision.disposition.value,
            "acceptable_actions": [a.value for a in record.decision.actions],
            "must_cite": must_cite(history, record, event_ids),
            "must_not_contain": [],
        }
        if not keep_pii:
            names = [a["display_name"] for a in doc["accounts"] if a.get("display_name")]
            doc = pseudonymise(doc, KeyedPseudonyms(key, names=names))
        bundles.append(CaseBundle.model_validate(doc))  # what is written is a valid bundle
        progress("decided cases", n, len(records))
    suite = name or f"decided-{date.today().isoformat()}"
    spec = {
        "name": suite,
        "description": (
            f"{len(bundles)} case(s) decided by analysts, expected = the decision"
            + ("" if keep_pii else "; personal data replaced by stable tokens")
        ),
        "generator": "fraudagent eval export --decided"
        + (f" --since {since}" if since else "")
        + (f" --typology {typology.value}" if typology else "")
        + (" --keep-pii" if keep_pii else ""),
    }
    (out / "cases").mkdir(parents=True, exist_ok=True)
    (out / "suite.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    for bundle in bundles:
        (out / "cases" / f"{bundle.case.case_id}.json").write_text(
            bundle.model_dump_json(exclude_none=True), encoding="utf-8"
        )
    event = audit.record(
        history,
        subject=EXPORT_SUBJECT,
        action="suite.exported",
        actor=actor,
        details={
            "cases": len(bundles),
            "keep_pii": keep_pii,
            "since": since.isoformat() if since else None,
            "typology": typology.value if typology else None,
            "suite": suite,
        },
    )
    return ExportResult(out=out, cases=[b.case.case_id for b in bundles], keep_pii=keep_pii, audit_id=event.audit_id)

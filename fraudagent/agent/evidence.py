"""The evidence pack: everything the agent may cite, each item with a stable id.

Ids: `txn:<event>`, `score:<event>`, `acct:<account>`, `dev:<device>`,
`case:<past case>`, `fact:<name>` (agent/evidence_ids.py). The sources are the
agent's tools (fraudagent/tools/: history, linked accounts, risk scores, similar
past cases), read in parallel, each with a
timeout; a source that fails or times out is recorded, not fatal. Every bound
that cut something is listed in `cuts`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fraudagent import store
from fraudagent.agent import evidence_ids
from fraudagent.agent.evidence_ids import ItemKind
from fraudagent.core.models import Account, Case, CaseBundle
from fraudagent.core.reasons import describe_reason
from fraudagent.store.cases import CaseRecord
from fraudagent.store.events import ScoredEvent
from fraudagent.store.tables import Tables
from fraudagent.tools.history import account_history
from fraudagent.tools.linked import MAX_LINK_EVENTS, LinkKey, group_links, link_keys, linked_events
from fraudagent.tools.scores import ScoreProvider, risk_scores
from fraudagent.tools.similar_cases import PastCases, similar_cases

DEFAULT_TIMEOUT_S = 20.0
PRIOR_DAYS = 365 + 45  # history older than the window, read only for chargebacks (Visa CE 3.0 looks back a year)
LINKED_EVENTS_SHOWN = 2  # per linked account: its latest events on a shared device or instrument, citable as txn items
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_untrusted(text: str, limit: int = 160) -> str:
    """Customer text made safe to quote: no control/bidi characters, no quote marks we use, bounded."""
    flat = " ".join(_CONTROL.sub(" ", text).split()).replace("«", '"').replace("»", '"')
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class EvidenceItem(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    kind: ItemKind
    line: str = Field(description="compact rendering written by code (trusted)")
    untrusted: str | None = Field(default=None, description="customer-written text attached to the item")
    rests_on: list[str] = Field(default_factory=list, description="event ids a fact is computed from")
    data: dict[str, Any] = Field(default_factory=dict)


class EvidencePack(BaseModel):
    case: Case
    status: str
    account: Account | None
    events: list[ScoredEvent]
    prior_events: list[ScoredEvent] = Field(default_factory=list, description="older history read for chargeback rules")
    items: dict[str, EvidenceItem]
    cuts: list[str] = Field(default_factory=list)
    sources: dict[str, str] = Field(default_factory=dict)
    similar_summary: str | None = Field(default=None, description="how the nearest past cases ended, in a sentence")

    def add(self, item: EvidenceItem) -> None:
        self.items[item.id] = item

    def resolve(self, ref: str) -> str | None:
        """An id as a model wrote it -> the pack's id, or None (the grammar and its rules: agent/evidence_ids.py)."""
        return evidence_ids.resolve(ref, self.items)

    def snapshot_hash(self) -> str:
        """Identifies exactly what the agent saw, for the audit record."""
        payload = json.dumps([i.model_dump(mode="json") for i in self.items.values()], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def _event_line(scored: ScoredEvent) -> str:
    e = scored.event
    parts = [f"{e.ts:%Y-%m-%d %H:%M}", e.type.value]
    if e.amount is not None:
        parts.append(f"{e.amount} {e.currency}")
    if e.category:
        parts.append(e.category)
    if e.device_id:
        parts.append(f"device {e.device_id}")
    if e.ip_country:
        parts.append(f"ip_country {e.ip_country}")
    if e.instrument_id:
        parts.append(f"instrument {e.instrument_id}" + (f" (BIN {e.bin_country})" if e.bin_country else ""))
    if e.status:
        parts.append(e.status)
    return " | ".join(parts)


def _score_line(scored: ScoredEvent) -> str:
    s = scored.score
    assert s is not None
    reasons = ", ".join(f"{describe_reason(r)} ({r.contribution:+.2f})" for r in s.reasons[:3])
    return f"{s.score:.2f} by {s.model_version}" + (f": {reasons}" if reasons else "")


def _add_event(pack: EvidencePack, scored: ScoredEvent) -> None:
    e = scored.event
    other = f"account {e.account_id} | " if e.account_id != pack.case.account_id else ""
    pack.add(
        EvidenceItem(
            id=f"txn:{e.event_id}",
            kind="txn",
            line=other + _event_line(scored),
            untrusted=clean_untrusted(e.text) if e.text else None,
            data=e.model_dump(mode="json", exclude_none=True),
        )
    )
    if scored.score is not None:
        pack.add(
            EvidenceItem(
                id=f"score:{e.event_id}",
                kind="score",
                line=_score_line(scored),
                rests_on=[e.event_id],
                data=scored.score.model_dump(mode="json"),
            )
        )


def _account_line(account: Account, role: str) -> str:
    parts = [role, f"created {account.created_at:%Y-%m-%d}", f"country {account.country}"]
    if account.tier:
        parts.append(f"tier {account.tier}")
    if account.email_domain:
        parts.append(f"email domain {account.email_domain}")
    return " | ".join(parts)


@dataclass(frozen=True)
class Known:
    """What the caller read about a case just before (alert intake, about to open it): the case record (which need
    not be stored yet) and, when given, the case account and its events in the evidence window, read with the same
    bounds as `gather_evidence` would (`account_history`, newest `max_events`). These are not read again."""

    record: CaseRecord
    accounts: dict[str, Account] | None = None
    events: tuple[list[ScoredEvent], bool] | None = None  # the events and whether the bound cut them


def _run(pack: EvidencePack, name: str, future: Future[Any], default: Any, timeouts: Mapping[str, float]) -> Any:
    """The source's result, or `default` with the reason recorded; a source's timeout is looked up by its family."""
    timeout = timeouts.get(name.split(":")[0], DEFAULT_TIMEOUT_S)
    try:
        result = future.result(timeout=timeout)
        pack.sources[name] = "ok"
        return result
    except FutureTimeout:
        future.cancel()
        pack.sources[name] = f"timeout after {timeout:g}s"
    except Exception as error:  # a failing source is reported in the pack, not fatal
        pack.sources[name] = f"error: {type(error).__name__}"
    return default


def gather_evidence(
    *,
    history: Tables,
    case_id: str,
    past_cases: PastCases | None,
    window_days: int,
    max_events: int,
    max_linked: int,
    similar_k: int,
    score_provider: ScoreProvider | None = None,
    timeouts: Mapping[str, float] | None = None,
    known: Known | None = None,
) -> EvidencePack:
    """Read everything about the case in parallel, bounded, and index it by evidence id.

    Each source (events, accounts, scores, linked, prior, past_cases) has its own timeout; one
    that fails or times out is recorded in `sources` and the report is built without it. With
    a remote score provider the events are re-scored through it; if it fails, the stored
    scores stay and `sources` says why. What `known` holds is used instead of reading it.
    """
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="evidence")
    try:
        return _gather(
            pool,
            history,
            case_id,
            past_cases,
            window_days,
            max_events,
            max_linked,
            similar_k,
            score_provider,
            timeouts or {},
            known,
        )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung source must not hold the report


def _gather(
    pool: ThreadPoolExecutor,
    history: Tables,
    case_id: str,
    past_cases: PastCases | None,
    window_days: int,
    max_events: int,
    max_linked: int,
    similar_k: int,
    score_provider: ScoreProvider | None,
    timeouts: Mapping[str, float],
    known: Known | None,
) -> EvidencePack:
    record: CaseRecord = known.record if known is not None else store.cases.get_case(history, case_id)
    case = record.case
    start = case.opened_at - timedelta(days=window_days)
    end = case.opened_at + timedelta(days=1)
    pack = EvidencePack(case=case, status=record.status, account=None, events=[], items={})

    known_accounts = known.accounts if known is not None else None
    known_events = known.events if known is not None else None
    accounts_f = (
        None if known_accounts is not None else pool.submit(store.events.get_accounts, history, [case.account_id])
    )
    if known_events is not None:
        events, cut = known_events
        pack.sources["events"] = "ok"
    else:
        events_f = pool.submit(
            account_history, history, account_id=case.account_id, start=start, end=end, max_items=max_events
        )
        events, cut = _run(pack, "events", events_f, ([], False), timeouts)
    if accounts_f is not None:
        accounts = _run(pack, "accounts", accounts_f, {}, timeouts)
    else:
        accounts = known_accounts
        pack.sources["accounts"] = "ok"
    pack.account = accounts.get(case.account_id)
    if score_provider is not None and score_provider.name != "stored" and events:
        profile = [pack.account] if pack.account else []
        rescored = _run(
            pack,
            f"scores:{score_provider.name}",
            pool.submit(risk_scores, score_provider, events=events, accounts=profile),
            None,
            timeouts,
        )
        if rescored is not None:
            events = rescored
    pack.events = events
    if cut:
        pack.cuts.append(f"events: only the newest {max_events} in the {window_days}-day window")
    for scored in events:
        _add_event(pack, scored)
    chargebacks = [s.event.ts for s in events if s.event.type.value == "chargeback"]
    if chargebacks:
        prior_f = pool.submit(
            account_history,
            history,
            account_id=case.account_id,
            start=min(chargebacks) - timedelta(days=PRIOR_DAYS),
            end=start,
            max_items=max_events,
        )
        prior, _ = _run(pack, "prior", prior_f, ([], False), timeouts)
        pack.prior_events = [s for s in prior if s.event.ts < start]
        for scored in pack.prior_events:
            _add_event(pack, scored)
    if pack.account:
        _add_case_account(pack, pack.account)

    # Who else used this account's devices and instruments (bounded), and similar past cases.
    link_futures = {
        key: pool.submit(linked_events, history, key=key, start=start, end=end) for key in link_keys(events)
    }
    read: dict[LinkKey, list[ScoredEvent]] = {}
    for (kind, value), future in link_futures.items():
        read[(kind, value)], link_cut = _run(pack, f"linked:{kind}", future, ([], False), timeouts)
        if link_cut:
            pack.cuts.append(f"linked {kind} {value}: only the newest {MAX_LINK_EVENTS} events")
    linked, device_stats, their_events = group_links(read, account_id=case.account_id, until=case.opened_at)
    _add_devices(pack, device_stats)
    _add_linked_accounts(pack, history, linked, their_events, max_linked)
    if past_cases is not None and similar_k > 0:
        # After the links are known: the query excludes the case's account and every linked one.
        search = pool.submit(
            similar_cases,
            past_cases,
            case=case,
            account=pack.account,
            events=[s.event for s in events],
            linked_account_ids=linked,
            k=similar_k,
        )
        found = _run(pack, "past_cases", search, None, timeouts)
        if found is not None:
            pack.similar_summary = found.summary.headline
            for hit in found.neighbours:
                _add_similar_case(pack, hit)
    return pack


def _add_case_account(pack: EvidencePack, account: Account) -> None:
    pack.add(
        EvidenceItem(
            id=f"acct:{account.account_id}",
            kind="acct",
            line=_account_line(account, "case account"),
            untrusted=clean_untrusted(account.display_name) if account.display_name else None,
            data=account.model_dump(mode="json", exclude_none=True),
        )
    )


def pack_from_bundle(bundle: CaseBundle, *, similar: Sequence[Any] = ()) -> EvidencePack:
    """The pack of a case from its bundle alone, with no store: the case's events with the bundle's scores, its
    account, the devices it used (seen on this account only: no other account's events are known), and `similar`
    past cases (search hits) if given. For tests and offline checks; a live case's pack comes from
    `gather_evidence`, which also reads the history before the window and the accounts linked to this one."""
    case = bundle.case
    scores = {s.event_id: s for s in bundle.scores or []}
    own = sorted((e for e in bundle.events if e.account_id == case.account_id), key=lambda e: e.ts)
    account = next((a for a in bundle.accounts if a.account_id == case.account_id), None)
    pack = EvidencePack(case=case, status="open", account=account, events=[], items={})
    pack.events = [ScoredEvent(event=e, score=scores.get(e.event_id)) for e in own]
    for scored in pack.events:
        _add_event(pack, scored)
    if account is not None:
        _add_case_account(pack, account)
    devices: dict[str, list[ScoredEvent]] = defaultdict(list)
    for scored in pack.events:
        if scored.event.device_id:
            devices[scored.event.device_id].append(scored)
    _add_devices(pack, devices)
    for hit in similar:
        _add_similar_case(pack, hit)
    return pack


def _add_similar_case(pack: EvidencePack, hit: Any) -> None:
    c = hit.case
    why = ", ".join(hit.matched_signals[:4]) or ", ".join(hit.matched_terms[:4]) or "wording"
    pack.add(
        EvidenceItem(
            id=f"case:{c.case_id}",
            kind="case",
            line=(
                f"past case closed {c.closed_at:%Y-%m-%d} | {c.typology.value} | {c.disposition.value}"
                f" | actions {', '.join(a.value for a in c.actions) or 'none'} | similarity {hit.similarity:.2f}"
                f" | matched on {why}"
            ),
            untrusted=clean_untrusted(c.narrative, limit=220),
            data=c.model_dump(mode="json") | {"similarity": hit.similarity, "matched_signals": hit.matched_signals},
        )
    )


def _add_devices(pack: EvidencePack, device_stats: dict[str, list[ScoredEvent]]) -> None:
    own = pack.case.account_id
    for device, events in device_stats.items():
        mine = [s.event for s in pack.events if s.event.device_id == device]
        others = sorted({s.event.account_id for s in events} - {own})
        first = min((e.ts for e in mine), default=None)
        line = f"device used by {len(others) + 1} account(s) in the window"
        if first:
            line += f" | first seen on this account {first:%Y-%m-%d %H:%M}"
        pack.add(
            EvidenceItem(
                id=f"dev:{device}",
                kind="dev",
                line=line,
                rests_on=[e.event_id for e in mine[:1]],
                data={
                    "device_id": device,
                    "other_accounts": others,
                    "first_seen": first.isoformat() if first else None,
                },
            )
        )


def _add_linked_accounts(
    pack: EvidencePack,
    history: Tables,
    linked: dict[str, dict[str, list[str]]],
    events: dict[str, dict[str, ScoredEvent]],
    max_linked: int,
) -> None:
    """A linked account, and its latest events on the shared device or instrument as citable items: what the link
    rests on (another account's first-purchase offer on the same phone, its top-up on the same card)."""
    ranked = sorted(linked.items(), key=lambda kv: (-sum(len(v) for v in kv[1].values()), kv[0]))
    if len(ranked) > max_linked:
        pack.cuts.append(f"linked accounts: {len(ranked)} found, {max_linked} kept")
        ranked = ranked[:max_linked]
    profiles = store.events.get_accounts(history, [a for a, _ in ranked]) if ranked else {}
    for account_id, via in ranked:
        shared = "; ".join(f"shares {k} ({len(v)} events)" for k, v in sorted(via.items()))
        latest = sorted(events.get(account_id, {}).values(), key=lambda s: (s.event.ts, s.event.event_id))[
            -LINKED_EVENTS_SHOWN:
        ]
        for scored in latest:
            _add_event(pack, scored)
        profile = profiles.get(account_id)
        line = _account_line(profile, "linked account") if profile else "linked account (no profile)"
        pack.add(
            EvidenceItem(
                id=f"acct:{account_id}",
                kind="acct",
                line=f"{line} | {shared}",
                untrusted=clean_untrusted(profile.display_name) if profile and profile.display_name else None,
                rests_on=[s.event.event_id for s in latest],
                data={"account_id": account_id, "shared": {k: v for k, v in via.items()}},
            )
        )


def add_event(pack: EvidencePack, scored: ScoredEvent) -> None:
    """Add an event (and its score) read later, e.g. by a chat tool, under the usual ids."""
    _add_event(pack, scored)


def add_similar_case(pack: EvidencePack, hit: Any) -> None:
    """Add a similar past case found later, e.g. by a chat tool, as a `case:` item."""
    _add_similar_case(pack, hit)

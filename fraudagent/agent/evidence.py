"""The evidence pack: everything the agent may cite, each item with a stable id.

Ids: `txn:<event>`, `score:<event>`, `acct:<account>`, `dev:<device>`,
`case:<past case>`, `fact:<name>`. Sources are read in parallel, each with a
timeout; a source that fails or times out is recorded, not fatal. Every bound
that cut something is listed in `cuts`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.models import Account, Case
from fraudagent.core.reasons import describe_reason
from fraudagent.retrieval.queries import case_query
from fraudagent.tools import history as store
from fraudagent.tools.history import CaseRecord, History, ScoredEvent

ItemKind = Literal["txn", "score", "acct", "dev", "case", "fact"]

DEFAULT_TIMEOUT_S = 20.0
PRIOR_DAYS = 365 + 45  # history older than the window, read only for chargebacks (Visa CE 3.0 looks back a year)
MAX_LINK_KEYS = 6  # devices/instruments per case whose other users we look up
LINKED_EVENTS_SHOWN = 2  # per linked account: its latest events on a shared device or instrument, citable as txn items
EVIDENCE_KINDS = tuple(f"{kind}:" for kind in get_args(ItemKind))  # the prefixes of evidence ids
BARE_ID_KINDS = tuple(k for k in EVIDENCE_KINDS if k != "score:")  # what a bare id names (E-1: the event, not its score)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean_untrusted(text: str, limit: int = 160) -> str:
    """Customer text made safe to quote: no control/bidi characters, no quote marks we use, bounded."""
    flat = " ".join(_CONTROL.sub(" ", text).split()).replace("«", "\"").replace("»", "\"")
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
        """An id as a model wrote it -> the pack's id, or None. Accepts a bare id (`E-1`) and an id under a kind
        the pack does not use (`event:E-1`, `transaction:E-1`), when exactly one item has it; an id under one of
        the pack's own kinds must be that kind (`acct:E-1` is not the event E-1)."""
        ref = ref.strip().strip("[]")
        if ref in self.items:
            return ref
        kind, colon, bare = ref.partition(":")
        if colon and kind + colon in EVIDENCE_KINDS:
            return None
        bare = bare.strip() if colon else ref
        matches = [kind + bare for kind in BARE_ID_KINDS if kind + bare in self.items]
        return matches[0] if len(matches) == 1 else None

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
    history: History,
    case_id: str,
    past_cases: Any | None,
    window_days: int,
    max_events: int,
    max_linked: int,
    similar_k: int,
    score_provider: Any | None = None,
    timeouts: Mapping[str, float] | None = None,
) -> EvidencePack:
    """Read everything about the case in parallel, bounded, and index it by evidence id.

    Each source (events, accounts, scores, linked, prior, past_cases) has its own timeout; one
    that fails or times out is recorded in `sources` and the report is built without it. With
    a remote score provider the events are re-scored through it; if it fails, the stored
    scores stay and `sources` says why.
    """
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="evidence")
    try:
        return _gather(pool, history, case_id, past_cases, window_days, max_events, max_linked, similar_k,
                       score_provider, timeouts or {})  # fmt: skip
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung source must not hold the report


def _gather(
    pool: ThreadPoolExecutor,
    history: History,
    case_id: str,
    past_cases: Any | None,
    window_days: int,
    max_events: int,
    max_linked: int,
    similar_k: int,
    score_provider: Any | None,
    timeouts: Mapping[str, float],
) -> EvidencePack:
    record: CaseRecord = store.get_case(history, case_id)
    case = record.case
    start = case.opened_at - timedelta(days=window_days)
    end = case.opened_at + timedelta(days=1)
    pack = EvidencePack(case=case, status=record.status, account=None, events=[], items={})

    accounts_f = pool.submit(store.get_accounts, history, [case.account_id])
    events_f = pool.submit(store.account_events, history, case.account_id, start=start, end=end, max_items=max_events)
    events, cut = _run(pack, "events", events_f, ([], False), timeouts)
    accounts = _run(pack, "accounts", accounts_f, {}, timeouts)
    pack.account = accounts.get(case.account_id)
    if score_provider is not None and score_provider.name != "stored" and events:
        profile = [pack.account] if pack.account else []
        rescored = _run(pack, f"scores:{score_provider.name}", pool.submit(score_provider.scores, events, profile), None, timeouts)
        if rescored is not None:
            by_event = {s.event_id: s for s in rescored}
            events = [ScoredEvent(event=s.event, score=by_event.get(s.event.event_id, s.score)) for s in events]
    pack.events = events
    if cut:
        pack.cuts.append(f"events: only the newest {max_events} in the {window_days}-day window")
    for scored in events:
        _add_event(pack, scored)
    chargebacks = [s.event.ts for s in events if s.event.type.value == "chargeback"]
    if chargebacks:
        prior_f = pool.submit(store.account_events, history, case.account_id,
                              start=min(chargebacks) - timedelta(days=PRIOR_DAYS), end=start, max_items=max_events)  # fmt: skip
        prior, _ = _run(pack, "prior", prior_f, ([], False), timeouts)
        pack.prior_events = [s for s in prior if s.event.ts < start]
        for scored in pack.prior_events:
            _add_event(pack, scored)
    if pack.account:
        pack.add(
            EvidenceItem(
                id=f"acct:{case.account_id}",
                kind="acct",
                line=_account_line(pack.account, "case account"),
                untrusted=clean_untrusted(pack.account.display_name) if pack.account.display_name else None,
                data=pack.account.model_dump(mode="json", exclude_none=True),
            )
        )

    # Who else used this account's devices and instruments (bounded), and similar past cases.
    keys: list[tuple[store.LinkKind, str]] = []
    for kind, attr in (("device", "device_id"), ("instrument", "instrument_id")):
        seen = list(dict.fromkeys(getattr(s.event, attr) for s in events if getattr(s.event, attr)))
        keys += [(kind, v) for v in seen[-MAX_LINK_KEYS // 2 :]]  # the most recently used ones
    link_futures = {
        key: pool.submit(store.linked_events, history, key[0], key[1], start=start, end=end, max_items=200)
        for key in keys
    }
    linked: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    linked_events: dict[str, dict[str, ScoredEvent]] = defaultdict(dict)
    device_stats: dict[str, list[ScoredEvent]] = defaultdict(list)
    for (kind, value), future in link_futures.items():
        found, link_cut = _run(pack, f"linked:{kind}", future, ([], False), timeouts)
        if link_cut:
            pack.cuts.append(f"linked {kind} {value}: only the newest 200 events")
        for scored in found:
            if kind == "device":
                device_stats[value].append(scored)
            if scored.event.account_id != case.account_id:
                linked[scored.event.account_id][f"{kind} {value}"].append(scored.event.event_id)
                if scored.event.ts <= case.opened_at:
                    linked_events[scored.event.account_id][scored.event.event_id] = scored
    _add_devices(pack, device_stats)
    _add_linked_accounts(pack, history, linked, linked_events, max_linked)
    if past_cases is not None and similar_k > 0:
        # After the links are known: the query excludes the case's account and every linked one.
        query = case_query(case=case, account=pack.account, events=[s.event for s in events], linked_account_ids=linked)
        found = _run(pack, "past_cases", pool.submit(past_cases.find, query, k=similar_k), None, timeouts)
        if found is not None:
            pack.similar_summary = found.summary.headline
            for hit in found.neighbours:
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
                data={"device_id": device, "other_accounts": others, "first_seen": first.isoformat() if first else None},
            )
        )


def _add_linked_accounts(
    pack: EvidencePack,
    history: History,
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
    profiles = store.get_accounts(history, [a for a, _ in ranked]) if ranked else {}
    for account_id, via in ranked:
        shared = "; ".join(f"shares {k} ({len(v)} events)" for k, v in sorted(via.items()))
        latest = sorted(events.get(account_id, {}).values(), key=lambda s: (s.event.ts, s.event.event_id))[-LINKED_EVENTS_SHOWN:]
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

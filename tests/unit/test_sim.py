"""The simulated store: determinism, bundle validity, ground truth, scorer leakage, narratives."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from fraudagent.core.models import (
    Action,
    CaseBundle,
    Disposition,
    Event,
    EventType,
    PastCase,
    Typology,
)
from fraudagent.risk.rules import FEATURE_NAMES, MAX_REASONS, SCORED_EVENTS, SCORER_VERSION, score_events
from fraudagent.sim import World, generate_world, write_world
from fraudagent.sim.alerts import BUNDLE_LOOKBACK
from fraudagent.sim.playbook import ACCEPTABLE_ACTIONS

SMALL_PAST_CASES = 200
RING_TYPOLOGIES = (Typology.mule_ring, Typology.gift_card_laundering, Typology.promo_abuse)


def small_world(seed: int) -> World:
    return generate_world(seed=seed, accounts=400, days=30, past_cases=SMALL_PAST_CASES)


@pytest.fixture(scope="module")
def world() -> World:
    return small_world(7)


@pytest.fixture(scope="module")
def written(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(world, out)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_writes_identical_files(written: Path, tmp_path: Path) -> None:
    write_world(small_world(7), tmp_path)
    assert _files(tmp_path) == _files(written)


def test_different_seed_writes_a_different_world(written: Path, tmp_path: Path) -> None:
    write_world(small_world(8), tmp_path)
    assert (tmp_path / "store" / "events.jsonl").read_bytes() != (written / "store" / "events.jsonl").read_bytes()


def test_write_world_reports_counts_and_progress(world: World, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    counts = write_world(world, tmp_path, on_progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert counts == {
        "accounts": len(world.accounts),
        "events": len(world.events),
        "scores": len(world.scores),
        "past_cases": len(world.past_cases),
        "alerts": len(world.alerts),
    }
    finished = {stage for stage, done, total in seen if done == total}
    assert finished == {"accounts", "events", "scores", "past_cases", "alerts", "manifest"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["counts"] == counts and manifest["scorer_version"] == SCORER_VERSION
    assert len(list((tmp_path / "alerts").glob("C-*.json"))) == len(world.alerts)


def test_store_lines_have_the_case_bundle_shapes(written: Path) -> None:
    lines = (written / "store" / "events.jsonl").read_text().splitlines()
    for line in lines:
        record = json.loads(line)
        assert None not in record.values()
        assert record["ts"].endswith("Z")
        Event.model_validate(record)
    for line in (written / "store" / "past_cases.jsonl").read_text().splitlines():
        PastCase.model_validate_json(line)


def test_events_are_ordered_unique_and_inside_the_window(world: World) -> None:
    keys = [(e.ts, e.event_id) for e in world.events]
    assert keys == sorted(keys)
    assert len({e.event_id for e in world.events}) == len(world.events)
    created = {a.account_id: a.created_at for a in world.accounts}
    for event in world.events:
        assert world.start <= event.ts < world.end
        assert event.ts >= created[event.account_id]


def test_every_event_type_occurs_and_logins_dominate(world: World) -> None:
    types = Counter(e.type for e in world.events)
    assert set(types) == set(EventType)
    assert types.most_common(1)[0][0] is EventType.login


def test_ip_addresses_are_public(world: World) -> None:
    for ip in {e.ip for e in world.events if e.ip}:
        assert ipaddress.ip_address(ip).is_global, ip


def test_every_alert_bundle_validates_and_cross_references(written: Path, world: World) -> None:
    assert world.alerts
    for path in sorted((written / "alerts").glob("C-*.json")):
        bundle = CaseBundle.model_validate(json.loads(path.read_text()))
        account_ids = [a.account_id for a in bundle.accounts]
        event_ids = [e.event_id for e in bundle.events]
        score_ids = [s.event_id for s in bundle.scores or []]
        assert len(set(account_ids)) == len(account_ids)
        assert len(set(event_ids)) == len(event_ids)
        assert len(set(score_ids)) == len(score_ids)
        assert bundle.case.account_id == account_ids[0]
        assert {e.account_id for e in bundle.events} <= set(account_ids)
        assert set(score_ids) <= set(event_ids)
        assert bundle.expected is not None
        assert 1 <= len(bundle.expected.must_cite) <= 4
        assert set(bundle.expected.must_cite) <= set(event_ids)
        for event in bundle.events:
            assert bundle.case.opened_at - BUNDLE_LOOKBACK <= event.ts <= bundle.case.opened_at


def test_alerts_cite_at_least_two_events_as_a_rule(world: World) -> None:
    well_cited = sum(len(b.expected.must_cite) >= 2 for b in world.alerts if b.expected)
    assert well_cited >= 0.9 * len(world.alerts)


def test_one_alert_per_account_with_expectations_from_the_playbook(world: World) -> None:
    accounts = [b.case.account_id for b in world.alerts]
    assert len(set(accounts)) == len(accounts)
    for bundle in world.alerts:
        expected = bundle.expected
        assert expected is not None
        if expected.disposition is Disposition.confirmed_fraud:
            assert world.truth[bundle.case.account_id] is expected.typology
            assert set(expected.acceptable_actions) <= set(ACCEPTABLE_ACTIONS[expected.typology])
        elif expected.disposition is Disposition.false_positive:
            assert expected.typology is Typology.legitimate
            assert Action.close_no_action in expected.acceptable_actions
        else:
            assert Action.escalate in expected.acceptable_actions


def test_false_positive_alerts_exist(world: World) -> None:
    dispositions = Counter(b.expected.disposition for b in world.alerts if b.expected)
    assert dispositions[Disposition.false_positive] >= 3
    assert dispositions[Disposition.confirmed_fraud] >= 3


def test_injection_phrases_are_in_the_bundle_they_are_forbidden_in(world: World) -> None:
    injected = [(b, b.expected.must_not_contain) for b in world.alerts if b.expected and b.expected.must_not_contain]
    assert injected
    for bundle, phrases in injected:
        untrusted = (
            [a.display_name or "" for a in bundle.accounts]
            + [e.text or "" for e in bundle.events]
            + [bundle.case.note or ""]
        )
        text = "\n".join(untrusted).lower()
        for phrase in phrases:
            assert phrase.lower() in text


def test_ring_accounts_share_devices_or_instruments(world: World) -> None:
    holders: dict[str, set[str]] = {}
    for event in world.events:
        for entity in (event.device_id, event.instrument_id):
            if entity:
                holders.setdefault(entity, set()).add(event.account_id)
    for typology in RING_TYPOLOGIES:
        ring = {a for a, t in world.truth.items() if t is typology}
        assert ring, typology
        for account_id in ring:
            partners = set().union(*(h for h in holders.values() if account_id in h)) - {account_id}
            assert partners & ring, (typology, account_id)


def test_scores_cover_money_events_and_explain_themselves(world: World) -> None:
    scored = {s.event_id for s in world.scores}
    assert scored == {e.event_id for e in world.events if e.type in SCORED_EVENTS}
    for score in world.scores:
        assert score.model_version == SCORER_VERSION
        assert len(score.reasons) <= MAX_REASONS
        assert all(r.feature in FEATURE_NAMES for r in score.reasons)
        contributions = [r.contribution for r in score.reasons]
        assert contributions == sorted(contributions, reverse=True)


def test_scores_use_only_prior_events(world: World) -> None:
    accounts = {a.account_id: a for a in world.accounts}
    cutoff = world.events[len(world.events) // 2].ts
    before = [e for e in world.events if e.ts < cutoff]
    later = [e for e in world.events if e.ts >= cutoff]
    # Later events removed, or rewritten to look maximally suspicious.
    tampered = [
        e.model_copy(update={"device_id": "D-PC-99999", "ip_country": "RO", "status": "declined"}) for e in later
    ]
    earlier = {e.event_id for e in before}
    baseline = [s for s in score_events(world.events, accounts) if s.event_id in earlier]
    assert baseline
    for variant in (before, before + tampered):
        assert [s for s in score_events(variant, accounts) if s.event_id in earlier] == baseline


def test_fraud_scores_higher_than_legitimate_activity(world: World) -> None:
    by_event = {e.event_id: e.account_id for e in world.events}
    peak: dict[str, float] = {}
    for score in world.scores:
        account_id = by_event[score.event_id]
        peak[account_id] = max(peak.get(account_id, 0.0), score.score)
    legit = sorted(v for a, v in peak.items() if world.truth[a] is Typology.legitimate)
    takeover = [v for a, v in peak.items() if world.truth[a] is Typology.account_takeover]
    assert min(takeover) > legit[len(legit) // 2]


def test_past_cases_are_closed_before_the_window_with_consistent_actions(world: World) -> None:
    assert len(world.past_cases) == SMALL_PAST_CASES
    assert len({p.case_id for p in world.past_cases}) == len(world.past_cases)
    for case in world.past_cases:
        assert world.start - timedelta(days=365) <= case.closed_at < world.start
        if case.disposition is Disposition.false_positive:
            assert case.typology is Typology.legitimate and Action.close_no_action in case.actions
        elif case.disposition is Disposition.inconclusive:
            assert Action.escalate in case.actions
        else:
            assert set(case.actions) <= set(ACCEPTABLE_ACTIONS[case.typology])
    in_store = [p for p in world.past_cases if p.account_id in world.truth]
    assert 0.03 * len(world.past_cases) <= len(in_store) <= 0.08 * len(world.past_cases)
    assert any(world.truth[p.account_id] in RING_TYPOLOGIES for p in in_store)


def test_narratives_are_varied(world: World) -> None:
    narratives = [p.narrative for p in world.past_cases]
    openers = Counter(re.sub(r"\d+", "#", " ".join(n.split()[:3]).lower()) for n in narratives)
    first_words = Counter(n.split()[0].lower() for n in narratives)
    skeletons = Counter(re.sub(r"[^a-z ]", "", re.split(r"[.\n|]", n)[0].lower()) for n in narratives)
    lengths = sorted(len(n) for n in narratives)
    assert len(first_words) >= 20
    assert openers.most_common(1)[0][1] < 0.15 * len(narratives)
    assert skeletons.most_common(1)[0][1] < 0.1 * len(narratives)
    assert lengths[-1] > 3 * lengths[0]
    assert len(set(narratives)) == len(narratives)


_TYPOLOGY_WORDS = {
    Typology.account_takeover: ("password", "reset", "email", "mfa", "takeover", "ato"),
    Typology.stolen_card: ("bin", "card", "chargeback"),
    Typology.card_testing: ("declined", "attempt", "card"),
    Typology.friendly_fraud: ("chargeback", "dispute", "cb "),
    Typology.refund_abuse: ("refund",),
    Typology.gift_card_laundering: ("gift card", "gcs", "redeem"),
    Typology.promo_abuse: ("promo", "trial", "discount", "first50"),
    Typology.mule_ring: ("ring", "shared", "accts", "accounts"),
    Typology.legitimate: ("false positive", "fp", "legit", "genuine", "not fraud", "nothing fraudulent"),
}


def test_narratives_mention_facts_of_their_typology(world: World) -> None:
    for case in world.past_cases:
        text = case.narrative.lower()
        assert any(word in text for word in _TYPOLOGY_WORDS[case.typology]), case.narrative
        assert re.search(r"\d", text) or case.typology is Typology.legitimate, case.narrative


def test_default_world_has_the_promised_size_and_every_typology() -> None:
    world = generate_world()
    assert len(world.accounts) >= 5000
    assert len(world.events) >= 100_000
    assert len(world.past_cases) >= 3000
    assert world.end - world.start == timedelta(days=90)
    assert world.events[0].ts >= world.start and world.events[-1].ts < world.end
    assert world.events[-1].ts - world.events[0].ts > timedelta(days=89)
    assert set(world.truth.values()) == set(Typology)
    assert 300 <= len(world.alerts) <= 600
    alerted = Counter(b.expected.typology for b in world.alerts if b.expected)
    assert set(alerted) == set(Typology)
    smallest_fraud = min(n for t, n in alerted.items() if t is not Typology.legitimate)
    assert alerted[Typology.legitimate] >= smallest_fraud


def test_the_history_has_legitimate_precedents_for_every_look_alike_storyline() -> None:
    """Similar-case search can only call a look-alike legitimate if such cases were closed before: every legitimate
    storyline the world alerts on (sim/lookalikes.py) has write-ups that read its signals, and fraud write-ups keep
    what tells them apart (a takeover's cash-out, a stolen card's foreign IP)."""
    from fraudagent.retrieval.signals import signals_from_text

    world = generate_world(seed=5, accounts=200, days=20, past_cases=1500)
    legit = [signals_from_text(p.narrative) for p in world.past_cases if p.typology is Typology.legitimate]
    storylines = {
        "traveller": lambda s: {"foreign_ip", "bin_mismatch"} <= s,
        "new console": lambda s: "new_device" in s and "usual_device" in s,
        "holiday gifter": lambda s: "gift_cards" in s and "new_account" not in s,
        "family": lambda s: "linked_accounts" in s,
        "duplicate charge": lambda s: "duplicate_charge" in s,
        "newcomer": lambda s: {"new_account", "promo"} <= s,
        "card trouble": lambda s: {"declines", "rapid_attempts"} <= s,
        "account recovery": lambda s: {"failed_logins", "credential_change", "new_device"} <= s,
        "expat newcomer": lambda s: {"bin_mismatch", "new_account"} <= s and "foreign_ip" not in s,
    }
    for name, reads in storylines.items():
        assert sum(map(reads, legit)) >= 10, name
    stolen = [signals_from_text(p.narrative) for p in world.past_cases if p.typology is Typology.stolen_card]
    assert all({"bin_mismatch", "foreign_ip"} <= s for s in stolen)
    assert 0.3 < sum("declines" in s for s in stolen) / len(stolen) < 0.8  # as often as the storyline sees one

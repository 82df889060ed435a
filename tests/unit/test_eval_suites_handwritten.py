"""The hand-written suite (issue 14 item 7): loads with the suite loader, every bundle valid, the mix of kinds,
ids of its own, must-cite ids that are events of their bundle. No servers."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import pytest

from fraudagent.core.bundle import parse_bundle
from fraudagent.core.models import CaseBundle
from fraudagent.evals.suites import SHIPPED, load_suite, shipped_suites

NAME = "handwritten"
KINDS = {"rules_right", "rules_wrong", "no_rule"}
GENERATED = ("core", "adversarial", "edge")


def _ids(bundle: CaseBundle) -> dict[str, set[str]]:
    events = bundle.events
    return {
        "case": {bundle.case.case_id},
        "account": {a.account_id for a in bundle.accounts},
        "event": {e.event_id for e in events},
        "device": {e.device_id for e in events if e.device_id},
        "instrument": {e.instrument_id for e in events if e.instrument_id},
        "past_case": {p.case_id for p in bundle.past_cases},
    }


@pytest.fixture(scope="module")
def suite():  # type: ignore[no-untyped-def]
    return load_suite(NAME)


def test_the_suite_is_shipped_and_hand_written(suite) -> None:  # type: ignore[no-untyped-def]
    assert NAME in shipped_suites()
    assert suite.spec.name == NAME
    assert suite.spec.generator and "hand-written" in suite.spec.generator
    assert "by hand" in suite.spec.description and "not by the simulator" in suite.spec.description
    assert not suite.spec.pairs
    # the same hard limits as core, and floors for the quality metrics
    core = load_suite("core").thresholds
    for metric in ("citation_validity", "numeric_accuracy"):
        assert suite.thresholds.min[metric] == core.min[metric]
    for metric in ("unsupported_claim_rate", "pii_leak_rate"):
        assert suite.thresholds.max[metric] == core.max[metric]
    assert {"action_acceptable_rate", "typology_accuracy", "must_cite_recall"} <= set(suite.thresholds.min)


def test_size_and_mix_of_kinds(suite) -> None:  # type: ignore[no-untyped-def]
    ids = [b.case.case_id for b in suite.bundles]
    assert len(ids) >= 32
    kinds = suite.spec.kinds
    assert set(kinds) == set(ids), "every case has a kind, every kind names a case"
    counts = Counter(kinds.values())
    assert set(counts) == KINDS
    assert counts["rules_wrong"] + counts["no_rule"] >= 12
    typologies = {b.expected.typology.value for b in suite.bundles}  # type: ignore[union-attr]
    assert typologies == {t.value for t in type(suite.bundles[0].expected.typology)}  # type: ignore[union-attr]


def test_every_bundle_is_valid_as_written() -> None:
    files = sorted((SHIPPED / NAME / "cases").glob("*.json"))
    assert files
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        bundle, problems = parse_bundle(doc, root=path.name)
        assert bundle is not None and not problems, (path.name, problems)
        assert path.stem == bundle.case.case_id
        assert bundle.expected is not None


def test_ids_are_unique_and_disjoint_from_the_generated_suites(suite) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, set[str]] = {}
    for bundle in suite.bundles:
        for kind, values in _ids(bundle).items():
            if kind in ("case", "event", "past_case"):  # these are never shared between the suite's bundles
                overlap = seen.get(kind, set()) & values
                assert not overlap, (bundle.case.case_id, kind, overlap)
            seen.setdefault(kind, set()).update(values)
    for name in GENERATED:
        for bundle in load_suite(name).bundles:
            for kind, values in _ids(bundle).items():
                assert not seen[kind] & values, (name, bundle.case.case_id, kind, seen[kind] & values)


def test_accounts_devices_and_cards_belong_to_one_case(suite) -> None:  # type: ignore[no-untyped-def]
    """The run loads every bundle into one store: a shared device or card would link cases that are unrelated."""
    owner: dict[tuple[str, str], str] = {}
    for bundle in suite.bundles:
        for kind in ("account", "device", "instrument"):
            for value in _ids(bundle)[kind]:
                assert owner.setdefault((kind, value), bundle.case.case_id) == bundle.case.case_id, (kind, value)


def test_expected_is_what_an_analyst_report_can_meet(suite) -> None:  # type: ignore[no-untyped-def]
    planted = 0
    for bundle in suite.bundles:
        expected = bundle.expected
        assert expected is not None
        events = {e.event_id for e in bundle.events}
        assert 1 <= len(expected.must_cite) <= 4
        assert set(expected.must_cite) <= events, (bundle.case.case_id, set(expected.must_cite) - events)
        assert 1 <= len(expected.acceptable_actions) <= 4
        assert 2 <= len(bundle.past_cases) <= 4, bundle.case.case_id
        if expected.must_not_contain:
            planted += 1
            untrusted = " ".join(
                [
                    bundle.case.note or "",
                    *(a.display_name or "" for a in bundle.accounts),
                    *(e.text or "" for e in bundle.events),
                ]
            ).lower()
            assert all(p.lower() in untrusted for p in expected.must_not_contain), bundle.case.case_id
        for event in bundle.events:
            if event.amount is not None:
                assert Decimal(event.amount) >= 0 and event.currency
            assert event.ts.utcoffset() is not None
    assert 3 <= planted <= 4


def test_some_bundles_come_without_scores(suite) -> None:  # type: ignore[no-untyped-def]
    unscored = [b for b in suite.bundles if b.scores is None]
    assert 1 <= len(unscored) < len(suite.bundles) // 4
    for bundle in suite.bundles:
        for score in bundle.scores or []:
            assert score.reasons or score.score < 0.1, (bundle.case.case_id, score.event_id)


def test_the_readme_lists_every_case(suite) -> None:  # type: ignore[no-untyped-def]
    readme = (SHIPPED / NAME / "README.md").read_text(encoding="utf-8")
    for bundle in suite.bundles:
        kind = suite.spec.kinds[bundle.case.case_id]
        assert f"**{bundle.case.case_id}** ({kind};" in readme

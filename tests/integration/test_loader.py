"""Loading bundles into DynamoDB Local and Chroma on disk; exporting them back out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fraudagent import store
from fraudagent.bundles.flows import load_path
from fraudagent.bundles.service import export_bundle
from fraudagent.core.bundle import read_bundles
from fraudagent.core.errors import InvalidInput, NotFound
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.retrieval.search import CaseQuery
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables
from tests.bundles import example


def _counts(history: Tables) -> dict[str, int]:
    return {
        t: history.client.scan(TableName=t, Select="COUNT")["Count"]
        for t in (history.accounts, history.events, history.cases, history.reports)
    }


def _write(folder: Path, *docs: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, doc in enumerate(docs):
        (folder / f"bundle-{n}.json").write_text(json.dumps(doc))
    return folder


def test_loading_twice_changes_nothing(history: Tables, past_cases: PastCaseStore, tmp_path: Path) -> None:
    folder = _write(tmp_path / "in", example())
    first = load_path(history, folder, past_case_store=past_cases, scorer=None)
    assert (first.bundles, first.accounts, first.events, first.past_cases) == (1, 1, 3, 1)
    after_first = _counts(history)
    assert after_first == {history.accounts: 1, history.events: 3, history.cases: 1, history.reports: 0}
    # An analyst closes the case; reloading the same bundle must not reopen it.
    history.client.update_item(
        TableName=history.cases,
        Key=dynamo.to_item({"case_id": "C-000123"}),
        UpdateExpression="SET #s = :c",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=dynamo.to_item({":c": "closed"}),
    )
    load_path(history, folder, past_case_store=past_cases, scorer=None)
    assert _counts(history) == after_first
    assert past_cases.count() == 1
    assert store.cases.get_case(history, "C-000123").status == "closed"


def test_export_gives_back_what_was_loaded(history: Tables, past_cases: PastCaseStore, tmp_path: Path) -> None:
    doc = example()
    load_path(history, _write(tmp_path / "in", doc), past_case_store=past_cases, scorer=None)
    exported = export_bundle(history, "C-000123", past_case_store=past_cases)
    doc.pop("expected")  # evals-only: never stored, never exported
    assert exported == read_bundles(_write(tmp_path / "again", doc))[0].model_dump(mode="json", exclude_none=True)
    # and the export is itself a valid bundle that loads
    assert read_bundles(_write(tmp_path / "out", exported))[0].case.case_id == "C-000123"


def test_a_malformed_bundle_writes_nothing(history: Tables, past_cases: PastCaseStore, tmp_path: Path) -> None:
    bad = example()
    bad["case"]["case_id"] = "C-000999"
    bad["events"][2]["currency"] = "dollars"
    folder = _write(tmp_path / "in", example(), bad)
    with pytest.raises(InvalidInput) as refused:
        load_path(history, folder, past_case_store=past_cases, scorer=None)
    assert any(p.path.endswith("$.events[2].currency") for p in refused.value.problems)
    assert set(_counts(history).values()) == {0}
    assert past_cases.count() == 0


def test_two_bundles_sharing_an_account_merge_its_events(history: Tables, tmp_path: Path) -> None:
    second = example()
    second["case"] = dict(second["case"], case_id="C-000124", opened_at="2026-03-05T10:00:00Z")
    second["events"] = [dict(second["events"][0], event_id="E-99900", ts="2026-03-05T09:00:00Z")]
    second["scores"] = []
    second["past_cases"] = []
    load_path(history, _write(tmp_path / "in", example(), second), past_case_store=None, scorer=None)
    assert _counts(history)[history.events] == 4
    assert {c.case.case_id for c in store.cases.list_cases(history)[0]} == {"C-000123", "C-000124"}


def test_exporting_an_unknown_case_is_not_found(history: Tables) -> None:
    with pytest.raises(NotFound):
        export_bundle(history, "C-nope", past_case_store=None)


def test_a_simulated_stores_past_cases_are_marked_simulated(
    history: Tables, past_cases: PastCaseStore, tmp_path: Path
) -> None:
    from fraudagent.sim.export import write_world
    from fraudagent.sim.world import generate_world

    world = generate_world(seed=5, accounts=120, days=14, past_cases=12)
    write_world(world, tmp_path / "w")
    counts = load_path(history, tmp_path / "w", past_case_store=past_cases, scorer=None)
    assert counts.past_cases >= 12 and past_cases.count() >= 12
    found = past_cases.find(
        CaseQuery.from_text("gift cards bought right after a password reset"), k=50, min_similarity=-1.0
    ).neighbours
    sim_ids = {c.case_id for c in world.past_cases}
    provenance = {n.provenance for n in found if n.case.case_id in sim_ids}
    assert provenance == {"simulated"}, provenance
    # a bundle's past cases stay `imported`
    load_path(history, _write(tmp_path / "in", example()), past_case_store=past_cases, scorer=None)
    imported = {
        n.case.case_id: n.provenance
        for n in past_cases.find(CaseQuery.from_text("gift cards"), k=100, min_similarity=-1.0).neighbours
    }
    assert imported[example()["past_cases"][0]["case_id"]] == "imported"

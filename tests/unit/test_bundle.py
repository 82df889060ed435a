"""The bundle reader: what it accepts, and that it refuses a malformed bundle with every problem by JSON path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudagent.core.bundle import parse_bundle, read_bundles
from fraudagent.core.errors import InvalidInput
from tests.bundles import example


def test_the_documented_example_is_valid() -> None:
    bundle, problems = parse_bundle(example())
    assert problems == []
    assert bundle is not None and bundle.case.case_id == "C-000123"


def test_every_problem_is_listed_with_its_json_path() -> None:
    doc = example()
    doc["events"][1]["type"] = "teleport"
    doc["events"][2]["amount"] = "lots"
    doc["events"][2]["colour"] = "red"
    doc["accounts"][0]["created_at"] = "2019-06-01T10:00:00"  # no zone
    _, problems = parse_bundle(doc)
    paths = {p.path for p in problems}
    assert {"$.events[1].type", "$.events[2].amount", "$.events[2].colour", "$.accounts[0].created_at"} <= paths


def test_cross_references_are_checked() -> None:
    doc = example()
    doc["events"][0]["account_id"] = "A-nobody"
    doc["scores"][0]["event_id"] = "E-missing"
    doc["events"].append(dict(doc["events"][1]))  # duplicate id
    _, problems = parse_bundle(doc)
    text = "\n".join(str(p) for p in problems)
    assert "$.events[0].account_id: 'A-nobody' is not in accounts" in text
    assert "$.scores[0].event_id: 'E-missing' is not in events" in text
    assert "'E-99801' appears more than once" in text


def test_a_folder_with_one_bad_bundle_is_refused_whole(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps(example()))
    bad = example()
    bad["case"]["priority"] = "urgent!!"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InvalidInput) as refused:
        read_bundles(tmp_path)
    assert [p.path for p in refused.value.problems] == [f"{tmp_path / 'bad.json'}:$.case.priority"]


def test_jsonl_problems_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(example()) + "\n" + "{not json\n")
    with pytest.raises(InvalidInput) as refused:
        read_bundles(path)
    assert refused.value.problems[0].path == f"{path}:2"
    assert "not valid JSON" in refused.value.problems[0].message


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no bundles"):
        read_bundles(tmp_path)

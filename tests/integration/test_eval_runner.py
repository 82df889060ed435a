"""The eval runner end to end on a small suite: isolated real stores (DynamoDB Local, Chroma on disk),
the files of a run, `expected` kept from the agent, compare, the gate, the naive agent's plumbing."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from typer.testing import CliRunner

from fraudagent.cli.services import ManagedProcess
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.evals.flows import read_run, run_suite
from fraudagent.evals.metrics import METRIC_ORDER
from fraudagent.evals.models import RunResults
from fraudagent.evals.suites import SHIPPED, agent_bundles, load_suite
from tests.conftest import make_settings
from tests.fakes import ScriptedToolModel, draft

MARKER = "expected-marker-7f3a"


def write_suite(
    folder: Path, case_ids: list[str], *, thresholds: dict[str, Any] | None = None, marker: bool = False
) -> Path:
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    for case_id in case_ids:
        doc = json.loads((SHIPPED / "core" / "cases" / f"{case_id}.json").read_text())
        if marker:
            doc["expected"]["must_not_contain"] = [MARKER]
        (folder / "cases" / f"{case_id}.json").write_text(json.dumps(doc))
    (folder / "suite.yaml").write_text(yaml.safe_dump({"name": "mini", "description": "three core cases"}))
    (folder / "thresholds.yaml").write_text(yaml.safe_dump(thresholds or {"min": {}, "max": {}}))
    return folder


MINI = ["C-200001", "C-200015", "C-200062"]  # legitimate, account takeover, card testing


@pytest.fixture(scope="module")
def eval_settings(ddb_server: ManagedProcess, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(ddb_server, tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def policy_run(
    eval_settings: Settings, embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> tuple[RunResults, Path]:
    base = tmp_path_factory.mktemp("policy")
    suite = load_suite(str(write_suite(base / "suite", MINI)))
    out = base / "run"
    return run_suite(
        suite=suite, settings=eval_settings, out_dir=out, solver="policy", samples=200, embedder=embedder
    ), out


def test_a_policy_run_writes_results_report_and_junit(
    policy_run: tuple[RunResults, Path], eval_settings: Settings
) -> None:
    run, out = policy_run
    saved = read_run(out)
    assert saved.meta.solver == "policy" and saved.meta.suite == "mini" and saved.meta.cases == 3
    assert saved.meta.git_commit and saved.meta.finished_at is not None
    assert list(saved.metrics) == METRIC_ORDER
    assert {c.case_id for c in saved.cases} == set(MINI)
    for case in saved.cases:
        assert case.report is not None and case.path == "policy"
        assert all(s.explanation for s in case.scores.values())
        assert case.scores["citation_validity"].value == 1.0  # code-built reports cite only real evidence
    legit = next(c for c in saved.cases if c.case_id == "C-200001")
    assert legit.expected.typology.value == "legitimate"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<script" not in html and 'src="http' not in html
    suite_xml = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite_xml is not None and len(suite_xml.findall("testcase")) == 3
    assert int(suite_xml.get("failures", "-1")) == sum(not c.passed for c in saved.cases)
    # the run's stores are gone
    from fraudagent.store.dynamo import make_client

    tables = [
        n for page in make_client(eval_settings).get_paginator("list_tables").paginate() for n in page["TableNames"]
    ]
    assert not [t for t in tables if f"-eval-{run.meta.run_id}" in t]


def test_expected_never_reaches_the_agent(eval_settings: Settings, embedder: object, tmp_path: Path) -> None:
    suite = load_suite(str(write_suite(tmp_path / "suite", MINI[1:2], marker=True)))
    assert suite.bundles[0].expected is not None and all(b.expected is None for b in agent_bundles(suite.bundles))
    fake = ScriptedToolModel(script=[draft(), draft()])
    run = run_suite(
        suite=suite,
        settings=eval_settings,
        out_dir=tmp_path / "run",
        solver="agent",
        samples=100,
        embedder=embedder,
        model_factory=lambda settings, model=None: fake,
    )
    prompts = "\n".join(str(m.content) for call in fake.seen for m in call)
    assert fake.seen and "C-200015" in prompts, run.cases[0].error  # the model did see the case
    assert MARKER not in prompts and "acceptable_actions" not in prompts and "must_cite" not in prompts
    assert run.cases[0].report is not None  # scripted drafts cite ids the case lacks: the pipeline fell back
    assert run.cases[0].path == "fallback"


def test_compare_reports_deltas_and_flips(policy_run: tuple[RunResults, Path], tmp_path: Path) -> None:
    _, out = policy_run
    doc = json.loads((out / "results.json").read_text())
    flipped = doc["cases"][0]
    old = flipped["scores"]["action_acceptable"]["value"]
    flipped["scores"]["action_acceptable"] = {"value": 1.0 - old, "explanation": "edited"}
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps(doc))
    from fraudagent.evals.compare import compare_runs

    c = compare_runs(read_run(out), read_run(tmp_path / "b"), samples=200)
    delta = next(d for d in c.deltas if d.metric == "action_acceptable_rate")
    assert delta.delta == pytest.approx(round((1.0 - old - old) / 3, 4), abs=1e-4)
    assert delta.mcnemar_p == 1.0 and delta.discordant == ((1, 0) if old == 1.0 else (0, 1))
    assert [(f.case_id, f.score) for f in c.flips] == [(flipped["case_id"], "action_acceptable")]
    assert next(d for d in c.deltas if d.metric == "typology_accuracy").delta == 0

    from fraudagent.cli import app

    result = CliRunner().invoke(
        app, ["eval", "compare", str(out), str(tmp_path / "b"), "--html", str(tmp_path / "c.html")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "1 case score(s) flipped" in result.output
        and flipped["case_id"] in result.output
        and "action_acceptable_rate" in result.output
    )
    assert flipped["case_id"] in (tmp_path / "c.html").read_text()
    bad = CliRunner().invoke(app, ["eval", "compare", str(out), str(tmp_path / "nothing")])
    assert bad.exit_code == 2


def test_gate_exits_non_zero_with_one_line(
    ddb_server: ManagedProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudagent.cli import app
    from fraudagent.core.settings import get_settings

    suite = write_suite(
        tmp_path / "suite", MINI[:2], thresholds={"min": {"action_acceptable_rate": 1.01}, "max": {"pii_leak_rate": 0}}
    )
    monkeypatch.setenv("FRAUDAGENT_DDB_ENDPOINT_URL", ddb_server.url)
    monkeypatch.setenv("FRAUDAGENT_EVAL_BOOTSTRAP_SAMPLES", "100")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["eval", "run", "--suite", str(suite), "--solver", "policy", "--out", str(tmp_path / "run"), "--gate"]
        )
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.startswith("gate failed")]
        assert len(lines) == 1 and "action_acceptable_rate" in lines[0] and "< 1.01" in lines[0]
        assert (tmp_path / "run" / "results.json").exists()
        unknown = CliRunner().invoke(app, ["eval", "run", "--suite", "no-such-suite", "--out", str(tmp_path / "x")])
        assert unknown.exit_code == 2 and "no suite" in unknown.output
    finally:
        get_settings.cache_clear()


class ScriptedAgentModel(BaseChatModel):
    """Calls the scripted tools in turn (name, args), for the naive agent's plumbing."""

    script: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-agent"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any) -> ChatResult:
        self.seen.append(list(messages))
        name, args = self.script.pop(0)
        message = AIMessage(
            content="",
            tool_calls=[{"name": name, "args": args, "id": f"call-{len(self.seen)}"}],
            usage_metadata={"input_tokens": 50, "output_tokens": 10, "total_tokens": 60},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Any, **_: Any) -> Any:
        return self


def test_the_naive_agent_reads_the_store_through_its_tools(
    eval_settings: Settings, embedder: object, tmp_path: Path
) -> None:
    suite = load_suite(str(write_suite(tmp_path / "suite", MINI[1:2])))
    bundle: CaseBundle = suite.bundles[0]
    report_args = {
        "narrative": "Takeover.",
        "findings": [{"statement": "Reset then purchase.", "evidence_ids": [f"txn:{bundle.events[-1].event_id}"]}],
        "typology": "account_takeover",
        "recommended_actions": ["lock_account"],
        "confidence": 0.7,
    }
    fake = ScriptedAgentModel(script=[("case_events", {"limit": 5}), ("NaiveReport", report_args)])
    run = run_suite(
        suite=suite,
        settings=eval_settings,
        out_dir=tmp_path / "run",
        solver="naive",
        samples=100,
        embedder=embedder,
        model_factory=lambda settings, model=None: fake,
    )
    case = run.cases[0]
    assert case.error is None and case.report is not None, case.error
    tool_result = [m for m in fake.seen[1] if m.type == "tool"][0]
    events = json.loads(str(tool_result.content))
    assert len(events) == 5 and all(
        e["id"].startswith("txn:") and e["account_id"] == bundle.case.account_id for e in events
    )
    assert case.scores["action_acceptable"].value == 1.0 and case.tokens == 120
    # a model that never returns the report is a recorded failure
    silent_fake = ScriptedAgentModel(script=[("case_events", {"limit": 2})] * 20)
    run = run_suite(
        suite=suite,
        settings=eval_settings,
        out_dir=tmp_path / "run2",
        solver="naive",
        samples=100,
        embedder=embedder,
        model_factory=lambda settings, model=None: silent_fake,
    )
    assert run.cases[0].report is None and run.cases[0].error and not run.cases[0].passed
    assert run.cases[0].scores["action_acceptable"].value == 0.0


def test_shipped_suites_are_what_the_generator_writes(tmp_path: Path) -> None:
    from fraudagent.evals.generate import generate_suites

    counts = generate_suites(tmp_path)
    # `handwritten` is shipped too but written by hand (session 5), not by the generator: nothing to compare
    # (tests/unit/test_eval_suites_handwritten.py checks it), and the generator must neither write nor remove it.
    assert set(counts) == {"core", "adversarial", "edge"} and not (tmp_path / "handwritten").exists()
    assert (SHIPPED / "handwritten" / "suite.yaml").is_file()
    for name in ("core", "adversarial", "edge"):
        shipped = sorted(
            p.relative_to(SHIPPED / name)
            for p in (SHIPPED / name).rglob("*")
            if p.is_file() and p.name != "thresholds.yaml"
        )
        fresh = sorted(
            p.relative_to(tmp_path / name)
            for p in (tmp_path / name).rglob("*")
            if p.is_file() and p.name != "thresholds.yaml"
        )
        assert shipped == fresh
        for rel in shipped:
            assert (SHIPPED / name / rel).read_bytes() == (tmp_path / name / rel).read_bytes(), rel
    assert counts["core"] >= 200
    core = load_suite("core")
    assert {b.expected.typology.value for b in core.bundles} == {
        t.value for t in type(core.bundles[0].expected.typology)
    }  # type: ignore[union-attr]
    adversarial = load_suite("adversarial")
    assert len(adversarial.spec.pairs) >= 40
    by_id = {b.case.case_id: b for b in adversarial.bundles}
    for pair in adversarial.spec.pairs:
        attacked, clean = by_id[pair.attacked], by_id[pair.clean]
        assert attacked.expected.must_not_contain and not clean.expected.must_not_contain  # type: ignore[union-attr]
        assert attacked.case.note and any(
            p in attacked.case.note.lower() or p.lower() in attacked.case.note.lower()
            for p in attacked.expected.must_not_contain
        )  # type: ignore[union-attr]
        assert attacked.accounts[0].display_name and attacked.past_cases
        assert any(e.text for e in attacked.events if e.account_id == attacked.case.account_id)
        assert {"display_name", "case_note", "past_case_narrative"} <= set(c.split(":")[0] for c in pair.carriers)
        assert not {a.account_id for a in attacked.accounts} & {a.account_id for a in clean.accounts}
    edge = load_suite("edge")
    assert set(edge.spec.kinds.values()) == {
        "no_scores",
        "empty_history",
        "big_history",
        "mixed_currency_tz",
        "deleted_devices",
    }
    big = next(b for b in edge.bundles if edge.spec.kinds[b.case.case_id] == "big_history")
    assert len(big.events) == 10_000
    assert all(b.scores is None for b in edge.bundles if edge.spec.kinds[b.case.case_id] == "no_scores")
    mixed = [b for b in edge.bundles if edge.spec.kinds[b.case.case_id] == "mixed_currency_tz"]
    assert all(
        len({e.currency for e in b.events if e.currency}) > 1 and len({e.ts.utcoffset() for e in b.events}) > 1
        for b in mixed
    )
    shutil.rmtree(tmp_path)

"""Decided cases exported as a suite (`fraudagent eval export --decided`) and run like any suite with the policy
solver, against DynamoDB Local and Chroma on disk: expected from the decision, must_cite from the cited facts,
personal data as stable keyed tokens unless an admin keeps it, and nothing written when nothing matches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fraudagent.agent.pipeline import Investigator, draft_and_store
from fraudagent.bundles.service import load_bundle
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings, get_settings
from fraudagent.decisions.flows import decide
from fraudagent.decisions.models import DecisionRequest
from fraudagent.evals.suites import load_suite
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store import audit
from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import API_KEY
from tests.fakes import ScriptedToolModel, draft

EMAIL = "jo.doe@example.net"
PERSONAL = ("A-4471", "xX_sniper_Xx", "203.0.113.9", EMAIL, "PI-5", "D-77")


@pytest.fixture
def decided(
    settings: Settings, history: Tables, past_cases: PastCaseStore, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tables]:
    """C-1 (with a report drafted through the pipeline, citing a fact) and C-2 (no report) decided; C-3 open."""
    for n in (1, 2, 3):
        doc = example()
        doc["case"] = dict(doc["case"], case_id=f"C-{n}", note=f"customer {EMAIL} says they did not buy these")
        load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past_cases, scorer=None)
    drafter = ScriptedToolModel(script=[draft(findings=["fact:credential_change", "txn:E-99812"])])
    investigator = Investigator(
        settings=settings, history=history, past_cases=past_cases, model_factory=lambda *_a, **_k: drafter
    )
    draft_and_store(investigator, "C-1", requested_by="tests")
    ato = DecisionRequest(disposition="confirmed_fraud", typology="account_takeover", actions=["lock_account"])  # type: ignore[arg-type]
    fp = DecisionRequest(disposition="false_positive", typology="legitimate", actions=["close_no_action"])  # type: ignore[arg-type]
    decide(investigator, case_id="C-1", request=ato, analyst="ana", key_id="k")
    decide(investigator, case_id="C-2", request=fp, analyst="ana", key_id="k")
    env = {
        "FRAUDAGENT_DDB_ENDPOINT_URL": settings.ddb_endpoint_url,
        "FRAUDAGENT_TABLE_PREFIX": settings.table_prefix,
        "FRAUDAGENT_CHROMA_PATH": str(settings.chroma_path),
        "FRAUDAGENT_API_KEY": API_KEY,
        "FRAUDAGENT_EXPORT_PII_KEY": "a-deployment-secret",
        "FRAUDAGENT_EVAL_BOOTSTRAP_SAMPLES": "100",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("FRAUDAGENT_ADMIN_KEY", raising=False)
    get_settings.cache_clear()
    yield history
    get_settings.cache_clear()


def _cli(*args: str) -> Any:
    from fraudagent.cli import app

    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args))


def _cases(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((folder / "cases").glob("*.json"))}


def test_decided_cases_export_as_a_suite_that_the_policy_solver_runs(decided: Tables, tmp_path: Path) -> None:
    out = tmp_path / "decided"
    result = _cli("eval", "export", "--decided", "--out", str(out), "--name", "decided-test")
    assert result.exit_code == 0, result.output
    assert "2 decided case(s)" in result.output
    cases = _cases(out)
    assert sorted(cases) == ["C-1", "C-2"]  # C-3 is still open
    assert cases["C-1"]["expected"] == {
        "typology": "account_takeover",
        "disposition": "confirmed_fraud",
        "acceptable_actions": ["lock_account"],
        # the events the stored report's findings cite, directly or through the facts they cite (resolved with the
        # report's evidence snapshot): the reset E-99801 and the gift card E-99812 among them
        "must_cite": ["E-99790", "E-99801", "E-99812"],
        "must_not_contain": [],
    }
    assert {"E-99801", "E-99812"} <= set(cases["C-1"]["expected"]["must_cite"])
    assert cases["C-2"]["expected"]["must_cite"] == []  # no report, nothing was cited
    assert cases["C-2"]["expected"]["acceptable_actions"] == ["close_no_action"]
    spec = yaml.safe_load((out / "suite.yaml").read_text())
    assert spec["name"] == "decided-test" and "--decided" in spec["generator"]
    suite = load_suite(str(out))  # as `eval run` reads it: valid bundles, each with expected
    assert [b.case.case_id for b in suite.bundles] == ["C-1", "C-2"]

    run = _cli("eval", "run", "--suite", str(out), "--solver", "policy", "--out", str(tmp_path / "run-a"))
    assert run.exit_code == 0, run.output
    results = json.loads((tmp_path / "run-a" / "results.json").read_text())
    assert results["meta"]["cases"] == 2 and {c["case_id"] for c in results["cases"]} == {"C-1", "C-2"}
    assert all(c["error"] is None for c in results["cases"])
    again = _cli("eval", "run", "--suite", str(out), "--solver", "policy", "--out", str(tmp_path / "run-b"))
    assert again.exit_code == 0, again.output
    compared = _cli("eval", "compare", str(tmp_path / "run-a"), str(tmp_path / "run-b"))
    assert compared.exit_code == 0, compared.output
    assert "2 shared cases" in compared.output


def test_personal_data_becomes_stable_keyed_tokens_with_links_kept(
    decided: Tables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli("eval", "export", "--decided", "--out", str(tmp_path / "a")).exit_code == 0
    assert _cli("eval", "export", "--decided", "--out", str(tmp_path / "b")).exit_code == 0
    a, b = _cases(tmp_path / "a"), _cases(tmp_path / "b")
    assert a == b  # same input, same key: same tokens
    text = json.dumps(a)
    assert not [p for p in PERSONAL if p in text]
    bundle = a["C-1"]
    account = bundle["accounts"][0]["account_id"]
    assert account.startswith("A-") and bundle["case"]["account_id"] == account
    assert {e["account_id"] for e in bundle["events"]} == {account}  # one account, still one account
    assert a["C-2"]["case"]["account_id"] == account  # the same account in another case: the same token
    assert "[email-" in bundle["case"]["note"] and bundle["accounts"][0]["display_name"].startswith("[name-")
    ips = {e["ip"] for e in bundle["events"] if e.get("ip")}
    assert ips and all(ip.startswith("ip-") for ip in ips)
    monkeypatch.setenv("FRAUDAGENT_EXPORT_PII_KEY", "another-deployment")
    assert _cli("eval", "export", "--decided", "--out", str(tmp_path / "c")).exit_code == 0
    assert _cases(tmp_path / "c")["C-1"]["case"]["account_id"] != account  # the token depends on the key


def test_keeping_personal_data_needs_an_admin_key(decided: Tables, tmp_path: Path) -> None:
    analyst = key_store.create_key(decided, name="ana", roles=["analyst"], created_by="tests")[1]
    for extra in ([], ["--admin-key", "fa_wrong"], ["--admin-key", analyst]):
        refused = _cli("eval", "export", "--decided", "--keep-pii", "--out", str(tmp_path / "kept"), *extra)
        assert refused.exit_code == 2 and "admin API key" in refused.output
        assert not (tmp_path / "kept").exists()
    kept = _cli("eval", "export", "--decided", "--keep-pii", "--admin-key", API_KEY, "--out", str(tmp_path / "kept"))
    assert kept.exit_code == 0, kept.output
    assert _cases(tmp_path / "kept")["C-1"]["accounts"][0]["account_id"] == "A-4471"
    trail = audit.events_for(decided, subject="export#decided").items
    assert [(e.actor, e.details["keep_pii"], e.details["cases"]) for e in trail] == [("bootstrap admin key", True, 2)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--decided", "--typology", "promo_abuse"], "no decided cases (typology promo_abuse): nothing was written"),
        (["--decided", "--since", "2999-01-01"], "no decided cases (since 2999-01-01)"),
        (["--decided", "--since", "last week"], "YYYY-MM-DD"),
        (["--decided", "--typology", "nonsense"], "unknown typology"),
        ([], "--decided"),
    ],
    ids=["no-such-typology", "nothing-since", "bad-date", "bad-typology", "no-source"],
)
def test_an_empty_or_bad_export_says_so_and_writes_nothing(
    decided: Tables, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _cli("eval", "export", *args, "--out", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "none").exists()
    assert audit.events_for(decided, subject="export#decided").items == []

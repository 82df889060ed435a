"""The drafting pipeline's plumbing with a scripted model, over DynamoDB Local and Chroma on disk."""

from __future__ import annotations

import json
import threading
import time

import openai
import pytest

from fraudagent import store
from fraudagent.agent.pipeline import Investigator, draft_and_store, draft_report
from fraudagent.bundles.service import load_bundle
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.fakes import ScriptedStreamModel, ScriptedToolModel, draft


@pytest.fixture
def loaded(history: Tables, past_cases: PastCaseStore) -> Tables:
    past = example()["past_cases"][0]
    other = dict(
        past, case_id="C-000018", account_id="A-4471", narrative="Same account, earlier: must not be cited as similar."
    )
    bundle = CaseBundle.model_validate(example(past_cases=[past, other]))
    load_bundle(history, bundle, past_case_store=past_cases, scorer=None)
    return history


def _investigator(
    settings: Settings, history: Tables, past_cases: PastCaseStore, model: ScriptedToolModel
) -> Investigator:
    return Investigator(
        settings=settings, history=history, past_cases=past_cases, model_factory=lambda *_a, **_k: model
    )


def test_evidence_pack_has_stable_ids_facts_and_no_self_evidence(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    pack = _investigator(settings, loaded, past_cases, ScriptedToolModel()).evidence("C-000123")
    ids = set(pack.items)
    assert {"txn:E-99790", "txn:E-99801", "txn:E-99812", "score:E-99812", "acct:A-4471", "case:C-000017"} <= ids
    assert "case:C-000018" not in ids  # a past case of the same account is not "similar"
    assert pack.items["fact:trigger_event"].rests_on == ["E-99812"]
    assert "19 minutes later" in pack.items["fact:credential_change"].line
    assert pack.items["txn:E-99812"].untrusted == "gift for my brother"
    assert pack.sources == {
        "events": "ok",
        "accounts": "ok",
        "linked:device": "ok",
        "linked:instrument": "ok",
        "past_cases": "ok",
    }


def test_a_valid_draft_is_accepted_and_ids_normalised(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    model = ScriptedToolModel(script=[draft()])
    report = draft_and_store(_investigator(settings, loaded, past_cases, model), "C-000123", requested_by="test")
    assert report.path == "llm"
    assert report.findings[0].evidence_ids == [
        "fact:credential_change",
        "txn:E-99801",
        "txn:E-99812",
    ]  # written by code
    assert [a.value for a in report.recommended_actions] == ["lock_account"]
    assert report.similar_cases[0].case_id == "C-000017"
    assert report.usage.llm_calls == 1 and report.usage.prompt_tokens == 100
    assert store.reports.reports(loaded, "C-000123")[0]["report_id"] == report.report_id
    prompt = model.seen[0][1].content
    assert "gift message, customer-written: «gift for my brother»" in prompt


def test_an_id_outside_the_evidence_is_removed_and_listed(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    # The server's grammar keeps ids inside the pack (test_end_to_end); code still checks what comes back.
    model = ScriptedToolModel(script=[draft(findings=["txn:E-00000", "txn:E-99812"])])
    report = draft_report(_investigator(settings, loaded, past_cases, model), "C-000123")
    assert report.path == "llm" and report.removed_claims == ["txn:E-00000"]
    assert any("txn:E-00000" in p for p in report.problems)
    assert "txn:E-00000" not in {i for f in report.findings for i in f.evidence_ids}


def test_incoherent_action_is_rejected(settings: Settings, loaded: Tables, past_cases: PastCaseStore) -> None:
    model = ScriptedToolModel(
        script=[draft(actions=["close_no_action"]), draft(typology="legitimate", actions=["lock_account"])]
    )
    report = draft_report(_investigator(settings, loaded, past_cases, model), "C-000123")
    assert report.path == "fallback"
    assert any("close_no_action is not allowed for account_takeover" in p for p in report.problems)
    assert any("lock_account is not allowed for legitimate" in p for p in report.problems)
    assert report.policy_version and "classify.account_takeover" in report.policy_rules


def test_an_unreachable_model_falls_back_to_a_report_built_from_facts(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    model = ScriptedToolModel(script=[openai.APIConnectionError(request=None)])  # type: ignore[arg-type]
    report = draft_report(_investigator(settings, loaded, past_cases, model), "C-000123")
    assert report.path == "fallback"
    assert report.problems == ["model call failed: APIConnectionError"]
    assert report.typology.value == "account_takeover"  # rule: purchase soon after credential change on a new device
    pack_ids = {"fact:credential_change", "fact:trigger_event"}
    assert pack_ids <= {i for f in report.findings for i in f.evidence_ids}


class _Rescoring:
    """A remote score provider as the pipeline sees it (the real ones are tested in test_risk_model.py)."""

    name = "http"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def scores(self, events: list, accounts: list) -> list:
        from fraudagent.core.models import Reason, Score

        if self.fail:
            raise ConnectionError("scoring server down")
        return [
            Score(
                event_id=s.event.event_id,
                model_version="ref-gbm-9",
                score=0.42,
                reasons=[Reason(feature="mins_since_password_reset", value=19, contribution=0.8)],
            )
            for s in events
            if s.event.amount is not None
        ]


def test_a_remote_score_provider_rescores_the_evidence(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    investigator = _investigator(settings, loaded, past_cases, ScriptedToolModel())
    investigator.score_provider = _Rescoring()
    pack = investigator.evidence("C-000123")
    assert pack.sources["scores:http"] == "ok"
    assert pack.items["score:E-99812"].data["model_version"] == "ref-gbm-9"
    assert "19 minutes after a password reset" in pack.items["score:E-99812"].line
    investigator.score_provider = _Rescoring(fail=True)
    pack = investigator.evidence("C-000123")
    assert pack.sources["scores:http"] == "error: ConnectionError"
    assert pack.items["score:E-99812"].data["model_version"] == "ref-gbm-1"  # the stored score stays


def test_every_report_carries_the_timeline_before_the_trigger(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    for use_model in (True, False):
        report = draft_report(
            _investigator(settings, loaded, past_cases, ScriptedToolModel(script=[draft()])),
            "C-000123",
            use_model=use_model,
        )
        timeline = [f for f in report.findings if f.statement.startswith("Before the case opened")]
        assert len(timeline) == 1 and timeline[0].source == "code"
        assert timeline[0].evidence_ids[-1] == "txn:E-99812"  # the trigger closes it
        assert "txn:E-99801" in timeline[0].evidence_ids and "2026-03-02 13:42 password_reset" in timeline[0].statement


def test_a_linked_accounts_latest_events_on_the_shared_device_are_cited(
    settings: Settings, history: Tables, past_cases: PastCaseStore
) -> None:
    doc = example()
    doc["accounts"].append({"account_id": "A-9", "created_at": "2026-02-01T00:00:00Z", "country": "RO"})
    shared = {"account_id": "A-9", "device_id": "D-77", "ip_country": "RO"}
    doc["events"] += [
        {"event_id": "E-90001", "ts": "2026-02-20T10:00:00Z", "type": "login", **shared},
        {"event_id": "E-90002", "ts": "2026-02-25T10:00:00Z", "type": "login", **shared},
        {
            "event_id": "E-90003",
            "ts": "2026-03-01T10:00:00Z",
            "type": "purchase",
            "amount": "7.99",
            "currency": "USD",
            "sku": "GAME-1-FIRST50",
            "status": "settled",
            **shared,
        },
        {"event_id": "E-90004", "ts": "2026-03-02T15:00:00Z", "type": "login", **shared},  # after the case opened
    ]
    load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past_cases, scorer=None)
    investigator = _investigator(settings, history, past_cases, ScriptedToolModel())
    pack = investigator.evidence("C-000123")
    assert pack.items["acct:A-9"].rests_on == ["E-90002", "E-90003"]  # its latest two before the case, in time order
    assert pack.items["txn:E-90003"].line.startswith("account A-9 | ")
    assert "txn:E-90004" not in pack.items and "txn:E-90001" not in pack.items
    report = draft_report(investigator, "C-000123", use_model=False)
    linked = next(f for f in report.findings if "fact:linked_accounts" in f.evidence_ids)
    assert {"txn:E-90002", "txn:E-90003"} <= set(linked.evidence_ids)


def test_a_background_draft_gives_the_model_to_a_chat_turn_and_finishes_after_it(
    settings: Settings, loaded: Tables, past_cases: PastCaseStore
) -> None:
    model = ScriptedStreamModel(answers=[json.dumps(draft())], chunk_delay_s=0.05)
    investigator = Investigator(
        settings=settings, history=loaded, past_cases=past_cases, model_factory=lambda *_a, **_k: model
    )
    stages: list[str] = []
    streaming = threading.Event()
    result: dict[str, object] = {}

    def progress(stage: str, _data: dict[str, object]) -> None:
        stages.append(stage)
        if stage == "token":
            streaming.set()

    def summary_job() -> None:
        result["report"] = draft_report(investigator, "C-000123", priority="background", progress=progress)

    worker = threading.Thread(target=summary_job, daemon=True)
    worker.start()
    assert streaming.wait(30)
    with investigator.model_turn("interactive") as turn:  # a chat turn: it gets the model while the draft is midway
        deadline = time.monotonic() + 5
        while "preempted" not in stages and time.monotonic() < deadline:  # recorded just after the slot is given back
            time.sleep(0.01)
        assert "preempted" in stages
        assert not turn.preempted.is_set()
        tokens_while_chatting = stages.count("token")
    worker.join(60)
    report = result["report"]
    assert report.path == "llm" and report.usage.llm_calls == 1  # type: ignore[attr-defined]
    assert stages.index("preempted") < len(stages) - 1 and stages.count("token") > tokens_while_chatting
    assert investigator.scheduler is not None and investigator.scheduler.stats()["preemptions"] == 1
    assert len(model.seen) == 2  # the draft started over from its prompt


def test_the_agents_tools_answer_with_citable_ids_as_langchain_tools(settings: Settings, loaded: Tables) -> None:
    """Each evidence source as a LangChain tool bound to one case: what a tool-calling agent would be given."""
    from datetime import timedelta

    from fraudagent.tools.history import history_tool
    from fraudagent.tools.linked import linked_accounts_tool
    from fraudagent.tools.scores import risk_scores_tool, score_provider

    case = store.cases.get_case(loaded, "C-000123").case
    end = case.opened_at
    history = history_tool(loaded, account_id=case.account_id, end=end).invoke({"days": 30})
    assert [e["id"] for e in history["events"]] == ["txn:E-99790", "txn:E-99801", "txn:E-99812"] and not history["cut"]
    assert [
        e["id"] for e in history_tool(loaded, account_id=case.account_id, end=end).invoke({"days": 1})["events"]
    ] == [
        "txn:E-99801",
        "txn:E-99812",
    ]
    events, _ = store.events.account_events(
        loaded, case.account_id, start=end - timedelta(days=90), end=end, max_items=50
    )
    linked = linked_accounts_tool(
        loaded, account_id=case.account_id, events=events, start=end - timedelta(days=90), end=end
    )
    assert linked.invoke({}) == {"accounts": []}  # the example's devices and card are its own
    scores = risk_scores_tool(score_provider(settings), events=events, accounts=[]).invoke({})
    assert [s["id"] for s in scores["scores"]] == ["score:E-99812"] and scores["scores"][0]["score"] == 0.91

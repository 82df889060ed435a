"""Similar past cases without a store: score and rank fusion, BM25 length normalisation, the query for an open
case, chargeback signals, query validation, and a tampered ONNX embedding model refused. The Chroma store, the
server and the CLI: tests/integration/test_retrieval.py."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.models import (
    Account,
    Case,
    Event,
    EventType,
    Trigger,
    TriggerKind,
    Typology,
)
from fraudagent.core.settings import Settings
from fraudagent.retrieval.filters import CaseFilter
from fraudagent.retrieval.lexical import CaseTable, DeltaTable, LexicalIndex, StoredCase
from fraudagent.retrieval.queries import case_query
from fraudagent.retrieval.search import CaseQuery, reciprocal_rank_fusion, score_fusion

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)


ATO, CT, RA, FF, LEGIT = (
    Typology.account_takeover,
    Typology.card_testing,
    Typology.refund_abuse,
    Typology.friendly_fraud,
    Typology.legitimate,
)


def test_score_fusion_prefers_agreement_to_one_retrievers_favourite() -> None:
    cosines = {"both": 0.70, "vector_only": 0.75, "lexical_only": 0.40}
    bm25 = {"both": 8.0, "lexical_only": 10.0}
    fused = score_fusion(cosines, bm25, vector_share=0.7)
    assert [i for i, _ in fused] == ["both", "lexical_only", "vector_only"]
    assert fused[0][1] == pytest.approx(0.7 * 0.70 + 0.3 * 0.8)
    assert [i for i, _ in score_fusion(cosines, bm25, vector_share=1.0)][0] == "vector_only"
    assert [i for i, _ in score_fusion(cosines, bm25, vector_share=0.0)][0] == "lexical_only"


def test_bm25_length_normalisation_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = {"typology": "legitimate", "closed_ts": 0, "account_id": "A-1"}
    rows = [
        StoredCase("C-short", "refund requested twice", meta),
        StoredCase("C-long", "refund requested twice " + "played the new season every evening " * 8, meta),
    ]
    allowed = np.ones(2, dtype=bool)
    for b, short_wins in ((0.0, False), (1.0, True)):
        scores = CaseTable(rows, b=b).lexical_scores(["refund"], allowed)
        assert bool(scores[0] > scores[1] + 1e-6) is short_wins  # b=0: one mention is one mention, however long
    assert Settings().retrieval_bm25_b == 1.0
    monkeypatch.setenv("FRAUDAGENT_RETRIEVAL_BM25_B", "0.3")
    assert Settings().retrieval_bm25_b == 0.3


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k=60)
    assert [i for i, _ in fused] == ["b", "c", "a", "d"]  # found by both beats first in one
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_an_open_case_query_comes_from_its_events() -> None:
    from fraudagent.sim.world import generate_world

    world = generate_world(seed=3, accounts=400, days=30, past_cases=0)
    bundle = next(b for b in world.alerts if b.expected.typology is ATO)
    account = next(a for a in bundle.accounts if a.account_id == bundle.case.account_id)
    query = case_query(case=bundle.case, account=account, events=bundle.events, linked_account_ids=["A-LINKED"])
    assert {"credential_change", "foreign_ip"} <= set(query.signals)
    assert query.filters.exclude_account_ids == [bundle.case.account_id, "A-LINKED"]
    assert query.filters.closed_before == bundle.case.opened_at
    assert len(query.signals) >= 3  # enough signals: the embedding reads them, not the activity digest
    assert "opened on" in query.context and "opened on" not in query.embedding_text()


def test_a_chargeback_case_reads_its_signals_around_the_disputed_purchase() -> None:
    """Opened weeks after the purchase: the new account, the foreign IP and the BIN mismatch of the purchase
    count, not the quiet days before the chargeback."""
    created = BASE
    bought = BASE + timedelta(days=2)
    opened = bought + timedelta(days=11)
    card = {"instrument_id": "PI-1", "instrument_type": "card", "bin_country": "US", "currency": "USD"}
    events = [
        Event(
            event_id="E-1",
            account_id="A-CB",
            ts=bought - timedelta(minutes=20),
            type=EventType.login,
            status="success",
            device_id="D-1",
            ip_country="RU",
        ),
        Event(
            event_id="E-2",
            account_id="A-CB",
            ts=bought,
            type=EventType.purchase,
            amount="69.99",
            sku="GAME-1",
            status="settled",
            device_id="D-1",
            ip_country="RU",
            **card,
        ),
        Event(
            event_id="E-3",
            account_id="A-CB",
            ts=opened - timedelta(hours=2),
            type=EventType.chargeback,
            amount="69.99",
            sku="GAME-1",
            status="received",
            **card,
        ),
    ]
    account = Account(account_id="A-CB", created_at=created, country="US")
    case = Case(case_id="C-CB", account_id="A-CB", opened_at=opened, trigger=Trigger(kind=TriggerKind.chargeback))
    signals = set(case_query(case=case, account=account, events=events).signals)
    assert {"chargeback", "new_account", "foreign_ip", "bin_mismatch"} <= signals
    on_model_alert = case.model_copy(update={"trigger": Trigger(kind=TriggerKind.model)})
    quiet = case_query(case=on_model_alert, account=account, events=events).signals
    assert not {"new_account", "foreign_ip"} & set(quiet)


def test_a_query_needs_known_signals_and_something_to_look_for() -> None:
    with pytest.raises(ValueError, match="unknown signals"):
        CaseQuery(text="x", signals=["telepathy"])
    with pytest.raises(ValueError, match="text or signals"):
        CaseQuery(text="  ")


def test_a_tampered_onnx_model_is_refused(tmp_path: Path) -> None:
    from fraudagent.retrieval.embedding import model_dir, onnx_folder, prepare_onnx

    settings = Settings()
    source = model_dir(settings)
    built = prepare_onnx(source=source, cache_dir=settings.cache_dir)
    copy = onnx_folder(source=source, cache_dir=tmp_path)
    copy.mkdir(parents=True)
    for name in (built.name, built.name + ".stamp.json"):
        shutil.copyfile(built.parent / name, copy / name)
    with (copy / built.name).open("r+b") as f:  # flip one byte of the weights
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DependencyUnavailable, match="does not match its stamp"):
        prepare_onnx(source=source, cache_dir=tmp_path)


def _stored(case_id: str, text: str, typology: str = "legitimate", account: str = "A-1") -> StoredCase:
    return StoredCase(case_id, text, {"typology": typology, "closed_ts": 0, "account_id": account})


MAIN_ROWS = [
    _stored("C-1", "password reset from a new device, then gift cards", "account_takeover"),
    _stored("C-2", "refund requested twice for the same game", "refund_abuse", "A-2"),
    _stored("C-3", "small charges on many cards, most declined", "card_testing", "A-3"),
    _stored("C-4", "a chargeback on a game the console kept playing", "friendly_fraud", "A-4"),
]


TOKENS = ["gift", "cards", "declined", "refund", "game", "chargeback", "zebra", "twice"]


def test_bm25_scores_are_bm25s_lucene_scores() -> None:
    """Scored by our postings at query time, with the formula bm25s precomputes by default (`lucene`)."""
    import bm25s

    rows = [*MAIN_ROWS, _stored("C-9", "gift cards gift cards, refund refund refund; chargeback twice")]
    for b in (0.0, 0.75, 1.0):
        reference = bm25s.BM25(k1=1.5, b=b)
        reference.index([row.tokens() for row in rows], show_progress=False)
        for token in TOKENS[:6]:
            query = list(dict.fromkeys([token, "gift"]))  # a query's tokens count once
            ours = CaseTable(rows, k1=1.5, b=b).lexical_scores(query, np.ones(len(rows), dtype=bool))
            assert ours == pytest.approx(reference.get_scores(query), rel=1e-6, abs=1e-7)


def test_the_delta_ranks_and_scores_as_a_full_rebuild() -> None:
    """Added, replaced and deleted cases laid over the main table score exactly what a table built from the
    result would give (statistics of the whole index), with filters and explanations reaching the delta."""
    main = CaseTable(MAIN_ROWS, k1=1.5, b=1.0)
    added = _stored("C-5", "zebra ring: wallet top-ups on five accounts", "mule_ring", "A-5")
    replaced = _stored("C-2", "zebra refund requested three times", "refund_abuse", "A-2")
    index = LexicalIndex(main, DeltaTable([added, replaced], deleted=["C-3", "C-404"]))
    rebuilt = CaseTable([MAIN_ROWS[0], MAIN_ROWS[3], added, replaced], k1=1.5, b=1.0)
    assert len(index) == len(rebuilt) == 4
    assert index.position_of("C-3") is None and index.position_of("C-404") is None
    assert index.row(index.position_of("C-2") or 0) is replaced

    def scores(tokens: list[str], case_filter: CaseFilter | None = None) -> dict[str, float]:
        found = index.lexical_scores(tokens, index.allowed(case_filter or CaseFilter()))
        return {index.row(p).case_id: score for p, score in index.top_rows(found, 10)}

    for token in TOKENS:
        expected = rebuilt.lexical_scores([token, "refund"], np.ones(4, dtype=bool))
        full = {rebuilt.rows[p].case_id: score for p, score in rebuilt.top_rows(expected, 10)}
        assert list(scores([token, "refund"])) == list(full)
        assert scores([token, "refund"]) == pytest.approx(full, rel=1e-6)
    assert "C-3" not in scores(["declined"]) and "twice" not in index.row(index.position_of("C-2") or 0).document
    assert list(scores(["zebra"], CaseFilter(typologies=[Typology.mule_ring]))) == ["C-5"]
    assert list(scores(["zebra"], CaseFilter(exclude_account_ids=["A-5"]))) == ["C-2"]
    assert index.shared_terms(["zebra", "wallet", "game"], index.position_of("C-5") or 0) == ["wallet", "zebra"]


def test_a_delta_over_an_empty_table_scores_as_a_table_of_its_rows() -> None:
    empty = CaseTable([], k1=1.5, b=1.0)
    index = LexicalIndex(empty, DeltaTable(MAIN_ROWS))
    alone = CaseTable(MAIN_ROWS, k1=1.5, b=1.0)
    assert index.lexical_scores(TOKENS, index.allowed(CaseFilter())) == pytest.approx(
        alone.lexical_scores(TOKENS, np.ones(4, dtype=bool)), rel=1e-6
    )

"""Similar past cases: the Chroma store on disk and behind a real `chroma run` server, hybrid search,
filters, exclusions, the similarity floor, outcome summaries, the LangChain retriever and tool, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import pytest

from fraudagent.cli.services import ManagedProcess, free_port
from fraudagent.core.models import (
    Action,
    Disposition,
    PastCase,
    Typology,
)
from fraudagent.core.settings import Settings
from fraudagent.retrieval.documents import IndexedCase, Provenance, document
from fraudagent.retrieval.filters import CaseFilter
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.retrieval.search import CaseQuery, Fusion, RetrievalMode, reciprocal_rank_fusion
from fraudagent.tools.similar_cases import PastCaseRetriever, similar_cases_tool

ROOT = Path(__file__).resolve().parents[2]
CHROMA = ROOT / ".venv" / "bin" / "chroma"
BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)


ATO_QUERY = "password reset from a new device abroad, then gift cards bought within minutes"


NONSENSE = "purple elephant sonata quantum banana orchestra"


def _case(
    n: int, account: str, typology: Typology, disposition: Disposition, actions: list[Action], text: str
) -> PastCase:
    return PastCase(
        case_id=f"C-9{n:04d}",
        account_id=account,
        closed_at=BASE + timedelta(days=n),
        typology=typology,
        disposition=disposition,
        actions=actions,
        narrative=text,
    )


ATO, CT, RA, FF, LEGIT = (
    Typology.account_takeover,
    Typology.card_testing,
    Typology.refund_abuse,
    Typology.friendly_fraud,
    Typology.legitimate,
)


FRAUD, FP = Disposition.confirmed_fraud, Disposition.false_positive


CASES = [
    _case(
        1,
        "A-1",
        ATO,
        FRAUD,
        [Action.lock_account, Action.void_gift_cards],
        "Login from a new Windows PC with an IP in Romania, a password reset 4 minutes later, then 6 gift cards "
        "worth $600 in 20 minutes. Owner reported the hack. Confirmed account takeover.",
    ),
    _case(
        2,
        "A-2",
        ATO,
        FRAUD,
        [Action.lock_account],
        "ATO: unseen android login from VN, pw reset +3m, 5x GC = $500 in 15m. conf ATO - locked.",
    ),
    _case(
        3,
        "A-3",
        ATO,
        FRAUD,
        [Action.lock_account, Action.step_up_verification],
        "Someone signed in from Nigeria on a new laptop, did an email change within 5 min and bought gift cards "
        "and currency packs for $450. This was account takeover.",
    ),
    _case(
        4,
        "A-4",
        ATO,
        FRAUD,
        [Action.void_gift_cards],
        "Password reset and MFA removal right after a login from an unfamiliar iPhone in Turkey; 7 gift cards "
        "in ten minutes. Textbook account takeover.",
    ),
    _case(
        5,
        "A-5",
        CT,
        FRAUD,
        [Action.block_instrument],
        "40 charges of $0.99 were tried on 25 different cards in 12 minutes; 90% were declined. Card testing.",
    ),
    _case(
        6,
        "A-6",
        CT,
        FRAUD,
        [Action.block_instrument, Action.lock_account],
        "card testing: 30 attempts x $0.99, 20 cards, 9m / 85% declined, 3 passed. card blocked, locked.",
    ),
    _case(
        7,
        "A-7",
        RA,
        FRAUD,
        [Action.deny_refund],
        "There were 9 refund requests on 12 purchases in 5 weeks (75%), reasons always 'didnt like it'. "
        "Refund abuse; the pending refund was denied.",
    ),
    _case(
        8,
        "A-8",
        RA,
        FRAUD,
        [Action.deny_refund, Action.hold_purchases],
        "refund abuse: 7/10 refunded (70%) in 4w, reason always 'it crashes'. refund denied, purchases held.",
    ),
    _case(
        9,
        "A-9",
        FF,
        FRAUD,
        [Action.represent_chargeback],
        "A chargeback for $59.99 came in 30 days after the purchase; the same console kept playing, 20 sessions "
        "after it. Friendly fraud; the chargeback was represented.",
    ),
    _case(
        10,
        "A-10",
        LEGIT,
        FP,
        [Action.close_no_action],
        "Logins and 3 purchases came from Spain over 10 days; same console as always, usual card from the UK. "
        "The customer confirmed they were travelling. False positive, closed with no action.",
    ),
    _case(
        11,
        "A-11",
        LEGIT,
        FP,
        [Action.close_no_action],
        "Two identical charges of $69.99 went through 8 seconds apart; the chargeback covered only the duplicate. "
        "Not fraud.",
    ),
    _case(
        12,
        "A-RING",
        ATO,
        FRAUD,
        [Action.lock_account, Action.void_gift_cards],
        "New device login from an IP in Ukraine, password reset 2 minutes later, 8 gift cards for $800 in 25 "
        "minutes. Confirmed account takeover.",
    ),
]


RING = IndexedCase(case=CASES[-1], provenance=Provenance.simulated, region="UA", linked_account_ids=["A-1", "A-77"])


INDEXED = [
    IndexedCase(case=c, provenance=Provenance.imported, region="EU" if n % 2 else "US")
    for n, c in enumerate(CASES[:-1])
] + [RING]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """A real `chroma run` on loopback for the session, telemetry off, stopped at the end."""
    port = free_port()
    log_dir = ROOT / "test-artifacts" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "chroma.log"
    cmd = [
        str(CHROMA),
        "run",
        "--path",
        str(tmp_path_factory.mktemp("chroma-server")),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = os.environ | {"ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    server = ManagedProcess(name="chroma", process=process, log_path=log_path, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while not _heartbeat(server.url):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"chroma run did not start:\n{server.tail()}")
        time.sleep(0.2)
    yield server
    server.stop()


def _heartbeat(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/heartbeat", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(params=["disk", "server"])
def chroma_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    collection = "cases-" + uuid.uuid4().hex[:10]
    if request.param == "disk":
        return Settings(chroma_path=tmp_path / "chroma", chroma_collection=collection)
    server: ManagedProcess = request.getfixturevalue("chroma_server")
    port = int(server.url.rsplit(":", 1)[1])
    return Settings(chroma_host="127.0.0.1", chroma_port=port, chroma_collection=collection)


@pytest.fixture
def store(chroma_settings: Settings, embedder: object) -> PastCaseStore:
    store = PastCaseStore.from_settings(chroma_settings, embedder=embedder)
    store.upsert(INDEXED, batch_size=5)
    return store


def _ids(found: list) -> list[str]:  # type: ignore[type-arg]
    return [n.case.case_id for n in found]


def test_upsert_embeds_only_what_changed(chroma_settings: Settings, embedder: object) -> None:
    store = PastCaseStore.from_settings(chroma_settings, embedder=embedder)
    progress: list[tuple[int, int]] = []
    assert store.upsert(INDEXED, batch_size=5, on_progress=lambda done, total: progress.append((done, total))) == 12
    assert store.embedded == 12 and store.count() == 12
    assert progress == [(5, 12), (10, 12), (12, 12)]

    assert store.upsert(INDEXED) == 0
    assert store.embedded == 12  # the second upsert embedded nothing

    relabelled = INDEXED[0].model_copy(update={"region": "APAC"})
    rewritten = INDEXED[1].model_copy(update={"case": CASES[1].model_copy(update={"narrative": "ATO, locked."})})
    assert store.upsert([relabelled, rewritten]) == 2
    assert store.embedded == 13  # only the changed narrative was embedded again
    assert store.get(["C-90002"])[0].narrative == "ATO, locked."


def test_get_returns_the_cases_as_stored(store: PastCaseStore) -> None:
    assert store.get(["C-90007", "C-99999", "C-90001"]) == [CASES[6], CASES[0]]


@pytest.mark.parametrize("mode", list(RetrievalMode))
def test_same_and_linked_accounts_are_never_returned(store: PastCaseStore, mode: RetrievalMode) -> None:
    everything = store.find(CaseQuery.from_text(ATO_QUERY), k=12, mode=mode, min_similarity=-1.0)
    assert {"C-90001", "C-90012"} <= set(_ids(everything.neighbours))
    # A-1 is the case's account; C-90012 is on another account of A-1's ring.
    query = CaseQuery.from_text(ATO_QUERY, CaseFilter(exclude_account_ids=["A-1"]))
    found = store.find(query, k=12, mode=mode, min_similarity=-1.0)
    assert found.neighbours and not {"C-90001", "C-90012"} & set(_ids(found.neighbours))


@pytest.mark.parametrize("mode", list(RetrievalMode))
def test_filters_on_typology_time_and_region(store: PastCaseStore, mode: RetrievalMode) -> None:
    def ids(**filters: object) -> set[str]:
        text = ATO_QUERY + " declined cards refund"
        query = CaseQuery.from_text(text, CaseFilter(**filters))  # type: ignore[arg-type]
        return set(_ids(store.find(query, k=12, mode=mode, min_similarity=-1.0).neighbours))

    assert ids(typologies=[Typology.card_testing]) == {"C-90005", "C-90006"}
    assert ids(closed_after=BASE + timedelta(days=10)) <= {"C-90010", "C-90011", "C-90012"}
    assert all(c < "C-90003" for c in ids(closed_before=BASE + timedelta(days=3)))
    assert ids(regions=["UA"]) == {"C-90012"}


def test_nonsense_finds_nothing_rather_than_noise(store: PastCaseStore) -> None:
    found = store.find(CaseQuery.from_text(NONSENSE), k=5)
    assert found.neighbours == []
    assert found.summary.neighbours == 0 and found.summary.headline.startswith("No past case")
    assert store.find(CaseQuery.from_text(ATO_QUERY), k=5).neighbours  # the floor lets real matches through


def test_outcome_summary_counts_the_neighbours(store: PastCaseStore) -> None:
    found = store.find(CaseQuery.from_text(ATO_QUERY), k=5)
    summary = found.summary
    assert summary.neighbours == len(found.neighbours) == 5
    assert summary.typologies == {"account_takeover": 5}
    assert summary.dispositions == {"confirmed_fraud": 5}
    assert summary.actions["lock_account"] == 4 and summary.actions["void_gift_cards"] == 3
    assert (
        summary.headline
        == "5 of the 5 nearest cases were account takeover (confirmed fraud); 4 ended with lock_account."
    )


def test_each_neighbour_says_why_it_matched(store: PastCaseStore) -> None:
    top = store.find(CaseQuery.from_text(ATO_QUERY), k=1).neighbours[0]
    assert top.case.typology is ATO and top.evidence_id == f"case:{top.case.case_id}"
    assert {"credential_change", "gift_cards"} <= set(top.matched_signals)
    assert top.matched_terms and set(top.matched_terms) <= set(ATO_QUERY.lower().split()) | {"password", "reset"}
    assert top.vector_rank is not None and top.lexical_rank is not None


def test_hybrid_order_is_the_reciprocal_rank_fusion_of_both_retrievers(store: PastCaseStore) -> None:
    store.fusion, store.vector_share = Fusion.rrf, 0.5
    query = CaseQuery.from_text("gift cards and declined cards after a password reset")
    lists = [
        _ids(store.find(query, k=50, mode=m, min_similarity=-1.0).neighbours)
        for m in (RetrievalMode.vector, RetrievalMode.lexical)
    ]
    hybrid = store.find(query, k=50, mode=RetrievalMode.hybrid, min_similarity=-1.0).neighbours
    assert _ids(hybrid) == [case_id for case_id, _ in reciprocal_rank_fusion(lists, k=store.rrf_k)]
    assert lists[0] != lists[1]  # the fusion had something to do


def test_score_fusion_follows_its_share_between_the_two_retrievers(store: PastCaseStore) -> None:
    assert store.fusion is Fusion.scores  # the default
    query = CaseQuery.from_text("gift cards and declined cards after a password reset")

    def order(mode: RetrievalMode, share: float | None = None) -> list[str]:
        if share is not None:
            store.vector_share = share
        return _ids(store.find(query, k=50, mode=mode, min_similarity=-1.0).neighbours)

    vector, lexical = order(RetrievalMode.vector), order(RetrievalMode.lexical)
    assert order(RetrievalMode.hybrid, 1.0) == vector  # all on the cosine
    assert order(RetrievalMode.hybrid, 0.0)[: len(lexical)] == lexical  # all on BM25; cases sharing no term last
    bm25 = {
        n.case.case_id: n.score
        for n in store.find(query, k=50, mode=RetrievalMode.lexical, min_similarity=-1.0).neighbours
    }
    store.vector_share = 0.7
    mixed = store.find(query, k=50, mode=RetrievalMode.hybrid, min_similarity=-1.0).neighbours
    expected = [0.7 * n.similarity + 0.3 * bm25.get(n.case.case_id, 0.0) / max(bm25.values()) for n in mixed]
    assert [n.score for n in mixed] == pytest.approx(expected, abs=1e-3)
    assert [n.score for n in mixed] == sorted((n.score for n in mixed), reverse=True)


def test_fusion_comes_from_settings(tmp_path: Path, embedder: object, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().retrieval_fusion == "scores"
    monkeypatch.setenv("FRAUDAGENT_RETRIEVAL_FUSION", "rrf")
    monkeypatch.setenv("FRAUDAGENT_RETRIEVAL_VECTOR_SHARE", "0.25")
    settings = Settings(chroma_path=tmp_path / "chroma", chroma_collection="fusion")
    store = PastCaseStore.from_settings(settings, embedder=embedder)
    assert (store.fusion, store.vector_share) == (Fusion.rrf, 0.25)


def test_the_lexical_index_follows_writes_from_another_client(
    store: PastCaseStore, chroma_settings: Settings, embedder: object
) -> None:
    assert "C-90050" not in _ids(
        store.find(CaseQuery.from_text("wallet top-ups zebra"), k=3, min_similarity=-1.0).neighbours
    )
    other = PastCaseStore(
        client=make_client(chroma_settings), collection=chroma_settings.chroma_collection, embedder=embedder
    )
    other.upsert(
        [
            _case(
                50,
                "A-50",
                Typology.mule_ring,
                FRAUD,
                [Action.lock_account],
                "zebra ring: wallet top-ups on 5 accounts sharing cards",
            )
        ]
    )
    # the next search sees the changed count and starts a rebuild in the background; it does not wait for it
    store.find(CaseQuery.from_text("wallet top-ups zebra"), k=3, mode=RetrievalMode.lexical, min_similarity=-1.0)
    assert store.wait_for_lexical_rebuild(timeout=120)
    found = store.find(
        CaseQuery.from_text("wallet top-ups zebra"), k=3, mode=RetrievalMode.lexical, min_similarity=-1.0
    )
    assert _ids(found.neighbours)[0] == "C-90050"
    assert store.lexical_builds == 2


ZEBRA = _case(
    60,
    "A-60",
    Typology.mule_ring,
    FRAUD,
    [Action.lock_account],
    "zebra ring: wallet top-ups on 5 accounts sharing cards",
)


def _lexical_ids(store: PastCaseStore, text: str, k: int = 12) -> list[str]:
    query = CaseQuery.from_text(text)
    return _ids(store.find(query, k=k, mode=RetrievalMode.lexical, min_similarity=-1.0).neighbours)


def test_an_upserted_case_is_found_at_once_without_a_full_rebuild(store: PastCaseStore) -> None:
    assert "C-90060" not in _lexical_ids(store, "wallet top-ups zebra")
    assert store.lexical_builds == 1  # the first search built the copy
    store.upsert([ZEBRA])
    assert _lexical_ids(store, "wallet top-ups zebra")[0] == "C-90060"
    hybrid = store.find(CaseQuery.from_text("zebra ring wallet top-ups"), k=3, min_similarity=-1.0).neighbours
    assert _ids(hybrid)[0] == "C-90060" and hybrid[0].lexical_rank == 1 and hybrid[0].vector_rank is not None
    assert "zebra" in hybrid[0].matched_terms

    # replaced: found once, as it is now; deleted: found no more, by either retriever
    romania = CASES[0].model_copy(update={"narrative": "zebra: a login from a new PC, then 6 gift cards. ATO."})
    store.upsert([romania])
    for mode in RetrievalMode:
        found = _ids(
            store.find(CaseQuery.from_text("zebra gift cards"), k=12, mode=mode, min_similarity=-1.0).neighbours
        )
        assert found.count("C-90001") == 1, mode
    assert "C-90001" not in _lexical_ids(store, "Romania")  # only the old version said it
    store.delete(["C-90005"])
    for mode in RetrievalMode:
        query = CaseQuery.from_text("40 charges of $0.99 on 25 different cards, declined: card testing")
        assert "C-90005" not in _ids(store.find(query, k=12, mode=mode, min_similarity=-1.0).neighbours), mode
    assert store.lexical_builds == 1 and store.count() == 12  # no full rebuild; the delta holds all three


def test_the_rebuild_after_max_age_runs_in_the_background(
    store: PastCaseStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _lexical_ids(store, ATO_QUERY)
    read_all = store._read_all
    reading, release = threading.Event(), threading.Event()

    def slow_read_all() -> list:  # type: ignore[type-arg]
        reading.set()
        assert release.wait(120), "the test never released the rebuild"
        return read_all()

    monkeypatch.setattr(store, "_read_all", slow_read_all)
    store.lexical_max_age_s = 0.0  # every copy is too old now
    try:
        searched: list[list[str]] = []
        searcher = threading.Thread(target=lambda: searched.append(_lexical_ids(store, ATO_QUERY)))
        searcher.start()
        assert reading.wait(60)  # the search started a rebuild ...
        searcher.join(60)
        assert not searcher.is_alive() and searched == [before]  # ... and answered from the copy it had
        assert not release.is_set() and store.lexical_builds == 1  # while the rebuild was still reading

        store.upsert([ZEBRA])  # a write while the rebuild reads is searchable at once, and after the swap
        assert _lexical_ids(store, "wallet top-ups zebra")[0] == "C-90060"
        assert store.lexical_builds == 1
    finally:
        release.set()
    assert store.wait_for_lexical_rebuild(timeout=120)
    assert store.lexical_builds == 2
    store.lexical_max_age_s = 3600.0
    assert _lexical_ids(store, "wallet top-ups zebra").count("C-90060") == 1
    assert _lexical_ids(store, "wallet top-ups zebra")[0] == "C-90060"


QUERIES = [
    ATO_QUERY,
    "gift cards and declined cards after a password reset",
    "refund requested again and again, refunds denied",
    "chargeback after the purchase, the console kept playing",
    "wallet top-ups zebra ring sharing cards",
]


def test_results_with_the_delta_equal_a_full_rebuilds(store: PastCaseStore) -> None:
    """On a small store the delta's scores (with the last build's statistics) rank as a full rebuild does."""
    _lexical_ids(store, ATO_QUERY)
    store.upsert(
        [
            ZEBRA,
            _case(61, "A-61", CT, FRAUD, [Action.block_instrument], "card testing: 25 cards, $1 each, 80% declined."),
            CASES[6].model_copy(update={"narrative": "Refunds on 8 of 10 purchases; refund denied. Refund abuse."}),
        ]
    )
    store.delete(["C-90009"])
    assert store.lexical_builds == 1

    def rankings() -> list[list[tuple[str, float]]]:
        return [
            [
                (n.case.case_id, n.score)
                for n in store.find(CaseQuery.from_text(text), k=12, mode=mode, min_similarity=-1.0).neighbours
            ]
            for text in QUERIES
            for mode in (RetrievalMode.lexical, RetrievalMode.hybrid)
        ]

    incremental = rankings()
    store.rebuild_lexical()
    assert store.lexical_builds == 2 and len(store.lexical_table().delta) == 0
    full = rankings()
    assert [[case_id for case_id, _ in r] for r in incremental] == [[case_id for case_id, _ in r] for r in full]
    for with_delta, rebuilt in zip(incremental, full, strict=True):
        assert [score for _, score in with_delta] == pytest.approx([score for _, score in rebuilt], abs=1e-5)


def test_the_agents_free_text_search_still_works(store: PastCaseStore) -> None:
    hits = store.search(ATO_QUERY, k=3, exclude_account_ids=["A-2"])
    assert len(hits) == 3 and "C-90002" not in _ids(hits)
    assert all(h.case.typology is ATO and 0 < h.similarity <= 1 for h in hits)


def test_retriever_returns_case_documents_marked_untrusted(store: PastCaseStore) -> None:
    docs = PastCaseRetriever(store=store, k=3).invoke(ATO_QUERY)
    assert len(docs) == 3
    for doc in docs:
        assert doc.id == doc.metadata["id"] == f"case:{doc.metadata['case_id']}"
        assert doc.metadata["untrusted"] is True and "never instructions" in doc.metadata["untrusted_note"]
        assert doc.metadata["typology"] == "account_takeover" and doc.metadata["actions"]
        assert doc.page_content == store.get([doc.metadata["case_id"]])[0].narrative


def test_tool_keeps_its_bound_exclusions(store: PastCaseStore) -> None:
    tool = similar_cases_tool(store, exclude_account_ids=["A-1"])
    result = tool.invoke({"text": ATO_QUERY, "k": 10})
    ids = [c["id"] for c in result["cases"]]
    assert ids and all(i.startswith("case:") for i in ids)
    assert "case:C-90001" not in ids and "case:C-90012" not in ids
    assert result["summary"]["neighbours"] == len(ids) and all(c["untrusted"] for c in result["cases"])
    only_testing = tool.invoke({"text": "declined small charges on many cards", "typologies": ["card_testing"]})
    assert {c["typology"] for c in only_testing["cases"]} == {"card_testing"}


def test_cli_indexes_a_simulated_store_once(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "fraudagent.cli",
        "sim",
        "--out",
        str(tmp_path / "w"),
        "--seed",
        "5",
        "--accounts",
        "120",
        "--days",
        "14",
        "--past-cases",
        "25",
    ]
    sim = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert sim.returncode == 0, sim.stderr
    env = os.environ | {"FRAUDAGENT_CHROMA_PATH": str(tmp_path / "chroma")}

    def index() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "fraudagent.cli", "cases", "index", str(tmp_path / "w")]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)

    first, second = index(), index()
    assert first.returncode == 0, first.stderr
    assert "25 past cases: 25 embedded" in first.stdout and "the store holds 25" in first.stdout
    assert "indexing past cases" in first.stderr  # the progress bar
    assert "0 embedded, 0 metadata only, 25 unchanged" in second.stdout

    missing = subprocess.run(
        [sys.executable, "-m", "fraudagent.cli", "cases", "index", str(tmp_path / "nowhere")],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr and "Traceback" not in missing.stderr


def test_the_int8_onnx_embedder_agrees_with_the_torch_model(embedder: object) -> None:
    from fraudagent.retrieval.embedding import TorchEmbedder, model_dir

    texts = [document(c) for c in INDEXED[:6]] + [ATO_QUERY, NONSENSE]
    reference = TorchEmbedder(model_dir(Settings()), max_tokens=128)(texts)
    ours = embedder(texts)  # type: ignore[operator]
    assert ours.shape == reference.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-3)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    # the same texts in another order (another padding) give the same vectors
    assert np.allclose(embedder(texts[::-1])[::-1], ours, atol=1e-4)  # type: ignore[operator]
    # and a text's vector does not depend on what was embedded with it (int8 activations are quantised per call)
    alone = np.stack([embedder([t])[0] for t in texts])  # type: ignore[operator]
    assert np.abs(alone - ours).max() < 1e-5


def test_a_collection_refuses_another_embedders_vectors_until_reembedded(
    chroma_settings: Settings, embedder: object
) -> None:
    from fraudagent.retrieval.embedding import OnnxEmbedder, model_dir, prepare_onnx
    from fraudagent.retrieval.past_cases import EmbedderMismatch

    store = PastCaseStore.from_settings(chroma_settings, embedder=embedder)
    store.upsert(INDEXED[:4])
    assert store.built_with == embedder.identity  # type: ignore[attr-defined]
    source = model_dir(chroma_settings)
    other = OnnxEmbedder(source, prepare_onnx(source=source, cache_dir=chroma_settings.cache_dir), max_tokens=32)
    assert other.identity != embedder.identity  # type: ignore[attr-defined]
    mixed = PastCaseStore.from_settings(chroma_settings, embedder=other)
    with pytest.raises(EmbedderMismatch, match="cases reembed"):
        mixed.find(CaseQuery.from_text(ATO_QUERY), k=3)
    with pytest.raises(EmbedderMismatch):
        mixed.upsert(INDEXED[4:6])
    assert mixed.reembed() == 4 and mixed.embedded == 4
    assert mixed.built_with == other.identity
    assert mixed.upsert(INDEXED[:4]) == 0  # re-indexed from its stored contents: nothing left to change
    assert [c.narrative for c in mixed.get([c.case.case_id for c in INDEXED[:4]])] == [
        c.case.narrative for c in INDEXED[:4]
    ]
    assert mixed.find(CaseQuery.from_text(ATO_QUERY), k=3, min_similarity=-1.0).neighbours
    with pytest.raises(EmbedderMismatch):  # and now the first embedder is the stranger
        PastCaseStore.from_settings(chroma_settings, embedder=embedder).find(CaseQuery.from_text(ATO_QUERY), k=3)

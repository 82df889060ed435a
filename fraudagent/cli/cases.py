"""`fraudagent cases …`: index past cases into the store, and search it from the shell."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column, Table

from fraudagent.cli.support import cli_settings as _settings
from fraudagent.cli.support import console, err
from fraudagent.cli.support import failure as _fail
from fraudagent.core.bundle import json_path
from fraudagent.core.errors import FraudAgentError, InvalidInput, Problem
from fraudagent.core.models import Typology

cases_app = typer.Typer(help="The past-case store: index investigated cases, find similar ones.", no_args_is_help=True)


@cases_app.command("index")
def index(
    path: Annotated[
        Path, typer.Argument(help="case bundles (.json, .jsonl, a folder) or a `fraudagent sim` output folder")
    ],
) -> None:
    """Index past cases into the Chroma store; unchanged cases are skipped, changed ones embedded again."""
    from fraudagent.retrieval.ingest import read_cases
    from fraudagent.retrieval.past_cases import PastCaseStore

    settings = _settings()
    try:
        with err.status(f"reading {path}"):
            cases = read_cases(path)
        with err.status("loading the embedding model"):
            store = PastCaseStore.from_settings(settings)
        started = time.perf_counter()
        with Progress(
            TextColumn("[bold]indexing past cases"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress:
            task = progress.add_task("index", total=len(cases))
            written = store.upsert(
                cases, on_progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
        elapsed = time.perf_counter() - started
        with err.status("rebuilding the lexical index"):
            store.lexical_table()
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(
        f"{len(cases)} past cases: {store.embedded} embedded, {written - store.embedded} metadata only, "
        f"{len(cases) - written} unchanged ({elapsed:.1f}s); the store holds {store.count()}",
        soft_wrap=True,
    )


@cases_app.command("reembed")
def reembed() -> None:
    """Embed every stored past case again with the configured embedder (after changing it)."""
    from fraudagent.retrieval.past_cases import PastCaseStore

    settings = _settings()
    try:
        with err.status("loading the embedding model"):
            store = PastCaseStore.from_settings(settings)
        before = store.built_with
        started = time.perf_counter()
        with Progress(
            TextColumn("[bold]embedding past cases"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress:
            task = progress.add_task("reembed", total=store.count())
            done = store.reembed(on_progress=lambda n, total: progress.update(task, completed=n, total=total))
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(
        f"{done} past cases embedded again in {time.perf_counter() - started:.1f}s "
        f"(was {before or 'unrecorded'}, now {store.built_with})",
        soft_wrap=True,
    )


@cases_app.command("prepare-embedder")
def prepare_embedder() -> None:
    """Build the ONNX embedding model from the packaged weights into the cache (set-up does this; idempotent)."""
    from fraudagent.retrieval.embedding import load_embedder

    settings = _settings()
    try:
        with err.status("preparing the embedding model"):
            embedder = load_embedder(settings)
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(f"embedding model ready: {embedder.identity}", soft_wrap=True)


@cases_app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="the behaviour to look for, in words")],
    k: Annotated[int, typer.Option(min=1, max=50, help="how many cases")] = 10,
    typology: Annotated[list[Typology] | None, typer.Option(help="only this typology (repeatable)")] = None,
    exclude_account: Annotated[
        list[str] | None, typer.Option(help="leave out this account and its ring (repeatable)")
    ] = None,
) -> None:
    """Find past cases similar to a description, and how they ended."""
    from fraudagent.retrieval.filters import CaseFilter
    from fraudagent.retrieval.past_cases import PastCaseStore
    from fraudagent.retrieval.search import CaseQuery

    settings = _settings()
    try:
        with err.status("loading the embedding model"):
            store = PastCaseStore.from_settings(settings)
        query = CaseQuery.from_text(
            text, CaseFilter(typologies=typology or [], exclude_account_ids=exclude_account or [])
        )
        found = store.find(query, k=k)
    except ValidationError as error:
        problems = [Problem(json_path(tuple(e["loc"])), e["msg"]) for e in error.errors(include_url=False)]
        raise _fail(InvalidInput("invalid query", problems)) from None
    except FraudAgentError as error:
        raise _fail(error) from None
    table = Table(
        Column("case", no_wrap=True), "similarity", "typology", "disposition", "actions", "why it matched", box=None
    )
    for n in found.neighbours:
        why = ", ".join(n.matched_signals + n.matched_terms) or "meaning only"
        table.add_row(
            n.evidence_id,
            f"{n.similarity:.2f}",
            n.case.typology.value,
            n.case.disposition.value,
            ", ".join(a.value for a in n.case.actions),
            why,
        )
    console.print(table)
    console.print(found.summary.headline)

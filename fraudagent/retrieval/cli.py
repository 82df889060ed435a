"""`fraudagent cases …`: index past cases into the store, and search it from the shell."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column, Table

from fraudagent.core.bundle import json_path
from fraudagent.core.errors import FraudAgentError, InvalidInput, Problem
from fraudagent.core.logging import configure_logging
from fraudagent.core.models import Typology
from fraudagent.core.settings import Settings, get_settings

cases_app = typer.Typer(help="The past-case store: index investigated cases, find similar ones.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _fail(error: FraudAgentError) -> typer.Exit:
    """One line per problem on stderr; exit 2 for bad input, 1 for an unavailable service."""
    err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
    for problem in getattr(error, "problems", [])[:50]:
        err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    return typer.Exit(2 if isinstance(error, InvalidInput) else 1)


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
            TextColumn("[bold]indexing past cases"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=err,
        ) as progress:  # fmt: skip
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
        table.add_row(n.evidence_id, f"{n.similarity:.2f}", n.case.typology.value, n.case.disposition.value,
                      ", ".join(a.value for a in n.case.actions), why)  # fmt: skip
    console.print(table)
    console.print(found.summary.headline)

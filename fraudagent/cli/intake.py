"""`fraudagent intake`: alert records from the Kinesis stream become triaged cases; `fraudagent intake put`
sends alert records to the stream (a file of JSON lines)."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from fraudagent.cli.support import cli_settings, console, err, failure
from fraudagent.core.errors import FraudAgentError, InvalidInput, Problem
from fraudagent.core.settings import Settings

intake_app = typer.Typer(
    help="Alert intake from Kinesis: `fraudagent intake` runs a worker; `fraudagent intake put FILE` sends alerts."
)
_WORKER_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def build_worker(
    settings: Settings, *, worker_id: str | None = None, investigator: Any = None, stats: Any = None
) -> Any:
    """An intake worker on the configured stream and tables (the stream is created on a local endpoint)."""
    from fraudagent import bootstrap
    from fraudagent.intake.flows import IntakeContext, IntakeWorker
    from fraudagent.intake.metrics import IntakeStats
    from fraudagent.intake.service import check_settings, open_stream
    from fraudagent.store import dynamo

    check_settings(settings)
    if investigator is None:
        investigator = bootstrap.build_investigator(settings)
    dynamo.create_tables(investigator.history.client, settings)
    ctx = IntakeContext(
        settings=settings,
        investigator=investigator,
        stream=open_stream(settings),
        scorer=bootstrap.load_scorer(settings),
        past_case_store=investigator.past_cases,
        stats=stats if stats is not None else IntakeStats(),
    )
    return IntakeWorker(ctx, worker=worker_id)


@intake_app.callback(invoke_without_command=True)
def intake(
    ctx: typer.Context,
    worker_id: Annotated[
        str | None, typer.Option("--worker-id", help="this worker's lease owner name (default: host:pid:random)")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="read what the stream holds now, then stop")] = False,
) -> None:
    """Read alert records from FRAUDAGENT_INTAKE_STREAM and open a triaged case for each (Ctrl-C stops and gives
    the shard leases back)."""
    if ctx.invoked_subcommand is not None:
        return
    if worker_id is not None and not _WORKER_ID.match(worker_id):
        raise failure(InvalidInput("bad --worker-id", [Problem("--worker-id", "1 to 128 of A-Z a-z 0-9 _ . : -")]))
    settings = cli_settings()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with err.status("connecting to the stream and the store"):
            worker = build_worker(settings, worker_id=worker_id)
    except FraudAgentError as error:
        raise failure(error) from None
    if settings.intake_metrics_port and not once:
        from fraudagent.intake.metrics import serve

        try:
            serve(worker.ctx.stats, host=settings.intake_metrics_host, port=settings.intake_metrics_port)
        except OSError as error:
            raise failure(
                InvalidInput(
                    f"cannot serve metrics on {settings.intake_metrics_host}:{settings.intake_metrics_port}: "
                    f"{error.strerror}",
                    [Problem("FRAUDAGENT_INTAKE_METRICS_PORT", "in use? 0 turns the endpoint off")],
                )
            ) from None
        err.print(f"metrics on http://{settings.intake_metrics_host}:{settings.intake_metrics_port}/metrics")
    stream = settings.intake_stream
    try:
        if once:
            with err.status(f"reading {stream} as {worker.worker}"):
                worker.run_until_idle()
            worker.stop()
        else:
            err.print(f"intake worker {worker.worker} reading {stream} (Ctrl-C to stop)")
            worker.start()
            while worker.thread is not None and worker.thread.is_alive():
                time.sleep(1)
    except KeyboardInterrupt:
        err.print("stopping; giving the shard leases back")
        worker.stop()
    except FraudAgentError as error:
        worker.stop()
        raise failure(error) from None
    outcomes = worker.outcomes
    console.print(
        f"{sum(outcomes.values())} record(s): "
        + (", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(outcomes.items())) or "nothing new")
    )


@intake_app.command("put")
def put(
    path: Annotated[Path, typer.Argument(help="a file of alert records, one JSON document per line")],
) -> None:
    """Send alert records to the stream, one per line, partitioned by account (lines are sent as they are)."""
    from fraudagent.intake.service import open_stream

    settings = cli_settings()
    try:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    except OSError as error:
        raise failure(InvalidInput(f"cannot read {path}: {error.strerror}", [])) from None
    try:
        stream = open_stream(settings)
        for line in lines:
            try:
                doc = json.loads(line)
                key = str(doc.get("account_id") or doc.get("alert_id")) if isinstance(doc, dict) else "unparsed"
            except ValueError:
                key = "unparsed"
            stream.put(line, key[:256] or "unparsed")
    except FraudAgentError as error:
        raise failure(error) from None
    console.print(f"sent {len(lines)} record(s) to {settings.intake_stream}")


@intake_app.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 50,
    raw: Annotated[
        bool, typer.Option("--raw", help="print the raw records, one per line (fix them, then `intake put` them)")
    ] = False,
) -> None:
    """The records intake could not use, with why (FRAUDAGENT_INTAKE_STREAM)."""
    import sys

    from rich.table import Table

    from fraudagent.store import intake as intake_store
    from fraudagent.store.tables import Tables

    settings = cli_settings()
    try:
        letters, more = intake_store.dead_letters(Tables.connect(settings), stream=settings.intake_stream, limit=limit)
    except FraudAgentError as error:
        raise failure(error) from None
    if raw:
        for letter in letters:
            sys.stdout.buffer.write(letter.raw.replace(b"\n", b" ") + b"\n")
        return
    table = Table(title=f"dead letters of {settings.intake_stream}", title_justify="left")
    for column in ("shard", "sequence", "reason", "alert", "detail", "bytes"):
        table.add_column(column)
    for letter in letters:
        detail = letter.detail + "".join(f"\n  {p}" for p in letter.problems[:5])
        table.add_row(
            letter.shard_id,
            letter.sequence_number,
            letter.reason,
            letter.alert_id or "-",
            detail,
            str(letter.raw_size),
        )
    console.print(table)
    if more:
        err.print(f"more than {limit}; use --limit")

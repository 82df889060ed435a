"""`fraudagent eval`: run a suite, compare two runs, export decided cases as a suite, (re)generate the shipped
suites."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fraudagent.cli.support import cli_settings as _settings
from fraudagent.cli.support import console, err
from fraudagent.cli.support import failure as _fail
from fraudagent.core.errors import FraudAgentError

eval_app = typer.Typer(help="Eval suites: run, compare, gate.", no_args_is_help=True)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def metrics_table(run: object) -> Table:
    table = Table(title=f"{run.meta.suite} · {run.meta.solver} · {run.meta.model} · {run.meta.cases} cases")  # type: ignore[attr-defined]
    for col in ("metric", "value", "95% interval", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in run.metrics.items():  # type: ignore[attr-defined]
        ci = f"{_fmt(m.ci_low)} – {_fmt(m.ci_high)}" if m.ci_low is not None else "—"
        table.add_row(name, _fmt(m.value), ci, str(m.n))
    return table


@eval_app.command("run")
def run(
    suite: Annotated[
        str, typer.Option(help="a suite folder, or the name of a shipped suite (core, adversarial, edge, handwritten)")
    ],
    out: Annotated[Path, typer.Option(help="folder for results.json, report.html, junit.xml")],
    solver: Annotated[
        str, typer.Option(help="policy (no LLM), agent (our pipeline) or naive (plain LangChain agent)")
    ] = "agent",
    model: Annotated[str | None, typer.Option(help="model name (default FRAUDAGENT_LLM_MODEL)")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="cases in parallel (default FRAUDAGENT_EVAL_CONCURRENCY)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only this many cases, round-robin over typologies")] = None,
    gate: Annotated[bool, typer.Option("--gate", help="exit 1 when a metric breaks the suite's thresholds")] = False,
    judge_model: Annotated[
        str | None, typer.Option(help="LLM-as-judge model (default FRAUDAGENT_EVAL_JUDGE_MODEL; unset: off)")
    ] = None,
) -> None:
    """Run a suite with a solver in isolated stores and write results.json, report.html and junit.xml."""
    from fraudagent.evals.flows import run_suite
    from fraudagent.evals.metrics import gate as check_gate
    from fraudagent.evals.suites import load_suite

    settings = _settings()
    if solver not in ("policy", "agent", "naive"):
        err.print(f"[red]error:[/] unknown solver {solver!r}: use policy, agent or naive")
        raise typer.Exit(2)
    try:
        loaded = load_suite(suite)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def on_progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = progress.add_task(what, total=total)
                progress.update(tasks[what], completed=done, total=total)

            result = run_suite(
                suite=loaded,
                settings=settings,
                out_dir=out,
                solver=solver,  # type: ignore[arg-type]  # checked above
                model=model,
                concurrency=concurrency or settings.eval_concurrency,
                limit=limit,
                seed=settings.eval_seed,
                samples=settings.eval_bootstrap_samples,
                judge_model=judge_model or settings.eval_judge_model,
                on_progress=on_progress,
            )
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(metrics_table(result))
    if result.judge:
        j = result.judge
        console.print(
            f"judge {j.judge_model}: {j.judged} judged, agreement {j.raw_agreement}, Cohen's kappa {j.cohen_kappa}"
            f" ({j.note})"
        )
    console.print(
        f"wrote {out}/results.json, report.html, junit.xml ({sum(c.passed for c in result.cases)}/{len(result.cases)}"
        " cases pass)"
    )
    if gate:
        broken = check_gate(result.metrics, minimum=loaded.thresholds.min, maximum=loaded.thresholds.max)
        if broken:
            err.print(f"gate failed ({loaded.spec.name}): " + "; ".join(broken), highlight=False, soft_wrap=True)
            raise typer.Exit(1)
        console.print(
            f"gate passed ({loaded.spec.name}: {len(loaded.thresholds.min) + len(loaded.thresholds.max)} thresholds)"
        )


@eval_app.command("compare")
def compare(
    run_a: Annotated[Path, typer.Argument(help="run folder (or results.json) A, the baseline")],
    run_b: Annotated[Path, typer.Argument(help="run folder (or results.json) B, the candidate")],
    html: Annotated[Path | None, typer.Option(help="also write the comparison as HTML here")] = None,
) -> None:
    """Per-metric deltas B - A with paired significance, and the cases that flipped."""
    from fraudagent.evals.compare import compare_runs
    from fraudagent.evals.flows import read_run
    from fraudagent.evals.reports import compare_html

    settings = _settings()
    try:
        a, b = read_run(run_a), read_run(run_b)
    except FraudAgentError as error:
        raise _fail(error) from None
    c = compare_runs(a, b, samples=settings.eval_bootstrap_samples, seed=settings.eval_seed)
    table = Table(
        title=f"A {a.meta.solver}/{a.meta.model} vs B {b.meta.solver}/{b.meta.model} · {c.shared} shared cases"
    )
    for col in ("metric", "A", "B", "B − A", "95% interval", "p boot", "p McNemar", "verdict"):
        table.add_column(col, justify="left" if col in ("metric", "verdict") else "right", no_wrap=col == "metric")
    colour = {"better": "green", "worse": "red"}
    for d in c.deltas:
        table.add_row(
            d.metric,
            _fmt(d.a),
            _fmt(d.b),
            _fmt(d.delta),
            f"{_fmt(d.ci_low)} – {_fmt(d.ci_high)}" if d.ci_low is not None else "—",
            _fmt(d.p_bootstrap),
            f"{_fmt(d.mcnemar_p)} ({d.discordant[0]}/{d.discordant[1]})" if d.discordant else "—",
            f"[{colour.get(d.verdict, 'default')}]{d.verdict}[/]",
        )
    console.print(table)
    console.print(f"{len(c.flips)} case score(s) flipped", soft_wrap=True)
    flips = Table()
    for col in ("case", "score", "A", "B"):
        flips.add_column(col, no_wrap=col in ("case", "score"))
    for f in c.flips[:50]:
        flips.add_row(f.case_id, f.score, f"{f.a:g}: {f.explanation_a}", f"{f.b:g}: {f.explanation_b}")
    console.print(flips)
    if len(c.flips) > 50:
        console.print(f"… and {len(c.flips) - 50} more (see --html)")
    if html:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(compare_html(c), encoding="utf-8")
        console.print(f"wrote {html}")


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]error:[/] {option} takes a date as YYYY-MM-DD, not {value!r}", highlight=False)
        raise typer.Exit(2) from None


@eval_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="the suite folder to write (must not exist, or be empty)")],
    decided: Annotated[
        bool, typer.Option("--decided", help="export the cases analysts decided (the one source there is)")
    ] = False,
    since: Annotated[str | None, typer.Option(help="only cases decided on or after this day (YYYY-MM-DD, UTC)")] = None,
    typology: Annotated[str | None, typer.Option(help="only cases decided with this typology")] = None,
    name: Annotated[str | None, typer.Option(help="the suite's name (default decided-<today>)")] = None,
    keep_pii: Annotated[
        bool,
        typer.Option("--keep-pii", help="keep personal data as stored (needs an admin key: --admin-key)"),
    ] = False,
    admin_key: Annotated[
        str | None,
        typer.Option(
            envvar="FRAUDAGENT_ADMIN_KEY",
            help="an API key with the admin role, checked against the key store; required by --keep-pii",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the decided cases as a suite (expected = the analyst's decision) that `eval run` takes like any suite;
    personal data is replaced by stable tokens unless an admin asks for --keep-pii. Audited."""
    from fraudagent.core.models import Typology
    from fraudagent.feedback.export import export_decided, pii_key
    from fraudagent.keys.service import KeyAuthenticator
    from fraudagent.retrieval.past_cases import PastCaseStore
    from fraudagent.store.tables import Tables

    settings = _settings()
    if not decided:
        err.print("[red]error:[/] say what to export: --decided (the cases analysts decided)")
        raise typer.Exit(2)
    day = _date(since, "--since")
    chosen = None
    if typology is not None:
        try:
            chosen = Typology(typology)
        except ValueError:
            err.print(
                f"[red]error:[/] unknown typology {typology!r}: one of {', '.join(t.value for t in Typology)}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2) from None
    try:
        history = Tables.connect(settings)
        actor = "cli"
        if keep_pii:
            identity = (
                KeyAuthenticator(history=history, bootstrap_key=settings.api_key, cache_s=0).identify(admin_key)
                if admin_key
                else None
            )
            if identity is None or "admin" not in identity.roles:
                err.print("[red]error:[/] --keep-pii needs a valid admin API key (--admin-key or FRAUDAGENT_ADMIN_KEY)")
                raise typer.Exit(2)
            actor = identity.name
        with err.status("exporting the decided cases"):
            result = export_decided(
                history,
                past_case_store=PastCaseStore.from_settings(settings),
                out=out,
                since=day,
                typology=chosen,
                keep_pii=keep_pii,
                key=pii_key(settings),
                actor=actor,
                name=name,
            )
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(
        f"wrote {result.out}: {len(result.cases)} decided case(s)"
        + (" with personal data kept" if result.keep_pii else ", personal data replaced by stable tokens")
        + f" (audit {result.audit_id}); run it with: fraudagent eval run --suite {result.out} --solver policy --out …",
        soft_wrap=True,
    )


@eval_app.command("generate")
def generate(
    out: Annotated[
        Path | None, typer.Option(help="folder to write the suites to (default: the package's suites folder)")
    ] = None,
) -> None:
    """(Re)write the shipped suites core, adversarial and edge from the simulator (deterministic; not handwritten)."""
    from fraudagent.evals.generate import generate_suites
    from fraudagent.evals.suites import SHIPPED

    _settings()
    target = out or SHIPPED
    with err.status("simulating and writing the suites"):
        counts = generate_suites(target)
    console.print(f"wrote {target}: " + ", ".join(f"{name} {n} cases" for name, n in counts.items()))

"""Writing a world to disk: the store as JSON Lines, one case bundle per alert, a manifest.

Layout under `out_dir`:

    store/accounts.jsonl, store/events.jsonl, store/scores.jsonl, store/past_cases.jsonl
    alerts/<case_id>.json      one indented case bundle each
    manifest.json              seed, sizes, versions, counts per typology

Every record is the CASE_BUNDLE.md field shape (`exclude_none`, timestamps in
UTC with 'Z'), and nothing depends on the clock or the machine, so the same
world is written byte for byte the same.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from fraudagent.core.models import Typology, utc_iso
from fraudagent.risk.rules import SCORER_VERSION
from fraudagent.sim.world import GENERATOR_VERSION, World

Progress = Callable[[str, int, int], None]
"""Called as (stage, done, total) while writing."""

_PROGRESS_EVERY = 10_000


def write_world(world: World, out_dir: Path, *, on_progress: Progress | None = None) -> dict[str, int]:
    """Write `world` under `out_dir` and return how many records of each kind were written."""
    report = on_progress or _silent
    store = out_dir / "store"
    store.mkdir(parents=True, exist_ok=True)
    counts = {
        "accounts": _write_jsonl(store / "accounts.jsonl", world.accounts, "accounts", report),
        "events": _write_jsonl(store / "events.jsonl", world.events, "events", report),
        "scores": _write_jsonl(store / "scores.jsonl", world.scores, "scores", report),
        "past_cases": _write_jsonl(store / "past_cases.jsonl", world.past_cases, "past_cases", report),
        "alerts": _write_alerts(out_dir / "alerts", world, report),
    }
    manifest = out_dir / "manifest.json"
    manifest.write_text(json.dumps(_manifest(world, counts), indent=2) + "\n", encoding="utf-8")
    report("manifest", 1, 1)
    return counts


def _silent(stage: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


def _write_jsonl(path: Path, records: Sequence[BaseModel], stage: str, report: Progress) -> int:
    total = len(records)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for done, record in enumerate(records, start=1):
            out.write(record.model_dump_json(exclude_none=True))
            out.write("\n")
            if done % _PROGRESS_EVERY == 0:
                report(stage, done, total)
    report(stage, total, total)
    return total


def _write_alerts(folder: Path, world: World, report: Progress) -> int:
    """One file per alert; files of alerts this world does not have are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {f"{bundle.case.case_id}.json" for bundle in world.alerts}
    for stale in sorted(folder.glob("C-*.json")):
        if stale.name not in names:
            stale.unlink()
    total = len(world.alerts)
    for done, bundle in enumerate(world.alerts, start=1):
        text = bundle.model_dump_json(exclude_none=True, indent=2)
        (folder / f"{bundle.case.case_id}.json").write_text(text + "\n", encoding="utf-8", newline="\n")
        report("alerts", done, total)
    return total


def _manifest(world: World, counts: dict[str, int]) -> dict[str, object]:
    alerts_by_typology = Counter(b.expected.typology for b in world.alerts if b.expected)
    alerts_by_disposition = Counter(b.expected.disposition.value for b in world.alerts if b.expected)
    truth = Counter(world.truth.values())
    past = Counter(p.typology for p in world.past_cases)
    return {
        "generator_version": GENERATOR_VERSION,
        "scorer_version": SCORER_VERSION,
        "bundle_version": 1,
        "seed": world.seed,
        "start": utc_iso(world.start),
        "end": utc_iso(world.end),
        "days": world.days,
        "counts": counts,
        "accounts_by_typology": {t.value: truth[t] for t in Typology},
        "alerts_by_typology": {t.value: alerts_by_typology[t] for t in Typology},
        "alerts_by_disposition": dict(sorted(alerts_by_disposition.items())),
        "past_cases_by_typology": {t.value: past[t] for t in Typology},
    }

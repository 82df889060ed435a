"""Suites: a folder of case bundles with `expected`, a `suite.yaml` and a `thresholds.yaml`.

    <suite>/suite.yaml        name, description, generator, pairs (attacked/clean), kinds (edge cases, rules_* labels)
    <suite>/thresholds.yaml   min: {metric: value}, max: {metric: value}
    <suite>/cases/*.json      one case bundle each (CASE_BUNDLE.md, with `expected`)

A suite is named by a path, or by the name of a suite shipped in
`fraudagent/evals/suites/`. The agent never sees `expected`: `agent_bundles`
strips it before anything is loaded into a store.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from fraudagent.core.bundle import read_bundles
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import CaseBundle, Expected
from fraudagent.evals.models import SuiteSpec, Thresholds

SHIPPED = Path(__file__).resolve().parent / "suites"
_SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True)
class Suite:
    spec: SuiteSpec
    thresholds: Thresholds
    path: Path
    bundles: list[CaseBundle]  # with expected, in the suite's order

    @property
    def expected(self) -> dict[str, Expected]:
        return {b.case.case_id: b.expected for b in self.bundles if b.expected is not None}

    def twin_of(self) -> dict[str, tuple[str, str]]:
        """case id -> (twin id, 'attacked' | 'clean')."""
        found: dict[str, tuple[str, str]] = {}
        for pair in self.spec.pairs:
            found[pair.attacked] = (pair.clean, "attacked")
            found[pair.clean] = (pair.attacked, "clean")
        return found


def shipped_suites() -> list[str]:
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "suite.yaml").is_file()) if SHIPPED.is_dir() else []


def locate(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if (path / "suite.yaml").is_file():
        return path
    if (SHIPPED / name_or_path / "suite.yaml").is_file():
        return SHIPPED / name_or_path
    known = ", ".join(shipped_suites()) or "none"
    raise InvalidInput(f"no suite at {name_or_path!r} (a folder with suite.yaml, or one of: {known})", [])


def locate_by_name(name: str, *, extra: Path | None = None) -> Path:
    """A suite by name only (for callers who may not name paths): a shipped suite, or a sub-folder of `extra`."""
    if not _SUITE_NAME.fullmatch(name):
        raise InvalidInput(
            f"{name!r} is not a suite name", [Problem("suite", "letters, digits, '.', '_' and '-' only")]
        )
    for folder in (SHIPPED, extra):
        if folder is not None and (folder / name / "suite.yaml").is_file():
            return folder / name
    known = ", ".join(
        shipped_suites()
        + (
            sorted(p.name for p in extra.iterdir() if (p / "suite.yaml").is_file())
            if extra is not None and extra.is_dir()
            else []
        )
    )
    raise InvalidInput(f"no suite named {name!r} (known: {known or 'none'})", [Problem("suite", "unknown suite")])


def _yaml(path: Path, model: type[SuiteSpec] | type[Thresholds]) -> SuiteSpec | Thresholds:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return model.model_validate(doc)
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"cannot read {path}: {error}", []) from None
    except ValidationError as error:
        problems = [Problem(f"{path}:{'.'.join(map(str, e['loc']))}", e["msg"]) for e in error.errors()]
        raise InvalidInput(f"{path} is not valid", problems) from None


def load_suite(name_or_path: str) -> Suite:
    """Read and validate a suite; every bundle must carry `expected`."""
    path = locate(name_or_path)
    spec = _yaml(path / "suite.yaml", SuiteSpec)
    thresholds = _yaml(path / "thresholds.yaml", Thresholds) if (path / "thresholds.yaml").is_file() else Thresholds()
    bundles = sorted(read_bundles(path / "cases"), key=lambda b: b.case.case_id)
    missing = [b.case.case_id for b in bundles if b.expected is None]
    if missing:
        raise InvalidInput(
            f"{len(missing)} bundle(s) in {path} have no `expected`", [Problem(c, "no expected") for c in missing[:20]]
        )
    ids = {b.case.case_id for b in bundles}
    unknown = [p for p in spec.pairs if p.attacked not in ids or p.clean not in ids]  # type: ignore[union-attr]
    if unknown:
        raise InvalidInput(f"{path}/suite.yaml pairs name cases that are not in the suite", [])
    return Suite(spec=spec, thresholds=thresholds, path=path, bundles=bundles)  # type: ignore[arg-type]


def agent_bundles(bundles: list[CaseBundle]) -> list[CaseBundle]:
    """The bundles as the agent may see them: `expected` removed."""
    return [b.model_copy(update={"expected": None}) for b in bundles]


def select(suite: Suite, limit: int | None) -> list[CaseBundle]:
    """The first `limit` cases, taken round-robin over expected typologies so a small run covers many;
    an attacked case always comes with its clean twin."""
    if limit is None or limit >= len(suite.bundles):
        return list(suite.bundles)
    twins = suite.twin_of()
    by_id = {b.case.case_id: b for b in suite.bundles}
    units: dict[str, list[list[str]]] = defaultdict(list)
    seen: set[str] = set()
    for bundle in suite.bundles:
        cid = bundle.case.case_id
        if cid in seen:
            continue
        unit = [cid]
        if cid in twins:
            twin, role = twins[cid]
            unit = [twin, cid] if role == "attacked" else [cid, twin]
        seen.update(unit)
        units[bundle.expected.typology.value].append(unit)  # type: ignore[union-attr]
    chosen: list[str] = []
    queues = [units[t] for t in sorted(units)]
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.extend(queue.pop(0))
    return [by_id[c] for c in chosen]

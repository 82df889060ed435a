"""Reading case bundles: parse, check every rule of CASE_BUNDLE.md, list every problem by JSON path."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import CaseBundle


def json_path(loc: tuple[int | str, ...], root: str = "$") -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _pydantic_problems(error: ValidationError, root: str) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        # pydantic appends the union/validator tag to loc for some errors; keep the data path only.
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        problems.append(Problem(json_path(loc, root), item["msg"]))
    return problems


def validation_problems(error: ValidationError, root: str = "$") -> list[Problem]:
    """A pydantic error as located problems (messages only: never the offending input)."""
    return _pydantic_problems(error, root)


M = TypeVar("M", bound=BaseModel)


def read_records(path: Path, model: type[M], problems: list[Problem], *, required: bool = False) -> list[M]:
    """One record per line of a .jsonl file; every bad line becomes a located problem in `problems`."""
    if not path.exists():
        if required:
            problems.append(Problem(str(path), "missing"))
        return []
    records: list[M] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{lineno}:$"
            try:
                records.append(model.model_validate(json.loads(line)))
            except json.JSONDecodeError as error:
                problems.append(Problem(source, f"not valid JSON: {error.msg}"))
            except ValidationError as error:
                problems += _pydantic_problems(error, source)
    return records


def _duplicates(values: list[str]) -> set[str]:
    return {v for v, n in Counter(values).items() if n > 1}


def cross_reference_problems(bundle: CaseBundle, root: str = "$") -> list[Problem]:
    """The rules pydantic can't express: references resolve and ids are unique."""
    problems: list[Problem] = []
    account_ids = [a.account_id for a in bundle.accounts]
    event_ids = [e.event_id for e in bundle.events]
    for dup in sorted(_duplicates(account_ids)):
        problems.append(Problem(f"{root}.accounts", f"account_id {dup!r} appears more than once"))
    for dup in sorted(_duplicates(event_ids)):
        problems.append(Problem(f"{root}.events", f"event_id {dup!r} appears more than once"))
    known_accounts = set(account_ids)
    if bundle.case.account_id not in known_accounts:
        problems.append(Problem(f"{root}.case.account_id", f"{bundle.case.account_id!r} is not in accounts"))
    for i, event in enumerate(bundle.events):
        if event.account_id not in known_accounts:
            problems.append(Problem(f"{root}.events[{i}].account_id", f"{event.account_id!r} is not in accounts"))
        if (event.amount is None) != (event.currency is None):
            problems.append(Problem(f"{root}.events[{i}]", "amount and currency must be given together"))
    known_events = set(event_ids)
    scored = [s.event_id for s in bundle.scores or []]
    for i, score in enumerate(bundle.scores or []):
        if score.event_id not in known_events:
            problems.append(Problem(f"{root}.scores[{i}].event_id", f"{score.event_id!r} is not in events"))
    for dup in sorted(_duplicates(scored)):
        problems.append(Problem(f"{root}.scores", f"event {dup!r} is scored more than once"))
    past_ids = [p.case_id for p in bundle.past_cases]
    for dup in sorted(_duplicates(past_ids)):
        problems.append(Problem(f"{root}.past_cases", f"case_id {dup!r} appears more than once"))
    if bundle.case.case_id in past_ids:
        problems.append(Problem(f"{root}.past_cases", "the open case itself must not be a past case"))
    return problems


def parse_bundle(doc: Any, root: str = "$") -> tuple[CaseBundle | None, list[Problem]]:
    """Validate one decoded JSON document. Returns the bundle, or None and every problem."""
    if not isinstance(doc, dict):
        return None, [Problem(root, "a bundle must be a JSON object")]
    try:
        bundle = CaseBundle.model_validate(doc)
    except ValidationError as error:
        return None, _pydantic_problems(error, root)
    problems = cross_reference_problems(bundle, root)
    return (None, problems) if problems else (bundle, [])


@dataclass(frozen=True)
class SourcedDocument:
    """A decoded JSON document with where it came from (file, or file:line for .jsonl)."""

    source: str
    doc: Any


def _decode(text: str, source: str) -> tuple[Any, Problem | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, Problem(source, f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
    except RecursionError:
        return None, Problem(source, "JSON nested too deeply")


def read_documents(path: Path) -> Iterator[tuple[SourcedDocument | None, Problem | None]]:
    """Every JSON document under path: a .json file, a .jsonl file, or a folder of them."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".json", ".jsonl"} and p.is_file())
    elif path.is_file():
        files = [path]
    else:
        yield None, Problem(str(path), "no such file or folder")
        return
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            yield None, Problem(str(file), "not UTF-8 text")
            continue
        if file.suffix == ".jsonl":
            for lineno, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    source = f"{file}:{lineno}"
                    doc, problem = _decode(line, source)
                    yield (SourcedDocument(source, doc), None) if problem is None else (None, problem)
        else:
            doc, problem = _decode(text, str(file))
            yield (SourcedDocument(str(file), doc), None) if problem is None else (None, problem)


def read_bundles(path: Path) -> list[CaseBundle]:
    """Read and validate every bundle under path; refuse all of them if any is malformed."""
    bundles: list[CaseBundle] = []
    problems: list[Problem] = []
    for sourced, problem in read_documents(path):
        if problem is not None:
            problems.append(problem)
            continue
        assert sourced is not None
        bundle, found = parse_bundle(sourced.doc, root=f"{sourced.source}:$")
        problems.extend(found)
        if bundle is not None:
            bundles.append(bundle)
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in {path}; nothing was loaded", problems)
    if not bundles:
        raise InvalidInput(f"no bundles found in {path}", [Problem(str(path), "no .json or .jsonl bundle")])
    return bundles

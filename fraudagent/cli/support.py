"""What every `fraudagent` sub-command shares: the consoles, settings with logging, and one way to fail."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from fraudagent.core.errors import FraudAgentError, InvalidInput, Problem
from fraudagent.core.logging import configure_logging
from fraudagent.core.settings import Settings, get_settings

MAX_PROBLEMS_SHOWN = 50

console = Console()
err = Console(stderr=True)


def cli_settings() -> Settings:
    """The settings, with logging configured from them (level and format); a bad value is one line per variable."""
    try:
        settings = get_settings()
    except ValidationError as error:
        problems = [
            Problem(
                "FRAUDAGENT_" + "_".join(str(p) for p in item["loc"]).upper() if item["loc"] else "settings",
                item["msg"],
            )
            for item in error.errors(include_url=False, include_input=False)
        ]
        raise failure(InvalidInput("invalid settings", problems)) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def failure(error: FraudAgentError) -> typer.Exit:
    """One line on stderr (plus each located problem); exit 2 for bad input, 1 for anything else."""
    err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
    problems = getattr(error, "problems", [])
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        err.print(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN} more")
    return typer.Exit(2 if isinstance(error, InvalidInput) else 1)

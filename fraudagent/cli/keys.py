"""`fraudagent keys`: create, list and revoke API keys (stored hashed in DynamoDB)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from fraudagent.cli.support import cli_settings as _settings
from fraudagent.cli.support import console
from fraudagent.cli.support import failure as _fail
from fraudagent.core.errors import FraudAgentError
from fraudagent.store import dynamo
from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables

keys_app = typer.Typer(help="API keys with roles (analyst, ticketing, evaluator, admin).", no_args_is_help=True)


def _history() -> Tables:
    settings = _settings()
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    return history


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="who holds the key (letters, digits, space . _ : -; no emails)")],
    role: Annotated[
        list[str], typer.Option("--role", help="analyst, ticketing, evaluator or admin; repeat for several")
    ],
) -> None:
    """Create a key and show it once; only its hash is stored."""
    try:
        key, secret = key_store.create_key(_history(), name=name, roles=role, created_by="cli")
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(
        Panel(
            f"key id [bold]{key.key_id}[/] · {key.name} · roles {', '.join(key.roles)}\n\n[bold]{secret}[/]\n\n"
            "Shown this once: store it now. Send it as `Authorization: Bearer <key>`.",
            title="API key",
            expand=False,
        ),
        soft_wrap=True,
    )


@keys_app.command("list")
def list_() -> None:
    """List keys (ids, names, roles, state); never the secrets."""
    try:
        keys = key_store.list_keys(_history())
    except FraudAgentError as error:
        raise _fail(error) from None
    table = Table(title=f"{len(keys)} API keys")
    for column in ("key id", "name", "roles", "created", "by", "state"):
        table.add_column(column)
    for k in keys:
        state = "[green]active[/]" if k.active else f"[red]revoked[/] {k.revoked_at:%Y-%m-%d %H:%M} by {k.revoked_by}"
        table.add_row(k.key_id, k.name, ", ".join(k.roles), f"{k.created_at:%Y-%m-%d %H:%M}", k.created_by, state)
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by `fraudagent keys list`")]) -> None:
    """Revoke a key; running services refuse it within FRAUDAGENT_API_KEY_CACHE_S seconds."""
    try:
        key = key_store.revoke_key(_history(), key_id=key_id, revoked_by="cli")
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(f"revoked {key.key_id} ({key.name})")

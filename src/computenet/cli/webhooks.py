"""`cnet webhooks add|list|remove|test|deliveries`: a project's webhook endpoints, or a whole tenant's
(--tenant: the events of every account of the tenant; its admins only), over the API."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

webhooks_app = typer.Typer(no_args_is_help=True,
                           help="A project's (or a tenant's) webhook endpoints: events POSTed, signed.")
console = Console(emoji=False)
ACCOUNT = typer.Option(None, "--account", "-A", help="the project account")
TENANT = typer.Option(None, "--tenant", "-T", help="the tenant (instead of --account): every project's events")


def _api(name: str, owner: tuple[str | None, str | None], *args, **kwargs):
    from ..client import ApiError
    from .main import client, fail

    account, tenant = owner
    if (account is None) == (tenant is None):
        fail("name the project with --account or the tenant with --tenant (one of them)")
    try:
        with client() as c:
            return getattr(c, name)(account, *args, tenant=tenant, **kwargs)
    except ApiError as exc:
        fail(exc.detail)


def _whose(owner: tuple[str | None, str | None]) -> str:
    return owner[0] if owner[0] is not None else f"tenant {owner[1]}"


@webhooks_app.command("add")
def add(url: str, account: Optional[str] = ACCOUNT, tenant: Optional[str] = TENANT,
        event: list[str] = typer.Option(["*"], "--event", "-e",
                                        help="an event type or pattern (job.charged, job.*, *); repeatable"),
        description: str = typer.Option("", help="what it is for")) -> None:
    """POST the account's (or tenant's) events matching --event to URL; prints the signing secret (shown once)."""
    owner = (account, tenant)
    out = _api("add_webhook", owner, url, event, description)
    console.print(f"endpoint {out['id']} for {escape(_whose(owner))}: {escape(out['url'])} "
                  f"({escape(', '.join(out['event_types']))})", highlight=False)
    console.print("signing secret (shown once; verify webhook-signature with it):", highlight=False)
    console.print(out["secret"], highlight=False, markup=False)


@webhooks_app.command("list")
def list_(account: Optional[str] = ACCOUNT, tenant: Optional[str] = TENANT) -> None:
    """The account's (or tenant's) endpoints (never their secrets)."""
    table = Table("id", "url", "events", "description", "created")
    for e in _api("webhooks", (account, tenant)):
        table.add_row(str(e["id"]), escape(e["url"]), escape(", ".join(e["event_types"])), escape(e["description"]),
                      e["created_at"][:16])
    console.print(table)


@webhooks_app.command("remove")
def remove(endpoint_id: int, account: Optional[str] = ACCOUNT, tenant: Optional[str] = TENANT) -> None:
    """Remove an endpoint (its pending deliveries are not sent)."""
    _api("remove_webhook", (account, tenant), endpoint_id)
    console.print(f"endpoint {endpoint_id} removed")


@webhooks_app.command("test")
def test(endpoint_id: int, account: Optional[str] = ACCOUNT, tenant: Optional[str] = TENANT) -> None:
    """Send a signed webhook.test event to the endpoint now and show what it answered."""
    from .main import fail

    out = _api("test_webhook", (account, tenant), endpoint_id)
    if not out["ok"]:
        fail(f"endpoint {endpoint_id}: {out['error']}")
    console.print(f"endpoint {endpoint_id} answered HTTP {out['status']} (event {out['event_id']})", highlight=False)


@webhooks_app.command("deliveries")
def deliveries(account: Optional[str] = ACCOUNT, tenant: Optional[str] = TENANT, endpoint: Optional[int] = typer.Option(None, help="only this endpoint's"),
               status: Optional[str] = typer.Option(None, help="pending, delivered or dead"),
               limit: int = typer.Option(50, min=1, max=500)) -> None:
    """Recent deliveries, newest first: tries, the last answer, and why a dead one was given up."""
    table = Table("id", "endpoint", "event", "type", "status", "tries", "last error", "next try")
    for d in _api("webhook_deliveries", (account, tenant), endpoint, status, limit):
        table.add_row(str(d["id"]), str(d["endpoint"]), d["event_id"][:8], d["event_type"], d["status"],
                      str(d["attempts"]), escape(d["last_error"]), (d["next_attempt_at"] or "")[:19])
    console.print(table)

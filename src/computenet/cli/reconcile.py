"""`cnet admin reconcile`: jobs that hold money and need an operator's decision (on the server host)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import admin
from .lazy import lazy

reconcile = lazy("computenet.services.jobs.reconcile")

reconcile_app = typer.Typer(no_args_is_help=True,
                            help="Jobs flagged needs_reconcile: list them, and adopt, withdraw, release or charge.")
admin.admin_app.add_typer(reconcile_app, name="reconcile")
console = Console(emoji=False)


def _platform():
    return admin._platform()


@reconcile_app.command("list")
def list_jobs(as_json: bool = typer.Option(False, "--json", help="one JSON list, for scripts")) -> None:
    """Every flagged job, with why it is flagged, what it holds and what can be done."""
    platform = _platform()
    with platform.db.session() as session:
        rows = [p.to_json() for p in reconcile.needing(session)]
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        console.print("no job needs reconciling")
        return
    table = Table("job", "owner", "account", "cluster", "native", "state", "held", "why", "actions")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["owner"]), escape(r["account"]), escape(r["cluster"]),
                      escape(r["native_id"] or "-"), r["state"], r["held"], escape(r["why"]), ", ".join(r["actions"]))
    console.print(table)


@reconcile_app.command("resolve")
def resolve(job_id: int,
            action: str = typer.Option(..., help="adopt (with --native-id), withdraw, release (charge nothing) "
                                                 "or charge (with --amount)"),
            native_id: Optional[str] = typer.Option(None, help="adopt: the job's id on the cluster"),
            amount: Optional[str] = typer.Option(None, help="charge: the amount, at most the job's max cost"),
            note: str = typer.Option("", help="why (kept in the audit log)")) -> None:
    """Decide on one flagged job; its hold is posted or voided once, and the decision audited."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            job = reconcile.resolve(session, job_id, action, admin.WHO(), native_id, amount, note)
            return job.state, job.settled_at is not None

    state, settled = admin._run(step)
    console.print(f"job {job_id}: {action} done ({state}{', settled' if settled else ''})")

"""`cnet admin workers`: the background tasks, who holds each, how its last run went."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table

from .admin import admin_app, console


def _when(value: datetime | None) -> str:
    return value.strftime("%m-%d %H:%M:%S") if value else "-"


@admin_app.command("workers")
def workers() -> None:
    """List the background tasks: holder (host:pid:nonce), lease expiry, last success, lag, last error."""
    from ..config import load_settings
    from ..store.db import Database
    from ..workers.status import tasks

    db = Database(load_settings().db_url)  # read only: no migration, no cluster sync
    try:
        with db.session() as session:
            rows = tasks(session)
    finally:
        db.dispose()
    if not rows:
        console.print("no background task has run yet (start `cnet server` or `cnet server --role worker`)")
        return
    table = Table("task", "holder", "lease until (UTC)", "last success (UTC)", "took s", "late s", "last error", box=None)
    table.columns[0].no_wrap = table.columns[1].no_wrap = True
    for r in rows:
        error = f"{_when(r['last_error_at'])} {r['last_error']}"[:80] if r["last_error"] else "-"
        table.add_row(r["task"], r["holder"] or f"(none; was {r['last_holder'] or '-'})", _when(r["expires_at"]),
                      _when(r["last_success_at"]),
                      f"{r['last_duration_s']:.2f}" if r["last_duration_s"] is not None else "-",
                      f"{r['lag_s']:.0f}", error)
    console.print(table)

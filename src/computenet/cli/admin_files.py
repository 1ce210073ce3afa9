"""`cnet admin storage-quota`: an operator's say over project workspaces (registered on `cnet admin`)."""

from __future__ import annotations

from typing import Optional

import typer

from .admin import WHO, _platform, _run, accounts, admin_app, audit, console
from .lazy import lazy

workspaces = lazy("computenet.services.files.workspaces")


@admin_app.command("storage-quota")
def storage_quota(account: str, gb: Optional[str] = typer.Argument(None, help="omit for the platform default")) -> None:
    """Set a project workspace's quota in GB."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            quota = workspaces.set_project_quota(session, acc, gb)
            audit.record(session, WHO(), "storage_quota.set", f"account:{account}", gb=gb)
            return quota

    quota = _run(step)
    console.print(f"@{account}: quota {f'{gb} GB ({quota} bytes)' if quota else 'the platform default'}")

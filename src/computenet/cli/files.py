"""`cnet files ...` and `cnet quota`: workspaces from the terminal, with progress bars."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

files_app = typer.Typer(no_args_is_help=True, help="Your workspace (paths) and your projects' (@project/paths).")
console = Console(emoji=False)


def _bar():
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    # the description is markup: file names in it are escaped by the callers
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def upload_with_bar(cli, local: Path, path: str, overwrite: bool) -> dict:
    with _bar() as bar:
        task = bar.add_task(escape(f"up {local.name}"), total=local.stat().st_size)
        return cli.upload(local, path, overwrite=overwrite, progress=lambda n: bar.advance(task, n))


@files_app.command("ls")
def ls(path: str = typer.Argument("", help="a directory or file (default: your workspace)")) -> None:
    """List a directory: size, kind, where each file came from."""
    from .main import api, client

    entries = api(lambda: client().ls(path))
    table = Table(box=None)
    for column in ("name", "size", "kind", "origin", "sha256"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for e in entries:
        table.add_row(escape(e["name"] + ("/" if e["kind"] == "dir" else "")),
                      "" if e["kind"] == "dir" else _human(e["size"]),
                      e["kind"], escape(e.get("origin", "")), (e.get("sha256") or "")[:16])
    console.print(table if entries else "(empty)")


@files_app.command("put")
def put(local: Path = typer.Argument(..., exists=True, dir_okay=False, help="a file on this machine"),
        path: Optional[str] = typer.Argument(None, help="where in the workspace (default: its name at the top)"),
        force: bool = typer.Option(False, "--force", "-f", help="replace a file that is there")) -> None:
    """Upload a file in checksummed chunks (resumable)."""
    from .main import api, client

    target = path or local.name
    if target.endswith("/"):
        target += local.name
    done = api(lambda: upload_with_bar(client(), local, target, force))
    console.print(f"{done['path']}: {done['size']} bytes, sha256 {done['sha256']}", markup=False)


@files_app.command("get")
def get(path: str = typer.Argument(..., help="a workspace file"),
        local: Optional[Path] = typer.Argument(None, help="where to save it (default: its name, here)"),
        force: bool = typer.Option(False, "--force", "-f", help="replace a local file that is there")) -> None:
    """Download a file (resumes a partial download; checks the SHA-256)."""
    from .main import api, client, fail

    target = local or Path(os.path.basename(path.rstrip("/")))
    if target.is_dir():
        target = target / os.path.basename(path.rstrip("/"))
    if (target.exists() or target.is_symlink()) and not force:
        fail(f"{target} exists here; --force replaces it")
    cli = client()
    size = next((e["size"] for e in api(lambda: cli.ls(path)) if e["kind"] == "file"), None)
    with _bar() as bar:
        task = bar.add_task(escape(f"down {target.name}"), total=size)
        done = api(lambda: cli.download(path, target, progress=lambda n: bar.advance(task, n)))
    console.print(f"{done['local']}: {done['size']} bytes, sha256 {done['sha256']}"
                  + (" (verified)" if done["verified"] else ""), markup=False)


@files_app.command("rm")
def rm(path: str, recursive: bool = typer.Option(False, "-r", "--recursive", help="a directory and all in it")) -> None:
    """Delete a file (or a directory with -r)."""
    from .main import api, client

    freed = api(lambda: client().rm(path, recursive))
    console.print(f"removed {path} ({_human(freed)} freed)", markup=False)


@files_app.command("mv")
def mv(src: str, dst: str, force: bool = typer.Option(False, "--force", "-f")) -> None:
    """Move or rename inside one workspace."""
    from .main import api, client

    console.print(f"moved to {api(lambda: client().mv(src, dst, force))}", markup=False)


@files_app.command("mkdir")
def mkdir(path: str) -> None:
    """Make a directory (and its parents)."""
    from .main import api, client

    console.print(f"made {api(lambda: client().mkdir(path))}", markup=False)


def quota() -> None:
    """Space used and quota of your workspace and your projects'."""
    from .main import api, client

    table = Table(box=None)
    for column in ("workspace", "used", "quota", "used %"):
        table.add_column(column, justify="left" if column == "workspace" else "right")
    for row in api(lambda: client().quota()):
        table.add_row(escape(row["workspace"]), _human(row["used_bytes"]), _human(row["quota_bytes"]),
                      f"{row['used_percent']:.2f}")
    console.print(table)

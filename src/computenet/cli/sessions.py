"""`cnet session start|list|show|open|extend|stop`: interactive sessions (JupyterLab, a shell, a
desktop) through the SDK, as the portal's sessions page does.

A table on a terminal, plain whitespace columns on a pipe, `--json` for programs. Nothing here
imports httpx or pydantic at module level (`cnet version` pays for every command module's imports).
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

session_app = typer.Typer(no_args_is_help=True, help="Interactive sessions: JupyterLab, a shell, a desktop.")

HEADS = ["ID", "APP", "STATE", "CLUSTER", "CORES", "LEFT", "COST", "URL"]
RIGHT = {"ID", "CORES", "LEFT", "COST"}


def _left(s: dict) -> str:
    from .render import duration

    return "-" if s.get("time_left_s") is None else duration(s["time_left_s"])


def _cells(s: dict, base: str) -> list[str]:
    state = s["state"] + (f":{s['ended_reason']}" if s.get("ended_reason") else "")  # one word, for awk
    cells = [str(s["id"]), s["app"], state, s.get("cluster") or "-", str(s.get("cores") or "-"), _left(s),
             s.get("cost_so_far") or "-", _address(s, base)]
    return [c.replace("\n", " ").replace("\t", " ") for c in cells]  # one session a line


def _print(rows: list[dict], base: str, as_json: bool, header: bool = True) -> None:
    from .main import console

    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    cells = [_cells(s, base) for s in rows]
    if console.is_terminal:
        from rich.table import Table

        table = Table(box=None)
        for head in HEADS:
            table.add_column(head, justify="right" if head in RIGHT else "left")
        for row in cells:
            table.add_row(*row)
        console.print(table, markup=False, highlight=False)
        return
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(HEADS)]

    def line(row):
        return "  ".join(c.rjust(w) if h in RIGHT else c.ljust(w) for c, w, h in zip(row, widths, HEADS)).rstrip()
    for text in ([line(HEADS)] if header else []) + [line(r) for r in cells]:
        sys.stdout.write(text + "\n")


def _base(c) -> str:
    return str(c.http.base_url).rstrip("/").removesuffix("/v1")


def _address(s: dict, base: str) -> str:
    """The session's address: the API gives it absolute, on the sessions' own origin."""
    url = s.get("url")
    if not url:
        return "-"
    return url if "://" in url else base + url


def _said(s: dict) -> str:
    """A session in a line, for the commands that change one."""
    where = f" on {s['cluster']}" if s.get("cluster") else ""
    return f"session {s['id']} ({s['app']}{where}): {s['state']}" + \
        (f", {s['time_limit_minutes']} min limit" if s.get("time_limit_minutes") else "")


@session_app.command("start")
def start(app: str = typer.Argument(..., help="an interactive app: jupyterlab, shell, ..."),
          cores: Optional[int] = typer.Option(None, "--cores", "-c", min=1, help="cores (the app's default if not given)"),
          hours: Optional[float] = typer.Option(None, "--time", "-t", help="hours it may run (e.g. 2 or 0.5)"),
          cluster: Optional[str] = typer.Option(None, "--cluster", "-M", help="this cluster only"),
          account: Optional[str] = typer.Option(None, "--account", "-A", help="the account to charge"),
          as_json: bool = typer.Option(False, "--json", help="the session as JSON")) -> None:
    """Start a session: its job is routed, funds-checked and charged like any other."""
    from .main import api, client, console

    with client() as c:
        s = api(lambda: c.start_session(app, cores=cores, hours=hours, account=account, cluster=cluster))
    if as_json:
        sys.stdout.write(json.dumps(s, indent=1) + "\n")
        return
    console.print(_said(s), highlight=False, markup=False)
    console.print(f"open it once it runs: cnet session open {s['id']}", highlight=False, markup=False)


@session_app.command("list")
def listing(all: bool = typer.Option(False, "--all", "-a", help="include sessions that have ended"),
            noheader: bool = typer.Option(False, "--noheader", "-h", help="no header line"),
            as_json: bool = typer.Option(False, "--json", help="the sessions as JSON")) -> None:
    """Your sessions (live ones unless --all), newest first."""
    from .main import api, client

    with client() as c:
        rows = api(lambda: c.sessions(include_ended=all))
        _print(rows, _base(c), as_json, header=not noheader)


@session_app.command("show")
def show(session_id: int, as_json: bool = typer.Option(False, "--json", help="the session as JSON")) -> None:
    """One session: state, where, time left, cost so far, why it ended."""
    from .main import api, client, console

    with client() as c:
        s = api(lambda: c.session(session_id))
        base = _base(c)
    if as_json:
        sys.stdout.write(json.dumps(s, indent=1) + "\n")
        return
    fields = [("session", s["id"]), ("app", f"{s['app']} {s['version']} ({s['kind']})"),
              ("state", s["state"] + (f" ({s['ended_reason']})" if s.get("ended_reason") else "")),
              ("job", s.get("job_id")), ("cluster", s.get("cluster")), ("cores", s.get("cores")),
              ("gpus", s.get("gpus")), ("time limit", f"{s['time_limit_minutes']} min" if s.get("time_limit_minutes")
                                         else None),
              ("time left", _left(s) if s.get("time_left_s") is not None else None),
              ("predicted start", s.get("predicted_start")), ("cost so far", s.get("cost_so_far")),
              ("held at most", s.get("max_cost")), ("url", _address(s, base) if s.get("url") else None),
              ("created", s.get("created_at")), ("ready", s.get("ready_at")), ("ended", s.get("ended_at")),
              ("detail", s.get("detail") or None)]
    for name, value in fields:
        if value is not None:
            console.print(f"{name + ':':<16} {value}", highlight=False, markup=False)


@session_app.command("open")
def open_(session_id: int, browser: bool = typer.Option(False, "--browser", help="open it in the web browser too")
          ) -> None:
    """The session's address (opened in a browser signed in to the portal, it asks for a ticket itself);
    --browser opens it with a one-time ticket."""
    from .main import api, client, fail

    with client() as c:
        s = api(lambda: c.session(session_id))
        if not s.get("url"):
            fail(f"session {session_id} is {s['state']}" + (f" ({s['ended_reason']})" if s.get("ended_reason") else "")
                 + (": it opens once its server answers" if s["state"] in ("queued", "starting") else ""))
        # with --browser, a one-time address (used once, seconds of life) that gives it the session's cookie
        url = api(lambda: c.session_connect_url(session_id)) if browser else _address(s, _base(c))
    sys.stdout.write(url + "\n")
    if browser:
        import webbrowser

        if not webbrowser.open(url):
            fail("no web browser could be started here: open the address above yourself")


@session_app.command("extend")
def extend(session_id: int, minutes: int = typer.Argument(..., min=1, help="more minutes"),
           as_json: bool = typer.Option(False, "--json", help="the session as JSON")) -> None:
    """A longer time limit (within the partition's; the extra time is held like the rest)."""
    from .main import api, client, console

    with client() as c:
        s = api(lambda: c.extend_session(session_id, minutes))
    if as_json:
        sys.stdout.write(json.dumps(s, indent=1) + "\n")
        return
    console.print(_said(s) + f", may cost up to {s['max_cost']}", highlight=False, markup=False)


@session_app.command("stop")
def stop(session_ids: list[int] = typer.Argument(..., help="session ids")) -> None:
    """Stop sessions (their jobs are cancelled and charged for the time they ran)."""
    from ..client import ApiError
    from .main import client, console, err

    failed = False
    with client() as c:
        for session_id in session_ids:
            try:
                s = c.stop_session(session_id)
            except ApiError as exc:
                err.print(f"session {session_id}: {exc.detail}", highlight=False, markup=False)
                failed = True
                continue
            console.print(f"session {s['id']}: stopped ({s['state']})", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)

"""`cnet`: submit and watch jobs with sbatch habits, run the server, try the demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import render

if TYPE_CHECKING:
    from ..client import ComputeNetClient
    from ..schemas import RoutingIn

# Start-up time matters (`cnet version` must feel like a Slurm command): modules that pull in httpx,
# pydantic, SQLAlchemy, DuckDB, numpy or matplotlib are imported inside the commands that use them.
# tests/test_cli_fast.py checks the heavy ones stay out.

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="ComputeNet: one front door over many Slurm clusters.")
# emoji off: user data and times ("H:M:S") must print as typed, not as emoji codes
console = Console(emoji=False)
err = Console(stderr=True, emoji=False)


def login_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "computenet" / "login.json"


def save_login(url: str, token: str, **more: str) -> Path:
    """``more``: what `cnet login` adds (refresh_token, expires_at, user)."""
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..fsutil import atomic_write_json

    atomic_write_json(path, {"url": url, "token": token, **more}, 0o600)  # secrets; never half-written
    return path


def client() -> "ComputeNetClient":
    from ..client import ComputeNetClient

    url = os.environ.get("COMPUTENET_URL")
    token = os.environ.get("COMPUTENET_TOKEN")
    path = login_file()
    if (not url or not token) and path.exists():
        from ..fsutil import read_json_or

        saved = read_json_or(path, {})
        if not isinstance(saved, dict):
            saved = {}
        if not token and saved.get("refresh_token"):
            from .login import refreshed

            saved = refreshed(saved)  # a `cnet login` token about to expire is renewed first
        url, token = url or saved.get("url"), token or saved.get("token")
    if not url or not token:
        fail("not signed in: run `cnet login URL` (or set COMPUTENET_URL and COMPUTENET_TOKEN)")
    return ComputeNetClient(url, token)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/] {escape(str(message))}", highlight=False)  # messages quote user data
    raise typer.Exit(code)


def utc_option(text: Optional[str], option: str) -> Optional[str]:
    """A day or a time; a bare date means midnight UTC."""
    if not text:
        return None
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date (YYYY-MM-DD) or time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat()


def api(call):
    from ..client import ApiError

    try:
        return call()
    except ApiError as exc:
        fail(exc.detail)


_ROUTING_OPTIONS = {"--region": "region", "--max-price": "max_price", "--max-wait": "max_wait_minutes",
                    "--policy": "policy", "--data-at": "data_at"}


def _routing_options(tokens: list[str]) -> tuple[list[str], "RoutingIn"]:
    """Take ComputeNet's own options (not sbatch's) out of the command line, up to a '--'."""
    from ..schemas import RoutingIn

    kept, values, i = [], {}, 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            kept += tokens[i:]
            break
        name, eq, value = token.partition("=")
        if name in _ROUTING_OPTIONS:
            if not eq:
                if i + 1 >= len(tokens):
                    fail(f"{name} needs a value")
                value, i = tokens[i + 1], i + 1
            key = _ROUTING_OPTIONS[name]
            if key == "data_at":
                values.setdefault(key, []).extend(v for v in value.split(",") if v)
            else:
                values[key] = value
        else:
            kept.append(token)
        i += 1
    try:
        return kept, RoutingIn(**values)
    except ValueError as exc:
        fail(f"routing options: {exc}")


def _read_submission(ctx: typer.Context) -> tuple[str, list[str], str, "RoutingIn"]:
    """Script text, sbatch flags (+ '--' script args), the script's name, routing options."""
    from ..domain.sbatch import ParsedOptions, ScriptError, parse_tokens

    tokens, wanted = _routing_options(list(ctx.args))
    try:
        rest = parse_tokens(tokens, 0, ParsedOptions())
    except ScriptError as exc:
        fail(str(exc))
    flags = tokens[: len(tokens) - len(rest)]
    if flags and flags[-1] == "--":
        flags = flags[:-1]
    if rest:
        path = Path(rest[0])
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}")
        name = path.name
    elif not sys.stdin.isatty():
        data, name = sys.stdin.buffer.read(), "stdin"
    else:
        fail("no script given (cnet submit [options] script.sh)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{name} is not UTF-8 text (invalid byte at offset {exc.start})")
    script_args = rest[1:]
    return text, flags + (["--", *script_args] if script_args else []), name, wanted


_SUBMIT_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}


@app.command(context_settings=_SUBMIT_CONTEXT)
def submit(ctx: typer.Context) -> None:
    """Submit a batch script: [b]cnet submit \\[sbatch options] script.sh \\[args][/b].

    The script runs unchanged; its #SBATCH lines are read as sbatch reads
    them, and options given here override them. Without a script, it is
    read from standard input. The network picks the cluster and partition
    unless -M / -p pin them; --region R, --max-price X, --max-wait MINUTES,
    --policy P and --data-at CLUSTER bound or steer that choice.
    --stage FILE (repeatable) copies FILE into the job's directory first;
    arguments after the script are the script's, as with sbatch.
    --parsable, --wait and --test-only behave as sbatch's.
    [b]--many[/b] FILE...: many jobs in one request: a JSON/YAML list of jobs, or several scripts
    (options before --many apply to each); each job is accepted or refused on its own.
    """
    from . import many, submit as extra

    if many.wants_many(list(ctx.args)):
        jobs = many.jobs_from(list(ctx.args), fail)
        parsable = "--parsable" in ctx.args[: ctx.args.index(many.MANY)]
        with client() as c:
            result = api(lambda: c.submit_many(jobs))
        raise typer.Exit(many.report(result, [j.get("script_name") or "job" for j in jobs], parsable, console, err))

    ctx.args[:], staged = extra.take_staged(list(ctx.args), fail)
    text, args, name, wanted = _read_submission(ctx)
    opts = extra.options_of(text, args)
    with client() as c:
        if opts is not None and opts.test_only:
            raise typer.Exit(extra.test_only(api(lambda: c.estimate(text, args, wanted)), console, err))
        inputs, scratch = api(lambda: extra.upload_staged(c, staged))
        try:
            job = api(lambda: c.submit(text, args, name, wanted, inputs=inputs))
        finally:
            extra.remove_scratch(c, scratch)
        extra.print_submitted(job, bool(opts and opts.parsable), bool(opts and opts.cluster), console)
        if opts is not None and opts.wait:
            raise typer.Exit(extra.exit_code_of(api(lambda: extra.wait_for(c, job.id))))


@app.command(context_settings=_SUBMIT_CONTEXT)
def estimate(ctx: typer.Context) -> None:
    """Where a script would run and when it would start, per cluster and partition (nothing is submitted).

    Takes the same options as submit.
    """
    text, args, _, wanted = _read_submission(ctx)
    with client() as c:
        decision = api(lambda: c.estimate(text, args, wanted))
    console.print(render.decision_table(decision))
    if not decision.get("chosen"):  # scripts test the exit code, as with sbatch --test-only
        err.print("nothing fits: no cluster would take this job", highlight=False, markup=False)
        raise typer.Exit(1)


@app.command()
def job(job_id: int, why: bool = typer.Option(False, "--why", help="why it went where it went"),
        stats: bool = typer.Option(False, "--stats", help="CPU, memory, GPU over time; efficiency; waste"),
        png: Optional[Path] = typer.Option(None, "--png", help="with --stats: also save the chart here")) -> None:
    """One job: resources, placement, times, cost and its history."""
    with client() as c:
        if stats:
            from .stats import show_stats

            show_stats(api(lambda: c.stats(job_id)))
            if png:
                png.write_bytes(api(lambda: c.stats_png(job_id)))
                console.print(f"chart saved to {png}", markup=False)
            return
        j = api(lambda: c.job(job_id))
    if why:
        if not j.routing:
            fail(f"job {job_id} has no routing decision (it came from outside ComputeNet)")
        console.print(render.decision_table(j.routing, title=f"job {j.id}: routed to {j.cluster}/{j.partition}"))
        if j.predicted_start:
            console.print(f"predicted start {j.predicted_start:%Y-%m-%d %H:%M:%S} UTC"
                          + (f", started {j.start_time:%Y-%m-%d %H:%M:%S}" if j.start_time else ""), highlight=False)
        for note in j.routing.get("notes", []):
            console.print(f"  {note}", highlight=False, markup=False)
        return
    console.print(render.jobs_table([j]))
    for line in render.job_facts(j):
        console.print(line, highlight=False, markup=False)
    console.print(f"workdir {j.workdir}\nstdout  {j.stdout_path}\nstderr  {j.stderr_path}\n"
                  f"account {j.account}   may cost up to {render.money(j.max_cost)}   "
                  f"charged {render.money(j.cost)}{'' if j.settled else ' (not settled yet)'}", highlight=False,
                  markup=False)
    for e in j.events:
        console.print(f"  {e.at:%Y-%m-%d %H:%M:%S}  {e.from_state or '':>10} -> {e.to_state:<10} {e.detail}",
                      highlight=False, markup=False)


@app.command()
def output(job_id: int,
           follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until the job ends"),
           stderr: bool = typer.Option(False, "--stderr", help="the error stream instead of stdout")) -> None:
    """Print a job's output (stdout, or --stderr)."""
    stream = "stderr" if stderr else "stdout"
    with client() as c:
        if follow:
            _follow(c, job_id, stream)
            return
        offset = 0
        while True:
            chunk = api(lambda: c.output(job_id, stream, offset))
            if not chunk.exists:
                fail(f"job {job_id} has no {stream} yet")
            sys.stdout.write(chunk.data)
            if not chunk.data:
                break
            offset = chunk.next_offset


# a server that restarts (or a proxy in between that answers 502/503/504 meanwhile) is waited for
_RETRY_STATUS = (0, 502, 503, 504)


def _follow(c, job_id: int, stream: str, interval: float = 1.0, longest_wait: float = 30.0) -> None:
    """Print output as it grows until the job has ended and all is read; when the server cannot be
    reached, try again with a growing pause (up to ``longest_wait`` s) from the offset already printed."""
    import time

    from ..client import ApiError, RetryPolicy

    c.retry = RetryPolicy(retries=0)  # this loop waits for the server itself, and says so
    offset, backoff, told = 0, interval, False
    while True:
        try:
            chunk = c.output(job_id, stream, offset)
        except ApiError as exc:
            if exc.status not in _RETRY_STATUS:
                fail(exc.detail)
            if not told:
                err.print(f"(server unreachable, retrying: {exc.detail})", highlight=False, markup=False)
                told = True
            time.sleep(backoff)
            backoff = min(backoff * 2, longest_wait)
            continue
        if told:
            err.print("(reconnected)", highlight=False, markup=False)
            told, backoff = False, interval
        if chunk.data:
            sys.stdout.write(chunk.data)
            sys.stdout.flush()
        offset = chunk.next_offset
        if chunk.finished and not chunk.data:
            return
        if not chunk.data:
            time.sleep(interval)


@app.command()
def clusters() -> None:
    """Clusters, partitions, health and list prices."""
    with client() as c:
        rows = api(c.clusters)
    console.print(render.clusters_table(rows))


@app.command()
def notifications(all: bool = typer.Option(False, "--all", help="also those already read"),
                  job_ended: Optional[str] = typer.Option(None, "--job-ended",
                                                          help="how to hear that a job ended: off, app or email")) -> None:
    """What the platform has told you (low balance, blocked accounts, jobs that ended); shown ones are marked read."""
    if job_ended is not None:
        if job_ended not in ("off", "app", "email"):
            fail(f"--job-ended {job_ended!r}: use off, app or email")
        with client() as c:
            prefs = api(lambda: c.set_notification_preferences(job_ended=job_ended))
        where = f" ({prefs.email})" if job_ended == "email" and prefs.email else ""
        console.print(f"job-ended notices: {job_ended}{where}", markup=False, highlight=False)
        if job_ended == "email" and not prefs.email:
            console.print("you have no e-mail address on file: ask your administrator to set one", markup=False)
        return
    with client() as c:
        rows = api(lambda: c.notifications(unread=not all))
        for n in reversed(rows):
            console.print(f"{n.created_at:%Y-%m-%d %H:%M}  [bold]{escape(n.kind)}[/]  {escape(n.message)}",
                          highlight=False)
            if not n.read:
                api(lambda: c.mark_read(n.id))
    if not rows:
        console.print("nothing new")


def _check_sign_in_config(platform) -> None:
    """Group mappings naming tenants that do not exist stop the server here, naming the line."""
    from ..config import config_path
    from ..services.signin.identity import check_mappings, configured_mappings

    sections = configured_mappings(platform.settings.auth)
    if not sections:
        return
    path = config_path()
    text = path.read_text() if path is not None and path.exists() else None
    try:
        with platform.db.session() as session:
            check_mappings(session, text, sections)
    except ValueError as exc:
        fail(f"{path or 'configuration'}: {exc}")


@app.command()
def server(host: Optional[str] = typer.Option(None, help="address to listen on"),
           port: Optional[int] = typer.Option(None, help="port to listen on", min=1, max=65535),
           role: str = typer.Option("all", help="all: API and background tasks; api: the API only; worker: the "
                                                "background tasks only (health on --port when given)")) -> None:
    """Run the API server with the cluster pollers (or, with --role, one side of them)."""
    from ..api.app import create_app
    from ..api.serve import serve
    from ..config import load_settings
    from ..services.platform import Platform

    if role not in ("all", "api", "worker"):
        fail(f"--role {role!r}: choose all, api or worker")
    settings = load_settings()
    if role != "all" and settings.db_url.startswith("sqlite"):
        from ..workers.serve import SPLIT_NEEDS_POSTGRESQL

        fail(SPLIT_NEEDS_POSTGRESQL)
    platform = Platform(settings)
    platform.start()
    _check_sign_in_config(platform)
    if role != "all":
        from ..workers.serve import run_worker

        if role == "worker":
            console.print(f"ComputeNet worker (database {platform.db.engine.url.render_as_string(hide_password=True)}, "
                          f"clusters {', '.join(platform.adapters)})"
                          + (f", health on http://{host or settings.server.host}:{port}/health" if port else ""),
                          highlight=False)
            return run_worker(platform, host or settings.server.host, port)
    console.print(f"ComputeNet {'API ' if role == 'api' else ''}on http://{host or settings.server.host}:{port or settings.server.port} "
                  f"(database {platform.db.engine.url.render_as_string(hide_password=True)}, "
                  f"clusters {', '.join(platform.adapters)})", highlight=False)
    serve(create_app(platform, run_services=role == "all"), host=host or settings.server.host,
          port=port or settings.server.port)  # stops promptly on SIGTERM, requests in flight or not


@app.command()
def demo(keep: bool = typer.Option(False, help="keep the demo's data directory"),
         serve: bool = typer.Option(False, "--serve", help="afterwards keep the portal and API up (Ctrl-C stops)"),
         port: int = typer.Option(8750, help="the port --serve listens on", min=1, max=65535)) -> None:
    """Start everything in-process on SQLite and run a handful of real jobs."""
    from .demo import run_demo

    raise typer.Exit(run_demo(console, keep=keep, serve_port=port if serve else None))


@app.command()
def version() -> None:
    """Print the version."""
    from .. import __version__

    console.print(f"computenet {__version__}")


from . import jobs_cmds  # noqa: E402,F401  (cnet jobs, cancel, hold, release, requeue, update)
from .admin import admin_app  # noqa: E402  (registers the admin sub-commands)
from . import admin_files  # noqa: E402,F401  (cnet admin storage-quota)
from .sim import sim as _sim  # noqa: E402

from .apps import app_app, apps as _apps, run as _run  # noqa: E402
from .files import files_app, quota as _quota  # noqa: E402
from .stats import efficiency as _efficiency  # noqa: E402
from .finance import finance_app  # noqa: E402
from .money import balance as _balance, bill as _bill, usage as _usage  # noqa: E402

app.command("balance")(_balance)
app.command("usage")(_usage)
app.command("bill")(_bill)
from .invoice import invoice as _invoice  # noqa: E402
app.command("invoice")(_invoice)
app.command("sim")(_sim)
app.command("apps")(_apps)
app.command("run")(_run)
app.command("quota")(_quota)
app.command("efficiency")(_efficiency)
app.add_typer(app_app, name="app")
app.add_typer(files_app, name="files")
app.add_typer(finance_app, name="finance")
from .report import report_app  # noqa: E402
app.add_typer(report_app, name="report")
from .seed_data import seed_data as _seed_data  # noqa: E402
app.command("seed-data")(_seed_data)

app.add_typer(admin_app, name="admin")
from .tokens import tokens_app  # noqa: E402  (also adds `cnet admin tokens`)
app.add_typer(tokens_app, name="tokens")
from .webhooks import webhooks_app  # noqa: E402  (cnet webhooks)
app.add_typer(webhooks_app, name="webhooks")
from . import login as _login  # noqa: E402,F401  (cnet login, logout, passwd)
from . import workers as _workers  # noqa: E402,F401  (cnet admin workers)
from .sessions import session_app  # noqa: E402  (cnet session start|list|show|open|extend|stop)
app.add_typer(session_app, name="session")

"""`cnet demo`: the whole path on a fresh machine with nothing but Python.

In-process server on SQLite, a local cluster, a demo user with a prepaid
account, real jobs (one fails on purpose, one is cancelled), live progress,
then the job table, an output and the charges against the balance.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from decimal import Decimal
from importlib import resources
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel

from ..client import ComputeNetClient
from ..config import ClusterConfig, MonitoringConfig, Price, Settings
from ..domain.states import JobState
from ..services.tenancy import accounts
from ..services.platform import Platform
from . import render
from .embedded import EmbeddedServer

SAMPLES = ["hello.sh", "pi.sh", "wordcount.sh", "fail.sh", "long.sh", "pi.sh"]
EXPECTED = {"fail.sh": JobState.FAILED, "long.sh": JobState.CANCELLED}
DEADLINE_S = 50.0
# seconds-long jobs at a real price (~0.05/core-hour) cost nothing; the demo
# charges one fen per core-second so its charges are visible
DEMO_CORE_HOUR = Decimal("36.00")


def demo_settings(data_dir: Path) -> Settings:
    # read no COMPUTENET_* variables: the demo is always SQLite + local
    return Settings(
        _env_prefix="COMPUTENET_DEMO_UNUSED_",
        data_dir=data_dir,
        # seconds-long jobs: sample every half second so the efficiency table has something to show
        monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=1.0),
        # tagged stand-in: the application centre's apps run through their stand-ins here
        clusters=[ClusterConfig(name="local", kind="local", slots=4, mem_mb=8000, poll_interval_s=0.5,
                                tags=["stand-in"],
                                prices={"*": Price(core_hour=DEMO_CORE_HOUR, gpu_hour=Decimal("90.00"))})],
    )


def run_demo(console: Console, keep: bool = False, serve_port: int | None = None) -> int:
    """``serve_port``: afterwards keep the server (portal and API) up on that port until Ctrl-C."""
    started = time.monotonic()
    data_dir = Path(tempfile.mkdtemp(prefix="cnet-demo-"))
    console.rule("[bold]ComputeNet demo")
    console.print(f"data directory {data_dir} (SQLite database, local cluster with 4 CPU slots)")
    platform = Platform(demo_settings(data_dir))
    try:
        platform.start()
        with platform.db.session() as session:
            user = accounts.create_user(session, "demo")
            account = accounts.create_account(session, "demo-lab", owner=user)
            accounts.top_up(session, account, "100.00", key="demo:initial")
            token = accounts.issue_token(session, user, "demo")
            password = _demo_password(session, platform, user) if serve_port else None
        with EmbeddedServer(platform, port=serve_port) as server, ComputeNetClient(server.url, token) as client:
            console.print(f"API server on {server.url} (OpenAPI at {server.url}/docs); "
                          f"user demo, account demo-lab with 100.00 CNY prepaid; "
                          f"demo price {DEMO_CORE_HOUR} CNY per core-hour\n")
            submitted: dict[int, str] = {}
            for name in SAMPLES:
                text = resources.files("computenet.samples").joinpath(name).read_text()
                job = client.submit(text, [], name)
                submitted[job.id] = name
                console.print(f"  submitted {name:<13} as job {job.id} (may cost up to {render.money(job.max_cost)})")
            long_id = next(i for i, n in submitted.items() if n == "long.sh")
            ok = _watch(console, client, submitted, long_id)
            console.print()
            jobs = [client.job(i) for i in submitted]
            console.print(render.jobs_table(jobs, title="Jobs"))
            pi = next(j for j in jobs if submitted[j.id] == "pi.sh")
            console.print(Panel(client.output(pi.id).data.rstrip() or "(empty)", title=f"output of job {pi.id} (pi.sh)"))
            failed = next(j for j in jobs if submitted[j.id] == "fail.sh")
            console.print(Panel(client.output(failed.id, "stderr").data.rstrip() or "(empty)",
                                title=f"stderr of job {failed.id} (fails on purpose, exit {failed.exit_code})"))
            ok = _app_run(console, client, data_dir) and ok
            _efficiency(console, client, len(submitted) + 1)
            me = client.me(entries=20)
            for acc in me.accounts:
                console.print(f"[bold]Account {acc.name}[/]")
                for entry in reversed(acc.entries):
                    if entry.kind in ("topup", "post", "charge"):  # holds and their release: see `cnet balance`
                        word = render.ENTRY_WORDS[entry.kind]
                        console.print(f"  {word:<7} {render.money(entry.amount):>9}  {entry.memo}", highlight=False)
                spent = sum((j.cost or Decimal(0)) for j in jobs)
                console.print(f"  charged {render.money(spent)} for {len(jobs)} jobs; balance "
                              f"{render.money(acc.balance)} {acc.currency}")
            for job in jobs:
                expected = EXPECTED.get(submitted[job.id], JobState.COMPLETED)
                if job.state != expected.value or not job.settled:
                    console.print(f"[red]job {job.id} ({submitted[job.id]}) ended {job.state}, "
                                  f"settled={job.settled}; expected {expected.value}, settled[/]")
                    ok = False
            if serve_port:
                _serve(console, server.url, password)
        with platform.db.session() as session:
            mismatches = accounts.ledger_problems(session)
        if mismatches:
            console.print(f"[red]ledger mismatch: {mismatches}[/]")
            ok = False
        console.print(f"\n{'[green]demo finished' if ok else '[red]demo finished with problems'}[/] "
                      f"in {time.monotonic() - started:.1f} s")
        return 0 if ok else 1
    finally:
        platform.db.dispose()
        if keep:
            console.print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _demo_password(session, platform: Platform, user) -> str:
    """A password for the demo user, to sign in to the portal (shown once, like any first password)."""
    import secrets

    from ..services import audit
    from ..services.signin import passwords

    password = f"Try-{secrets.token_urlsafe(9)}-7"  # never containing the login name (the policy)
    passwords.set_password(session, audit.SYSTEM, user, password, platform.settings.auth)
    return password


def _serve(console: Console, url: str, password: str) -> None:
    """Keep the portal and the API up until Ctrl-C (or SIGTERM)."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console.print(Panel(f"Portal: [bold]{url}/[/]   API: {url}/docs\nSign in as [bold]demo[/], password "
                        f"[bold]{password}[/]\nCtrl-C stops the server.", title="Open the portal"))
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    console.print("server stopped")


def _app_run(console: Console, client: ComputeNetClient, data_dir: Path) -> bool:
    """The application centre: upload an input, run LAMMPS from a form, get the results back."""
    console.rule("[bold]Application centre")
    names = [a["name"] for a in client.apps()]
    console.print(f"{len(names)} apps: {', '.join(names)}")
    local_input = data_dir / "in.lj"
    local_input.write_text(resources.files("computenet.samples").joinpath("in.lj").read_text())
    up = client.upload(local_input, "md/in.lj", overwrite=True)
    console.print(f"uploaded {up['path']} ({up['size']} B, sha256 {up['sha256'][:12]}) in checksummed chunks")
    params = {"input": "md/in.lj", "steps": "300", "size": "small"}
    dry = client.run_app("lammps", params, dry_run=True)
    console.print(f"lammps, steps=300, input md/in.lj: {dry['resources']['cores']} cores, "
                  f"{dry['resources']['time_minutes']} min, on {dry['cluster']} ({dry['available_on'][dry['cluster']]})")
    job = client.run_app("lammps", params)
    console.print(f"  submitted lammps as job {job.id}; waiting for it and its outputs")
    deadline = time.monotonic() + DEADLINE_S
    detail = client.job(job.id)
    while detail.outputs == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
        detail = client.job(job.id)
    if detail.state != "COMPLETED" or detail.outputs != "done":
        console.print(f"[red]the app run ended {detail.state}, outputs {detail.outputs}[/]")
        return False
    for f in detail.output_files:
        console.print(f"  fetched {f['path']:<20} {f['size']:>6} B  sha256 {f['sha256'][:12]}  from {f['cluster']}",
                      highlight=False)
    log = client.download(f"jobs/{job.id}/log.lammps", data_dir / "log.lammps")
    tail = Path(log["local"]).read_text().strip().splitlines()[-6:]
    console.print(Panel("\n".join(tail), title=f"log.lammps of job {job.id} (checksum verified: {log['verified']})"))
    return log["verified"]


def _efficiency(console: Console, client: ComputeNetClient, jobs: int) -> None:
    """What each job did with what it was given (the samples of the last ones may still be on their way)."""
    from .stats import efficiency_table

    deadline = time.monotonic() + 10
    rows = client.efficiency(jobs)
    while time.monotonic() < deadline and sum(1 for r in rows if r["samples"]) < len(rows):
        time.sleep(0.5)
        rows = client.efficiency(jobs)
    console.print(efficiency_table(rows))


def _watch(console: Console, client: ComputeNetClient, submitted: dict[int, str], long_id: int) -> bool:
    """Live table until every job has ended and been charged; cancels long.sh once it runs."""
    deadline = time.monotonic() + DEADLINE_S
    cancel_sent = False
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        while True:
            jobs = [client.job(i) for i in submitted]
            states = {j.id: j.state for j in jobs}
            if not cancel_sent and states[long_id] == "RUNNING":
                client.cancel(long_id)
                cancel_sent = True
            done = sum(1 for j in jobs if JobState(j.state).is_terminal and j.settled)
            live.update(Group(render.jobs_table(jobs, title=f"Live: {done}/{len(jobs)} jobs ended and charged"),
                              "[dim]long-running is cancelled as soon as it starts[/]"))
            if done == len(jobs):
                return True
            if time.monotonic() > deadline:
                console.print("[red]the demo's jobs did not all finish in time[/]")
                return False
            time.sleep(0.5)

"""squeue, scancel and scontrol habits: `cnet jobs`, `cancel`, `hold`, `release`, `requeue`, `update`
(each run of a requeued job is charged: the poller reads sacct --duplicates).

Registered on the main app by main.py. Nothing here imports httpx or pydantic at module level
(`cnet version` pays for every command module's imports).
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Optional

import typer

from .main import api, app, client, console, err, fail, utc_option

PAGE = 500
_RELATIVE = re.compile(r"^now(?:-(\d+)(days?|hours?|minutes?|seconds?)?)?$", re.IGNORECASE)


def when(text: Optional[str], option: str) -> Optional[str]:
    """sacct's -S/-E: YYYY-MM-DD[THH:MM[:SS]] (UTC), or now, now-3days, now-2hours, now-30minutes."""
    if not text:
        return None
    m = _RELATIVE.match(text.strip())
    if m:
        count, unit = int(m.group(1) or 0), (m.group(2) or "seconds").lower().rstrip("s") + "s"
        return (datetime.now(timezone.utc) - timedelta(**{unit: count})).isoformat()
    return utc_option(text, option)


def fetch(c, *, active: bool, limit: Optional[int], **filters) -> tuple[list, bool]:
    """Every matching job, newest first, page by page; (jobs, stopped at --limit with more left)."""
    rows: list = []
    before = None
    while True:
        want = PAGE if limit is None else min(PAGE, limit - len(rows) + 1)
        page = api(lambda: c.jobs(active=active, limit=want, before=before, **filters))
        rows += page
        if limit is not None and len(rows) > limit:
            return rows[:limit], True
        if len(page) < want:
            return rows, False
        before = page[-1].id


@app.command()
def jobs(all: bool = typer.Option(False, "--all", "-a", help="include jobs that have ended"),
         state: Optional[str] = typer.Option(None, "--state", "-t",
                                             help="states: PD,R or PENDING,RUNNING (or all)"),
         user: Optional[str] = typer.Option(None, "--user", "-u", help="these users' jobs (comma list)"),
         partition: Optional[str] = typer.Option(None, "--partition", "-p", help="partitions (comma list)"),
         cluster: Optional[str] = typer.Option(None, "--clusters", "-M", help="clusters (comma list)"),
         name: Optional[str] = typer.Option(None, "--name", "-n", help="job names (comma list)"),
         start: Optional[str] = typer.Option(None, "--starttime", "-S",
                                             help="jobs not ended before this (sacct -S: 2026-01-31, now-2days)"),
         end: Optional[str] = typer.Option(None, "--endtime", "-E", help="jobs submitted before this (sacct -E)"),
         fmt: Optional[str] = typer.Option(None, "--format", "-o",
                                           help='squeue fields, e.g. "%.10i %.9P %.20j %.2t %.10M %R"'),
         noheader: bool = typer.Option(False, "--noheader", "-h", help="no header line"),
         as_json: bool = typer.Option(False, "--json", help="the jobs as JSON"),
         limit: Optional[int] = typer.Option(None, "--limit", min=1, help="at most this many jobs (default: all)"),
         ) -> None:
    """Your jobs, like squeue (active only unless --all, -t or a time window); sacct's -S/-E."""
    from . import squeue_format

    if fmt is not None:
        try:
            squeue_format.parse(fmt)
        except ValueError as exc:
            fail(str(exc))
    since, until = when(start, "--starttime"), when(end, "--endtime")
    active = not all and not state and not since and not until
    with client() as c:
        rows, cut = fetch(c, active=active, limit=limit, state=state, user=user, partition=partition,
                          cluster=cluster, name=name, start=since, end=until)
    if as_json:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in rows], indent=1) + "\n")
    elif fmt is not None:
        for line in squeue_format.lines(rows, fmt, header=not noheader):
            sys.stdout.write(line + "\n")
    elif console.is_terminal and not noheader:
        from . import render

        console.print(render.jobs_table(rows))
    else:  # a pipe or a file: every column whole, one job a line
        for line in squeue_format.columns(rows, header=not noheader):
            sys.stdout.write(line + "\n")
    if cut:
        err.print(f"stopped at --limit {limit}: there are more jobs", highlight=False, markup=False)


@app.command()
def cancel(job_ids: Optional[list[int]] = typer.Argument(None, help="job ids (or use the filters)"),
           user: Optional[str] = typer.Option(None, "--user", "-u", help="jobs of these users"),
           name: Optional[str] = typer.Option(None, "--name", "-n", help="jobs with these names"),
           state: Optional[str] = typer.Option(None, "--state", "-t", help="jobs in these states (PD, R...)"),
           partition: Optional[str] = typer.Option(None, "--partition", "-p", help="jobs in these partitions"),
           cluster: Optional[str] = typer.Option(None, "--clusters", "-M", help="jobs on these clusters"),
           ) -> None:
    """Cancel jobs, like scancel: by id, or every live job matching the filters.

    A job that has already ended is not cancelled; it is named on stderr and the exit code is 1.
    """
    filters = {"user": user, "name": name, "state": state, "partition": partition, "cluster": cluster}
    if not job_ids and not any(filters.values()):
        fail("give job ids or a filter (-u, -n, -t, -p, -M)")
    failed = False
    with client() as c:
        if any(filters.values()):
            # like scancel: the ids given (if any) narrowed by the filters; only jobs still live
            matching = fetch(c, active=not state, limit=None, **filters)[0]
            wanted = set(job_ids or [])
            targets = [j.id for j in matching if not wanted or j.id in wanted]
            if not targets:
                err.print("no job matches", highlight=False, markup=False)
        else:
            targets = list(job_ids)
        from ..client import ApiError

        for job_id in targets:
            try:
                j = c.cancel(job_id)
            except ApiError as exc:
                err.print(f"job {job_id}: {exc.detail}", highlight=False, markup=False)
                failed = True
                continue
            from ..domain.states import JobState

            if JobState(j.state).is_terminal:
                err.print(f"job {j.id}: not cancelled: it has already ended ({j.state})", highlight=False,
                          markup=False)
                failed = True
            else:
                console.print(f"job {j.id}: cancel requested ({j.state})", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)


def _each(job_ids: list[int], action: str, done: str) -> None:
    """scontrol's way: every job tried, a failure named and the exit code 1 at the end."""
    from ..client import ApiError

    failed = False
    with client() as c:
        for job_id in job_ids:
            try:
                j = getattr(c, action)(job_id)
            except ApiError as exc:
                err.print(f"job {job_id}: {exc.detail}", highlight=False, markup=False)
                failed = True
                continue
            console.print(f"job {j.id}: {done} ({j.state})", highlight=False, markup=False)
    if failed:
        raise typer.Exit(1)


@app.command()
def hold(job_ids: list[int]) -> None:
    """Keep waiting jobs from starting (scontrol hold)."""
    _each(job_ids, "hold", "held")


@app.command()
def release(job_ids: list[int]) -> None:
    """Let held jobs start (scontrol release)."""
    _each(job_ids, "release", "released")


@app.command()
def requeue(job_ids: list[int]) -> None:
    """Put running jobs back in the queue to run again from the start (scontrol requeue).

    Each run is charged for what it used; a waiting or ended job cannot be requeued.
    """
    _each(job_ids, "requeue", "requeued")


_UPDATE_KEYS = {"timelimit": "time_limit", "partition": "partition", "jobname": "name", "name": "name"}


@app.command(context_settings={"ignore_unknown_options": True})
def update(words: list[str] = typer.Argument(..., metavar="JOB Key=Value...",
                                             help="JOB (or JobId=JOB), then TimeLimit=, Partition=, JobName=")) -> None:
    """Change a job, like scontrol update: a lower TimeLimit, another Partition while it waits, a JobName.

    cnet update 42 TimeLimit=30:00 JobName=short
    """
    job_id, changes = None, {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq and job_id is None and word.isdigit():
            job_id = int(word)
        elif eq and key.lower() in ("jobid", "job") and value.isdigit() and job_id is None:
            job_id = int(value)
        elif eq and key.lower() in _UPDATE_KEYS:
            if not value:
                fail(f"{key} needs a value")
            changes[_UPDATE_KEYS[key.lower()]] = value
        else:
            fail(f"cannot update {word!r}: give JOB then TimeLimit=, Partition= or JobName=")
    if job_id is None:
        fail("which job? cnet update JOB TimeLimit=...")
    if not changes:
        fail("nothing to update: give TimeLimit=, Partition= or JobName=")
    with client() as c:
        j = api(lambda: c.update(job_id, **changes))
    limit = "UNLIMITED" if j.time_limit_minutes is None else f"{j.time_limit_minutes} min"
    console.print(f"job {j.id}: {j.name} on {j.cluster}/{j.partition}, time limit {limit} ({j.state})",
                  highlight=False, markup=False)

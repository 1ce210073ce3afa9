"""Tables and small formatting helpers for the terminal."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from ..billing.words import KIND_WORDS

if TYPE_CHECKING:  # pydantic is imported by the commands that fetch these, not to draw a table
    from ..schemas import ClusterOut, JobOut

STATE_STYLE = {
    "PENDING": "yellow", "RUNNING": "cyan", "COMPLETING": "cyan", "SUSPENDED": "magenta",
    "COMPLETED": "green", "FAILED": "red", "TIMEOUT": "red", "NODE_FAIL": "red", "OUT_OF_MEMORY": "red",
    "CANCELLED": "bright_black", "SUBMITTING": "yellow", "UNKNOWN": "magenta",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"
    return f"{days}-{text}" if days else text


def elapsed(job: JobOut) -> float | None:
    if job.start_time is None:
        return None
    end = job.end_time or datetime.now(timezone.utc)
    return (end - job.start_time).total_seconds()


ENTRY_WORDS = KIND_WORDS  # ledger transfer kinds in the words a user reads on a bill


def money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def price(value: Decimal) -> str:
    """At least two places, and as many more as the price really has."""
    text = f"{value:f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{whole}.{frac}"


def jobs_table(jobs: list[JobOut], title: str | None = None) -> Table:
    """squeue-like; GPU and reason columns appear only when a job has them."""
    with_gpus = any(j.gpus for j in jobs)
    with_reason = any(j.reason for j in jobs)
    state_width = max([len(j.state) for j in jobs] + [5])
    columns = [("JOBID", "right", 5), ("NAME", "left", 0), ("WHERE", "left", 0), ("STATE", "left", state_width),
               ("TIME", "right", 7), ("CPUS", "right", 4)]
    columns += [("GPUS", "right", 4)] if with_gpus else []
    columns += [("EXIT", "right", 4), ("COST", "right", 6)]
    columns += [("REASON", "left", 0)] if with_reason else []
    table = Table(title=title, header_style="bold")
    # on a narrow terminal the name and place give way; id and state never do
    for column, justify, keep in columns:
        table.add_column(column, justify=justify, no_wrap=bool(keep), min_width=keep or None)
    for job in jobs:
        style = STATE_STYLE.get(job.state, "")
        # names, places and reasons are user data: shown as typed, never read as markup
        row = [str(job.id), escape(job.name[:24]), escape(f"{job.cluster}/{job.partition}"),
               f"[{style}]{job.state}[/]", duration(elapsed(job)), str(job.cores)]
        row += [str(job.gpus)] if with_gpus else []
        row += ["-" if job.exit_code is None else str(job.exit_code), money(job.cost)]
        row += [escape(job.reason or "")] if with_reason else []
        table.add_row(*row)
    return table


def clusters_table(clusters: list[ClusterOut], currency: str = "CNY") -> Table:
    table = Table(header_style="bold")
    for column in ("CLUSTER", "HEALTH", "PARTITION", "NODES", "CPUS/NODE", "MEM/NODE", "GPUS/NODE",
                   "MAX TIME", f"{currency}/CORE-H", f"{currency}/GPU-H"):
        table.add_column(column)
    for cluster in clusters:
        health_style = {"online": "green", "degraded": "yellow", "offline": "red"}.get(cluster.health, "")
        health = f"[{health_style}]{escape(cluster.health)}[/]"
        if cluster.retry_at is not None:  # out of service: when the network tries it again
            health += f"\nretry {cluster.retry_at.astimezone():%H:%M:%S}"
        for i, p in enumerate(cluster.partitions or []):
            gpus = f"{p.gpus_per_node} {p.gpu_type or ''}".strip() if p.gpus_per_node else "-"
            table.add_row(
                escape(cluster.name) if i == 0 else "", health if i == 0 else "",
                escape(p.name + ("*" if p.is_default else "")), str(p.nodes), str(p.cores_per_node),
                f"{p.mem_per_node_mb // 1024} GB", escape(gpus),
                duration(p.max_time_minutes * 60) if p.max_time_minutes else "unlimited",
                price(p.price_core_hour) if p.price_core_hour is not None else "[red]no price[/]",
                price(p.price_gpu_hour) if p.gpus_per_node and p.price_gpu_hour is not None else "-",
            )
        if not cluster.partitions:
            table.add_row(escape(cluster.name), health, "-", "", "", "", "", "", "", "")
    # why a cluster is out of service, and what a single-tenant local executor does not isolate
    notes = [f"{c.name}: {c.health_detail}" for c in clusters
             if c.health_detail and (c.health != "online" or "single tenant" in c.health_detail)]
    if notes:
        table.caption = escape("\n".join(notes))
        table.caption_justify = "left"
    return table


def decision_table(decision: dict, title: str | None = None) -> Table:
    """The router's view: every candidate, best first, with its predicted start, price and why."""
    chosen = decision.get("chosen")
    table = Table(title=escape(title or f"policy {decision.get('policy')}: {chosen or 'nowhere fits'}"),
                  title_justify="left")
    for column in ("", "cluster/partition", "owned", "start", "price", "why"):
        table.add_column(column, overflow="fold")
    for c in decision.get("candidates", []):
        name = f"{c['cluster']}/{c['partition']}"
        mark = "→" if name == chosen else ("" if c["feasible"] else "✗")
        wait = c.get("wait_s")
        start = "-" if wait is None else ("now" if wait < 1 else f"in {duration(wait)}")
        why = c["explanation"] if c["feasible"] else "; ".join(c["reasons"])
        table.add_row(mark, escape(name), escape(str(c["ownership"])), start if c["feasible"] else "-",
                      escape(str(c["price"] or "-")), escape(why), style=None if c["feasible"] else "bright_black")
    return table


def _at(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def _bytes(count: int | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "K", "M", "G", "T"):
        if count < 1024 or unit == "T":
            return f"{count:.0f}{unit}" if unit == "B" else f"{count:.1f}{unit}"
        count /= 1024
    return str(count)


def job_facts(job) -> list[str]:
    """`cnet job`: scontrol show job's times, resources, memory and exit code, in plain lines."""
    limit = "UNLIMITED" if job.time_limit_minutes is None else duration(job.time_limit_minutes * 60)
    ran = duration(job.elapsed_s) if getattr(job, "elapsed_s", None) is not None else duration(elapsed(job))
    mem = getattr(job, "mem_mb", None)
    exit_code = "-" if job.exit_code is None else str(job.exit_code)
    return [
        f"submit  {_at(job.submitted_at)}   predicted start {_at(getattr(job, 'predicted_start', None))}",
        f"start   {_at(job.start_time)}   end      {_at(job.end_time)}",
        f"time    limit {limit}   elapsed {ran}",
        f"nodes   {getattr(job, 'nodes', 1)}   cpus {job.cores}   gpus {job.gpus}   "
        f"memory asked {'-' if not mem else _bytes(mem * 1024 * 1024)}   "
        f"MaxRSS {_bytes(getattr(job, 'max_rss_bytes', None))}",
        f"state   {job.state}   exit code {exit_code}" + (f"   reason {job.reason}" if job.reason else ""),
        f"nodelist {getattr(job, 'node_list', None) or '(not placed yet)'}",
    ]

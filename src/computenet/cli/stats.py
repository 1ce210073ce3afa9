"""`cnet job ID --stats` (sparklines of what the job did) and `cnet efficiency` (a seff-like table)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(emoji=False)
BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None], top: float | None = None, width: int = 60) -> str:
    """Values as block characters (scaled to ``top``), squeezed to ``width``; a gap is a blank."""
    if not values:
        return ""
    if len(values) > width:  # mean of each slice
        step = len(values) / width
        squeezed = []
        for i in range(width):
            part = [v for v in values[int(i * step):int((i + 1) * step) or None] if v is not None]
            squeezed.append(sum(part) / len(part) if part else None)
        values = squeezed
    known = [v for v in values if v is not None]
    top = top or (max(known) if known else 0) or 1
    return "".join(" " if v is None else BARS[min(len(BARS) - 1, max(0, int(v / top * (len(BARS) - 1) + 0.5)))]
                   for v in values)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _mib(value: float) -> str:
    return f"{value / 1024 ** 2:.0f} MiB" if value < 10 * 1024 ** 3 else f"{value / 1024 ** 3:.1f} GiB"


def show_stats(stats: dict) -> None:
    eff, series = stats["efficiency"], stats["series"]
    if not stats["samples"]:
        console.print(f"job {stats['job']}: no samples yet"
                      + (" (not monitored: not a shell script)" if not stats["monitored"] else ""))
        return
    gaps = f", {len(stats['gaps'])} gap(s) in the samples" if stats["gaps"] else ""
    console.print(f"[bold]job {stats['job']}[/]: {stats['samples']} samples every {stats['interval_s']:g} s{gaps}")
    console.print(f"  CPU  {sparkline(series['cores'], top=stats['cores'])}  "
                  f"{_pct(eff['cpu_efficiency'])} of {stats['cores']} cores")
    console.print(f"  mem  {sparkline(series['rss'])}  peak {_mib(eff['peak_rss'])}"
                  + (f", {_pct(eff['mem_efficiency'])} of the request" if eff["mem_efficiency"] is not None else ""))
    if any(v is not None for v in series["gpu_util"]):
        console.print(f"  GPU  {sparkline(series['gpu_util'], top=100)}  {_pct(eff['gpu_utilisation'])} used")
    if eff["time_limit_efficiency"] is not None:
        console.print(f"  ran {stats['runtime_s']:.0f} s, {_pct(eff['time_limit_efficiency'])} of its time limit; "
                      f"paid {stats['price']}")
    for f in stats["findings"]:
        money = f" — wasted {f['wasted']}" if f["wasted"] not in ("0", "0.00") else ""
        console.print(f"  [{'red' if f['severity'] == 'critical' else 'yellow'}]{f['severity']}[/] "
                      + escape(f"{f['title']}{money}\n      {f['recommendation']}"), highlight=False)


def efficiency_table(rows: list[dict], title: str = "Efficiency of your recent jobs") -> Table:
    table = Table(box=None, title=escape(title))
    many_users = len({r.get("user") for r in rows}) > 1
    columns = ["job", "name"] + (["user"] if many_users else []) + ["state", "cores", "GPUs", "runtime", "CPU",
                                                                     "mem", "GPU", "paid", "wasted", "finding"]
    for column in columns:
        table.add_column(column, justify="right" if column not in ("name", "user", "state", "finding") else "left")
    for r in rows:
        table.add_row(str(r["job"]), escape(r["name"][:20]), *([escape(r["user"])] if many_users else []), r["state"],
                      str(r["cores"]), str(r["gpus"]), f"{r['runtime_s']:.0f}s", _pct(r["cpu_efficiency"]),
                      _pct(r["mem_efficiency"]), _pct(r["gpu_utilisation"]), r["price"], r["wasted"],
                      escape(r["finding"] or ""))
    return table


def efficiency(limit: int = typer.Option(50, help="how many ended jobs, newest first"),
               user: Optional[str] = typer.Option(None, "--user", help="another user's jobs (tenant admin, finance, "
                                                                          "operator)"),
               project: Optional[str] = typer.Option(None, "--project", help="a project's jobs (all of them for its "
                                                                                "PI and admins)"),
               since: Optional[str] = typer.Option(None, "--from", help="jobs that ended at or after (ISO date)"),
               until: Optional[str] = typer.Option(None, "--to", help="jobs that ended before (ISO date)")) -> None:
    """Ended jobs' CPU, memory and GPU efficiency and what the unused share cost (like seff/reportseff)."""
    from .main import api, client, utc_option

    whose = f"{user}'s" if user else "your"
    title = f"Efficiency of {whose} jobs" + (f" in {project}" if project else "") + \
        (f" from {since}" if since else "") + (f" to {until}" if until else "")
    start, end = utc_option(since, "--from"), utc_option(until, "--to")  # a bad date is refused here
    with client() as c:
        rows = api(lambda: c.efficiency(limit, user=user, project=project, since=start, until=end))
        console.print(efficiency_table(rows, title) if rows else escape(f"{title}: no ended jobs"))

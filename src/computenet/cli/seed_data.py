"""``cnet seed-data``: a synthetic operator year for demos and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .main import fail

console = Console(emoji=False)



def seed_data(
    year: Optional[int] = typer.Option(None, help="the calendar year to generate (required)"),
    jobs: Optional[int] = typer.Option(None, help="how many jobs (default: --scale 0.005)"),
    scale: Optional[float] = typer.Option(None, help="instead of --jobs: a fraction of the seed operator's "
                                                     "2022 volume (2,596 M core-hours, 8.88 M card-hours)"),
    tenants: int = typer.Option(300, help="how many customers (tenants)"),
    seed: int = typer.Option(1, help="random seed: the same seed gives the same data"),
    replace: bool = typer.Option(False, help="delete this year's seed data first, if the database has it"),
    parquet: Optional[Path] = typer.Option(None, help="write <table>.parquet files into this directory "
                                                      "instead of the database (the fast path for large years)"),
    db: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
    lang: str = typer.Option("en", help="language of the calibration report: en or zh-CN"),
    calibration: bool = typer.Option(True, help="print the calibration report (target vs achieved)"),
) -> None:
    """Generate a year of tenants, users, clusters, jobs, charges and ledger transfers,
    calibrated to the seed operator's published customer mix, with the monitoring's job
    profiles and efficiency findings."""
    from ..analytics import seed_db, seed_parquet
    from ..analytics.seed_data import SeedError, SeedSpec, generate
    from ..analytics.seed_placement import SeedPlacementError

    if year is None:
        fail("--year is required (e.g. --year 2022)")
    language = _language(lang)
    spec = SeedSpec(year=year, jobs=jobs, scale=scale, tenants=tenants, seed=seed)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            drawing = progress.add_task("drawing the year", total=8)
            placing = progress.add_task("placing jobs (EASY)", total=None, visible=False)

            def placed(done: int) -> None:  # the placement may run a few rounds: the bar restarts
                task = next(t for t in progress.tasks if t.id == placing)
                if task.completed + done > spec.job_count():
                    progress.reset(placing, total=spec.job_count())
                progress.update(placing, advance=done, total=spec.job_count(), visible=True)

            data = generate(spec, progress=lambda what: progress.update(
                drawing, advance=1, description=f"drawing the year: {what}"), placing=placed)
            progress.update(drawing, completed=8)
            progress.update(placing, visible=False)
            if parquet is not None:
                files = progress.add_task("writing Parquet", total=len(seed_parquet.TABLES))
                written = seed_parquet.write(data, parquet, progress=lambda name: progress.advance(files))
            else:
                from ..config import load_settings
                from ..store.db import Database

                database = Database(db or load_settings().db_url)
                try:
                    database.migrate()
                    task = progress.add_task("writing jobs", total=data.rows("jobs"))
                    written = seed_db.write(database, data, replace=replace,
                                            progress=lambda done, total: progress.update(task, completed=done))
                finally:
                    database.dispose()
        if calibration:
            from ..analytics.seed_report import calibration as calibrate

            with console.status("calibration report"):
                figures = calibrate(data)
    except (SeedError, SeedPlacementError) as exc:
        fail(str(exc))
    where = str(parquet) if parquet is not None else "the database"
    console.print(f"seed data for {spec.year} (seed {spec.seed}) written to {where}: "
                  + ", ".join(f"{rows:,} {table}" for table, rows in written.items()), highlight=False)
    if calibration:
        console.print(render_calibration(figures, spec, language))


def _language(lang: str) -> str:
    if lang.lower() in ("zh", "zh-cn", "zh_cn"):
        return "zh-CN"
    if lang.lower() == "en":
        return "en"
    fail(f"--lang must be en or zh-CN, not {lang!r}")


def render_calibration(figures, spec, language: str) -> Table:
    """Target vs achieved for every calibrated figure, with its tolerance and a mark."""
    from ..messages import msg
    from ..web.i18n import Formats, localise

    formats = Formats(language, "CNY")

    def say(text) -> str:
        return localise(text, language, formats)

    def value(figure, number) -> str:
        if number is None:
            return say(msg("unknown"))
        if figure.unit == "hours":
            return f"{number:,.0f}"
        return f"{number * 100:.2f} %"

    table = Table(title=say(msg("Calibration of the %(year)s seed year against the seed operator's figures "
                                "(%(count)s jobs, seed %(seed)s)", year=spec.year,
                                count=f"{spec.job_count():,}", seed=spec.seed)),
                  box=box.SIMPLE_HEAD, title_justify="left")
    for column in (msg("figure"), msg("target"), msg("achieved"), msg("tolerance"), msg("result")):
        table.add_column(say(column), justify="left" if column == "figure" else "right",
                         overflow="fold")  # Chinese has no spaces to wrap at: fold, never cut
    for f in figures:
        mark = say(msg("pass")) if f.passed else say(msg("MISS"))
        table.add_row(say(f.name), value(f, f.target), value(f, f.achieved), say(f.tolerance),
                      f"[green]{escape(mark)}[/]" if f.passed else f"[bold red]{escape(mark)}[/]")
    met = sum(f.passed for f in figures)
    table.caption = say(msg("%(met)s of %(all)s figures within tolerance", met=met, all=len(figures)))
    return table

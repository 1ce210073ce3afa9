"""``cnet seed-data``: a synthetic operator year for demos and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .main import fail

console = Console(emoji=False)



def seed_data(
    year: Optional[int] = typer.Option(None, help="the calendar year to generate (required)"),
    jobs: Optional[int] = typer.Option(None, help="how many jobs (default 20,000)"),
    scale: Optional[float] = typer.Option(None, help="instead of --jobs: a fraction of the seed operator's "
                                                     "2022 volume (2,596 M core-hours, 8.88 M card-hours)"),
    tenants: int = typer.Option(300, help="how many customers (tenants)"),
    seed: int = typer.Option(1, help="random seed: the same seed gives the same data"),
    replace: bool = typer.Option(False, help="delete this year's seed data first, if the database has it"),
    parquet: Optional[Path] = typer.Option(None, help="write <table>.parquet files into this directory "
                                                      "instead of the database (the fast path for large years)"),
    db: Optional[str] = typer.Option(None, help="database URL (default: the configured one)"),
) -> None:
    """Generate a year of tenants, users, clusters, jobs, charges and ledger transfers,
    calibrated to the seed operator's published customer mix."""
    from ..analytics import seed_db, seed_parquet
    from ..analytics.seed_data import SeedError, SeedSpec, generate

    if year is None:
        fail("--year is required (e.g. --year 2022)")
    spec = SeedSpec(year=year, jobs=jobs, scale=scale, tenants=tenants, seed=seed)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            drawing = progress.add_task("drawing the year", total=6)
            data = generate(spec, progress=lambda what: progress.update(
                drawing, advance=1, description=f"drawing the year: {what}"))
            progress.update(drawing, completed=6)
            if parquet is not None:
                files = progress.add_task("writing Parquet", total=10)
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
    except SeedError as exc:
        fail(str(exc))
    where = str(parquet) if parquet is not None else "the database"
    console.print(f"seed data for {spec.year} (seed {spec.seed}) written to {where}: "
                  + ", ".join(f"{rows:,} {table}" for table, rows in written.items()), highlight=False)

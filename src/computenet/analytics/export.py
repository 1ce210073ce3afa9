"""`cnet report export`: the warehouse's tables as CSV or Parquet files, one per table.

Parquet keeps the stored forms (cents, millionths, UTC timestamps) and is
what ``Warehouse.from_parquet`` reads back; CSV is for spreadsheets.
"""

from __future__ import annotations

from pathlib import Path

from .periods import ReportError
from .warehouse import Warehouse

FORMATS = ("csv", "parquet")


def export_tables(warehouse: Warehouse, out: str | Path, fmt: str) -> list[Path]:
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}: use csv or parquet")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in warehouse.tables():
        path = folder / f"{name}.{fmt}"
        relation = warehouse.con.table(name)
        if fmt == "parquet":
            relation.write_parquet(str(path))
        else:
            relation.write_csv(str(path), header=True)
        written.append(path)
    return written

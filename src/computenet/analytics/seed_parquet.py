"""Write a synthetic year as Parquet files, one ``<table>.parquet`` per table (the warehouse's layout).

The fast path for large networks (10 million jobs do not go through
SQLAlchemy): the same tables as seed_db writes, straight from the numpy
arrays, with the ids as generated. Columns are the warehouse's stored
forms (analytics/warehouse.py: cents, millionths, naive UTC timestamps, JSON
as text); text made per row (transfer keys, memos, scripts) is left out, as
no report reads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .seed_tables import SeedTables
from .warehouse import TABLES, table_schema

PER_ROW_TEXT = {"transfers": {"key", "memo"}, "charges": {"idempotency_key"}, "usage_records": {"alloc_tres"}}


def _array(values, kind: pa.DataType, is_time: bool) -> pa.Array:
    if is_time:
        return pa.array(np.asarray(values, dtype=np.int64) * 1_000_000, pa.int64()).cast(kind)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return pa.array(values).cast(kind)
    if pa.types.is_string(kind) and isinstance(values, np.ndarray) and values.dtype.kind == "U":
        return pa.array(values, kind)  # straight from numpy: no Python string per row
    if pa.types.is_string(kind):
        values = [v if v is None or isinstance(v, str) else json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                  for v in (values.tolist() if isinstance(values, np.ndarray) else values)]
        return pa.array(values, kind)
    return pa.array(values.tolist() if isinstance(values, np.ndarray) else values, kind)


def arrow_table(data: SeedTables, name: str) -> pa.Table:
    """One table in the warehouse's schema, from the generated columns (local ids)."""
    _, schema = table_schema(name)
    cols = dict(data.columns[name])
    if name == "ledger_accounts":
        cols["owner_key"] = np.where(cols["account_id"] > 0, cols["account_id"].astype(str), "")
    fields, arrays = [], []
    for field in schema:
        if field.name not in cols or field.name in PER_ROW_TEXT.get(name, ()):
            continue
        values = cols[field.name]
        if field.name.endswith("_id") and isinstance(values, np.ndarray) and field.name != "id":
            values = np.where(values > 0, values, 0)  # 0 = NULL (made null below)
            array = pa.array(values, pa.int64(), mask=values == 0)
        else:
            array = _array(values, field.type, field.name in data.times.get(name, ()))
        fields.append(field)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def write(data: SeedTables, directory: str | Path, progress=None) -> dict[str, int]:
    """Write every warehouse table the year has; returns rows per file."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in TABLES:
        if name not in data.columns:
            continue
        table = arrow_table(data, name)
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
        written[name] = table.num_rows
        if progress:
            progress(name)
    return written

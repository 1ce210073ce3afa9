"""The warehouse: the operational tables in DuckDB, for the operator reports.

A ``Warehouse`` holds a DuckDB connection (``.con``) in which the tables in
TABLES are visible under their own names and column names. It is built

* ``Warehouse.from_database(database)``: read from the operational database
  (SQLite or PostgreSQL) through SQLAlchemy into Arrow, then into DuckDB.
  No DuckDB extension is needed (sqlite_scanner/postgres_scanner are
  downloads, and CI cannot reach extensions.duckdb.org);
* ``Warehouse.from_parquet(directory)``: one ``<table>.parquet`` per table,
  as ``cnet report export --format parquet`` writes them (and as the
  synthetic-data generator writes a large network directly).

Values are as the database stores them, so no figure passes through a float:
Money columns (amounts) are integer cents, Rate columns (prices, costs per
hour) integer millionths, times naive UTC timestamps (microseconds), JSON
columns JSON text, booleans booleans. A Parquet file may leave out columns no
report reads; the ones they read are REPORT_COLUMNS (checked on load).

What the reports read: usage (utilization, segment shares, leased cost) from
usage_records; money from the ledger (transfers into and out of the revenue
ledger accounts, see analytics/queries.py); capacity from partitions; owned
capacity costs from the clusters' cost columns.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy import Boolean, DateTime, Float, Integer, Table, Text, cast, select, type_coerce
from sqlalchemy.types import JSON, TypeDecorator

from ..store.models import Base

TABLES = ("clusters", "partitions", "tenants", "accounts", "users", "jobs", "usage_records", "charges",
          "ledger_accounts", "transfers", "job_profiles")
# large or private, and read by no report: never copied out of the operational database
LEFT_OUT = {"jobs": {"script", "script_args", "spec", "inputs", "outputs", "app", "workdir",
                     "stdout_path", "stderr_path", "reason"},
            "users": {"email"}}
REPORT_COLUMNS = {
    "clusters": ("id", "name", "ownership", "cost_core_hour", "cost_gpu_hour", "node_capex", "depreciation_years",
                 "node_watts", "power_price_kwh", "pue", "node_opex_hour"),
    "partitions": ("cluster_id", "name", "nodes", "cores_per_node", "gpus_per_node", "product_line", "node_names"),
    "tenants": ("id", "name", "segment"),
    "accounts": ("id", "name", "tenant_id"),
    "users": ("id", "name", "created_at"),
    "jobs": ("id", "owner_id", "account_id", "cluster_id", "partition", "start_time", "end_time", "submitted_at",
             "cores", "gpus", "predicted_start", "reroutes"),
    "usage_records": ("cluster_id", "job_id", "partition", "start_time", "end_time", "cpus", "gpus"),
    "ledger_accounts": ("id", "code", "account_id", "product_line", "credit_limit", "currency"),
    "transfers": ("debit_id", "credit_id", "amount", "pending", "job_id", "created_at"),
    "job_profiles": ("job_id", "app", "cluster_id", "cores", "gpus", "runtime_s", "cpu_efficiency", "peak_rss",
                     "gpu_utilisation", "price", "wasted", "finished_at", "mem_requested_bytes", "findings"),
}
# copied when there, not required (exports and synthetic years made before them lack them; the report
# that reads one says so): the jobs report's start prediction, the routing report's count of re-routes, the
# efficiency report's requested memory and findings; and the efficiency report's whole table
OPTIONAL_COLUMNS = {"jobs": ("predicted_start", "reroutes"),
                    "job_profiles": ("mem_requested_bytes", "findings")}
OPTIONAL_TABLES = ("job_profiles",)
BATCH_ROWS = 50_000


class WarehouseError(ValueError):
    pass


def arrow_type(column) -> pa.DataType:
    """The Arrow type a column is kept as: its stored form (cents, millionths, UTC)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl
    if isinstance(kind, DateTime):
        return pa.timestamp("us")
    if isinstance(kind, Boolean):
        return pa.bool_()
    if isinstance(kind, Float):
        return pa.float64()
    if isinstance(kind, Integer):  # BigInteger too; Money and Rate are stored as integers
        return pa.int64()
    return pa.string()  # String, Text, JSON (as text)


def table_schema(name: str, only: tuple[str, ...] | None = None) -> tuple[list, pa.Schema]:
    table: Table = Base.metadata.tables[name]
    columns = [c for c in table.columns if c.name not in LEFT_OUT.get(name, ()) and (only is None or c.name in only)]
    return columns, pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


def _raw(column):
    """Select a column as stored: without the Decimal / aware-datetime conversion."""
    kind = column.type
    if isinstance(kind, JSON):
        return column  # decoded by the driver; written back as JSON text below
    if isinstance(kind, TypeDecorator):
        return type_coerce(column, kind.impl)
    return column


def read_decisions(engine) -> pa.Table:
    """Every job's routing decision (job_id, routing) as the database's JSON text: decoding and encoding
    them as other JSON columns are made it ~30x slower (bench/routing_report.py)."""
    schema = pa.schema([pa.field("job_id", pa.int64()), pa.field("routing", pa.string())])
    jobs = Base.metadata.tables["jobs"]
    batches = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
            select(jobs.c.id, cast(jobs.c.routing, Text)).where(jobs.c.routing.is_not(None)))
        for chunk in result.partitions(BATCH_ROWS):
            ids, texts = (list(col) for col in zip(*chunk))
            batches.append(pa.RecordBatch.from_arrays([pa.array(ids, pa.int64()), pa.array(texts, pa.string())],
                                                      schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def _as_text(value):
    return value if value is None or isinstance(value, str) else json.dumps(value)


def read_table(engine, name: str, only: tuple[str, ...] | None = None) -> pa.Table:
    """One operational table (or only some of its columns) as Arrow, streamed in batches."""
    columns, schema = table_schema(name, only)
    json_columns = {i for i, c in enumerate(columns) if isinstance(c.type, JSON)}
    batches = []
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(
            select(*[_raw(c) for c in columns]))
        for chunk in result.partitions(BATCH_ROWS):
            values = list(zip(*chunk)) if chunk else [[] for _ in columns]
            arrays = [pa.array([_as_text(v) for v in col] if i in json_columns else col, type=schema.field(i).type)
                      for i, col in enumerate(values)]
            batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # timestamps are UTC: never shifted to the host's zone
    return con


class Warehouse:
    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, engine=None) -> None:
        self.con = con
        self.source = source  # where the data came from, for messages
        self.engine = engine  # the operational database, for what is read on first use (decisions)
        self._lock = threading.Lock()

    @classmethod
    def from_database(cls, database, reports_only: bool = False) -> "Warehouse":
        """Copy the report tables of a ``store.db.Database`` (or an SQLAlchemy engine) into DuckDB;
        with ``reports_only``, only the columns the reports read (REPORT_COLUMNS): less to copy for
        every report, everything for an export."""
        engine = getattr(database, "engine", database)
        con = _connect()
        for name in (REPORT_COLUMNS if reports_only else TABLES):
            data = read_table(engine, name, REPORT_COLUMNS[name] if reports_only else None)
            con.register("_incoming", data)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _incoming')  # names are our constants
            con.unregister("_incoming")
        return cls(con, engine.url.render_as_string(hide_password=True), engine if reports_only else None)

    @classmethod
    def from_parquet(cls, directory: str | Path) -> "Warehouse":
        """Views over ``<directory>/<table>.parquet``; every table the reports read must be there."""
        folder = Path(directory)
        if not folder.is_dir():
            raise WarehouseError(f"{folder} is not a directory of Parquet files")
        con = _connect()
        for name in TABLES:
            path = folder / f"{name}.parquet"
            if not path.exists():
                if name in REPORT_COLUMNS and name not in OPTIONAL_TABLES:
                    raise WarehouseError(f"{path} is missing: the reports read the {name} table")
                continue
            con.read_parquet(str(path)).create_view(name)  # the path is a value, never spliced into SQL
        warehouse = cls(con, str(folder))
        warehouse.check_columns()
        return warehouse

    def query(self, sql: str, params=None) -> tuple[list[str], list[tuple]]:
        """(column names, rows) through a cursor of its own: one warehouse serves concurrent requests,
        and results read straight off the shared connection could be another thread's."""
        cur = self.con.cursor()
        try:
            cur.execute(sql, params) if params is not None else cur.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
        finally:
            cur.close()

    def columns(self, table: str) -> list[str]:
        return [row[0] for row in self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table])[1]]

    def check_columns(self) -> None:
        present = set(self.tables())
        for table, needed in REPORT_COLUMNS.items():
            if table in OPTIONAL_TABLES and table not in present:
                continue
            missing = [c for c in needed if c not in set(self.columns(table)) and c not in OPTIONAL_COLUMNS.get(table, ())]
            if missing:
                raise WarehouseError(f"{self.source}: table {table} lacks column(s) {', '.join(missing)}")

    def decisions(self) -> bool:
        """Make table job_decisions (job_id, routing: JSON text) of the jobs' routing decisions: a view
        of jobs.routing where the data has it (a full copy, Parquet), else read from the operational
        database now, once (they are large and only the routing report reads them, so copies for
        reports leave them out). False where the data has none (older exports)."""
        with self._lock:
            present = {row[0] for row in self.query("SELECT table_name FROM information_schema.tables")[1]}
            if "job_decisions" in present:
                return True
            if "routing" in self.columns("jobs"):
                self.con.execute("CREATE VIEW job_decisions AS SELECT id AS job_id, routing FROM jobs")
                return True
            if self.engine is None:
                return False
            self.con.register("_incoming", read_decisions(self.engine))
            self.con.execute("CREATE TABLE job_decisions AS SELECT * FROM _incoming")
            self.con.unregister("_incoming")
            return True

    def tables(self) -> list[str]:
        present = {row[0] for row in self.query("SELECT table_name FROM information_schema.tables")[1]}
        return [t for t in TABLES if t in present]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Write a synthetic year into the operational database, in bulk.

SQLAlchemy Core inserts of lists of dicts, in batches of jobs, one
transaction per batch. Rows carry the columns and meanings the services
give them (a hold per job at submission, its post at settlement, a charge
per usage record pointing at that post, top-ups from cash), and each
batch adds its transfers to the ledger accounts' running sums in the same
transaction, so debits equal credits at every commit. Ids are taken where
the tables have room; the platform's own cash and revenue ledger accounts
are shared with whatever is already there.

Run it while no server writes to the database (on SQLite the ids are
taken as max(id) + 1 when it starts).
"""

from __future__ import annotations

import re

from collections import defaultdict

import numpy as np
from sqlalchemy import Column, MetaData, Table, bindparam, delete, func, select, text, update
from sqlalchemy.types import JSON, TypeDecorator

from ..billing import ledger as ledger_codes
from ..store.models import Account, Base, Charge, Cluster, Job, LedgerAccount, Tenant, Transfer, User
from .seed_data import SeedError
from .seed_money import PRODUCT_LINES
from .seed_tables import NO_ID, ORDER, REFS, SHARED_LEDGER, SeedTables
from .seed_text import texts

SETUP = ("clusters", "partitions", "price_items", "tenants", "accounts", "users", "account_members", "contracts",
         "ledger_accounts")
BY_JOB = ("jobs", "transfers", "usage_records", "charges", "job_profiles")
_raw_tables: dict[str, Table] = {}


def raw(name: str) -> Table:
    """The table with its columns' stored types (cents, millionths, naive UTC), not the Python ones."""
    if name not in _raw_tables:
        source = Base.metadata.tables[name]
        columns = [Column(c.name, c.type if isinstance(c.type, JSON) or not isinstance(c.type, TypeDecorator)
                          else c.type.impl, primary_key=c.primary_key) for c in source.columns]
        _raw_tables[name] = Table(name, MetaData(), *columns)
    return _raw_tables[name]


def seeded(session, prefix: str) -> dict[str, int]:
    """How many tenants and clusters of this seed year are in the database."""
    return {"tenants": session.scalar(select(func.count()).where(Tenant.name.startswith(f"{prefix}-"))) or 0,
            "clusters": session.scalar(select(func.count()).where(Cluster.name.startswith(f"{prefix}-"))) or 0}


SEED_NAME = re.compile(r"s\d{4}-.+")  # what every seed year names its clusters (SQL LIKE's _ is any character)


def real_jobs(session) -> int:
    """Jobs on clusters no seed year made (seed clusters are named s<year>-..., exactly)."""
    real = [cid for cid, name in session.execute(select(Cluster.id, Cluster.name)) if not SEED_NAME.fullmatch(name)]
    if not real:
        return 0
    return session.scalar(select(func.count()).select_from(Job).where(Job.cluster_id.in_(real))) or 0


def remove(session, prefix: str) -> None:
    """Delete a seed year: its rows, and its transfers' part of the shared ledger accounts' sums."""
    accounts = select(Account.id).where(Account.name.startswith(f"{prefix}-")).scalar_subquery()
    clusters = select(Cluster.id).where(Cluster.name.startswith(f"{prefix}-")).scalar_subquery()
    jobs = select(Job.id).where(Job.cluster_id.in_(clusters)).scalar_subquery()
    customers = select(LedgerAccount.id).where(LedgerAccount.account_id.in_(accounts)).scalar_subquery()
    mine = Transfer.job_id.in_(jobs) | Transfer.debit_id.in_(customers) | Transfer.credit_id.in_(customers)
    for side, column in ((Transfer.debit_id, "debits_posted"), (Transfer.credit_id, "credits_posted")):
        for ledger_id, total in session.execute(select(side, func.sum(Transfer.amount)).where(
                mine, ~Transfer.pending).group_by(side)).all():
            session.execute(update(LedgerAccount).where(LedgerAccount.id == ledger_id).values(
                {column: getattr(LedgerAccount, column) - int(total)}))
    session.execute(update(Job).where(Job.id.in_(jobs)).values(hold_id=None))
    session.execute(delete(Charge).where(Charge.job_id.in_(jobs)))
    session.execute(delete(Transfer).where(mine))
    session.execute(update(User).where(User.name.startswith(f"{prefix}-")).values(default_account_id=None))
    for table, where in (("job_profiles", "cluster_id IN ({c})"), ("usage_records", "cluster_id IN ({c})"), ("jobs", "cluster_id IN ({c})"),
                         ("account_members", "account_id IN ({a})"), ("users", "name LIKE :p"),
                         ("ledger_accounts", "account_id IN ({a})"), ("contracts", "tenant_id IN ({t})"),
                         ("accounts", "name LIKE :p"), ("tenants", "name LIKE :p"), ("price_items", "cluster_id IN ({c})"),
                         ("partitions", "cluster_id IN ({c})"), ("clusters", "name LIKE :p")):
        # table names and conditions are this module's constants; the prefix is a bound value
        sql = f"DELETE FROM {table} WHERE " + where.format(
            c="SELECT id FROM clusters WHERE name LIKE :p", a="SELECT id FROM accounts WHERE name LIKE :p",
            t="SELECT id FROM tenants WHERE name LIKE :p")
        session.execute(text(sql), {"p": f"{prefix}-%"})


def _reserve(session, table: str, count: int) -> int:
    """The first of ``count`` free ids in ``table``, kept from other writers."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # our constant names
        sequence = connection.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar()
        top = connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar()
        last = connection.exec_driver_sql(f"SELECT last_value FROM {sequence}").scalar()
        first = max(top, last) + 1
        connection.exec_driver_sql(f"SELECT setval('{sequence}', {first + max(count, 1) - 1})")
        return first
    return (connection.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar() or 0) + 1


def _values(data: SeedTables, table: str, rows: np.ndarray, ids: dict[str, np.ndarray]) -> list[dict]:
    cols = data.columns[table]
    out: dict[str, list] = {}
    for name, values in cols.items():
        picked = values[rows] if isinstance(values, np.ndarray) else [values[r] for r in rows]
        if name == "id" and table in ids:
            picked = ids[table][np.asarray(picked)]
        elif name in REFS.get(table, {}):
            target = ids[REFS[table][name]]
            picked = [int(target[v]) if v else None for v in np.asarray(picked)]
        elif name in data.times.get(table, ()):
            picked = np.asarray(picked).astype("datetime64[s]").astype("datetime64[us]")
        out[name] = picked.tolist() if isinstance(picked, np.ndarray) else list(picked)
    out.update(texts(data, table, rows, ids))
    keys = list(out)
    return [dict(zip(keys, row)) for row in zip(*out.values())]


def _shared_ledger(session) -> np.ndarray:
    """Final ids of cash and the revenue accounts (created if missing): local 1..SHARED_LEDGER."""
    found = [ledger_codes.ledger_account(session, ledger_codes.CASH).id]
    found += [ledger_codes.ledger_account(session, ledger_codes.REVENUE, product_line=line).id for line in PRODUCT_LINES]
    return np.asarray(found, dtype=np.int64)


def write(database, data: SeedTables, *, replace: bool = False, batch: int = 20_000, progress=None) -> dict:
    """Insert the year; refuses a year that is already there unless ``replace``."""
    if batch < 1:
        raise SeedError("the batch size must be positive")
    step = progress or (lambda done, total: None)
    with database.session() as session:
        real = real_jobs(session)
        if real:  # synthetic money in a real ledger would show in its reports and statements for good
            raise SeedError(f"the database holds {real:,} jobs that are not seed data: seed a database of its own "
                            "(--db sqlite:///demo.db), never a real operator's")
        found = seeded(session, data.prefix)
        if any(found.values()):
            if not replace:
                raise SeedError(f"the database already holds seed data for {data.year} ({found['tenants']} tenants, "
                                f"{found['clusters']} clusters named {data.prefix}-...): use --replace to regenerate it")
            remove(session, data.prefix)
    ids: dict[str, np.ndarray] = {}
    with database.session() as session:
        shared = _shared_ledger(session)
        for table in ORDER:
            n = data.rows(table)
            if table in NO_ID:
                continue
            if table == "ledger_accounts":
                first = _reserve(session, table, n - SHARED_LEDGER)
                ids[table] = np.concatenate([[0], shared, first + np.arange(n - SHARED_LEDGER)])
            else:
                ids[table] = np.concatenate([[0], _reserve(session, table, n) + np.arange(n)])
        for table in SETUP:
            rows = np.arange(data.rows(table))
            if table == "ledger_accounts":
                rows = rows[SHARED_LEDGER:]
            if len(rows):
                session.execute(raw(table).insert(), _values(data, table, rows, ids))
    n_jobs = data.rows("jobs")
    submit = data.columns["jobs"]["submitted_at"]
    t = data.columns["transfers"]
    job_of_transfer = t["job_id"]
    edges = [0] + list(range(batch, n_jobs, batch)) + [n_jobs]
    profiled = data.columns["job_profiles"]["job_id"]  # local job ids, in order
    loose = np.flatnonzero(job_of_transfer == 0)  # top-ups and payments, by the batch their time falls in
    cut = np.searchsorted(t["created_at"][loose], [submit[e] if e < n_jobs else np.iinfo(np.int64).max
                                                   for e in edges[1:]], side="left")
    cut[-1] = len(loose)
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        rows = np.arange(lo, hi)
        transfers = np.concatenate([np.flatnonzero((job_of_transfer > lo) & (job_of_transfer <= hi)),
                                    loose[(cut[k - 1] if k else 0):cut[k]]])
        transfers.sort()
        with database.session() as session:
            if len(rows):
                jobs = _values(data, "jobs", rows, ids)
                holds = [(row.pop("hold_id"), row["id"]) for row in jobs]
                session.execute(raw("jobs").insert(), jobs)
            session.execute(raw("transfers").insert(), _values(data, "transfers", transfers, ids))
            if len(rows):
                session.execute(raw("usage_records").insert(), _values(data, "usage_records", rows, ids))
                session.execute(raw("charges").insert(), _values(data, "charges", rows, ids))
                session.execute(update(raw("jobs")).where(raw("jobs").c.id == bindparam("job")).values(
                    hold_id=bindparam("hold")), [{"hold": h, "job": j} for h, j in holds])
                profiles = np.arange(*np.searchsorted(profiled, [lo + 1, hi + 1]))
                if len(profiles):
                    session.execute(raw("job_profiles").insert(), _values(data, "job_profiles", profiles, ids))
            _add_sums(session, data, transfers, ids)
        step(hi, n_jobs)
    return {table: data.rows(table) for table in ORDER}


def _add_sums(session, data: SeedTables, rows: np.ndarray, ids: dict[str, np.ndarray]) -> None:
    """The batch's posted transfers onto the ledger accounts' running sums (its holds are resolved in it)."""
    t = data.columns["transfers"]
    posted = rows[~t["pending"][rows]]
    sums: dict[tuple[str, int], int] = defaultdict(int)
    for side, column in (("debit_id", "debits_posted"), ("credit_id", "credits_posted")):
        accounts = ids["ledger_accounts"][t[side][posted]]
        for account, amount in zip(accounts.tolist(), t["amount"][posted].tolist()):
            sums[(column, account)] += amount
    table = LedgerAccount.__table__
    for (column, account), amount in sums.items():
        session.execute(update(table).where(table.c.id == account).values({column: table.c[column] + amount}))

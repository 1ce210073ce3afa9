"""Money and time columns, the ledger, and charging exactly once."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from computenet.billing.rating import rate
from computenet.domain.money import MoneyError, round_money, to_decimal
from computenet.services import accounts
from computenet.services.charging import charge_record
from computenet.services.errors import InvalidRequest
from computenet.store.models import Account, Charge, Cluster, Job, LedgerEntry, UsageRecordRow

from conftest import add_user


def test_money_is_never_float():
    with pytest.raises(MoneyError):
        to_decimal(0.1)
    assert to_decimal("0.10") == Decimal("0.10")
    assert round_money(Decimal("0.005")) == Decimal("0.01")
    assert round_money(Decimal("0.00499")) == Decimal("0.00")


def test_rating_is_exact():
    # 1 h 1 s on 3 cores and 2 GPUs at 0.05 per core-hour and 8.00 per GPU-hour
    r = rate(3601, 3, 2, Decimal("0.05"), Decimal("8.00"))
    assert (r.core_seconds, r.gpu_seconds) == (10803, 7202)
    # 10803/3600*0.05 + 7202/3600*8 = 0.150041.. + 16.004444.. = 16.154486 -> 16.15
    assert r.amount == Decimal("16.15")
    assert rate(0, 4, 0, Decimal("1"), Decimal("0")).amount == Decimal("0.00")
    with pytest.raises(ValueError):
        rate(-1, 1, 0, Decimal("1"), Decimal("0"))


def test_money_columns_keep_cents_exactly(platform):
    with platform.db.session() as session:
        acc = accounts.create_account(session, "exact")
        for _ in range(10):
            accounts.post_entry(session, acc, Decimal("0.10"), "topup", key=f"k{_}")
    with platform.db.session() as session:
        acc = session.scalar(select(Account).where(Account.name == "exact"))
        assert acc.balance == Decimal("1.00")  # ten float 0.1s would not be
        total = session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_id == acc.id))
        assert Decimal(total) == Decimal("1.00")
        with pytest.raises(MoneyError):
            accounts.post_entry(session, acc, 0.1, "topup", key="float")  # type: ignore[arg-type]


def test_topup_is_idempotent_and_positive(platform):
    with platform.db.session() as session:
        acc = accounts.create_account(session, "lab")
        assert accounts.top_up(session, acc, "50.00", key="pay-1") is not None
        assert accounts.top_up(session, acc, "50.00", key="pay-1") is None
        assert acc.balance == Decimal("50.00")
        with pytest.raises(InvalidRequest):
            accounts.top_up(session, acc, "-5", key="pay-2")
        assert accounts.ledger_mismatches(session) == []


def test_times_come_back_as_utc(platform):
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster))
        cluster.accounting_cursor = moment
    with platform.db.session() as session:
        back = session.scalar(select(Cluster)).accounting_cursor
    assert back == moment and back.tzinfo is not None and back.utcoffset() == timedelta(0)


def _job_with_record(platform, elapsed=3600, cpus=2, gpus=0):
    user_id, _ = add_user(platform, "carol")
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster))
        job = Job(owner_id=user_id, account_id=session.scalar(select(Account.id)),
                  cluster_id=cluster.id, partition="local", name="j", native_id="42", state="COMPLETED",
                  spec={}, script="#!/bin/bash\n", workdir="/w", stdout_path="/w/o", stderr_path="/w/o",
                  cores=cpus, gpus=gpus, time_limit_minutes=60, max_cost=Decimal("5"))
        session.add(job)
        session.flush()
        now = datetime.now(timezone.utc)
        row = UsageRecordRow(cluster_id=cluster.id, record_id="42", native_id="42", submit_time=now, job_id=job.id,
                             state="COMPLETED", start_time=now, end_time=now + timedelta(seconds=elapsed),
                             elapsed_seconds=elapsed, cpus=cpus, mem_mb=100, gpus=gpus, nodes=1, exit_code=0,
                             partition="local")
        session.add(row)
        session.flush()
        return job.id, row.id


def test_usage_record_is_unique_per_cluster_id_and_submit_time(platform):
    _, row_id = _job_with_record(platform)
    with pytest.raises(IntegrityError), platform.db.session() as session:
        row = session.get(UsageRecordRow, row_id)
        clone = UsageRecordRow(cluster_id=row.cluster_id, record_id=row.record_id, native_id="42",
                               submit_time=row.submit_time, state="COMPLETED", elapsed_seconds=1, cpus=1,
                               mem_mb=1, gpus=0, nodes=1)
        session.add(clone)
        session.flush()
    with platform.db.session() as session:  # a different submit time is a different record (a reused id)
        row = session.get(UsageRecordRow, row_id)
        session.add(UsageRecordRow(cluster_id=row.cluster_id, record_id=row.record_id, native_id="42",
                                   submit_time=row.submit_time + timedelta(days=30), state="COMPLETED",
                                   elapsed_seconds=1, cpus=1, mem_mb=1, gpus=0, nodes=1))


def test_a_record_is_charged_once(platform):
    job_id, row_id = _job_with_record(platform, elapsed=3600, cpus=2)
    with platform.db.session() as session:
        first = charge_record(session, session.get(UsageRecordRow, row_id))
        second = charge_record(session, session.get(UsageRecordRow, row_id))
    assert first is not None and second is None
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Charge.id))) == 1
        charge = session.scalar(select(Charge))
        assert charge.amount == Decimal("72.00")  # 2 core-hours at 36.00
        assert charge.core_seconds == 7200
        account = session.get(Account, charge.account_id)
        assert account.balance == Decimal("28.00")
        assert accounts.ledger_mismatches(session) == []


def test_concurrent_chargers_charge_once(platform):
    """Two replicas charging the same record at the same moment."""
    _, row_id = _job_with_record(platform, elapsed=1800, cpus=1)

    def attempt(_):
        try:
            with platform.db.session() as session:
                return charge_record(session, session.get(UsageRecordRow, row_id)) is not None
        except IntegrityError:
            return False

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert sum(results) >= 1
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Charge.id))) == 1
        assert session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "charge")) == 1
        assert accounts.ledger_mismatches(session) == []

"""Money, the double-entry ledger, holds, and charging exactly once."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from computenet.billing import funds, ledger
from computenet.billing.ledger import AlreadyResolved, InsufficientFunds, LedgerError
from computenet.billing.rating import rate
from computenet.domain.money import MoneyError, round_money, to_decimal
from computenet.services.tenancy import accounts
from computenet.services.billing.charging import charge_record, settle_job
from computenet.services.errors import InvalidRequest
from computenet.store.models import Account, Charge, Cluster, Job, LedgerAccount, Transfer, UsageRecordRow

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


@pytest.fixture
def lab(platform):
    with platform.db.session() as session:
        return accounts.create_account(session, "lab").id


def test_cents_stay_exact(platform, lab):
    with platform.db.session() as session:
        acc = session.get(Account, lab)
        for i in range(10):
            accounts.top_up(session, acc, "0.10", key=f"k{i}")
    with platform.db.session() as session:
        assert funds.funds(session, session.get(Account, lab)).balance == Decimal("1.00")  # ten float 0.1s would not be
        with pytest.raises(LedgerError):
            ledger.cents("0.001")
        with pytest.raises(MoneyError):
            ledger.cents(0.1)  # type: ignore[arg-type]


def test_topups_are_idempotent_positive_and_exact(platform, lab):
    with platform.db.session() as session:
        acc = session.get(Account, lab)
        assert accounts.top_up(session, acc, "50.00", key="pay-1") is not None
        assert accounts.top_up(session, acc, "50.00", key="pay-1") is None
        for bad in ("-5", "0", "abc", "1.001"):
            with pytest.raises(InvalidRequest):
                accounts.top_up(session, acc, bad, key=f"bad-{bad}")
        assert funds.funds(session, acc).balance == Decimal("50.00")
        assert ledger.invariant(session) == []


def test_a_key_cannot_be_reused_for_another_transfer(platform, lab):
    with platform.db.session() as session:
        acc = session.get(Account, lab)
        accounts.top_up(session, acc, "5.00", key="pay-9")
        with pytest.raises(InvalidRequest):
            accounts.top_up(session, acc, "7.00", key="pay-9")


def test_transfers_refuse_nonsense(platform, lab):
    with platform.db.session() as session:
        acc = session.get(Account, lab)
        me, cash = funds.customer(session, acc), funds.cash(session, "CNY")
        usd = ledger.ledger_account(session, ledger.CASH, currency="USD")
        for call, fragment in (
            (lambda: ledger.transfer(session, "n", cash, me, -1, "topup"), "negative"),
            (lambda: ledger.transfer(session, "s", me, me, 1, "topup"), "two different"),
            (lambda: ledger.transfer(session, "c", usd, me, 1, "topup"), "cannot move USD"),
        ):
            with pytest.raises(LedgerError) as err:
                call()
            assert fragment in str(err.value)
        assert session.scalar(select(func.count(Transfer.id))) == 0


def test_hold_post_void(platform, lab):
    with platform.db.session() as session:
        acc = session.get(Account, lab)
        accounts.top_up(session, acc, "10.00", key="t")
        me, rev = funds.customer(session, acc), funds.revenue(session, "hpc", "CNY")
        hold = ledger.transfer(session, "h1", me, rev, 600, "hold", pending=True, check_funds=True)
        f = funds.funds(session, acc)
        assert (f.balance, f.held, f.available) == (Decimal("10.00"), Decimal("6.00"), Decimal("4.00"))
        with pytest.raises(InsufficientFunds):
            ledger.transfer(session, "h2", me, rev, 401, "hold", pending=True, check_funds=True)
        with pytest.raises(LedgerError):
            ledger.resolve(session, "p-too-much", hold, 601)
        ledger.resolve(session, "p1", hold, 250)  # post 2.50, release 3.50
        assert ledger.resolve(session, "p1", hold, 250).amount == 250  # same key: same answer
        with pytest.raises(AlreadyResolved):
            ledger.resolve(session, "p2", hold, 0)
        f = funds.funds(session, acc)
        assert (f.balance, f.held, f.available) == (Decimal("7.50"), Decimal("0.00"), Decimal("7.50"))
        second = ledger.transfer(session, "h3", me, rev, 700, "hold", pending=True, check_funds=True)
        ledger.resolve(session, "v3", second, 0)  # void
        assert funds.funds(session, acc).available == Decimal("7.50")
        rev_row = session.get(LedgerAccount, rev.id)
        assert (rev_row.credits_posted, rev_row.credits_pending) == (250, 0)
        assert ledger.invariant(session) == []


def test_credit_line_lets_a_postpaid_account_go_below_zero(platform, lab):
    with platform.db.session() as session:
        acc = session.get(Account, lab)
        funds.set_credit_limit(session, acc, "100.00")
        me, rev = funds.customer(session, acc), funds.revenue(session, "ai", "CNY")
        hold = ledger.transfer(session, "h", me, rev, 8000, "hold", pending=True, check_funds=True)
        ledger.resolve(session, "p", hold, 8000)
        f = funds.funds(session, acc)
        assert (f.balance, f.available) == (Decimal("-80.00"), Decimal("20.00"))
        with pytest.raises(InsufficientFunds):
            ledger.transfer(session, "h2", me, rev, 2001, "hold", pending=True, check_funds=True)
        with pytest.raises(LedgerError):
            funds.set_credit_limit(session, acc, "-1")


def test_the_invariant_catches_tampering(platform, lab):
    with platform.db.session() as session:
        accounts.top_up(session, session.get(Account, lab), "3.00", key="t")
        assert ledger.invariant(session) == []
        session.execute(update(LedgerAccount).where(LedgerAccount.code == "customer")
                        .values(credits_posted=LedgerAccount.credits_posted + 1))
        problems = ledger.invariant(session)
        assert {p.what for p in problems} >= {"posted debits = posted credits"}
        assert any("customer" in p.what and p.expected == 300 and p.found == 301 for p in problems)
        session.rollback()


def test_times_come_back_as_utc(platform):
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    with platform.db.session() as session:
        session.scalar(select(Cluster)).accounting_cursor = moment
    with platform.db.session() as session:
        back = session.scalar(select(Cluster)).accounting_cursor
    assert back == moment and back.utcoffset() == timedelta(0)


def _job_with_record(platform, elapsed=3600, cpus=2, gpus=0, max_cost="80.00"):
    """A finished job on the local cluster with its hold and one final record."""
    user_id, _ = add_user(platform, "carol")
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster))
        account = session.scalar(select(Account))
        job = Job(owner_id=user_id, account_id=account.id, cluster_id=cluster.id, partition="local", name="j",
                  native_id="42", state="COMPLETED", spec={}, script="#!/bin/bash\n", workdir="/w", stdout_path="/w/o",
                  stderr_path="/w/o", cores=cpus, gpus=gpus, time_limit_minutes=60, max_cost=Decimal(max_cost))
        session.add(job)
        session.flush()
        funds.hold_for_job(session, job, account, Decimal(max_cost), "hpc")
        now = datetime.now(timezone.utc)
        row = UsageRecordRow(cluster_id=cluster.id, record_id="42", native_id="42", submit_time=now, job_id=job.id,
                             state="COMPLETED", start_time=now, end_time=now + timedelta(seconds=elapsed),
                             elapsed_seconds=elapsed, cpus=cpus, mem_mb=100, gpus=gpus, nodes=1, exit_code=0,
                             partition="local")
        session.add(row)
        session.flush()
        return job.id, row.id, account.id


def test_usage_record_is_unique_per_cluster_id_and_submit_time(platform):
    _, row_id, _ = _job_with_record(platform)
    with pytest.raises(IntegrityError), platform.db.session() as session:
        row = session.get(UsageRecordRow, row_id)
        session.add(UsageRecordRow(cluster_id=row.cluster_id, record_id=row.record_id, native_id="42",
                                   submit_time=row.submit_time, state="COMPLETED", elapsed_seconds=1, cpus=1,
                                   mem_mb=1, gpus=0, nodes=1))
        session.flush()
    with platform.db.session() as session:  # a different submit time is a different record (a reused id)
        row = session.get(UsageRecordRow, row_id)
        session.add(UsageRecordRow(cluster_id=row.cluster_id, record_id=row.record_id, native_id="42",
                                   submit_time=row.submit_time + timedelta(days=30), state="COMPLETED",
                                   elapsed_seconds=1, cpus=1, mem_mb=1, gpus=0, nodes=1))


def test_rate_then_settle_against_the_hold(platform):
    job_id, row_id, account_id = _job_with_record(platform, elapsed=3600, cpus=2, max_cost="80.00")
    with platform.db.session() as session:
        assert funds.funds(session, session.get(Account, account_id)).available == Decimal("20.00")
        first = charge_record(session, session.get(UsageRecordRow, row_id))
        assert charge_record(session, session.get(UsageRecordRow, row_id)) is None
        assert first.amount == Decimal("72.00") and first.core_seconds == 7200  # 2 core-hours at 36.00
        assert settle_job(session, session.get(Job, job_id)) and not settle_job(session, session.get(Job, job_id))
    with platform.db.session() as session:
        f = funds.funds(session, session.get(Account, account_id))
        assert (f.balance, f.held, f.available) == (Decimal("28.00"), Decimal("0.00"), Decimal("28.00"))
        assert session.scalar(select(Charge)).transfer_id is not None
        assert ledger.invariant(session) == []


def test_cost_above_the_hold_is_charged_as_an_overrun(platform):
    # Slurm lets a job run KillWait seconds past its limit: what ran is charged
    job_id, row_id, account_id = _job_with_record(platform, elapsed=3660, cpus=2, max_cost="72.00")
    with platform.db.session() as session:
        charge_record(session, session.get(UsageRecordRow, row_id))
        settle_job(session, session.get(Job, job_id))
        f = funds.funds(session, session.get(Account, account_id))
        assert f.balance == Decimal("100.00") - Decimal("73.20")
        kinds = sorted(t.kind for t in session.scalars(select(Transfer)))
        assert kinds == ["charge", "hold", "post", "topup"]
        assert ledger.invariant(session) == []


def test_concurrent_settlers_settle_once(platform):
    """Two replicas rating and settling the same job at the same moment."""
    job_id, row_id, account_id = _job_with_record(platform, elapsed=1800, cpus=1)

    def attempt(_):
        try:
            with platform.db.session() as session:
                charge_record(session, session.get(UsageRecordRow, row_id))
                return settle_job(session, session.get(Job, job_id))
        except (IntegrityError, AlreadyResolved):
            return False

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert sum(results) >= 1
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Charge.id))) == 1
        assert session.scalar(select(func.count(Transfer.id)).where(Transfer.kind == "post")) == 1
        assert funds.funds(session, session.get(Account, account_id)).balance == Decimal("82.00")
        assert ledger.invariant(session) == []


def test_interim_charges_above_the_final_cost_are_refunded(platform):
    job_id, row_id, account_id = _job_with_record(platform, elapsed=1800, cpus=2, max_cost="80.00")
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        assert funds.interim(session, job, Decimal("30.00")) is not None  # estimated while running
        assert funds.interim(session, job, Decimal("30.00")) is None  # nothing new since
        assert funds.interim(session, job, Decimal("40.00")).amount == 1000  # 10.00 more
        f = funds.funds(session, session.get(Account, account_id))
        assert (f.balance, f.held, f.available) == (Decimal("60.00"), Decimal("40.00"), Decimal("20.00"))
    with platform.db.session() as session:
        charge_record(session, session.get(UsageRecordRow, row_id))  # accounting: 1 core-hour = 36.00
        settle_job(session, session.get(Job, job_id))
        f = funds.funds(session, session.get(Account, account_id))
        assert (f.balance, f.held) == (Decimal("64.00"), Decimal("0.00"))  # 4.00 came back
        assert [t.kind for t in session.scalars(select(Transfer).where(Transfer.kind == "refund"))] == ["refund"]
        assert ledger.invariant(session) == []

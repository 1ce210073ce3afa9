"""No usage is rounded away: sub-cent amounts are carried per account until they make a cent.

Design (billing/ledger.py): charges are rated exactly, to a billionth
(Charge.exact_amount); the ledger still moves whole cents, and each customer
ledger account carries its unposted sub-cent usage (subcent_carry, under a
cent). Settling a job posts the cents of carry + its exact cost by the
configured rounding rule and leaves the rest in the carry; the transfer that
does so records the carry's change (Transfer.subcent), so the carry is always
the sum of immutable transfers and check-ledger verifies it.
"""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from computenet.billing import funds, ledger
from computenet.billing.rating import Prices, Rules, Usage, rate_usage
from computenet.billing.statements import statement
from computenet.config import BillingConfig, ClusterConfig, Price
from computenet.services.tenancy import accounts
from computenet.services.billing.charging import charge_record, settle_job
from computenet.store.models import Account, Charge, Cluster, Job, Transfer, UsageRecordRow

ONE = Decimal("1.00")  # a core-hour
TWELVE_S = Decimal(12) / Decimal(3600)  # 0.00333.. : a 12-second job on one core


def test_rating_keeps_what_is_below_a_cent():
    rated = rate_usage(Usage(12, 1), Prices(ONE))
    assert rated.amount == Decimal("0.00")  # the cent, as a single charge shows it
    assert rated.exact == Decimal("0.003333333")  # what is charged
    assert rate_usage(Usage(12, 1), Prices(ONE), Rules(minimum_charge=Decimal("0.05"))).exact == Decimal("0.05")
    assert rate_usage(Usage(0, 1), Prices(ONE), Rules(minimum_charge=Decimal("0.05"))).exact == Decimal("0")


@pytest.fixture
def cheap(make_platform):
    """A local cluster at 1.00 a core-hour, and a funded account."""
    platform = make_platform([ClusterConfig(name="local", kind="local", slots=4, mem_mb=8000, poll_interval_s=0.2,
                                            prices={"*": Price(core_hour=ONE)})])
    with platform.db.session() as session:
        user = accounts.create_user(session, "dora")
        acc = accounts.create_account(session, "dora-lab", owner=user)
        accounts.top_up(session, acc, "10.00", key=f"test:{uuid.uuid4()}")
        return platform, user.id, acc.id


def _short_jobs(platform, user_id, account_id, count: int, seconds: int = 12) -> list[int]:
    """``count`` finished one-core jobs of ``seconds`` each, held at a cent, each with its final record."""
    ids = []
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster))
        account = session.get(Account, account_id)
        now = datetime.now(timezone.utc)
        for i in range(count):
            job = Job(owner_id=user_id, account_id=account_id, cluster_id=cluster.id, partition="local", name="s",
                      native_id=str(1000 + i), state="COMPLETED", spec={}, script="#!/bin/bash\n", workdir="/w",
                      stdout_path="/w/o", stderr_path="/w/o", cores=1, gpus=0, time_limit_minutes=1,
                      max_cost=Decimal("0.02"))
            session.add(job)
            session.flush()
            funds.hold_for_job(session, job, account, Decimal("0.02"), "hpc")
            session.add(UsageRecordRow(cluster_id=cluster.id, record_id=str(1000 + i), native_id=str(1000 + i),
                                       submit_time=now, job_id=job.id, state="COMPLETED", start_time=now,
                                       end_time=now + timedelta(seconds=seconds), elapsed_seconds=seconds, cpus=1,
                                       mem_mb=0, gpus=0, nodes=1, exit_code=0, partition="local"))
            ids.append(job.id)
    return ids


def _rate_and_settle(platform, job_ids, billing=BillingConfig()):
    for job_id in job_ids:
        with platform.db.session() as session:
            row = session.scalar(select(UsageRecordRow).where(UsageRecordRow.job_id == job_id))
            charge_record(session, row, billing)
            assert settle_job(session, session.get(Job, job_id), billing)


def test_many_twelve_second_jobs_are_charged_what_they_used(cheap):
    platform, user_id, account_id = cheap
    jobs = _short_jobs(platform, user_id, account_id, 300)
    _rate_and_settle(platform, jobs)
    with platform.db.session() as session:
        account = session.get(Account, account_id)
        used = 300 * TWELVE_S  # 1.00 exactly
        f = funds.funds(session, account)
        assert f.balance == Decimal("10.00") - used.quantize(Decimal("0.01"))  # 300 x 12 s x 1.00/h = 1.00
        assert f.held == Decimal("0.00")
        exact = sum(c.exact_amount for c in session.scalars(select(Charge)))
        assert exact == 300 * Decimal("0.003333333") == Decimal("0.999999900")
        carry = funds.customer(session, account)
        session.refresh(carry)
        assert -ledger.NANO_PER_CENT // 2 <= carry.subcent_carry < ledger.NANO_PER_CENT // 2
        # what was posted plus what is carried is the usage, to the billionth
        posted = Decimal("10.00") - f.balance
        assert posted + Decimal(carry.subcent_carry) / 10**9 == Decimal("0.999999900")
        assert ledger.invariant(session) == []
        # the statement adds up to the cent, and says what is carried
        st = statement(session, account, datetime.now(timezone.utc).strftime("%Y-%m"))
        assert st.opening_balance + sum(line.amount for line in st.lines) == st.closing_balance == f.balance
        assert st.charges == posted
        assert st.charges + st.usage_carried == Decimal("0.999999900")


@pytest.mark.parametrize("rounding", ["half_up", "up", "down"])
def test_every_rounding_rule_charges_the_total_rounded_once(cheap, rounding):
    platform, user_id, account_id = cheap
    jobs = _short_jobs(platform, user_id, account_id, 40, seconds=30)  # 0.008333.. each, 0.333.. in all
    _rate_and_settle(platform, jobs, BillingConfig(rounding=rounding))
    with platform.db.session() as session:
        posted = Decimal("10.00") - funds.funds(session, session.get(Account, account_id)).balance
        assert posted == {"half_up": Decimal("0.33"), "up": Decimal("0.34"), "down": Decimal("0.33")}[rounding]
        assert ledger.invariant(session) == []


def test_settling_again_moves_no_carry(cheap):
    platform, user_id, account_id = cheap
    [job_id] = _short_jobs(platform, user_id, account_id, 1)
    _rate_and_settle(platform, [job_id])
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        first = funds.settle(session, job, Decimal("0.003333333"), "hpc")  # a replay: the same transfer back
        assert first.key.startswith("settle:") and first.subcent == 3_333_333
    with platform.db.session() as session:
        carry = funds.customer(session, session.get(Account, account_id))
        session.refresh(carry)
        assert carry.subcent_carry == 3_333_333
        assert session.scalar(select(func.count(Transfer.id)).where(Transfer.subcent.is_not(None))) == 1
        assert ledger.invariant(session) == []


def test_check_ledger_finds_a_carry_no_transfer_explains(cheap):
    platform, user_id, account_id = cheap
    _rate_and_settle(platform, _short_jobs(platform, user_id, account_id, 2))
    with platform.db.session() as session:
        carry = funds.customer(session, session.get(Account, account_id))
        carry.subcent_carry += 1
    with platform.db.session() as session:
        assert any("sub-cent carry" in v.what for v in ledger.invariant(session))


def test_a_late_record_is_charged_through_the_carry(cheap):
    platform, user_id, account_id = cheap
    [job_id] = _short_jobs(platform, user_id, account_id, 1)
    _rate_and_settle(platform, [job_id])
    with platform.db.session() as session:  # a second record after settlement (a requeued run)
        row = session.scalar(select(UsageRecordRow))
        late = UsageRecordRow(cluster_id=row.cluster_id, record_id="late", native_id=row.native_id,
                              submit_time=row.submit_time, job_id=job_id, state="COMPLETED",
                              start_time=row.start_time, end_time=row.end_time, elapsed_seconds=12, cpus=1, mem_mb=0,
                              gpus=0, nodes=1, exit_code=0, partition="local")
        session.add(late)
        session.flush()
        charge = charge_record(session, late)
        assert charge.exact_amount == Decimal("0.003333333") and charge.transfer_id is not None
    with platform.db.session() as session:
        carry = funds.customer(session, session.get(Account, account_id))
        session.refresh(carry)
        # two 12-second jobs make 0.0067: past half a cent, so a cent is posted and 0.0033 is owed back
        assert carry.subcent_carry == 6_666_666 - ledger.NANO_PER_CENT
        assert ledger.invariant(session) == []
        assert funds.funds(session, session.get(Account, account_id)).balance == Decimal("9.99")


def test_concurrent_settlements_share_one_carry(cheap):
    """Replicas settling jobs of one account at once: each sees the others' carry (row lock)."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy.exc import OperationalError

    platform, user_id, account_id = cheap
    jobs = _short_jobs(platform, user_id, account_id, 60)
    pending = {job_id for job_id in jobs}

    def settle(job_id):
        for _ in range(50):  # SQLite answers "database is locked" to a writer that waits too long
            try:
                _rate_and_settle(platform, [job_id])
                return True
            except OperationalError:
                continue
        return False

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(settle, sorted(pending)))
    with platform.db.session() as session:
        posted = Decimal("10.00") - funds.funds(session, session.get(Account, account_id)).balance
        assert posted == Decimal("0.20")  # 60 x 0.003333333 = 0.19999998, rounded once
        assert ledger.invariant(session) == []

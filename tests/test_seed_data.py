"""cnet seed-data: determinism, bad input, and the generated money passing the ledger's own checks."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from computenet.analytics import seed_db
from computenet.analytics.seed_data import SeedError, SeedSpec, generate
from computenet.billing import funds, ledger
from computenet.billing.rating import Prices, Rules, Strategy, Usage, rate_usage
from computenet.billing.statements import statement
from computenet.cli.main import app
from computenet.domain.resources import JobSpec
from computenet.store.models import Account, Charge, Job, LedgerAccount, Partition, Transfer, UsageRecordRow

SMALL = SeedSpec(year=2022, jobs=1_000, tenants=60, seed=5)


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


@pytest.fixture
def seeded(clean_db, small):
    seed_db.write(clean_db, small, batch=400)  # several batches, one transaction each
    return clean_db


def test_same_seed_same_year_other_seed_other_year(small):
    again = generate(SMALL)
    for table, columns in small.columns.items():
        for name, values in columns.items():
            assert np.array_equal(np.asarray(values, dtype=object), np.asarray(again.columns[table][name], dtype=object)), \
                (table, name)
    other = generate(SeedSpec(year=2022, jobs=1_000, tenants=60, seed=6))
    assert not np.array_equal(other.columns["jobs"]["submitted_at"], small.columns["jobs"]["submitted_at"])


@pytest.mark.parametrize("spec, words", [
    (SeedSpec(year=1999, jobs=10), "out of range"),
    (SeedSpec(year=2040, jobs=10), "out of range"),
    (SeedSpec(year=2022, jobs=0), "positive"),
    (SeedSpec(year=2022, jobs=-5), "positive"),
    (SeedSpec(year=2022, jobs=10, scale=0.1), "not both"),
    (SeedSpec(year=2022, scale=0.0), "(0, 1]"),
    (SeedSpec(year=2022, scale=2.0), "(0, 1]"),
    (SeedSpec(year=2022, jobs=10, tenants=3), "at least 10"),
    (SeedSpec(year=2022, jobs=10, seed=-1), "non-negative"),
    (SeedSpec(year=2022, jobs=500, tenants=12), "too few"),
])
def test_bad_input_is_refused_with_the_reason(spec, words):
    with pytest.raises(SeedError, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        generate(spec)


def test_cli_requires_a_year_and_refuses_a_second_copy(clean_db, db_url):
    runner = CliRunner()
    result = runner.invoke(app, ["seed-data", "--jobs", "10"])
    assert result.exit_code == 1 and "--year is required" in result.output
    args = ["seed-data", "--year", "2021", "--jobs", "300", "--tenants", "40", "--db", db_url]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 1 and "already holds seed data for 2021" in second.output
    with clean_db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 300


def test_generated_ledger_passes_the_invariant_and_holds_are_resolved(seeded):
    with seeded.session() as session:
        assert ledger.invariant(session) == []
        pending = session.execute(select(func.sum(LedgerAccount.debits_pending),
                                         func.sum(LedgerAccount.credits_pending))).one()
        assert tuple(int(v or 0) for v in pending) == (0, 0)
        open_holds = session.scalar(select(func.count()).select_from(Transfer).where(
            Transfer.pending, ~Transfer.id.in_(select(Transfer.pending_id).where(Transfer.pending_id.is_not(None)))))
        assert open_holds == 0
        # every job: a hold at submission, resolved at settlement by the transfer its charge names
        jobs = session.scalar(select(func.count()).select_from(Job))
        posts = session.scalar(select(func.count()).select_from(Charge).join(Transfer, Transfer.id == Charge.transfer_id)
                               .join(Job, Job.id == Charge.job_id).where(Transfer.pending_id == Job.hold_id))
        assert jobs == posts == SMALL.jobs


def test_charges_are_what_the_rating_path_gives(seeded):
    with seeded.session() as session:
        rows = session.execute(select(Charge, UsageRecordRow, Partition).join(
            UsageRecordRow, UsageRecordRow.id == Charge.usage_record_id).join(
            Partition, (Partition.cluster_id == UsageRecordRow.cluster_id) & (Partition.name == UsageRecordRow.partition))
            .limit(400)).all()
        assert rows
        for charge, usage, part in rows:
            rules = Rules(strategy=Strategy(part.billing_strategy),
                          cores_per_gpu=part.cores_per_node // part.gpus_per_node if part.gpus_per_node else 0)
            rated = rate_usage(Usage(usage.elapsed_seconds, usage.cpus, usage.gpus, usage.mem_mb),
                               Prices(charge.price_core_hour, charge.price_gpu_hour), rules)
            assert (rated.amount, rated.core_seconds, rated.gpu_seconds) == \
                (charge.amount, charge.core_seconds, charge.gpu_seconds)
        specs = session.scalars(select(Job.spec).limit(50)).all()
        assert all(JobSpec.model_validate(spec) for spec in specs)


def test_no_account_ever_spent_more_than_it_had(seeded):
    """Replay each customer's ledger in time order: prepaid never below zero, postpaid within its line."""
    with seeded.session() as session:
        customers = {la.id: la.credit_limit for la in session.scalars(
            select(LedgerAccount).where(LedgerAccount.code == "customer"))}
        moves = session.execute(select(Transfer.debit_id, Transfer.credit_id, Transfer.amount, Transfer.kind,
                                       Transfer.pending_id, Transfer.created_at, Transfer.id)
                                .order_by(Transfer.created_at, Transfer.id)).all()
        holds = {t.id: t.amount for t in session.scalars(select(Transfer).where(Transfer.pending))}
    available = defaultdict(int)
    lowest = {}
    for debit, credit, amount, kind, pending_id, _, _ in moves:
        if credit in customers:
            available[credit] += amount
        if debit in customers:
            available[debit] -= amount if kind != "post" and kind != "void" else amount - holds[pending_id]
            lowest[debit] = min(lowest.get(debit, 0), available[debit] + customers[debit])
    assert lowest and min(lowest.values()) >= 0
    assert any(limit > 0 for limit in customers.values())  # some are postpaid
    assert sum(1 for limit in customers.values() if limit == 0) > sum(1 for v in customers.values() if v > 0)


def test_statements_and_balances_read_seeded_rows(seeded):
    with seeded.session() as session:
        account = session.scalar(select(Account).join(Job, Job.account_id == Account.id).group_by(Account.id)
                                 .order_by(func.count(Job.id).desc()).limit(1))
        months = [statement(session, account, f"2022-{m:02d}") for m in range(1, 13)]
        charged = session.scalar(select(func.sum(Charge.amount)).where(Charge.account_id == account.id))
        assert sum((s.charges for s in months), Decimal(0)) == charged
        jobs = session.execute(select(Job.submitted_at, Job.settled_at, Job.max_cost)
                               .where(Job.account_id == account.id)).all()
        for m, (before, after) in enumerate(zip(months, months[1:]), start=2):
            assert after.opening_balance == before.closing_balance
            # holds open at the close: jobs submitted before it and settled after (queued or running)
            close = datetime(2022 + m // 12, m % 12 + 1, 1, tzinfo=timezone.utc)
            assert after.held_at_close == sum((j.max_cost for j in jobs if j.submitted_at < close <= j.settled_at),
                                              Decimal("0.00"))
        assert months[-1].held_at_close == Decimal("0.00")  # every job is settled within the year
        balance = funds.funds(session, account)
        assert balance.balance == months[-1].closing_balance
        assert balance.available >= 0


def test_replace_regenerates_the_year_exactly(seeded, small):
    with seeded.session() as session:
        before = session.execute(select(func.count(Job.id), func.sum(Charge.amount)).join(
            Charge, Charge.job_id == Job.id)).one()
    with pytest.raises(SeedError, match="already holds seed data for 2022"):
        seed_db.write(seeded, small)
    seed_db.write(seeded, small, replace=True)
    with seeded.session() as session:
        assert ledger.invariant(session) == []
        after = session.execute(select(func.count(Job.id), func.sum(Charge.amount)).join(
            Charge, Charge.job_id == Job.id)).one()
        revenue = session.scalar(select(func.sum(LedgerAccount.credits_posted - LedgerAccount.debits_posted))
                                 .where(LedgerAccount.code == "revenue"))
    assert tuple(after) == tuple(before)
    assert Decimal(revenue) / 100 == after[1]  # the old year's revenue left the shared accounts with it


def test_a_database_with_real_jobs_is_never_seeded(platform, small):
    """Synthetic charges would mix into a real operator's revenue and statements: refused, and
    nothing is written."""
    from conftest import add_user

    from computenet.store.models import Cluster

    user_id, _ = add_user(platform, "real")
    with platform.db.session() as session:
        account = session.scalar(select(Account).where(Account.name == "real-lab"))
        cluster = session.scalar(select(Cluster))
        session.add(Job(owner_id=user_id, account_id=account.id,
                        cluster_id=cluster.id, partition="local", name="real", state="COMPLETED", spec={},
                        script="", workdir="", stdout_path="", stderr_path="", cores=1))
    with pytest.raises(SeedError, match="1 jobs that are not seed data"):
        seed_db.write(platform.db, small)
    with platform.db.session() as session:  # a real cluster whose name merely looks like a seed one
        session.scalar(select(Cluster)).name = "sugon-east"
    with pytest.raises(SeedError, match="1 jobs that are not seed data"):
        seed_db.write(platform.db, small)
    with platform.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
        assert session.scalar(select(func.count()).select_from(Transfer)) == 1  # the real top-up, nothing more

"""Bulk rating and posting agree with the per-record path, to the cent."""

import random
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from computenet.billing import batch, funds, ledger
from computenet.billing.rating import Prices, Usage, rate_usage
from computenet.billing.statements import statement, statements_for_month
from computenet.services.tenancy import accounts
from computenet.store.models import Account, Transfer


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 86400), st.integers(0, 512), st.integers(0, 16),
                          st.decimals("0", "100", places=6), st.decimals("0", "100", places=6)),
                min_size=1, max_size=50))
def test_vectorised_rating_equals_decimal_rating(rows):
    elapsed, cpus, gpus, core, gpu = (list(c) for c in zip(*rows))
    cents = batch.rate_cents(np.array(elapsed), np.array(cpus), np.array(gpus), batch.to_micro(core),
                             batch.to_micro(gpu))
    for i, row in enumerate(rows):
        expected = rate_usage(Usage(row[0], row[1], row[2]), Prices(row[3], row[4])).amount
        assert Decimal(int(cents[i])) / 100 == expected


def test_rating_refuses_overflow_and_negatives():
    with pytest.raises(OverflowError):
        batch.rate_cents(np.array([10**9]), np.array([10**4]), np.array([0]), batch.to_micro([Decimal("100")]),
                         batch.to_micro([Decimal("0")]))
    with pytest.raises(ValueError):
        batch.rate_cents(np.array([-1]), np.array([1]), np.array([0]), batch.to_micro([Decimal("1")]),
                         batch.to_micro([Decimal("0")]))


def test_post_many_keeps_the_books_and_is_all_or_nothing(platform):
    rng = random.Random(7)
    with platform.db.session() as session:
        accs = [accounts.create_account(session, f"bulk{i}") for i in range(20)]
        customers = [funds.customer(session, a) for a in accs]
        cash, rev = funds.cash(session, "CNY"), funds.revenue(session, "hpc", "CNY")
        postings = [batch.Posting(f"in:{i}", cash.id, c.id, 100_000, "topup") for i, c in enumerate(customers)]
        postings += [batch.Posting(f"use:{n}", rng.choice(customers).id, rev.id, rng.randint(0, 5_000))
                     for n in range(3_000)]
        assert batch.post_many(session, postings, chunk=500) == 3_020
        assert ledger.invariant(session) == []
        assert batch.existing_keys(session, ["use:5", "nope"]) == {"use:5"}
    with pytest.raises(IntegrityError), platform.db.session() as session:  # a reused key fails the batch
        batch.post_many(session, [batch.Posting("fresh", cash.id, rev.id, 1), batch.Posting("use:5", cash.id, rev.id, 1)])
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Transfer.id))) == 3_020
        assert ledger.invariant(session) == []


def test_month_statements_equal_one_by_one(platform):
    from datetime import datetime, timezone

    with platform.db.session() as session:
        accs = [accounts.create_account(session, f"st{i}") for i in range(5)]
        for i, acc in enumerate(accs):
            accounts.top_up(session, acc, f"{10 + i}.00", key=f"t{i}")
        rev = funds.revenue(session, "ai", "CNY")
        batch.post_many(session, [batch.Posting(f"c{i}", funds.customer(session, a).id, rev.id, 123 * (i + 1))
                                  for i, a in enumerate(accs)])
        month = datetime.now(timezone.utc).strftime("%Y-%m")
        together = statements_for_month(session, month)
        for acc in accs:
            alone = statement(session, acc, month)
            assert together[acc.name] == alone
            assert alone.closing_balance == alone.opening_balance + alone.top_ups - alone.charges
        assert together["st2"].charges == Decimal("3.69") and together["st2"].by_product_line == {"ai": Decimal("3.69")}
        quiet = accounts.create_account(session, "quiet")
        assert statement(session, quiet, month).closing_balance == 0

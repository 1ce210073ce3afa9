"""Racing for the last yuan, and random sequences of money movements."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from computenet.billing import funds, ledger
from computenet.store.models import Account, Job, Transfer

from conftest import add_user


def test_500_concurrent_submissions_admit_exactly_what_the_account_covers(platform, server):
    # each job may cost 1 core x 1 min x 36.00/h = 0.60; 60.00 covers exactly 100
    _, token = add_user(platform, "rush", balance="60.00")
    body = {"script": "#!/bin/bash\n#SBATCH -c 1 -t 1 -H\ntrue\n", "args": []}
    headers = {"Authorization": f"Bearer {token}"}

    def submit(_):
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            return client.post("/jobs", json=body).status_code

    with ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(submit, range(500)))
    assert codes.count(202) == 100 and codes.count(402) == 400, {c: codes.count(c) for c in set(codes)}
    with platform.db.session() as session:
        account = session.scalar(select(Account).where(Account.name == "rush-lab"))
        f = funds.funds(session, account)
        assert (f.balance, f.held, f.available) == (Decimal("60.00"), Decimal("60.00"), Decimal("0.00"))
        assert session.scalar(select(func.count(Job.id))) == 100
        assert session.scalar(select(func.count(Transfer.id)).where(Transfer.kind == "hold")) == 100
        assert ledger.invariant(session) == []


# -- property: random sequences of money movements ----------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from sqlalchemy import text  # noqa: E402

from computenet.billing.ledger import AlreadyResolved, InsufficientFunds  # noqa: E402

from conftest import TABLES_IN_DELETE_ORDER  # noqa: E402

ACCOUNTS = 3
amounts = st.integers(min_value=0, max_value=50_000)  # cents
operations = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.integers(0, ACCOUNTS - 1), amounts.filter(lambda a: a > 0)),
        st.tuples(st.just("hold"), st.integers(0, ACCOUNTS - 1), amounts),
        st.tuples(st.just("post"), st.integers(0, 30), st.integers(0, 60_000)),
        st.tuples(st.just("void"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("charge"), st.integers(0, ACCOUNTS - 1), amounts),
        st.tuples(st.just("credit"), st.integers(0, ACCOUNTS - 1), st.integers(0, 20_000)),
        st.tuples(st.just("replay"), st.integers(0, 30), st.just(0)),
        # exactly what is available, or a cent more: the boundary must be exact
        st.tuples(st.just("edge"), st.integers(0, ACCOUNTS - 1), st.integers(0, 1)),
    ),
    min_size=1, max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_random_money_movements_keep_the_books_balanced(database, ops):
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE users SET default_account_id = NULL"))
        conn.execute(text("UPDATE jobs SET hold_id = NULL"))
        for table in TABLES_IN_DELETE_ORDER:
            conn.execute(text(f"DELETE FROM {table}"))
    with database.session() as session:
        accs = [Account(name=f"acct{i}", currency="CNY") for i in range(ACCOUNTS)]
        session.add_all(accs)
        session.flush()
        me = [funds.customer(session, a) for a in accs]
        rev, cash = funds.revenue(session, "hpc", "CNY"), funds.cash(session, "CNY")
        # the model: posted balance, held, credit limit per account; open holds
        posted, held, limit = [0] * ACCOUNTS, [0] * ACCOUNTS, [0] * ACCOUNTS
        holds: list[tuple[Transfer, int, bool]] = []  # (transfer, account index, open)
        done: list[tuple[str, object]] = []
        for step, (op, who, amount) in enumerate(ops):
            key = f"k{step}"
            if op == "edge":
                op, amount = "hold", max(0, posted[who] + limit[who] - held[who] + amount)
            if op == "topup":
                ledger.transfer(session, key, cash, me[who], amount, "topup")
                posted[who] += amount
            elif op == "hold":
                if posted[who] + limit[who] - held[who] >= amount:
                    t = ledger.transfer(session, key, me[who], rev, amount, "hold", pending=True, check_funds=True)
                    held[who] += amount
                    holds.append((t, who, True))
                else:
                    try:
                        ledger.transfer(session, key, me[who], rev, amount, "hold", pending=True, check_funds=True)
                        raise AssertionError("a hold beyond the available funds was admitted")
                    except InsufficientFunds:
                        pass
            elif op in ("post", "void") and holds:
                index = who % len(holds)
                t, owner, is_open = holds[index]
                value = 0 if op == "void" else min(amount, t.amount)
                if is_open:
                    ledger.resolve(session, key, t, value)
                    held[owner] -= t.amount
                    posted[owner] -= value
                    holds[index] = (t, owner, False)
                    done.append((key, (t, value)))
                else:
                    try:
                        ledger.resolve(session, key, t, value)
                        raise AssertionError("a hold was resolved twice")
                    except AlreadyResolved:
                        pass
            elif op == "charge":  # usage posted outside a hold may overdraw (it happened)
                ledger.transfer(session, key, me[who], rev, amount, "charge")
                posted[who] -= amount
            elif op == "credit":
                funds.set_credit_limit(session, accs[who], Decimal(amount) / 100)
                limit[who] = amount
            elif op == "replay" and done:  # a retried request with the same key changes nothing
                key0, (t, value) = done[who % len(done)]
                ledger.resolve(session, key0, t, value)
            for i, account in enumerate(accs):
                f = funds.funds(session, account)
                assert (ledger.cents(f.balance), ledger.cents(f.held), ledger.cents(f.credit_limit)) == (
                    posted[i], held[i], limit[i])
                assert f.available == f.balance + f.credit_limit - f.held
            assert ledger.invariant(session) == []

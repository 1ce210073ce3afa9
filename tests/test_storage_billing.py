"""Storage GB-days: priced per site in the price book, charged once per account, site and day."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from computenet.billing import funds, ledger, pricebook
from computenet.billing.ledger import LedgerError
from computenet.billing.statements import statement
from computenet.billing.storage import StorageError, charge_day
from computenet.services.tenancy import accounts
from computenet.store.models import Cluster

from conftest import add_user, local_cluster

D = Decimal


def test_storage_day_is_charged_once_at_the_price_of_that_day(make_platform):
    platform = make_platform([local_cluster(storage_gb_day=D("0.002"))])
    add_user(platform, "sue", balance="10.00")
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        account = accounts.get_account(session, "sue-lab")
        today = date.today()
        first = charge_day(session, account, cluster.id, today, D("512.5"))  # 1.025 -> 1.03 (half up)
        again = charge_day(session, account, cluster.id, today, D("512.5"))  # measured again: same charge
        assert first.id == again.id and first.amount == 103
        with pytest.raises(LedgerError):
            charge_day(session, account, cluster.id, today, D("600"))  # a different figure for a charged day
        assert charge_day(session, account, cluster.id, date(2020, 1, 2), D("0.1")) is None  # rounds to 0.00
        # a new price applies from now, not to days already charged
        pricebook.set_price(session, cluster.id, "*", pricebook.STORAGE, D("0.004"))
        assert pricebook.storage_price(session, cluster.id, first.created_at) == D("0.002")
        for bad in (D("-1"), D("NaN"), 5.0):
            with pytest.raises(StorageError):
                charge_day(session, account, cluster.id, today, bad)
        assert funds.funds(session, account).balance == D("8.97")
        lines = statement(session, account, today.strftime("%Y-%m"))
        assert lines.by_product_line["storage"] == D("1.03") and lines.charges == D("1.03")
        (line,) = lines.lines[1:]  # after the top-up
        assert line.amount == D("-1.03") and line.job_id is None and "512.5 GB" in line.memo
        assert ledger.invariant(session) == []


def test_a_site_without_a_storage_price_refuses(platform):
    add_user(platform, "tom")
    with platform.db.session() as session:
        cluster = session.scalar(select(Cluster).where(Cluster.name == "local"))
        with pytest.raises(StorageError, match="no storage price"):
            charge_day(session, accounts.get_account(session, "tom-lab"), cluster.id, date.today(), D("1"))

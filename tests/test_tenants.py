"""Tenants, projects, members with roles and limits, contracts, moving money."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from computenet.billing import funds, ledger
from computenet.billing.rating import Usage
from computenet.client import ApiError, ComputeNetClient
from computenet.config import BillingConfig
from computenet.services.tenancy import accounts, tenants
from computenet.services.errors import InsufficientFunds, InvalidRequest
from computenet.services.billing.pricing import quote
from computenet.store.models import Account, Partition, User

D = Decimal


@pytest.fixture
def org(platform):
    """Tsinghua-like tenant with a funded wallet, one project, a PI and a student."""
    with platform.db.session() as session:
        tenant = tenants.create_tenant(session, "uni", "university")
        pi = accounts.create_user(session, "pi")
        student = accounts.create_user(session, "student")
        project = tenants.create_project(session, tenant, "md-lab", pi)
        tenants.set_member(session, project, student, spend_limit="1.00")
        wallet = accounts.get_account(session, "uni")
        accounts.top_up(session, wallet, "500.00", key="uni:grant")
        tenants.move(session, wallet, project, "100.00", key="uni:to-md", actor="test")
        tokens = {u.name: accounts.issue_token(session, u) for u in (pi, student)}
        return {"tenant_id": tenant.id, "tokens": tokens}


def client(server, token):
    return ComputeNetClient(server.url, token)


def test_tenant_wallet_project_and_moves(platform, org):
    with platform.db.session() as session:
        wallet, project = accounts.get_account(session, "uni"), accounts.get_account(session, "md-lab")
        assert (wallet.kind, project.kind, project.tenant_id) == ("tenant", "project", org["tenant_id"])
        assert funds.funds(session, wallet).balance == D("400.00")
        assert funds.funds(session, project).balance == D("100.00")
        again = tenants.move(session, wallet, project, "100.00", key="uni:to-md", actor="test")  # same key
        assert funds.funds(session, wallet).balance == D("400.00") and again.kind == "transfer"
        with pytest.raises(InsufficientFunds):
            tenants.move(session, wallet, project, "400.01", key="too-much", actor="test")
        other_tenant = tenants.create_tenant(session, "corp", "enterprise")
        for args, fragment in ((("-1",), "positive"), (("abc",), "not an amount"), (("1.001",), "decimal places")):
            with pytest.raises(InvalidRequest) as err:
                tenants.move(session, wallet, project, *args, key=f"bad{args}", actor="test")
            assert fragment in str(err.value)
        with pytest.raises(InvalidRequest):
            tenants.move(session, wallet, accounts.get_account(session, "corp"), "1", key="x", actor="t")
        with pytest.raises(InvalidRequest):
            tenants.create_tenant(session, "odd", "martians")
        assert other_tenant.segment == "enterprise"
        assert ledger.invariant(session) == []


def test_contract_discount_and_unit_price(platform, org):
    with platform.db.session() as session:
        tenant = tenants.get_tenant(session, "uni")
        part = session.scalar(select(Partition))
        usage = Usage(3600, 2, 1)  # 2 core-hours at 36.00, 1 GPU-hour at 90.00 = 162.00 list
        assert quote(session, part, usage, ledger_now(), BillingConfig()).amount == D("162.00")
        tenants.add_contract(session, tenant, discount_percent=D("20"))
        assert quote(session, part, usage, ledger_now(), BillingConfig(), tenant_id=tenant.id).amount == D("129.60")
        tenants.add_contract(session, tenant, resource="gpu_hour", unit_price=D("50.00"), partition="local")
        # the GPU unit price (more specific) replaces; cores keep the 20 % discount
        assert quote(session, part, usage, ledger_now(), BillingConfig(), tenant_id=tenant.id).amount == D("107.60")
        for bad in ({}, {"unit_price": D("1"), "discount_percent": D("1")}, {"discount_percent": D("120")},
                    {"unit_price": D("1")}, {"resource": "disk", "discount_percent": D("1")}):
            with pytest.raises(InvalidRequest):
                tenants.add_contract(session, tenant, **bad)


def ledger_now():
    from computenet.store.types import utcnow
    return utcnow()


def test_holds_use_contract_prices(platform, server, org):
    with platform.db.session() as session:
        tenants.add_contract(session, tenants.get_tenant(session, "uni"), discount_percent=D("50"))
    with client(server, org["tokens"]["pi"]) as pi:
        job = pi.submit("#!/bin/bash\n#SBATCH -c 1 -t 10\ntrue\n")
        assert job.account == "md-lab" and job.max_cost == D("3.00")  # 6.00 at list price


def test_member_spending_limit(platform, server, org):
    with client(server, org["tokens"]["student"]) as student:
        ok = student.submit("#!/bin/bash\n#SBATCH -c 1 -t 1\ntrue\n", ["-A", "md-lab"])  # may cost 0.60
        with pytest.raises(ApiError) as err:
            student.submit("#!/bin/bash\n#SBATCH -c 1 -t 1\ntrue\n", ["-A", "md-lab"])  # 1.20 > 1.00
        assert err.value.status == 402 and "monthly spending limit" in err.value.detail
        assert ok.max_cost == D("0.60")
    with client(server, org["tokens"]["pi"]) as pi:  # the PI has no limit
        pi.submit("#!/bin/bash\n#SBATCH -c 1 -t 1\ntrue\n")


def test_a_user_who_left_cannot_spend(platform, server, org):
    with platform.db.session() as session:
        tenants.remove_member(session, accounts.get_account(session, "md-lab"), accounts.get_user(session, "student"))
    with client(server, org["tokens"]["student"]) as student:
        for args in ([], ["-A", "md-lab"]):
            with pytest.raises(ApiError) as err:
                student.submit("#!/bin/bash\ntrue\n", args)
            assert err.value.status == 400


def test_who_sees_which_statement(platform, server, org):
    with platform.db.session() as session:
        admin = accounts.create_user(session, "uni-admin")
        admin.role, admin.tenant_id = "tenant_admin", org["tenant_id"]
        finance = accounts.create_user(session, "fin")
        finance.role = "finance"
        outsider = accounts.create_user(session, "outsider")
        tokens = {u.name: accounts.issue_token(session, u) for u in (admin, finance, outsider)}
    for name, visible in (("uni-admin", True), ("fin", True), ("outsider", False)):
        with client(server, tokens[name]) as c:
            if visible:
                assert c.statement("md-lab", "2026-11")["account"] == "md-lab"
            else:
                with pytest.raises(ApiError) as err:
                    c.statement("md-lab", "2026-11")
                assert err.value.status == 404

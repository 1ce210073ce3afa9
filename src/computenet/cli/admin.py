"""`cnet admin`: operator commands that work on the database directly."""

from __future__ import annotations

import uuid
from typing import Optional

import typer
from rich.console import Console

from ..config import load_settings
from ..billing import funds
from ..billing.ledger import LedgerError
from ..services import accounts, tenants
from ..services.errors import InvalidRequest, ServiceError
from ..services.platform import Platform

admin_app = typer.Typer(no_args_is_help=True, help="Operator commands (run on the server host).")
console = Console()


def _platform() -> Platform:
    platform = Platform(load_settings())
    platform.start()
    return platform


def _run(step):
    try:
        return step()
    except ServiceError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)


@admin_app.command("init")
def init() -> None:
    """Create or upgrade the database and register the configured clusters."""
    platform = _platform()
    console.print(f"database ready: {platform.db.engine.url.render_as_string(hide_password=True)}")


@admin_app.command("user-add")
def user_add(name: str,
             account: Optional[str] = typer.Option(None, help="create this account and make it the user's default"),
             balance: Optional[str] = typer.Option(None, help="prepaid amount put on the new account"),
             admin: bool = typer.Option(False, help="platform operator"),
             save_login: bool = typer.Option(False, help="save URL and token for this shell user's `cnet`")) -> None:
    """Create a user (and optionally an account) and print an API token."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            user = accounts.create_user(session, name, is_admin=admin)
            if account:
                acc = accounts.create_account(session, account, owner=user, currency=platform.settings.currency)
                if balance:
                    accounts.top_up(session, acc, balance, key=f"initial:{acc.name}")
            return accounts.issue_token(session, user, "cli")

    token = _run(step)
    console.print(f"user {name} created; API token (shown once):\n{token}")
    if save_login:
        from .main import save_login as save

        url = f"http://{platform.settings.server.host}:{platform.settings.server.port}"
        console.print(f"saved login for {url} in {save(url, token)}")


@admin_app.command("token")
def token(name: str) -> None:
    """Issue another API token for a user."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            return accounts.issue_token(session, accounts.get_user(session, name), "cli")

    console.print(_run(step))


@admin_app.command("topup")
def topup(account: str, amount: str,
          key: Optional[str] = typer.Option(None, help="idempotency key (e.g. the payment reference)")) -> None:
    """Credit a prepaid account. The same --key twice credits once."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            entry = accounts.top_up(session, acc, amount, key=key or f"topup:{uuid.uuid4()}", actor="admin-cli")
            return entry, funds.funds(session, acc)

    entry, now = _run(step)
    console.print(("credited" if entry else "already credited under that key")
                  + f"; balance {now.balance} {now.currency}, available {now.available}")


@admin_app.command("credit-limit")
def credit_limit(account: str, amount: str) -> None:
    """Let a postpaid account go this far below zero."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            try:
                funds.set_credit_limit(session, acc, amount)
            except LedgerError as exc:
                raise InvalidRequest(str(exc)) from None
            return funds.funds(session, acc)

    now = _run(step)
    console.print(f"{account}: credit limit {now.credit_limit}, available {now.available} {now.currency}")


@admin_app.command("check-ledger")
def check_ledger() -> None:
    """Verify the ledger: debits equal credits, balances equal their transfers."""
    platform = _platform()
    with platform.db.session() as session:
        bad = accounts.ledger_problems(session)
    if bad:
        for v in bad:
            console.print(f"[red]{v.what}: expected {v.expected}, found {v.found}[/]")
        raise typer.Exit(1)
    console.print("ledger consistent: debits equal credits, every balance equals its transfers")


@admin_app.command("tenant-add")
def tenant_add(name: str, segment: str = typer.Option(..., help="university, research_institute, enterprise, "
                                                                "government or individual")) -> None:
    """Create a customer organisation (with its own wallet account of the same name)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            tenants.create_tenant(session, name, segment)

    _run(step)
    console.print(f"tenant {name} ({segment}) created, wallet account {name}")


@admin_app.command("project-add")
def project_add(tenant: str, name: str, pi: Optional[str] = typer.Option(None, help="the project's PI (a user)")) -> None:
    """Create a project account under a tenant."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            t = tenants.get_tenant(session, tenant)
            tenants.create_project(session, t, name, accounts.get_user(session, pi) if pi else None)

    _run(step)
    console.print(f"project {name} created under {tenant}")


@admin_app.command("member-set")
def member_set(account: str, user: str, role: str = typer.Option("member", help="member or pi"),
               limit: Optional[str] = typer.Option(None, help="monthly spending limit on this account")) -> None:
    """Add a member to an account, or change their role and monthly spending limit."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            tenants.set_member(session, accounts.get_account(session, account), accounts.get_user(session, user),
                               role, limit)

    _run(step)
    console.print(f"{user} is {role} of {account}" + (f", limit {limit} a month" if limit else ""))


@admin_app.command("member-remove")
def member_remove(account: str, user: str) -> None:
    """Take a user off an account: no new jobs on it (running ones finish and are charged)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            tenants.remove_member(session, accounts.get_account(session, account), accounts.get_user(session, user))

    _run(step)
    console.print(f"{user} removed from {account}")


@admin_app.command("move")
def move(source: str, target: str, amount: str,
         key: Optional[str] = typer.Option(None, help="idempotency key (the same key moves once)")) -> None:
    """Move money between two accounts of one tenant (e.g. its wallet to a project)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            tenants.move(session, accounts.get_account(session, source), accounts.get_account(session, target),
                         amount, key or f"move:{uuid.uuid4()}", actor="admin-cli")

    _run(step)
    console.print(f"moved {amount} from {source} to {target}")


@admin_app.command("contract-add")
def contract_add(tenant: str,
                 discount: Optional[str] = typer.Option(None, help="percent off the list price"),
                 price: Optional[str] = typer.Option(None, help="a unit price that replaces the list price"),
                 resource: str = typer.Option("*", help="core_hour, gpu_hour, mem_gb_hour or * (discounts)"),
                 cluster: Optional[str] = typer.Option(None), partition: str = typer.Option("*"),
                 reason: str = typer.Option("", help="why (kept with the contract)")) -> None:
    """Give a tenant contract prices: a discount, or a unit price for one resource."""
    from decimal import Decimal, InvalidOperation

    from sqlalchemy import select

    from ..store.models import Cluster

    platform = _platform()

    def number(text: Optional[str], what: str):
        if text is None:
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            raise InvalidRequest(f"{what} {text!r} is not a number") from None

    def step():
        with platform.db.session() as session:
            cluster_id = None
            if cluster:
                cluster_id = session.scalar(select(Cluster.id).where(Cluster.name == cluster))
                if cluster_id is None:
                    raise InvalidRequest(f"unknown cluster {cluster!r}")
            tenants.add_contract(session, tenants.get_tenant(session, tenant), cluster_id=cluster_id,
                                 partition=partition, resource=resource, unit_price=number(price, "price"),
                                 discount_percent=number(discount, "discount"), actor="admin-cli", reason=reason)

    _run(step)
    console.print(f"contract added for {tenant}")

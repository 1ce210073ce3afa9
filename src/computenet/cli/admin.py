"""`cnet admin`: operator commands that work on the database directly."""

from __future__ import annotations

import uuid
from typing import Optional

import typer
from rich.console import Console

from ..config import load_settings
from ..billing import funds
from ..billing.ledger import LedgerError
from ..services import accounts
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


@admin_app.command("member-add")
def member_add(account: str, user: str) -> None:
    """Let a user charge jobs to an account."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            accounts.add_member(session, accounts.get_account(session, account), accounts.get_user(session, user))

    _run(step)
    console.print(f"{user} can now use account {account}")


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

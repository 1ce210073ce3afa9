"""`cnet admin`: operator commands that work on the database directly."""

from __future__ import annotations

import uuid
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from .lazy import lazy

# the database side is imported by the command that runs (see lazy.py), not by `cnet version`
funds = lazy("computenet.billing.funds")
accounts = lazy("computenet.services.tenancy.accounts")
audit = lazy("computenet.services.audit")
tenants = lazy("computenet.services.tenancy.tenants")
ledger_admin = lazy("computenet.services.billing.ledger_admin")  # project-add, move, contract-add (the portal's too)

admin_app = typer.Typer(no_args_is_help=True, help="Operator commands (run on the server host).")
# names, keys, URLs and audit details print as typed: no markup, no emoji codes (colour via style=)
console = Console(emoji=False, markup=False)


def WHO():  # noqa: N802  (was audit.Who.cli; every admin command is recorded as the shell user on this host)
    return audit.Who.cli()


def _platform():
    from ..config import load_settings
    from ..services.platform import Platform

    platform = Platform(load_settings())
    platform.start()
    return platform


def _run(step):
    from ..services.errors import ServiceError

    try:
        return step()
    except ServiceError as exc:
        Console(stderr=True, emoji=False).print(f"[red]error:[/] {escape(str(exc))}")  # errors quote user data
        raise typer.Exit(1)


def _refuse(message: str) -> None:
    Console(stderr=True, emoji=False).print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(1)


def _amount(text: str, what: str) -> None:
    """An amount of money as typed, checked before anything is written."""
    from ..domain.money import MoneyError, to_decimal

    try:
        to_decimal(text)
    except MoneyError as exc:
        _refuse(f"{what} {text!r}: {exc}")


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
    if balance is not None:
        if not account:  # the balance goes on the new account: without one it would be dropped
            _refuse("--balance needs --account (the new account it is put on)")
        _amount(balance, "--balance")
    platform = _platform()

    def step():
        with platform.db.session() as session:
            user = accounts.create_user(session, name, is_admin=admin)
            audit.record(session, WHO(), "user.add", f"user:{name}", admin=admin)
            if account:
                acc = accounts.create_account(session, account, owner=user, currency=platform.settings.currency)
                audit.record(session, WHO(), "account.add", f"account:{account}", owner=name)
                if balance:
                    accounts.top_up(session, acc, balance, key=f"initial:{acc.name}", actor=WHO().actor)
                    audit.record(session, WHO(), "topup", f"account:{account}", amount=balance)
            return accounts.issue_token(session, user, "cli", policy=platform.settings.auth)

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
            audit.record(session, WHO(), "token.issue", f"user:{name}")
            return accounts.issue_token(session, accounts.get_user(session, name), "cli",
                                        policy=platform.settings.auth)

    console.print(_run(step))


@admin_app.command("topup")
def topup(account: str, amount: str,
          key: Optional[str] = typer.Option(None, help="idempotency key (e.g. the payment reference)")) -> None:
    """Credit a prepaid account. The same --key twice credits once."""
    _amount(amount, "amount")
    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            entry = accounts.top_up(session, acc, amount, key=key or f"topup:{uuid.uuid4()}", actor=WHO().actor)
            if entry is not None:
                audit.record(session, WHO(), "topup", f"account:{account}", amount=amount, key=entry.key)
            return entry, funds.funds(session, acc)

    entry, now = _run(step)
    console.print(("credited" if entry else "already credited under that key")
                  + f"; balance {now.balance} {now.currency}, available {now.available}")


@admin_app.command("credit-limit")
def credit_limit(account: str, amount: str) -> None:
    """Let a postpaid account go this far below zero."""
    from ..billing.ledger import LedgerError
    from ..services.errors import InvalidRequest

    _amount(amount, "amount")
    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            try:
                funds.set_credit_limit(session, acc, amount)
                audit.record(session, WHO(), "credit_limit.set", f"account:{account}", amount=amount)
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
            console.print(f"{v.what}: expected {v.expected}, found {v.found}", style="red")
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
            audit.record(session, WHO(), "tenant.add", f"tenant:{name}", segment=segment)

    _run(step)
    console.print(f"tenant {name} ({segment}) created, wallet account {name}")


@admin_app.command("project-add")
def project_add(tenant: str, name: str, pi: Optional[str] = typer.Option(None, help="the project's PI (a user)")) -> None:
    """Create a project account under a tenant."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            ledger_admin.add_project(session, None, WHO(), tenant, name, pi)

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
            audit.record(session, WHO(), "member.set", f"account:{account}", user=user, role=role, limit=limit)

    _run(step)
    console.print(f"{user} is {role} of {account}" + (f", limit {limit} a month" if limit else ""))


@admin_app.command("member-remove")
def member_remove(account: str, user: str) -> None:
    """Take a user off an account: no new jobs on it (running ones finish and are charged)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            tenants.remove_member(session, accounts.get_account(session, account), accounts.get_user(session, user))
            audit.record(session, WHO(), "member.remove", f"account:{account}", user=user)

    _run(step)
    console.print(f"{user} removed from {account}")


@admin_app.command("move")
def move(source: str, target: str, amount: str,
         key: Optional[str] = typer.Option(None, help="idempotency key (the same key moves once)")) -> None:
    """Move money between two accounts of one tenant (e.g. its wallet to a project)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            return ledger_admin.move(session, None, WHO(), source, target, amount, key or f"move:{uuid.uuid4()}")[1]

    fresh = _run(step)
    console.print(f"moved {amount} from {source} to {target}" if fresh else "already moved under that key")


@admin_app.command("contract-add")
def contract_add(tenant: str,
                 discount: Optional[str] = typer.Option(None, help="percent off the list price"),
                 price: Optional[str] = typer.Option(None, help="a unit price that replaces the list price"),
                 resource: str = typer.Option("*", help="core_hour, gpu_hour, mem_gb_hour or * (discounts)"),
                 cluster: Optional[str] = typer.Option(None), partition: str = typer.Option("*"),
                 reason: str = typer.Option("", help="why (kept with the contract)")) -> None:
    """Give a tenant contract prices: a discount, or a unit price for one resource."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            ledger_admin.add_contract(session, None, WHO(), tenant, discount=discount, price=price,
                                      resource=resource, cluster=cluster, partition=partition, reason=reason)

    _run(step)
    console.print(f"contract added for {tenant}")


@admin_app.command("reprice")
def reprice(job_ids: list[int], reason: str = typer.Option(..., help="why (kept with every adjustment)"),
            batch: Optional[str] = typer.Option(None, help="idempotency key of this re-pricing")) -> None:
    """Re-rate settled jobs at the price book's prices (correct it first) and move the differences."""
    from ..services.billing import repricing

    platform = _platform()

    def step():
        with platform.db.session() as session:
            return repricing.reprice(session, job_ids, reason, batch or uuid.uuid4().hex, WHO(),
                                     platform.settings.billing)

    for r in _run(step):
        console.print(f"job {r.job_id}: {r.old_amount} -> {r.new_amount} ({r.difference:+})")


@admin_app.command("close-month")
def close_month(month: str) -> None:
    """Issue a month's statements: its charges become final (no re-pricing)."""
    from ..services.billing import repricing

    platform = _platform()

    def step():
        with platform.db.session() as session:
            repricing.close_month(session, month, WHO())

    _run(step)
    console.print(f"{month} closed")


@admin_app.command("audit")
def audit_log(limit: int = typer.Option(50), action: Optional[str] = typer.Option(None)) -> None:
    """The audit log: who did what, when, from where."""
    platform = _platform()
    with platform.db.session() as session:
        rows = audit.events(session, limit, action)
        for e in reversed(rows):
            console.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<16} {e.source:<28} {e.action:<16} {e.target}  "
                          f"{e.detail}", highlight=False)


@admin_app.command("map-account")
def map_account(cluster: str, slurm_account: str, account: str) -> None:
    """Charge jobs under a Slurm account (also direct sbatch) to a platform account, and block it when out of funds."""
    from ..services.billing import enforcement

    platform = _platform()

    def step():
        with platform.db.session() as session:
            enforcement.map_account(session, cluster, slurm_account, accounts.get_account(session, account), WHO())

    _run(step)
    console.print(f"{cluster}/{slurm_account} -> {account}")


@admin_app.command("enforce")
def enforce() -> None:
    """Run the enforcement reconciler once: block accounts without funds in Slurm, unblock funded ones."""
    from ..services.billing.enforcement import Enforcer

    report = Enforcer(_platform()).run_once()
    console.print(f"checked {report.checked}; blocked {report.blocked or 'none'}; unblocked {report.unblocked or 'none'}")
    for error in report.errors:
        console.print(str(error), style="red")
    if report.errors:
        raise typer.Exit(1)


@admin_app.command("low-balance")
def low_balance(account: str, amount: Optional[str] = typer.Argument(None, help="omit to switch it off")) -> None:
    """Tell an account's members when its available funds drop below AMOUNT."""
    from ..services.integration import notifications

    platform = _platform()

    def step():
        with platform.db.session() as session:
            notifications.set_threshold(session, accounts.get_account(session, account), amount)
            audit.record(session, WHO(), "low_balance.set", f"account:{account}", amount=amount)

    _run(step)
    console.print(f"{account}: low-balance notice {'below ' + amount if amount else 'off'}")


@admin_app.command("exhaustion-policy")
def exhaustion_policy(account: str, policy: str = typer.Argument(..., help="block, hold or cancel"),
                      grace: Optional[int] = typer.Option(None, help="minutes between the notice and the action")) -> None:
    """What happens to running jobs when the account goes below zero."""
    from ..services.billing import exhaustion

    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            exhaustion.set_policy(session, acc, policy, grace)
            audit.record(session, WHO(), "exhaustion_policy.set", f"account:{account}", policy=policy,
                         grace_minutes=acc.exhaustion_grace_minutes)
            return acc.exhaustion_grace_minutes

    minutes = _run(step)
    console.print(f"{account}: {policy} after {minutes} min in arrears")


@admin_app.command("budget")
def budget(account: str, amount: Optional[str] = typer.Argument(None, help="omit to remove the cap"),
           period: str = typer.Option("month", help="month or total")) -> None:
    """Cap what an account's jobs may cost, apart from the money on it."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            acc = accounts.get_account(session, account)
            tenants.set_budget(session, acc, amount, period)
            audit.record(session, WHO(), "budget.set", f"account:{account}", amount=amount, period=period)
            return tenants.spent_on_account(session, acc)

    spent = _run(step)
    console.print(f"{account}: budget {amount + ' per ' + period if amount else 'off'}; {spent} spent or held")


@admin_app.command("webhook")
def webhook(account: str, url: Optional[str] = typer.Argument(None, help="omit to switch it off")) -> None:
    """POST the account's notices to URL (its `account webhook` endpoint; see `cnet webhooks`)."""
    from ..services.integration import delivery

    platform = _platform()

    def step():
        with platform.db.session() as session:
            delivery.set_webhook(session, accounts.get_account(session, account), url,
                                 platform.settings.notifications, by=WHO().actor)
            audit.record(session, WHO(), "webhook.set", f"account:{account}", url=url)

    _run(step)
    console.print(f"{account}: webhook {url or 'off'}")


@admin_app.command("map-user")
def map_user(user: str, unix_user: str,
             cluster: Optional[str] = typer.Option(None, help="only on this cluster (default: every cluster)")) -> None:
    """Run USER's jobs as UNIX_USER on clusters with run_as_users (their files belong to that login)."""
    from ..services.tenancy import identities

    platform = _platform()

    def step():
        with platform.db.session() as session:
            identities.map_user(session, accounts.get_user(session, user), unix_user, cluster, WHO())

    _run(step)
    console.print(f"{user} runs as {unix_user} on {cluster or 'every cluster'}")


from . import reconcile as _reconcile  # noqa: E402,F401  (registers `cnet admin reconcile`)
from . import admin_users as _admin_users  # noqa: E402,F401  (registers `cnet admin user|role|permissions`)

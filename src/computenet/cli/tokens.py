"""`cnet tokens` (your own, over the API) and `cnet admin tokens` (anyone's, on the server host)."""

from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .admin import WHO, _platform, _run, accounts, admin_app, audit
from .lazy import lazy

tokens = lazy("computenet.services.tenancy.tokens")

tokens_app = typer.Typer(no_args_is_help=True, help="Your API tokens: issue, list, revoke.")
admin_tokens_app = typer.Typer(no_args_is_help=True, help="Every user's API tokens (operators, on the server host).")
admin_app.add_typer(admin_tokens_app, name="tokens")
console = Console(emoji=False)
SCOPE_HELP = "full, or read (GET only: a read-only token gets 403 on anything that changes state)"


def _table(rows: list[dict]) -> None:
    table = Table("id", "user", "name", "prefix", "scope", "state", "expires", "last used")
    for r in rows:
        table.add_row(str(r["id"]), escape(r["user"]), escape(r["name"]), r["prefix"] + "...", r["scope"], r["state"],
                      (r["expires_at"] or "")[:16], (r["last_used_at"] or "never")[:16])
    console.print(table)


def _api(method: str, path: str, **kwargs):
    from ..client import ApiError
    from .main import client, fail

    try:
        with client() as c:
            return c._call(method, path, **kwargs)
    except ApiError as exc:
        fail(exc.detail)


@tokens_app.command("list")
def list_own(all_: bool = typer.Option(False, "--all", help="revoked ones too")) -> None:
    """Your tokens: scope, expiry and last use (never the tokens themselves)."""
    _table(_api("GET", "/tokens", params={"include_revoked": all_}))


@tokens_app.command("create")
def create(name: str = typer.Option("", help="what it is for"),
           scope: str = typer.Option("full", help=SCOPE_HELP),
           days: Optional[int] = typer.Option(None, help="lifetime (default, maximum: server \\[auth])")) -> None:
    """Issue yourself another token (shown once)."""
    out = _api("POST", "/tokens", json={"name": name, "scope": scope, "expires_in_days": days})
    console.print(f"token {out['id']} ({out['scope']}, expires {out['expires_at'][:16]}), shown once:", markup=False)
    console.print(out["token"], highlight=False, markup=False)


@tokens_app.command("revoke")
def revoke_own(token_id: int) -> None:
    """Revoke one of your tokens."""
    out = _api("DELETE", f"/tokens/{token_id}")
    console.print(f"token {out['id']} revoked at {out['revoked_at'][:19]}")


@admin_tokens_app.command("list")
def admin_list(user: Optional[str] = typer.Option(None, help="only this user's"),
               all_: bool = typer.Option(False, "--all", help="revoked ones too")) -> None:
    """Every user's tokens (or one user's)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            owner = accounts.get_user(session, user) if user else None
            return [tokens.to_json(t) for t in tokens.listing(session, owner, all_)]

    _table(_run(step))


@admin_tokens_app.command("issue")
def admin_issue(user: str, name: str = typer.Option("cli", help="what it is for"),
                scope: str = typer.Option("full", help=SCOPE_HELP),
                days: Optional[int] = typer.Option(None, help="lifetime (default: auth.token_default_days)")) -> None:
    """Issue a token for a user (like `cnet admin token`, with a scope and a lifetime)."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            row, secret = tokens.issue(session, accounts.get_user(session, user), name, scope, days,
                                       platform.settings.auth)
            audit.record(session, WHO(), "token.issue", f"user:{user}", token=row.id, scope=scope,
                         expires_at=row.expires_at.isoformat())
            return secret

    console.print(_run(step), highlight=False, markup=False)


@admin_tokens_app.command("revoke")
def admin_revoke(token_ids: list[int] = typer.Argument(..., help="token ids (see `cnet admin tokens list`)")) -> None:
    """Revoke tokens of any user."""
    platform = _platform()

    def step():
        with platform.db.session() as session:
            for token_id in token_ids:
                row = tokens.revoke(session, tokens.find(session, token_id))
                audit.record(session, WHO(), "token.revoke", f"user:{row.user.name}", token=row.id)

    _run(step)
    console.print(f"revoked {', '.join(map(str, token_ids))}")

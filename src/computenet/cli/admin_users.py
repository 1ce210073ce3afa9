"""`cnet admin user ...`, `cnet admin role grant|revoke` and `cnet admin permissions` (on the server host).

An operator at the server's shell acts with every right; each change is audited as that shell user.
"""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console

from . import admin
from .lazy import lazy

grants = lazy("computenet.services.tenancy.grants")
roles = lazy("computenet.services.tenancy.roles")
users = lazy("computenet.services.tenancy.users")

user_app = typer.Typer(no_args_is_help=True, help="People's accounts: add, show, list, set, suspend, reinstate, "
                                                  "delete.")
role_app = typer.Typer(no_args_is_help=True, help="Grant and revoke roles (with a reason, audited).")
admin.admin_app.add_typer(user_app, name="user")
admin.admin_app.add_typer(role_app, name="role")
console = Console(emoji=False)
WHO = admin.WHO


def _in_session(step):
    platform = admin._platform()

    def run():
        with platform.db.session() as session:
            return step(session)

    return admin._run(run)


def _print(data: dict) -> None:
    roles_text = ", ".join(r["role"] + (f" of {r['tenant']}" if r["tenant"] else "") for r in data["roles"])
    console.print(f"{data['name']}  {data['display_name'] or '-'}  <{data['email'] or 'no e-mail'}>"
                  f"{' (verified)' if data['email_verified'] else ''}  {data['language']}  "
                  f"tenant {data['tenant'] or '-'}  {data['status']}"
                  + (f" ({data['status_reason']})" if data['status_reason'] else "")
                  + f"  roles: {roles_text or 'user'}", highlight=False, markup=False)
    for p in data["projects"]:
        console.print(f"  {p['role']} of {p['account']}", highlight=False, markup=False)
    for i in data["unix_identities"]:
        console.print(f"  runs as {i['unix_user']} on {i['cluster']}", highlight=False, markup=False)


@user_app.command("add")
def add(name: str, display_name: str = typer.Option("", "--display-name"),
        email: Optional[str] = typer.Option(None), email_verified: bool = typer.Option(False, "--email-verified"),
        language: Optional[str] = typer.Option(None, help="en or zh-CN (default: their browser's, until they choose)"),
        tenant: Optional[str] = typer.Option(None)) -> None:
    """Add a person (`cnet admin token NAME` gives them an API token)."""
    out = _in_session(lambda s: users.to_json(s, users.add(
        s, None, WHO(), name, display_name=display_name, email=email, email_verified=email_verified,
        language=language, tenant=tenant)))
    _print(out)


@user_app.command("show")
def show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A person's profile, status, roles, projects and Unix identities."""
    out = _in_session(lambda s: users.to_json(s, users.find(s, None, name)))
    console.print_json(json.dumps(out)) if as_json else _print(out)


@user_app.command("list")
def listing(tenant: Optional[str] = typer.Option(None), status: Optional[str] = typer.Option(None),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Everyone, or one tenant's users, or those of one status."""
    out = _in_session(lambda s: [users.to_json(s, u) for u in users.listing(s, None, tenant, status)])
    if as_json:
        console.print_json(json.dumps(out))
    for data in [] if as_json else out:
        _print(data)


@user_app.command("set")
def set_(name: str, display_name: Optional[str] = typer.Option(None, "--display-name"),
         email: Optional[str] = typer.Option(None, help='"" removes it'),
         email_verified: Optional[bool] = typer.Option(None, "--email-verified/--email-unverified"),
         language: Optional[str] = typer.Option(None, help="en or zh-CN"),
         tenant: Optional[str] = typer.Option(None, help='"" takes the user out of their tenant')) -> None:
    """Change a person's display name, e-mail, language or tenant."""
    out = _in_session(lambda s: users.to_json(s, users.update(
        s, None, WHO(), users.find(s, None, name), display_name=display_name, email=email,
        email_verified=email_verified, language=language, tenant=tenant)))
    _print(out)


def _status(change: str, doc: str):
    def command(name: str, reason: str = typer.Option(..., help="why (kept in the audit log)")) -> None:
        out = _in_session(lambda s: users.to_json(s, users.set_status(s, None, WHO(), users.find(s, None, name),
                                                                     change, reason)))
        _print(out)

    command.__doc__ = doc
    user_app.command(change)(command)


_status("suspend", "No sign-in and no API token works until reinstated.")
_status("reinstate", "Let a suspended person sign in and use their tokens again.")
_status("delete", "For good: tokens revoked, memberships ended; the ledger keeps their history.")


@user_app.command("password")
def password(name: str, prompt: bool = typer.Option(False, "--prompt", help="type the password (kept as it is) "
                                                    "instead of a temporary one to be changed at first sign-in")) -> None:
    """Give someone a local password: a temporary one (shown once; they change it when they first sign
    in) or, with --prompt, one you type. Their browser sessions end."""
    from ..services.signin import passwords, web_sessions

    typed = typer.prompt("new password", hide_input=True, confirmation_prompt=True) if prompt else None
    secret = typed or passwords.temporary_password()
    platform = admin._platform()

    def run(session):
        user = users.find(session, None, name, "user_manage")
        passwords.set_password(session, WHO(), user, secret, platform.settings.auth, must_change=typed is None)
        web_sessions.revoke_all(session, user)
        return user.name

    who = _in_session(run)
    if typed is None:
        console.print(f"temporary password for {who} (shown once; to be changed at first sign-in with "
                      f"`cnet passwd` or in the portal): {secret}", highlight=False, soft_wrap=True, markup=False)
    else:
        console.print(f"password of {who} set", markup=False)


@user_app.command("unlock")
def unlock(name: str) -> None:
    """End a lockout after too many failed sign-ins."""
    from ..services import audit
    from ..services.signin import attempts

    def run(session):
        user = users.find(session, None, name, "user_manage")
        attempts.unlock(session, user.name)
        audit.record(session, WHO(), "user.unlock", f"user:{user.name}")
        return user.name

    console.print(f"{_in_session(run)} may sign in again", markup=False)


@role_app.command("grant")
def grant(user: str, role: str, reason: str = typer.Option(..., help="why (kept in the audit log)"),
          tenant: Optional[str] = typer.Option(None, help="tenant_admin: the tenant (default: the user's)"),
          project: Optional[str] = typer.Option(None, help="pi and member: the project")) -> None:
    """Grant ROLE (operator, finance, vendor, tenant_admin, pi, member) to USER."""
    out = _in_session(lambda s: grants.grant(s, None, WHO(), users.find(s, None, user), role, reason, tenant, project))
    console.print(f"{out['user']} is {out['role']}" + (f" of {out['tenant'] or out['project']}"
                                                        if out['tenant'] or out['project'] else ""), markup=False)


@role_app.command("revoke")
def revoke(user: str, role: str, reason: str = typer.Option(..., help="why (kept in the audit log)"),
           tenant: Optional[str] = typer.Option(None), project: Optional[str] = typer.Option(None)) -> None:
    """Take ROLE away from USER (a PI stays a member; a member leaves the project)."""
    out = _in_session(lambda s: grants.revoke(s, None, WHO(), users.find(s, None, user), role, reason, tenant,
                                              project))
    console.print(f"{out['user']} is no longer {out['role']}" + (f" of {out['tenant'] or out['project']}"
                                                                  if out['tenant'] or out['project'] else ""),
                  markup=False)


@admin.admin_app.command("permissions")
def permissions(markdown: bool = typer.Option(False, "--markdown", help="as docs/permissions.md")) -> None:
    """Which role may do what (services/tenancy/roles.py); --markdown writes the docs' table."""
    if markdown:
        typer.echo(roles.permissions_markdown(), nl=False)
        return
    for action, rule in roles.ACTIONS.items():
        who = ", ".join(r if s == "any" else f"{r} ({roles.SCOPES[s]})" for r, s in rule.who)
        console.print(f"{action:<22} {who}  [dim]{rule.what}[/]", highlight=False)

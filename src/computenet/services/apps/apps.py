"""The application centre: which apps a user sees, publishing and approving them, running one.

Built-in apps ship with the package; platform apps (operators), tenant-private apps (a tenant's
admin) and vendor apps (an ISV account; shown to everyone once an operator approves) live in
the database. A run renders the app's script for every cluster where the app is available,
the router picks among those, and the inputs follow the job there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import catalog
from ...catalog import AppSpec
from ...store.models import App, Cluster, Tenant, User
from ...store.types import utcnow
from ...messages import msg
from ..errors import Conflict, Forbidden, InvalidRequest, NotFound
from ..tenancy import roles
from ..platform import Platform

SCOPES = ("platform", "tenant", "vendor")


@dataclass(frozen=True)
class AppRef:
    spec: AppSpec
    scope: str  # builtin | platform | tenant | vendor
    status: str  # approved | pending | rejected | withdrawn
    namespace: str
    publisher: str | None = None
    tenant: str | None = None
    review_note: str = ""

    def to_json(self, detail: bool = False) -> dict:
        s = self.spec
        out = {"name": s.name, "version": s.version, "category": s.category, "title": s.title,
               "scope": self.scope, "status": self.status, "publisher": self.publisher, "tenant": self.tenant,
               "runtime_hint_minutes": s.runtime_hint_minutes}
        if detail:
            out |= {"description": s.description, "parameters": s.parameters, "resources": s.resources,
                    "inputs": s.input_parameters(), "outputs": list(s.outputs), "template": s.template,
                    "environments": [{"name": e.name, "clusters": list(e.clusters), "tags": list(e.tags),
                                      "modules": list(e.modules), "container": e.container,
                                      "stand_in": e.stand_in is not None} for e in s.environments],
                    "review_note": self.review_note}
        return out


def _is_operator(user: User) -> bool:
    return roles.is_operator(user)


def _rows_visible(session: Session, user: User) -> list[App]:
    rows = session.scalars(select(App).order_by(App.created_at, App.id))
    own_ns = f"tenant:{user.tenant_id}" if user.tenant_id else None
    out = []
    for row in rows:
        if _is_operator(user) or row.publisher_id == user.id:
            out.append(row)
        elif row.status == "approved" and (row.namespace == "" or row.namespace == own_ns):
            out.append(row)
    return out


@functools.lru_cache(maxsize=512)
def _stored_spec(row_id: int, source: str) -> AppSpec:
    # a published version never changes: validate (and trial-render) it once per process, not per listing
    return catalog.load_spec(source)


def _ref(session: Session, row: App) -> AppRef:
    publisher = session.get(User, row.publisher_id)
    tenant = session.get(Tenant, row.tenant_id) if row.tenant_id else None
    return AppRef(_stored_spec(row.id, row.source), row.scope, row.status, row.namespace,
                  publisher.name if publisher else None, tenant.name if tenant else None, row.review_note)


def visible(session: Session, user: User, everything: bool = False) -> list[AppRef]:
    """Apps the user may see: the newest approved version of each name (``everything``: all versions)."""
    refs = [AppRef(spec, "builtin", "approved", "builtin") for spec in catalog.builtin_specs()]
    refs += [_ref(session, row) for row in _rows_visible(session, user)]
    if everything:
        return refs
    # later wins: a tenant's own app over the platform's, a newer version over an older one
    rank = {"builtin": 0, "": 1}
    chosen: dict[str, AppRef] = {}
    for ref in sorted((r for r in refs if r.status == "approved"), key=lambda r: rank.get(r.namespace, 2)):
        chosen[ref.spec.name] = ref
    return sorted(chosen.values(), key=lambda r: (r.spec.category, r.spec.name))


def find(session: Session, user: User, name: str, version: str | None = None) -> AppRef:
    if version is None:
        for ref in visible(session, user):
            if ref.spec.name == name:
                return ref
    else:
        # a pending version is visible to its publisher and to operators (to try it before approving)
        matches = [r for r in visible(session, user, everything=True)
                   if r.spec.name == name and r.spec.version == version]
        if matches:
            return matches[-1]
    known = sorted({r.spec.name for r in visible(session, user)})
    raise NotFound(msg("no app %(name)r%(value)s (apps: %(listed)s)",
                       name=name, value=msg(" version %(version)s", version=version) if version else "",
                       listed=", ".join(known)))


def availability(session: Session, platform: Platform, spec: AppSpec) -> dict[str, str | None]:
    """Per known cluster: the environment the app runs in there, or None."""
    out = {}
    for name in session.scalars(select(Cluster.name).order_by(Cluster.name)):
        try:
            tags = platform.cluster_config(name).tags
        except KeyError:
            continue
        env = spec.environment_for(name, tags)
        out[name] = env.name if env else None
    return out


# -- publishing ---------------------------------------------------------------------

def publish(session: Session, user: User, source: str, scope: str) -> AppRef:
    if scope not in SCOPES:
        raise InvalidRequest(msg("scope must be one of %(listed)s, not %(scope)r",
                                 listed=', '.join(SCOPES), scope=scope))
    if len(source.encode()) > 512 * 1024:
        raise InvalidRequest(msg("an app spec may be at most 512 KiB"))
    if scope == "platform" and not roles.allowed(session, user, "app_publish_platform"):
        raise Forbidden(msg("publishing a platform app needs the operator role (vendors publish with "
                            "scope vendor)"))
    if scope == "tenant" and not roles.allowed(session, user, "app_publish_tenant", tenant_id=user.tenant_id):
        raise Forbidden(msg("publishing a tenant app needs the tenant admin role in a tenant"))
    if scope == "vendor" and not roles.allowed(session, user, "app_publish_vendor"):
        raise Forbidden(msg("publishing a vendor app needs a vendor account (an operator grants the "
                            "vendor role)"))
    try:
        spec = catalog.load_spec(source)
    except catalog.SpecError as exc:
        raise InvalidRequest(msg("invalid app spec: %(exc)s", exc=exc)) from None
    namespace = f"tenant:{user.tenant_id}" if scope == "tenant" else ""
    if scope != "tenant" and any(s.name == spec.name for s in catalog.builtin_specs()) and not _is_operator(user):
        raise Conflict(msg("%(name)s is a built-in app name: choose another", name=spec.name))
    if session.scalar(select(App.id).where(App.namespace == namespace, App.name == spec.name,
                                           App.version == spec.version)):
        raise Conflict(msg("%(name)s %(version)s is published already: publish a new version",
                           name=spec.name, version=spec.version))
    owner = session.scalar(select(App.publisher_id).where(App.namespace == namespace, App.name == spec.name))
    if owner is not None and owner != user.id and not _is_operator(user):
        raise Forbidden(msg("app %(name)s belongs to another publisher", name=spec.name))
    row = App(namespace=namespace, name=spec.name, version=spec.version, scope=scope,
              tenant_id=user.tenant_id if scope == "tenant" else None, publisher_id=user.id,
              status="pending" if scope == "vendor" and not _is_operator(user) else "approved",
              spec=spec.source, source=source)
    session.add(row)
    session.flush()
    return _ref(session, row)


def review(session: Session, user: User, name: str, version: str, approve: bool, note: str = "") -> AppRef:
    """An operator approves or rejects a vendor's version (or withdraws any published one)."""
    if not roles.allowed(session, user, "app_review"):
        raise Forbidden(msg("reviewing apps needs the operator role"))
    row = session.scalar(select(App).where(App.namespace == "", App.name == name, App.version == version))
    if row is None:
        raise NotFound(msg("no published app %(name)s %(version)s", name=name, version=version))
    if approve and row.status != "pending":
        raise Conflict(msg("%(name)s %(version)s is %(status)s, not pending",
                           name=name, version=version, status=row.status))
    row.status = "approved" if approve else ("rejected" if row.status == "pending" else "withdrawn")
    row.review_note, row.reviewed_by, row.reviewed_at = note[:2000], user.id, utcnow()
    return _ref(session, row)


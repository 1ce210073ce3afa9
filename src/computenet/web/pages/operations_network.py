"""The network's clusters in the portal.

* /portal/clusters, for everyone signed in: what `cnet clusters` (GET /clusters) shows, from the API's
  own view of a cluster (api/views.py ``cluster_out``): health, partitions, limits, list prices.
* /portal/operations/registry, for operators (roles.py ``cluster_admin``): register, change and remove
  an API-registered cluster through services/network/registry.py, as POST/PATCH/DELETE /admin/clusters do;
  file-configured clusters are shown read-only; the REST token is never shown back.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from ...api.views import cluster_out
from ...config import ClusterConfig
from ...services.tenancy import identities, roles
from ...services.network import registry
from ...services.errors import Forbidden, InvalidRequest, NotFound, ServiceError
from ...store.models import Cluster
from ..i18n import N_
from ..render import Viewer, page
from ..viewer import check_csrf, viewer
from .operations import VALUES, _ops_page
from .projects import platform_of, portal_who, refused, signed_in_user

router = APIRouter(include_in_schema=False)
# form fields kept as typed (blank: unset); the choices; the yes/no ones
TEXT = ("workdir_root", "slurm_conf", "bin_dir", "slurm_cluster", "rest_url", "rest_user", "ssh_host", "ssh_port",
        "ssh_user", "ssh_key", "ssh_known_hosts", "ssh_user_key", "region", "site", "timezone", "cost_core_hour",
        "cost_gpu_hour", "storage_gb_day")
KEEP_WHEN_BLANK = {"rest_user", "ssh_port"}  # not nullable: blank keeps the value (or the default)
CHOICES = {"transport": ("local", "ssh", "rest"), "ownership": ("owned", "leased", "partner")}
CHECKS = ("run_as_users", "ssh_accept_any_host_key")
SHOWN = ("kind", "transport", "ownership", "region", "site", "workdir_root", "slurm_conf", "slurm_cluster", "bin_dir",
         "rest_url", "rest_user", "ssh_host", "ssh_port", "ssh_user", "ssh_key", "ssh_known_hosts", "run_as_users",
         "cost_core_hour", "cost_gpu_hour", "storage_gb_day", "timezone")
LABELS = {"kind": N_("Kind"), "transport": N_("Transport"), "ownership": N_("Ownership"), "region": N_("Region"),
          "site": N_("Site"), "workdir_root": N_("Job directories (shared by the nodes)"),
          "slurm_conf": N_("slurm.conf"), "slurm_cluster": N_("Slurm cluster name"), "bin_dir": N_("Slurm commands folder"),
          "rest_url": N_("slurmrestd URL"), "rest_user": N_("slurmrestd user"), "rest_token": N_("slurmrestd token"),
          "ssh_host": N_("SSH login node"), "ssh_port": N_("SSH port"), "ssh_user": N_("SSH user"),
          "ssh_key": N_("SSH private key file"), "ssh_known_hosts": N_("SSH known hosts file"),
          "ssh_user_key": N_("Each user's key file ({user} is their login)"),
          "ssh_accept_any_host_key": N_("Accept any host key (test beds only)"),
          "run_as_users": N_("Jobs run as each user's mapped Unix login"),
          "cost_core_hour": N_("Cost per core-hour"), "cost_gpu_hour": N_("Cost per GPU-hour"),
          "storage_gb_day": N_("Storage price per GB-day"), "timezone": N_("Time zone"), "tags": N_("Tags"),
          "prices": N_("List prices")}
DONE = {"register": N_("The cluster was registered."), "update": N_("The cluster was changed."),
        "remove": N_("The cluster was removed: no new jobs go there; its jobs and history stay.")}


# -- for everyone: the clusters and what they offer --------------------------------------------

@router.get("/portal/clusters")
def clusters(request: Request):
    """`cnet clusters`: each cluster's health, partitions, limits and list prices."""
    who, platform = viewer(request), platform_of(request)
    with platform.db.session() as session:
        probe = platform.settings.routing.probe_interval_seconds
        found = list(session.scalars(select(Cluster).order_by(Cluster.name)))
        rows = [cluster_out(c, probe) for c in found]
        # where the user has a Unix login: the login-node web shell (web/pages/login_shell.py)
        logins = {c.name: login for c in found if (login := identities.unix_user_for(session, who.user.id, c.id))}
    return page(request, who, "network/clusters.html", clusters=rows, values=VALUES, logins=logins)


# -- for operators: the registry ---------------------------------------------------------------

def _prices_text(prices: dict) -> str:
    """The price book lines the form shows: ``partition core_hour gpu_hour mem_gb_hour``."""
    return "\n".join(f"{part} {p.get('core_hour')} {p.get('gpu_hour', '0')} {p.get('mem_gb_hour', '0')}"
                     for part, p in sorted(prices.items()))


def parse_prices(text: str, before: dict | None = None) -> dict:
    """``partition core_hour [gpu_hour [mem_gb_hour]]`` per line -> ClusterConfig.prices (as strings:
    the config reads them as Decimal). Per-model GPU prices set through the API are kept."""
    out = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if not 2 <= len(parts) <= 4:
            raise InvalidRequest(f"list prices, line {number}: write 'partition core_hour [gpu_hour [mem_gb_hour]]', "
                                 "e.g. '* 0.05 2.00'")
        for value in parts[1:]:
            try:
                Decimal(value)
            except InvalidOperation:
                raise InvalidRequest(f"list prices, line {number}: {value[:20]!r} is not a number") from None
        price = dict(zip(("core_hour", "gpu_hour", "mem_gb_hour"), parts[1:]))
        if (before or {}).get(parts[0], {}).get("gpu_hour_by_model"):
            price["gpu_hour_by_model"] = before[parts[0]]["gpu_hour_by_model"]
        out[parts[0]] = price
    return out


def form_config(form, before: dict | None = None) -> dict:
    """What the form says, as the registry's input (POST /admin/clusters' body; PATCH's on a change)."""
    data: dict = {"kind": "slurm"}
    for key in TEXT:
        value = str(form.get(key) or "").strip()[:1000]
        if value or key not in KEEP_WHEN_BLANK:  # blank clears: to None, or "" where the field is text
            data[key] = value or ("" if ClusterConfig.model_fields[key].default == "" else None)
    for key, allowed in CHOICES.items():
        value = str(form.get(key) or "").strip()
        if value not in allowed:
            raise InvalidRequest(f"{key}: choose one of {', '.join(allowed)}")
        data[key] = value
    for key in CHECKS:
        data[key] = form.get(key) == "on"
    data["tags"] = [t.strip()[:64] for t in str(form.get("tags") or "").split(",") if t.strip()][:50]
    data["prices"] = parse_prices(str(form.get("prices") or "")[:20_000], (before or {}).get("prices"))
    token = str(form.get("rest_token") or "").strip()
    if token:
        data["rest_token"] = token[:4000]
    elif form.get("forget_token") == "on":
        data["rest_token"] = None
    return {k: v for k, v in data.items() if v not in (None, "") or before is not None}


def _registry_page(request: Request, who: Viewer, status: int = 200, error: str | None = None, done: str = "",
                   typed: dict | None = None):
    platform = platform_of(request)
    with platform.db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "cluster_admin"):
            return refused(request, who, Forbidden(roles.refusal("cluster_admin")))
        listed = registry.listing(session, platform)
        for row in listed:
            row["prices_text"] = _prices_text(row["config"].get("prices") or {})
        return _ops_page(request, who, session, me, "network/registry.html", status=status, error=error,
                         done=who.gettext(DONE[done]) if done in DONE else None, clusters=listed, labels=LABELS,
                         shown=SHOWN, choices=CHOICES, values=VALUES, typed=typed or {})


@router.get("/portal/operations/registry")
def registry_page(request: Request, done: str = ""):
    return _registry_page(request, viewer(request), done=done[:8])


async def _change(request: Request, work, done: str):
    """Check the CSRF token and the role, do ``work(platform, form, by)``; a refusal writes nothing."""
    from starlette.concurrency import run_in_threadpool

    who = viewer(request)
    form = await request.form(max_files=0, max_fields=60)
    check_csrf(who, str(form.get("csrf_token") or ""))

    def act():
        platform = platform_of(request)
        with platform.db.session() as session:
            roles.require(session, signed_in_user(session, who), "cluster_admin")
        work(platform, form, portal_who(request, who))
    try:
        await run_in_threadpool(act)
    except (NotFound, Forbidden) as exc:
        return refused(request, who, exc)
    except ServiceError as exc:
        typed = {k: str(v)[:1000] for k, v in form.items() if k not in ("csrf_token", "rest_token")}
        typed["prices_text"] = str(form.get("prices") or "")[:20_000]
        return await run_in_threadpool(_registry_page, request, who, exc.status_code if exc.status_code == 409 else 400,
                                       who.say(exc), "", typed)
    return RedirectResponse(f"/portal/operations/registry?done={done}", status_code=303)


@router.post("/portal/operations/registry")
async def register(request: Request):
    def work(platform, form, by):
        data = form_config(form)
        data["name"] = str(form.get("name") or "").strip()[:64]
        registry.register(platform, data, by)
    return await _change(request, work, "register")


@router.post("/portal/operations/registry/{name}")
async def update(request: Request, name: str):
    def work(platform, form, by):
        with platform.db.session() as session:
            before = next((r["config"] for r in registry.listing(session, platform) if r["name"] == name), None)
        if before is None:
            raise NotFound(f"no registered cluster {name[:64]!r}")
        registry.update(platform, name[:64], form_config(form, before), by)
    return await _change(request, work, "update")


@router.post("/portal/operations/registry/{name}/remove")
async def remove(request: Request, name: str):
    return await _change(request, lambda platform, form, by: registry.deregister(platform, name[:64], by), "remove")

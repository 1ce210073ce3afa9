"""The synthetic year as operational tables, in their stored form, with local ids from 1.

Stored form = what the database keeps and the warehouse reads (analytics/warehouse.py):
money in cents, prices in millionths, times as epoch seconds UTC (turned into
naive UTC timestamps by the writers). Foreign keys hold local ids (0 = NULL);
REFS says which table each points into, so a writer can move the ids to
where the database has room. Text that names ids (transfer keys, memos) is
built by ``texts`` once the final ids are known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np

from . import seed_calibration as cal
from .seed_money import MICRO, PRODUCT_LINES, Network, funding, postpaid_tenants

REFS = {
    "partitions": {"cluster_id": "clusters"},
    "price_items": {"cluster_id": "clusters"},
    "accounts": {"tenant_id": "tenants"},
    "users": {"tenant_id": "tenants", "default_account_id": "accounts"},
    "account_members": {"account_id": "accounts", "user_id": "users"},
    "contracts": {"tenant_id": "tenants"},
    "ledger_accounts": {"account_id": "accounts"},
    "jobs": {"owner_id": "users", "account_id": "accounts", "cluster_id": "clusters", "hold_id": "transfers"},
    "usage_records": {"cluster_id": "clusters", "job_id": "jobs"},
    "charges": {"usage_record_id": "usage_records", "job_id": "jobs", "account_id": "accounts",
                "transfer_id": "transfers"},
    "transfers": {"debit_id": "ledger_accounts", "credit_id": "ledger_accounts", "pending_id": "transfers",
                  "job_id": "jobs"},
    "job_profiles": {"job_id": "jobs", "user_id": "users", "cluster_id": "clusters"},
}
ORDER = ("clusters", "partitions", "price_items", "tenants", "accounts", "users", "account_members", "contracts",
         "ledger_accounts", "jobs", "transfers", "usage_records", "charges", "job_profiles")
NO_ID = ("account_members", "job_profiles")  # tables keyed by others' ids
SHARED_LEDGER = 1 + len(PRODUCT_LINES)  # cash and one revenue account per line: the platform's own
SEGMENT_TAGS = {"university": "uni", "research_institute": "ri", "enterprise": "ent", "government": "gov",
                "individual": "ind"}
APPS = {"hpc": ("vasp", "gromacs", "lammps", "wrf", "cp2k", "openfoam"), "industry": ("fluent", "abaqus", "starccm",
        "lsdyna"), "ai": ("pytorch-train", "llm-finetune", "inference", "diffusion")}
# the command line each app's script runs: the executables the HPC codes install (so the monitoring's
# app inference, monitoring/infer.py, keys their profiles as it would a user's script); the rest by name
COMMANDS = {"vasp": "vasp_std", "gromacs": "gmx_mpi mdrun -deffnm md", "lammps": "lmp -in in.lammps",
            "wrf": "wrf.exe", "cp2k": "cp2k.psmp -i input.inp", "openfoam": "simpleFoam -parallel"}
MEM_PER_CPU_MB = 4000  # every job asks for the memory that comes with its cores (--mem-per-cpu=4000)
EXIT = {"COMPLETED": 0, "FAILED": 1, "CANCELLED": 0, "TIMEOUT": 0}


def script_for(app: str) -> str:
    return f"#!/bin/bash\n#SBATCH -J {app}\nsrun {COMMANDS.get(app, app)}\n"


@dataclass
class SeedTables:
    year: int
    prefix: str
    columns: dict[str, dict[str, object]]  # table -> column -> numpy array or list
    times: dict[str, tuple[str, ...]]  # epoch-second columns per table
    names: dict[str, list[str]] = field(default_factory=dict)  # per table: row names (for texts)
    extra: dict[str, object] = field(default_factory=dict)

    def rows(self, table: str) -> int:
        cols = self.columns[table]
        return len(next(iter(cols.values()))) if cols else 0


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _micro(value: Decimal | None):
    return None if value is None else int(value * MICRO)


# EASY cannot keep a partition busier than this through the seasons (December is about 1.5 x
# January, jobs as wide as a small partition leave holes): more work and its queue outgrows the year
MOST_UTILIZATION = 0.8


def size_partitions(net: Network, partition: np.ndarray, cores: np.ndarray, gpus: np.ndarray,
                    elapsed: np.ndarray) -> np.ndarray:
    """Nodes per partition: the work it runs over the year at its planned utilization,
    to the nearest whole node, and never fewer than its largest job needs. Busy months queue
    (the placement runs every job within what the nodes have) rather than buy nodes that
    idle the rest of the year."""
    hours = 8760
    out = []
    for i, plan in enumerate(net.partitions):
        mine = partition == i
        units = gpus[mine] if plan.gpus_per_node else cores[mine]
        per_node = plan.gpus_per_node or plan.cores_per_node
        work_hours = float((units * elapsed[mine]).sum()) / 3600
        util = cal.planned_utilization(plan)
        out.append(max(int(round(work_hours / (util * per_node * hours))),
                       int(np.ceil(work_hours / (MOST_UTILIZATION * per_node * hours))),
                       int(np.ceil(units.max(initial=1) / per_node)), 1))
    return np.asarray(out, dtype=np.int64)


def build_tables(spec, net: Network, pop, discount: np.ndarray, jobs: dict, money: dict,
                 rng: np.random.Generator, nodes: np.ndarray) -> SeedTables:
    year, prefix = spec.year, spec.prefix
    year_start = _seconds(datetime(year, 1, 1, tzinfo=timezone.utc))
    before = year_start - 30 * 86_400
    cols: dict[str, dict[str, object]] = {}
    times: dict[str, tuple[str, ...]] = {}
    names: dict[str, list[str]] = {}

    # the network
    cluster_names = [f"{prefix}-{c.name}" for c in net.clusters]
    owned_kind = {}
    for i, p in enumerate(net.partitions):
        owned_kind.setdefault(net.cluster_of[i], "gpu" if p.gpus_per_node else "cpu")
    costs = {k: [] for k in ("node_capex", "depreciation_years", "node_watts", "power_price_kwh", "pue",
                             "node_opex_hour")}
    for i, c in enumerate(net.clusters):
        node = cal.OWNED_NODE_COSTS[owned_kind[i]] if c.ownership == "owned" else None
        costs["node_capex"].append(int(node["node_capex"] * 100) if node else None)
        costs["depreciation_years"].append(_micro(cal.DEPRECIATION_YEARS) if node else None)
        costs["node_watts"].append(node["node_watts"] if node else None)
        costs["power_price_kwh"].append(_micro(cal.POWER_PRICE_KWH) if node else None)
        costs["pue"].append(_micro(cal.PUE) if node else None)
        costs["node_opex_hour"].append(_micro(node["node_opex_hour"]) if node else None)
    n_clusters = len(net.clusters)
    cols["clusters"] = dict(
        id=np.arange(1, n_clusters + 1), name=cluster_names, kind=["slurm"] * n_clusters,
        health=["unknown"] * n_clusters, health_detail=[""] * n_clusters, region=[c.region for c in net.clusters],
        site=[c.name.split("-")[0] for c in net.clusters], ownership=[c.ownership for c in net.clusters],
        cost_core_hour=[_micro(c.cost_core_hour) for c in net.clusters],
        cost_gpu_hour=[_micro(c.cost_gpu_hour) if c.cost_gpu_hour else None for c in net.clusters], **costs,
        tags=[["seed-data", f"seed-{year}"]] * n_clusters, failures=np.zeros(n_clusters, np.int64),
        created_at=np.full(n_clusters, before))
    times["clusters"] = ("created_at",)
    parts = net.partitions
    cols["partitions"] = dict(
        id=np.arange(1, len(parts) + 1), cluster_id=net.cluster_of + 1, name=[p.name for p in parts], nodes=nodes,
        cores_per_node=np.asarray([p.cores_per_node for p in parts]),
        mem_per_node_mb=np.asarray([p.cores_per_node * MEM_PER_CPU_MB for p in parts]),
        gpus_per_node=np.asarray([p.gpus_per_node for p in parts]), gpu_type=[p.gpu_type for p in parts],
        max_time_minutes=np.full(len(parts), cal.MAX_RUNTIME_S // 60), default_time_minutes=np.full(len(parts), 60),
        is_default=[p.name == "cpu" for p in parts], available=[True] * len(parts),
        price_core_hour=[_micro(v) for v in net.core_price],
        price_gpu_hour=[_micro(v) if v else None for v in net.gpu_price],
        product_line=[p.product_line for p in parts],
        billing_strategy=["max_gpus_cores" if p.gpus_per_node else "cores" for p in parts],
        node_names=[[f"{p.cluster}-{p.name}{k:04d}" for k in range(n)] for p, n in zip(parts, nodes)],
        features=[[] for _ in parts], updated_at=np.full(len(parts), before))
    times["partitions"] = ("updated_at",)
    items = [(i, "core_hour", net.core_price[i]) for i in range(len(parts))] + \
        [(i, "gpu_hour", net.gpu_price[i]) for i in range(len(parts)) if net.gpu_price[i]]
    cols["price_items"] = dict(
        id=np.arange(1, len(items) + 1), cluster_id=np.asarray([net.cluster_of[i] + 1 for i, _, _ in items]),
        partition=[parts[i].name for i, _, _ in items], qos=[""] * len(items), resource=[r for _, r, _ in items],
        gpu_model=[""] * len(items), unit_price=[_micro(v) for _, _, v in items],
        effective_from=np.full(len(items), before), version=np.ones(len(items), np.int64),
        actor=["seed-data"] * len(items), reason=["seed data list price"] * len(items),
        created_at=np.full(len(items), before))
    times["price_items"] = ("effective_from", "created_at")

    # who pays
    n_t, n_p, n_u = len(pop.segment), int(pop.projects_of.sum()), int(pop.users_of.sum())
    tenant_names = [f"{prefix}-{SEGMENT_TAGS[cal.SEGMENTS[s]]}{k + 1:04d}" for s, k in zip(pop.segment, pop.serial)]
    tenant_of_user = np.repeat(np.arange(n_t), pop.users_of)
    first_job = np.full(n_u, np.iinfo(np.int64).max)
    np.minimum.at(first_job, jobs["user"], jobs["submit"])
    new_user = (rng.random(n_u) < 0.4) & (first_job < np.iinfo(np.int64).max)
    user_created = np.where(new_user, np.maximum(first_job - rng.integers(0, 7 * 86_400, n_u), year_start),
                            year_start - rng.integers(30, 1500, n_u) * 86_400)
    tenant_created = np.full(n_t, np.iinfo(np.int64).max)
    np.minimum.at(tenant_created, tenant_of_user, user_created)
    cols["tenants"] = dict(id=np.arange(1, n_t + 1), name=tenant_names,
                           segment=[cal.SEGMENTS[s] for s in pop.segment], created_at=tenant_created)
    times["tenants"] = ("created_at",)
    within = np.arange(n_p) - pop.first_project[pop.tenant_of_project]
    account_names = tenant_names + [f"{tenant_names[t]}-p{k + 1}" for t, k in zip(pop.tenant_of_project, within)]
    n_a = n_t + n_p
    account_created = np.concatenate([tenant_created, tenant_created[pop.tenant_of_project]])
    cols["accounts"] = dict(
        id=np.arange(1, n_a + 1), name=account_names, currency=["CNY"] * n_a,
        tenant_id=np.concatenate([np.arange(1, n_t + 1), pop.tenant_of_project + 1]),
        kind=["tenant"] * n_t + ["project"] * n_p, low_balance_notified=[False] * n_a,
        exhaustion_policy=["block"] * n_a, exhaustion_grace_minutes=np.full(n_a, 60),
        budget_period=["month"] * n_a, created_at=account_created)
    times["accounts"] = ("created_at",)
    names["accounts"] = account_names
    project_account = n_t + 1 + np.arange(n_p)  # local account id of each project
    user_within = np.arange(n_u) - pop.first_user[tenant_of_user]
    cols["users"] = dict(
        id=np.arange(1, n_u + 1), name=[f"{tenant_names[t]}-u{k + 1:03d}" for t, k in zip(tenant_of_user, user_within)],
        is_admin=[False] * n_u, role=["user"] * n_u, tenant_id=tenant_of_user + 1,
        default_account_id=project_account[pop.project_of_user], created_at=user_created)
    times["users"] = ("created_at",)
    first_of_project = np.full(n_p, n_u)
    np.minimum.at(first_of_project, pop.project_of_user, np.arange(n_u))
    cols["account_members"] = dict(
        account_id=project_account[pop.project_of_user], user_id=np.arange(1, n_u + 1),
        role=np.where(first_of_project[pop.project_of_user] == np.arange(n_u), "pi", "member").tolist())
    discounted = np.flatnonzero(discount > 0)
    cols["contracts"] = dict(
        id=np.arange(1, len(discounted) + 1), tenant_id=discounted + 1, partition=["*"] * len(discounted),
        resource=["*"] * len(discounted), discount_percent=(discount[discounted] * MICRO).astype(np.int64),
        effective_from=np.full(len(discounted), before), actor=["seed-data"] * len(discounted),
        reason=["key account" if pop.key[t] >= 0 else "education price" for t in discounted],
        created_at=np.full(len(discounted), before))
    times["contracts"] = ("effective_from", "created_at")

    # money: who is postpaid, then top-ups, payments and credit lines
    project_of_job = pop.project_of_user[jobs["user"]]
    tenant_revenue = np.bincount(jobs["tenant"], weights=money["charge"], minlength=n_t)
    postpaid = postpaid_tenants(pop, tenant_revenue)
    fund = funding(rng, year, jobs, money, project_of_job, postpaid[pop.tenant_of_project], n_p)
    n_l = SHARED_LEDGER + n_p
    customer_of_project = SHARED_LEDGER + 1 + np.arange(n_p)
    cols["ledger_accounts"] = dict(
        id=np.arange(1, n_l + 1), code=["cash"] + ["revenue"] * len(PRODUCT_LINES) + ["customer"] * n_p,
        account_id=np.concatenate([np.zeros(SHARED_LEDGER, np.int64), project_account]),
        product_line=[""] + list(PRODUCT_LINES) + [""] * n_p, currency=["CNY"] * n_l,
        credit_limit=np.concatenate([np.zeros(SHARED_LEDGER, np.int64), fund["credit"]]),
        # running sums start at zero: the writers add each batch's transfers (seed_db._add_sums)
        debits_posted=np.zeros(n_l, np.int64), credits_posted=np.zeros(n_l, np.int64),
        debits_pending=np.zeros(n_l, np.int64), credits_pending=np.zeros(n_l, np.int64),
        created_at=np.concatenate([np.full(SHARED_LEDGER, before), account_created[n_t:]]))
    times["ledger_accounts"] = ("created_at",)

    # jobs and what they ran
    n = len(jobs["submit"])
    line = net.line_of[jobs["partition"]]
    cluster = net.cluster_of[jobs["partition"]]
    native = np.empty(n, dtype=np.int64)
    for c in range(len(net.clusters)):
        mine = np.flatnonzero(cluster == c)
        native[mine] = 100_000 + np.arange(len(mine))
    cores_per_node = np.asarray([p.cores_per_node for p in parts])[jobs["partition"]]
    job_ids = np.arange(1, n + 1)
    app_index = rng.integers(0, 1 << 16, size=n)
    # transfers: holds at submission, their posts at settlement, top-ups, payments; ids in time order
    n_top, n_pay = len(fund["topup_project"]), len(fund["pay_project"])
    kind = np.concatenate([np.zeros(n, np.int8), np.ones(n, np.int8), np.full(n_top, 2, np.int8),
                           np.full(n_pay, 3, np.int8)])
    at = np.concatenate([jobs["submit"], jobs["settled"], fund["topup_at"], fund["pay_at"]])
    order = np.lexsort((kind, at))
    transfer_id = np.empty(len(order), dtype=np.int64)
    transfer_id[order] = np.arange(1, len(order) + 1)
    hold_id, post_id = transfer_id[:n], transfer_id[n:2 * n]
    revenue_ledger = 2 + line  # cash is 1, then hpc, industry, ai
    top_customer = customer_of_project[fund["topup_project"]]
    pay_customer = customer_of_project[fund["pay_project"]]
    customer = customer_of_project[project_of_job]
    charge_kind = np.where(money["charge"] > 0, "post", "void")
    tcols = dict(
        id=np.arange(1, len(order) + 1),
        debit_id=np.concatenate([customer, customer, np.ones(n_top + n_pay, np.int64)])[order],
        credit_id=np.concatenate([revenue_ledger, revenue_ledger, top_customer, pay_customer])[order],
        amount=np.concatenate([money["hold"], money["charge"], fund["topup_amount"], fund["pay_amount"]])[order],
        kind=np.concatenate([np.full(n, "hold"), charge_kind, np.full(n_top + n_pay, "topup")])[order],
        pending=(kind == 0)[order],
        pending_id=np.concatenate([np.zeros(n, np.int64), hold_id, np.zeros(n_top + n_pay, np.int64)])[order],
        job_id=np.concatenate([job_ids, job_ids, np.zeros(n_top + n_pay, np.int64)])[order],
        actor=np.full(len(order), "system"), created_at=at[order])
    cols["transfers"] = tcols
    times["transfers"] = ("created_at",)
    # which source row each transfer is, for its key and memo
    source = np.concatenate([np.arange(n), np.arange(n), np.arange(n_top), np.arange(n_pay)])[order]
    cols["jobs"] = dict(
        id=job_ids, owner_id=jobs["user"] + 1, account_id=project_account[project_of_job], cluster_id=cluster + 1,
        partition=np.asarray([p.name for p in parts])[jobs["partition"]], native_id=native, state=jobs["state"],
        cores=jobs["cores"], gpus=jobs["gpus"], time_limit_minutes=jobs["limit"], max_cost=money["hold"],
        hold_id=hold_id, interim_charged=np.zeros(n, np.int64), submitted_at=jobs["submit"],
        start_time=jobs["start"], end_time=jobs["end"], exit_code=np.where(jobs["state"] == "FAILED", EXIT["FAILED"], 0).astype(np.int64), origin=np.full(n, "platform"),
        settled_at=jobs["settled"], needs_reconcile=np.zeros(n, bool), reroutes=np.zeros(n, np.int64),
        updated_at=jobs["settled"])
    times["jobs"] = ("submitted_at", "start_time", "end_time", "settled_at", "updated_at")
    nodes_of_job = -(-jobs["cores"] // cores_per_node)
    gpu_type = np.asarray([p.gpu_type or "" for p in parts], dtype=object)[jobs["partition"]]
    cols["usage_records"] = dict(
        id=job_ids, cluster_id=cluster + 1, record_id=native, native_id=native, submit_time=jobs["submit"],
        job_id=job_ids, state=jobs["state"], start_time=jobs["start"], end_time=jobs["end"],
        elapsed_seconds=jobs["elapsed"], cpus=jobs["cores"], mem_mb=jobs["cores"] * MEM_PER_CPU_MB, gpus=jobs["gpus"],
        gpu_type=np.where(jobs["gpus"] > 0, gpu_type, None), nodes=nodes_of_job,
        exit_code=cols["jobs"]["exit_code"], partition=cols["jobs"]["partition"], first_seen_at=jobs["end"] + 30,
        updated_at=jobs["end"] + 30)
    times["usage_records"] = ("submit_time", "start_time", "end_time", "first_seen_at", "updated_at")
    cols["charges"] = dict(
        id=job_ids, usage_record_id=job_ids, job_id=job_ids, account_id=cols["jobs"]["account_id"],
        core_seconds=money["core_seconds"], gpu_seconds=money["gpu_seconds"], price_core_hour=money["core_micro"],
        price_gpu_hour=money["gpu_micro"], amount=money["charge"], transfer_id=post_id,
        created_at=jobs["settled"] - 1)
    times["charges"] = ("created_at",)
    extra = dict(transfer_kind=kind[order], transfer_source=source, job_line=line, app_index=app_index,
                 topup_month=fund["topup_month"], pay_month=fund["pay_month"], postpaid_tenants=postpaid,
                 cluster_names=cluster_names, jobs=jobs)
    return SeedTables(year, prefix, cols, times, names, extra)

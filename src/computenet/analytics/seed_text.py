"""Text columns of the synthetic year that name final ids: keys, memos, paths, specs.

They are written exactly as the services write them (funds.hold_for_job,
funds.settle, charging.charge_key), so statements and balances read seeded
rows like any others.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from .seed_money import PRODUCT_LINES
from .seed_tables import APPS, MEM_PER_CPU_MB, SeedTables, script_for


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).isoformat()


def _cny(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _job_name(data: SeedTables, j: int) -> str:
    apps = APPS[PRODUCT_LINES[data.extra["job_line"][j]]]
    return apps[data.extra["app_index"][j] % len(apps)]


def _hold_key(data: SeedTables, j: int, job_id: int) -> str:
    return f"hold:job:{job_id}:{int(data.extra['app_index'][j]) * 2654435761 % (1 << 48):012x}"


def texts(data: SeedTables, table: str, rows: np.ndarray, ids: dict[str, np.ndarray]) -> dict[str, list]:
    """Text columns of ``rows`` (local indices) of ``table``, given final ids (ids[table][local id])."""
    cols = data.columns
    if table == "ledger_accounts":
        account = cols[table]["account_id"][rows]
        return {"owner_key": [str(int(ids["accounts"][a])) if a else "" for a in account]}
    if table == "jobs":
        c = cols["jobs"]
        out = {k: [] for k in ("name", "spec", "script", "script_args", "workdir", "stdout_path", "stderr_path")}
        out["native_id"] = [str(v) for v in c["native_id"][rows]]
        user_names = cols["users"]["name"]
        account_names = data.names["accounts"]
        for j in rows:
            job_id = int(ids["jobs"][j + 1])
            user = user_names[c["owner_id"][j] - 1]
            cores, gpus, limit = int(c["cores"][j]), int(c["gpus"][j]), int(c["time_limit_minutes"][j])
            name = _job_name(data, j)
            out["name"].append(name)
            out["spec"].append({"resources": {
                "nodes": 1, "ntasks": cores, "ntasks_per_node": None, "cpus_per_task": 1, "mem_per_node_mb": None,
                "mem_per_cpu_mb": MEM_PER_CPU_MB, "gpus_per_node": 0, "gpus_total": gpus, "gpu_type": None,
                "time_limit_minutes": limit, "partition": str(c["partition"][j]),
                "account": account_names[c["account_id"][j] - 1], "qos": None, "constraint": None,
                "exclusive": False}, "options": {"job_name": name, "output": None, "error": None, "workdir": None,
                                                 "array": None, "dependency": None, "cluster": None,
                                                 "passthrough": []}})
            out["script"].append(script_for(name))
            out["script_args"].append([])
            workdir = f"/share/computenet/{user}/jobs/{job_id}"
            out["workdir"].append(workdir)
            out["stdout_path"].append(f"{workdir}/slurm-{c['native_id'][j]}.out")
            out["stderr_path"].append(f"{workdir}/slurm-{c['native_id'][j]}.out")
        return out
    if table == "usage_records":
        u = cols[table]
        tres = [f"cpu={cpus},mem={mem}M,node={nodes}" + (f",gres/gpu={g}" if g else "")
                for cpus, mem, nodes, g in zip(u["cpus"][rows], u["mem_mb"][rows], u["nodes"][rows], u["gpus"][rows])]
        native = [str(v) for v in u["native_id"][rows]]
        return {"record_id": native, "native_id": native, "alloc_tres": tres}
    if table == "charges":
        clusters = data.extra["cluster_names"]
        u = cols["usage_records"]
        return {"idempotency_key": [f"usage:{clusters[u['cluster_id'][r] - 1]}:{u['record_id'][r]}:"
                                    f"{_iso(u['submit_time'][r])}" for r in rows]}
    if table == "transfers":
        t = cols[table]
        kind, source = data.extra["transfer_kind"], data.extra["transfer_source"]
        keys, memos = [], []
        accounts = data.names["accounts"]
        ledger_account = cols["ledger_accounts"]["account_id"]
        for r in rows:
            k, s = int(kind[r]), int(source[r])
            if k in (0, 1):
                job_id = int(ids["jobs"][s + 1])
                hold = _hold_key(data, s, job_id)
                amount = _cny(int(t["amount"][r]))
                if k == 0:
                    keys.append(hold)
                    memos.append(f"hold for job {job_id} (at most {amount} CNY)")
                else:
                    keys.append(f"settle:{hold}")
                    memos.append(f"job {job_id} ({_job_name(data, s)}): {amount} CNY")
                continue
            account = accounts[ledger_account[t["credit_id"][r] - 1] - 1]
            month = data.extra["topup_month" if k == 2 else "pay_month"][s] + 1
            what = "topup" if k == 2 else "payment"
            keys.append(f"{data.prefix}:{what}:{account}:{data.year}-{month:02d}")
            memos.append("top-up" if k == 2 else f"payment of the {data.year}-{month:02d} bill")
        return {"key": keys, "memo": memos}
    return {}

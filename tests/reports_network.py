"""A small network built by hand for the operator-report tests; every figure can be worked out on paper.

Clusters (2023-01-01 and -02, two days of 24 h):
  own   (owned): cpu = n1,n2 (10 cores each, hpc); shared = n2,n3 (10 cores, industry): 3 distinct nodes.
        A node-hour costs 87,600.00 / (5 y x 8,760 h) + 500 W x 1.2 PUE x 1.00/kWh + 0.40 = 2.00 + 0.60 + 0.40
        = 3.00, so the cluster costs 3 x 3.00 x 24 = 216.00 a day, used or not; n2 is split between the lines.
  lease (leased): gpu = g1,g2 (8 cores, 4 cards each, ai); pays 0.10 a core-hour and 5.00 a card-hour used.
Tenants: uni (university, account uni-lab), corp (enterprise, corp-ai: postpaid), inst (research institute).
Jobs (UTC):
  J1 u1 own/cpu    10 cores  01-01 00:00-06:00                 ledger 120.00 hpc on 01-01
  J2 u2 lease/gpu   8 cores 4 cards 01-01 12:00 - 01-02 12:00  hold 3000.00, posted 1200.00 ai on 01-02
  J3 u3 own/shared 20 cores  12-31 18:00 - 01-01 06:00 (6 h inside the period)   300.00 industry on 01-01
  J4 u1 own/cpu     5 cores  01-02 00:00-04:00                 40.00 hpc, 10.00 refunded, on 01-02
  J5 u1 own/cpu    10 cores  01-02 20:00 - 01-03 02:00 (4 h inside)  45.00 hpc on 01-03 (after the period)
  storage: uni-lab 5.00 on 01-02 (no job, no cluster)
Users u1, u2, u3 joined in 2022; u4 joined on 01-02 and ran nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import update

from computenet.billing import funds, ledger
from computenet.store.models import Account, Cluster, Job, Partition, Tenant, Transfer, UsageRecordRow, User


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _dated(session, row: Transfer, when: str) -> None:
    session.execute(update(Transfer).where(Transfer.id == row.id).values(created_at=at(when)))


def build(database) -> dict:
    with database.session() as s:
        own = Cluster(name="own", kind="slurm", ownership="owned", node_capex=Decimal("87600.00"),
                      depreciation_years=Decimal("5"), node_watts=500, pue=Decimal("1.2"),
                      power_price_kwh=Decimal("1.00"), node_opex_hour=Decimal("0.40"))
        lease = Cluster(name="lease", kind="slurm", ownership="leased", cost_core_hour=Decimal("0.10"),
                        cost_gpu_hour=Decimal("5.00"))
        s.add_all([own, lease])
        s.flush()
        common = dict(mem_per_node_mb=64000, price_core_hour=Decimal("1"), price_gpu_hour=Decimal("10"))
        s.add_all([
            Partition(cluster_id=own.id, name="cpu", nodes=2, cores_per_node=10, gpus_per_node=0,
                      product_line="hpc", node_names=["n1", "n2"], **common),
            Partition(cluster_id=own.id, name="shared", nodes=2, cores_per_node=10, gpus_per_node=0,
                      product_line="industry", node_names=["n2", "n3"], **common),
            Partition(cluster_id=lease.id, name="gpu", nodes=2, cores_per_node=8, gpus_per_node=4,
                      product_line="ai", node_names=["g1", "g2"], **common),
        ])
        tenants = {name: Tenant(name=name, segment=segment) for name, segment in
                   (("uni", "university"), ("corp", "enterprise"), ("inst", "research_institute"))}
        s.add_all(tenants.values())
        s.flush()
        acc = {name: Account(name=name, tenant_id=tenants[t].id) for name, t in
               (("uni-lab", "uni"), ("corp-ai", "corp"), ("inst-proj", "inst"))}
        s.add_all(acc.values())
        joined = at("2022-12-01T00:00:00")
        users = {n: User(name=n, created_at=joined) for n in ("u1", "u2", "u3")}
        users["u4"] = User(name="u4", created_at=at("2023-01-02T10:00:00"))
        s.add_all(users.values())
        s.flush()
        for a in acc.values():
            funds.top_up(s, a, "10000.00", key=f"topup:{a.name}")
        funds.set_credit_limit(s, acc["corp-ai"], "5000.00")

        def job(n, user, account, cluster, partition, cores, gpus, start, end):
            j = Job(owner_id=users[user].id, account_id=acc[account].id, cluster_id=cluster.id, partition=partition,
                    name=f"J{n}", native_id=str(n), state="COMPLETED", spec={}, script="#!/bin/sh\n", workdir="/w",
                    stdout_path="/w/o", stderr_path="/w/e", cores=cores, gpus=gpus, start_time=at(start),
                    end_time=at(end), submitted_at=at(start))
            s.add(j)
            s.flush()
            seconds = int((at(end) - at(start)).total_seconds())
            s.add(UsageRecordRow(cluster_id=cluster.id, record_id=str(n), native_id=str(n), submit_time=at(start),
                                 job_id=j.id, state="COMPLETED", start_time=at(start), end_time=at(end),
                                 elapsed_seconds=seconds, cpus=cores, mem_mb=1000, gpus=gpus, nodes=1,
                                 partition=partition))
            return j

        j1 = job(1, "u1", "uni-lab", own, "cpu", 10, 0, "2023-01-01T00:00:00", "2023-01-01T06:00:00")
        j2 = job(2, "u2", "corp-ai", lease, "gpu", 8, 4, "2023-01-01T12:00:00", "2023-01-02T12:00:00")
        j3 = job(3, "u3", "inst-proj", own, "shared", 20, 0, "2022-12-31T18:00:00", "2023-01-01T06:00:00")
        j4 = job(4, "u1", "uni-lab", own, "cpu", 5, 0, "2023-01-02T00:00:00", "2023-01-02T04:00:00")
        j5 = job(5, "u1", "uni-lab", own, "cpu", 10, 0, "2023-01-02T20:00:00", "2023-01-03T02:00:00")

        def charge(job_row, account, line, amount, when):
            moved = funds.charge(s, job_row, Decimal(amount), f"charge:{uuid.uuid4().hex}", "test", line)
            _dated(s, moved, when)

        charge(j1, "uni-lab", "hpc", "120.00", "2023-01-01T06:05:00")
        charge(j3, "inst-proj", "industry", "300.00", "2023-01-01T06:05:00")
        hold = funds.hold_for_job(s, j2, acc["corp-ai"], Decimal("3000.00"), "ai")
        _dated(s, hold, "2023-01-01T11:59:00")
        posted = ledger.resolve(s, f"settle:{hold.key}", hold, ledger.cents("1200.00"), job_id=j2.id)
        _dated(s, posted, "2023-01-02T12:05:00")
        charge(j4, "uni-lab", "hpc", "40.00", "2023-01-02T04:05:00")
        refund = ledger.transfer(s, f"refund:{j4.id}", funds.revenue(s, "hpc", "CNY"), funds.customer(s, acc["uni-lab"]),
                                 ledger.cents("10.00"), "refund", job_id=j4.id)
        _dated(s, refund, "2023-01-02T05:00:00")
        storage = ledger.transfer(s, "storage:test", funds.customer(s, acc["uni-lab"]),
                                  funds.revenue(s, "storage", "CNY"), ledger.cents("5.00"), "charge")
        _dated(s, storage, "2023-01-02T08:00:00")
        charge(j5, "uni-lab", "hpc", "45.00", "2023-01-03T02:05:00")
        assert ledger.invariant(s) == []
        return {"jobs": [j.id for j in (j1, j2, j3, j4, j5)], "accounts": {k: v.id for k, v in acc.items()},
                "users": {k: v.id for k, v in users.items()}}


def add_revenue(database, account: str, line: str, amount: str, when: str) -> None:
    """A revenue transfer (no job) on a given day: for the growth tests."""
    with database.session() as s:
        a = s.query(Account).filter_by(name=account).one()
        moved = ledger.transfer(s, f"extra:{uuid.uuid4().hex}", funds.customer(s, a), funds.revenue(s, line, "CNY"),
                                ledger.cents(amount), "charge")
        _dated(s, moved, when)


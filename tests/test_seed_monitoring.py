"""cnet seed-data's monitoring data (issue 21, item 5): a profile per completed job and the findings the
live rules raise on it, so that `report efficiency` on a seeded year has rows, and its money is the
money each job was charged."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import func, select

from computenet.analytics import reports, seed_db, seed_parquet
from computenet.analytics.seed_data import SeedSpec, generate
from computenet.analytics.warehouse import Warehouse
from computenet.monitoring.infer import profile_key
from computenet.monitoring.rules import GpuIdle, GpuUnderused, IdleCores
from computenet.store.models import Charge, Job, JobProfile

SMALL = SeedSpec(year=2022, jobs=1_000, tenants=60, seed=5)
YEAR = ("2022-01-01", "2022-12-31")


@pytest.fixture(scope="module")
def small():
    return generate(SMALL)


@pytest.fixture
def seeded(clean_db, small):
    seed_db.write(clean_db, small, batch=400)  # profiles go in with their jobs' batches
    return clean_db


def _efficiency(warehouse, dimension):
    return reports.run("efficiency", warehouse, *YEAR, by="year", dimension=dimension).rows


def _in_unit(value) -> bool:
    return value is None or Decimal(0) < value <= Decimal(1)


def test_the_efficiency_report_of_a_seeded_year_has_rows_that_add_up(seeded):
    with Warehouse.from_database(seeded) as warehouse:
        by = {dimension: _efficiency(warehouse, dimension) for dimension in ("tenant", "app")}
    with seeded.session() as session:
        count, charged, wasted = session.execute(select(func.count(), func.sum(JobProfile.price),
                                                        func.sum(JobProfile.wasted))).one()
    assert count > 0.8 * SMALL.jobs
    for dimension, rows in by.items():
        groups, total = rows[:-1], rows[-1]
        assert total["key"] == "(all)" and len(groups) > 5, dimension
        for row in rows:
            assert Decimal(0) < row["cpu_efficiency"] <= 1, row
            assert _in_unit(row["gpu_utilisation"]) and _in_unit(row["mem_efficiency"]), row
            assert Decimal(0) <= row["wasted"] <= row["charged"], row
        # the totals are the groups' sums and the profiles table's
        assert sum(r["jobs"] for r in groups) == total["jobs"] == count
        assert sum(r["charged"] for r in groups) == total["charged"] == charged
        assert sum(r["wasted"] for r in groups) == total["wasted"] == wasted
    assert Decimal(0) < by["tenant"][-1]["wasted"]
    assert any(r["gpu_utilisation"] is not None for r in by["app"])  # AI apps' cards
    assert {r["key"] for r in by["app"]} >= {"vasp", "gromacs", "lammps", "job:fluent"}


def test_profiles_are_the_completed_jobs_at_what_they_were_charged(seeded):
    with seeded.session() as session:
        rows = session.execute(select(JobProfile, Job, Charge).join(Job, Job.id == JobProfile.job_id)
                               .join(Charge, Charge.job_id == Job.id)).all()
        completed = session.scalar(select(func.count()).select_from(Job).where(Job.state == "COMPLETED"))
    assert len(rows) == completed
    for profile, job, charge in rows:
        assert job.state == "COMPLETED"
        assert profile.price == charge.amount
        assert profile.wasted == sum((Decimal(f["wasted"]) for f in profile.findings), Decimal(0)) <= profile.price
        assert profile.app == profile_key(None, job.script, job.name)  # as the live monitoring keys it
        assert profile.runtime_s == (job.end_time - job.start_time).total_seconds()
        assert profile.mem_requested_bytes == job.cores * 4000 * 1024 * 1024
        assert 0 < profile.peak_rss < profile.mem_requested_bytes


def test_findings_follow_the_live_rules(seeded):
    """A job whose cores idled (CPU partitions bill cores) is charged its idle share; idle cards likewise."""
    with seeded.session() as session:
        profiles = session.scalars(select(JobProfile)).all()
    idle_cores = [p for p in profiles if p.gpus == 0 and p.cores >= IdleCores.MIN_CORES
                  and p.cpu_efficiency < IdleCores.MAX_EFFICIENCY]
    idle_cards = [p for p in profiles if p.gpus and p.gpu_utilisation < GpuIdle.MAX_UTIL]
    assert idle_cores and idle_cards
    for p in idle_cores:
        found = {f["code"]: Decimal(f["wasted"]) for f in p.findings}
        assert abs(found["idle_cores"] - p.price * Decimal(1 - p.cpu_efficiency)) <= Decimal("0.01")
    for p in idle_cards:
        found = {f["code"]: Decimal(f["wasted"]) for f in p.findings}
        assert "gpu_underused" not in found  # superseded
        assert abs(found["gpu_idle"] - p.price * Decimal(1 - p.gpu_utilisation)) <= Decimal("0.01")
    waiting = [p for p in profiles if p.gpus and GpuUnderused.LOW <= p.gpu_utilisation < GpuUnderused.HIGH]
    assert waiting
    for p in waiting:  # GPU partitions bill cards: the card part is the whole charge; half the idle share counts
        found = {f["code"]: Decimal(f["wasted"]) for f in p.findings}
        assert abs(found["gpu_underused"] - p.price * Decimal((1 - p.gpu_utilisation) * GpuUnderused.WASTE_SHARE)) \
            <= Decimal("0.01")
    busy = [p for p in profiles if p.cpu_efficiency >= IdleCores.MAX_EFFICIENCY and not p.gpus]
    assert busy and all(p.wasted == 0 for p in busy)


def test_same_seed_same_profiles_and_parquet_agrees(small, tmp_path, seeded):
    again = generate(SMALL).columns["job_profiles"]
    for name, values in small.columns["job_profiles"].items():
        assert np.array_equal(np.asarray(values, dtype=object), np.asarray(again[name], dtype=object)), name
    other = generate(SeedSpec(year=2022, jobs=1_000, tenants=60, seed=6)).columns["job_profiles"]
    assert not np.array_equal(other["cpu_efficiency"][:100], small.columns["job_profiles"]["cpu_efficiency"][:100])
    seed_parquet.write(small, tmp_path)
    with Warehouse.from_parquet(tmp_path) as parquet, Warehouse.from_database(seeded) as database:
        assert _efficiency(parquet, "app") == _efficiency(database, "app")


def test_replace_rewrites_the_profiles(seeded, small):
    seed_db.write(seeded, small, replace=True)
    with seeded.session() as session:
        assert session.scalar(select(func.count()).select_from(JobProfile)) == len(
            small.columns["job_profiles"]["job_id"])

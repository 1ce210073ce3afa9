"""A short trace on the real test bed, time-compressed, against the simulator's starts."""

from pathlib import Path

import pytest

from computenet.sim.replay import compress, replay, simulate_replay
from computenet.sim.trace import read_swf

pytestmark = pytest.mark.slurm
SLICE = Path(__file__).parent / "fixtures" / "traces" / "sdsc-sp2-first-500.swf"


def test_compression_keeps_the_shape_slurm_needs():
    jobs = compress(read_swf(SLICE), 40, 600.0, 64, 30.0)
    assert len(jobs) == 40 and all(1 <= j.cores <= 64 and j.limit_minutes >= 1 for j in jobs)
    assert all(j.limit_minutes * 60 > j.run_s for j in jobs)  # nothing is killed at its limit
    assert [j.submit_s for j in jobs] == sorted(j.submit_s for j in jobs)
    starts = simulate_replay(jobs, 64)
    assert set(starts) == {j.trace_id for j in jobs}


def test_replay_on_slurm_is_close_to_the_simulation(testbed, tmp_path):
    from computenet.clusters.slurm.adapter import SlurmCluster
    from computenet.clusters.slurm.transport import LocalTransport

    adapter = SlurmCluster("alpha", LocalTransport(testbed["SLURM_CONF_ALPHA"]))
    jobs = compress(read_swf(SLICE), 12, 900.0, 64, 12.0)
    report = replay(adapter, jobs, 64, "cpu", str(tmp_path), 900.0, timeout_s=180)
    summary = report.summary()
    assert summary["started"] == 12, report.rows
    # Slurm schedules on events and a 2 s backfill cycle, the simulator instantly
    assert summary["median_abs_error_s"] < 10, summary
    for row in report.rows:
        adapter.cancel(row.native_id)

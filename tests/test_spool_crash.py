"""The local executor's spool survives kill -9 and damaged state files."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from computenet.clusters.base import SubmitRequest
from computenet.clusters.local.adapter import LocalCluster
from computenet.domain.sbatch import parse_submission

from conftest import poll_until


def held(tmp_path: Path) -> SubmitRequest:
    """A job that waits until released: it costs nothing to submit many."""
    text, spec, args = parse_submission("#!/bin/bash\ntrue\n", ["--hold", "-t", "1"])
    work = tmp_path / "work"
    return SubmitRequest(script=text, spec=spec, job_name="held", workdir=str(work), output=str(work / "o-%j"),
                         error=str(work / "o-%j"), comment="computenet:1", script_args=tuple(args))


def job_ids(spool: Path) -> list[int]:
    return sorted(int(p.name) for p in (spool / "jobs").iterdir() if p.name.isdigit())


def test_a_damaged_next_id_does_not_stop_submissions(tmp_path):
    spool = tmp_path / "spool"
    cluster = LocalCluster("local", spool, slots=1)
    first = [cluster.submit(held(tmp_path)) for _ in range(3)]
    for damage in ("", "garbage\n", "1"):  # emptied by a crash, overwritten, rolled back
        (spool / "next_id").write_text(damage)
        job = cluster.submit(held(tmp_path))
        assert job not in first and int(job) > max(map(int, first))
        first.append(job)
    assert len(set(first)) == len(first) == len(job_ids(spool))


def test_kill_9_in_a_burst_of_submissions(tmp_path):
    """A submitter killed at random moments, again and again: the spool stays usable, ids unique."""
    spool = tmp_path / "spool"
    LocalCluster("local", spool, slots=1)
    rng = random.Random(13)
    for _ in range(8):
        before = len(job_ids(spool))
        pid = os.fork()  # a child with everything imported already: it submits at once
        if pid == 0:
            try:
                cluster = LocalCluster("local", spool, slots=1)
                while True:
                    cluster.submit(held(tmp_path))
            finally:
                os._exit(1)
        try:
            poll_until(lambda: len(job_ids(spool)) > before, timeout=30, interval=0.005, what="submissions")
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        text = (spool / "next_id").read_text()
        assert text.strip().isdigit(), f"next_id after kill -9: {text!r}"
    existing = job_ids(spool)
    cluster = LocalCluster("local", spool, slots=1)
    ids = [int(cluster.submit(held(tmp_path))) for _ in range(3)]
    assert len(set(ids)) == 3 and min(ids) > max(existing)
    assert {str(i) for i in ids} <= set(cluster.status([str(i) for i in ids]))

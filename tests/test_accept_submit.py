"""Issue 19 item 3: accept, then submit. POST /jobs writes the job and its hold and returns; the
submitter task (services/jobs/submitter.py) sends it, at most once, and a crash at any point leaves a job
the poller adopts by its tag or withdraws. POST /jobs:batch takes many jobs, each on its own.

Runs on SQLite and, with COMPUTENET_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from computenet.billing import funds
from computenet.cli.main import app as cli_app
from computenet.clusters.base import SubmitRejected
from computenet.domain.sbatch import platform_tag
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.jobs.submitter import Submitter
from computenet.store.models import Account, Job, JobEvent, User
from computenet.store.types import utcnow
from computenet.workers.runner import Runner
from computenet.workers.tasks import submitter_task

from conftest import add_user, poll_until

QUICK = "#!/bin/bash\n#SBATCH -t 5 -c 1\necho done\n"


def held(platform, user_id) -> Decimal:
    with platform.db.session() as session:
        user = session.get(User, user_id)
        return funds.funds(session, session.get(Account, user.default_account_id)).held


def tag(platform, job_id) -> str:
    """The job's tag on the cluster (its id and nonce)."""
    return platform_tag(job_id, job_row(platform, job_id).tag_nonce)


def job_row(platform, job_id) -> Job:
    with platform.db.session() as session:
        return session.get(Job, job_id)


def count_jobs(platform, user_id) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count(Job.id)).where(Job.owner_id == user_id))


class Calls:
    """The local adapter's submit, counted (and the tags it was given)."""

    def __init__(self, platform, cluster: str = "local", before=None, after=None) -> None:
        self.adapter = platform.adapters[cluster]
        self.real = self.adapter.submit
        self.tags: list[str] = []
        self.lock = threading.Lock()
        self.before, self.after = before, after

    def __call__(self, request):
        with self.lock:
            self.tags.append(request.comment)
        if self.before:
            self.before(request)
        native = self.real(request)
        if self.after:
            self.after(request)
        return native

    def __enter__(self) -> "Calls":
        self.adapter.submit = self
        return self

    def __exit__(self, *exc) -> None:
        self.adapter.submit = self.real


def http(server, token) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_accepted_job_is_written_with_its_hold_before_any_sbatch_and_the_submitter_sends_it(platform, server):
    user_id, token = add_user(platform, "acc-ann")
    with Calls(platform) as calls, http(server, token) as client:
        response = client.post("/jobs", json={"script": QUICK})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["state"] == "SUBMITTING" and job["native_id"] is None
        assert calls.tags == []  # nothing reached the cluster in the request
        assert held(platform, user_id) == Decimal(job["max_cost"]) > 0
        assert job_row(platform, job["id"]).queued_at is not None
        assert Submitter(platform, "local").submit_pass() == 1
        assert calls.tags == [tag(platform, job['id'])]
        shown = client.get(f"/jobs/{job['id']}").json()
        assert shown["state"] in ("PENDING", "RUNNING", "COMPLETED") and shown["native_id"]
        assert "%j" not in shown["stdout_path"]
        assert Submitter(platform, "local").submit_pass() == 0  # sent once
        assert len(calls.tags) == 1
    with platform.db.session() as session:
        states = [e.to_state for e in session.scalars(select(JobEvent).where(JobEvent.job_id == job["id"])
                                                         .order_by(JobEvent.id))]
    assert states[:2] == ["SUBMITTING", "PENDING"]


def test_wait_native_submits_in_the_request(platform, server):
    _, token = add_user(platform, "acc-nat")
    with http(server, token) as client:
        response = client.post("/jobs", params={"wait": "native"}, json={"script": QUICK})
        assert response.status_code == 201, response.text
        assert response.json()["native_id"] and response.json()["state"] != "SUBMITTING"
        bad = client.post("/jobs", params={"wait": "forever"}, json={"script": QUICK})
        assert bad.status_code == 422 and "wait" in bad.text


@pytest.mark.parametrize("wait", ["accepted", "native"])
def test_a_repeated_idempotency_key_returns_the_first_job(platform, server, wait):
    user_id, token = add_user(platform, f"acc-key-{wait}")
    body = {"script": QUICK, "idempotency_key": "run-42/step-1"}
    with http(server, token) as client:
        first = client.post("/jobs", params={"wait": wait}, json=body)
        assert first.status_code in (201, 202), first.text
        again = client.post("/jobs", params={"wait": wait}, json=body | {"args": ["-c", "2"]})
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        assert count_jobs(platform, user_id) == 1
        assert held(platform, user_id) <= Decimal(first.json()["max_cost"])  # held once, not twice
        spaced = client.post("/jobs", json=body | {"idempotency_key": "a key"})
        assert spaced.status_code == 422 and "idempotency_key" in spaced.text
    other_id, other_token = add_user(platform, f"acc-key2-{wait}")
    with http(server, other_token) as client:  # keys are per user
        assert client.post("/jobs", json=body).status_code == 202
    assert count_jobs(platform, other_id) == 1


def test_concurrent_requests_with_one_key_make_one_job(platform, server):
    user_id, token = add_user(platform, "acc-race")
    body = {"script": QUICK, "idempotency_key": "same"}
    codes, ids = [], []

    def post():
        with http(server, token) as client:
            r = client.post("/jobs", json=body)
            codes.append(r.status_code)
            ids.append(r.json().get("id"))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) <= {200, 202} and codes.count(202) == 1, codes
    assert len(set(ids)) == 1 and count_jobs(platform, user_id) == 1


def test_a_batch_with_one_bad_job_refuses_that_job_and_accepts_the_others(platform, server):
    user_id, token = add_user(platform, "acc-batch")
    jobs = [{"script": QUICK, "idempotency_key": "b-0"},
            {"script": QUICK, "args": ["-c", "many"]},  # not a number of cores
            {"script": QUICK, "args": ["-t", "100000", "-c", "4"]},  # longer than any partition allows
            {"script": QUICK, "routing": {"max_price": "abc"}},
            {"script": QUICK, "idempotency_key": "b-4"}]
    with Calls(platform) as calls, http(server, token) as client:
        response = client.post("/jobs:batch", json={"jobs": jobs})
        assert response.status_code == 200, response.text
        result = response.json()
        assert (result["accepted"], result["refused"]) == (2, 3), result
        items = result["results"]
        assert [i["index"] for i in items] == [0, 1, 2, 3, 4]
        assert items[0]["id"] and items[4]["id"] and items[0]["created"]
        assert items[1]["id"] is None and items[1]["status"] == 400 and "many" in items[1]["detail"]
        assert items[2]["status"] in (400, 402) and items[2]["detail"], items[2]
        assert items[3]["status"] == 400 and "max_price" in items[3]["detail"]
        assert count_jobs(platform, user_id) == 2  # nothing written for a refused job
        accepted = {items[0]["id"], items[4]["id"]}
        assert held(platform, user_id) == sum(job_row(platform, j).max_cost for j in accepted)
        again = client.post("/jobs:batch", json={"jobs": [jobs[0]]}).json()["results"][0]
        assert again["id"] == items[0]["id"] and not again["created"]
        assert client.post("/jobs:batch", json={"jobs": [jobs[0], jobs[0]]}).status_code == 400
        assert client.post("/jobs:batch", json={"jobs": [{"script": QUICK}] * 501}).status_code == 422
        assert client.post("/jobs:batch", json={"jobs": []}).status_code == 422
        Submitter(platform, "local").submit_pass()
    assert sorted(calls.tags) == sorted(tag(platform, j) for j in accepted)


class Crash(BaseException):
    """The worker process dying at that point (as tests/test_reconcile.py's)."""


def _crash(*_):
    raise Crash()


def _accept(platform, user_id) -> int:
    from computenet.services.jobs.job_accept import accept_job

    return accept_job(platform, user_id, QUICK).job_id


def test_a_crash_between_the_claim_and_sbatch_is_withdrawn_never_sent_twice(platform):
    user_id, _ = add_user(platform, "acc-crash1")
    job_id = _accept(platform, user_id)
    with Calls(platform, before=_crash) as calls:  # dies as sbatch would start
        with pytest.raises(Crash):
            Submitter(platform, "local").submit_pass()
        calls.before = None
        assert Submitter(platform, "local").submit_pass() == 0  # a claimed job is never claimed again
    assert calls.tags == [tag(platform, job_id)]
    job = job_row(platform, job_id)
    assert job.state == "SUBMITTING" and job.submit_claim and job.native_id is None
    poller = ClusterPoller(platform, "local")
    poller.run_once()
    assert job_row(platform, job_id).state == "SUBMITTING"  # sbatch's answer may still be on its way
    with platform.db.session() as session:
        session.get(Job, job_id).submit_claimed_at = utcnow() - timedelta(minutes=6)
    poller.run_once()
    job = job_row(platform, job_id)
    assert job.state == "CANCELLED" and job.settled_at is not None and "withdrawn" in job.reason
    assert held(platform, user_id) == 0


def test_a_crash_between_sbatch_and_recording_its_answer_is_adopted_by_its_tag(platform):
    user_id, _ = add_user(platform, "acc-crash2")
    job_id = _accept(platform, user_id)
    with platform.db.session() as session:  # accepted long ago, sent just now: adopted all the same
        session.get(Job, job_id).submitted_at = utcnow() - timedelta(minutes=20)
    with Calls(platform, after=_crash) as calls:
        with pytest.raises(Crash):
            Submitter(platform, "local").submit_pass()
    assert job_row(platform, job_id).native_id is None
    with platform.db.session() as session:
        session.get(Job, job_id).submit_claimed_at = utcnow() - timedelta(seconds=30)
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: job_row(platform, job_id).settled_at is not None, step=poller.run_once,
               what="the adopted job to settle")
    job = job_row(platform, job_id)
    assert job.state == "COMPLETED" and job.native_id is not None
    assert len(calls.tags) == 1 and held(platform, user_id) == 0


def test_an_unclaimed_accepted_job_waits_for_the_submitter_not_the_poller(platform):
    user_id, _ = add_user(platform, "acc-wait")
    job_id = _accept(platform, user_id)
    with platform.db.session() as session:  # no worker for a while
        session.get(Job, job_id).submitted_at = utcnow() - timedelta(minutes=30)
    ClusterPoller(platform, "local").run_once()
    assert job_row(platform, job_id).state == "SUBMITTING"
    Submitter(platform, "local").submit_pass()
    assert job_row(platform, job_id).native_id is not None


def test_sbatch_refusing_a_job_withdraws_it_with_the_reason(platform):
    user_id, _ = add_user(platform, "acc-refused")
    job_id = _accept(platform, user_id)

    def refuse(request):
        raise SubmitRejected("sbatch: error: Batch job submission failed: Invalid qos specification")

    with Calls(platform, before=refuse):
        Submitter(platform, "local").submit_pass()
    job = job_row(platform, job_id)
    assert job.state == "CANCELLED" and "Invalid qos" in job.reason and job.settled_at is not None
    assert held(platform, user_id) == 0


def test_two_submitters_at_once_send_each_job_exactly_once(platform):
    """A lease takeover overlapping the old holder's last run: both claim from the same rows."""
    user_id, _ = add_user(platform, "acc-two", balance="1000.00")
    ids = [_accept(platform, user_id) for _ in range(24)]
    with Calls(platform) as calls:
        a, b = Submitter(platform, "local", holder="a"), Submitter(platform, "local", holder="b")
        a.batch = b.batch = 5
        threads = [threading.Thread(target=lambda s=s: [None for _ in iter(s.submit_pass, 0)]) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(calls.tags) == sorted(tag(platform, i) for i in ids)  # each once, none twice
    with platform.db.session() as session:
        assert session.scalar(select(func.count(Job.id)).where(Job.native_id.is_(None))) == 0


def test_the_runner_submits_an_accepted_job_at_once(platform, server):
    _, token = add_user(platform, "acc-run")
    runner = Runner(platform, tasks=[submitter_task(platform, "local")], lease_seconds=6).start()
    try:
        with http(server, token) as client:
            job = client.post("/jobs", json={"script": QUICK}).json()
            poll_until(lambda: client.get(f"/jobs/{job['id']}").json()["native_id"], timeout=30,
                       what="the submitter task to send the job")
    finally:
        runner.stop()


def test_cli_submit_many_from_a_yaml_list_and_from_scripts(platform, server, tmp_path):
    user_id, token = add_user(platform, "acc-cli")
    (tmp_path / "a.sh").write_text(QUICK)
    (tmp_path / "b.sh").write_text("#!/bin/bash\n#SBATCH -c 1\necho b\n")
    (tmp_path / "jobs.yaml").write_text(yaml.safe_dump([
        {"file": "a.sh", "idempotency_key": "cli-a"},
        {"script": QUICK, "args": ["-c", "x"]},
    ]))
    env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": token, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["submit", "--many", str(tmp_path / "jobs.yaml")], env=env)
    assert listed.exit_code == 1, listed.output  # one of the two was refused
    assert "Accepted job" in listed.output and "(a.sh)" in listed.output and "refused" in listed.output
    scripts = runner.invoke(cli_app, ["submit", "-t", "3", "--parsable", "--many", str(tmp_path / "a.sh"),
                                      str(tmp_path / "b.sh")], env=env)
    assert scripts.exit_code == 0, scripts.output
    ids = [int(line) for line in scripts.output.split()]
    assert len(ids) == 2 and all(job_row(platform, i).time_limit_minutes == 3 for i in ids)
    assert count_jobs(platform, user_id) == 3
    missing = runner.invoke(cli_app, ["submit", "--many", str(tmp_path / "nope.sh")], env=env)
    assert missing.exit_code == 1 and "cannot read" in missing.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"script": "x"}')
    refused = runner.invoke(cli_app, ["submit", "--many", str(bad)], env=env)
    assert refused.exit_code == 1 and "list of jobs" in refused.output
    assert Path(tmp_path / "a.sh").exists()


@pytest.mark.slurm
def test_slurm_accepted_jobs_are_each_submitted_exactly_once(testbed, make_platform):
    """The Slurm test bed: N accepted jobs, two submitters of alpha at once (a takeover's overlap);
    squeue shows N jobs with N distinct tags, each the tag of its own job."""
    from conftest import slurm_clusters
    from computenet.services.jobs.job_accept import accept_job

    platform = make_platform(slurm_clusters(testbed))
    nonce = uuid.uuid4().hex[:8]  # the test bed is shared: other databases tag their job 1 too
    user_id, _ = add_user(platform, f"acc-tb-{nonce}")
    n = 12
    ids = [accept_job(platform, user_id, "#!/bin/bash\ntrue\n",
                      ["-M", "alpha", "--hold", "-t", "2", "-J", f"acc-{nonce}"]).job_id for _ in range(n)]
    submitters = [Submitter(platform, "alpha", holder=h) for h in ("one", "two")]
    for s in submitters:
        s.batch = 4

    def drain(submitter):
        while submitter.submit_pass():
            pass

    threads = [threading.Thread(target=drain, args=(s,)) for s in submitters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with platform.db.session() as session:
        natives = dict(session.execute(select(Job.id, Job.native_id).where(Job.id.in_(ids))).all())
    try:
        assert all(natives.values()), natives
        squeue = subprocess.run(["squeue", "--noheader", "--states=all", f"--name=acc-{nonce}", "--format=%A|%w"],
                                env={**os.environ, "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]},
                                capture_output=True, text=True, check=True).stdout.split()
        on_slurm = dict(line.split("|")[::-1] for line in squeue)  # tag -> Slurm id
        assert len(squeue) == n and len(on_slurm) == n, squeue  # n jobs, n distinct tags: each once
        assert on_slurm == {tag(platform, i): natives[i] for i in ids}
    finally:
        for native in natives.values():
            if native:
                platform.adapter("alpha").cancel(native)


def test_cancelling_an_accepted_job_before_it_is_sent_withdraws_it_and_it_is_never_sent(platform, server):
    user_id, token = add_user(platform, "acc-cancel")
    with Calls(platform) as calls, http(server, token) as client:
        job = client.post("/jobs", json={"script": QUICK}).json()
        cancelled = client.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED", cancelled.text
        assert Submitter(platform, "local").submit_pass() == 0
        assert calls.tags == [] and held(platform, user_id) == 0
        assert "cancelled by its owner" in job_row(platform, job["id"]).reason
        sent = client.post("/jobs", json={"script": QUICK}).json()  # once sent, cancel goes to the cluster
        Submitter(platform, "local").submit_pass()
        assert client.post(f"/jobs/{sent['id']}/cancel").status_code == 200


def test_hostile_items_in_a_batch_are_refused_one_by_one(platform, server):
    user_id, token = add_user(platform, "acc-hostile")
    jobs = [{"script": "#!/bin/bash\ntrue\x00\n"}, {"script": QUICK, "args": ["-J", "a\x00b"]},
            {"script": QUICK, "script_name": "../../etc/passwd"}, {"script": QUICK}]
    with http(server, token) as client:
        response = client.post("/jobs:batch", json={"jobs": jobs})
        assert response.status_code == 200, response.text
        items = response.json()["results"]
        assert items[3]["id"] and all(400 <= (i["status"] or 0) < 500 or i["id"] for i in items), items
        for item in items:
            if item["id"] is None:
                assert item["detail"]
        bad_key = client.post("/jobs:batch", json={"jobs": [{"script": QUICK, "idempotency_key": "x" * 201}]})
        assert bad_key.status_code == 422
    with platform.db.session() as session:
        names = list(session.scalars(select(Job.name).where(Job.owner_id == user_id)))
    assert all("\x00" not in n and "/" not in n for n in names)

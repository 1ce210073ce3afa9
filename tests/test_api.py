"""The REST API through the typed client, on a real server over loopback."""

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select

from computenet.client import ApiError, ComputeNetClient
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Job

from conftest import add_user, poll_until

HELLO = "#!/bin/bash\n#SBATCH -J hello -t 5\necho hello $SLURM_JOB_ID\nsleep 1.2\n"


class CountingAdapter:
    """The real local adapter, counting submit calls (to prove none happened)."""

    def __init__(self, inner):
        self.inner, self.submits = inner, 0
        self.name = inner.name

    def submit(self, request):
        self.submits += 1
        return self.inner.submit(request)

    def __getattr__(self, item):
        return getattr(self.inner, item)


@pytest.fixture
def counting(platform):
    platform.adapters["local"] = CountingAdapter(platform.adapters["local"])
    return platform.adapters["local"]


def job_rows(platform) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count(Job.id)))


def test_openapi_and_health(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/output", "/clusters", "/accounts/me"):
        assert "/v1" + path in schema["paths"]
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_token_required(server, platform):
    assert httpx.get(f"{server.url}/jobs").status_code == 401
    with ComputeNetClient(server.url, "cnet_forged") as c, pytest.raises(ApiError) as err:
        c.jobs()
    assert err.value.status == 401 and "invalid" in err.value.detail and err.value.code == "unauthenticated"


def test_tokens_are_stored_hashed(platform):
    from computenet.store.models import ApiToken
    _, token = add_user(platform, "dora")
    with platform.db.session() as session:
        stored = session.scalar(select(ApiToken.token_hash))
    assert token not in stored and len(stored) == 64


def test_submit_run_and_charge(alice, platform):
    job = alice.submit(HELLO, [], "hello.sh")
    assert job.state == "PENDING" and job.name == "hello" and job.cluster == "local" and job.partition == "local"
    poller = ClusterPoller(platform, "local")
    done = poll_until(lambda: (lambda j: j if j.settled else None)(alice.job(job.id)), step=poller.run_once,
                      what="job to be settled")
    assert done.state == "COMPLETED" and done.exit_code == 0
    assert alice.output(job.id).data == f"hello {job.native_id}\n"
    assert done.cost > 0
    me = alice.me()
    (acc,) = me.accounts
    kinds = [e.kind for e in reversed(acc.entries)]
    assert kinds == ["topup", "hold", "post"]  # money in, held at submission, posted at settlement
    (post,) = [e for e in acc.entries if e.kind == "post"]
    assert post.job_id == job.id and done.cost == -post.amount
    assert acc.balance == 100 + post.amount
    assert acc.reserved == 0 and acc.available == acc.balance
    # more passes change nothing
    for _ in range(3):
        poller.run_once()
    assert [e.kind for e in alice.me().accounts[0].entries].count("post") == 1
    events = [e.to_state for e in alice.job(job.id).events]
    assert events[0] == "SUBMITTING" and events[-1] == "COMPLETED" and "PENDING" in events


def test_users_see_only_their_own_jobs(alice, bob):
    job = alice.submit(HELLO)
    assert [j.id for j in alice.jobs()] == [job.id]
    assert bob.jobs() == []
    for call in (lambda: bob.job(job.id), lambda: bob.cancel(job.id), lambda: bob.output(job.id)):
        with pytest.raises(ApiError) as err:
            call()
        assert err.value.status == 404
    assert alice.job(job.id).state != "CANCELLED"


def test_cancel(alice, platform):
    job = alice.submit("#!/bin/bash\nsleep 60\n")
    alice.cancel(job.id)
    poller = ClusterPoller(platform, "local")
    done = poll_until(lambda: (lambda j: j if j.settled else None)(alice.job(job.id)), step=poller.run_once,
                      what="cancelled job to settle")
    assert done.state == "CANCELLED"


def test_output_offsets(alice, platform):
    job = alice.submit("#!/bin/bash\nfor i in 1 2 3; do echo line$i; done\necho ünïcødé\n")
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: alice.job(job.id).state == "COMPLETED", step=poller.run_once, what="job to end")
    first = alice.output(job.id, offset=0)
    assert first.data == "line1\nline2\nline3\nünïcødé\n" and first.finished
    rest = alice.output(job.id, offset=6)
    assert rest.data == "line2\nline3\nünïcødé\n"
    end = alice.output(job.id, offset=first.next_offset)
    assert end.data == "" and end.next_offset == first.next_offset
    assert "".join(alice.follow(job.id)) == first.data


BAD_INPUT = [
    ("#!/bin/bash\n#SBATCH -p nowhere\ntrue\n", [], 400, "unknown partition 'nowhere'"),
    ("#!/bin/bash\n#SBATCH -c 64\ntrue\n", [], 400, "64 cores"),
    ("#!/bin/bash\ntrue\n", ["--mem=1T"], 400, "memory"),
    ("#!/bin/bash\ntrue\n", ["-N", "3"], 400, "3 nodes"),
    ("#!/bin/bash\ntrue\n", ["--gpus=1"], 400, "GPUs"),
    ("#!/bin/bash\ntrue\n", ["-t", "3-00:00:00"], 400, "above the maximum"),
    ("#!/bin/bash\ntrue\n", ["-c", "-1"], 400, "cpus-per-task"),
    ("#!/bin/bash\ntrue\n", ["--ntasks=999999999"], 400, "absurdly large"),
    ("no shebang\n", [], 400, "interpreter line"),
    ("#!/bin/bash\n#SBATCH --frobnicate\ntrue\n", [], 400, "line 2: unknown sbatch option --frobnicate"),
    ("#!/bin/bash\ntrue\n", ["-o", "/etc/passwd"], 400, "outside your space"),
    ("#!/bin/bash\ntrue\n", ["-D", "../../other-user"], 400, "outside your space"),
    ("#!/bin/bash\ntrue\n", ["-e", "logs/\nx.err"], 400, "control characters"),
    ("#!/bin/bash\ntrue\n", ["-o", "out-%Z.txt"], 400, "unknown pattern %Z"),
    ("#!/bin/bash\ntrue\n", ["-A", "someone-elses"], 400, "not a member"),
    ("#!/bin/bash\ntrue\n", ["-M", "atlantis"], 400, "unknown cluster"),
    ("#!/bin/bash\ntrue\n", ["--uid=0"], 400, "not allowed"),
    ("#!/bin/bash\ntrue\n", ["--array=0-3", "-t", "1"], 400, "arrays"),  # the option table: local runs no arrays
    ("#!/bin/bash\ntrue\n", ["-d", "afterok:99999"], 400, "no such job"),
]


@pytest.mark.parametrize("script,args,status,fragment", BAD_INPUT)
def test_bad_input_leaves_nothing_behind(alice, platform, counting, script, args, status, fragment):
    with pytest.raises(ApiError) as err:
        alice.submit(script, args)
    assert err.value.status == status
    assert fragment in err.value.detail
    assert job_rows(platform) == 0
    # every refusal comes before the scheduler (an array too: the option table rules the local cluster out)
    assert counting.submits == 0


def test_insufficient_funds(platform, server, counting):
    _, token = add_user(platform, "poor", balance="1.00")
    with ComputeNetClient(server.url, token) as c:
        # 4 cores x 60 min at 36.00 per core-hour = 144.00 > 1.00
        with pytest.raises(ApiError) as err:
            c.submit("#!/bin/bash\n#SBATCH -c 4 -t 60\ntrue\n")
        assert err.value.status == 402 and "144.00" in err.value.detail
        assert job_rows(platform) == 0 and counting.submits == 0
        # a job that fits the balance is accepted, and its maximum is reserved
        ok = c.submit("#!/bin/bash\n#SBATCH -c 1 -t 1\nsleep 30\n")
        assert ok.max_cost == Decimal("0.60")
        me = c.me().accounts[0]
        assert me.reserved == ok.max_cost and me.available == me.balance - ok.max_cost
        c.cancel(ok.id)


def test_oversized_and_non_utf8_bodies(alice, server, counting, platform):
    token = alice.http.headers["Authorization"]
    big = httpx.post(f"{server.url}/jobs", headers={"Authorization": token, "Content-Type": "application/json"},
                     content=b'{"script": "#!/bin/bash\\n' + b"#" * (50 * 1024 * 1024) + b'"}')
    assert big.status_code == 413 and "larger than" in big.json()["detail"]
    bad = httpx.post(f"{server.url}/jobs", headers={"Authorization": token, "Content-Type": "application/json"},
                     content=b'{"script": "#!/bin/bash\\necho \xff\xfe"}')
    assert bad.status_code in (400, 422)
    assert job_rows(platform) == 0 and counting.submits == 0


def test_shell_metacharacters_stay_data(alice, platform, tmp_path):
    """A name and paths full of metacharacters reach the job as plain text."""
    evil = "x; touch /tmp/cnet-pwned-$$ `id` $(id) | & > <"
    job = alice.submit("#!/bin/bash\necho \"$SLURM_JOB_NAME\"\n", ["-J", evil, "-o", "out dir/o'ut $x.txt"])
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: alice.job(job.id).state == "COMPLETED", step=poller.run_once, timeout=120, what="job to end")
    assert alice.output(job.id).data == evil + "\n"
    assert alice.job(job.id).stdout_path.endswith("/out dir/o'ut $x.txt")
    import glob
    assert not glob.glob("/tmp/cnet-pwned-*")


def test_clusters_listing(alice):
    (cluster,) = alice.clusters()
    assert cluster.name == "local" and cluster.health == "online"
    (part,) = cluster.partitions
    assert part.cores_per_node == 4 and str(part.price_core_hour) == "36.000000"

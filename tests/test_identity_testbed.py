"""Jobs run as each user's own Unix identity, never as the service account (real Slurm, runuser)."""

import os
import pwd
import subprocess
import uuid
from pathlib import Path

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ApiError, ComputeNetClient
from computenet.services.tenancy import accounts, identities
from computenet.services import audit
from computenet.services.jobs.poller import ClusterPoller

from conftest import add_user, poll_until, slurm_clusters

pytestmark = pytest.mark.slurm
LOGINS = ("cnet-ann", "cnet-bob")


@pytest.fixture(scope="module")
def unix_users(testbed):
    """Two Unix logins with Slurm associations on alpha (created once; left for later runs)."""
    if os.geteuid() != 0:
        pytest.skip("creating Unix users needs root")
    env = {**os.environ, "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}
    for login in LOGINS:
        try:
            pwd.getpwnam(login)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", login], check=True)
        subprocess.run(["sacctmgr", "-i", "add", "user", f"name={login}", "account=research", "cluster=alpha"],
                       env=env, capture_output=True, timeout=60)  # "already exists" is fine
    return {login: pwd.getpwnam(login).pw_uid for login in LOGINS}


def test_each_users_jobs_and_files_belong_to_that_user(testbed, make_platform, unix_users):
    clusters = [c.model_copy(update={"run_as_users": True}) if c.name == "alpha" else c
                for c in slurm_clusters(testbed)]
    platform = make_platform(clusters)
    # names of this run: the test bed's work area outlives the database, and another test's (or the
    # other pass's) "ann" may have left ann/jobs/1 there as root, which cnet-ann cannot write into
    ann, bob = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("ann", "bob"))
    tokens = {}
    for name, login in zip((ann, bob), LOGINS):
        user_id, tokens[name] = add_user(platform, name, balance="20.00")
        with platform.db.session() as session:
            identities.map_user(session, accounts.get_user(session, name), login, "alpha", audit.SYSTEM)
    add_user(platform, "cid", balance="20.00")  # no identity anywhere
    poller = ClusterPoller(platform, "alpha")
    script = "#!/bin/bash\n#SBATCH -M alpha -c 1 -t 5\nid -un > whoami.txt\necho data > result.dat\n"
    jobs = {}
    with EmbeddedServer(platform, run_services=False) as server:
        for name in (ann, bob):
            with ComputeNetClient(server.url, tokens[name]) as c:
                jobs[name] = c.submit(script)
        for name, job in jobs.items():
            with ComputeNetClient(server.url, tokens[name]) as c:
                done = poll_until(lambda: (lambda j: j if j.state == "COMPLETED" else None)(c.job(job.id)),
                                  step=poller.run_once, timeout=90, what=f"{name}'s job")
                workdir = Path(done.workdir)
                login = LOGINS[0] if name == ann else LOGINS[1]
                assert (workdir / "whoami.txt").read_text().strip() == login
                assert (workdir / "result.dat").stat().st_uid == unix_users[login]
                assert workdir.parent.parent.stat().st_uid == unix_users[login]  # the user's space is theirs
                assert oct(workdir.parent.parent.stat().st_mode & 0o777) == "0o750"
        with ComputeNetClient(server.url, add_user(platform, "dan", balance="5.00")[1]) as dan:
            with pytest.raises(ApiError) as err:
                dan.submit("#!/bin/bash\n#SBATCH -M alpha -t 5\ntrue\n")
            assert "no Unix identity on cluster alpha" in err.value.detail
            moved = dan.submit("#!/bin/bash\n#SBATCH -t 5\ntrue\n")  # unpinned: beta runs as the service
            assert moved.cluster == "beta"
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "User", "-j",
                            ",".join(j.native_id for j in jobs.values())],
                           env={**os.environ, "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]},
                           capture_output=True, text=True, timeout=60).stdout.split()
    assert sorted(sacct) == sorted(LOGINS)  # Slurm's own record: each job is its user's


def test_unix_names_are_checked(platform):
    from computenet.services.errors import InvalidRequest

    add_user(platform, "eve")
    with platform.db.session() as session:
        eve = accounts.get_user(session, "eve")
        for bad in ("root", "Eve", "a b", "-x", "x" * 40, "$(id)"):
            with pytest.raises(InvalidRequest):
                identities.map_user(session, eve, bad, None, audit.SYSTEM)

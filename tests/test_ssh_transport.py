"""The SSH transport for real: an OpenSSH server on loopback in front of the test bed's alpha."""

import pytest
from sqlalchemy import select

from computenet.clusters.base import ClusterError
from computenet.clusters.slurm.adapter import SlurmCluster
from computenet.clusters.slurm.ssh import SshTransport
from computenet.config import ClusterConfig, Price
from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Charge

from conftest import add_user, poll_until

pytestmark = pytest.mark.slurm


def transport(ssh_login, testbed, **extra):
    return SshTransport(ssh_login["host"], port=ssh_login["port"], username=ssh_login["user"],
                        client_keys=[ssh_login["key"]], known_hosts=ssh_login["known_hosts"],
                        slurm_conf=testbed["SLURM_CONF_ALPHA"], **extra)


def test_commands_run_on_the_login_node_quoted_and_clean(ssh_login, testbed, tmp_path):
    t = transport(ssh_login, testbed)
    try:
        echoed = t.run(["printf", "%s|", "a b", "$(id)", "`id`", "; rm -rf /", "it's"])
        assert echoed.returncode == 0 and echoed.stdout == "a b|$(id)|`id`|; rm -rf /|it's|"  # nothing evaluated
        env = t.run(["env"]).stdout.splitlines()
        assert sorted(line.split("=")[0] for line in env) == ["LANG", "PATH", "SLURM_CONF"]
        assert t.run(["sh", "-c", "exit 3"]).returncode == 3
        t.ensure_dir(str(tmp_path / "deep" / "er"))
        assert (tmp_path / "deep" / "er").is_dir()
        assert t.run(["cat"], stdin="from stdin\n").stdout == "from stdin\n"
    finally:
        t.close()
    with pytest.raises(ValueError, match="known_hosts"):
        SshTransport("127.0.0.1", port=ssh_login["port"])


def test_wrong_host_key_and_dead_port_are_cluster_errors(ssh_login, testbed, tmp_path):
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh_login['port']} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIHsX0H7Qy3yW0Lq5oQ0bXq7ZXbKk1e9oQ9Ti1vJ0a8Zb\n")
    t = SshTransport("127.0.0.1", port=ssh_login["port"], username="root", client_keys=[ssh_login["key"]],
                     known_hosts=str(wrong))
    with pytest.raises(ClusterError, match="ssh 127.0.0.1"):
        t.run(["true"])
    t.close()
    dead = SshTransport("127.0.0.1", port=1, username="root", client_keys=[ssh_login["key"]],
                        known_hosts=ssh_login["known_hosts"], connect_timeout=3)
    with pytest.raises(ClusterError):
        dead.run(["true"])
    dead.close()


def test_a_job_through_ssh_is_submitted_tracked_and_charged(ssh_login, testbed, make_platform, tmp_path):
    import os
    from decimal import Decimal
    from pathlib import Path

    work = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")
    cfg = ClusterConfig(name="alpha", kind="slurm", transport="ssh", ssh_host=ssh_login["host"],
                        ssh_port=ssh_login["port"], ssh_user="root", ssh_key=ssh_login["key"],
                        ssh_known_hosts=ssh_login["known_hosts"], slurm_conf=testbed["SLURM_CONF_ALPHA"],
                        workdir_root=work, poll_interval_s=0.5,
                        prices={"cpu": Price(core_hour=Decimal("0.05")), "debug": Price(core_hour=Decimal("0.08"))})
    platform = make_platform([cfg])
    assert isinstance(platform.adapter("alpha"), SlurmCluster)
    assert isinstance(platform.adapter("alpha").transport, SshTransport)
    _, token = add_user(platform, "sal", balance="50.00")
    poller = ClusterPoller(platform, "alpha")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        assert {c.name: c.health for c in client.clusters()} == {"alpha": "online"}
        job = client.submit("#!/bin/bash\n#SBATCH -c 2 -t 5\necho over ssh\n")
        done = poll_until(lambda: (lambda j: j if j.settled else None)(client.job(job.id)), step=poller.run_once,
                          timeout=90, what="settled")
        assert done.state == "COMPLETED" and client.output(job.id).data == "over ssh\n"
    with platform.db.session() as session:
        assert len(session.scalars(select(Charge).where(Charge.job_id == job.id)).all()) == 1
    platform.adapter("alpha").transport.close()


def test_a_users_job_over_ssh_runs_as_that_user_with_their_key(ssh_login, testbed, make_platform, tmp_path):
    import os
    import pwd
    import subprocess
    from decimal import Decimal
    from pathlib import Path

    from computenet.services.tenancy import accounts, identities
    from computenet.services import audit

    login = "cnet-sshu"
    try:
        pwd.getpwnam(login)
    except KeyError:  # a login shell, and an account that is not locked: sshd lets it in with a key
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", login], check=True)
        subprocess.run(["usermod", "-p", "*", login], check=True)
    subprocess.run(["sacctmgr", "-i", "add", "user", f"name={login}", "account=research", "cluster=alpha"],
                   env={**os.environ, "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}, capture_output=True, timeout=60)
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / login)], check=True)
    with open(ssh_login["authorized_keys"], "a") as handle:
        handle.write((keys / f"{login}.pub").read_text())
    work = str(Path(os.environ["COMPUTENET_TESTBED"]) / "work")
    cfg = ClusterConfig(name="alpha", kind="slurm", transport="ssh", ssh_host=ssh_login["host"],
                        ssh_port=ssh_login["port"], ssh_user="root", ssh_key=ssh_login["key"],
                        ssh_known_hosts=ssh_login["known_hosts"], ssh_user_key=str(keys / "{user}"),
                        run_as_users=True, slurm_conf=testbed["SLURM_CONF_ALPHA"], workdir_root=work,
                        prices={"*": Price(core_hour=Decimal("0.05"))})
    platform = make_platform([cfg])
    user_id, token = add_user(platform, "sue", balance="10.00")
    with platform.db.session() as session:
        identities.map_user(session, accounts.get_user(session, "sue"), login, "alpha", audit.SYSTEM)
    poller = ClusterPoller(platform, "alpha")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -c 1 -t 5\nid -un > who.txt\necho \"$HOME|$USER|$SHELL\" > env.txt\n")
        done = poll_until(lambda: (lambda j: j if j.settled else None)(client.job(job.id)), step=poller.run_once,
                          timeout=90, what="settled")
    who = Path(done.workdir) / "who.txt"
    assert who.read_text().strip() == login and who.stat().st_uid == pwd.getpwnam(login).pw_uid
    assert Path(done.workdir).stat().st_uid == pwd.getpwnam(login).pw_uid  # made by the user over their login
    entry = pwd.getpwnam(login)  # their login's HOME and SHELL (sshd's), never the service's or none
    assert (Path(done.workdir) / "env.txt").read_text().strip() == f"{entry.pw_dir}|{login}|{entry.pw_shell}"
    platform.adapter("alpha").transport.close()

"""A web shell on a cluster's login node, as the user's mapped Unix login (cnet admin map-user),
never as the service account.

For a cluster whose commands run on this host (the local executor, Slurm with the local
transport) the login node is this host: the shell is the login's own shell from the password
database, started under util-linux setpriv with the login's uid, gid and groups and no new
privileges (clusters/local/isolation.py), in its home, with a clean environment. A login that is
root, missing, or has no shell (nologin) is refused. For a cluster reached over SSH the shell is
an SSH session to its login node as the login, with the login's own key (ssh_user_key, as for
run_as_users jobs), never the service account's; REST clusters have no login node to reach.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass

from ...clusters.local.isolation import IsolationError, mapped_login
from ...messages import msg
from ...store.models import Cluster, User
from .. import audit
from ..tenancy import identities
from ..errors import NotFound, Unavailable
from ..platform import Platform

NO_SHELL = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "")


@dataclass(frozen=True)
class LoginShell:
    cluster: str
    login: str
    argv: list[str]
    env: dict[str, str]
    home: str
    ssh: dict | None = None  # for an SSH cluster: asyncssh.connect's arguments (argv/env unused)


def prepare(platform: Platform, user_id: int, cluster_name: str, source: str | None = None) -> LoginShell:
    """What to start for this user's shell on the cluster's login node; refusals name the reason.
    With ``source`` (where the user connects from) the opening is audited."""
    from sqlalchemy import select

    with platform.db.session() as session:
        user = session.get(User, user_id)
        cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
        login = identities.unix_user_for(session, user.id, cluster.id) if cluster is not None and user else None
        if login is None:  # an unknown cluster and one without a login for you look the same
            raise NotFound(msg("no Unix login of yours on cluster %(cluster)s", cluster=cluster_name))
        config = platform.cluster_config(cluster_name)
        if config.kind != "local" and config.transport == "ssh":
            if not config.ssh_user_key:
                raise Unavailable(msg("a web shell on %(cluster)s needs each user's own SSH key (ssh_user_key); "
                                      "it never uses the service account", cluster=cluster_name))
            if source is not None:
                audit.record(session, audit.Who(user.name, source), "shell.open", f"cluster:{cluster_name}",
                             unix_user=login)
            ssh = {"host": config.ssh_host, "port": config.ssh_port, "username": login,
                   "client_keys": [config.ssh_user_key.format(user=login)],
                   "known_hosts": None if config.ssh_accept_any_host_key else config.ssh_known_hosts,
                   "agent_path": None, "config": None}
            return LoginShell(cluster_name, login, [], {}, "", ssh)
        if config.kind != "local" and config.transport != "local":
            raise Unavailable(msg("a web shell on %(cluster)s is not offered yet: its login node is reached "
                                  "over %(transport)s", cluster=cluster_name, transport=config.transport))
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            raise Unavailable(msg("this server cannot start a shell as another user (it needs root and setpriv)"))
        try:
            who = mapped_login(login)
        except IsolationError as exc:
            raise Unavailable(msg("cannot open a shell as %(login)s: %(why)s", login=login, why=str(exc))) from None
        shell = pwd.getpwnam(login).pw_shell
        if shell in NO_SHELL or not os.path.isabs(shell):
            raise Unavailable(msg("login %(login)s has no shell on %(cluster)s", login=login, cluster=cluster_name))
        if source is not None:
            audit.record(session, audit.Who(user.name, source), "shell.open", f"cluster:{cluster_name}",
                         unix_user=login)
    argv = [shutil.which("setpriv"), f"--reuid={who.uid}", f"--regid={who.gid}", "--init-groups",
            "--no-new-privs", "--", shell, "-l"]
    env = {"HOME": who.home, "USER": login, "LOGNAME": login, "SHELL": shell, "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"}
    return LoginShell(cluster_name, login, argv, env, who.home)

"""Transports run an argv list somewhere and hand back what it printed.

The parsers never know where a command ran: an SSH transport to a remote
login node only has to implement ``run``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from ...domain import job_env
from ..base import ClusterError

# What the Slurm commands that start no job get of the server's environment (never its database
# URLs, tokens). sbatch gets a job's login environment instead (job_environment): the job inherits
# sbatch's (--export=ALL is Slurm's default).
_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "LOGNAME")


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Transport(Protocol):
    account: str  # whom the commands run as on the cluster, unless as_user

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout: float = 60,
            as_user: str | None = None, env: Mapping[str, str] | None = None) -> CommandResult:
        """``env``: the whole environment of the command (with SLURM_CONF added), instead of the default."""
        ...

    def job_environment(self, login: str | None, home: str | None) -> dict[str, str]:
        """A job's login environment for sbatch there (job_env.login_environment with its PATH)."""
        ...

    def ensure_dir(self, path: str, as_user: str | None = None, owner: str | None = None) -> None:
        """Create a directory where the cluster's nodes see it (sbatch won't): as ``as_user``,
        or (``owner``) created by the service and handed to that user."""
        ...


UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def check_unix_user(name: str) -> str:
    if not UNIX_USER.match(name) or name == "root":
        raise ValueError(f"invalid Unix user {name!r} for running jobs (a login name, never root)")
    return name


class LocalTransport:
    """Runs Slurm client commands on this host against one SLURM_CONF."""

    def __init__(self, slurm_conf: str | None = None, bin_dir: str | None = None) -> None:
        self.slurm_conf = slurm_conf
        self.bin_dir = bin_dir

    @property
    def account(self) -> str:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(base) if base is not None else {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        env.setdefault("LANG", "C.UTF-8")
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

    def job_environment(self, login: str | None, home: str | None) -> dict[str, str]:
        # this host's PATH (the service account's tools, Slurm's among them) and locale
        path = os.environ.get("PATH") or job_env.DEFAULT_PATH
        if self.bin_dir:
            path = f"{self.bin_dir}:{path}"
        return job_env.login_environment(login, home, path=path, host=dict(os.environ))

    def ensure_dir(self, path: str, as_user: str | None = None, owner: str | None = None) -> None:
        if as_user or owner:
            argv = ["mkdir", "-p", "--", path] if as_user else ["install", "-d", "-o", check_unix_user(owner),
                                                               "-m", "0750", "--", path]
            result = self.run(argv, as_user=as_user, timeout=30)
            if result.returncode != 0:
                raise ClusterError(f"cannot create {path} for {as_user or owner}: {result.stderr.strip()}")
            return
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ClusterError(f"cannot create {path}: {exc.strerror}") from None

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout: float = 60,
            as_user: str | None = None, env: Mapping[str, str] | None = None) -> CommandResult:
        if not argv:
            raise ValueError("empty argv")
        command = list(argv)
        if self.bin_dir and command[0] not in ("mkdir", "install"):
            command[0] = os.path.join(self.bin_dir, command[0])
        if as_user:
            # the job's identity: the service (root) drops to the user; otherwise sudo must allow it
            who = check_unix_user(as_user)
            command = (["runuser", "-u", who, "--"] if os.geteuid() == 0 else ["sudo", "-n", "-u", who, "--"]) + command
        started = time.monotonic()
        try:
            proc = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=self.environment(env),
                check=False,
            )
        except FileNotFoundError:
            raise ClusterError(f"{command[0]} not found: is the Slurm client installed?") from None
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

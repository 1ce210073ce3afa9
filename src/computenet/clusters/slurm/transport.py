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
from typing import Protocol, Sequence

from ..base import ClusterError

# The job inherits sbatch's environment (--export=ALL is Slurm's default), so
# sbatch must never see the server's own variables (database URLs, tokens).
_SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "LOGNAME")


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class Transport(Protocol):
    def run(self, argv: Sequence[str], stdin: str | None = None, timeout: float = 60,
            as_user: str | None = None) -> CommandResult: ...

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

    def environment(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _SAFE_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        env.setdefault("LANG", "C.UTF-8")
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        return env

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
            as_user: str | None = None) -> CommandResult:
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
                env=self.environment(),
                check=False,
            )
        except FileNotFoundError:
            raise ClusterError(f"{command[0]} not found: is the Slurm client installed?") from None
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        return CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)

"""Running Slurm commands on a cluster's login node over SSH (asyncssh).

The argv is quoted for the remote shell with shlex.join and run under
``env -i`` with a fixed PATH (and the cluster's SLURM_CONF, if given), so
neither user text nor the login shell's environment can change the command.
sbatch gets a job's login environment instead (job_environment), never the
service's: as a user (run_as_users), HOME and SHELL are that login's own.
One connection per transport, kept open and reopened when it drops; the
asyncio loop lives in a background thread, so the adapters stay synchronous.

Port forwards (``forward``) reach a node the platform cannot reach itself (an interactive
session's server): a port on 127.0.0.1 here, tunnelled over the service's connection to one
host and port as the login node sees them; one per key, closed by ``close_forward``.
"""

from __future__ import annotations

import asyncio
import shlex
import threading
import time
from typing import Mapping, Sequence

from ...domain import job_env
from ..base import ClusterError
from .transport import CommandResult, check_unix_user

REMOTE_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
# set by sshd from the login's passwd entry; expanded by its shell, never text of ours
_FROM_LOGIN = ('HOME="$HOME"', 'SHELL="$SHELL"')


class SshTransport:
    def __init__(self, host: str, *, port: int = 22, username: str | None = None, client_keys: Sequence[str] = (),
                 known_hosts: str | None = None, accept_any_host_key: bool = False, slurm_conf: str | None = None,
                 bin_dir: str | None = None, connect_timeout: float = 15.0,
                 user_key_template: str | None = None) -> None:
        if known_hosts is None and not accept_any_host_key:
            raise ValueError(f"ssh to {host}: give a known_hosts file (or accept_any_host_key for a test bed)")
        self.host, self.port, self.username = host, port, username
        self.client_keys = list(client_keys)
        self.known_hosts = known_hosts
        self.slurm_conf, self.bin_dir = slurm_conf, bin_dir
        self.connect_timeout = connect_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"ssh-{host}", daemon=True)
        self._thread.start()
        # a user's jobs go over the user's own connection, with the user's key: "{user}" in the path
        self.user_key_template = user_key_template
        self._conns: dict[str | None, object] = {}
        self._lock = threading.Lock()
        self._forwards: dict[str, tuple[object, object, tuple[str, int]]] = {}  # key: (conn, listener, dest)
        self._connecting: dict[str | None, asyncio.Lock] = {}  # used in the loop's thread only

    @property
    def account(self) -> str:
        import getpass

        return self.username or getpass.getuser()  # asyncssh's default login is the local user's name

    def job_environment(self, login: str | None, home: str | None) -> dict[str, str]:
        path = f"{self.bin_dir.rstrip('/')}:{REMOTE_PATH}" if self.bin_dir else REMOTE_PATH
        return job_env.login_environment(login, home, path=path)  # nothing of this host's

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None = None, as_user: str | None = None) -> str:
        """The remote command line: every word quoted, a clean environment (``env``, or PATH and LANG)."""
        if not argv:
            raise ValueError("empty argv")
        words = list(argv)
        if self.bin_dir and words[0] not in ("mkdir", "install"):
            words[0] = f"{self.bin_dir.rstrip('/')}/{words[0]}"
        variables = dict(env) if env is not None else {"PATH": REMOTE_PATH, "LANG": "C.UTF-8"}
        if self.slurm_conf:
            variables["SLURM_CONF"] = self.slurm_conf
        prefix = ["env", "-i"] + [f"{name}={value}" for name, value in variables.items()]
        own = [word for word in _FROM_LOGIN if as_user and env is not None and word.split("=")[0] not in variables]
        line = shlex.join(prefix + words)
        return line.replace("env -i ", "env -i " + " ".join(own) + " ", 1) if own else line

    async def _connection(self, as_user: str | None):
        # commands (one at a time) and forwards (any time) share it: one connect, not two racing
        lock = self._connecting.setdefault(as_user, asyncio.Lock())
        async with lock:
            return await self._connect(as_user)

    async def _connect(self, as_user: str | None):
        import asyncssh

        conn = self._conns.get(as_user)
        if conn is None or conn.is_closed():
            if as_user is None:
                username, keys = self.username, self.client_keys or None
            else:
                username, keys = as_user, [self.user_key_template.format(user=as_user)]
            conn = self._conns[as_user] = await asyncio.wait_for(asyncssh.connect(
                self.host, port=self.port, username=username, client_keys=keys,
                known_hosts=self.known_hosts if self.known_hosts is not None else None,
                agent_path=None, config=None), self.connect_timeout)
        return conn

    async def _run(self, command: str, stdin: str | None, timeout: float, as_user: str | None):
        conn = await self._connection(as_user)
        return await asyncio.wait_for(conn.run(command, input=stdin, check=False), timeout)

    def run(self, argv: Sequence[str], stdin: str | None = None, timeout: float = 60,
            as_user: str | None = None, env: Mapping[str, str] | None = None) -> CommandResult:
        import asyncssh

        if as_user:  # never a user's job as the service account: their own login, with their own key
            check_unix_user(as_user)
            if not self.user_key_template:
                raise ClusterError(f"ssh {self.host}: running as {as_user} needs per-user keys (ssh_user_key)")
        command = self.command(argv, env, as_user)
        started = time.monotonic()
        with self._lock:  # one command at a time per connection keeps the order of submissions
            future = asyncio.run_coroutine_threadsafe(self._run(command, stdin, timeout, as_user), self._loop)
            try:
                result = future.result(timeout + self.connect_timeout + 5)
            except (asyncssh.Error, OSError) as exc:
                self._drop(as_user)
                raise ClusterError(f"ssh {self.host}:{self.port}: {exc}") from None
            except (asyncio.TimeoutError, TimeoutError):
                self._drop(as_user)
                raise ClusterError(f"ssh {self.host}:{self.port}: {argv[0]} did not answer within {timeout:.0f} s") \
                    from None
        if result.exit_status is None:  # killed by a signal on the far side
            raise ClusterError(f"ssh {self.host}: {argv[0]} ended by signal {result.exit_signal}")
        return CommandResult(tuple(argv), result.exit_status, result.stdout or "", result.stderr or "",
                             time.monotonic() - started)

    def ensure_dir(self, path: str, as_user: str | None = None, owner: str | None = None) -> None:
        # the user's own space: made by the service for its owner; inside it, the user makes their own
        argv = (["install", "-d", "-o", check_unix_user(owner), "-m", "0750", "--", path] if owner and not as_user
                else ["mkdir", "-p", "--", path])
        result = self.run(argv, timeout=30, as_user=as_user)
        if result.returncode != 0:
            raise ClusterError(f"cannot create {path} on {self.host}: {result.stderr.strip()}")

    async def _forward(self, key: str, dest: tuple[str, int]) -> int:
        conn = await self._connection(None)
        held = self._forwards.get(key)
        if held is not None:
            if held[0] is conn and held[2] == dest:
                return held[1].get_port()
            held[1].close()  # its connection dropped (or another destination): a fresh one
        listener = await conn.forward_local_port("127.0.0.1", 0, dest[0], dest[1])
        self._forwards[key] = (conn, listener, dest)
        return listener.get_port()

    def forward(self, key: str, dest_host: str, dest_port: int) -> tuple[str, int]:
        """(host, port) here that reach dest_host:dest_port from the login node; kept under ``key``."""
        import asyncssh

        future = asyncio.run_coroutine_threadsafe(self._forward(key, (dest_host, int(dest_port))), self._loop)
        try:
            return "127.0.0.1", future.result(self.connect_timeout + 5)
        except (asyncssh.Error, OSError) as exc:
            self._drop(None)
            raise ClusterError(f"ssh {self.host}:{self.port}: cannot forward to {dest_host}:{dest_port}: {exc}") \
                from None
        except (asyncio.TimeoutError, TimeoutError):
            self._drop(None)
            raise ClusterError(f"ssh {self.host}:{self.port}: no forward to {dest_host}:{dest_port} within "
                               f"{self.connect_timeout + 5:.0f} s") from None

    def forwards(self) -> list[str]:
        return list(self._forwards)

    def close_forward(self, key: str) -> None:
        held = self._forwards.pop(key, None)
        if held is not None:
            self._loop.call_soon_threadsafe(held[1].close)

    def _drop(self, as_user: str | None = None) -> None:
        conn = self._conns.pop(as_user, None)
        if conn is not None:
            self._loop.call_soon_threadsafe(conn.close)

    def close(self) -> None:
        for key in list(self._forwards):
            self.close_forward(key)
        for user in list(self._conns):
            self._drop(user)
        self._loop.call_soon_threadsafe(self._loop.stop)

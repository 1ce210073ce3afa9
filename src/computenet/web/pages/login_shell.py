"""A web shell on a cluster's login node as the user's mapped Unix login (services/apps/login_shell):
the page (xterm.js, static/shell.js) and its WebSocket, which bridges the browser to a PTY whose
process runs as that login (this host), or to an SSH session as that login (an SSH cluster).
The messages are terminado's, as for a shell session's node."""

from __future__ import annotations

import asyncio
import codecs
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import termios
import time

from fastapi import APIRouter, Path, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...api.session_proxy import Refused, _caller, _same_origin
from ...services.apps import login_shell
from ...services.errors import ServiceError
from ..render import page
from ..viewer import viewer
from .projects import platform_of, refused
from .sessions import SHELL_CSP

router = APIRouter(include_in_schema=False)
CLUSTER_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
READ_BYTES = 65536


@router.get("/portal/clusters/{name}/shell")
def shell_page(request: Request, name: str = Path(pattern=CLUSTER_NAME)):
    who = viewer(request)
    try:
        shell = login_shell.prepare(platform_of(request), who.user.id, name)
    except ServiceError as exc:
        return refused(request, who, exc)
    response = page(request, who, "sessions/shell.html", socket=f"/portal/clusters/{name}/shell/socket", back="clusters",
                    title=who.gettext("Shell on %(cluster)s", cluster=name),
                    lead=who.gettext("A terminal on the login node of %(cluster)s, as your login there, %(login)s.",
                                     cluster=name, login=shell.login))
    response.headers["Content-Security-Policy"] = SHELL_CSP
    return response


def _start(shell: login_shell.LoginShell) -> tuple[int, int]:
    """The shell on a new PTY: subprocess's fork-exec (safe in a threaded server, unlike forkpty
    followed by Python code), util-linux setsid making the PTY its controlling terminal (job control)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([shutil.which("setsid") or "setsid", "--ctty", *shell.argv], stdin=slave,
                                stdout=slave, stderr=slave, env=shell.env, close_fds=True,
                                cwd=shell.home if os.path.isdir(shell.home) else "/")
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return proc.pid, master


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _end(pid: int, fd: int) -> None:
    """Hang up the shell's session (setsid made its first process the leader), then kill what stays; reap it."""
    for sig, wait_s in ((signal.SIGHUP, 1.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait_s
        try:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            else:
                break
        except ChildProcessError:
            break
    os.close(fd)


async def _deny(websocket: WebSocket, status: int, detail: str) -> None:
    """An HTTP answer to the handshake where the server can send one, else a close."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status_code=status))
    else:
        await websocket.close(code=4000 + status, reason=detail[:120])


@router.websocket("/portal/clusters/{name}/shell/socket")
async def shell_socket(websocket: WebSocket, name: str):
    platform = websocket.app.state.platform
    try:
        if not _same_origin(websocket.headers, websocket.url.scheme):
            raise Refused(403, "a connection from another site is refused")
        user_id = await run_in_threadpool(_caller, platform, websocket.cookies, None)
        client = websocket.client.host if websocket.client else "unknown"
        shell = await run_in_threadpool(login_shell.prepare, platform, user_id, name, f"portal {client}")
    except (Refused, ServiceError) as exc:
        await _deny(websocket, exc.status if isinstance(exc, Refused) else exc.status_code,
                    exc.detail if isinstance(exc, Refused) else str(exc))
        return
    try:
        terminal = await (_SshTerminal.open(shell) if shell.ssh else _PtyTerminal.open(shell))
    except (OSError, asyncio.TimeoutError, _ssh_errors()) as exc:
        await _deny(websocket, 502, f"cannot reach the login node of {name}: {type(exc).__name__}")
        return
    await websocket.accept()

    async def to_browser():
        while (text := await terminal.read()) is not None:
            await websocket.send_text(json.dumps(["stdout", text]))
        await websocket.send_text(json.dumps(["disconnect", 1]))

    async def to_shell():
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                kind, *rest = json.loads(message.get("text") or "")
            except (ValueError, TypeError):
                continue
            if kind == "stdin" and rest and isinstance(rest[0], str):
                await terminal.write(rest[0])
            elif kind == "set_size" and len(rest) == 2 and all(isinstance(v, int) and 0 < v < 1000 for v in rest):
                terminal.resize(*rest)

    tasks = [asyncio.create_task(to_browser()), asyncio.create_task(to_shell())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await terminal.close()
        try:
            await websocket.close()
        except (RuntimeError, WebSocketDisconnect):
            pass


def _ssh_errors():
    import asyncssh

    return asyncssh.Error


class _PtyTerminal:
    """The login's shell on this host, in a PTY of its own."""

    @classmethod
    async def open(cls, shell: login_shell.LoginShell) -> "_PtyTerminal":
        self = cls()
        self.pid, self.fd = _start(shell)
        self.loop = asyncio.get_running_loop()
        self.output: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.loop.add_reader(self.fd, self._readable)
        return self

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_BYTES)
        except OSError:  # EIO: the shell has ended
            data = b""
        if not data:
            self.loop.remove_reader(self.fd)
        self.output.put_nowait(data or None)

    async def read(self) -> str | None:
        data = await self.output.get()
        return None if data is None else self.decoder.decode(data)

    async def write(self, text: str) -> None:
        # in a thread: a program that does not read its input fills the PTY and blocks the write
        await run_in_threadpool(_write_all, self.fd, text.encode("utf-8", "replace"))

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def close(self) -> None:
        self.loop.remove_reader(self.fd)
        await run_in_threadpool(_end, self.pid, self.fd)


class _SshTerminal:
    """An SSH session with a terminal on the cluster's login node, as the login, with its own key."""

    @classmethod
    async def open(cls, shell: login_shell.LoginShell) -> "_SshTerminal":
        import asyncssh

        self = cls()
        self.conn = await asyncio.wait_for(asyncssh.connect(**shell.ssh), 15)
        self.process = await self.conn.create_process(term_type="xterm-256color", term_size=(80, 24),
                                                      encoding="utf-8", errors="replace")
        return self

    async def read(self) -> str | None:
        text = await self.process.stdout.read(READ_BYTES)
        return text or None

    async def write(self, text: str) -> None:
        self.process.stdin.write(text)
        await self.process.stdin.drain()

    def resize(self, rows: int, cols: int) -> None:
        self.process.change_terminal_size(cols, rows)

    async def close(self) -> None:
        self.process.close()
        self.conn.close()

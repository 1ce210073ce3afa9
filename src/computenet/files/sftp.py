"""Staging over SFTP to a cluster's login node (asyncssh), for clusters reached over SSH."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import threading
from pathlib import Path
from typing import Sequence

from .paths import (BLOCK, AtomicFile, FileError, NotFound, PathRefused, TooLarge, TransferFailed, kind_of,
                    open_regular)
from .staging import CIPHERS, PART, RemoteFile, _mode_for, _report, matches, remote_parts


class SftpStager:
    """The cluster's login node over SSH; asyncio runs in a background thread, like SshTransport."""

    def __init__(self, host: str, port: int = 22, username: str | None = None, client_keys: Sequence[str] = (),
                 known_hosts: str | None = None, accept_any_host_key: bool = False, root: str | None = None,
                 connect_timeout: float = 15.0) -> None:
        if known_hosts is None and not accept_any_host_key:
            raise ValueError(f"sftp to {host}: give a known_hosts file (or accept_any_host_key for a test bed)")
        self.host, self.port, self.username = host, port, username
        self.client_keys, self.known_hosts, self.connect_timeout = list(client_keys), known_hosts, connect_timeout
        self.root = root
        self._root = remote_parts(root) if root else None
        self._conn = self._sftp = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"sftp-{host}", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()

    def _call(self, coro, remote: str):
        import asyncssh

        if self._loop.is_closed():
            coro.close()
            raise TransferFailed(f"sftp {self.host}: {remote!r}: the stager is closed")
        with self._lock:  # one SFTP session, one transfer at a time
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
            try:
                return future.result()
            except asyncssh.SFTPNoSuchFile:
                raise NotFound(f"sftp {self.host}: {remote!r} does not exist") from None
            except asyncssh.SFTPError as exc:
                raise TransferFailed(f"sftp {self.host}: {remote!r}: {exc.reason}") from None
            except (asyncssh.Error, OSError, asyncio.TimeoutError) as exc:
                self._drop()
                raise TransferFailed(f"sftp {self.host}:{self.port}: {remote!r}: {exc or type(exc).__name__}") \
                    from None

    async def _client(self):
        import asyncssh

        if self._sftp is None or self._conn.is_closed():
            self._conn = await asyncio.wait_for(asyncssh.connect(
                self.host, port=self.port, username=self.username, client_keys=self.client_keys or None,
                known_hosts=self.known_hosts, agent_path=None, config=None, keepalive_interval=30,
                encryption_algs=CIPHERS), self.connect_timeout)
            self._sftp = await self._conn.start_sftp_client()
        return self._sftp

    async def _walk(self, sftp, remote: str, parts: tuple[str, ...], create: bool = False) -> str:
        """The directory ``parts`` as a path; below the root each component is lstat'ed, links refused."""
        import asyncssh

        if self._root is None:
            path = "/" + "/".join(parts)
            if create:
                await sftp.makedirs(path, exist_ok=True)
            return path
        if parts[:len(self._root)] != self._root:
            raise PathRefused(f"remote path {remote!r} is outside {self.root}")
        path = "/" + "/".join(self._root)
        if create:  # the root is the operator's (trusted); on a fresh cluster it may not exist yet
            await sftp.makedirs(path, exist_ok=True)
        for name in parts[len(self._root):]:
            path = f"{path.rstrip('/')}/{name}"
            try:
                attrs = await sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                if not create:
                    raise NotFound(f"remote directory {path!r} does not exist") from None
                await sftp.mkdir(path, asyncssh.SFTPAttrs(permissions=0o750))
                continue
            if stat.S_ISLNK(attrs.permissions):
                raise PathRefused(f"remote path {path!r} is a symlink; it is not followed")
            if not stat.S_ISDIR(attrs.permissions):
                raise FileError(f"remote path {path!r} is not a directory")
        return path

    async def _target(self, sftp, remote: str, create: bool = False) -> str:
        parts = remote_parts(remote)
        if not parts:
            raise PathRefused(f"remote path {remote!r} is not a file")
        return f"{(await self._walk(sftp, remote, parts[:-1], create)).rstrip('/')}/{parts[-1]}"

    async def _put(self, local: Path, remote: str) -> str:
        import asyncssh

        sftp = await self._client()
        target = await self._target(sftp, remote, create=True)
        src, st = open_regular(local)
        digest = hashlib.sha256()
        try:
            try:
                await sftp.remove(target + PART)  # a leftover, or a planted link: gone, not followed
            except asyncssh.SFTPNoSuchFile:
                pass
            async with sftp.open(target + PART, "xb", asyncssh.SFTPAttrs(permissions=0o600)) as out:
                pending = None
                while block := os.read(src, BLOCK):
                    digest.update(block)
                    if pending is not None:
                        await pending
                    pending = asyncio.ensure_future(out.write(block))  # hash the next block meanwhile
                if pending is not None:
                    await pending
            await sftp.chmod(target + PART, _mode_for(st.st_mode))
            try:
                await sftp.posix_rename(target + PART, target)
            except asyncssh.SFTPOpUnsupported:  # not OpenSSH: replace in two steps
                try:
                    await sftp.remove(target)
                except asyncssh.SFTPNoSuchFile:
                    pass
                await sftp.rename(target + PART, target)
        except BaseException:
            try:
                await sftp.remove(target + PART)
            except (asyncssh.Error, OSError):
                pass
            raise
        finally:
            os.close(src)
        return digest.hexdigest()

    async def _get(self, remote: str, local: Path, max_bytes: int | None = None) -> str:
        sftp = await self._client()
        target = await self._target(sftp, remote)
        attrs = await sftp.lstat(target)
        if stat.S_ISLNK(attrs.permissions):
            raise PathRefused(f"remote path {remote!r} is a symlink; it is not followed")
        if not stat.S_ISREG(attrs.permissions):
            raise FileError(f"remote path {remote!r} is not a regular file")
        if (attrs.nlink or 1) > 1:  # a job's hard link could name any file the login may read
            raise PathRefused(f"remote path {remote!r} has other hard links; it is not fetched")
        digest, out, total = hashlib.sha256(), AtomicFile(local), 0
        try:
            async with sftp.open(target, "rb") as f:
                while block := await f.read(BLOCK):
                    total += len(block)
                    if max_bytes is not None and total > max_bytes:
                        raise TooLarge(f"{remote!r} grew past {max_bytes} bytes while being fetched; "
                                       "it is left where it is")
                    digest.update(block)
                    out.write(block)
            out.commit()
        except BaseException:
            out.abort()
            raise
        return digest.hexdigest()

    async def _list(self, remote_dir: str, patterns: Sequence[str]) -> list[RemoteFile]:
        sftp = await self._client()
        parts = remote_parts(remote_dir)
        base = await self._walk(sftp, remote_dir, parts)
        if self._root is None:  # below a root, _walk has refused links already; the root itself is trusted
            attrs = await sftp.lstat(base)
            if not stat.S_ISDIR(attrs.permissions):  # a link to a directory included
                raise PathRefused(f"remote directory {remote_dir!r} is a symlink or not a directory")
        found: list[RemoteFile] = []
        await self._scan(sftp, base.rstrip("/"), "", patterns, False, found)
        return found

    async def _scan(self, sftp, path: str, prefix: str, patterns, inside: bool, found: list[RemoteFile]) -> None:
        names = sorted((n for n in await sftp.readdir(path) if n.filename not in (".", "..")),
                       key=lambda n: n.filename)
        for n in names:  # OpenSSH reports lstat attributes in a listing
            rel, mode = prefix + n.filename, n.attrs.permissions or 0
            hit = inside or matches(rel, patterns)
            kind = kind_of(mode)
            if hit and kind is not None:
                _report(found, RemoteFile(rel, 0 if kind == "dir" else n.attrs.size or 0, kind), patterns)
            if kind == "dir":
                await self._scan(sftp, f"{path}/{n.filename}", rel + "/", patterns, hit, found)

    def put(self, local: Path, remote: str) -> str:
        return self._call(self._put(Path(local), remote), remote)

    def get(self, remote: str, local: Path, max_bytes: int | None = None) -> str:
        return self._call(self._get(remote, Path(local), max_bytes), remote)

    def list(self, remote_dir: str, patterns: Sequence[str]) -> list[RemoteFile]:
        return self._call(self._list(remote_dir, list(patterns)), remote_dir)

    def _drop(self) -> None:
        conn, self._conn, self._sftp = self._conn, None, None
        if conn is not None:
            self._loop.call_soon_threadsafe(conn.close)

    def close(self) -> None:
        if self._loop.is_closed():
            return

        async def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                await self._conn.wait_closed()

        try:  # let the connection's tasks end, or they are torn down mid-flight with warnings
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(self.connect_timeout)
        except Exception:
            pass
        self._conn = self._sftp = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self.connect_timeout)
        self._loop.close()

#!/usr/bin/env python3
"""File transfer throughput: the file service's paths vs plain `cp`, on one machine.

Makes a random file (--size-mb, default 1024) in a temporary directory under
--dir and moves it along each path the file service offers, checking the
sha256 at the end of each: a Workspace.write from the file; a chunked upload
(begin, every 8 MiB chunk with its sha256 as a client sends it, finish) then
Workspace.adopt; the same through the HTTP API (an in-process server, the
SDK's upload and verified download); LocalStager.put into a cluster
directory (staging a job's input); with --sftp, SftpStager.put over SSH. `cp` is the baseline, in the same rounds as the
others: each figure is the median of --repeat rounds, and each round runs
every path in turn, so drift on the machine hits all alike. The source stays
in the page cache and dirty pages are synced before each timing, so these
are the paths' CPU and memory costs more than the disk's.
Everything is deleted at the end.

    .venv/bin/python bench/transfer.py [--size-mb 1024] [--dir /tmp] [--repeat 3]
        [--sftp 127.0.0.1:22 --key ~/.ssh/id_ed25519 --known-hosts ~/.ssh/known_hosts --user root]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

import server_process  # noqa: E402  (bench/, beside this file)
from computenet.files import LocalStager, SftpStager, UploadStore, Workspace

CHUNK = 8 * 1024 * 1024
console = Console()


def make_source(path: Path, size: int) -> tuple[str, list[str]]:
    """The file, its sha256 and each 8 MiB chunk's (a client's work, done on its own machine: not timed)."""
    digest, chunks = hashlib.sha256(), []
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            digest.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
            out.write(block)
            left -= len(block)
    return digest.hexdigest(), chunks


def timed(fn) -> tuple[float, object]:
    os.sync()  # the previous stage's dirty pages are not this one's to write back
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def stage_cp(src: Path, work: Path) -> float:
    dst = work / "cp.bin"
    seconds, _ = timed(lambda: subprocess.run(["cp", str(src), str(dst)], check=True))
    dst.unlink()
    return seconds


def stage_workspace_write(src: Path, work: Path, want: str) -> float:
    ws = Workspace(work / "ws")

    def write():
        with open(src, "rb") as f:
            return ws.write("copy.bin", f, size_hint=src.stat().st_size, expected_sha256=want)

    seconds, (_, got) = timed(write)
    assert got == want, "Workspace.write: sha256 differs"
    ws.remove("copy.bin")
    return seconds


def stage_upload(src: Path, work: Path, want: str, chunk_sums: list[str]) -> float:
    store, ws = UploadStore(work / "uploads"), Workspace(work / "ws")
    size = src.stat().st_size

    def upload():
        store.begin("bench-upload", size, want, CHUNK)
        with open(src, "rb") as f:
            for index, chunk_sum in enumerate(chunk_sums):  # what a client sends: a chunk and its checksum
                store.write_chunk("bench-upload", index, f.read(CHUNK), chunk_sum)
        part = store.finish("bench-upload")  # verifies the whole file, so adopt need not read it again
        result = ws.adopt("uploaded.bin", part, sha256=want)
        store.discard("bench-upload")
        return result

    seconds, (_, got) = timed(upload)
    assert got == want and ws.sha256("uploaded.bin") == want, "upload: sha256 differs"
    ws.remove("uploaded.bin")
    return seconds


def stage_stager(stager, src: Path, remote: Path, want: str) -> float:
    try:
        seconds, got = timed(lambda: stager.put(src, str(remote)))
    finally:
        stager.close()
    assert got == want, f"{type(stager).__name__}.put: sha256 differs"
    remote.unlink()
    return seconds


class HttpPath:
    """The whole service path: `cnet server` in its own process on SQLite (as deployed: the client
    does not share its interpreter), the SDK's chunked, checksummed upload (the client hashes the
    file first, as `cnet files put` does) and its verified download. The server and its user are
    made once, outside the timings."""

    def __init__(self, work: Path) -> None:
        from computenet.client import ComputeNetClient
        from computenet.config import Settings
        from computenet.services.tenancy import accounts
        from computenet.services.platform import Platform

        data = work / "server"
        settings = Settings(_env_prefix="COMPUTENET_BENCH_UNUSED_", data_dir=data)
        platform = Platform(settings)
        platform.start()
        with platform.db.session() as session:
            user = accounts.create_user(session, "bench")
            accounts.create_account(session, "bench-lab", owner=user)
            token = accounts.issue_token(session, user, "bench")
        platform.db.dispose()
        self.proc, url = server_process.start(data)
        self.client = ComputeNetClient(url, token, timeout=600)
        self.work = work

    def upload(self, src: Path, want: str) -> float:
        seconds, done = timed(lambda: self.client.upload(src, "bench.bin", overwrite=True))
        assert done["sha256"] == want, "HTTP upload: sha256 differs"
        return seconds

    def download(self, src: Path, want: str) -> float:
        if not self.client.ls(""):
            self.client.upload(src, "bench.bin", overwrite=True)
        target = self.work / "downloaded.bin"
        seconds, done = timed(lambda: self.client.download("bench.bin", target))
        assert done["sha256"] == want and done["verified"], "HTTP download: sha256 differs"
        target.unlink()
        return seconds

    def close(self) -> None:
        self.client.close()
        server_process.stop(self.proc)


def run(size_mb: int = 1024, dir: str = "/tmp", sftp: str | None = None, key: str | None = None,
        known_hosts: str | None = None, user: str = "root", repeat: int = 3, http: bool = True) -> dict:
    """Seconds (median of ``repeat`` rounds) and MiB/s for each path, and each one's ratio to cp.

    Rounds go through every path in turn, so slow spells of the machine hit all of them alike;
    another path is one more entry in ``paths``.
    """
    work = Path(tempfile.mkdtemp(prefix="cnet-bench-transfer-", dir=dir))
    service = None
    try:
        src, size = work / "source.bin", size_mb * 1024 * 1024
        want, chunk_sums = make_source(src, size)
        paths = {
            "cp (baseline)": lambda: stage_cp(src, work),
            "Workspace.write": lambda: stage_workspace_write(src, work, want),
            "chunked upload + adopt": lambda: stage_upload(src, work, want, chunk_sums),
            "LocalStager.put": lambda: stage_stager(LocalStager(root=str(work)), src, work / "cluster" / "in.bin",
                                                    want),
        }
        if http:
            service = HttpPath(work)
            paths["HTTP upload (API, chunks)"] = lambda: service.upload(src, want)
            paths["HTTP download (API)"] = lambda: service.download(src, want)
        if sftp:
            ssh_host, _, port = sftp.rpartition(":")
            paths["SftpStager.put"] = lambda: stage_stager(
                SftpStager(ssh_host, port=int(port), username=user, client_keys=[key] if key else [],
                           known_hosts=known_hosts, accept_any_host_key=known_hosts is None),
                src, work / "sftp" / "in.bin", want)
        times: dict[str, list[float]] = {name: [] for name in paths}
        names = list(paths)
        for r in range(repeat):
            for name in names[r % len(names):] + names[:r % len(names)]:  # no path always right after cp
                times[name].append(paths[name]())
    finally:
        if service is not None:
            service.close()
        shutil.rmtree(work, ignore_errors=True)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    cp = median["cp (baseline)"]
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{host.node()} {host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
        "size_mb": size_mb,
        "dir": dir,
        "repeat": repeat,
        "paths": {name: {"seconds": s, "all_seconds": times[name], "mib_per_s": size_mb / s, "vs_cp": cp / s}
                  for name, s in median.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--dir", default="/tmp", help="the temporary directory goes here (and is deleted)")
    parser.add_argument("--sftp", default=None, metavar="HOST:PORT", help="also SftpStager.put to this host")
    parser.add_argument("--key", default=None, help="private key for --sftp")
    parser.add_argument("--known-hosts", default=None, help="known_hosts for --sftp (without: any host key)")
    parser.add_argument("--user", default="root", help="login for --sftp")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each figure is the median")
    parser.add_argument("--no-http", action="store_true", help="skip the API server's upload and download")
    args = parser.parse_args()
    if args.size_mb <= 0 or args.repeat <= 0:
        parser.error("--size-mb and --repeat must be positive")
    results = run(args.size_mb, args.dir, args.sftp, args.key, args.known_hosts, args.user, args.repeat,
                  http=not args.no_http)
    table = Table(title=f"{args.size_mb} MiB of random data in {args.dir}, median of {args.repeat} "
                        "(sha256 checked each time)")
    for column in ("path", "seconds", "MiB/s", "vs cp", "all rounds, s"):
        table.add_column(column, justify="right")
    for name, s in results["paths"].items():
        table.add_row(name, f"{s['seconds']:.2f}", f"{s['mib_per_s']:.0f}", f"{s['vs_cp']:.2f}",
                      " ".join(f"{t:.2f}" for t in s["all_seconds"]))
    console.print(table)
    console.print("vs cp = cp's time / this path's time (1.00: as fast as cp; cp copies in the kernel and "
                  "hashes nothing)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"transfer-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    console.print(f"results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

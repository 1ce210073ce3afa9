#!/usr/bin/env python3
"""What reaching a session's node through the SSH transport's port forward costs (services/sessions/reach.py):
a small HTTP server on loopback (the "node"), reached directly and through SshTransport.forward (asyncssh's
forward_local_port over one connection to an OpenSSH server on loopback, as the tests set it up), in the
same minute, direct before and after:

- request round trip: --rounds small GETs over one keep-alive connection (p50, p95);
- throughput: a --mb MB body downloaded --downloads times (MB/s).

Needs root and sshd (openssh-server), as tests/test_ssh_transport.py.

    .venv/bin/python bench/session_ssh_forward.py [--rounds 500] [--mb 50] [--downloads 5]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform as host
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from computenet.clusters.slurm.ssh import SshTransport

RESULTS = Path(__file__).parent / "results"


def sshd(base: Path) -> tuple[subprocess.Popen, int]:
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / key)], check=True)
    (base / "authorized_keys").write_text((base / "client.pub").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host'}\nAuthorizedKeysFile {base / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nPidFile {base / 'sshd.pid'}\n")
    host_key = (base / "host.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(base / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("sshd did not start")
            time.sleep(0.1)


def node(body: bytes) -> int:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

        def do_GET(self):
            data = body if self.path == "/big" else b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def measure(port: int, rounds: int, downloads: int, size: int) -> dict:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for _ in range(20):
            client.get("/small")
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            client.get("/small").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        rates = []
        for _ in range(downloads):
            started = time.perf_counter()
            got = len(client.get("/big").content)
            assert got == size
            rates.append(size / 1e6 / (time.perf_counter() - started))
    times.sort()
    return {"p50_ms": round(statistics.median(times), 3), "p95_ms": round(times[int(len(times) * 0.95)], 3),
            "mb_s": round(statistics.median(rates), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--downloads", type=int, default=5)
    args = parser.parse_args()
    size = args.mb * 1_000_000
    base = Path(tempfile.mkdtemp(prefix="cnet-bench-sshd-"))
    proc, ssh_port = sshd(base)
    transport = SshTransport("127.0.0.1", port=ssh_port, username="root", client_keys=[str(base / "client")],
                             known_hosts=str(base / "known_hosts"))
    try:
        port = node(os.urandom(size))
        before = measure(port, args.rounds, args.downloads, size)
        _, forwarded = transport.forward("bench", "127.0.0.1", port)
        through = measure(forwarded, args.rounds, args.downloads, size)
        after = measure(port, args.rounds, args.downloads, size)
    finally:
        transport.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)
    direct = {k: round((before[k] + after[k]) / 2, 3) for k in before}
    result = {"machine": f"{host.node()} {os.cpu_count()} CPUs", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "rounds": args.rounds, "mb": args.mb, "direct_before": before, "direct_after": after,
              "forwarded": through,
              "latency_ratio_p50": round(through["p50_ms"] / direct["p50_ms"], 2),
              "throughput_ratio": round(direct["mb_s"] / through["mb_s"], 2)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "session_ssh_forward.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

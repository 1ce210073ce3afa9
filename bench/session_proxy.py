#!/usr/bin/env python3
"""The interactive-session proxy's overhead: a real JupyterLab session started through the platform
(local executor), then measured through the proxy (/sessions/<id>/... on the sessions' own origin,
with the cookie a ticket gives) and directly (the node's
port, with the session's token), in the same minute; the server runs in its own process (`cnet
server`), as deployed:

- WebSocket round trip: a kernel_info_request answered on the kernel's shell channel, --rounds times
  over one connection (p50, p95);
- HTTP throughput: a --mb MB file in the session's directory, downloaded --downloads times
  (JupyterLab's /files/ handler), MB/s.

The issue's aim: the proxy within 1.5x of direct on loopback.

    .venv/bin/python bench/session_proxy.py [--rounds 500] [--mb 100] [--downloads 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from websockets.sync.client import connect

from computenet.client.sdk import ComputeNetClient
from computenet.config import load_settings
from computenet.services.tenancy import accounts
from computenet.services.platform import Platform
from computenet.store.models import InteractiveSession

sys.path.insert(0, str(Path(__file__).parent))
import server_process  # noqa: E402

RESULTS = Path(__file__).parent / "results"
CONFIG = """
[[clusters]]
name = "local"
kind = "local"
slots = 2
tags = ["jupyterlab"]
isolation = "off"
poll_interval_s = 0.2
prices = { "*" = { core_hour = "1.00" } }
"""


def start_session(client: ComputeNetClient) -> int:
    """JupyterLab through the API; the server's own session watch brings it up."""
    session_id = client.start_session("jupyterlab", cores=1, hours=1)["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        shown = client.session(session_id)
        if shown["state"] == "running":
            return session_id
        if shown["state"] == "ended":
            raise SystemExit(f"the session ended: {shown['detail']}")
        time.sleep(0.5)
    raise SystemExit("JupyterLab did not answer within 180 s")


def ws_rounds(url: str, headers: dict, rounds: int) -> list[float]:
    took = []
    with connect(url, additional_headers=headers, max_size=None, open_timeout=30) as ws:
        for i in range(rounds + 20):  # the first 20 warm up
            msg_id = uuid.uuid4().hex
            start = time.perf_counter()
            ws.send(json.dumps({"header": {"msg_id": msg_id, "username": "bench", "session": "bench",
                                           "msg_type": "kernel_info_request", "version": "5.3"},
                                "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell",
                                "buffers": []}))
            while True:
                reply = json.loads(ws.recv(timeout=30))
                if (reply.get("parent_header", {}).get("msg_id") == msg_id
                        and reply["header"]["msg_type"] == "kernel_info_reply"):
                    break
            if i >= 20:
                took.append(time.perf_counter() - start)
    return took


def downloads(url: str, headers: dict, times: int, size: int) -> list[float]:
    rates = []
    with httpx.Client(timeout=120) as client:
        for _ in range(times + 1):  # the first warms caches
            got, start = 0, time.perf_counter()
            with client.stream("GET", url, headers=headers) as answer:
                assert answer.status_code == 200, answer.status_code
                for chunk in answer.iter_raw(1 << 20):
                    got += len(chunk)
            assert got == size, (got, size)
            rates.append(size / (1 << 20) / (time.perf_counter() - start))
    print("  rates MB/s:", " ".join(f"{r:.0f}" for r in rates))
    return rates[1:]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(round(q * len(ordered))) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--downloads", type=int, default=5)
    args = parser.parse_args()
    # jobs of a single-tenant local executor (isolation off) get the server's PATH: the venv's jupyter on it
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    data = Path(tempfile.mkdtemp(prefix="cnet-bench-sessions-"))
    (data / "config.toml").write_text(CONFIG)
    settings = load_settings(data / "config.toml", data_dir=data)
    platform = Platform(settings)
    platform.start()
    with platform.db.session() as session:
        user = accounts.create_user(session, "bench")
        accounts.top_up(session, accounts.create_account(session, "bench-lab", owner=user), "1000", key="bench")
        token = accounts.issue_token(session, user)
    # the server in its own process, as deployed: the client here must not share its interpreter
    proc, server_url = server_process.start(data, {"COMPUTENET_CONFIG": str(data / "config.toml")})
    try:
        with ComputeNetClient(server_url, token) as client:
            session_id = start_session(client)
            with platform.db.session() as session:
                row = session.get(InteractiveSession, session_id)
                workdir, address, port, secret = row.job.workdir, row.address, row.port, row.secret
            size = args.mb << 20
            with open(Path(workdir) / "big.bin", "wb") as f:
                f.write(os.urandom(size))
            base = f"/sessions/{session_id}/"
            # through the proxy on the sessions' own origin, with the cookie a one-time ticket gives
            entered = httpx.get(client.session_connect_url(session_id), timeout=30)
            proxy = (client.session(session_id)["url"], {"Cookie": f"cnet_access={entered.cookies['cnet_access']}"})
            direct = (f"http://{address}:{port}{base}", {"Authorization": f"token {secret}"})
            kernel = httpx.post(f"{proxy[0]}api/kernels", headers=proxy[1], json={"name": "python3"},
                                timeout=60).json()
            results: dict[str, dict] = {}
            for name, (url, headers) in (("direct", direct), ("proxy", proxy), ("direct (again)", direct)):
                ws_url = url.replace("http://", "ws://") + f"api/kernels/{kernel['id']}/channels"
                rtt = ws_rounds(ws_url, headers, args.rounds)
                rates = downloads(f"{url}files/big.bin", headers, args.downloads, size)
                results[name] = {"ws_p50_ms": statistics.median(rtt) * 1000, "ws_p95_ms": pct(rtt, 0.95) * 1000,
                                 "http_mb_s": statistics.median(rates)}
                print(f"{name:15s} WS round trip p50 {results[name]['ws_p50_ms']:.2f} ms, p95 "
                      f"{results[name]['ws_p95_ms']:.2f} ms; {args.mb} MB download "
                      f"{results[name]['http_mb_s']:.0f} MB/s")
            client.stop_session(session_id)
    finally:
        server_process.stop(proc)
    best = {k: min(results["direct"][k], results["direct (again)"][k]) for k in ("ws_p50_ms", "ws_p95_ms")}
    best_rate = max(results["direct"]["http_mb_s"], results["direct (again)"]["http_mb_s"])
    ratios = {"ws_p50": results["proxy"]["ws_p50_ms"] / best["ws_p50_ms"],
              "ws_p95": results["proxy"]["ws_p95_ms"] / best["ws_p95_ms"],
              "http_time": best_rate / results["proxy"]["http_mb_s"]}
    print(f"proxy / direct: WS p50 {ratios['ws_p50']:.2f}x, p95 {ratios['ws_p95']:.2f}x; "
          f"download time {ratios['http_time']:.2f}x (aim: within 1.5x)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "session_proxy.json").write_text(json.dumps(
        {"results": results, "ratios": ratios, "args": vars(args), "python": sys.version.split()[0],
         "machine": host.machine(), "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

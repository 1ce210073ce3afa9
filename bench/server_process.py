"""`cnet server` in its own process for benchmarks (the client must not share its interpreter)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def start(data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 60,
          args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """The server on a free port over ``data_dir`` (no COMPUTENET_* of the caller's); returns it and its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPUTENET_")}
    env.update({"COMPUTENET_DATA_DIR": str(data_dir), **(extra_env or {})})
    proc = subprocess.Popen([str(Path(sys.executable).with_name("cnet")), "server", "--port", str(port), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("cnet server did not start for the benchmark")
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)

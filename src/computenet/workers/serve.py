"""`cnet server --role worker`: the background tasks without the API, and a tiny health listener
(GET /health: this process's holder name and the tasks it holds and is running) for a load
balancer or systemd's watchdog script. Metrics come from any API replica's /metrics."""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..services.platform import Platform
from .runner import Runner

log = logging.getLogger(__name__)


SPLIT_NEEDS_POSTGRESQL = (
    "--role api and --role worker split the platform into processes that share one database, which needs "
    "PostgreSQL (database_url = \"postgresql://...\"); on SQLite run one process with --role all")


def _health_handler(runner: Runner):
    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path != "/health":
                self.send_error(404)
                return
            try:
                held = sorted(runner.leases.held())
                body, status = {"status": "ok", "role": "worker", "holder": runner.holder, "held": held,
                                "running": sorted(runner.running)}, 200
            except Exception as exc:  # the database is away: say so (the leases will lapse)
                body, status = {"status": "error", "detail": str(exc)[:200], "holder": runner.holder}, 503
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # health checks every few seconds would flood the log
            pass

    return Health


def run_worker(platform: Platform, host: str, port: int | None) -> None:
    """Run until SIGTERM or SIGINT; then finish the runs in progress and hand the leases back."""
    runner = Runner(platform).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    listener = None
    if port:
        listener = ThreadingHTTPServer((host, port), _health_handler(runner))
        threading.Thread(target=listener.serve_forever, name="worker-health", daemon=True).start()
    log.info("worker %s running %d tasks", runner.holder, len(runner.tasks))
    stop.wait()
    if listener:
        listener.shutdown()
    runner.stop()

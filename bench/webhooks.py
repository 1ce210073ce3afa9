"""Webhook delivery from the outbox: how fast N events reach 4 endpoints on a loopback receiver, and
how much one hanging endpoint delays the other three (the baseline: all four healthy, same process).

Each scenario: N account.notice events written to the outbox (SQLite), then the `webhooks` task's
run_once() until the healthy endpoints have every event; wall and CPU time, deliveries per second.
The hanging endpoint never answers within timeout_s (1 s): each pass spends at most one timeout on it.

    .venv/bin/python bench/webhooks.py [N]
"""

from __future__ import annotations

import platform as host
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

from computenet.config import NotificationsConfig, WebhooksConfig
from computenet.services.tenancy import accounts
from computenet.services.integration import webhooks
from computenet.services.integration.webhook_sender import WebhookDispatcher
from computenet.store.db import Database
from computenet.store.event_models import OutboxEvent, _row


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/hang":
            time.sleep(3)
        else:
            with self.server.lock:
                self.server.count += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def scenario(n: int, hanging: bool) -> tuple[float, float, int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads, server.count, server.lock = True, 0, threading.Lock()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    notify = NotificationsConfig(webhook_allow_private=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.migrate()
        with db.session() as session:
            lab = accounts.create_account(session, "lab")
            for i in range(4):
                path = "hang" if hanging and i == 0 else f"ok{i}"
                webhooks.add_endpoint(session, lab, f"http://127.0.0.1:{server.server_port}/{path}", ["*"], notify,
                                      "bench")
            lab_id = lab.id
        with db.engine.begin() as conn:
            conn.execute(OutboxEvent.__table__.insert(),
                         [_row("account.notice", (None, None), "account/lab", {"account": "lab", "kind": "x",
                                                                              "message": f"notice {i}"})
                          for i in range(n)])
        assert lab_id
        settings = SimpleNamespace(webhooks=WebhooksConfig(timeout_s=1.0, per_endpoint=500), notifications=notify)
        dispatcher = WebhookDispatcher(SimpleNamespace(db=db, settings=settings))
        healthy = 3 if hanging else 4
        wall, cpu = time.perf_counter(), time.process_time()
        while server.count < healthy * n:
            dispatcher.run_once()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        db.dispose()
    server.shutdown()
    return wall, cpu, healthy * n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {host.processor() or host.machine()}, "
          f"Python {host.python_version()}, SQLite, {n} events x 4 endpoints")
    base = scenario(n, hanging=False)
    hang = scenario(n, hanging=True)
    for name, (wall, cpu, sent) in (("4 healthy endpoints (baseline)", base), ("3 healthy + 1 hanging", hang)):
        print(f"{name}: {sent} deliveries in {wall:.2f} s wall, {cpu:.2f} s CPU, {sent / wall:.0f} deliveries/s")
    print(f"healthy endpoints' time with a hanging neighbour / without: {hang[0] / base[0]:.2f}")


if __name__ == "__main__":
    main()

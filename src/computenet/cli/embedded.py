"""Run the API server (and its background services) in a thread of this process."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from ..api.app import create_app
from ..api.session_origin import bind
from ..services.platform import Platform


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedServer:
    def __init__(self, platform: Platform, host: str = "127.0.0.1", port: int | None = None,
                 run_services: bool = True, sessions_port: int | None = None) -> None:
        self.host = host
        app = create_app(platform, run_services=run_services)
        # the portal's port and the sessions' (api/session_origin.py): free ones unless named
        self.sockets = bind(app, platform.settings, host, port or 0, sessions_port)
        self.port = self.sockets[0].getsockname()[1]
        self.origins = app.state.origins
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": self.sockets}, name="api-server",
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> "EmbeddedServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        for sock in self.sockets:
            sock.close()

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

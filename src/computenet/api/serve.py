"""Run the API under uvicorn so that SIGTERM (or Ctrl-C) stops it promptly.

Left alone, uvicorn waits for every open request to finish before it exits: a
client trickling a body, a long report or a hung sbatch kept the server up
for minutes after SIGTERM. Here open requests get GRACE_S to finish and are
then cancelled; work still running in a worker thread (which cannot be
cancelled) is abandoned when the process exits; and whatever happens, the
process is gone STOP_DEADLINE_S after the signal.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

import uvicorn

log = logging.getLogger(__name__)
GRACE_S = 10.0  # what an open request gets to finish after the signal
STOP_DEADLINE_S = 25.0  # after the signal, the process is gone by then whatever is still running


class _PromptServer(uvicorn.Server):
    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        if not getattr(self, "_watchdog", None):
            self._watchdog = threading.Timer(STOP_DEADLINE_S, _hard_exit, args=("shutdown took too long",))
            self._watchdog.daemon = True
            self._watchdog.start()


def _hard_exit(why: str) -> None:
    log.error("exiting now: %s", why)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def serve(app, host: str, port: int, log_level: str = "info") -> None:
    from .session_origin import bind

    # one server, two ports: the portal's and the sessions' own origin (api/session_origin.py)
    sockets = bind(app, app.state.platform.settings, host, port) if hasattr(app.state, "origins") else None
    server = _PromptServer(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                          timeout_graceful_shutdown=GRACE_S))
    if sockets is not None:
        print(f"Interactive sessions are served on {app.state.origins.sessions}", flush=True)
    server.run(sockets=sockets)
    # a request's worker thread still running (it was cancelled, its thread cannot be) would keep
    # the interpreter waiting for it at exit
    busy = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if busy:
        _hard_exit(f"abandoning {len(busy)} worker thread(s) still running: {', '.join(sorted(set(busy)))}")

"""The background tasks of a process that runs them (role all or worker): see workers/.

Kept as the API's entry point; the tasks, their intervals and the leases live in workers/."""

from __future__ import annotations

from .platform import Platform


class BackgroundServices:
    def __init__(self, platform: Platform) -> None:
        from ..workers import Runner

        self.runner = Runner(platform)

    def start(self) -> None:
        self.runner.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.runner.stop(timeout)

"""Background tasks (pollers, delivery, enforcement...) run under leases: see runner.py."""

from .runner import Runner  # noqa: F401

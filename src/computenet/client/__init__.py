"""Typed HTTP client for the ComputeNet API (used by the CLI, tests, scripts)."""

from .sdk import ApiError, ComputeNetClient

__all__ = ["ApiError", "ComputeNetClient"]

"""Typed HTTP client for the ComputeNet API (used by the CLI, tests, scripts)."""

import sys

if "httpx" not in sys.modules:
    # httpx's own command line (httpx._main, imported by `import httpx` when click and pygments are
    # installed) pulls in click, pygments, rich.progress and rich.syntax: about a third of `cnet jobs`'s
    # import time. Nothing here runs `httpx` as a program; without it httpx defines a stub main().
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from .sdk import ApiError, ComputeNetClient  # noqa: E402

__all__ = ["ApiError", "ComputeNetClient"]

"""The typed Python SDK for the ComputeNet REST API (/v1); needs only httpx and pydantic (docs/sdk.md)."""

import sys

if "httpx" not in sys.modules:
    # httpx's own command line (httpx._main, imported by `import httpx` when click and pygments are
    # installed) pulls in click, pygments, rich.progress and rich.syntax: about a third of `cnet jobs`'s
    # import time. Nothing here runs `httpx` as a program; without it httpx defines a stub main().
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from . import models  # noqa: E402
from .aio import AsyncComputeNetClient  # noqa: E402
from .errors import ApiError, problem_error  # noqa: E402
from .models import (ClusterOut, JobDetail, JobEventOut, JobOut, JobSubmit, MeOut, NotificationOut,  # noqa: E402
                     OutputChunk, RoutingIn, UsageRowOut)
from .retry import NO_RETRY, RetryPolicy  # noqa: E402
from .sync import ComputeNetClient, file_sha256  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ApiError", "AsyncComputeNetClient", "ClusterOut", "ComputeNetClient", "JobDetail", "JobEventOut",
           "JobOut", "JobSubmit", "MeOut", "NO_RETRY", "NotificationOut", "OutputChunk", "RetryPolicy", "RoutingIn",
           "UsageRowOut", "file_sha256", "models", "problem_error"]

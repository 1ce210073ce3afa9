"""The SDK, kept here for existing code: it lives in its own distribution, computenet-client
(clients/python, import name ``computenet_client``), which installs without the server stack."""

from computenet_client import ApiError, AsyncComputeNetClient, ComputeNetClient, RetryPolicy

__all__ = ["ApiError", "AsyncComputeNetClient", "ComputeNetClient", "RetryPolicy"]

"""Moved to computenet_client (clients/python); these names stay importable from here."""

from computenet_client.errors import ApiError, problem_error
from computenet_client.sync import ComputeNetClient

__all__ = ["ApiError", "ComputeNetClient", "problem_error"]

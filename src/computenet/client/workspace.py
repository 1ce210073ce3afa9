"""Moved to computenet_client.sync (clients/python); these names stay importable from here."""

from computenet_client.sync import Progress, file_sha256

__all__ = ["Progress", "file_sha256"]

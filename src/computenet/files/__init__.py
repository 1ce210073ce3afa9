"""The file service's filesystem layer: workspaces, resumable uploads, staging to clusters.

No database and no HTTP here; the API layer wraps these.
"""

from .paths import (AlreadyExists, ChecksumMismatch, FileError, NotFound, PathRefused, QuotaExceeded, TooLarge,
                    TransferFailed, split_path)
from .staging import LocalStager, RemoteFile, SftpStager, Stager
from .uploads import UploadState, UploadStore
from .workspace import Entry, Workspace

__all__ = [
    "AlreadyExists", "ChecksumMismatch", "Entry", "FileError", "LocalStager", "NotFound", "PathRefused",
    "QuotaExceeded", "RemoteFile", "SftpStager", "Stager", "TooLarge", "TransferFailed", "UploadState",
    "UploadStore", "Workspace", "split_path",
]

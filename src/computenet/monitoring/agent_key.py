"""What lets one job's agent post that job's samples: the platform's agent key and a token per job.

Below services/ so that submission (services/jobs/) can hand a job its token without importing the
monitoring services, which act on jobs (idle GPUs are cancelled)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING

from ..fsutil import fsync_dir

if TYPE_CHECKING:
    from ..config import Settings


def _agent_secret(settings: Settings) -> bytes:
    configured = settings.monitoring.agent_secret
    if configured:
        return configured.encode()
    path = settings.data_dir / "agent.key"
    if not path.exists():  # made whole, then linked into place: two first users agree on one key
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"agent.key.{secrets.token_hex(6)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())  # whole on disk before it has its name
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
        fsync_dir(path.parent)
    key = path.read_text().strip()
    if len(key) < 32:  # an empty or cut key would sign anyone's samples
        raise RuntimeError(f"{path} holds no usable agent key: remove it and a new one is made")
    return key.encode()


def agent_token(settings: Settings, job_id: int) -> str:
    """What lets one job's agent post that job's samples, and nothing else."""
    return hmac.new(_agent_secret(settings), f"agent:{job_id}".encode(), hashlib.sha256).hexdigest()


def agent_endpoint(settings: Settings, job_id: int) -> tuple[str | None, str | None]:
    """Where a job's agent posts its samples, and with what token (None, None: it does not post)."""
    url = settings.monitoring.agent_url
    if not url:
        return None, None
    return url.rstrip("/") + "/monitoring/samples", agent_token(settings, job_id)

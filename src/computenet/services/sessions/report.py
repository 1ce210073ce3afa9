"""Where a session's server listens: the job's own report, read back and not trusted.

The job writes cnet-session.json ({"host": ..., "port": ...}) in its working directory; it is
fetched like an output (the stager, no symlink followed, a few KiB at most). The host must be a
node the scheduler gave the job and the port an unprivileged TCP port; the proxy then connects
to that node's address and nowhere else, whatever the request says.
"""

from __future__ import annotations

import json
import secrets
import socket

from ...catalog.interactive import REPORT_FILE
from ...clusters.base import ClusterError
from ...files import FileError, NotFound
from ...store.models import Job
from ..platform import Platform

MAX_REPORT_BYTES = 4096
PORTS = range(1024, 65536)


class ReportRefused(ValueError):
    """The report names something other than the job's node and a valid port."""


def _run_as(platform: Platform, session, job: Job) -> str | None:
    if platform.cluster_config(job.cluster.name).run_as_users:
        from ..tenancy.identities import unix_user_for

        return unix_user_for(session, job.owner_id, job.cluster_id)
    return None


def fetch(platform: Platform, session, job: Job) -> dict | None:
    """The job's report as JSON (not yet checked), or None while it is not there."""
    from ..files.job_files import stager_for

    scratch = platform.settings.storage_root() / ".fetch"
    scratch.mkdir(parents=True, exist_ok=True)
    temp = scratch / f"session-{job.id}-{secrets.token_hex(6)}"
    stager = stager_for(platform, job.cluster.name, _run_as(platform, session, job))
    try:
        stager.get(f"{job.workdir.rstrip('/')}/{REPORT_FILE}", temp, max_bytes=MAX_REPORT_BYTES)
        text = temp.read_bytes()
    except (NotFound, FileNotFoundError):
        return None  # not written yet
    except (FileError, ClusterError, OSError) as exc:
        raise ReportRefused(f"the session's report cannot be read: {exc}") from None
    finally:
        stager.close()
        temp.unlink(missing_ok=True)
    try:
        return json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ReportRefused("the session's report is not JSON") from None


def job_nodes(platform: Platform, job: Job) -> tuple[str, ...]:
    """The nodes the scheduler runs the job on (the local executor: this host)."""
    if platform.cluster_config(job.cluster.name).kind == "local":
        return (socket.gethostname(),)
    adapter = platform.adapter(job.cluster.name)
    if not hasattr(adapter, "queue"):
        return ()
    for entry in adapter.queue():
        if entry.native_id == job.native_id:
            return tuple(entry.node_names)
    return ()


def check(platform: Platform, job: Job, report: object) -> tuple[str, str, int]:
    """(host, address to connect to, port) from a report; ReportRefused says what is wrong."""
    if not isinstance(report, dict):
        raise ReportRefused("the session's report is not a JSON object")
    host, port = report.get("host"), report.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or port not in PORTS:
        raise ReportRefused(f"the session reported port {port!r}, not a port from 1024 to 65535")
    if not isinstance(host, str) or not host or len(host) > 255:
        raise ReportRefused("the session reported no host")
    nodes = job_nodes(platform, job)
    if host not in nodes:
        raise ReportRefused(f"the session reported host {host[:80]!r}, which is not the job's node "
                            f"({', '.join(nodes) or 'none known'})")
    if platform.cluster_config(job.cluster.name).kind == "local":
        return host, "127.0.0.1", port
    adapter = platform.adapter(job.cluster.name)
    if hasattr(adapter, "node_address"):  # Slurm's NodeAddr: a NodeName need not resolve
        try:
            host_address = adapter.node_address(host)
        except ClusterError as exc:
            raise ReportRefused(f"the address of the job's node {host} is not known: {exc}") from None
    else:
        host_address = host
    from .reach import forwards_ports

    if forwards_ports(platform, job.cluster.name):  # the login node resolves it at the far end of the forward
        if not host_address or len(host_address) > 64:
            raise ReportRefused(f"the address of the job's node {host} is not usable: {host_address[:80]!r}")
        return host, host_address, port
    try:
        address = socket.getaddrinfo(host_address, port, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as exc:
        raise ReportRefused(f"the job's node {host} has no address here: {exc}") from None
    return host, address, port


def probe_url(address: str, port: int, base: str, probe: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{base}{probe}"



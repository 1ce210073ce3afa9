"""Where the platform connects to reach a session's server: one function for the proxy and the watch.

A cluster reached locally: the node's address and the port the session reported (both checked by
report.check). A cluster behind the SSH transport, whose nodes the platform cannot reach: a port on
127.0.0.1 forwarded over the cluster's existing SSH connection to that checked node and port and
nowhere else (asyncssh's forward_local_port). Each process keeps its own forwards, one per session;
``release`` and ``sweep`` close those of sessions that are no longer running.
"""

from __future__ import annotations

from sqlalchemy import select

from ...store.models import InteractiveSession
from ..platform import Platform


def _key(session_id: int) -> str:
    return f"session-{session_id}"


def _forwarding(platform: Platform, cluster: str):
    """The cluster's transport if it forwards ports (SSH), else None."""
    transport = getattr(platform.adapters.get(cluster), "transport", None)
    return transport if hasattr(transport, "forward") else None


def forwards_ports(platform: Platform, cluster: str) -> bool:
    return _forwarding(platform, cluster) is not None


def target(platform: Platform, row: InteractiveSession) -> tuple[str, int]:
    """(host, port) to connect to for a running session (ClusterError if the forward cannot be made)."""
    if row.address is None or row.port is None:
        raise ValueError(f"session {row.id} has no checked address")
    return connect_to(platform, row.job.cluster.name, row.id, row.address, row.port)


def connect_to(platform: Platform, cluster: str | None, session_id: int, address: str, port: int) -> tuple[str, int]:
    """target's answer from the session's stored values (so a caller need not hold a database session
    while an SSH connection is made); no cluster: the address as it is."""
    transport = _forwarding(platform, cluster) if cluster is not None else None
    if transport is None:
        return address, port
    return transport.forward(_key(session_id), address, port)


def _transports(platform: Platform):
    for name in list(platform.adapters):
        transport = _forwarding(platform, name)
        if transport is not None:
            yield transport


def release(platform: Platform, session_id: int) -> None:
    """Close this process's forward to a session (it ended)."""
    for transport in _transports(platform):
        transport.close_forward(_key(session_id))


def sweep(platform: Platform) -> int:
    """Close this process's forwards to sessions no longer starting or running (ended by another
    process, or stopped through another one); how many."""
    held = {key: transport for transport in _transports(platform) for key in transport.forwards()
            if key.startswith("session-")}
    if not held:
        return 0
    ids = {int(key.split("-", 1)[1]) for key in held}
    with platform.db.session() as session:
        running = set(session.scalars(select(InteractiveSession.id).where(
            InteractiveSession.id.in_(ids), InteractiveSession.state.in_(("starting", "running")))))
    closed = 0
    for key, transport in held.items():
        if int(key.split("-", 1)[1]) not in running:
            transport.close_forward(key)
            closed += 1
    return closed

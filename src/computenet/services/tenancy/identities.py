"""Who a platform user is on each cluster: the Unix user their jobs run as."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ...clusters.slurm.transport import check_unix_user
from ...store.models import Cluster, UnixIdentity, User
from .. import audit
from ...messages import msg
from ..errors import InvalidRequest, NotFound


def map_user(session: Session, user: User, unix_user: str, cluster_name: str | None, who: audit.Who) -> UnixIdentity:
    """Map a user to a Unix login (on one cluster, or on every cluster with cluster_name None)."""
    try:
        check_unix_user(unix_user)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    cluster_id = None
    if cluster_name:
        cluster = session.scalar(select(Cluster).where(Cluster.name == cluster_name))
        if cluster is None:
            raise NotFound(msg("unknown cluster %(cluster_name)r", cluster_name=cluster_name))
        cluster_id = cluster.id
    row = session.scalar(select(UnixIdentity).where(UnixIdentity.user_id == user.id,
                                                    UnixIdentity.cluster_id.is_(None) if cluster_id is None
                                                    else UnixIdentity.cluster_id == cluster_id))
    if row is None:
        row = UnixIdentity(user_id=user.id, cluster_id=cluster_id, unix_user=unix_user)
        session.add(row)
    row.unix_user = unix_user
    audit.record(session, who, "identity.map", f"user:{user.name}", unix_user=unix_user, cluster=cluster_name or "*")
    session.flush()
    return row


def unix_user_for(session: Session, user_id: int, cluster_id: int) -> str | None:
    """The cluster's own mapping first, then the user's mapping for every cluster."""
    rows = session.execute(select(UnixIdentity.cluster_id, UnixIdentity.unix_user).where(
        UnixIdentity.user_id == user_id,
        or_(UnixIdentity.cluster_id == cluster_id, UnixIdentity.cluster_id.is_(None)))).all()
    by_cluster = {c: u for c, u in rows}
    return by_cluster.get(cluster_id) or by_cluster.get(None)

"""/clusters: what the network offers, with health and list prices."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import select

from ...schemas import ClusterOut
from ...store.models import Cluster, User
from ..deps import current_user, get_platform, get_session
from ..responses import errors
from ..views import cluster_out

router = APIRouter(prefix="/clusters", tags=["clusters"], responses=errors(401))


@router.get("", response_model=list[ClusterOut])
def list_clusters(user: User = Depends(current_user), session=Depends(get_session), platform=Depends(get_platform)):
    probe = platform.settings.routing.probe_interval_seconds
    return [cluster_out(c, probe) for c in session.scalars(select(Cluster).order_by(Cluster.name))]

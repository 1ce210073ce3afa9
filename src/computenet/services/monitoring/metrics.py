"""Prometheus exposition of the platform's gauges (GET /metrics, for an operator's scraper)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...domain.states import JobState
from ...store.models import Cluster, Job, JobSample, JobStepSample, Partition

LIVE = (JobState.RUNNING.value, JobState.COMPLETING.value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _cluster_cores(partitions: list[Partition]) -> int:
    """Cores of a cluster counted once per node (partitions share nodes: debug inside cpu)."""
    per_node: dict[str, int] = {}
    anonymous = 0
    for p in partitions:
        if p.node_names:
            for node in p.node_names:
                per_node[node] = max(per_node.get(node, 0), p.cores_per_node)
        else:
            anonymous = max(anonymous, p.nodes * p.cores_per_node)
    return sum(per_node.values()) or anonymous


def cluster_load(session: Session) -> dict[str, dict]:
    """Per cluster: platform jobs waiting (queue depth), cores busy with running jobs, cores, and
    their ratio (the same figures as the gauges below, for the portal's clusters page)."""
    pending = dict(session.execute(select(Cluster.name, func.count()).select_from(Job)
                                   .join(Cluster, Job.cluster_id == Cluster.id)
                                   .where(Job.state == JobState.PENDING.value).group_by(Cluster.name)).all())
    busy = dict(session.execute(select(Cluster.name, func.coalesce(func.sum(Job.cores), 0))
                                .join(Cluster, Job.cluster_id == Cluster.id)
                                .where(Job.state.in_(LIVE)).group_by(Cluster.name)).all())
    out = {}
    for c in session.scalars(select(Cluster).order_by(Cluster.name)):
        total = _cluster_cores(list(c.partitions))
        out[c.name] = {"queue_depth": int(pending.get(c.name, 0)), "busy_cores": int(busy.get(c.name, 0) or 0),
                       "cores": total, "utilization": round(busy.get(c.name, 0) / total, 4) if total else 0}
    return out


def render(session: Session) -> str:
    out: list[str] = []

    def gauge(name: str, help_text: str, rows: list[tuple[dict, float]], kind: str = "gauge") -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            text = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    clusters = list(session.scalars(select(Cluster).order_by(Cluster.name)))
    by_state = session.execute(select(Cluster.name, Job.state, func.count()).join(Cluster, Job.cluster_id == Cluster.id)
                               .group_by(Cluster.name, Job.state)).all()
    gauge("computenet_jobs", "Jobs the platform knows, by cluster and state.",
          [({"cluster": c, "state": s}, n) for c, s, n in by_state])
    pending = {c: n for c, s, n in by_state if s == JobState.PENDING.value}
    gauge("computenet_queue_depth", "Platform jobs waiting in each cluster's queue.",
          [({"cluster": c.name}, pending.get(c.name, 0)) for c in clusters])
    gauge("computenet_cluster_up", "1 when the cluster answered its last health check.",
          [({"cluster": c.name, "health": c.health}, 1 if c.health == "online" else 0) for c in clusters])
    busy = dict(session.execute(select(Cluster.name, func.coalesce(func.sum(Job.cores), 0))
                                .join(Cluster, Job.cluster_id == Cluster.id)
                                .where(Job.state.in_(LIVE)).group_by(Cluster.name)).all())
    rows = []
    for c in clusters:
        total = _cluster_cores(list(c.partitions))
        rows.append(({"cluster": c.name}, round(busy.get(c.name, 0) / total, 4) if total else 0))
    gauge("computenet_cluster_utilization", "Cores of running platform jobs / cores of the cluster.", rows)
    gauge("computenet_cluster_cores", "Cores of the cluster (each node once).",
          [({"cluster": c.name}, _cluster_cores(list(c.partitions))) for c in clusters])
    gauge("computenet_monitored_jobs", "Jobs whose sampling agent is reporting (on) or read to the end (done).",
          [({"state": s}, n) for s, n in session.execute(
              select(Job.monitor_state, func.count()).where(Job.monitor_state.is_not(None))
              .group_by(Job.monitor_state)).all()])
    # the highest row id: counts every sample ever stored in O(1) (count(*) scans the table, and
    # would go down when old jobs are downsampled, which a Prometheus counter must never do)
    gauge("computenet_samples_stored_total", "Job samples stored (rate() of it is the ingest rate).",
          [({}, session.scalar(select(func.max(JobSample.id))) or 0)], kind="counter")
    gauge("computenet_step_snapshots_total", "sstat snapshots of running steps stored.",
          [({}, session.scalar(select(func.max(JobStepSample.id))) or 0)], kind="counter")
    from ...workers.status import exposition as workers  # per background task: holder, last success, lag

    return "\n".join(out) + "\n" + workers(session)

"""ORM rows -> wire models."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..schemas import JobDetail, JobEventOut, JobOut, ClusterOut, PartitionOut
from ..store.models import Charge, Cluster, FileRecord, Job, JobEvent, UsageRecordRow


def job_out(session: Session, job: Job) -> JobOut:
    cost = session.scalar(select(func.sum(Charge.amount)).where(Charge.job_id == job.id))
    return JobOut(
        id=job.id, name=job.name, state=job.state, reason=job.reason, cluster=job.cluster.name,
        partition=job.partition, native_id=job.native_id, account=job.account.name, owner=job.owner.name,
        cores=job.cores, gpus=job.gpus, time_limit_minutes=job.time_limit_minutes, max_cost=job.max_cost,
        submitted_at=job.submitted_at, start_time=job.start_time, end_time=job.end_time,
        exit_code=job.exit_code, workdir=job.workdir, stdout_path=job.stdout_path,
        stderr_path=job.stderr_path, settled=job.settled_at is not None,
        cost=Decimal(cost) if cost is not None else None, needs_reconcile=job.needs_reconcile,
        app=f"{job.app['name']} {job.app['version']}" if job.app else None, outputs=job.collect_state,
        nodes=int((job.spec or {}).get("resources", {}).get("nodes") or 1),
    )


def job_detail(session: Session, job: Job) -> JobDetail:
    events = session.scalars(select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id))
    return JobDetail(
        **job_out(session, job).model_dump(),
        script=job.script, script_args=job.script_args, spec=job.spec,
        events=[JobEventOut(from_state=e.from_state, to_state=e.to_state, detail=e.detail, at=e.at) for e in events],
        routing=job.routing, predicted_start=job.predicted_start, reroutes=job.reroutes or 0,
        node_list=job.node_list,
        app_run={k: v for k, v in job.app.items() if k != "scripts"} if job.app else None,
        inputs=[{k: i.get(k) for k in ("path", "name", "size", "sha256", "cluster", "remote")}
                for i in job.inputs or []],
        output_files=[{"path": ("~/" if r.workspace.startswith("user:") else f"@{r.workspace[8:]}/") + r.path,
                       "size": r.size, "sha256": r.sha256, "cluster": r.cluster, "remote_path": r.remote_path}
                      for r in session.scalars(select(FileRecord).where(FileRecord.job_id == job.id)
                                               .order_by(FileRecord.path))],
        **_usage_seen(session, job),
    )


def _usage_seen(session: Session, job: Job) -> dict:
    """Requested memory; peak RSS from the samples (the agent's or sstat's); elapsed from accounting."""
    from ..services.billing.pricing import job_memory_mb
    from ..store.monitor_models import JobSample, JobStepSample

    peaks = [session.scalar(select(func.max(JobSample.rss)).where(JobSample.job_id == job.id)),
             session.scalar(select(func.max(JobStepSample.rss)).where(JobStepSample.job_id == job.id))]
    peaks = [int(p) for p in peaks if p is not None]
    elapsed = session.scalar(select(func.max(UsageRecordRow.elapsed_seconds))
                             .where(UsageRecordRow.job_id == job.id))
    return {"mem_mb": job_memory_mb(job) or None, "max_rss_bytes": max(peaks) if peaks else None,
            "elapsed_s": None if elapsed is None else int(elapsed)}


def cluster_out(cluster: Cluster, probe_interval_s: float = 5.0) -> ClusterOut:
    from ..services.network.cluster_probe import retry_at

    return ClusterOut(
        retry_at=retry_at(cluster, probe_interval_s),
        name=cluster.name, kind=cluster.kind, health=cluster.health, health_detail=cluster.health_detail,
        checked_at=cluster.checked_at, region=cluster.region, site=cluster.site, ownership=cluster.ownership,
        tags=list(cluster.tags or []),
        partitions=[
            PartitionOut(
                name=p.name, nodes=p.nodes, cores_per_node=p.cores_per_node, mem_per_node_mb=p.mem_per_node_mb,
                gpus_per_node=p.gpus_per_node, gpu_type=p.gpu_type, max_time_minutes=p.max_time_minutes,
                default_time_minutes=p.default_time_minutes, is_default=p.is_default, available=p.available,
                price_core_hour=p.price_core_hour, price_gpu_hour=p.price_gpu_hour,
            )
            for p in cluster.partitions
        ],
    )

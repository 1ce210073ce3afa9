"""What the leases say: who holds each task, how its last run went, how late it is. Read by
`cnet admin workers`, /metrics and the worker's health listener (any process can answer: it is
all in the database)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import WorkerLease
from .leases import db_now


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def tasks(session: Session) -> list[dict]:
    now = db_now(session)
    out = []
    for row in session.scalars(select(WorkerLease).order_by(WorkerLease.task)):
        live = bool(row.holder and row.expires_at and row.expires_at > now)
        due = (row.last_started_at + timedelta(seconds=(row.last_duration_s or 0) + row.interval_s)
               if row.last_started_at else None)
        out.append({
            "task": row.task, "holder": row.holder if live else None, "last_holder": row.holder,
            "fence": row.fence, "expires_at": row.expires_at, "interval_s": row.interval_s,
            "last_started_at": row.last_started_at, "last_success_at": row.last_success_at,
            "last_duration_s": row.last_duration_s, "last_error": row.last_error or "",
            "last_error_at": row.last_error_at,
            # how long past due the task is (0 while it is on time; a task never run yet is not late)
            "lag_s": max(0.0, (now - due).total_seconds()) if due else 0.0,
        })
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(session: Session) -> str:
    """Prometheus text for the tasks (appended to /metrics)."""
    rows = tasks(session)
    out: list[str] = []

    def gauge(name: str, help_text: str, values: list[tuple[dict, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        for labels, value in values:
            text = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {value:g}")

    gauge("computenet_worker_last_success_timestamp_seconds", "When the task last ran without error (0: never).",
          [({"task": r["task"]}, _ts(r["last_success_at"])) for r in rows])
    gauge("computenet_worker_last_duration_seconds", "How long the task's last run took.",
          [({"task": r["task"]}, r["last_duration_s"] or 0) for r in rows])
    gauge("computenet_worker_lag_seconds", "How long past due the task is (0: on time).",
          [({"task": r["task"]}, r["lag_s"]) for r in rows])
    gauge("computenet_worker_lease_held", "1 while a live process holds the task's lease (holder names it).",
          [({"task": r["task"], "holder": r["holder"] or ""}, 1 if r["holder"] else 0) for r in rows])
    return "\n".join(out) + "\n" if out else ""

"""The transactional outbox of domain events (docs/events.md).

A row is written in the same transaction as the change it tells of, so an event exists exactly
when its change was committed; the publisher (services/integration/event_publisher.py) sends unpublished rows
to the broker afterwards, with the event id as the broker's dedup key, and marks them published.

Most events are derived here, in one place, from the rows every code path already writes (a job
state change is always a JobEvent row; a charge always a Charge row; a cluster's health and an
app's status are columns): an after_flush hook adds the outbox rows on the flush's own connection.
Nothing has to remember to call it, and no path can change a job without its event.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Integer, String, Text, event, inspect, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Account, App, Charge, Cluster, Job, JobEvent, Notification, Tenant
from .models import Base
from .types import UTCDateTime, utcnow

SCHEMA_VERSION = 1
PLATFORM_TENANT = "_platform"  # events of no tenant (clusters; accounts outside any tenant)
# notices that tell of an account's money; the event type each becomes
BALANCE_KINDS = {"low_balance": "balance.low", "blocked": "balance.blocked", "unblocked": "balance.unblocked",
                 "exhausted": "balance.exhausted", "restored": "balance.restored"}
# every type there is (docs/events.md); webhook endpoints choose among them
EVENT_TYPES = ("job.state_changed", "job.charged", *BALANCE_KINDS.values(), "account.notice", "statement.issued",
               "efficiency.finding", "cluster.health_changed", "app.approved")


class OutboxEvent(Base):
    __tablename__ = "outbox_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # the order events are published in
    id: Mapped[str] = mapped_column(String(36), unique=True)  # the event id (Nats-Msg-Id)
    type: Mapped[str] = mapped_column(String(48))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tenant: Mapped[str] = mapped_column(String(70))  # the subject token (tenant_token)
    tenant_id: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(200))  # what it is about: job/12, account/lab, ...
    data: Mapped[dict] = mapped_column(JSON)
    schema_version: Mapped[int] = mapped_column(Integer, default=SCHEMA_VERSION)
    # one event per happening where the change itself may be written more than once (a notice per member)
    dedup_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # when its webhook deliveries were written (services/integration/webhooks.py); the clean-up waits for it
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


def tenant_token(name: str | None) -> str:
    """A tenant's token in subjects: its name, '.' written '~' (a dot separates subject tokens;
    tenant names never hold '~', so no two tenants share a token)."""
    return name.replace(".", "~") if name else PLATFORM_TENANT


def _row(type_: str, tenant: tuple[int | None, str | None], subject: str, data: dict,
         dedup_key: str | None = None) -> dict:
    return {"id": str(uuid.uuid4()), "type": type_, "occurred_at": utcnow(), "tenant": tenant_token(tenant[1]),
            "tenant_id": tenant[0], "subject": subject, "data": data, "schema_version": SCHEMA_VERSION,
            "dedup_key": dedup_key, "attempts": 0, "last_error": ""}


def _account_tenant(conn, account_id: int | None,
                    memo: dict | None = None) -> tuple[tuple[int | None, str | None], str | None]:
    """((tenant id, tenant name), account name); ``memo``: the answers of this flush so far."""
    if account_id is None:
        return (None, None), None
    if memo is not None and account_id in memo:
        return memo[account_id]
    row = conn.execute(select(Account.name, Tenant.id, Tenant.name).select_from(Account)
                       .outerjoin(Tenant, Tenant.id == Account.tenant_id).where(Account.id == account_id)).first()
    found = ((row[1], row[2]), row[0]) if row else ((None, None), None)
    if memo is not None:
        memo[account_id] = found
    return found


def _jobs(conn, ids: set[int]) -> dict[int, tuple]:
    """{job id: (account id, name, cluster name)}, 1,000 at a time (a poll may move thousands at once)."""
    wanted, found = sorted(ids), {}
    for lo in range(0, len(wanted), 1000):
        for job_id, account_id, name, cluster in conn.execute(
                select(Job.id, Job.account_id, Job.name, Cluster.name).select_from(Job)
                .join(Cluster, Cluster.id == Job.cluster_id).where(Job.id.in_(wanted[lo:lo + 1000]))):
            found[job_id] = (account_id, name, cluster)
    return found


def _changed(obj, attr: str) -> tuple[object, object] | None:
    hist = inspect(obj).attrs[attr].history
    if not hist.has_changes() or not hist.added:
        return None
    return (hist.deleted[0] if hist.deleted else None), hist.added[0]


def _job_event(conn, ev: JobEvent, jobs: dict[int, tuple], memo: dict) -> dict | None:
    if ev.from_state == ev.to_state:
        return None  # a note on the timeline (adopted, settled), not a change of state
    row = jobs.get(ev.job_id)
    if row is None:
        return None
    tenant, account = _account_tenant(conn, row[0], memo)
    return _row("job.state_changed", tenant, f"job/{ev.job_id}",
                {"job": ev.job_id, "name": row[1], "cluster": row[2], "account": account,
                 "from": ev.from_state, "to": ev.to_state, "reason": ev.detail or ""})


def _charge(conn, c: Charge) -> dict:
    tenant, account = _account_tenant(conn, c.account_id)
    currency = conn.execute(select(Account.currency).where(Account.id == c.account_id)).scalar()
    return _row("job.charged", tenant, f"job/{c.job_id}",
                {"job": c.job_id, "account": account, "charge": c.id, "amount": str(c.amount),
                 "exact_amount": None if c.exact_amount is None else str(c.exact_amount),
                 "currency": currency, "core_seconds": c.core_seconds, "gpu_seconds": c.gpu_seconds})


def _notice(conn, n: Notification) -> dict | None:
    if n.account_id is None:
        return None
    tenant, account = _account_tenant(conn, n.account_id)
    type_ = BALANCE_KINDS.get(n.kind)
    if type_ is None:  # any other notice (a job lost, GPUs idle, a session ended): as told, to one person
        return _row("account.notice", tenant, f"account/{account}",
                    {"account": account, "kind": n.kind, "message": n.message},
                    dedup_key=f"account.notice:{n.key}"[:200])
    # the notice's key is "<event>:<user>": one event per happening, however many members are told
    event_key = n.key.rsplit(":", 1)[0] if ":" in n.key else n.key
    return _row(type_, tenant, f"account/{account}", {"account": account, "message": n.message},
                dedup_key=f"{type_}:{event_key}")


def _cluster(conn, c: Cluster) -> dict | None:
    change = _changed(c, "health")
    if change is None or change[0] == change[1]:
        return None
    return _row("cluster.health_changed", (None, None), f"cluster/{c.name}",
                {"cluster": c.name, "from": change[0], "to": change[1], "detail": c.health_detail or ""})


def _app(conn, a: App) -> dict | None:
    change = _changed(a, "status")
    if change is None or change[1] != "approved" or change[0] == "approved":
        return None
    tenant = (None, None)
    if a.tenant_id is not None:
        tenant = (a.tenant_id, conn.execute(select(Tenant.name).where(Tenant.id == a.tenant_id)).scalar())
    return _row("app.approved", tenant, f"app/{a.name}/{a.version}",
                {"app": a.name, "version": a.version, "scope": a.scope})


_WATCHED = (JobEvent, Charge, Notification)


@event.listens_for(Session, "after_flush")
def _write_outbox(session: Session, _context) -> None:
    if not any(isinstance(o, _WATCHED) for o in session.new) and \
            not any(isinstance(o, (Cluster, App)) for o in session.dirty):
        return  # most flushes: nothing to tell
    rows = []
    conn = session.connection()
    # the jobs and accounts of all this flush's state changes in a few queries, not a few per event
    jobs = _jobs(conn, {o.job_id for o in session.new if isinstance(o, JobEvent) and o.from_state != o.to_state})
    memo: dict = {}
    for obj in session.new:
        if isinstance(obj, JobEvent):
            rows.append(_job_event(conn, obj, jobs, memo))
        elif isinstance(obj, Charge):
            rows.append(_charge(conn, obj))
        elif isinstance(obj, Notification):
            rows.append(_notice(conn, obj))
    for obj in session.dirty:
        if isinstance(obj, Cluster):
            rows.append(_cluster(conn, obj))
        elif isinstance(obj, App):
            rows.append(_app(conn, obj))
    _insert(conn, [r for r in rows if r is not None])


def add_event(session: Session, type_: str, account_id: int, subject: str, data: dict, dedup_key: str) -> None:
    """An event about an account that no watched row tells of (a statement issued, a finding), written
    in the caller's transaction; one per dedup_key however often it is called."""
    conn = session.connection()
    tenant, account = _account_tenant(conn, account_id)
    _insert(conn, [_row(type_, tenant, subject, {"account": account} | data, dedup_key=dedup_key)])


def _insert(conn, rows: list[dict]) -> None:
    plain: list[dict] = []  # written together (one executemany), in order
    for r in rows:
        if r["dedup_key"] is None:
            plain.append(r)
            continue
        if plain:
            conn.execute(OutboxEvent.__table__.insert(), plain)
            plain = []
        # said already in this or an earlier transaction: one event
        seen = conn.execute(select(OutboxEvent.seq).where(OutboxEvent.dedup_key == r["dedup_key"])).first()
        if seen is None:
            conn.execute(OutboxEvent.__table__.insert(), r)
    if plain:
        conn.execute(OutboxEvent.__table__.insert(), plain)

"""A user's jobs with filters, a sort and keyset pagination (the portal's job list).

Pages follow each other by the last job shown ("after job N"), never by OFFSET: the next page is
the rows that sort after job N's own key, so a page stays right while new jobs arrive and costs
the same deep in the list as at its top. Bad filter values raise InvalidRequest naming the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ...domain.states import TERMINAL_STATES, JobState
from ...store.models import Account, Charge, Cluster, Job, User
from ...messages import msg
from ..errors import InvalidRequest

SORTS = ("submitted", "state", "cost")
PAGE_SIZE = 25
_TERMINAL = [s.value for s in TERMINAL_STATES]


@dataclass
class JobQuery:
    """What the list shows; every field as the user typed it, checked by ``parse``."""

    state: str = ""       # a JobState, or "active" / "ended"
    cluster: str = ""
    account: str = ""
    app: str = ""
    submitted_from: date | None = None
    submitted_to: date | None = None  # inclusive
    sort: str = "submitted"
    descending: bool = True
    after: int | None = None  # the last job of the page before
    limit: int = PAGE_SIZE

    @classmethod
    def parse(cls, state: str = "", cluster: str = "", account: str = "", app: str = "", submitted_from: str = "",
              submitted_to: str = "", sort: str = "submitted", order: str = "desc", after: str = "",
              limit: int = PAGE_SIZE) -> "JobQuery":
        state, sort, order = state.strip(), sort or "submitted", order or "desc"
        for name, value in (("cluster", cluster), ("account", account), ("app", app)):
            if len(value) > 128:
                raise InvalidRequest(msg("%(name)s %(value)r... is longer than 128 characters", name=name,
                                         value=value[:40]))
        if state and state not in ("active", "ended"):
            try:
                state = JobState(state.upper()).value
            except ValueError:
                raise InvalidRequest(msg("unknown state %(state)r", state=state)) from None
        if sort not in SORTS:
            raise InvalidRequest(msg("unknown sort %(sort)r: one of %(sorts)s", sort=sort, sorts=", ".join(SORTS)))
        if order not in ("asc", "desc"):
            raise InvalidRequest(msg("unknown order %(order)r: asc or desc", order=order))
        after_id = None
        if after.strip():
            if not after.strip().isdigit() or int(after) < 1 or int(after) > 2**31 - 1:
                raise InvalidRequest(msg("after must be a job id, not %(after)r", after=after))
            after_id = int(after)
        query = cls(state=state, cluster=cluster.strip(), account=account.strip(), app=app.strip(),
                    submitted_from=_day(submitted_from, "from"), submitted_to=_day(submitted_to, "to"),
                    sort=sort, descending=order == "desc", after=after_id, limit=max(1, min(limit, 200)))
        if query.submitted_from and query.submitted_to and query.submitted_from > query.submitted_to:
            raise InvalidRequest(msg("submitted from %(start)s is after submitted to %(end)s", start=submitted_from,
                                     end=submitted_to))
        return query


@dataclass
class JobPage:
    jobs: list[Job]
    costs: dict[int, object] = field(default_factory=dict)  # job id -> charged so far (Decimal)
    next_after: int | None = None  # the id to ask "after" for the next page; None on the last page


def _day(text: str, which: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(msg("submitted %(which)s %(text)r is not a date (YYYY-MM-DD)", which=which,
                                 text=text)) from None


def _cost_column():
    """What a job has been charged so far (0 before its first charge), as a correlated subquery."""
    return func.coalesce(select(func.sum(Charge.amount)).where(Charge.job_id == Job.id)
                         .correlate(Job).scalar_subquery(), 0)


def search(session: Session, user: User, query: JobQuery, timezone: str = "UTC") -> JobPage:
    """The user's own jobs (an operator's too: this is their list, not the platform's)."""
    cost = _cost_column()
    key = {"submitted": Job.submitted_at, "state": Job.state, "cost": cost}[query.sort]
    stmt = select(Job, cost.label("cost")).where(Job.owner_id == user.id)
    if query.state == "active":
        stmt = stmt.where(Job.state.not_in(_TERMINAL))
    elif query.state == "ended":
        stmt = stmt.where(Job.state.in_(_TERMINAL))
    elif query.state:
        stmt = stmt.where(Job.state == query.state)
    if query.cluster:
        stmt = stmt.where(Job.cluster_id.in_(select(Cluster.id).where(Cluster.name == query.cluster)))
    if query.account:
        stmt = stmt.where(Job.account_id.in_(select(Account.id).where(Account.name == query.account)))
    zone = ZoneInfo(timezone)
    if query.submitted_from:
        stmt = stmt.where(Job.submitted_at >= datetime.combine(query.submitted_from, time(), zone))
    if query.submitted_to:
        stmt = stmt.where(Job.submitted_at < datetime.combine(query.submitted_to + timedelta(days=1), time(), zone))
    if query.app:
        stmt = stmt.where(Job.app["name"].as_string() == query.app)
    if query.after is not None:
        stmt = stmt.where(_after(session, user, query, key))
    order = (key.desc(), Job.id.desc()) if query.descending else (key.asc(), Job.id.asc())
    rows = session.execute(stmt.order_by(*order).limit(query.limit + 1)).all()
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    return JobPage(jobs=[r[0] for r in rows], costs={r[0].id: r[1] for r in rows},
                   next_after=rows[-1][0].id if more and rows else None)


def _after(session: Session, user: User, query: JobQuery, key):
    """Rows that sort after job ``query.after`` in this order (its key, then the id breaking ties)."""
    anchor = session.execute(select(Job.id, key).where(Job.id == query.after, Job.owner_id == user.id)).first()
    if anchor is None:
        raise InvalidRequest(msg("after: no job %(after)s in your list", after=query.after))
    value = anchor[1]
    if query.descending:
        return or_(key < value, and_(key == value, Job.id < anchor[0]))
    return or_(key > value, and_(key == value, Job.id > anchor[0]))

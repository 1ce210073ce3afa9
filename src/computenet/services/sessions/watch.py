"""The session watch: moves each live session along with its job (run_once, every few seconds).

queued while the job waits; starting once it runs, until its server answers the probe (through
the address the job reported and report.check accepted, reached as reach.target says); running;
ended when the job ends (its node died, its time limit: the owner told), when the server never
answers (timeout: cancelled, its log is the job's output), when nobody used it for
sessions.idle_minutes (cancelled, the owner told), when it runs past its time limit (cancelled,
told; a notice sessions.warn_minutes_before_end before), or when its report is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from sqlalchemy import select

from ...clusters.base import ClusterError
from ...domain.states import JobState
from ...messages import msg
from ...store.models import Account, InteractiveSession, User
from ...store.types import utcnow
from ..platform import Platform
from . import end, reach, report

log = logging.getLogger(__name__)


@dataclass
class WatchReport:
    changed: list[tuple[int, str]] = field(default_factory=list)  # (session id, new state or reason)


def probe(platform: Platform, row: InteractiveSession) -> bool:
    """Does the server answer (any HTTP answer below 500) at its probe path?"""
    from . import base_url

    try:
        url = report.probe_url(*reach.target(platform, row), base_url(row.id), row.probe)
    except ClusterError:
        return False
    try:
        answer = httpx.get(url, headers={"Authorization": f"token {row.secret}"},
                           timeout=platform.settings.sessions.probe_timeout_s, follow_redirects=False)
    except httpx.HTTPError:
        return False
    return answer.status_code < 500


def server_activity(platform: Platform, row: InteractiveSession):
    """When the server last saw use, by its own account (JupyterLab's /api/status: its last activity,
    now while a browser is connected or a kernel is busy); None where the server does not say."""
    if row.kind not in ("jupyterlab", "shell", "desktop"):  # the shell's and desktop's servers answer alike
        return None
    from datetime import datetime

    from . import base_url

    try:
        url = report.probe_url(*reach.target(platform, row), base_url(row.id), "api/status")
    except ClusterError:
        return None
    try:
        answer = httpx.get(url, headers={"Authorization": f"token {row.secret}"},
                           timeout=platform.settings.sessions.probe_timeout_s)
        status = answer.json() if answer.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(status, dict):
        return None
    if (status.get("connections") or 0) > 0:
        return utcnow()
    try:
        seen = datetime.fromisoformat(str(status.get("last_activity")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return seen if seen.tzinfo is not None else None


class SessionWatch:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def run_once(self) -> WatchReport:
        out = WatchReport()
        with self.platform.db.session() as session:
            ids = list(session.scalars(select(InteractiveSession.id).where(
                InteractiveSession.state.in_(("queued", "starting", "running")))))
        for session_id in ids:
            try:
                changed = self._step(session_id)
            except Exception:  # one bad session must not stop the others
                log.exception("session %s", session_id)
                continue
            if changed:
                out.changed.append((session_id, changed))
        try:
            reach.sweep(self.platform)  # the forwards of sessions that ended close with them
        except Exception:
            log.exception("closing the forwards of ended sessions")
        return out

    def _step(self, session_id: int) -> str | None:
        cfg = self.platform.settings.sessions
        now = utcnow()
        cancel, tell = None, None
        with self.platform.db.session() as session:
            row = session.get(InteractiveSession, session_id)
            job = row.job
            if row.state == "ended" or job is None:
                return None
            state = JobState(job.state)
            if state.is_terminal:
                reason = ENDINGS.get(state, "ended")
                end(session, row, reason, f"the job ended: {state.value}" + (f" ({job.reason})" if job.reason else ""))
                # told, as for an idle stop: nobody asked for this end (the charge is the job's, as ever)
                _tell(session, row, job, "session_ended", _ended_message(row, job, state))
                return reason
            if state != JobState.RUNNING:
                return None  # queued (or suspended): the predicted start is the job's
            if row.state == "queued":
                row.state, row.started_at = "starting", job.start_time or now
                session.flush()
            started = row.started_at or now
            if row.address is None:
                try:
                    found = report.fetch(self.platform, session, job)
                    if found is not None:
                        row.host, row.address, row.port = report.check(self.platform, job, found)
                except report.ReportRefused as exc:
                    cancel = ("refused", f"{exc}; the session was stopped")
            if cancel is None and row.address is not None and row.state == "starting":
                if probe(self.platform, row):
                    row.state, row.ready_at, row.last_activity_at = "running", now, now
                    return "running"
            if cancel is None and row.state == "starting" and now - started > timedelta(seconds=cfg.start_timeout_s):
                cancel = ("timeout", f"the server did not answer within {cfg.start_timeout_s:.0f} s of the job's "
                                     "start; its log is the job's output")
            if cancel is None and row.state == "running":
                cancel = self._time_limit(session, row, job, now)
                tell = cancel[1] if cancel else None
            if cancel is None and row.state == "running":
                idle_since = row.last_activity_at or row.ready_at or now
                if now - idle_since > timedelta(minutes=cfg.idle_minutes):
                    # nobody used it through the proxy: a server that says it is busy (a kernel still
                    # computing, a browser still connected) is not idle
                    busy = server_activity(self.platform, row)
                    if busy is not None and busy > idle_since:
                        row.last_activity_at = idle_since = busy
                if now - idle_since > timedelta(minutes=cfg.idle_minutes):
                    cancel = ("idle", f"session {row.id} ({row.app}) was not used for {cfg.idle_minutes:g} "
                                      "minutes and was stopped")
                    tell = cancel[1]
            if cancel is None:
                return None
            owner_id, job_id = row.owner_id, job.id
        from ..jobs.jobs import cancel_job

        cancel_job(self.platform, owner_id, job_id)  # first: the notice says what is true
        with self.platform.db.session() as session:
            row = session.get(InteractiveSession, session_id)
            end(session, row, cancel[0], cancel[1])
            if tell:
                _tell(session, row, row.job, "session_idle" if cancel[0] == "idle" else "session_ended", tell)
        return cancel[0]

    def _time_limit(self, session, row: InteractiveSession, job, now):
        """A notice once the end is near (once per time limit: an extension earns a new one); past the
        limit and its grace (a scheduler that lets jobs overrun), the session is ended here."""
        cfg = self.platform.settings.sessions
        if job.start_time is None or not job.time_limit_minutes:
            return None
        left = (job.start_time + timedelta(minutes=job.time_limit_minutes) - now).total_seconds()
        if left < -cfg.time_limit_grace_s:
            return ("time_limit", msg("session %(session)s (%(app)s) reached its time limit of %(minutes)s minutes "
                                      "and was ended", session=row.id, app=row.app, minutes=job.time_limit_minutes))
        if cfg.warn_minutes_before_end and 0 < left <= cfg.warn_minutes_before_end * 60:
            _tell(session, row, job, "session_time_left", msg(
                "session %(session)s (%(app)s) ends in %(minutes)s minutes, at its time limit: extend it from the "
                "sessions page to keep working", session=row.id, app=row.app, minutes=max(1, round(left / 60))),
                key=f"session_time_left:{row.id}:{job.time_limit_minutes}")
        return None


ENDINGS = {JobState.TIMEOUT: "time_limit", JobState.NODE_FAIL: "node_failed"}


def _ended_message(row: InteractiveSession, job, state: JobState):
    if state == JobState.TIMEOUT:
        return msg("session %(session)s (%(app)s) reached its time limit of %(minutes)s minutes and ended",
                   session=row.id, app=row.app, minutes=job.time_limit_minutes)
    if state == JobState.NODE_FAIL:
        return msg("session %(session)s (%(app)s) ended: its node stopped (%(state)s); it is charged for the time "
                   "it ran", session=row.id, app=row.app, state=state.value)
    return msg("session %(session)s (%(app)s) ended: its job ended (%(state)s)", session=row.id, app=row.app,
               state=state.value)


def _tell(session, row: InteractiveSession, job, kind: str, message, key: str | None = None) -> None:
    from ..integration.notifications import notify_user

    notify_user(session, session.get(User, row.owner_id), session.get(Account, job.account_id), kind, message,
                key=key or f"{kind}:{row.id}:{row.owner_id}")

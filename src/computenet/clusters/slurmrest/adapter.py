"""A cluster reached through slurmrestd with JWTs (no Slurm client on this host).

Tokens come from a TokenSource: a fixed token, or one minted per user with
``scontrol token username=<user> lifespan=<s>`` where the JWT key lives (the
test bed; a site may run that behind its own token service). Jobs submitted
``run_as`` a user carry that user's token, so Slurm records them as that user.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, tzinfo
from typing import Callable, Sequence

import httpx

from ..base import ClusterError, Health, HealthState, JobStatus, PartitionInfo, QueueEntry, SubmitRequest, UsageRecord
from ...domain import job_env
from ..slurm import tags
from ..slurm.commands import check_output_paths
from ..slurm.transport import check_unix_user
from . import api

TokenMinter = Callable[[str, int], str]  # (user name, lifespan seconds) -> JWT


class TokenSource:
    """JWTs per user, minted on demand and reused until shortly before they expire."""

    def __init__(self, service_user: str, minter: TokenMinter | None = None, fixed_token: str | None = None,
                 lifespan_s: int = 3600) -> None:
        if minter is None and fixed_token is None:
            raise ValueError("slurmrestd needs a token or a way to mint tokens")
        self.service_user, self.minter, self.fixed = service_user, minter, fixed_token
        self.lifespan_s = lifespan_s
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def headers(self, user: str | None = None) -> dict[str, str]:
        name = user or self.service_user
        if user is not None and self.minter is None:
            raise ClusterError(f"a job as {user} needs per-user tokens (only a fixed service token is configured)")
        if self.minter is None:
            return {"X-SLURM-USER-NAME": name, "X-SLURM-USER-TOKEN": self.fixed}
        with self._lock:
            token, expires = self._cache.get(name, ("", 0.0))
            if time.monotonic() > expires - 60:
                token = self.minter(name, self.lifespan_s)
                self._cache[name] = (token, time.monotonic() + self.lifespan_s)
        return {"X-SLURM-USER-NAME": name, "X-SLURM-USER-TOKEN": token}


def scontrol_minter(slurm_conf: str | None = None) -> TokenMinter:
    """Tokens from ``scontrol token`` on this host (it must hold the cluster's JWT key)."""
    from ..slurm.transport import LocalTransport

    transport = LocalTransport(slurm_conf)

    def mint(user: str, lifespan: int) -> str:
        if user != "root":
            check_unix_user(user)
        result = transport.run(["scontrol", "token", f"username={user}", f"lifespan={lifespan}"], timeout=30)
        out = result.stdout.strip()
        if result.returncode != 0 or not out.startswith("SLURM_JWT="):
            raise ClusterError(f"scontrol token for {user} failed: {result.stderr.strip() or out}")
        return out.removeprefix("SLURM_JWT=")

    return mint


class RestCluster:
    # no requeue(): v0.0.38 has no call for it (its job update cannot change a job's state)
    requeue_refusal = "slurmrestd v0.0.38 has no way to requeue a job; use a cluster reached by the command line"

    def __init__(self, name: str, url: str, tokens: TokenSource, slurm_cluster: str | None = None,
                 timeout: float = 60.0, tz: tzinfo | None = None, job_tag: str = "wckey") -> None:
        self.name = name
        self.job_tag = tags.check_field(job_tag)  # the field of the platform's tag, as on the command line
        self.tz = tz
        self.slurm_cluster = slurm_cluster or name
        self.tokens = tokens
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def _call(self, method: str, path: str, user: str | None = None, **kwargs) -> tuple[dict, float]:
        started = time.monotonic()
        try:
            response = self.http.request(method, path, headers=self.tokens.headers(user), **kwargs)
        except httpx.HTTPError as exc:
            raise ClusterError(f"slurmrestd {self.http.base_url}: {exc}") from None
        seconds = time.monotonic() - started
        try:
            answer = response.json()
        except ValueError:
            raise ClusterError(f"slurmrestd answered HTTP {response.status_code} without JSON") from None
        if response.status_code in (401, 403):
            raise ClusterError(f"slurmrestd refused the token: {api.error_text(api.errors_of(answer))}")
        return answer, seconds

    def submit(self, request: SubmitRequest) -> str:
        check_output_paths(request)  # slurmctld expands the patterns as sbatch's would be
        self._ensure_dirs(request)
        answer, _ = self._call("POST", f"/slurm/{api.VERSION}/job/submit", user=request.run_as,
                               json=api.submit_body(request, self.job_tag, self.job_environment(request)))
        return api.parse_submit(answer)

    def job_environment(self, request: SubmitRequest) -> dict[str, str]:
        """The job's login environment (slurmrestd passes exactly this): as the service's Slurm user,
        HOME is the user's space; as the user, their own HOME where this host knows their account."""
        import pwd

        if not request.run_as:
            return job_env.login_environment(self.tokens.service_user, request.space or request.workdir)
        try:
            home = pwd.getpwnam(request.run_as).pw_dir
        except KeyError:
            home = None
        return job_env.login_environment(request.run_as, home)

    def jobs_by_comment(self) -> dict[str, list[tuple[str, datetime | None]]]:
        """{tag: [(job id, submit time)]} of every job slurmctld knows: a submission whose answer was
        lost is adopted from here while it is pending (accounting has no comment for it yet)."""
        answer, _ = self._call("GET", f"/slurm/{api.VERSION}/jobs")
        return api.parse_jobs_by_tag(answer, self.job_tag)

    @staticmethod
    def _ensure_dirs(request: SubmitRequest) -> None:
        """slurmd does not create the working directory: make it where the nodes see it
        (workdir_root is shared storage this host mounts too), owned by the job's user."""
        import os
        import pwd

        try:
            if request.run_as:
                entry = pwd.getpwnam(request.run_as)
                for path in (request.space, request.workdir):
                    if path and not os.path.isdir(path):
                        os.makedirs(path, mode=0o750, exist_ok=True)
                        os.chown(path, entry.pw_uid, entry.pw_gid)
            else:
                os.makedirs(request.workdir, exist_ok=True)
        except (OSError, KeyError) as exc:
            raise ClusterError(f"cannot create {request.workdir}: {exc}") from None

    def status(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not native_ids:
            return {}
        wanted = set(native_ids)
        answer, _ = self._call("GET", f"/slurm/{api.VERSION}/jobs")
        found = {s.native_id: s for s in api.parse_jobs(answer) if s.native_id in wanted}
        missing = [n for n in native_ids if n not in found]
        if missing:  # gone from slurmctld's memory: accounting has the ending
            for record in self.accounting(None, missing):
                if record.native_id in wanted and record.native_id not in found:
                    found[record.native_id] = JobStatus(record.native_id, record.state, record.raw_state,
                                                        start=record.start, end=record.end,
                                                        exit_code=record.exit_code)
        return found

    def queue(self) -> list[QueueEntry]:
        answer, _ = self._call("GET", f"/slurm/{api.VERSION}/jobs")
        return api.parse_queue(answer)

    def cancel(self, native_id: str) -> None:
        answer, _ = self._call("DELETE", f"/slurm/{api.VERSION}/job/{native_id}")
        errors = api.errors_of(answer)
        if not errors:
            return
        if any((e.get("error_number") or e.get("error_code")) == api.INVALID_JOB_ID for e in errors):
            raise LookupError(f"cluster {self.name} does not know job {native_id}")
        text = api.error_text(errors)
        if "already completing or completed" in text or "has already finished" in text:
            return
        raise ClusterError(text)

    def accounting(self, since: datetime | None, native_ids: Sequence[str] | None = None) -> list[UsageRecord]:
        # sacct's time syntax, in the cluster's wall-clock zone: epoch seconds give "Unable to parse
        # time format" in v0.0.38. Ids are filtered here (a window of 30 days covers the missing ones).
        params = {"start_time": since.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S") if since is not None
                  else "now-30days"}
        answer, _ = self._call("GET", f"/slurmdb/{api.VERSION}/jobs", params=params)
        records = api.parse_db_jobs(answer, self.slurm_cluster, self.job_tag)
        if native_ids:
            wanted = set(native_ids)
            records = [r for r in records if r.native_id in wanted or r.record_id in wanted]
        return records

    def partitions(self) -> list[PartitionInfo]:
        partitions, _ = self._call("GET", f"/slurm/{api.VERSION}/partitions")
        nodes, _ = self._call("GET", f"/slurm/{api.VERSION}/nodes")
        return api.parse_partitions(partitions, nodes)

    def health(self) -> Health:
        try:
            answer, seconds = self._call("GET", f"/slurm/{api.VERSION}/ping")
        except ClusterError as exc:
            return Health(HealthState.OFFLINE, str(exc))
        up, detail = api.parse_ping(answer)
        return Health(HealthState.ONLINE if up else HealthState.OFFLINE, detail, round(seconds * 1000, 1))

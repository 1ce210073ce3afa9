"""Files that follow jobs across clusters: inputs staged from a workspace into the job's working
directory on the chosen cluster before submission, declared outputs (and stdout/stderr)
fetched back into the workspace when it ends, each with its checksum and origin.

Local copy when the cluster's filesystem is visible from here (the local executor, a Slurm
cluster driven on this host), SFTP to the login node for clusters reached over SSH.
"""

from __future__ import annotations

import logging
import os
import posixpath
import pwd
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ... import files
from ...clusters.base import ClusterError
from ...domain.states import TERMINAL_STATES
from ...store.models import Job, JobEvent, User
from ...store.types import utcnow
from . import workspaces
from ...messages import msg
from ..errors import InvalidRequest
from ..platform import Platform

log = logging.getLogger(__name__)
STAND_IN = ".cnet-stand-in"


class StagingFailed(ClusterError):
    """The cluster's storage could not take the inputs (the job goes elsewhere or is refused)."""


def stager_for(platform: Platform, cluster_name: str, run_as: str | None = None) -> files.Stager:
    """How files reach the cluster; over SSH as the job's own Unix user when jobs run as users,
    so what is staged is theirs and a job's planted symlink cannot make the service read for it."""
    cfg = platform.cluster_config(cluster_name)
    root = platform.settings.workdir_root(cfg)
    if cfg.kind == "slurm" and cfg.transport == "ssh":
        username, keys = cfg.ssh_user, [cfg.ssh_key] if cfg.ssh_key else []
        if run_as:
            if not cfg.ssh_user_key:
                raise StagingFailed(msg("%(cluster)s: staging as %(user)s needs per-user keys (ssh_user_key)", cluster=cluster_name, user=run_as))
            username, keys = run_as, [cfg.ssh_user_key.format(user=run_as)]
        return files.SftpStager(cfg.ssh_host, cfg.ssh_port, username=username, client_keys=keys,
                                known_hosts=cfg.ssh_known_hosts, accept_any_host_key=cfg.ssh_accept_any_host_key,
                                root=root)
    # local executor, Slurm commands on this host, slurmrestd next to a shared filesystem
    try:
        os.makedirs(root, exist_ok=True)  # the first job on a fresh cluster root
    except OSError as exc:
        raise StagingFailed(msg("cannot create %(root)s on %(cluster)s: %(problem)s", root=root, cluster=cluster_name, problem=exc.strerror)) from None
    return files.LocalStager(root=root)


# -- one tree ---------------------------------------------------------------------

def in_workspace(platform: Platform, cluster_name: str, user_name: str) -> bool:
    """Whether the user's space on this cluster is their workspace itself (the local executor by
    default, a cluster whose workdir_root is the storage root's users/): what a job writes is then
    in `cnet files` as it is written, and nothing needs fetching."""
    cfg = platform.cluster_config(cluster_name)
    if cfg.kind == "slurm" and cfg.transport == "ssh":
        return False  # a path over there may look like one here and be another disk
    from .paths import user_space

    space = user_space(platform.settings.workdir_root(cfg), user_name)
    ws_root = platform.settings.storage_root() / "users" / user_name
    return os.path.realpath(space) == os.path.realpath(ws_root)


def plain_outputs(platform: Platform, cluster_name: str, user_name: str, job_id: int, workdir: str) -> dict | None:
    """What a plain job brings back into its owner's workspace when it ends, at the same place as
    on the cluster: everything in its own directory (jobs/<id>), or, with --chdir elsewhere, its
    output and error files (a shared directory is not copied wholesale after every job)."""
    if in_workspace(platform, cluster_name, user_name):
        return None
    from .paths import is_inside, user_space

    space = user_space(platform.settings.workdir_root(platform.cluster_config(cluster_name)), user_name)
    workdir = posixpath.normpath(workdir)
    if workdir != space and not is_inside(workdir, space):
        return None
    rel = "" if workdir == space else workdir[len(space.rstrip("/")) + 1:]
    return {"patterns": ["**"] if rel == f"jobs/{job_id}" else [], "dest": f"~/{rel}" if rel else "~"}


# -- inputs ---------------------------------------------------------------------

def resolve_inputs(session: Session, platform: Platform, user: User, paths: list[str]) -> list[dict]:
    """Workspace files a job names, checked before anything is routed or written."""
    out: list[dict] = []
    names: set[str] = set()
    for text in paths:
        space, rel = workspaces.resolve(session, platform, user, text)
        try:
            entry = workspaces.workspace(platform, space).stat(rel)
        except files.FileError as exc:
            raise workspaces.service_error(exc) from None
        if entry.kind != "file":
            raise InvalidRequest(msg("input %(value)s is not a regular file", value=space.show(rel)))
        name = posixpath.basename(rel)
        if name in names or name == STAND_IN:
            raise InvalidRequest(msg("two inputs are named %(name)r in the working directory: rename one",
                                     name=name))
        names.add(name)
        out.append({"path": space.show(rel), "space": space.id, "rel": rel, "name": name, "size": entry.size})
    return out


def stage_inputs(platform: Platform, job_id: int, cluster_name: str, run_as: str | None = None) -> None:
    """Copy the job's inputs into its working directory on ``cluster_name``.

    The cluster's storage failing (unreachable, full) raises StagingFailed, so the job may go to
    another cluster; anything about the files themselves (a symlink planted in the job's directory,
    a name in the way) is the user's to fix and raises InvalidRequest: it must not count against
    the cluster, or one user could take a cluster out of everyone's routing."""
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        if not job.inputs:
            return
        owner = session.get(User, job.owner_id)
        sources = []
        for item in job.inputs:
            space = workspaces.space_by_id(session, platform, owner, item["space"])
            try:
                sources.append((item, workspaces.workspace(platform, space).real_path(item["rel"])))
            except files.FileError as exc:
                raise InvalidRequest(msg("input %(item)s: %(exc)s", item=item['path'], exc=exc)) from None
        workdir = job.workdir
    staged, total = [], 0
    stager = stager_for(platform, cluster_name, run_as)
    try:
        for item, source in sources:
            remote = posixpath.join(workdir, item["name"])
            digest = stager.put(source, remote)
            size = os.path.getsize(source)
            total += size
            staged.append(item | {"sha256": digest, "size": size, "cluster": cluster_name, "remote": remote})
        if run_as and isinstance(stager, files.LocalStager):
            _hand_over(platform, cluster_name, workdir, [s["name"] for s in staged], run_as)
    except (files.TransferFailed, ClusterError) as exc:
        raise StagingFailed(msg("staging inputs to %(cluster)s failed: %(problem)s", cluster=cluster_name, problem=str(exc))) from None
    except files.FileError as exc:
        raise InvalidRequest(msg("your inputs cannot be staged into %(workdir)s on %(cluster_name)s: "
                                 "%(exc)s",
                                 workdir=workdir, cluster_name=cluster_name, exc=exc)) from None
    except OSError as exc:  # the cluster's filesystem (full, read-only, gone)
        raise StagingFailed(msg("staging inputs to %(cluster)s failed: %(problem)s", cluster=cluster_name, problem=str(exc))) from None
    finally:
        stager.close()
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        job.inputs = staged
        session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state,
                             detail=f"staged {len(staged)} input file(s), {total} bytes, to {cluster_name}:{workdir}"))


def stage_private_files(platform: Platform, job_id: int, cluster_name: str, contents: dict[str, str],
                        run_as: str | None = None) -> None:
    """Small files the platform made for the job (a session's one-time secret) into its working
    directory, mode 0600: copied from a private temporary file, so no command line carries them."""
    import tempfile

    with platform.db.session() as session:
        workdir = session.get(Job, job_id).workdir
    stager = stager_for(platform, cluster_name, run_as)
    try:
        with tempfile.TemporaryDirectory(prefix="cnet-private-") as tmp:  # mode 0700
            for name, text in contents.items():
                local = os.path.join(tmp, name)
                with open(os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
                    f.write(text)
                stager.put(local, posixpath.join(workdir, name))
        if run_as and isinstance(stager, files.LocalStager):
            _hand_over(platform, cluster_name, workdir, list(contents), run_as)
    except (files.TransferFailed, ClusterError, OSError) as exc:
        raise StagingFailed(f"staging the session's files to {cluster_name} failed: {exc}") from None
    except files.FileError as exc:
        raise InvalidRequest(f"the session's files cannot be staged into {workdir} on {cluster_name}: {exc}") from None
    finally:
        stager.close()


def _hand_over(platform: Platform, cluster_name: str, workdir: str, names: list[str], unix_user: str) -> None:
    """Jobs that run as their owner must own what was staged for them (the service copied it).

    Ownership changes through directory descriptors opened without following a symlink, one
    component at a time: the user owns their space and could swap a directory for a link between
    the copy and the chown, and a chown by path would then hand them a file of the host."""
    entry = pwd.getpwnam(unix_user)
    root = platform.settings.workdir_root(platform.cluster_config(cluster_name)).rstrip("/")
    if not workdir.startswith(root + "/"):
        raise files.PathRefused(f"{workdir} is outside {root}")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags)
    try:
        for name in workdir[len(root) + 1:].split("/"):  # the user's space, jobs/, jobs/<id>
            try:
                child = os.open(name, flags, dir_fd=fd)
            except OSError as exc:
                raise files.PathRefused(f"{name!r} in {workdir} is not a plain directory: {exc.strerror}") from None
            os.close(fd)
            fd = child
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
        for name in names:
            try:
                file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                raise files.PathRefused(f"staged {name!r} is not a plain file: {exc.strerror}") from None
            try:
                os.fchown(file_fd, entry.pw_uid, entry.pw_gid)
            finally:
                os.close(file_fd)
    finally:
        os.close(fd)


# -- outputs --------------------------------------------------------------------

@dataclass
class CollectReport:
    fetched: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)


def collect_outputs(platform: Platform, job_id: int) -> CollectReport:
    """Fetch the declared outputs and stdout/stderr of an ended job into its owner's workspace."""
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        owner = session.get(User, job.owner_id)
        owner_id, cluster_name = owner.id, job.cluster.name
        wanted = job.outputs or {}
        space, dest = workspaces.resolve(session, platform, owner, wanted.get("dest") or f"jobs/{job.id}")
        workdir, streams = job.workdir, [job.stdout_path, job.stderr_path]
        staged = {i["name"] for i in job.inputs or []} | {STAND_IN}
        run_as = None
        if platform.cluster_config(cluster_name).run_as_users:  # read what the job wrote as its user
            from ..tenancy.identities import unix_user_for

            run_as = unix_user_for(session, job.owner_id, job.cluster_id)
            if run_as is None:  # never read a user's directory with the service's rights instead
                raise InvalidRequest(msg("you have no Unix identity on %(cluster_name)s any more to "
                                         "fetch outputs as",
                                         cluster_name=cluster_name))
    ws = workspaces.workspace(platform, space)
    limit = workspaces.gb_bytes(platform.settings.files.max_output_gb)
    scratch = platform.settings.storage_root() / ".fetch"
    scratch.mkdir(parents=True, exist_ok=True)
    report = CollectReport()
    stager = stager_for(platform, cluster_name, run_as)
    try:
        found = {f.path: f for f in stager.list(workdir, list(wanted.get("patterns") or []))}
        for stream in dict.fromkeys(streams):  # stdout and stderr may be one file
            if stream and stream.startswith(workdir.rstrip("/") + "/"):
                rel = stream[len(workdir.rstrip("/")) + 1:]
                if rel not in found:
                    found.update({f.path: f for f in stager.list(workdir, [_literal(rel)])})
        for rel, remote in sorted(found.items()):
            if posixpath.basename(rel) in staged and "/" not in rel:
                continue  # an input staged there, not a result
            if remote.kind != "file":
                report.skipped.append(f"{rel} ({'a symbolic link' if remote.kind == 'link' else 'not a file'}: not fetched)")
                continue
            if remote.size > limit:
                report.skipped.append(f"{rel} ({remote.size} bytes, over the {limit}-byte limit: left on the cluster)")
                continue
            temp = scratch / f"{job_id}-{secrets.token_hex(8)}"
            remote_path = posixpath.join(workdir, rel)
            target = f"{dest}/{rel}" if dest else rel
            try:
                digest = stager.get(remote_path, temp, max_bytes=limit)
                size, kept = ws.adopt(target, temp, overwrite=True, sha256=digest)
            except files.TransferFailed:
                raise  # the cluster's side: the whole job is tried again later
            except files.FileError as exc:  # this file (over quota, a planted link, a bad name): the rest go on
                report.skipped.append(f"{rel} ({exc})")
                continue
            finally:
                temp.unlink(missing_ok=True)
            # recorded as each lands: a crash later leaves no file without its origin
            with platform.db.session() as session:
                workspaces.record(session, space, target, size, kept, "job", owner_id, job_id=job_id,
                                  cluster=cluster_name, remote_path=remote_path)
            report.fetched += 1
            report.bytes += size
    finally:
        stager.close()
    return report


def _literal(name: str) -> str:
    """A file name as an fnmatch pattern that matches only itself."""
    return "".join(f"[{ch}]" if ch in "*?[]" else ch for ch in name)


class OutputCollector:
    """Background step: ended jobs with outputs to fetch get them fetched (once)."""

    MAX_ATTEMPTS = 30  # a cluster whose storage keeps failing: the job is marked, not retried forever

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.attempts: dict[int, int] = {}

    def run_once(self) -> list[tuple[int, str]]:
        with self.platform.db.session() as session:
            ids = list(session.scalars(select(Job.id).where(
                Job.collect_state == "pending", Job.state.in_([s.value for s in TERMINAL_STATES]),
                Job.native_id.is_not(None)).order_by(Job.id).limit(50)))
        done = []
        for job_id in ids:
            try:
                report = collect_outputs(self.platform, job_id)
            except Exception as exc:  # one job's trouble must not stop the others' outputs
                transient = isinstance(exc, (files.TransferFailed, OSError, ClusterError))
                self.attempts[job_id] = self.attempts.get(job_id, 0) + 1
                if transient and self.attempts[job_id] < self.MAX_ATTEMPTS:
                    log.warning("fetching outputs of job %s (attempt %s): %s", job_id, self.attempts[job_id], exc)
                    continue
                if not isinstance(exc, (files.FileError, workspaces.ServiceError, OSError, ClusterError)):
                    log.exception("fetching outputs of job %s failed", job_id)
                self._finish(job_id, "failed", f"outputs not fetched: {exc}")
                done.append((job_id, "failed"))
                continue
            self.attempts.pop(job_id, None)
            detail = f"fetched {report.fetched} file(s), {report.bytes} bytes, into the workspace"
            if report.skipped:
                detail += "; skipped " + ", ".join(report.skipped[:10])
            self._finish(job_id, "done", detail)
            done.append((job_id, "done"))
        return done

    def _finish(self, job_id: int, state: str, detail: str) -> None:
        with self.platform.db.session() as session:
            job = session.get(Job, job_id)
            job.collect_state, job.collected_at = state, utcnow()
            session.add(JobEvent(job_id=job.id, from_state=job.state, to_state=job.state, detail=detail[:2000]))

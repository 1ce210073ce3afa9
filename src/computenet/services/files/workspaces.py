"""Workspaces on platform storage: each user's own (``~``) and each project's (``@project``),
shared with the project's members, with quotas and a record of where each file came from.

Paths users give: ``results/a.txt`` (their own), ``@proj/data/in.lj`` (a project's). The
filesystem work (no symlink ever followed, quotas, atomic writes) is in ``files/``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ... import files
from ...store.models import Account, AccountMember, FileRecord, Upload, User
from ...store.types import utcnow
from ...messages import msg
from ..errors import InvalidRequest, NotFound, ServiceError, TooLarge, Unavailable
from ..platform import Platform

GB = 1024 ** 3
MAX_PATH_CHARS = 1000  # what the file records can index on both databases
MAX_OPEN_UPLOADS = 20  # per user: unfinished uploads hold disk until they expire


@dataclass(frozen=True)
class Space:
    id: str  # user:<name> | project:<account>: how the database names it
    label: str  # "~" | "@<account>": how users name it
    root: Path
    quota_bytes: int
    account_id: int | None  # who pays for its storage (a user's: their default account)

    def show(self, rel: str) -> str:
        return f"{self.label}/{rel}" if rel else self.label


def gb_bytes(gb: Decimal) -> int:
    return int(gb * GB)


def service_error(exc: files.FileError) -> ServiceError:
    """The files layer's refusals as API errors (a clear message either way)."""
    if isinstance(exc, files.NotFound):
        return NotFound(str(exc))
    if isinstance(exc, files.TransferFailed):  # the other side's storage, not the request
        return Unavailable(str(exc))
    if isinstance(exc, (files.QuotaExceeded, files.TooLarge)):
        return TooLarge(str(exc))
    return InvalidRequest(str(exc))


def split(text: str) -> tuple[str | None, str]:
    """'@proj/a/b' -> ('proj', 'a/b'); '~/a' or 'a' -> (None, 'a')."""
    if not isinstance(text, str):
        raise InvalidRequest(msg("a path must be text"))
    if text.startswith("@"):
        project, _, rest = text[1:].partition("/")
        if not project:
            raise InvalidRequest(msg("path %(text)r: name a project after '@' (e.g. @myproject/data)", text=text))
        return project, rest
    if text == "~" or text.startswith("~/"):
        return None, text[2:]
    return None, text


def own_space(platform: Platform, user: User) -> Space:
    root = platform.settings.storage_root() / "users" / user.name
    return Space(f"user:{user.name}", "~", root, gb_bytes(platform.settings.files.user_quota_gb),
                 user.default_account_id)


def project_space(session: Session, platform: Platform, user: User, project: str) -> Space:
    account = session.scalar(select(Account).where(Account.name == project))
    member = account is not None and session.get(AccountMember, (account.id, user.id)) is not None
    if not member and not (account is not None and user.is_admin):
        # someone else's project is not found: its existence is not the caller's business
        raise NotFound(msg("no project workspace @%(project)s (it does not exist or you are not a member)",
                           project=project))
    quota = account.storage_quota_bytes or gb_bytes(platform.settings.files.project_quota_gb)
    return Space(f"project:{account.name}", f"@{account.name}",
                 platform.settings.storage_root() / "projects" / account.name, quota, account.id)


def resolve(session: Session, platform: Platform, user: User, text: str) -> tuple[Space, str]:
    """The workspace a user's path names and the path inside it (checked, '/'-joined)."""
    project, rel = split(text)
    space = project_space(session, platform, user, project) if project else own_space(platform, user)
    try:
        parts = files.split_path(rel)
    except files.FileError as exc:
        raise service_error(exc) from None
    joined = "/".join(parts)
    if len(joined) > MAX_PATH_CHARS:
        raise InvalidRequest(msg("path %(text)r... is longer than %(max_path_chars)s characters",
                                 text=text[:60], max_path_chars=MAX_PATH_CHARS))
    return space, joined


def workspace(platform: Platform, space: Space) -> files.Workspace:
    return files.Workspace(space.root, quota_bytes=space.quota_bytes,
                           max_file_bytes=gb_bytes(platform.settings.files.max_file_gb))


def spaces_of(session: Session, platform: Platform, user: User) -> list[Space]:
    """The user's own workspace and every project workspace they share."""
    names = session.scalars(select(Account.name).join(AccountMember, AccountMember.account_id == Account.id)
                            .where(AccountMember.user_id == user.id, Account.kind == "project")
                            .order_by(Account.name))
    return [own_space(platform, user)] + [project_space(session, platform, user, n) for n in names]


def set_project_quota(session: Session, account: Account, gb: str | None) -> int | None:
    """A project's workspace quota in GB (None: back to the platform default); returns bytes."""
    if gb is None:
        account.storage_quota_bytes = None
        return None
    try:
        value = Decimal(str(gb))
    except ArithmeticError:
        raise InvalidRequest(msg("quota %(gb)r is not a number of GB", gb=gb)) from None
    if not value.is_finite() or value <= 0 or gb_bytes(value) < 1024 * 1024:
        raise InvalidRequest(msg("a quota must be a number of GB of at least 1 MiB, not %(gb)s", gb=gb))
    account.storage_quota_bytes = gb_bytes(value)
    return account.storage_quota_bytes


def quota_report(session: Session, platform: Platform, user: User) -> list[dict]:
    out = []
    for space in spaces_of(session, platform, user):
        used = workspace(platform, space).usage()
        out.append({"workspace": space.label, "used_bytes": used, "quota_bytes": space.quota_bytes,
                    "used_percent": round(100 * used / space.quota_bytes, 2) if space.quota_bytes else None})
    return out


# -- file operations ----------------------------------------------------------

def _do(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except files.FileError as exc:
        raise service_error(exc) from None


def entry_json(space: Space, entry, record: FileRecord | None = None) -> dict:
    out = {"name": entry.name, "path": space.show(entry.path), "kind": entry.kind, "size": entry.size,
           "mtime": entry.mtime}
    if record is not None and record.size == entry.size:
        out["sha256"] = record.sha256
        out["origin"] = record.origin if record.job_id is None else f"job {record.job_id} on {record.cluster}"
    return out


def list_dir(session: Session, platform: Platform, user: User, text: str) -> list[dict]:
    space, rel = resolve(session, platform, user, text)
    entries = _do(workspace(platform, space).ls, rel)
    records: dict[str, FileRecord] = {}
    paths = [e.path for e in entries]
    for start in range(0, len(paths), 500):  # big directories: within the databases' parameter limits
        records.update((r.path, r) for r in session.scalars(select(FileRecord).where(
            FileRecord.workspace == space.id, FileRecord.path.in_(paths[start:start + 500]))))
    return [entry_json(space, e, records.get(e.path)) for e in entries]


def make_dir(session: Session, platform: Platform, user: User, text: str) -> str:
    space, rel = resolve(session, platform, user, text)
    if not rel:
        raise InvalidRequest(msg("the workspace itself exists already"))
    _do(workspace(platform, space).mkdir, rel)
    return space.show(rel)


def remove(session: Session, platform: Platform, user: User, text: str, recursive: bool = False) -> int:
    space, rel = resolve(session, platform, user, text)
    if not rel:
        raise InvalidRequest(msg("the workspace itself cannot be removed"))
    freed = _do(workspace(platform, space).remove, rel, recursive=recursive)
    session.execute(delete(FileRecord).where(FileRecord.workspace == space.id, _at_or_below(rel)))
    return freed


def move(session: Session, platform: Platform, user: User, src: str, dst: str, overwrite: bool = False) -> str:
    space, rel = resolve(session, platform, user, src)
    dst_space, dst_rel = resolve(session, platform, user, dst)
    if dst_space.id != space.id:
        raise InvalidRequest(msg("%(src)s and %(dst)s are in different workspaces: download and upload "
                                 "to copy between them",
                                 src=src, dst=dst))
    if not rel:
        raise InvalidRequest(msg("the workspace itself cannot be moved"))
    ws = workspace(platform, space)
    into_dir = dst.endswith("/") or (dst_rel == "" or _is_dir(ws, dst_rel))
    base = rel.rsplit("/", 1)[-1]
    if into_dir and not dst_rel:  # to the top of the workspace
        if "/" not in rel:
            raise InvalidRequest(msg("%(src)s is at the top of the workspace already", src=src))
        into_dir, dst_rel = False, base
    _do(ws.move, rel, (dst_rel + "/") if into_dir else dst_rel, overwrite=overwrite)
    final = f"{dst_rel}/{base}" if into_dir else dst_rel
    # what was at the destination is gone (replaced): its records go before the moved ones take its place
    session.execute(delete(FileRecord).where(FileRecord.workspace == space.id, _at_or_below(final)))
    session.flush()
    for record in session.scalars(select(FileRecord).where(FileRecord.workspace == space.id, _at_or_below(rel))):
        record.path = final + record.path[len(rel):]
    return space.show(final)


def _at_or_below(rel: str):
    # autoescape: "_" and "%" in a name are characters, not LIKE wildcards
    return (FileRecord.path == rel) | FileRecord.path.startswith(rel + "/", autoescape=True)


def _is_dir(ws: files.Workspace, rel: str) -> bool:
    try:
        return ws.stat(rel).kind == "dir"
    except files.FileError:
        return False


def open_file(session: Session, platform: Platform, user: User, text: str) -> tuple[BinaryIO, dict]:
    """An open file and its entry (with its checksum when the platform knows it)."""
    space, rel = resolve(session, platform, user, text)
    ws = workspace(platform, space)
    entry = _do(ws.stat, rel)
    if entry.kind != "file":
        raise InvalidRequest(msg("%(path)s is a directory, not a file", path=space.show(rel)) if entry.kind == "dir"
                             else msg("%(path)s is a symbolic link, not a file", path=space.show(rel)))
    record = session.scalar(select(FileRecord).where(FileRecord.workspace == space.id, FileRecord.path == rel))
    return _do(ws.open_read, rel), entry_json(space, entry, record)


def record(session: Session, space: Space, rel: str, size: int, sha256: str, origin: str, user_id: int | None,
           job_id: int | None = None, cluster: str | None = None, remote_path: str | None = None) -> None:
    """Where this file came from (one row per path: a new version replaces the record)."""
    row = session.scalar(select(FileRecord).where(FileRecord.workspace == space.id, FileRecord.path == rel))
    if row is None:
        row = FileRecord(workspace=space.id, path=rel)
        session.add(row)
    row.size, row.sha256, row.origin, row.user_id = size, sha256, origin, user_id
    row.job_id, row.cluster, row.remote_path, row.created_at = job_id, cluster, remote_path, utcnow()


def write_small(session: Session, platform: Platform, user: User, text: str, data: bytes, overwrite: bool,
                sha256: str | None = None) -> dict:
    """A whole file in one request (small files; large ones upload in chunks)."""
    space, rel = resolve(session, platform, user, text)
    if not rel:
        raise InvalidRequest(msg("name a file to write"))
    size, digest = _do(workspace(platform, space).write, rel, data, overwrite=overwrite, expected_sha256=sha256)
    record(session, space, rel, size, digest, "upload", user.id)
    return {"path": space.show(rel), "size": size, "sha256": digest}


# -- resumable uploads ----------------------------------------------------------

def upload_store(platform: Platform) -> files.UploadStore:
    return files.UploadStore(platform.settings.storage_root() / ".uploads",
                             max_size=gb_bytes(platform.settings.files.max_file_gb))


def begin_upload(session: Session, platform: Platform, user: User, text: str, size: int, sha256: str,
                 overwrite: bool = False) -> dict:
    space, rel = resolve(session, platform, user, text)
    if not rel:
        raise InvalidRequest(msg("name the file to upload into"))
    ws = workspace(platform, space)
    existing = None
    try:
        existing = ws.stat(rel)
    except files.NotFound:
        pass
    except files.FileError as exc:
        raise service_error(exc) from None
    if existing is not None and (existing.kind != "file" or not overwrite):
        raise InvalidRequest(msg("%(path)s exists", path=space.show(rel)) if existing.kind != "file" else
                             msg("%(path)s exists (overwrite it with --force / overwrite=true)", path=space.show(rel)))
    freed = existing.size if existing is not None else 0
    open_uploads = list(session.scalars(select(Upload).where(Upload.user_id == user.id,
                                                             Upload.completed_at.is_(None))))
    # the same file to the same place again (an interrupted `cnet files put` run once more): that
    # upload goes on from the chunks it has, rather than a second copy beside it in .uploads
    sha = sha256.lower() if isinstance(sha256, str) else sha256
    for row in open_uploads:
        if (row.workspace, row.path, row.size, row.sha256) == (space.id, rel, size, sha):
            try:
                state = upload_store(platform).state(row.id)
            except files.FileError:
                continue  # its chunks are gone (expired): a new upload
            row.overwrite = overwrite
            return upload_json(space.show(rel), state)
    if len(open_uploads) >= MAX_OPEN_UPLOADS:
        raise TooLarge(msg("you have %(open_uploads)s unfinished uploads: finish or abort some first "
                           "(they expire after %(keep_uploads_hours)s h)",
                           open_uploads=len(open_uploads),
                           keep_uploads_hours=format(platform.settings.files.keep_uploads_hours, 'g')))
    # unfinished uploads into the same workspace count: their chunks are on disk and will land there
    pending = sum(u.size for u in open_uploads if u.workspace == space.id)
    used = ws.usage()
    if used + pending - freed + size > space.quota_bytes:  # refused before a byte is sent; checked at the end
        raise TooLarge(msg("%(label)s would hold %(value)s bytes, over its quota of %(quota_bytes)s "
                           "(%(used)s used, %(pending)s in unfinished uploads)",
                           label=space.label, value=used + pending - freed + size, quota_bytes=space.quota_bytes,
                           used=used, pending=pending))
    upload_id = secrets.token_urlsafe(24)
    state = _do(upload_store(platform).begin, upload_id, size, sha256.lower() if isinstance(sha256, str) else sha256,
                platform.settings.files.chunk_mb * 1024 * 1024)
    session.add(Upload(id=upload_id, user_id=user.id, workspace=space.id, path=rel, size=size,
                       sha256=state.sha256, chunk_size=state.chunk_size, overwrite=overwrite))
    return upload_json(space.show(rel), state)


def upload_json(path: str, state) -> dict:
    return {"id": state.upload_id, "path": path, "size": state.size, "sha256": state.sha256,
            "chunk_size": state.chunk_size, "chunks": state.chunks, "missing": state.missing,
            "complete": state.complete}


def _upload(session: Session, user: User, upload_id: str) -> Upload:
    row = session.get(Upload, upload_id)
    if row is None or row.user_id != user.id:
        raise NotFound(msg("no upload %(upload_id)s", upload_id=upload_id))
    if row.completed_at is not None:
        raise InvalidRequest(msg("upload %(upload_id)s is finished already", upload_id=upload_id))
    return row


def space_by_id(session: Session, platform: Platform, user: User, space_id: str) -> Space:
    kind, _, name = space_id.partition(":")
    return own_space(platform, user) if kind == "user" else project_space(session, platform, user, name)


def upload_state(session: Session, platform: Platform, user: User, upload_id: str) -> dict:
    row = _upload(session, user, upload_id)
    space = space_by_id(session, platform, user, row.workspace)
    return upload_json(space.show(row.path), _do(upload_store(platform).state, upload_id))


def put_chunk(session: Session, platform: Platform, user: User, upload_id: str, index: int, data: bytes,
              sha256: str) -> dict:
    row = _upload(session, user, upload_id)
    state = _do(upload_store(platform).write_chunk, upload_id, index, data, (sha256 or "").lower())
    return upload_json(space_by_id(session, platform, user, row.workspace).show(row.path), state)


def finish_upload(session: Session, platform: Platform, user: User, upload_id: str) -> dict:
    row = _upload(session, user, upload_id)
    space = space_by_id(session, platform, user, row.workspace)
    store = upload_store(platform)
    assembled = _do(store.finish, upload_id)  # checks the whole file against the declared SHA-256
    size, digest = _do(workspace(platform, space).adopt, row.path, assembled, overwrite=row.overwrite,
                       sha256=row.sha256)
    store.discard(upload_id)
    row.completed_at = utcnow()
    record(session, space, row.path, size, digest, "upload", user.id)
    return {"path": space.show(row.path), "size": size, "sha256": digest}


def abort_upload(session: Session, platform: Platform, user: User, upload_id: str) -> None:
    row = _upload(session, user, upload_id)
    upload_store(platform).discard(upload_id)
    session.delete(row)


def drop_stale_uploads(session: Session, platform: Platform) -> int:
    """Unfinished uploads older than keep_uploads_hours: their chunks go (they count against no quota)."""
    store = upload_store(platform)
    stale = store.expired(platform.settings.files.keep_uploads_hours * 3600)
    for upload_id in stale:
        store.discard(upload_id)
        row = session.get(Upload, upload_id)
        if row is not None and row.completed_at is None:
            session.delete(row)
    return len(stale)

"""/files and /uploads: workspaces (yours: "path", a project's: "@project/path"), quotas, and
resumable uploads in checksummed chunks."""

from __future__ import annotations



from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ...schemas import MoveIn, PathIn, UploadIn
from ...services.files import workspaces
from ...services.errors import InvalidRequest
from ...services.platform import Platform
from ...store.models import User
from ..deps import current_user, get_platform, get_session
from ..responses import errors

router = APIRouter(tags=["files"], responses=errors(400, 401, 403, 404, 409, 413, 422))
SMALL_FILE_BYTES = 1024 * 1024  # one request; bigger files go through /uploads


@router.get("/files")
def list_files(path: str = Query("", max_length=4096), user: User = Depends(current_user),
               platform: Platform = Depends(get_platform), session=Depends(get_session)):
    return workspaces.list_dir(session, platform, user, path)


@router.get("/files/quota")
def quota(user: User = Depends(current_user), platform: Platform = Depends(get_platform),
          session=Depends(get_session)):
    return workspaces.quota_report(session, platform, user)


@router.get("/files/content")
def download(path: str = Query(..., max_length=4096), user: User = Depends(current_user),
             platform: Platform = Depends(get_platform), session=Depends(get_session),
             range_header: str | None = Header(None, alias="Range")):
    handle, entry = workspaces.open_file(session, platform, user, path)
    start = _range_start(range_header, entry["size"])
    handle.seek(start)
    headers = {"Content-Length": str(entry["size"] - start), "Accept-Ranges": "bytes"}
    if entry.get("sha256"):
        headers["X-Checksum-SHA256"] = entry["sha256"]  # of the whole file
    if start:
        headers["Content-Range"] = f"bytes {start}-{entry['size'] - 1}/{entry['size']}"

    def chunks():
        with handle:
            while block := handle.read(1024 * 1024):
                yield block

    return StreamingResponse(chunks(), status_code=206 if start else 200, headers=headers,
                             media_type="application/octet-stream")


def _range_start(value: str | None, size: int) -> int:
    """Only "bytes=N-" (resuming a download) is offered."""
    if not value:
        return 0
    if not value.startswith("bytes=") or not value.endswith("-") or not value[6:-1].isdigit():
        raise InvalidRequest("only a Range of the form bytes=N- is supported")
    start = int(value[6:-1])
    if start > size:
        raise InvalidRequest(f"range start {start} is past the end of the file ({size} bytes)")
    return start


@router.put("/files/content", status_code=201)
async def put_small(request: Request, path: str = Query(..., max_length=4096), overwrite: bool = False,
                    sha256: str | None = Query(None, min_length=64, max_length=64),
                    user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    data = await request.body()
    if len(data) > SMALL_FILE_BYTES:
        raise InvalidRequest(f"a file over {SMALL_FILE_BYTES} bytes is uploaded in chunks (POST /uploads)")

    def write():  # disk, hashing and the database: off the event loop
        with platform.db.session() as session:
            return workspaces.write_small(session, platform, user, path, data, overwrite, sha256)
    return await run_in_threadpool(write)


@router.post("/files/mkdir", status_code=201)
def mkdir(body: PathIn, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
          session=Depends(get_session)):
    return {"path": workspaces.make_dir(session, platform, user, body.path)}


@router.post("/files/move")
def move(body: MoveIn, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
         session=Depends(get_session)):
    out = {"path": workspaces.move(session, platform, user, body.src, body.dst, body.overwrite)}
    session.commit()
    return out


@router.delete("/files")
def remove(path: str = Query(..., max_length=4096), recursive: bool = False, user: User = Depends(current_user),
           platform: Platform = Depends(get_platform), session=Depends(get_session)):
    out = {"freed_bytes": workspaces.remove(session, platform, user, path, recursive)}
    session.commit()
    return out


# -- resumable uploads ------------------------------------------------------------

@router.post("/uploads", status_code=201)
def begin_upload(body: UploadIn, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
                 session=Depends(get_session)):
    out = workspaces.begin_upload(session, platform, user, body.path, body.size, body.sha256, body.overwrite)
    session.commit()
    return out


@router.get("/uploads/{upload_id}")
def upload_state(upload_id: str, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
                 session=Depends(get_session)):
    return workspaces.upload_state(session, platform, user, upload_id)


@router.put("/uploads/{upload_id}/chunks/{index}")
async def put_chunk(upload_id: str, index: int, request: Request,
                    checksum: str = Header(..., alias="X-Chunk-SHA256", min_length=64, max_length=64),
                    user: User = Depends(current_user), platform: Platform = Depends(get_platform)):
    data = await request.body()

    def write():
        with platform.db.session() as session:
            return workspaces.put_chunk(session, platform, user, upload_id, index, data, checksum)
    return await run_in_threadpool(write)


@router.post("/uploads/{upload_id}/complete", status_code=201)
def finish_upload(upload_id: str, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
                  session=Depends(get_session)):
    out = workspaces.finish_upload(session, platform, user, upload_id)
    session.commit()
    return out


@router.delete("/uploads/{upload_id}")
def abort_upload(upload_id: str, user: User = Depends(current_user), platform: Platform = Depends(get_platform),
                 session=Depends(get_session)):
    workspaces.abort_upload(session, platform, user, upload_id)
    session.commit()
    return {"aborted": upload_id}



"""Client side of workspaces and the application centre (mixed into ComputeNetClient).

Uploads go in checksummed chunks and resume: a second ``upload`` of the same file with the
same ``upload_id`` sends only the chunks the server lacks. Downloads resume with a Range
request and are checked against the server's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import httpx

from ..schemas import AppPublishIn, AppReviewIn, AppRunIn, JobOut, MoveIn, PathIn, RoutingIn, UploadIn

Progress = Callable[[int], None]  # called with the bytes just moved


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


class WorkspaceApi:
    http: httpx.Client

    def _call(self, method: str, path: str, **kwargs) -> object: ...  # provided by ComputeNetClient

    # -- files ------------------------------------------------------------------
    def ls(self, path: str = "") -> list[dict]:
        return self._call("GET", "/files", params={"path": path})

    def mkdir(self, path: str) -> str:
        return self._call("POST", "/files/mkdir", json=PathIn(path=path).model_dump())["path"]

    def mv(self, src: str, dst: str, overwrite: bool = False) -> str:
        return self._call("POST", "/files/move", json=MoveIn(src=src, dst=dst, overwrite=overwrite).model_dump())["path"]

    def rm(self, path: str, recursive: bool = False) -> int:
        return self._call("DELETE", "/files", params={"path": path, "recursive": recursive})["freed_bytes"]

    def quota(self) -> list[dict]:
        return self._call("GET", "/files/quota")

    def upload(self, local: str | Path, path: str, overwrite: bool = False, progress: Progress | None = None,
               upload_id: str | None = None, parallel: int = 3) -> dict:
        """Send a local file into the workspace in chunks; returns path, size and sha256."""
        local = Path(local)
        if not local.is_file():
            raise FileNotFoundError(f"{local} is not a file")
        size = local.stat().st_size
        if upload_id:
            state = self._call("GET", f"/uploads/{upload_id}")
            if progress:
                progress(size - sum(min(state["chunk_size"], size - i * state["chunk_size"]) for i in state["missing"]))
        else:  # the server goes on with an unfinished upload of the same file to the same path
            state = self._call("POST", "/uploads", json=UploadIn(path=path, size=size, sha256=file_sha256(local),
                                                                 overwrite=overwrite).model_dump())
        chunk = state["chunk_size"]
        if progress and not upload_id and len(state["missing"]) < state["chunks"]:
            progress(size - sum(min(chunk, size - i * chunk) for i in state["missing"]))

        def send(index: int) -> None:
            with open(local, "rb") as handle:
                handle.seek(index * chunk)
                data = handle.read(chunk)
            self._call("PUT", f"/uploads/{state['id']}/chunks/{index}", content=data,
                       headers={"X-Chunk-SHA256": hashlib.sha256(data).hexdigest(),
                                "Content-Type": "application/octet-stream"})
            if progress:
                progress(len(data))

        # a few chunks in flight: the server checks and writes one while the next is on the wire
        from concurrent.futures import ThreadPoolExecutor  # uploads only: not paid by every command

        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(state["missing"]) or 1))) as pool:
            for future in [pool.submit(send, index) for index in state["missing"]]:
                future.result()  # the first failure stops the upload (it resumes from what arrived)
        return self._call("POST", f"/uploads/{state['id']}/complete")

    def begin_upload(self, path: str, size: int, sha256: str, overwrite: bool = False) -> dict:
        return self._call("POST", "/uploads", json=UploadIn(path=path, size=size, sha256=sha256,
                                                            overwrite=overwrite).model_dump())

    def download(self, path: str, local: str | Path, progress: Progress | None = None) -> dict:
        """Fetch a workspace file (resuming a partial ``local``.part); checks its SHA-256."""
        from .sdk import ApiError

        local = Path(local)
        partial = local.with_name(local.name + ".part")
        start = partial.stat().st_size if partial.exists() else 0
        headers = {"Range": f"bytes={start}-"} if start else {}
        with self.http.stream("GET", "/files/content", params={"path": path}, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                try:
                    detail = response.json().get("detail", response.text)
                except ValueError:
                    detail = response.text
                raise ApiError(response.status_code, detail)
            expected = response.headers.get("X-Checksum-SHA256")
            mode = "ab" if response.status_code == 206 else "wb"
            with open(partial, mode) as out:
                for block in response.iter_bytes(1024 * 1024):
                    out.write(block)
                    if progress:
                        progress(len(block))
        digest = file_sha256(partial)
        if expected and digest != expected:
            partial.unlink()
            raise ApiError(0, f"{path}: downloaded SHA-256 {digest} differs from the server's {expected}")
        os.replace(partial, local)
        return {"path": path, "local": str(local), "size": local.stat().st_size, "sha256": digest,
                "verified": bool(expected)}

    # -- apps -------------------------------------------------------------------
    def apps(self, all_versions: bool = False) -> list[dict]:
        return self._call("GET", "/apps", params={"all_versions": all_versions})

    def app(self, name: str, version: str | None = None) -> dict:
        return self._call("GET", f"/apps/{name}", params={"version": version} if version else {})

    def publish_app(self, source: str, scope: str = "platform") -> dict:
        return self._call("POST", "/apps", json=AppPublishIn(source=source, scope=scope).model_dump())

    def review_app(self, name: str, version: str, approve: bool, note: str = "") -> dict:
        return self._call("POST", f"/apps/{name}/versions/{version}/review",
                          json=AppReviewIn(approve=approve, note=note).model_dump())

    def run_app(self, name: str, params: dict, version: str | None = None, account: str | None = None,
                cluster: str | None = None, partition: str | None = None, routing: RoutingIn | None = None,
                dry_run: bool = False, local_inputs: dict[str, int] | None = None) -> JobOut | dict:
        """``local_inputs`` (dry run): parameter -> size of a local file named by the parameter, not uploaded."""
        body = AppRunIn(params=params, version=version, account=account, cluster=cluster, partition=partition,
                        routing=routing or RoutingIn(), dry_run=dry_run, local_inputs=local_inputs or {})
        out = self._call("POST", f"/apps/{name}/runs", json=body.model_dump())
        return out if dry_run else JobOut.model_validate(out)

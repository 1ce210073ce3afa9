"""Workspaces and resumable uploads: every refusal proven, and nothing outside ever touched."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from computenet.files import (AlreadyExists, ChecksumMismatch, FileError, NotFound, PathRefused, QuotaExceeded,
                              TooLarge, UploadStore, Workspace, split_path)

KIB = 1024
CHUNK = 64 * KIB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, bytes | None]:
    """Everything under root (files with content, dirs and links as None), to prove nothing changed."""
    found = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            found[rel] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return found


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "alice")


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory outside the workspace with a secret in it, like /etc."""
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "passwd").write_text("root:x:0:0\n")
    return secret


# -- paths ------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["../x", "a/../../x", "..", "a/..", "/etc/passwd", "/", "a\x00b", "a\nb", "a\rb",
                                  "a\x7fb", "a\x1bb", "x" * 256, "a/" + "b" * 256, "/".join(["d" * 200] * 21),
                                  "\udc80"])
def test_split_path_refuses(text):
    with pytest.raises(PathRefused) as err:
        split_path(text)
    assert str(err.value)  # a message, naming the problem


def test_split_path_accepts():
    assert split_path("") == () and split_path(".") == () and split_path("./") == ()
    assert split_path("a//b/./c/") == ("a", "b", "c")
    assert split_path("数据/结果.txt") == ("数据", "结果.txt")
    assert split_path("x" * 255) == ("x" * 255,)
    assert split_path("..a/b..") == ("..a", "b..")  # dots inside a name are just a name
    with pytest.raises(PathRefused):
        split_path("数" * 86)  # 258 bytes in UTF-8, though only 86 characters


def test_workspace_refuses_traversal_on_every_operation(ws, outside):
    before = tree(outside)
    for bad in ("../outside/passwd", "a/../../outside/passwd", str(outside / "passwd"), "a\x00b", "a\nb",
                "n" * 300):
        with pytest.raises(PathRefused):
            ws.write(bad, b"x")
        with pytest.raises(PathRefused):
            ws.open_read(bad)
        with pytest.raises(PathRefused):
            ws.stat(bad)
        with pytest.raises(PathRefused):
            ws.real_path(bad)
        with pytest.raises(PathRefused):
            ws.remove(bad)
        with pytest.raises(PathRefused):
            ws.mkdir(bad)
    assert tree(outside) == before
    assert ws.ls() == []


# -- basics -----------------------------------------------------------------------------

def test_write_read_ls_stat_and_chinese_names(ws):
    size, digest = ws.write("数据/结果.txt", "你好".encode())
    assert (size, digest) == (6, sha("你好".encode()))
    assert ws.open_read("数据/结果.txt").read().decode() == "你好"
    assert [e.name for e in ws.ls()] == ["数据"]
    entry, = ws.ls("数据")
    assert (entry.name, entry.path, entry.kind, entry.size) == ("结果.txt", "数据/结果.txt", "file", 6)
    assert ws.ls("数据/结果.txt") == [entry] and ws.stat("数据/结果.txt") == entry
    assert ws.stat("").kind == "dir" and ws.stat("数据").kind == "dir"
    assert ws.real_path("数据/结果.txt") == ws.root / "数据" / "结果.txt"
    assert ws.sha256("数据/结果.txt") == digest
    with pytest.raises(NotFound):
        ws.stat("nope")
    with pytest.raises(NotFound):
        ws.open_read("数据/nope")


def test_write_refuses_existing_and_directories(ws):
    ws.write("a.txt", b"one")
    with pytest.raises(AlreadyExists):
        ws.write("a.txt", b"two")
    assert ws.open_read("a.txt").read() == b"one"
    assert ws.write("a.txt", io.BytesIO(b"three"), overwrite=True) == (5, sha(b"three"))
    assert ws.open_read("a.txt").read() == b"three"
    ws.mkdir("d")
    with pytest.raises(FileError, match="directory"):
        ws.write("d", b"x", overwrite=True)
    with pytest.raises(FileError, match="directory"):
        ws.open_read("d")
    with pytest.raises(PathRefused):
        ws.write("", b"x")
    with pytest.raises(FileError, match="not a directory"):
        ws.write("a.txt/inside", b"x")
    assert sorted(os.listdir(ws.root)) == ["a.txt", "d"]  # no temp files left


def test_wrong_whole_file_checksum_leaves_nothing(ws):
    ws.write("keep.txt", b"old")
    with pytest.raises(ChecksumMismatch, match="sha256"):
        ws.write("new.txt", b"data", expected_sha256=sha(b"other"))
    with pytest.raises(ChecksumMismatch):
        ws.write("keep.txt", b"data", overwrite=True, expected_sha256=sha(b"other"))
    with pytest.raises(ChecksumMismatch):
        ws.write("sub/dir/new.txt", io.BytesIO(b"data"), expected_sha256=sha(b"other"))
    assert ws.open_read("keep.txt").read() == b"old"
    assert os.listdir(ws.root) == ["keep.txt"]
    assert ws.usage() == 3
    assert ws.write("new.txt", b"data", expected_sha256=sha(b"data"))[0] == 4
    with pytest.raises(FileError, match="hex"):
        ws.write("x", b"data", expected_sha256="ABC")


def test_quota_on_write(tmp_path):
    ws = Workspace(tmp_path / "q", quota_bytes=100)
    ws.write("a", b"x" * 60)
    with pytest.raises(QuotaExceeded) as err:
        ws.write("b", io.BytesIO(b"y" * 50))
    assert "60" in str(err.value) and "100" in str(err.value) and "'b'" in str(err.value)
    with pytest.raises(QuotaExceeded):
        ws.write("b", b"y" * 10, size_hint=50)  # refused before a byte is written
    with pytest.raises(QuotaExceeded):
        ws.write("new/dirs/b", b"y" * 41)
    assert os.listdir(ws.root) == ["a"] and ws.usage() == 60  # no temp file, no directories made
    assert ws.write("a", b"z" * 100, overwrite=True)[0] == 100  # the replaced file's bytes count as free
    assert ws.usage() == 100
    assert ws.remove("a") == 100 and ws.usage() == 0
    assert Workspace(ws.root, quota_bytes=100).usage() == 0


def test_quota_stops_a_large_stream_early(tmp_path):
    ws = Workspace(tmp_path / "q", quota_bytes=1024 * KIB)
    read = 0

    class Endless:  # only read(), like some request bodies
        def read(self, n=-1):
            nonlocal read
            read += n
            return b"\0" * n

    with pytest.raises(QuotaExceeded):
        ws.write("big", Endless())
    assert read <= 8 * 1024 * KIB  # stopped after the first block over, not at the end of the stream
    assert os.listdir(ws.root) == [] and ws.usage() == 0


def test_max_file_size(tmp_path):
    ws = Workspace(tmp_path / "m", max_file_bytes=10)
    with pytest.raises(TooLarge, match="10 bytes"):
        ws.write("big", b"x" * 11)
    assert ws.write("ok", b"x" * 10)[0] == 10
    assert os.listdir(ws.root) == ["ok"]


def test_adopt_and_its_quota(tmp_path):
    ws = Workspace(tmp_path / "w", quota_bytes=100)
    staged = tmp_path / "staged.part"
    staged.write_bytes(b"a" * 80)
    assert ws.adopt("in/file", staged) == (80, sha(b"a" * 80))
    assert not staged.exists() and ws.open_read("in/file").read() == b"a" * 80 and ws.usage() == 80
    staged.write_bytes(b"b" * 30)
    with pytest.raises(QuotaExceeded):
        ws.adopt("other/dir/file", staged)
    with pytest.raises(AlreadyExists):
        ws.adopt("in/file", staged)
    assert staged.read_bytes() == b"b" * 30  # still the caller's to retry or discard
    assert tree(ws.root) == {"in": None, "in/file": b"a" * 80} and ws.usage() == 80
    assert ws.adopt("in/file", staged, overwrite=True)[0] == 30 and ws.usage() == 30
    link = tmp_path / "link.part"
    link.symlink_to(tmp_path / "outside-file")
    with pytest.raises(FileError):
        ws.adopt("x", link)


def test_mkdir_move_remove(ws):
    ws.mkdir("a/b/c")
    ws.mkdir("a/b/c")  # like mkdir -p
    with pytest.raises(AlreadyExists):
        ws.mkdir("a/b/c", parents=False)
    with pytest.raises(NotFound):
        ws.mkdir("x/y", parents=False)
    ws.write("a/b/c/f.txt", b"12345")
    ws.write("g.txt", b"12")
    with pytest.raises(PathRefused, match="into itself"):
        ws.move("a", "a/b/c")
    with pytest.raises(PathRefused, match="into itself"):
        ws.move("a", "a/")
    ws.move("g.txt", "a/")  # into an existing directory
    ws.move("a/g.txt", "a/b")
    assert ws.open_read("a/b/g.txt").read() == b"12"
    ws.move("a/b/g.txt", "renamed.txt")
    with pytest.raises(AlreadyExists):
        ws.move("renamed.txt", "a/b/c/f.txt")
    ws.move("renamed.txt", "a/b/c/f.txt", overwrite=True)
    assert ws.usage() == 2
    with pytest.raises(NotFound):
        ws.move("nope", "x")
    with pytest.raises(PathRefused, match="root"):
        ws.remove("")
    with pytest.raises(PathRefused, match="root"):
        ws.remove("./")
    with pytest.raises(FileError, match="not empty"):
        ws.remove("a")
    assert ws.stat("a/b/c/f.txt").size == 2
    assert ws.remove("a", recursive=True) == 2
    assert ws.ls() == [] and ws.root.is_dir() and ws.usage() == 0


# -- symlinks that a job left behind -------------------------------------------------------

@pytest.fixture
def linked(tmp_path, outside):
    """alice's workspace with links out: to a dir like /etc, to a secret file, to bob's workspace."""
    alice, bob = Workspace(tmp_path / "alice"), Workspace(tmp_path / "bob")
    bob.write("private/key", b"bob's secret")
    alice.mkdir("job")
    os.symlink(outside, alice.root / "job" / "out")
    os.symlink(outside / "passwd", alice.root / "pw")
    os.symlink(bob.root, alice.root / "bob")
    os.symlink("/etc", alice.root / "etc")
    return alice, bob


def test_symlinks_are_listed_but_never_followed(linked, outside):
    alice, bob = linked
    before_outside, before_bob = tree(outside), tree(bob.root)
    kinds = {e.path: e.kind for e in alice.ls()}
    assert kinds == {"bob": "link", "etc": "link", "job": "dir", "pw": "link"}
    assert alice.stat("job/out").kind == "link"
    for path in ("pw", "job/out/passwd", "bob/private/key", "etc/passwd", "etc/hostname"):
        with pytest.raises(PathRefused, match="symlink"):
            alice.open_read(path)
        with pytest.raises(PathRefused):
            alice.real_path(path)
        with pytest.raises(PathRefused):
            alice.sha256(path)
    for path in ("job/out/new", "job/out/passwd", "bob/private/key", "bob/new", "etc/cnet-test"):
        with pytest.raises(PathRefused):
            alice.write(path, b"pwned", overwrite=True)
        with pytest.raises(PathRefused):
            alice.mkdir(path)
        with pytest.raises(PathRefused):
            alice.remove(path, recursive=True)
        with pytest.raises(PathRefused):
            alice.move("job", path)
    with pytest.raises(PathRefused):
        alice.write("pw", b"pwned", overwrite=True)
    assert [(e.path, e.kind) for e in alice.ls("job/out")] == [("job/out", "link")]  # the link, not its target
    with pytest.raises(PathRefused):
        alice.real_path("job/out")
    with pytest.raises(PathRefused):
        alice.move("bob/private/key", "stolen")
    assert alice.real_path("job") == alice.root / "job"
    assert alice.usage() == 0  # links are not followed when counting
    assert alice.remove("job/out") == 0  # the link itself goes ...
    assert alice.remove("job", recursive=True) == 0
    alice.remove("bob")
    assert tree(outside) == before_outside and tree(bob.root) == before_bob  # ... its target stays
    assert not os.path.exists("/etc/cnet-test")
    assert bob.open_read("private/key").read() == b"bob's secret"


def test_recursive_remove_does_not_follow_links_inside(linked, outside):
    alice, bob = linked
    before = tree(outside), tree(bob.root)
    alice.mkdir("deep/er")
    os.symlink(bob.root / "private", alice.root / "deep" / "er" / "link")
    alice.write("deep/er/f", b"abc")
    assert alice.remove("deep", recursive=True) == 3
    assert (tree(outside), tree(bob.root)) == before


def test_two_workspaces_cannot_reach_each_other(tmp_path):
    alice, bob = Workspace(tmp_path / "alice"), Workspace(tmp_path / "bob")
    bob.write("secret", b"bob")
    for path in ("../bob/secret", str(bob.root / "secret"), "x/../../bob/secret"):
        with pytest.raises(PathRefused):
            alice.open_read(path)
        with pytest.raises(PathRefused):
            alice.write(path, b"alice", overwrite=True)
        with pytest.raises(PathRefused):
            alice.move(path, "mine")
        with pytest.raises(PathRefused):
            alice.remove(path)
    assert bob.open_read("secret").read() == b"bob" and alice.ls() == []


def test_root_must_not_be_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(PathRefused, match="symlink"):
        Workspace(tmp_path / "alias")
    ws = Workspace(tmp_path / "new" / "ws")
    assert ws.root.is_dir() and (ws.root.stat().st_mode & 0o777) == 0o750


# -- chunked uploads ------------------------------------------------------------------------

def chunks(data: bytes, size: int = CHUNK) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def test_upload_in_chunks_out_of_order_and_adopt(tmp_path):
    store, ws = UploadStore(tmp_path / "uploads"), Workspace(tmp_path / "ws")
    data = os.urandom(3 * CHUNK + 123)
    state = store.begin("upload-0001", len(data), sha(data), CHUNK)
    assert (state.chunks, state.missing, state.complete) == (4, [0, 1, 2, 3], False)
    assert (tmp_path / "uploads" / "upload-0001.part").stat().st_size == len(data)  # sparse, full size
    parts = chunks(data)
    for i in (3, 1, 0, 2):
        state = store.write_chunk("upload-0001", i, parts[i], sha(parts[i]))
    assert state.complete and state.missing == []
    assert store.write_chunk("upload-0001", 1, parts[1], sha(parts[1])).complete  # resent: fine
    path = store.finish("upload-0001")
    assert ws.adopt("data.bin", path) == (len(data), sha(data))
    store.discard("upload-0001")
    assert ws.open_read("data.bin").read() == data
    assert os.listdir(tmp_path / "uploads") == []
    with pytest.raises(NotFound):
        store.state("upload-0001")


def test_upload_refusals_record_nothing(tmp_path):
    store = UploadStore(tmp_path / "uploads", max_size=10 * CHUNK)
    data = os.urandom(2 * CHUNK + 10)
    store.begin("upload-0002", len(data), sha(data), CHUNK)
    first, second, last = chunks(data)
    with pytest.raises(ChecksumMismatch, match="chunk 0"):
        store.write_chunk("upload-0002", 0, first, sha(second))
    with pytest.raises(FileError, match="must be 65536"):
        store.write_chunk("upload-0002", 0, first[:-1], sha(first[:-1]))
    with pytest.raises(FileError, match="must be 10"):
        store.write_chunk("upload-0002", 2, first, sha(first))
    for index in (3, -1, 99):
        with pytest.raises(FileError, match="out of range"):
            store.write_chunk("upload-0002", index, last, sha(last))
    assert store.state("upload-0002").received == frozenset()
    with pytest.raises(TooLarge):
        store.begin("upload-0003", 10 * CHUNK + 1, sha(b""), CHUNK)
    for bad_id in ("short", "../../etc/x", "a" * 65, "bad id!!"):
        with pytest.raises(FileError, match="upload id"):
            store.begin(bad_id, 1, sha(b"x"), CHUNK)
    with pytest.raises(FileError, match="chunk size"):
        store.begin("upload-0004", 1, sha(b"x"), 1024)
    with pytest.raises(FileError, match="hex"):
        store.begin("upload-0004", 1, "F" * 64, CHUNK)
    with pytest.raises(AlreadyExists):
        store.begin("upload-0002", len(data) + 1, sha(data), CHUNK)
    with pytest.raises(NotFound):
        store.write_chunk("upload-9999", 0, first, sha(first))


def test_upload_resumes_after_restart_and_finish_checks(tmp_path):
    data = os.urandom(4 * CHUNK)
    parts = chunks(data)
    store = UploadStore(tmp_path / "uploads")
    store.begin("resume-me", len(data), sha(data), CHUNK)
    store.write_chunk("resume-me", 0, parts[0], sha(parts[0]))
    store.write_chunk("resume-me", 2, parts[2], sha(parts[2]))
    with pytest.raises(FileError, match="2 of 4 chunks are missing"):
        store.finish("resume-me")
    del store
    again = UploadStore(tmp_path / "uploads")  # a restart: only the files on disk remain
    assert again.state("resume-me").missing == [1, 3]
    assert again.begin("resume-me", len(data), sha(data), CHUNK).missing == [1, 3]  # begin again = resume
    again.write_chunk("resume-me", 1, parts[1], sha(parts[1]))
    again.write_chunk("resume-me", 3, parts[3], sha(parts[3]))
    assert again.finish("resume-me").read_bytes() == data

    wrong = os.urandom(CHUNK)
    again.begin("wrong-sum", CHUNK, sha(b"not this"), CHUNK)
    again.write_chunk("wrong-sum", 0, wrong, sha(wrong))
    with pytest.raises(ChecksumMismatch) as err:
        again.finish("wrong-sum")
    assert sha(wrong) in str(err.value) and sha(b"not this") in str(err.value) and "kept" in str(err.value)
    assert again.state("wrong-sum").complete  # kept: the client may resend


def test_empty_upload_and_expiry(tmp_path):
    store = UploadStore(tmp_path / "uploads")
    state = store.begin("empty-file", 0, sha(b""), CHUNK)
    assert state.chunks == 1 and state.missing == [0]
    store.write_chunk("empty-file", 0, b"", sha(b""))
    assert store.finish("empty-file").read_bytes() == b""
    store.begin("old-upload", 1, sha(b"x"), CHUNK)
    meta = tmp_path / "uploads" / "old-upload.json"
    os.utime(meta, (meta.stat().st_atime - 7200, meta.stat().st_mtime - 7200))
    assert store.expired(3600) == ["old-upload"]
    assert sorted(store.expired(-1)) == ["empty-file", "old-upload"]


def test_chunks_from_many_threads_are_all_recorded(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store = UploadStore(tmp_path / "uploads")
    data = os.urandom(32 * CHUNK)
    parts = chunks(data)
    store.begin("parallel-1", len(data), sha(data), CHUNK)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.write_chunk("parallel-1", i, parts[i], sha(parts[i])), range(len(parts))))
    assert store.state("parallel-1").complete  # no chunk lost to a concurrent read-modify-write
    assert store.finish("parallel-1").read_bytes() == data

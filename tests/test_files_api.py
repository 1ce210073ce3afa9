"""Workspaces over the API: chunked resumable uploads with checksums, downloads, quotas,
sharing through projects, and every refusal the issue names (nothing written outside)."""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal

import pytest
from sqlalchemy import select

from computenet.client import ApiError, ComputeNetClient
from computenet.services.tenancy import accounts
from computenet.store.models import Account, FileRecord, User

from conftest import add_user, local_cluster


def _file(tmp_path, name: str, size: int) -> tuple:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_chunked_upload_resumes_and_downloads_verified(platform, alice, tmp_path):
    chunk = platform.settings.files.chunk_mb * 1024 * 1024
    local, digest = _file(tmp_path, "big.bin", 2 * chunk + 12345)  # three chunks, the last one short
    state = alice.begin_upload("data/big.bin", local.stat().st_size, digest)
    assert state["chunks"] == 3 and state["missing"] == [0, 1, 2]
    # the first chunk, then the connection "drops"
    data = local.read_bytes()[:chunk]
    alice._call("PUT", f"/uploads/{state['id']}/chunks/0", content=data,
                headers={"X-Chunk-SHA256": hashlib.sha256(data).hexdigest()})
    assert alice._call("GET", f"/uploads/{state['id']}")["missing"] == [1, 2]
    sent = []
    done = alice.upload(local, "data/big.bin", upload_id=state["id"], progress=sent.append)
    assert done == {"path": "~/data/big.bin", "size": local.stat().st_size, "sha256": digest}
    assert sum(sent) == local.stat().st_size  # the resumed part plus what was there already
    listed = alice.ls("data")
    assert [(e["name"], e["size"], e["sha256"], e["origin"]) for e in listed] == [
        ("big.bin", local.stat().st_size, digest, "upload")]
    got = alice.download("data/big.bin", tmp_path / "back.bin")
    assert got["verified"] and got["sha256"] == digest
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    # the file is where the workspace says, under platform storage
    on_disk = platform.settings.storage_root() / "users" / "alice" / "data" / "big.bin"
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == digest


def test_a_download_resumes_from_a_partial_file(platform, alice, tmp_path):
    local, digest = _file(tmp_path, "r.bin", 300_000)
    alice.upload(local, "r.bin")
    (tmp_path / "out.bin.part").write_bytes(local.read_bytes()[:100_000])
    moved = []
    got = alice.download("r.bin", tmp_path / "out.bin", progress=moved.append)
    assert sum(moved) == 200_000 and got["sha256"] == digest and got["verified"]


def test_a_chunk_with_a_wrong_checksum_is_refused_and_not_recorded(alice, tmp_path):
    local, digest = _file(tmp_path, "c.bin", 1000)
    state = alice.begin_upload("c.bin", 1000, digest)
    with pytest.raises(ApiError) as exc:
        alice._call("PUT", f"/uploads/{state['id']}/chunks/0", content=local.read_bytes(),
                    headers={"X-Chunk-SHA256": "0" * 64})
    assert exc.value.status == 400 and "sha256" in exc.value.detail and "not recorded" in exc.value.detail
    assert alice._call("GET", f"/uploads/{state['id']}")["missing"] == [0]
    with pytest.raises(ApiError) as exc:
        alice._call("POST", f"/uploads/{state['id']}/complete")
    assert exc.value.status == 400
    assert alice.ls("") == []  # nothing half-written appears


def test_a_wrong_declared_checksum_leaves_no_file(alice, tmp_path):
    local, _ = _file(tmp_path, "w.bin", 5000)
    state = alice.begin_upload("w2.bin", 5000, "ab" * 32)
    data = local.read_bytes()
    alice._call("PUT", f"/uploads/{state['id']}/chunks/0", content=data,
                headers={"X-Chunk-SHA256": hashlib.sha256(data).hexdigest()})
    with pytest.raises(ApiError) as exc:
        alice._call("POST", f"/uploads/{state['id']}/complete")
    assert exc.value.status == 400 and "sha" in exc.value.detail.lower()
    assert [e["name"] for e in alice.ls("")] == []


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a\x00b", "a\nb",
                                  "x" * 300, "@nosuchproject/a"])
def test_paths_outside_the_workspace_are_refused(platform, alice, path):
    with pytest.raises(ApiError) as exc:
        alice._call("PUT", "/files/content", params={"path": path}, content=b"hello")
    assert exc.value.status in (400, 404, 422), exc.value
    with pytest.raises(ApiError):
        alice.begin_upload(path, 5, hashlib.sha256(b"hello").hexdigest())
    storage = platform.settings.storage_root()
    assert not (storage / "users" / "escape.txt").exists() and not (storage / "escape.txt").exists()


def test_a_symlink_out_of_the_workspace_is_never_followed(platform, alice):
    alice._call("PUT", "/files/content", params={"path": "keep.txt"}, content=b"x")
    root = platform.settings.storage_root() / "users" / "alice"
    os.symlink("/etc", root / "etc-link")
    os.symlink("/etc/passwd", root / "passwd-link")
    kinds = {e["name"]: e["kind"] for e in alice.ls("")}
    assert kinds["etc-link"] == "link" and kinds["passwd-link"] == "link"
    # listing the link shows the link, never what it points at
    assert [(e["name"], e["kind"]) for e in alice.ls("etc-link")] == [("etc-link", "link")]
    for call in (lambda: alice.download("passwd-link", "/tmp/should-not-exist"),
                 lambda: alice.ls("etc-link/passwd"),
                 lambda: alice._call("PUT", "/files/content", params={"path": "etc-link/x.txt"}, content=b"x")):
        with pytest.raises(ApiError):
            call()
    assert not os.path.exists("/etc/x.txt") and not os.path.exists("/tmp/should-not-exist")


def test_over_quota_is_refused_before_and_at_the_end(make_platform, tmp_path):
    from computenet.cli.embedded import EmbeddedServer
    from computenet.config import FilesConfig

    platform = make_platform(files=FilesConfig(user_quota_gb=Decimal("0.0001")))  # ~107 KB
    _, token = add_user(platform, "carol")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as carol:
        local, digest = _file(tmp_path, "q.bin", 200_000)
        with pytest.raises(ApiError) as exc:
            carol.upload(local, "q.bin")
        assert exc.value.status == 413 and "quota" in exc.value.detail
        small, _ = _file(tmp_path, "s.bin", 60_000)
        carol.upload(small, "s1.bin")
        with pytest.raises(ApiError) as exc:  # fits alone, not with what is there
            carol.upload(small, "s2.bin")
        assert exc.value.status == 413
        assert [e["name"] for e in carol.ls("")] == ["s1.bin"]
        quota = carol.quota()[0]
        assert quota["workspace"] == "~" and quota["used_bytes"] == 60_000


def test_users_see_only_their_own_files_and_their_projects(platform, server, alice, bob):
    alice._call("PUT", "/files/content", params={"path": "secret.txt"}, content=b"alice only")
    with platform.db.session() as session:
        project = accounts.create_account(session, "shared-proj", owner=session.scalar(
            select(User).where(User.name == "alice")))
        accounts.add_member(session, project, session.scalar(select(User).where(User.name == "bob")))
    _, token = add_user(platform, "mallory")
    alice._call("PUT", "/files/content", params={"path": "@shared-proj/data.txt"}, content=b"for the team")
    assert [e["name"] for e in bob.ls("@shared-proj")] == ["data.txt"]
    assert bob.ls("") == []  # bob's own workspace does not show alice's files
    with ComputeNetClient(server.url, token) as mallory:
        with pytest.raises(ApiError) as exc:
            mallory.ls("@shared-proj")
        assert exc.value.status == 404
        with pytest.raises(ApiError):
            mallory.ls("../alice")
    bob.mv("@shared-proj/data.txt", "@shared-proj/renamed.txt")
    assert [e["name"] for e in alice.ls("@shared-proj")] == ["renamed.txt"]
    assert {q["workspace"] for q in bob.quota()} == {"~", "@bob-lab", "@shared-proj"}
    with platform.db.session() as session:
        rec = session.scalar(select(FileRecord).where(FileRecord.workspace == "project:shared-proj"))
        assert rec.path == "renamed.txt"  # the record follows the move


def test_mkdir_move_remove(alice):
    alice.mkdir("a/b")
    alice._call("PUT", "/files/content", params={"path": "a/b/f.txt"}, content=b"12345")
    with pytest.raises(ApiError):
        alice.rm("a")  # not empty
    alice.mv("a/b/f.txt", "a/")
    assert [e["name"] for e in alice.ls("a")] == ["b", "f.txt"]
    with pytest.raises(ApiError):
        alice.mv("a", "a/b/")  # into itself
    assert alice.rm("a", recursive=True) == 5
    assert alice.ls("") == []


def test_storage_is_metered_once_a_day(make_platform, tmp_path):
    from datetime import date

    from computenet.services.billing.storage_meter import StorageMeter

    platform = make_platform([local_cluster(storage_gb_day=Decimal("0.50"))])
    add_user(platform, "dora")
    root = platform.settings.storage_root() / "users" / "dora"
    root.mkdir(parents=True)
    with open(root / "blob", "wb") as handle:
        handle.truncate(3 * 1024 ** 3)  # 3 GB, sparse: the apparent size is what is charged
    meter = StorageMeter(platform)
    report = meter.run_once(date(2026, 11, 20))
    assert report.measured == {"dora-lab": 3 * 1024 ** 3}
    assert report.charged == {"dora-lab": Decimal("1.50")}
    again = meter.run_once(date(2026, 11, 20))
    assert again.charged == {"dora-lab": Decimal("1.50")}  # the same transfer, not a second one
    with platform.db.session() as session:
        from computenet.billing import funds
        from computenet.store.models import Transfer

        keys = [t.key for t in session.scalars(select(Transfer).where(Transfer.key.like("storage:%")))]
        assert len(keys) == 1
        assert funds.funds(session, session.scalar(select(Account).where(
            Account.name == "dora-lab"))).available == Decimal("98.50")


def test_an_operator_sets_a_project_quota(platform, server, alice, tmp_path):
    _, token = add_user(platform, "opal")
    with platform.db.session() as session:
        session.scalar(select(User).where(User.name == "opal")).role = "operator"
    with pytest.raises(ApiError) as exc:  # a member may not raise their own quota
        alice._call("PUT", "/accounts/alice-lab/storage-quota", json={"amount": "1000"})
    assert exc.value.status == 403
    with ComputeNetClient(server.url, token) as opal:
        with pytest.raises(ApiError) as exc:
            opal._call("PUT", "/accounts/alice-lab/storage-quota", json={"amount": "1e-12"})
        assert exc.value.status == 400 and "at least 1 MiB" in exc.value.detail
        out = opal._call("PUT", "/accounts/alice-lab/storage-quota", json={"amount": "0.001"})
        assert out["storage_quota_bytes"] == 1073741
    local, _ = _file(tmp_path, "p.bin", 1_500_000)
    with pytest.raises(ApiError) as exc:
        alice.upload(local, "@alice-lab/p.bin")
    assert exc.value.status == 413 and "@alice-lab" in exc.value.detail
    alice.upload(local, "p.bin")  # her own workspace keeps the platform default
    assert {q["workspace"]: q["quota_bytes"] for q in alice.quota()}["@alice-lab"] == 1073741


def test_another_users_upload_cannot_be_touched(platform, alice, bob, tmp_path):
    local, digest = _file(tmp_path, "a.bin", 1000)
    state = alice.begin_upload("a.bin", 1000, digest)
    data = local.read_bytes()
    for call in (lambda: bob._call("GET", f"/uploads/{state['id']}"),
                 lambda: bob._call("PUT", f"/uploads/{state['id']}/chunks/0", content=data,
                                   headers={"X-Chunk-SHA256": digest}),
                 lambda: bob._call("POST", f"/uploads/{state['id']}/complete"),
                 lambda: bob._call("DELETE", f"/uploads/{state['id']}")):
        with pytest.raises(ApiError) as exc:
            call()
        assert exc.value.status == 404
    assert alice._call("GET", f"/uploads/{state['id']}")["missing"] == [0]  # untouched


def test_unfinished_uploads_count_against_the_quota(make_platform, tmp_path):
    from computenet.cli.embedded import EmbeddedServer
    from computenet.config import FilesConfig

    platform = make_platform(files=FilesConfig(user_quota_gb=Decimal("0.001")))  # 1,073,741 bytes
    _, token = add_user(platform, "gus")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as gus:
        gus.begin_upload("one.bin", 600_000, "a" * 64)
        with pytest.raises(ApiError) as exc:  # alone it fits; with the first still open it does not
            gus.begin_upload("two.bin", 600_000, "b" * 64)
        assert exc.value.status == 413 and "unfinished uploads" in exc.value.detail


def test_moving_over_a_file_and_names_with_wildcards_keep_records_right(alice):
    alice._call("PUT", "/files/content", params={"path": "run_1/a.txt"}, content=b"first")
    alice._call("PUT", "/files/content", params={"path": "run11/a.txt"}, content=b"other")
    alice._call("PUT", "/files/content", params={"path": "new.txt"}, content=b"newer")
    alice.mv("new.txt", "run_1/a.txt", overwrite=True)  # replaces a file that has a record
    entry = alice.ls("run_1")[0]
    assert entry["sha256"] == hashlib.sha256(b"newer").hexdigest()
    alice.rm("run_1", recursive=True)  # "_" is a character, not a LIKE wildcard: run11 keeps its record
    assert alice.ls("run11")[0]["sha256"] == hashlib.sha256(b"other").hexdigest()
    got = alice.download("run11/a.txt", "/tmp/cnet-test-run11.txt")
    assert got["verified"]
    os.unlink("/tmp/cnet-test-run11.txt")


def test_storage_meter_charges_a_day_once_even_when_usage_changes(make_platform):
    from datetime import date

    from computenet.services.billing.storage_meter import StorageMeter

    platform = make_platform([local_cluster(storage_gb_day=Decimal("1.00"))])
    add_user(platform, "ivy")
    root = platform.settings.storage_root() / "users" / "ivy"
    root.mkdir(parents=True)
    with open(root / "blob", "wb") as handle:
        handle.truncate(2 * 1024 ** 3)
    meter = StorageMeter(platform)
    assert meter.run_once(date(2026, 11, 20)).charged == {"ivy-lab": Decimal("2.00")}
    with open(root / "blob2", "wb") as handle:  # more data the same day: the day is charged already
        handle.truncate(1024 ** 3)
    later = meter.run_once(date(2026, 11, 20))
    assert later.charged == {} and "charged already" in later.skipped[0]
    assert meter.run_once(date(2026, 11, 21)).charged == {"ivy-lab": Decimal("3.00")}

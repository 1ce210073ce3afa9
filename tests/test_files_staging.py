"""Stagers, local and over SFTP (an OpenSSH server on loopback): inputs out, outputs back, links refused."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from computenet.files import (FileError, LocalStager, NotFound, PathRefused, RemoteFile, SftpStager,
                              TransferFailed)


def sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cluster(tmp_path) -> Path:
    """The cluster's working area; the stagers get it as their root."""
    root = tmp_path / "cluster"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "passwd").write_text("root:x:0:0\n")
    return secret


@pytest.fixture(params=["local", "sftp"])
def stager(request, cluster):
    if request.param == "local":
        s = LocalStager(root=str(cluster))
    else:
        login = request.getfixturevalue("ssh_login")
        s = SftpStager(login["host"], port=login["port"], username=login["user"], client_keys=[login["key"]],
                       known_hosts=login["known_hosts"], root=str(cluster))
    yield s
    s.close()


def test_put_and_get_5_mb_with_matching_sha256(stager, cluster, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    local = tmp_path / "input.bin"
    local.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    remote = cluster / "job-1" / "in" / "deep" / "input.bin"  # parents created
    assert stager.put(local, str(remote)) == want
    assert sha_file(remote) == want and (remote.stat().st_mode & 0o777) == 0o644
    assert os.listdir(remote.parent) == ["input.bin"]  # the .cnet-part file was renamed away
    back = tmp_path / "back" / "output.bin"
    assert stager.get(str(remote), back) == want
    assert back.read_bytes() == data and os.listdir(back.parent) == ["output.bin"]
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    stager.put(script, str(cluster / "run.sh"))
    assert (cluster / "run.sh").stat().st_mode & 0o777 == 0o755  # a script stays executable
    assert stager.put(local, str(remote)) == want  # over an existing file: replaced
    with pytest.raises(NotFound):
        stager.get(str(cluster / "missing.bin"), tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_list_with_patterns_reports_links_and_never_follows_them(stager, cluster, outside, tmp_path):
    job = cluster / "job-2"
    (job / "sub" / "deep").mkdir(parents=True)
    (job / "results" / "inner").mkdir(parents=True)
    for rel, text in {"out.dump": "1", "sub/deep/x.dump": "22", "sub/y.txt": "333", "results/a.csv": "4444",
                      "results/inner/b.csv": "55555", "log.txt": "6"}.items():
        (job / rel).write_text(text)
    os.symlink(outside / "passwd", job / "stolen.dump")
    os.symlink(outside, job / "sub" / "etc")

    assert stager.list(str(job), ["*.dump"]) == [
        RemoteFile("out.dump", 1, "file"), RemoteFile("stolen.dump", len(str(outside / "passwd")), "link"),
        RemoteFile("sub/deep/x.dump", 2, "file")]
    assert stager.list(str(job), ["results"]) == [
        RemoteFile("results", 0, "dir"), RemoteFile("results/a.csv", 4, "file"),
        RemoteFile("results/inner", 0, "dir"), RemoteFile("results/inner/b.csv", 5, "file")]
    assert [f.path for f in stager.list(str(job), ["**/x.dump", "log.txt"])] == ["log.txt", "sub/deep/x.dump"]
    everything = {f.path: f.kind for f in stager.list(str(job), ["*"])}
    assert everything["sub/etc"] == "link" and not any(p.startswith("sub/etc/") for p in everything)
    assert stager.list(str(job), ["*.nothing"]) == []

    with pytest.raises(PathRefused):
        stager.get(str(job / "stolen.dump"), tmp_path / "stolen")
    with pytest.raises(PathRefused):
        stager.get(str(job / "sub" / "etc" / "passwd"), tmp_path / "stolen")
    with pytest.raises(PathRefused):
        stager.list(str(job / "sub" / "etc"), ["*"])
    (tmp_path / "x").write_text("x")
    with pytest.raises(PathRefused):
        stager.put(tmp_path / "x", str(job / "sub" / "etc" / "planted"))  # through a linked directory
    assert not (tmp_path / "stolen").exists() and os.listdir(outside) == ["passwd"]


def test_remote_paths_outside_the_root_are_refused(stager, cluster, outside, tmp_path):
    local = tmp_path / "f.txt"
    local.write_text("data")
    sibling = cluster.parent / f"{cluster.name}-evil"  # shares the root's prefix as text, not as a directory
    for remote in (str(outside / "new.txt"), f"{cluster}/../outside/new.txt", str(sibling / "f.txt"),
                   "/etc/cnet-staging-test", "relative/path", f"{cluster}/a\nb"):
        with pytest.raises(PathRefused):
            stager.put(local, remote)
    for remote in (str(outside / "passwd"), "/etc/hostname", f"{cluster}/../outside/passwd"):
        with pytest.raises(PathRefused):
            stager.get(remote, tmp_path / "got")
    with pytest.raises(PathRefused):
        stager.list(str(outside), ["*"])
    assert os.listdir(outside) == ["passwd"] and not sibling.exists()
    assert not os.path.exists("/etc/cnet-staging-test") and not (tmp_path / "got").exists()


def test_a_planted_part_file_link_is_not_written_through(stager, cluster, outside, tmp_path):
    local = tmp_path / "f.txt"
    local.write_text("new input")
    os.symlink(outside / "passwd", cluster / "in.txt.cnet-part")
    stager.put(local, str(cluster / "in.txt"))
    assert (outside / "passwd").read_text() == "root:x:0:0\n"
    assert (cluster / "in.txt").read_text() == "new input" and not (cluster / "in.txt.cnet-part").exists()


def test_local_stager_without_root_and_local_errors(tmp_path):
    s = LocalStager()
    local = tmp_path / "a.bin"
    local.write_bytes(b"abc")
    digest = s.put(local, str(tmp_path / "x" / "y" / "a.bin"))
    assert s.get(str(tmp_path / "x" / "y" / "a.bin"), tmp_path / "b.bin") == digest
    os.symlink(local, tmp_path / "link.bin")
    with pytest.raises(PathRefused):
        s.get(str(tmp_path / "link.bin"), tmp_path / "c.bin")
    with pytest.raises(FileError):
        s.put(tmp_path / "link.bin", str(tmp_path / "z.bin"))  # the local side is not followed either
    with pytest.raises(NotFound):
        s.put(tmp_path / "missing", str(tmp_path / "z.bin"))
    with pytest.raises(PathRefused):
        s.list(str(tmp_path / "link.bin"), ["*"])


def test_sftp_needs_a_host_key_and_reports_a_dead_host(ssh_login, tmp_path):
    with pytest.raises(ValueError, match="known_hosts"):
        SftpStager("127.0.0.1", port=ssh_login["port"])
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh_login['port']} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIHsX0H7Qy3yW0Lq5oQ0bXq7ZXbKk1e9oQ9Ti1vJ0a8Zb\n")
    s = SftpStager("127.0.0.1", port=ssh_login["port"], username="root", client_keys=[ssh_login["key"]],
                   known_hosts=str(wrong), connect_timeout=5)
    with pytest.raises(FileError, match="sftp 127.0.0.1"):
        s.list(str(tmp_path), ["*"])
    s.close()
    dead = SftpStager("127.0.0.1", port=1, username="root", client_keys=[ssh_login["key"]],
                      known_hosts=ssh_login["known_hosts"], connect_timeout=3)
    with pytest.raises(FileError, match="sftp 127.0.0.1:1"):
        dead.list(str(tmp_path), ["*"])
    dead.close()
    with pytest.raises(TransferFailed, match="closed"):
        dead.list(str(tmp_path), ["*"])

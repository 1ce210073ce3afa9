"""Job output paths stay inside the user's space after every expansion, and are read without
following links (issue 13, items 1 and 2)."""

from __future__ import annotations

import getpass
import os
import posixpath
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from sqlalchemy import func, select

from computenet.client import ApiError, ComputeNetClient
from computenet.cli.embedded import EmbeddedServer
from computenet.domain.sbatch import ScriptError, parse_submission
from computenet.domain.resources import RequestError
from computenet.services.files import paths as job_path_rules
from computenet.services.errors import InvalidRequest
from computenet.services.jobs.jobs import clean_name, job_paths
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Job

from conftest import add_user, poll_until, slurm_clusters

SECRET = "server secret: do not show\n"
UP = "../" * 16  # more than enough to climb from any job directory to /


def job_rows(platform) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count(Job.id)))


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file of the server's, outside every user's space (like its config or agent.key)."""
    path = tmp_path / "server-only" / "agent.key"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def slurm_expand(pattern: str, values: dict[str, str]) -> str:
    """sbatch's own filename expansion (written apart from the code under test): %% is a %,
    %[width]letter a value, an unknown letter stays as it is."""
    out, i = [], 0
    while i < len(pattern):
        m = re.match(r"%(\d*)(.)", pattern[i:], re.S)
        if pattern[i] != "%" or m is None:
            out.append(pattern[i])
            i += 1
            continue
        width, letter = m.groups()
        if letter == "%":
            out.append("%")
        elif letter in values:
            value = values[letter]
            out.append(value.zfill(int(width)) if width and value.isdigit() else value)
        else:
            out.append(m.group(0))
        i += m.end()
    return "".join(out)


def inside(path: str, space: str) -> bool:
    return posixpath.normpath(path).startswith(space.rstrip("/") + "/")


# -- item 1: the job name (and every other pattern) is checked after expansion -----------------

ATTACKS = [  # (job name, flags) an attacker might send; script names give the name when -J does not
    ("{up}{secret}", ["-o", "%x"]),
    ("{up}{secret}", ["-e", "%x"]),
    ("{up}{secret}", ["-o", "logs/%x"]),
    ("../../../../../..{secret}", ["-o", "%x", "-D", "deep/er"]),
    ("..", ["-o", "%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x{secret}"]),
    ("../%j", ["-o", "%x/../../../../../../../../../../../../../..{secret}"]),
]


@pytest.mark.parametrize("name, flags", ATTACKS)
def test_job_name_cannot_lead_output_out_of_the_space(alice, platform, secret, name, flags):
    """The issue's attack: -J ../../..<secret> -o %x --hold, then GET /jobs/{id}/output."""
    name = name.format(up=UP, secret=secret)
    flags = [f.format(secret=secret) for f in flags]
    before = alice.me().accounts[0]
    with pytest.raises(ApiError) as err:
        job = alice.submit("#!/bin/bash\ntrue\n", ["-J", name, *flags, "--hold", "-t", "1"])
        # before the fix: accepted, and the output endpoint hands over the server's file
        assert SECRET not in alice.output(job.id).data
    assert err.value.status == 400, err.value.detail
    assert ("output file" in err.value.detail or "error file" in err.value.detail)
    assert "outside your space" in err.value.detail
    assert job_rows(platform) == 0  # nothing half-written, no hold left
    after = alice.me().accounts[0]
    assert (after.balance, after.reserved) == (before.balance, before.reserved)
    assert secret.read_text() == SECRET


def test_script_name_as_job_name_is_checked_too(alice, platform, secret):
    with pytest.raises(ApiError) as err:
        alice.submit("#!/bin/bash\ntrue\n", ["-o", f"%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x/%x{secret}"], "..")
    assert err.value.status == 400 and "outside your space" in err.value.detail
    assert job_rows(platform) == 0


def test_without_hold_the_target_is_not_overwritten(alice, platform, secret):
    with pytest.raises(ApiError) as err:
        alice.submit("#!/bin/bash\necho pwned\n", ["-J", f"{UP}{secret}", "-o", "%x", "-t", "1"])
    assert err.value.status == 400
    poller = ClusterPoller(platform, "local")
    poller.run_once()
    assert secret.read_text() == SECRET


def test_names_with_slashes_percent_and_dots_still_work_inside(alice, platform):
    """%x expands to the name as it is (a % in it stays a %), and stays where it was put."""
    job = alice.submit("#!/bin/bash\necho ok\n", ["-J", "run%j/../a%%b", "-o", "logs-%x-%j.out"])
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: alice.job(job.id).state == "COMPLETED", step=poller.run_once, what="job to end")
    shown = alice.job(job.id)
    assert shown.stdout_path == f"{shown.workdir}/a%%b-{job.native_id}.out"
    assert alice.output(job.id).data == "ok\n"


def test_arrays_keep_slurms_own_default_name():
    from computenet.domain.sbatch import parse_submission as parse

    _, spec, _ = parse("#!/bin/bash\ntrue\n", ["--array=1-3"])
    space = "/srv/w/alice"
    workdir, out, err = job_path_rules.expand_job_paths(space, spec.options, 7, "job", "amy")
    assert out == err == f"{space}/jobs/7/slurm-%A_%a.out"


# the property: any name, pattern and working directory either stays inside or is refused

_PIECE = st.sampled_from(["/", "..", ".", "%x", "%u", "%j", "%A", "%a", "%N", "%n", "%s", "%t", "%%", "%5j",
                          "%", "a", "b", "~", " ", "-", "etc", "passwd"])
_PATH_TEXT = st.lists(_PIECE, max_size=12).map("".join)
_NAME = st.one_of(_PATH_TEXT, st.text(max_size=40))


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=_NAME, pattern=_PATH_TEXT, workdir=st.one_of(st.none(), _PATH_TEXT), error=st.booleans(),
       node=st.sampled_from(["n1", "node-07", "gpu.a100"]), task=st.integers(0, 10**6))
@example(name="../../../../../../../../../../../etc/passwd", pattern="%x", workdir=None, error=False,
         node="n1", task=0)
@example(name="..", pattern="%x/%x/%x/%x/%x/%x/%x/%x/%x/x", workdir=None, error=False, node="n1", task=0)
@example(name="%x", pattern="%x/../../../../../../../../../../x", workdir=None, error=True, node="n1", task=0)
def test_expanded_output_path_is_inside_the_space_or_refused(platform, name, pattern, workdir, error, node, task):
    flags = ["-e" if error else "-o", pattern, "-J", name]
    if workdir is not None:
        flags += ["-D", workdir]
    try:
        _, spec, _ = parse_submission("#!/bin/bash\ntrue\n", flags)
    except (ScriptError, RequestError):
        return  # refused as input
    opts = spec.options
    job_name = clean_name(opts.job_name or "job")
    space = job_path_rules.user_space(platform.settings.workdir_root(platform.cluster_config("local")), "alice")
    try:
        paths_ = job_paths(platform, "local", "alice", 7, opts, job_name=job_name)
    except TypeError:  # before the fix job_paths did not know the name: %x was left to the scheduler
        try:
            paths_ = job_paths(platform, "local", "alice", 7, opts)
        except InvalidRequest:
            return
    except InvalidRequest:
        return  # refused: fine
    workdir_path, out, err = paths_
    assert inside(workdir_path + "/x", space)
    # what the scheduler makes of it, with every pattern it knows (the name included, had it been left)
    values = {"x": job_name, "u": getpass.getuser(), "j": "12345", "A": "12340", "a": str(task), "N": node,
              "n": "0", "s": "batch", "t": "0"}
    for path in (out, err):
        final = slurm_expand(path, values)
        assert inside(final, space), f"{final!r} is outside {space!r}"


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(name=_NAME, user=_NAME, pattern=_PATH_TEXT, workdir=st.one_of(st.none(), _PATH_TEXT),
       root=st.sampled_from(["/srv/cnet/workspaces", "/shared/work/", "/"]), array=st.booleans())
def test_every_pattern_value_is_checked_after_expansion(name, user, pattern, workdir, root, array):
    """The same property on the pure rule, with any %u too and any workdir root (run_as_users
    clusters have their own): the scheduler's expansion lands inside the space or it is refused."""
    from computenet.domain.resources import JobOptions

    space = job_path_rules.user_space(root, "alice")
    try:
        opts = JobOptions(output=pattern or None, workdir=workdir or None, array="0-3" if array else None)
    except ValueError:
        return
    try:
        workdir_path, out, err = job_path_rules.expand_job_paths(space, opts, 9, name or "job", user or "amy")
    except InvalidRequest:
        return
    values = {"x": name or "job", "u": user or "amy", "j": "77", "A": "70", "a": "3", "N": "n01", "n": "0",
              "s": "batch", "t": "0"}
    for path in (out, err):
        assert inside(slurm_expand(path, values), space)
    if not array:  # what is stored once the job has its id is inside too
        assert inside(job_path_rules.submitted_path(out, "77", space), space)


# -- item 2: the output is read without following links -----------------------------------------

def _run_to_end(alice, platform, job_id):
    poller = ClusterPoller(platform, "local")
    return poll_until(lambda: (lambda j: j if j.state in ("COMPLETED", "FAILED") else None)(alice.job(job_id)),
                      step=poller.run_once, what="job to end")


def test_job_replacing_its_output_with_a_symlink_gets_no_file(alice, platform, secret):
    """The job swaps its own slurm-N.out for a link to a server file; the endpoint must refuse."""
    script = (f"#!/bin/bash\necho mine\nrm -f \"slurm-$SLURM_JOB_ID.out\"\n"
              f"ln -s '{secret}' \"slurm-$SLURM_JOB_ID.out\"\n")
    job = alice.submit(script, ["-t", "1"])
    done = _run_to_end(alice, platform, job.id)
    assert os.path.islink(done.stdout_path)  # the job did plant it
    with pytest.raises(ApiError) as err:
        chunk = alice.output(job.id)
        assert SECRET not in chunk.data  # before the fix: the server's file came back
    assert err.value.status == 409 and "link" in err.value.detail
    assert secret.read_text() == SECRET


def test_a_linked_directory_on_the_way_is_not_followed(alice, platform, secret):
    job = alice.submit("#!/bin/bash\ntrue\n", ["-o", "logs/agent.key", "--hold", "-t", "1"])
    shown = alice.job(job.id)
    logs = Path(shown.workdir) / "logs"
    os.makedirs(shown.workdir, exist_ok=True)
    logs.symlink_to(secret.parent, target_is_directory=True)
    assert shown.stdout_path == str(logs / "agent.key")
    with pytest.raises(ApiError) as err:
        chunk = alice.output(job.id)
        assert SECRET not in chunk.data
    assert err.value.status == 409 and "link" in err.value.detail
    alice.cancel(job.id)


def test_a_hard_link_to_a_server_file_is_not_read(alice, platform, secret):
    job = alice.submit("#!/bin/bash\ntrue\n", ["-o", "out.txt", "--hold", "-t", "1"])
    shown = alice.job(job.id)
    os.makedirs(shown.workdir, exist_ok=True)
    os.link(secret, shown.stdout_path)
    with pytest.raises(ApiError) as err:
        chunk = alice.output(job.id)
        assert SECRET not in chunk.data
    assert err.value.status == 409
    alice.cancel(job.id)


def test_a_stored_path_outside_the_space_is_never_read(platform, secret):
    """Rows written before the fix (or by any other path) cannot make the service read for them."""
    from computenet.services.jobs.job_output import read_output

    from computenet.services.errors import Conflict

    _, token = add_user(platform, "mallory")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit("#!/bin/bash\ntrue\n", ["--hold", "-t", "1"])
        with platform.db.session() as session:
            row = session.get(Job, job.id)
            own = row.stdout_path
            for planted in (str(secret), f"{row.workdir}/../../../../../..{secret}"):
                row.stdout_path = planted
                with pytest.raises(Conflict) as err:
                    text, _, _ = read_output(row, "stdout", 0, platform=platform)
                    assert SECRET not in text
                assert "outside" in str(err.value) or "normalised" in str(err.value)
            row.stdout_path = own  # its own file is read as before (not there yet: it is held)
            assert read_output(row, "stdout", 0, platform=platform) == ("", 0, False)
        client.cancel(job.id)


def test_output_is_still_read_normally(alice, platform):
    job = alice.submit("#!/bin/bash\necho fine\n", ["-o", "sub/dir/out-%j.txt", "-D", "work"])
    os.makedirs(Path(alice.job(job.id).stdout_path).parent, exist_ok=True)
    _run_to_end(alice, platform, job.id)
    assert alice.output(job.id).data == "fine\n"


# -- the Slurm test bed: the same rule where Slurm expands the patterns --------------------------

@pytest.mark.slurm
def test_slurm_refuses_the_name_escape_and_runs_a_normal_pattern(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed))
    _, token = add_user(platform, "pat", balance="50.00")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        for escape in (["-J", "../x", "-o", "%x", "-D", "."], ["-J", "../../../x", "-o", "%x"]):
            with pytest.raises(ApiError) as err:  # before the fix Slurm wrote <root>/x, beside the users
                client.submit("#!/bin/bash\ntrue\n", ["-M", "alpha", *escape, "-t", "1"])
            assert err.value.status == 400 and "outside your space" in err.value.detail
        assert job_rows(platform) == 0 and Decimal(client.me().accounts[0].reserved) == 0
        job = client.submit("#!/bin/bash\necho hi from $SLURM_JOB_NAME\n",
                            ["-M", "alpha", "-J", "re%port", "-o", "logs-%x-%j.out", "-t", "1"])
        shown = client.job(job.id)
        assert shown.stdout_path == f"{shown.workdir}/logs-re%port-{job.native_id}.out"
        poller = ClusterPoller(platform, "alpha")
        poll_until(lambda: client.job(job.id).state == "COMPLETED", step=poller.run_once, timeout=90,
                   what="job to end on alpha")
        assert poll_until(lambda: client.output(job.id).data, timeout=30, what="output on alpha") == \
            "hi from re%port\n"
        # an array keeps Slurm's own default name, one file per task
        array = client.submit("#!/bin/bash\necho task $SLURM_ARRAY_TASK_ID\n", ["-M", "alpha", "--array=0-1", "-t", "1"])
        shown = client.job(array.id)
        assert shown.stdout_path == f"{shown.workdir}/slurm-%A_%a.out"
        files = [Path(shown.workdir) / f"slurm-{array.native_id}_{task}.out" for task in (0, 1)]
        poll_until(lambda: all(f.exists() and f.read_text() for f in files), step=poller.run_once, timeout=90,
                   what="array task outputs")
        assert [f.read_text() for f in files] == ["task 0\n", "task 1\n"]


def test_output_of_a_job_on_a_cluster_no_longer_configured_is_absent_not_an_error(alice, platform):
    """A cluster taken out of the configuration keeps its jobs' history; their output is not reachable."""
    job = alice.submit("#!/bin/bash\necho hi\n", ["-t", "1"])
    with platform.db.session() as session:
        session.get(Job, job.id).cluster.name = "retired"
    chunk = alice.output(job.id)
    assert chunk.exists is False and chunk.data == ""

"""The application centre end to end on the embedded local executor: form -> script ->
routing -> run (through the app's stand-in) -> outputs back in the workspace with checksums;
publishing and approval; refusals."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ApiError, ComputeNetClient
from computenet.services.tenancy import accounts, tenants
from computenet.services.files.job_files import OutputCollector
from computenet.services.monitoring.monitoring import SampleCollector
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Job, User

from conftest import FIXTURES, add_user, local_cluster, poll_until

APPS = FIXTURES / "apps"


@pytest.fixture
def centre(make_platform):
    platform = make_platform([local_cluster(tags=["stand-in"], slots=8), local_cluster("plain", slots=2)])
    with EmbeddedServer(platform, run_services=False) as srv:
        yield platform, srv


def client_for(platform, srv, name: str, role: str | None = None, tenant: str | None = None) -> ComputeNetClient:
    _, token = add_user(platform, name, balance="500.00")
    with platform.db.session() as session:
        user = session.scalar(select(User).where(User.name == name))
        if role:
            user.role = role
        if tenant:
            user.tenant_id = tenants.create_tenant(session, tenant, "university").id
    return ComputeNetClient(srv.url, token)


def finish(platform, job_id: int) -> Job:
    """Poll the cluster, then fetch outputs, until the job ended and its outputs are in."""
    poller, collector, samples = ClusterPoller(platform, "local"), OutputCollector(platform), SampleCollector(platform)

    def done():
        poller.run_once()
        collector.run_once()
        samples.run_once()
        with platform.db.session() as session:
            job = session.get(Job, job_id)
            return job if job.collect_state in ("done", "failed") and job.monitor_state != "on" else None
    return poll_until(done, timeout=90, what=f"job {job_id} and its outputs")


def test_lammps_app_runs_and_its_outputs_come_back_with_checksums(centre):
    platform, srv = centre
    with client_for(platform, srv, "ann") as ann:
        names = {a["name"] for a in ann.apps()}
        assert {"lammps", "gromacs", "openfoam", "quantum-espresso", "pytorch-ddp", "jupyter-notebook",
                "python-script", "generic-shell"} <= names
        shown = ann.app("lammps")
        assert shown["available_on"] == {"local": "stand-in", "plain": None}
        uploaded = ann.upload(APPS / "in.lj", "md/in.lj")
        job = ann.run_app("lammps", {"input": "md/in.lj", "steps": "200", "size": "small"})
        assert job.app == "lammps 2Aug2023" and job.cluster == "local" and job.cores == 2
        ended = finish(platform, job.id)
        assert ended.state == "COMPLETED", ann.job(job.id).events
        detail = ann.job(job.id)
        assert detail.outputs == "done"
        assert detail.app_run["params"] == {"input": "md/in.lj", "steps": 200, "size": "small"}
        assert [(i["name"], i["sha256"]) for i in detail.inputs] == [("in.lj", uploaded["sha256"])]
        fetched = {f["path"]: f for f in detail.output_files}
        assert f"~/jobs/{job.id}/log.lammps" in fetched and any(p.endswith(".dump") for p in fetched)
        for f in fetched.values():
            # the copy in the workspace is byte for byte the file the job wrote on the cluster
            remote = Path(f["remote_path"])
            assert hashlib.sha256(remote.read_bytes()).hexdigest() == f["sha256"]
            assert f["cluster"] == "local"
        listing = {e["name"]: e for e in ann.ls(f"jobs/{job.id}")}
        assert listing["log.lammps"]["origin"] == f"job {job.id} on local"
        # inputs are not results; on the local executor the job's directory is in the workspace itself
        # (one tree), so the staged input is listed there, as a file the job was given
        assert not any(p.endswith(("/in.lj", "/.cnet-stand-in")) for p in fetched)
        assert "origin" not in listing["in.lj"] or listing["in.lj"]["origin"] != f"job {job.id} on local"
        log = ann.download(f"jobs/{job.id}/log.lammps", srv_tmp(platform) / "log.lammps")
        assert log["verified"] and "Step" in Path(log["local"]).read_text()
        assert any(f["path"].endswith(".out") for f in detail.output_files)  # stdout comes back too
        # the run was monitored and profiled; one run is not shown on the public app page (it is one bill)
        assert ann.app("lammps")["typical"] is None
        with platform.db.session() as session:
            from computenet.services.monitoring.app_profiles import characteristics

            (typical,) = characteristics(session, app="lammps")
            assert typical["jobs"] == 1 and typical["runtime_s"]["p50"] > 0


def srv_tmp(platform) -> Path:
    path = platform.settings.data_dir / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_dry_run_shows_the_script_and_resources_and_submits_nothing(centre):
    platform, srv = centre
    with client_for(platform, srv, "ben") as ben:
        ben._call("PUT", "/files/content", params={"path": "in.lj"}, content=(APPS / "in.lj").read_bytes())
        out = ben.run_app("lammps", {"input": "in.lj", "size": "medium"}, dry_run=True)
        assert out["resources"]["cores"] == 8 and out["resources"]["time_minutes"] == 120
        assert out["cluster"] == "local" and out["available_on"] == {"local": "stand-in"}
        assert "python3 .cnet-stand-in -in in.lj -var steps 1000" in out["script"]
        assert out["flags"][:8] == ["-J", "lammps", "-N", "1", "-n", "8", "-t", "120"]
        assert ben.jobs() == []


@pytest.mark.parametrize("value", ["$(touch /tmp/cnet-pwned)", "`id`", "x; rm -rf /", "a\nb"])
def test_parameters_crafted_to_break_out_are_refused(centre, value):
    platform, srv = centre
    with client_for(platform, srv, "cat", role="operator") as cat:
        cat.publish_app((APPS / "only-plain.yaml").read_text(), "platform")
        with pytest.raises(ApiError) as exc:
            cat.run_app("only-plain", {"message": value})
        assert exc.value.status == 400 and "message" in exc.value.detail
        with pytest.raises(ApiError) as exc:
            cat.run_app("lammps", {"input": "in.lj", "size": value})
        assert exc.value.status == 400 and "size" in exc.value.detail
        assert cat.jobs() == []


def test_free_text_reaches_the_job_literally_never_as_shell(centre, tmp_path):
    platform, srv = centre
    marker = tmp_path / "pwned"
    with client_for(platform, srv, "fay") as fay:
        fay._call("PUT", "/files/content", params={"path": "echo.sh"},
                  content=b'for a in "$@"; do printf "<%s>\\n" "$a"; done > args.txt\n')
        nasty = f"$(touch {marker}) `touch {marker}` ; touch {marker} 'quoted words' plain"
        job = fay.run_app("generic-shell", {"script": "echo.sh", "args": nasty})
        ended = finish(platform, job.id)
        assert ended.state == "COMPLETED"
        args = Path(ended.workdir, "args.txt").read_text()
        assert "<$(touch>" in args and "<`touch>" in args and "<;>" in args and "<quoted words>" in args
        assert not marker.exists()


def test_inputs_outside_the_workspace_are_refused(centre):
    platform, srv = centre
    with client_for(platform, srv, "dan") as dan:
        for path in ("../ann/md/in.lj", "/etc/passwd", "missing.lj", "@someone-elses-project/in.lj"):
            with pytest.raises(ApiError) as exc:
                dan.run_app("lammps", {"input": path})
            assert exc.value.status in (400, 404), path
        assert dan.jobs() == []


def test_an_app_runs_only_where_it_is_available(centre):
    platform, srv = centre
    with client_for(platform, srv, "op", role="operator") as op:
        source = (APPS / "only-plain.yaml").read_text()
        op.publish_app(source, "platform")
        job = op.run_app("only-plain", {"message": "hello"})
        assert job.cluster == "plain"
        with pytest.raises(ApiError) as exc:
            op.run_app("only-plain", {"message": "hello"}, cluster="local")
        assert "not available on cluster local" in exc.value.detail
        # the router says why the other cluster was not a candidate
        out = op.run_app("only-plain", {"message": "hi"}, dry_run=True)
        reasons = [c["reasons"] for c in out["decision"]["candidates"] if c["cluster"] == "local"]
        assert reasons and any("does not offer app only-plain" in r for r in reasons[0])


def test_vendor_apps_wait_for_an_operator(centre):
    platform, srv = centre
    source = (APPS / "only-plain.yaml").read_text().replace("name: only-plain", "name: vendor-tool")
    with client_for(platform, srv, "isv", role="vendor") as isv, \
            client_for(platform, srv, "eve") as eve, client_for(platform, srv, "boss", role="operator") as boss:
        with pytest.raises(ApiError) as exc:
            eve.publish_app(source, "vendor")
        assert exc.value.status == 403
        with pytest.raises(ApiError) as exc:
            isv.publish_app(source, "platform")
        assert exc.value.status == 403
        published = isv.publish_app(source, "vendor")
        assert published["status"] == "pending"
        assert "vendor-tool" not in {a["name"] for a in eve.apps()}
        with pytest.raises(ApiError):
            eve.run_app("vendor-tool", {"message": "x"})
        with pytest.raises(ApiError) as exc:
            isv.review_app("vendor-tool", published["version"], True)
        assert exc.value.status == 403
        assert boss.review_app("vendor-tool", published["version"], True, "checked")["status"] == "approved"
        assert "vendor-tool" in {a["name"] for a in eve.apps()}
        with pytest.raises(ApiError) as exc:  # the same version again
            isv.publish_app(source, "vendor")
        assert exc.value.status == 409


def test_tenant_apps_stay_in_the_tenant(centre):
    platform, srv = centre
    source = (APPS / "only-plain.yaml").read_text().replace("name: only-plain", "name: lab-tool")
    with client_for(platform, srv, "ta", role="tenant_admin", tenant="uni-a") as ta, \
            client_for(platform, srv, "outsider") as outsider:
        with platform.db.session() as session:
            ta_user = session.scalar(select(User).where(User.name == "ta"))
            member = accounts.create_user(session, "colleague")
            member.tenant_id = ta_user.tenant_id
            token = accounts.issue_token(session, member, "t")
        assert ta.publish_app(source, "tenant")["status"] == "approved"
        with ComputeNetClient(srv.url, token) as colleague:
            assert "lab-tool" in {a["name"] for a in colleague.apps()}
        assert "lab-tool" not in {a["name"] for a in outsider.apps()}


@pytest.mark.parametrize("mutation, where", [
    (lambda s: s.replace("name: only-plain", "name: Bad Name"), "name"),
    (lambda s: s.replace("type: object", "type: objekt", 1), "parameters"),
    (lambda s: s.replace("{{ message }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}"), "template"),
    (lambda s: s.replace("  zh: 只在 plain 上", "  xx: nope"), "title"),
])
def test_a_bad_spec_is_refused_with_the_field(centre, mutation, where):
    platform, srv = centre
    with client_for(platform, srv, "op2", role="operator") as op:
        with pytest.raises(ApiError) as exc:
            op.publish_app(mutation((APPS / "only-plain.yaml").read_text()), "platform")
        assert exc.value.status == 400 and where in exc.value.detail, exc.value.detail
        assert "only-plain" not in {a["name"] for a in op.apps(all_versions=True)} or where == "name"


@pytest.mark.parametrize("planted, says", [("symlink", "leads outside your space"), ("file", "cannot be staged")])
def test_a_staging_refusal_leaves_no_job_no_hold_and_no_breaker_count(centre, tmp_path, planted, says):
    from computenet.billing import funds
    from computenet.store.models import Account, Cluster

    platform, srv = centre
    with client_for(platform, srv, "hal") as hal:
        hal.upload(APPS / "in.lj", "in.lj")
        # the user's own job left something where the platform stages the next job's files:
        # a link out (refused when the paths are worked out) or a file in the way (refused by staging)
        space = Path(platform.settings.workdir_root(platform.cluster_config("local"))) / "hal"
        space.mkdir(parents=True, exist_ok=True)
        (tmp_path / "elsewhere").mkdir()
        if planted == "symlink":
            (space / "jobs").symlink_to(tmp_path / "elsewhere")
        else:
            (space / "jobs").write_text("not a directory")
        with pytest.raises(ApiError) as exc:
            hal.run_app("lammps", {"input": "in.lj"})
        assert exc.value.status == 400 and says in exc.value.detail, exc.value.detail
        assert hal.jobs() == [] and list((tmp_path / "elsewhere").iterdir()) == []
        with platform.db.session() as session:
            account = session.scalar(select(Account).where(Account.name == "hal-lab"))
            state = funds.funds(session, account)
            assert state.held == 0 and state.available == Decimal("500.00")
            assert session.scalar(select(Cluster).where(Cluster.name == "local")).failures == 0


def test_inputs_from_a_project_you_are_not_in_are_refused(centre):
    platform, srv = centre
    with client_for(platform, srv, "owner") as owner, client_for(platform, srv, "intruder") as intruder:
        owner._call("PUT", "/files/content", params={"path": "@owner-lab/in.lj"},
                    content=(APPS / "in.lj").read_bytes())
        with pytest.raises(ApiError) as exc:
            intruder.run_app("lammps", {"input": "@owner-lab/in.lj"})
        assert exc.value.status == 404 and "not a member" in exc.value.detail
        assert intruder.jobs() == []

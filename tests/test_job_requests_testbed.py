"""Jobs by message end to end on the real Slurm test bed (issue 20 item 3, Tests): a tenant's system
publishes a request to NATS JetStream, reads the job id on the replies stream, follows the job on its
event subject until it ended and was charged, fetches the output through the API, and a replayed
request with the same key gives the first job (one job in sacct). A request that cannot be paid is
refused with nothing half-written."""

from __future__ import annotations

import subprocess
import uuid
from decimal import Decimal

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import EventsConfig
from computenet.services.tenancy import accounts, tenants
from computenet.services.integration.event_publisher import EventPublisher
from computenet.services.jobs.job_requests import JobRequests
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.jobs.submitter import Submitter

from conftest import poll_until, slurm_clusters
from events_nats import consume, delete_stream, nats_url_or_skip
from test_job_requests import counts, publish, replies

pytestmark = pytest.mark.slurm


@pytest.fixture
def bed(testbed, make_platform):
    url = nats_url_or_skip()
    tag = uuid.uuid4().hex[:8]
    cfg = EventsConfig(nats_url=url, stream=f"EV_wtasync_{tag}", subject_prefix=f"wtasync{tag}",
                       request_stream=f"RQ_wtasync_{tag}", reply_stream=f"RP_wtasync_{tag}")
    platform = make_platform(slurm_clusters(testbed), events=cfg)
    with platform.db.session() as session:
        acme = tenants.create_tenant(session, "acme", "enterprise")
        # names of their own: job directories on the test bed's shared storage outlive the test
        ops = accounts.create_user(session, "wtasync-ops")
        ops.tenant_id = acme.id
        project = tenants.create_project(session, acme, "wtasync-cfd", ops)
        accounts.top_up(session, project, "50.00", key=f"mq:{tag}")
        ops.default_account_id = project.id
        broke_user = accounts.create_user(session, "wtasync-broke")
        broke_user.tenant_id = acme.id
        broke = tenants.create_project(session, acme, "wtasync-empty", broke_user)
        broke_user.default_account_id = broke.id
        tokens = {"ops": accounts.issue_token(session, ops, "mq"), "broke": accounts.issue_token(session, broke_user)}
    yield platform, cfg, tokens, tag
    for stream in (cfg.stream, cfg.request_stream, cfg.reply_stream):
        delete_stream(url, stream)


def sacct_ids(testbed, name: str) -> list[str]:
    """The Slurm jobs of this name on alpha, as its accounting has them."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-a", "-S", "now-1days", "--name", name, "-o", "JobID"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.split() if line]


def test_a_job_by_message_on_slurm_from_request_to_output(bed, testbed):
    platform, cfg, tokens, tag = bed
    name = f"wtasync-{tag}"
    script = f"#!/bin/bash\n#SBATCH -J {name} -c 1 -t 2\necho computed $((6 * 7)) on $SLURM_CLUSTER_NAME\n"
    request = {"script": script, "args": ["-M", "alpha"], "idempotency_key": f"order-{tag}"}
    publish(cfg, "acme", request, tokens["ops"])
    assert len(JobRequests(platform).run_once().answered) == 1
    (reply,) = replies(cfg, "acme", request["idempotency_key"])  # what the tenant's system reads
    assert reply["created"] is True and "error" not in reply
    job_id = reply["job_id"]

    Submitter(platform, "alpha").submit_pass()
    poller, publisher = ClusterPoller(platform, "alpha"), EventPublisher(platform)
    subject = f"{cfg.subject_prefix}.acme.events.job.>"

    def ended_and_charged() -> list[dict] | None:  # followed on the event stream only, as a tenant would
        seen = [e for e in consume(cfg.nats_url, cfg.stream, subject, timeout=0.3) if e["subject"] == f"job/{job_id}"]
        states = [e["data"]["to"] for e in seen if e["type"] == "job.state_changed"]
        charged = any(e["type"] == "job.charged" for e in seen)
        return seen if charged and states and states[-1] == "COMPLETED" else None

    def step() -> None:
        poller.run_once()
        assert publisher.run_once().error == ""

    seen = poll_until(ended_and_charged, step=step, interval=1.0, timeout=180,
                      what="the job's end and charge on the event stream")
    states = [e["data"]["to"] for e in seen if e["type"] == "job.state_changed"]
    assert len(states) == len(set(states)) and states[0] == "SUBMITTING"  # each change once
    assert {"PENDING", "RUNNING"} & set(states), states  # a short job may end between two polls
    (charged,) = [e for e in seen if e["type"] == "job.charged"]
    assert charged["data"]["account"] == "wtasync-cfd" and Decimal(charged["data"]["amount"]) >= 0
    assert all(e["tenant"] == "acme" for e in seen)

    with EmbeddedServer(platform, run_services=False) as server, \
            ComputeNetClient(server.url, tokens["ops"]) as client:  # the results, through the API
        assert client.output(job_id).data == "computed 42 on alpha\n"
        assert client.job(job_id).state == "COMPLETED"

    publish(cfg, "acme", request, tokens["ops"])  # replayed, e.g. by a system that lost the reply
    assert JobRequests(platform).run_once().answered == [
        {"idempotency_key": request["idempotency_key"], "job_id": job_id, "created": False}]
    assert [r["job_id"] for r in replies(cfg, "acme", request["idempotency_key"])][-1] == job_id
    assert counts(platform)[0] == 1
    Submitter(platform, "alpha").submit_pass()  # nothing more to send
    assert len(sacct_ids(testbed, name)) == 1


def test_a_request_that_cannot_be_paid_is_refused_on_slurm_with_nothing_written(bed, testbed):
    platform, cfg, tokens, tag = bed
    name = f"wtasync-broke-{tag}"
    request = {"script": f"#!/bin/bash\n#SBATCH -J {name} -c 1 -t 2\necho never\n", "args": ["-M", "alpha"],
               "idempotency_key": f"broke-{tag}"}
    publish(cfg, "acme", request, tokens["broke"])
    (answer,) = JobRequests(platform).run_once().answered
    assert answer["error"]["status"] == 402 and answer["error"]["code"], answer
    assert replies(cfg, "acme", request["idempotency_key"])[-1]["error"]["status"] == 402
    assert counts(platform) == (0, 0)  # no job row, no hold
    assert Submitter(platform, "alpha").submit_pass() == 0
    assert sacct_ids(testbed, name) == []

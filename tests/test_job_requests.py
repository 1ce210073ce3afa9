"""Jobs by message (issue 20 item 3), against the real NATS JetStream on this machine: a tenant's
system publishes a job request with its API token; the platform answers on the replies stream with the
job or a refusal (the same rules as POST /jobs: nothing written when refused), a repeated key gets the
first job, and the job's life follows on the event stream."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from computenet.config import EventsConfig
from computenet.services.tenancy import accounts, tenants
from computenet.services.integration.event_publisher import EventPublisher
from computenet.services.jobs.job_requests import JobRequests
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.jobs.submitter import Submitter
from computenet.store.models import Job, Transfer

from conftest import local_cluster, poll_until, run_async
from events_nats import consume, delete_stream, nats_url_or_skip

SCRIPT = "#!/bin/bash\n#SBATCH -J by-message -t 5\necho computed $((6 * 7))\n"


@pytest.fixture
def network(make_platform):
    url = nats_url_or_skip()
    tag = uuid.uuid4().hex[:8]
    cfg = EventsConfig(nats_url=url, stream=f"EV_{tag}", subject_prefix=f"t{tag}", request_stream=f"RQ_{tag}",
                       reply_stream=f"RP_{tag}")
    platform = make_platform([local_cluster()], events=cfg)
    with platform.db.session() as session:
        acme, other = tenants.create_tenant(session, "acme", "enterprise"), tenants.create_tenant(session, "other", "enterprise")
        ops = accounts.create_user(session, "acme-ops")
        ops.tenant_id = acme.id
        project = tenants.create_project(session, acme, "acme-cfd", ops)
        accounts.top_up(session, project, "50.00", key=f"mq:{tag}")
        ops.default_account_id = project.id
        broke_user = accounts.create_user(session, "acme-broke")
        broke = tenants.create_project(session, acme, "acme-empty", broke_user)
        broke_user.default_account_id = broke.id
        tokens = {"ops": accounts.issue_token(session, ops, "mq"), "broke": accounts.issue_token(session, broke_user)}
        tenants.create_project(session, other, "other-lab", accounts.create_user(session, "other-pi"))
    yield platform, cfg, tokens
    for stream in (cfg.stream, cfg.request_stream, cfg.reply_stream):
        delete_stream(url, stream)


def publish(cfg: EventsConfig, tenant: str, body: dict | bytes, token: str | None) -> None:
    async def send() -> None:
        import nats

        from computenet.services.jobs.job_requests import ensure_streams

        nc = await nats.connect(cfg.nats_url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, cfg)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            await js.publish(f"{cfg.subject_prefix}.{tenant}.jobs.submit", data,
                             headers={"Authorization": f"Bearer {token}"} if token else None)
        finally:
            await nc.close()

    run_async(send())


def replies(cfg: EventsConfig, tenant: str, key: str) -> list[dict]:
    return consume(cfg.nats_url, cfg.reply_stream, f"{cfg.subject_prefix}.{tenant}.jobs.replies.{key}")


def counts(platform) -> tuple[int, int]:
    with platform.db.session() as session:
        return session.scalar(select(func.count(Job.id))), session.scalar(
            select(func.count(Transfer.id)).where(Transfer.kind == "hold"))


def test_a_job_by_message_is_answered_once_and_followed_on_the_event_stream(network):
    platform, cfg, tokens = network
    publish(cfg, "acme", {"script": SCRIPT, "idempotency_key": "run-1"}, tokens["ops"])
    answered = JobRequests(platform).run_once().answered
    assert len(answered) == 1 and answered[0]["created"] is True
    job_id = answered[0]["job_id"]
    assert [r["job_id"] for r in replies(cfg, "acme", "run-1")] == [job_id]

    publish(cfg, "acme", {"script": SCRIPT, "idempotency_key": "run-1"}, tokens["ops"])  # sent again
    again = JobRequests(platform).run_once().answered
    assert again == [{"idempotency_key": "run-1", "job_id": job_id, "created": False}]
    assert counts(platform)[0] == 1

    Submitter(platform, "local").submit_pass()  # then it runs, as any accepted job does
    poller = ClusterPoller(platform, "local")
    def settled() -> bool:
        with platform.db.session() as session:
            return session.get(Job, job_id).settled_at is not None

    poll_until(settled, step=poller.run_once, what="the job settled")
    EventPublisher(platform).run_once()
    events = consume(cfg.nats_url, cfg.stream, f"{cfg.subject_prefix}.acme.events.job.>")
    states = [e["data"]["to"] for e in events if e["type"] == "job.state_changed" and e["subject"] == f"job/{job_id}"]
    assert states[-1] == "COMPLETED" and ("PENDING" in states or "RUNNING" in states), states
    assert any(e["type"] == "job.charged" and e["subject"] == f"job/{job_id}" for e in events)
    assert consume(cfg.nats_url, cfg.stream, f"{cfg.subject_prefix}.other.events.>") == []  # scoped


@pytest.mark.parametrize("case", ["no token", "forged token", "other tenant", "cannot pay", "not json", "bad key"])
def test_a_refused_request_is_answered_with_its_problem_and_writes_nothing(network, case):
    platform, cfg, tokens = network
    tenant, token, body = "acme", tokens["ops"], {"script": SCRIPT, "idempotency_key": f"k-{len(case)}"}
    expected = {"no token": 401, "forged token": 401, "other tenant": 403, "cannot pay": 402, "not json": 400,
                "bad key": 400}[case]
    if case == "no token":
        token = None
    elif case == "forged token":
        token = "cnet_forged"
    elif case == "other tenant":
        tenant = "other"
    elif case == "cannot pay":
        token = tokens["broke"]
    elif case == "not json":
        body = b"\xff not json"
    elif case == "bad key":
        body = {"script": SCRIPT, "idempotency_key": "a.b"}
    before = counts(platform)
    publish(cfg, tenant, body, token)
    (answer,) = JobRequests(platform).run_once().answered
    assert answer["error"]["status"] == expected and answer["error"]["detail"], answer
    assert counts(platform) == before  # no job, no hold
    key = answer["idempotency_key"]
    assert replies(cfg, tenant, key)[-1]["error"]["status"] == expected

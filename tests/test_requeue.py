"""Requeue (issue 17): `cnet requeue`, and every run of a requeued job charged once.

sacct shows a requeued job's earlier runs only with --duplicates, each as a row of its own in state
REQUEUED with its own Submit time (fixtures sacct_requeued_*, captured on the test bed). The pure
parts run anywhere; the rest on the real Slurm test bed (`scripts/slurm-testbed start`).
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import timedelta
from decimal import ROUND_UP, Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from computenet.billing import funds, ledger
from computenet.cli.embedded import EmbeddedServer
from computenet.cli.main import app
from computenet.client import ApiError, ComputeNetClient
from computenet.clusters.slurm import commands, parsers
from computenet.domain.states import RUN_REQUEUED, JobState
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.jobs import jobs as job_service
from computenet.services.billing.enforcement import map_account
from computenet.services.jobs.poller import REQUEUED_DETAIL, ClusterPoller
from computenet.services.jobs.reroute import Rerouter
from computenet.store.types import utcnow
from computenet.store.models import Account, Charge, Job, Transfer, UsageRecordRow, User

from conftest import add_user, local_cluster, poll_until, slurm_clusters
from test_slurm_parsers import UTC, _adapter_with, at, fixture


# -- pure: argv and parsers on the test bed's real output ---------------------------------------

def test_requeue_argv_is_one_word_per_argument_and_only_a_job_id():
    assert commands.scontrol_requeue_argv("42") == ["scontrol", "requeue", "42"]
    assert commands.scontrol_requeue_argv("42_3") == ["scontrol", "requeue", "42_3"]
    for bad in ("", "-a", "42 43", "42;true", "all"):
        with pytest.raises(ValueError):
            commands.scontrol_requeue_argv(bad)


def test_sacct_is_asked_for_every_run_and_where_it_ran():
    captured = fixture("sacct_requeued_completed")["argv"]
    assert commands.sacct_argv(None, ["1"]) == captured
    assert "--duplicates" in commands.sacct_argv(at("2026-12-07T10:00:00"), tz=UTC)


def test_a_requeued_run_is_a_record_of_its_own_that_has_ended():
    ended, waiting = parsers.parse_sacct(fixture("sacct_requeued_pending")["stdout"], "alpha", UTC)
    assert ended.record_id == waiting.record_id == "2" and ended.submit != waiting.submit
    assert ended.requeued and ended.run_ended and not ended.is_final and ended.raw_state == "REQUEUED"
    assert (ended.start, ended.end, ended.elapsed_seconds) == (at("2026-12-07T10:24:08"), at("2026-12-07T10:24:10"), 2)
    assert ended.cpus == 1 and ended.node_list == "alpha-n1" and ended.comment == "computenet:h17a-probe2"
    # the run to come waits, placed nowhere yet; its Submit is the requeue's time
    assert waiting.state is JobState.PENDING and not waiting.requeued and not waiting.run_ended
    assert waiting.node_list is None and waiting.submit == at("2026-12-07T10:24:11")


def test_a_job_requeued_then_completed_has_both_runs():
    first, last = parsers.parse_sacct(fixture("sacct_requeued_completed")["stdout"], "alpha", UTC)
    assert first.requeued and first.run_ended and first.elapsed_seconds == 4
    assert last.is_final and last.state is JobState.COMPLETED and not last.requeued and last.elapsed_seconds == 4
    assert (first.node_list, last.node_list) == ("alpha-n1", "alpha-n1")


def test_status_from_accounting_is_the_last_run_and_says_where_it_ran():
    """Out of squeue, the job's state is its last run's: an earlier REQUEUED row must not keep a
    completed job 'live' (and unsettled) for ever, nor an ended run end a job that runs again."""
    adapter, _ = _adapter_with([(["squeue"], fixture("squeue_unknown_id")),
                                (["sacct"], fixture("sacct_requeued_completed"))])
    done = adapter.status(["1"])["1"]
    assert done.state is JobState.COMPLETED and done.end == at("2026-12-07T10:22:27")
    assert done.node_list == "alpha-n1"
    adapter, _ = _adapter_with([(["squeue"], fixture("squeue_unknown_id")),
                                (["sacct"], fixture("sacct_requeued_pending"))])
    assert adapter.status(["2"])["2"].state is JobState.UNKNOWN  # waits to run again: not ended


def test_slurm_refusals_are_told_apart():
    """What scontrol requeue said on the test bed (22.05) for a --no-requeue job, a pending one, an unknown id."""
    def refused(stderr):
        result = {"rc": 1, "stdout": "", "stderr": stderr}
        adapter, _ = _adapter_with([(["scontrol", "requeue"], result)])
        adapter.requeue("3")

    with pytest.raises(ValueError, match="--no-requeue"):
        refused("Requested operation is presently disabled for job 3\n")
    with pytest.raises(ValueError, match="pending execution"):
        refused("Job is pending execution for job 3\n")
    with pytest.raises(LookupError):
        refused("Invalid job id specified for job 3\n")


# -- the local executor refuses, by the option table's verdict -----------------------------------

def test_local_executor_refuses_a_requeue_with_the_reason(make_platform):
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "rq-local")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -t 5\nsleep 30\n", [], "l.sh")
        poller = ClusterPoller(platform, "local")
        poll_until(lambda: client.job(job.id).state == "RUNNING", step=poller.run_once, timeout=60, what="RUNNING")
        with pytest.raises(ApiError) as refused:
            client.requeue(job.id)
        assert refused.value.status == 409 and "the local executor never requeues a job" in refused.value.detail
        client.cancel(job.id)


def test_the_job_page_offers_requeue_for_a_running_job_and_shows_the_refusal(make_platform):
    from test_web_jobs import _csrf, _person, _signed_in

    platform = make_platform([local_cluster("local", slots=1)])
    li = _person(platform, "rq-li")
    with platform.db.session() as session:
        session.get(User, li).language = "zh-CN"
    busy = job_service.submit_job(platform, li, "#!/bin/bash\nsleep 60\n", [], "busy.sh")
    waiting = job_service.submit_job(platform, li, "#!/bin/bash\ntrue\n", [], "next.sh")
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: _state(platform, busy.id) == "RUNNING", step=poller.run_once, what="RUNNING")
    client = _signed_in(platform, "rq-li")
    page = client.get(f"/portal/jobs/{busy.id}").text
    assert 'action="/portal/jobs/%d/requeue"' % busy.id in page and "重新排队" in page
    assert 'action="/portal/jobs/%d/requeue"' % waiting.id not in client.get(f"/portal/jobs/{waiting.id}").text
    assert client.post(f"/portal/jobs/{busy.id}/requeue", data={}).status_code == 403  # CSRF first
    refused = client.post(f"/portal/jobs/{busy.id}/requeue", data={"csrf_token": _csrf(page)})
    # the service's refusal in the reader's language, the executor's reason as the option table gives it
    assert refused.status_code == 409 and "不能将作业" in refused.text
    assert "the local executor never requeues a job" in refused.text
    job_service.cancel_job(platform, li, busy.id)


def _state(platform, job_id: int) -> str:
    with platform.db.session() as session:
        return session.get(Job, job_id).state


def test_the_hold_grows_to_cover_the_ended_runs_and_one_more(make_platform):
    """funds.cover_next_run on a real hold: ended runs not yet posted (less interim charges) plus a
    whole new run; never smaller, once only, and the ledger stays consistent."""
    platform = make_platform([local_cluster()])
    user_id, _ = add_user(platform, "rq-hold", balance="100.00")
    job = job_service.submit_job(platform, user_id, "#!/bin/bash\n#SBATCH -t 10 --hold\ntrue\n", [], "h.sh")
    with platform.db.session() as session:
        stored = session.get(Job, job.id)
        first = session.get(Transfer, stored.hold_id)
        max_cents = ledger.cents(stored.max_cost.quantize(Decimal("0.01"), rounding=ROUND_UP))
        assert first.amount == max_cents
        assert funds.cover_next_run(session, stored, Decimal("0")) is None  # a run that cost nothing: enough
        stored.interim_charged = Decimal("0.50")  # posted already while the first run ran
        again = funds.cover_next_run(session, stored, Decimal("1.234"))
        assert again.amount == 74 + max_cents and stored.hold_id == again.id and not ledger.open_hold(session, first)
        assert funds.cover_next_run(session, stored, Decimal("1.234")) is None  # covered: nothing more
        assert accounts.ledger_problems(session) == []
    job_service.cancel_job(platform, user_id, job.id)


def _cnet(url: str, token: str, *args: str):
    return CliRunner().invoke(app, list(args), env={"COMPUTENET_URL": url, "COMPUTENET_TOKEN": token,
                                                    "COLUMNS": "200"})


def test_cnet_requeue_of_an_ended_or_unknown_job_says_why_and_exits_1(make_platform):
    platform = make_platform([local_cluster()])
    _, token = add_user(platform, "rq-cli")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit("#!/bin/bash\n#SBATCH -t 5\ntrue\n", [], "t.sh")
        poller = ClusterPoller(platform, "local")
        poll_until(lambda: client.job(job.id).state == "COMPLETED", step=poller.run_once, timeout=60,
                   what="COMPLETED")
        ended = _cnet(server.url, token, "requeue", str(job.id))
        assert ended.exit_code == 1
        assert f"job {job.id}: job {job.id} has ended (COMPLETED): it cannot be requeued" in ended.output
        unknown = _cnet(server.url, token, "requeue", "987654")
        assert unknown.exit_code == 1 and "no job 987654" in unknown.output


# -- on the real test bed -------------------------------------------------------------------------

def _slurm(testbed, *argv: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SLURM_CONF": testbed["SLURM_CONF_ALPHA"]}
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)


def _start_now(testbed, native_id: str) -> bool:
    """Slurm keeps a requeued batch job waiting for its old credential to expire (~2 min, reason
    BeginTime, set once the job is back in the queue): let it go now. True once it runs (or ran)."""
    state = _slurm(testbed, "squeue", "-h", "-t", "all", "-j", native_id, "-o", "%T").stdout.strip()
    if state == "PENDING":
        _slurm(testbed, "scontrol", "update", f"JobId={native_id}", "StartTime=now")
    return state in ("RUNNING", "COMPLETING", "COMPLETED")


def _hold_of(platform, job_id) -> Transfer | None:
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        return session.get(Transfer, job.hold_id) if job.hold_id else None


@pytest.mark.slurm
def test_a_requeued_job_is_charged_once_per_run_and_goes_back_to_pending(testbed, make_platform):
    platform = make_platform(slurm_clusters(testbed, poll=0.2))
    user_id, token = add_user(platform, f"rq-{uuid.uuid4().hex[:6]}", balance="50.00")
    poller = ClusterPoller(platform, "alpha")
    # the first run would sleep long; the second (SLURM_RESTART_COUNT=1) ends at once
    script = ("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 1 -t 5\n"
              "if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then sleep 120; else sleep 2; fi\n")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit(script, [], "rq.sh")
        first_hold = _hold_of(platform, job.id).amount
        poll_until(lambda: client.job(job.id).state == "RUNNING", step=poller.run_once, timeout=90, what="RUNNING")
        poll_until(lambda: client.job(job.id).start_time is not None, step=poller.run_once, timeout=30,
                   what="a start time")
        # let the first run last a few seconds by Slurm's clock, so it costs something
        poll_until(lambda: _slurm(testbed, "squeue", "-h", "-j", job.native_id, "-o", "%M").stdout.strip()
                   not in ("", "0:00", "0:01", "0:02"), timeout=30, what="the first run to last 3 s")
        assert client.requeue(job.id).state == "RUNNING"
        # no poll until sacct has the next run's record: without --duplicates only that one shows (a
        # poll in the second between would still see the REQUEUED row as the last; a real interval misses it)
        poll_until(lambda: _slurm(testbed, "sacct", "-n", "-X", "-P", "-j", job.native_id, "-o", "State")
                   .stdout.split() == ["PENDING"], timeout=30, interval=0.5, what="the next run's record")
        poll_until(lambda: client.job(job.id).state == "PENDING", step=poller.run_once, timeout=60,
                   what="PENDING after the requeue")
        # waiting again long after its predicted start, it is still not re-routed: it has run here
        with platform.db.session() as session:
            session.get(Job, job.id).predicted_start = utcnow() - timedelta(hours=2)
        assert Rerouter(platform).run_once().considered == 0
        poll_until(lambda: _start_now(testbed, job.native_id), timeout=60, interval=0.5,
                   what="the requeued job to start again")
        done = poll_until(lambda: (lambda j: j if j.settled else None)(client.job(job.id)), step=poller.run_once,
                          timeout=120, what="the job to complete and be settled")
        assert done.state == "COMPLETED" and done.node_list and done.node_list.startswith("alpha-n")
        states = [e.to_state for e in client.job(job.id).events]
        details = [e.detail for e in client.job(job.id).events]

    # the timeline: it ran, went back to the queue (saying why), ran again and completed
    collapsed = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
    ran = collapsed.index("RUNNING")
    back = collapsed.index("PENDING", ran)  # (COMPLETING in between, as squeue may show it)
    assert set(collapsed[ran:back]) <= {"RUNNING", "COMPLETING"} and collapsed[-1] == "COMPLETED", collapsed
    assert set(collapsed[back:]) <= {"PENDING", "RUNNING", "COMPLETING", "COMPLETED"}, collapsed
    # the move back to the queue says why
    assert details[states.index("PENDING", states.index("RUNNING"))] == REQUEUED_DETAIL
    assert "requeue requested by its owner" in details
    assert any(d.startswith("a run ended by requeue") for d in details)
    with platform.db.session() as session:
        rows = list(session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id)
                                    .order_by(UsageRecordRow.submit_time)))
        charges = {c.usage_record_id: c for c in session.scalars(select(Charge).where(Charge.job_id == job.id))}
        assert [r.state for r in rows] == [RUN_REQUEUED, "COMPLETED"]
        assert rows[0].record_id == rows[1].record_id and rows[0].submit_time < rows[1].submit_time
        assert sorted(charges) == sorted(r.id for r in rows)  # one charge per run, none twice
        assert charges[rows[0].id].core_seconds >= 3 and charges[rows[1].id].core_seconds >= 1
        total = sum((c.exact_amount if c.exact_amount is not None else c.amount) for c in charges.values())
        stored = session.get(Job, job.id)
        assert stored.settled_at is not None and not stored.needs_reconcile
        # the hold was grown for the second run, and settlement posted both runs against it
        assert session.get(Transfer, stored.hold_id).amount > first_hold
        assert accounts.ledger_problems(session) == []  # what `cnet admin check-ledger` checks
        now = funds.funds(session, session.get(Account, stored.account_id))
        assert now.held == 0 and abs((Decimal("50.00") - now.balance) - total) < Decimal("0.01")


@pytest.mark.slurm
def test_a_run_requeued_and_run_again_between_two_polls_is_not_lost(testbed, make_platform):
    """The poller meets the job running, then not again until its next run has started: sacct
    without --duplicates shows only that run, and the first would go unbilled."""
    platform = make_platform(slurm_clusters(testbed, poll=0.2))
    _, token = add_user(platform, f"rq-{uuid.uuid4().hex[:6]}", balance="50.00")
    poller = ClusterPoller(platform, "alpha")
    script = ("#!/bin/bash\n#SBATCH -M alpha -p cpu -c 1 -t 5\n"
              "if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then sleep 120; else sleep 4; fi\n")
    with EmbeddedServer(platform, run_services=False) as server, ComputeNetClient(server.url, token) as client:
        job = client.submit(script, [], "rq2.sh")
        poll_until(lambda: client.job(job.id).state == "RUNNING", step=poller.run_once, timeout=90, what="RUNNING")
        poll_until(lambda: _slurm(testbed, "squeue", "-h", "-j", job.native_id, "-o", "%M").stdout.strip()
                   not in ("", "0:00", "0:01", "0:02"), timeout=30, what="the first run to last 3 s")
        client.requeue(job.id)
        poll_until(lambda: _slurm(testbed, "squeue", "-h", "-j", job.native_id, "-o", "%T").stdout.strip()
                   == "PENDING", timeout=30, interval=0.5, what="the job back in Slurm's queue")
        poll_until(lambda: _start_now(testbed, job.native_id), timeout=60, interval=0.5,
                   what="the requeued job to start again")
        poll_until(lambda: _slurm(testbed, "sacct", "-n", "-X", "-P", "-j", job.native_id, "-o", "State")
                   .stdout.split() in (["RUNNING"], ["COMPLETED"]), timeout=30, interval=0.5,
                   what="the second run to start, unpolled")
        done = poll_until(lambda: (lambda j: j if j.settled else None)(client.job(job.id)), step=poller.run_once,
                          timeout=120, what="the job to complete and be settled")
        assert done.state == "COMPLETED"
    with platform.db.session() as session:
        rows = list(session.scalars(select(UsageRecordRow).where(UsageRecordRow.job_id == job.id)
                                    .order_by(UsageRecordRow.submit_time)))
        charged = set(session.scalars(select(Charge.usage_record_id).where(Charge.job_id == job.id)))
        assert [r.state for r in rows] == [RUN_REQUEUED, "COMPLETED"] and charged == {r.id for r in rows}
        assert accounts.ledger_problems(session) == []


@pytest.mark.slurm
def test_a_job_that_ended_between_two_polls_has_its_node_list_from_accounting(testbed, make_platform):
    """A direct sbatch that starts and ends before the poller first meets it: only sacct says where it ran."""
    platform = make_platform(slurm_clusters(testbed))
    poller = ClusterPoller(platform, "alpha")
    # a Slurm account of this test's own, mapped to a platform account (as the enforcement test's)
    _slurm(testbed, "sacctmgr", "-i", "add", "account", "cnetrq", "cluster=alpha", "description=t", "organization=t")
    _slurm(testbed, "sacctmgr", "-i", "add", "user", "root", "account=cnetrq", "cluster=alpha")
    with platform.db.session() as session:
        pi = accounts.create_user(session, f"rqn-{uuid.uuid4().hex[:6]}")
        lab = accounts.create_account(session, f"{pi.name}-lab", owner=pi)
        accounts.top_up(session, lab, "10.00", key=f"rqn:{uuid.uuid4()}")
        map_account(session, "alpha", "cnetrq", lab, audit.Who("ops", "test"))
    direct = _slurm(testbed, "sbatch", "--parsable", "-A", "cnetrq", "-t", "1", "--chdir=/tmp",
                    "--output=/dev/null", "--wrap", "sleep 1")
    assert direct.returncode == 0, direct.stderr
    native = direct.stdout.strip()
    adapter = platform.adapter("alpha")
    poll_until(lambda: any(r.is_final for r in adapter.accounting(None, [native])), timeout=60, interval=1,
               what="the direct job to end in accounting")

    def adopted():
        with platform.db.session() as session:
            return session.scalar(select(Job).where(Job.native_id == native, Job.origin == "direct",
                                                    Job.account_id == lab.id))

    job = poll_until(adopted, step=poller.run_once, timeout=60, what="the direct job to be adopted")
    assert JobState(job.state).is_terminal and job.node_list and job.node_list.startswith("alpha-n")

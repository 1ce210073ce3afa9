"""Issue 19 item 3: an accepted job (SUBMITTING, its hold taken) that its chosen cluster refuses at
submission goes to the next acceptable choice, the reason in its timeline; a refusal no cluster can
get round still withdraws it clearly, and its hold is released (services/jobs/submit_refusal.py).

Two local clusters; the first choice is made to refuse as sbatch would. On the Slurm test bed,
alpha really refuses (an account mapped there to a Slurm account that does not exist). Runs on SQLite and, with
COMPUTENET_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from computenet.billing import funds, ledger
from computenet.clusters.base import SubmitRejected
from computenet.config import Price
from computenet.domain.sbatch import platform_tag
from computenet.services.jobs.job_accept import accept_job
from computenet.services.jobs.submitter import Submitter
from computenet.store.models import Account, Cluster, Job, JobEvent, SlurmAccount, Transfer, User

from conftest import add_user, local_cluster, slurm_clusters

QUICK = "#!/bin/bash\n#SBATCH -t 5 -c 1\necho done\n"
PINNED = "#!/bin/bash\n#SBATCH -t 5 -c 1\n#SBATCH --clusters={cluster}\necho done\n"
WHY = "sbatch: error: Batch job submission failed: Required partition not available (inactive or drain)"


class Refusing:
    """A cluster's submit, made to refuse (or only counted); the requests it was given."""

    def __init__(self, platform, cluster: str, refuse: bool = True) -> None:
        self.adapter, self.refuse, self.tags = platform.adapters[cluster], refuse, []
        self.real = self.adapter.submit

    def __call__(self, request):
        self.tags.append(request.comment)
        if self.refuse:
            raise SubmitRejected(WHY)
        return self.real(request)

    def __enter__(self) -> "Refusing":
        self.adapter.submit = self
        return self

    def __exit__(self, *exc) -> None:
        self.adapter.submit = self.real


def two_clusters(make_platform):
    return make_platform([local_cluster("ra", slots=4), local_cluster("rb", slots=4)])


def where(platform, job_id) -> tuple[Job, str, list[str], Decimal]:
    """The job, its cluster's name, its timeline and what its account holds now."""
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        cluster = session.get(Cluster, job.cluster_id).name
        events = list(session.scalars(select(JobEvent.detail).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))
        account = session.get(Account, session.get(User, job.owner_id).default_account_id)
        return job, cluster, events, funds.funds(session, account).held


def test_a_job_its_first_choice_refuses_goes_to_the_next_with_the_reason_in_its_timeline(make_platform):
    platform = two_clusters(make_platform)
    user_id, _ = add_user(platform, "rr-moved")
    job_id = accept_job(platform, user_id, QUICK).job_id
    job, first, _, held_before = where(platform, job_id)
    second = "rb" if first == "ra" else "ra"
    old_hold = job.hold_id
    with Refusing(platform, first) as refusing, Refusing(platform, second, refuse=False) as taking:
        assert Submitter(platform, first).submit_pass() == 1
        job, cluster, events, held = where(platform, job_id)
        assert (cluster, job.state, job.native_id, job.submit_claim) == (second, "SUBMITTING", None, None)
        assert any(WHY in e and f"re-routed to {second}/" in e for e in events), events
        assert job.routing["refused_by"] == {first: f"{first} refused it: {WHY}"}
        assert held == held_before == job.max_cost  # one hold: the first one voided, the new one taken
        with platform.db.session() as session:
            assert not ledger.open_hold(session, session.get(Transfer, old_hold))
            assert job.hold_id != old_hold and ledger.open_hold(session, session.get(Transfer, job.hold_id))
        assert Submitter(platform, first).submit_pass() == 0  # not the refusing cluster's any more
        assert Submitter(platform, second).submit_pass() == 1
    with platform.db.session() as session:
        tag = platform_tag(job_id, session.get(Job, job_id).tag_nonce)
    assert refusing.tags == taking.tags == [tag]
    job, cluster, events, _ = where(platform, job_id)
    assert cluster == second and job.native_id is not None and job.state != "SUBMITTING"
    assert any(f"submitted to {second} as {job.native_id}" in e for e in events), events


def test_a_refusal_no_cluster_gets_round_withdraws_it_with_every_reason_and_releases_the_hold(make_platform):
    platform = two_clusters(make_platform)
    user_id, _ = add_user(platform, "rr-none")
    job_id = accept_job(platform, user_id, QUICK).job_id
    _, first, _, _ = where(platform, job_id)
    second = "rb" if first == "ra" else "ra"
    with Refusing(platform, first), Refusing(platform, second):
        Submitter(platform, first).submit_pass()
        Submitter(platform, second).submit_pass()
    job, cluster, events, held = where(platform, job_id)
    assert job.state == "CANCELLED" and job.settled_at is not None and job.native_id is None
    assert f"{first}: {first} refused it" in job.reason and f"{second} refused it" in job.reason, job.reason
    assert "no other cluster can take it" in job.reason
    assert held == 0


def test_a_job_pinned_to_the_refusing_cluster_is_withdrawn_not_moved(make_platform):
    platform = two_clusters(make_platform)
    user_id, _ = add_user(platform, "rr-pinned")
    job_id = accept_job(platform, user_id, PINNED.format(cluster="ra")).job_id
    assert where(platform, job_id)[1] == "ra"
    with Refusing(platform, "ra"), Refusing(platform, "rb", refuse=False) as other:
        Submitter(platform, "ra").submit_pass()
        Submitter(platform, "rb").submit_pass()
    job, cluster, _, held = where(platform, job_id)
    assert (cluster, job.state) == ("ra", "CANCELLED") and WHY in job.reason and held == 0
    assert other.tags == []


def test_a_job_the_account_cannot_hold_elsewhere_is_withdrawn(make_platform):
    """The next choice costs more than the account has: nothing moves, the hold is released."""
    dear = local_cluster("rb", slots=4).model_copy(update={"prices": {"*": Price(core_hour=Decimal("9000.00"))}})
    platform = make_platform([local_cluster("ra", slots=4), dear])
    user_id, _ = add_user(platform, "rr-poor", balance="10.00")
    job_id = accept_job(platform, user_id, QUICK).job_id
    assert where(platform, job_id)[1] == "ra"  # the cheap one
    with Refusing(platform, "ra"), Refusing(platform, "rb", refuse=False) as other:
        Submitter(platform, "ra").submit_pass()
        Submitter(platform, "rb").submit_pass()
    job, cluster, _, held = where(platform, job_id)
    assert (cluster, job.state) == ("ra", "CANCELLED") and WHY in job.reason and held == 0
    assert other.tags == []


@pytest.mark.slurm
def test_on_the_test_bed_a_job_alpha_refuses_for_its_account_goes_to_beta(testbed, make_platform):
    """sbatch on alpha really refuses: the job's account is mapped there to a Slurm account that does
    not exist ("Invalid account"), which beta, without that mapping, does not have."""
    platform = make_platform(slurm_clusters(testbed))
    user_id, _ = add_user(platform, "wtpoll-refused", balance="50.00")
    with platform.db.session() as session:
        alpha = session.scalar(select(Cluster).where(Cluster.name == "alpha"))
        account_id = session.get(User, user_id).default_account_id
        session.add(SlurmAccount(cluster_id=alpha.id, slurm_account="wtpoll_nosuch", account_id=account_id))
    job_id = accept_job(platform, user_id, "#!/bin/bash\n#SBATCH -c 1 -t 2 -J wt-poll-refused\nsleep 1\n").job_id
    assert where(platform, job_id)[1] == "alpha"  # the cheaper one
    Submitter(platform, "alpha").submit_pass()
    job, cluster, events, held = where(platform, job_id)
    assert (cluster, job.state) == ("beta", "SUBMITTING"), (cluster, job.state, job.reason)
    assert any("Invalid account" in e and "re-routed to beta/" in e for e in events), events
    assert held == job.max_cost
    Submitter(platform, "beta").submit_pass()
    job = where(platform, job_id)[0]
    assert job.native_id is not None and job.state in ("PENDING", "RUNNING", "COMPLETED"), (job.state, job.reason)
    platform.adapter("beta").cancel(job.native_id)  # leave the test bed as it was

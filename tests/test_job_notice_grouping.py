"""Quiet grouping of job-ended e-mails (issue 20 item 4): the notices of one person's jobs that end
within the grouping window go as one message (a count, then a line per job), in the reader's language,
through a real SMTP server; another person's go on their own; a lone job's mail stays as it was."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from computenet.cli.embedded import EmbeddedServer
from computenet.client import ComputeNetClient
from computenet.config import NotificationsConfig
from computenet.services.integration.delivery import Deliverer
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Delivery, Job, Notification, User
from computenet.workers.tasks import _reader_language
from mail_server import smtp_server  # noqa: F401 (a fixture)

from conftest import add_user, local_cluster, poll_until

SCRIPT = "#!/bin/bash\n#SBATCH -J sweep -t 5\necho point\n"


def _emailed(platform, name: str, email: str, language: str = "en") -> str:
    uid, token = add_user(platform, name)
    with platform.db.session() as session:
        user = session.get(User, uid)
        user.email, user.language, user.notify_job_ended = email, language, "email"
    return token


def _run(platform, client, n: int) -> list[int]:
    ids = [client.submit(SCRIPT).id for _ in range(n)]
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: all(client.job(i).settled for i in ids), step=poller.run_once, what=f"jobs {ids} to settle")
    return ids


def _deliveries_to(platform, email: str) -> list[int]:
    with platform.db.session() as session:
        return list(session.scalars(select(Delivery.id).join(Notification, Notification.id == Delivery.notification_id)
                                    .where(Delivery.target == email, Notification.kind == "job_ended")
                                    .order_by(Delivery.id)))


def _age(platform, delivery_ids: list[int]) -> None:
    """The grouping window is over for these (as if they were made two hours ago)."""
    with platform.db.session() as session:
        for d in session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))):
            d.created_at = d.next_attempt_at = d.created_at - timedelta(hours=2)


def test_one_message_for_a_burst_of_jobs_in_the_readers_language(make_platform, smtp_server):  # noqa: F811
    platform = make_platform([local_cluster()], notifications=NotificationsConfig(
        smtp_host="127.0.0.1", smtp_port=smtp_server.server_address[1], mail_from="jobs@centre.example",
        job_ended_group_s=3600))
    tokens = {"li": _emailed(platform, "li", "li@uni.example", "zh-CN"), "mo": _emailed(platform, "mo", "mo@uni.example")}
    with EmbeddedServer(platform, run_services=False) as srv:
        with ComputeNetClient(srv.url, tokens["li"]) as li:
            li_jobs = _run(platform, li, 3)
        with ComputeNetClient(srv.url, tokens["mo"]) as mo:
            (mo_job,) = _run(platform, mo, 1)
    deliverer = Deliverer(platform, say=_reader_language(platform))
    assert deliverer.run_once().sent == [] and smtp_server.parsed() == []  # within the window: quiet

    li_mail = _deliveries_to(platform, "li@uni.example")
    assert len(li_mail) == 3  # one notice per job, in the app as before
    _age(platform, li_mail[:1])  # the first one's window is over: the later ones go with it
    report = deliverer.run_once()
    assert sorted(report.sent) == li_mail and report.failed == []
    (mail,) = smtp_server.parsed()
    body = mail.get_content()
    assert mail["To"] == "li@uni.example" and "你的 3 个作业已结束" in mail["Subject"]
    assert all(f"作业 {job}（sweep）" in body for job in li_jobs) and body.count("花费") == 3
    assert "ended" not in body
    assert deliverer.run_once().sent == []  # sent once

    _age(platform, _deliveries_to(platform, "mo@uni.example"))  # alone: the one-job message, in English
    assert len(deliverer.run_once().sent) == 1
    mail = smtp_server.parsed()[-1]
    assert mail["To"] == "mo@uni.example" and mail["Subject"] == "[ComputeNet] job ended: mo-lab"
    assert mail.get_content().startswith(f"job {mo_job} (sweep) ended COMPLETED on local")


def test_without_a_window_each_pass_still_sends_one_message_per_reader(make_platform, smtp_server):  # noqa: F811
    platform = make_platform([local_cluster()], notifications=NotificationsConfig(
        smtp_host="127.0.0.1", smtp_port=smtp_server.server_address[1], job_ended_group_s=0))
    token = _emailed(platform, "nia", "nia@uni.example")
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as nia:
        jobs = _run(platform, nia, 2)
    report = Deliverer(platform).run_once()
    assert len(report.sent) == 2
    (mail,) = smtp_server.parsed()
    assert mail["Subject"] == "[ComputeNet] 2 of your jobs ended"
    assert all(f"- job {job} (sweep) ended COMPLETED" in mail.get_content() for job in jobs)


@pytest.mark.slurm
def test_a_job_array_on_slurm_is_one_message_not_one_per_task(testbed, make_platform, smtp_server):  # noqa: F811
    from computenet.services.jobs.jobs import submit_job

    from conftest import slurm_clusters

    platform = make_platform(slurm_clusters(testbed), notifications=NotificationsConfig(
        smtp_host="127.0.0.1", smtp_port=smtp_server.server_address[1], job_ended_group_s=0))
    _emailed(platform, "wtasync-arr", "arr@uni.example")  # a name of its own on the shared test bed
    with platform.db.session() as session:
        user_id = session.scalar(select(User.id).where(User.name == "wtasync-arr"))
    script = "#!/bin/bash\n#SBATCH -J wtasync-arr\nsleep $((SLURM_ARRAY_TASK_ID))\n"  # tasks end apart
    job = submit_job(platform, user_id, script, ["-M", "alpha", "--array=0-3", "-c", "1", "-t", "2"])
    poller, deliverer = ClusterPoller(platform, "alpha"), Deliverer(platform)
    sent: list[int] = []

    def settled() -> bool:  # e-mail goes out between the polls, as the worker's tasks interleave
        sent.extend(deliverer.run_once().sent)
        with platform.db.session() as session:
            return session.get(Job, job.id).settled_at is not None

    poll_until(settled, step=poller.run_once, interval=1.0, timeout=180, what=f"array job {job.id} to settle")
    for _ in range(3):  # more passes tell nothing more
        poller.run_once()
        sent.extend(deliverer.run_once().sent)
    assert len(sent) == 1
    (mail,) = smtp_server.parsed()
    assert mail["To"] == "arr@uni.example" and mail["Subject"] == "[ComputeNet] job ended: wtasync-arr-lab"
    assert mail.get_content().count(f"job {job.id} (wtasync-arr) ended COMPLETED on alpha") == 1

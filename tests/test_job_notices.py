"""Job-ended notices for people (issue 20 item 4): one per job when its charge is final, with state,
cluster and cost; in the portal and API by default, by e-mail (in the reader's language, through a
real SMTP server) when asked for, none when turned off; the preference over the API and the CLI."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from typer.testing import CliRunner

from computenet.client import ComputeNetClient
from computenet.config import NotificationsConfig
from computenet.services.integration.delivery import Deliverer
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Delivery, Notification, User
from computenet.workers.tasks import _reader_language
from mail_server import smtp_server  # noqa: F401 (a fixture)

from conftest import add_user, local_cluster, poll_until

SCRIPT = "#!/bin/bash\n#SBATCH -J sim-run -t 5\nsleep 1\n"


def _settled(platform, client, script=SCRIPT):
    poller = ClusterPoller(platform, "local")
    job = client.submit(script)
    poll_until(lambda: client.job(job.id).settled, step=poller.run_once, what=f"job {job.id} to settle")
    for _ in range(3):  # more passes tell nothing more
        poller.run_once()
    return client.job(job.id)


def _notices(platform, user_id):
    with platform.db.session() as session:
        return list(session.scalars(select(Notification).where(Notification.user_id == user_id,
                                                               Notification.kind == "job_ended")))


def test_a_settled_job_tells_its_owner_once_with_its_cost(platform, server):
    uid, token = add_user(platform, "nia")
    with ComputeNetClient(server.url, token) as client:
        job = _settled(platform, client)
        notices = _notices(platform, uid)
        assert len(notices) == 1
        assert notices[0].message == f"job {job.id} (sim-run) ended COMPLETED on local; it cost {job.cost} CNY."
        assert [n.kind for n in client.notifications()].count("job_ended") == 1
        with platform.db.session() as session:  # "app": nothing goes out by e-mail
            assert session.scalars(select(Delivery).where(Delivery.notification_id == notices[0].id)).all() == []


def test_turned_off_means_no_notice(platform, server):
    uid, token = add_user(platform, "oto")
    with ComputeNetClient(server.url, token) as client:
        assert client.set_notification_preferences("off").job_ended == "off"
        _settled(platform, client)
    assert _notices(platform, uid) == []


def test_by_email_in_the_readers_language(make_platform, smtp_server):  # noqa: F811
    from computenet.cli.embedded import EmbeddedServer

    platform = make_platform([local_cluster()], notifications=NotificationsConfig(
        smtp_host="127.0.0.1", smtp_port=smtp_server.server_address[1], mail_from="jobs@centre.example",
        job_ended_group_s=0))  # sent at once (grouping: test_job_notice_grouping.py)
    uid, token = add_user(platform, "li")
    with platform.db.session() as session:
        user = session.get(User, uid)
        user.email, user.language = "li@uni.example", "zh-CN"
    with EmbeddedServer(platform, run_services=False) as srv, ComputeNetClient(srv.url, token) as client:
        prefs = client.set_notification_preferences("email")
        assert (prefs.job_ended, prefs.email) == ("email", "li@uni.example")
        job = _settled(platform, client)
    report = Deliverer(platform, say=_reader_language(platform)).run_once()
    assert len(report.sent) == 1 and report.failed == []
    mail = smtp_server.parsed()[0]
    body = mail.get_content()
    assert mail["To"] == "li@uni.example" and mail["Subject"].startswith("[ComputeNet] ")
    assert f"作业 {job.id}（sim-run）" in body and "花费" in body and "ended" not in body


def test_a_preference_that_is_not_a_choice_is_refused(platform, server):
    _, token = add_user(platform, "pat")
    with ComputeNetClient(server.url, token) as client:
        answer = client.http.put("/notifications/preferences", json={"job_ended": "sms"})
        assert answer.status_code == 422 and answer.json()["code"] == "validation_failed"
        assert client.notification_preferences().job_ended == "app"


def test_cnet_notifications_job_ended(platform, server, monkeypatch):
    from computenet.cli.main import app

    _, token = add_user(platform, "cli")
    monkeypatch.setenv("COMPUTENET_URL", server.url)
    monkeypatch.setenv("COMPUTENET_TOKEN", token)
    runner = CliRunner()
    done = runner.invoke(app, ["notifications", "--job-ended", "email"])
    assert done.exit_code == 0 and "job-ended notices: email" in done.output
    assert "no e-mail address on file" in done.output
    bad = runner.invoke(app, ["notifications", "--job-ended", "pigeon"])
    assert bad.exit_code == 1 and "use off, app or email" in bad.output

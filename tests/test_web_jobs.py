"""The portal's jobs area (issue 15): the list with filters, sort, keyset pages and live rows; a job's page
with its output, routing, efficiency and charge; cancel, hold, release and resubmit by form (CSRF first);
another user's job is "not found"; bad filter values are a 400 naming the value. Real jobs run on the
local executor; the browser test watches one finish without a reload, in English and Chinese."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.jobs import jobs as job_service
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.signin import passwords
from computenet.store.models import Account, Cluster, Job, JobEvent, User

from browser import axe, new_page, shot, sign_in
from conftest import local_cluster, poll_until

GOOD = "Correct-Horse-7"
HELLO = "#!/bin/bash\necho 'hello <b>portal</b>'\necho oops >&2\n"


def _person(platform, name: str, account: str | None = None) -> int:
    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        acc = accounts.create_account(session, account or f"{name}-lab", owner=user)
        accounts.top_up(session, acc, "100.00", key=f"web-jobs:{name}")
        passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        return user.id


def _signed_in(platform, name: str) -> TestClient:
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def _row(platform, user_id: int, state: str = "COMPLETED", cluster: str = "local", account: str | None = None,
         app: str | None = None, submitted: datetime | None = None, name: str = "row") -> int:
    """A job row as the poller leaves it (for list tests, where running hundreds of jobs adds nothing)."""
    with platform.db.session() as session:
        owner = session.get(User, user_id)
        acc = session.scalar(select(Account).where(Account.name == (account or f"{owner.name}-lab")))
        job = Job(owner_id=user_id, account_id=acc.id,
                  cluster_id=session.scalar(select(Cluster.id).where(Cluster.name == cluster)),
                  partition=cluster, name=name, state=state, spec={}, script="#!/bin/bash\ntrue\n", workdir="/tmp",
                  stdout_path="", stderr_path="", cores=1,
                  app={"name": app, "version": "1"} if app else None,
                  submitted_at=submitted or datetime.now(timezone.utc))
        session.add(job)
        session.flush()
        return job.id


def _ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/portal/jobs/(\d+)">', html)]


@pytest.fixture
def two(make_platform):
    return make_platform([local_cluster("local"), local_cluster("edge")])


def test_filters_narrow_the_list_and_keep_each_other(two):
    li = _person(two, "li")
    with two.db.session() as session:
        accounts.create_account(session, "md-lab", owner=session.get(User, li))
    day = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    done = _row(two, li, "COMPLETED", submitted=day)
    running = _row(two, li, "RUNNING", cluster="edge", submitted=day + timedelta(days=1))
    lammps = _row(two, li, "FAILED", account="md-lab", app="lammps", submitted=day + timedelta(days=2))
    client = _signed_in(two, "li")
    assert _ids(client.get("/portal/jobs").text) == [lammps, running, done]
    assert _ids(client.get("/portal/jobs?state=running").text) == [running]
    assert _ids(client.get("/portal/jobs?state=ended").text) == [lammps, done]
    assert _ids(client.get("/portal/jobs?cluster=edge").text) == [running]
    assert _ids(client.get("/portal/jobs?account=md-lab").text) == [lammps]
    assert _ids(client.get("/portal/jobs?app=lammps").text) == [lammps]
    assert _ids(client.get("/portal/jobs?submitted_from=2026-03-11&submitted_to=2026-03-11").text) == [running]
    both = client.get("/portal/jobs?state=ended&submitted_to=2026-03-10&sort=state&order=asc").text
    assert _ids(both) == [done]
    # a sort link keeps the filters, and a filter form keeps the sort
    assert "/portal/jobs?state=ended&amp;submitted_to=2026-03-10&amp;sort=cost&amp;order=desc" in both
    assert '<option value="state" selected>' in both and '<option value="asc" selected>' in both


def test_sort_and_keyset_pages(platform):
    li = _person(platform, "li")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    made = [_row(platform, li, "COMPLETED" if i % 3 else "FAILED", submitted=start + timedelta(hours=i))
            for i in range(30)]
    client = _signed_in(platform, "li")
    first = client.get("/portal/jobs?state=ended").text
    assert _ids(first) == made[::-1][:25]
    after = re.search(r'href="(/portal/jobs\?[^"]*after=(\d+)[^"]*)" rel="next"', first)
    assert int(after.group(2)) == made[5] and "state=ended" in after.group(1)
    second = client.get(after.group(1).replace("&amp;", "&")).text
    assert _ids(second) == made[::-1][25:] and 'rel="next"' not in second
    by_state = _ids(client.get("/portal/jobs?sort=state&order=asc").text)
    completed, failed = [j for i, j in enumerate(made) if i % 3], [j for i, j in enumerate(made) if i % 3 == 0]
    assert by_state == (completed + failed)[:25]  # by state, then by id: ties never change places
    last = by_state[-1]
    assert _ids(client.get(f"/portal/jobs?sort=state&order=asc&after={last}").text) == (completed + failed)[25:]


@pytest.mark.parametrize("query, named", [
    ("state=BOGUS", "'BOGUS'"), ("submitted_from=2026-13-01", "'2026-13-01'"), ("sort=size", "'size'"),
    ("order=up", "'up'"), ("after=abc", "'abc'"), ("cluster=nowhere", "'nowhere'"),
    ("account=%3Cb%3Eno", "'<b>no'"), ("app=" + "a" * 150, "longer than 128 characters"),
    ("submitted_from=2026-03-02&submitted_to=2026-03-01", "2026-03-02"),
])
def test_a_bad_filter_value_is_a_400_naming_it(platform, query, named):
    _person(platform, "li")
    answer = _signed_in(platform, "li").get(f"/portal/jobs?{query}")
    assert answer.status_code == 400 and named in html.unescape(answer.text)
    assert "text/html" in answer.headers["content-type"] and "<b>no" not in answer.text  # escaped


def test_another_users_job_cannot_anchor_a_page(platform):
    _person(platform, "li")
    other = _row(platform, _person(platform, "wang"))
    answer = _signed_in(platform, "li").get(f"/portal/jobs?after={other}")
    assert answer.status_code == 400 and f"no job {other}" in answer.text


def test_live_rows_poll_while_a_job_is_live_and_stop_when_all_ended(platform):
    li = _person(platform, "li")
    ended = _row(platform, li, "COMPLETED")
    live = _row(platform, li, "RUNNING")
    client = _signed_in(platform, "li")
    rows = client.get("/portal/jobs/rows?state=&sort=cost")
    assert rows.status_code == 200 and rows.text.lstrip().startswith("<tbody")
    assert 'hx-trigger="every 3s"' in rows.text and 'hx-get="/portal/jobs/rows?sort=cost"' in rows.text
    with platform.db.session() as session:
        session.get(Job, live).state = "COMPLETED"
    rows = client.get("/portal/jobs/rows?sort=cost").text
    assert "hx-get" not in rows and "<html" not in rows and _ids(rows) == [live, ended]


def _run(platform, user_id: int, script: str = HELLO) -> int:
    job = job_service.submit_job(platform, user_id, script, [], "hello.sh")
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: _job(platform, job.id).settled_at, step=poller.run_once, what="job to be settled")
    return job.id


def _job(platform, job_id: int) -> Job:
    with platform.db.session() as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def test_a_finished_jobs_page_shows_its_output_routing_and_charge(platform):
    li = _person(platform, "li")
    job_id = _run(platform, li)
    client = _signed_in(platform, "li")
    page = client.get(f"/portal/jobs/{job_id}").text
    stdout = re.search(r'<pre class="log" id="stdout-log"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert stdout == "hello &lt;b&gt;portal&lt;/b&gt;\noops\n"  # escaped, never markup; stderr too (one file)
    assert 'id="stderr-log"' not in page
    assert "state-completed" in page and "local/local" in page and "(chosen)" in page
    assert "Final charge" in page and "¥" in page
    assert 'hx-get="/portal/jobs/%d/status"' % job_id not in page  # ended and settled: nothing polls
    assert "/log?stream=stdout" not in page  # the whole log is there: no more to ask for
    # a piece from an offset: appended to the log, and no poller once the job has ended
    piece = client.get(f"/portal/jobs/{job_id}/log?stream=stdout&offset=6").text
    assert 'hx-swap-oob="beforeend:#stdout-log"' in piece and "&lt;b&gt;portal" in piece and "hx-get" not in piece
    assert client.get(f"/portal/jobs/{job_id}/log?stream=passwd&offset=0").status_code == 400
    assert client.get(f"/portal/jobs/{job_id}/log?stream=stdout&offset=-1").status_code == 400
    assert client.get(f"/portal/jobs/{job_id}/log?stream=stdout&offset={2**63}").status_code == 400
    zh = client.get(f"/portal/jobs/{job_id}", headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 200


def test_a_live_jobs_page_polls_its_state_and_log(platform):
    li = _person(platform, "li")
    job = job_service.submit_job(platform, li, "#!/bin/bash\nsleep 30\n", [], "slow.sh")
    client = _signed_in(platform, "li")
    page = client.get(f"/portal/jobs/{job.id}").text
    assert f'hx-get="/portal/jobs/{job.id}/status"' in page
    assert f'hx-get="/portal/jobs/{job.id}/log?stream=stdout&amp;offset=0"' in page
    status = client.get(f"/portal/jobs/{job.id}/status").text
    assert status.lstrip().startswith('<section id="job-status"') and "Cancel" in status
    job_service.cancel_job(platform, li, job.id)


def test_cancel_by_form_needs_the_csrf_token(platform):
    li = _person(platform, "li")
    job = job_service.submit_job(platform, li, "#!/bin/bash\nsleep 60\n", [], "slow.sh")
    stranger = TestClient(create_app(platform), follow_redirects=False)
    assert stranger.post(f"/portal/jobs/{job.id}/cancel", data={}).headers["location"].startswith("/login?next=")
    client = _signed_in(platform, "li")
    poller = ClusterPoller(platform, "local")
    assert client.post(f"/portal/jobs/{job.id}/cancel", data={}).status_code == 403
    assert client.post(f"/portal/jobs/{job.id}/cancel", data={"csrf_token": "x" * 43}).status_code == 403
    poller.run_once()
    assert _job(platform, job.id).state in ("PENDING", "RUNNING")
    token = _csrf(client.get(f"/portal/jobs/{job.id}").text)
    done = client.post(f"/portal/jobs/{job.id}/cancel", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == f"/portal/jobs/{job.id}?done=cancel"
    poll_until(lambda: _job(platform, job.id).state == "CANCELLED", step=poller.run_once, what="cancel")


def test_another_users_job_is_not_found(platform):
    li = _person(platform, "li")
    job_id = _row(platform, li, "RUNNING")
    _person(platform, "wang")
    wang = _signed_in(platform, "wang")
    token = _csrf(wang.get("/portal/jobs").text)
    for url in (f"/portal/jobs/{job_id}", f"/portal/jobs/{job_id}/status", f"/portal/jobs/{job_id}/log",
                "/portal/jobs/99999999", "/portal/jobs/x1"):
        answer = wang.get(url)
        assert answer.status_code == 404 and "No such job" in answer.text, url
    for action in ("cancel", "hold", "release", "requeue", "resubmit"):
        assert wang.post(f"/portal/jobs/{job_id}/{action}", data={"csrf_token": token}).status_code == 404
    assert _ids(wang.get("/portal/jobs").text) == []
    with platform.db.session() as session:
        assert session.scalar(select(JobEvent).where(JobEvent.job_id == job_id)) is None


def test_hold_and_release_a_waiting_job(make_platform):
    platform = make_platform([local_cluster("local", slots=1)])
    li = _person(platform, "li")
    busy = job_service.submit_job(platform, li, "#!/bin/bash\nsleep 60\n", [], "busy.sh")
    waiting = job_service.submit_job(platform, li, "#!/bin/bash\ntrue\n", [], "next.sh")
    poller = ClusterPoller(platform, "local")
    poll_until(lambda: _job(platform, busy.id).state == "RUNNING", step=poller.run_once, what="first job to run")
    client = _signed_in(platform, "li")
    token = _csrf(client.get(f"/portal/jobs/{waiting.id}").text)
    assert client.post(f"/portal/jobs/{waiting.id}/hold", data={}).status_code == 403
    assert 'action="/portal/jobs/%d/release"' % waiting.id not in client.get(f"/portal/jobs/{waiting.id}").text
    assert client.post(f"/portal/jobs/{waiting.id}/hold", data={"csrf_token": token}).status_code == 303
    page = client.get(f"/portal/jobs/{waiting.id}").text  # held: Release is offered, Hold is not
    assert 'action="/portal/jobs/%d/release"' % waiting.id in page and '/%d/hold"' % waiting.id not in page
    # a running job is not held (pause would suspend it): a 409 that says why
    refused = client.post(f"/portal/jobs/{busy.id}/hold", data={"csrf_token": token})
    assert refused.status_code == 409 and "only a waiting (PENDING) job" in refused.text
    job_service.cancel_job(platform, li, busy.id)
    poll_until(lambda: _job(platform, busy.id).state == "CANCELLED", step=poller.run_once, what="first job to end")
    for _ in range(3):
        poller.run_once()
    assert _job(platform, waiting.id).state == "PENDING"  # held: the free slot does not start it
    assert client.post(f"/portal/jobs/{waiting.id}/release", data={"csrf_token": token}).status_code == 303
    poll_until(lambda: _job(platform, waiting.id).state == "COMPLETED", step=poller.run_once, what="released job")
    with platform.db.session() as session:
        details = [e.detail for e in session.scalars(select(JobEvent).where(JobEvent.job_id == waiting.id))]
    assert "held by its owner" in details and "released by its owner" in details


def test_resubmit_runs_the_same_script_as_a_new_job(platform):
    li = _person(platform, "li")
    job_id = _run(platform, li)
    client = _signed_in(platform, "li")
    token = _csrf(client.get(f"/portal/jobs/{job_id}").text)
    assert client.post(f"/portal/jobs/{job_id}/resubmit", data={}).status_code == 403
    answer = client.post(f"/portal/jobs/{job_id}/resubmit", data={"csrf_token": token})
    new_id = int(re.fullmatch(r"/portal/jobs/(\d+)\?done=resubmit", answer.headers["location"]).group(1))
    assert new_id != job_id
    new, old = _job(platform, new_id), _job(platform, job_id)
    assert new.script == old.script and new.account_id == old.account_id and new.name == old.name
    job_service.cancel_job(platform, li, new_id)


def test_a_job_is_watched_to_its_end_in_a_browser_in_both_languages_and_on_a_phone(platform, chromium):
    li = _person(platform, "li")
    _row(platform, li, "FAILED", app="lammps", name="earlier")
    with EmbeddedServer(platform, run_services=True) as server:
        for language, locale in (("en", "en-US"), ("zh-CN", "zh-CN")):
            with platform.db.session() as session:
                session.get(User, li).language = language
            job = job_service.submit_job(platform, li, "#!/bin/bash\nsleep 4\necho finished-$SLURM_JOB_ID\n", [],
                                         "watch.sh")
            page = new_page(chromium, server.url, locale=locale)
            sign_in(page, "li", GOOD)
            page.goto(f"/portal/jobs/{job.id}")
            assert page.locator("#job-status h2 .state-completed").count() == 0
            page.evaluate("() => { window.notReloaded = true; }")
            page.wait_for_selector("#job-status h2 .state-completed", timeout=40_000)  # htmx, no reload
            page.wait_for_function("() => document.querySelector('#stdout-log').textContent.includes('finished-')",
                                   timeout=20_000)
            assert page.evaluate("() => window.notReloaded") is True
            assert page.locator("#stdout-log").inner_text().strip() == f"finished-{_job(platform, job.id).native_id}"
            assert axe(page) == []
            shot(page, f"job-{language}")
            page.goto("/portal/jobs")
            assert page.locator("tbody#job-rows tr").count() == (2 if language == "en" else 3)
            assert axe(page) == []
            shot(page, f"jobs-{language}")
            page.context.close()
            phone = new_page(chromium, server.url, locale=locale, phone=True)
            sign_in(phone, "li", GOOD)
            phone.goto("/portal/jobs")
            assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
            shot(phone, f"jobs-{language}-phone")
            phone.goto(f"/portal/jobs/{job.id}")
            shot(phone, f"job-{language}-phone")
            assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
            phone.context.close()

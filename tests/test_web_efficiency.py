"""The efficiency page (issue 15; `cnet efficiency` in the portal): the user's own ended jobs with their
CPU, memory and GPU efficiency and what the unused share cost, filtered by project and end date, with a
chart; the job page's findings in the reader's language. Real jobs on the local executor, samples as
the agent stores them."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from html import unescape

import pytest
from fastapi.testclient import TestClient

from computenet.api.app import create_app
from computenet.cli.embedded import EmbeddedServer
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.monitoring import monitoring
from computenet.services.jobs.jobs import submit_job
from computenet.services.jobs.poller import ClusterPoller
from computenet.services.signin import passwords
from computenet.store.models import Job, JobSample
from computenet.web.i18n import Formats

from browser import axe, new_page, shot, sign_in
from conftest import poll_until

GOOD = "Correct-Horse-7"


def _ended_job(platform, user_id: int, account: str, name: str) -> int:
    """A 4-core job that ran and was charged, with samples showing a tenth of one core busy."""
    job = submit_job(platform, user_id, "#!/bin/bash\nsleep 2\n", ["-c", "4", "-t", "5", "-J", name, "-A", account])
    poller = ClusterPoller(platform, "local")

    def settled():
        with platform.db.session() as session:
            return session.get(Job, job.id).settled_at is not None
    poll_until(settled, step=poller.run_once, what="the job to be charged")
    with platform.db.session() as session:
        ran = session.get(Job, job.id)
        start, end = ran.start_time.timestamp(), ran.end_time.timestamp()
        count = 5
        session.add_all([JobSample(job_id=job.id, t=start + (end - start) * i / (count - 1), seq=i,
                                   cpu_s=0.1 * (end - start) * i / (count - 1), cores=0.1, rss=10**8, read_bytes=0,
                                   write_bytes=0, nproc=1, nthreads=1, gpus=[]) for i in range(count)])
    return job.id


@pytest.fixture
def ran(platform):
    """li ran one job in li-lab and one in the project proj; bo, another user, one of his own."""
    with platform.db.session() as session:
        li, bo = accounts.create_user(session, "li"), accounts.create_user(session, "bo")
        for user in (li, bo):
            passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        for name, owner in (("li-lab", li), ("proj", li), ("bo-lab", bo)):
            accounts.top_up(session, accounts.create_account(session, name, owner=owner), "100.00", key=f"eff:{name}")
        li_id, bo_id = li.id, bo.id
    jobs = {"own": _ended_job(platform, li_id, "li-lab", "own"), "proj": _ended_job(platform, li_id, "proj", "inproj"),
            "bo": _ended_job(platform, bo_id, "bo-lab", "theirs")}
    return li_id, jobs


def _signed_in(platform, name: str = "li", language: str = "en-US") -> TestClient:
    client = TestClient(create_app(platform), follow_redirects=False, headers={"Accept-Language": language})
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


def _rows(html: str) -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r'<tr data-job="(\d+)">(.*?)</tr>', html, re.S)}


def test_the_page_lists_own_ended_jobs_with_their_figures(platform, ran):
    li_id, jobs = ran
    html = _signed_in(platform).get("/portal/efficiency").text
    rows = _rows(html)
    assert set(rows) == {jobs["own"], jobs["proj"]}  # bo's job is not li's
    fmt = Formats("en", platform.settings.currency, platform.settings.display_timezone)
    with platform.db.session() as session:
        stats = monitoring.analyse(session, platform, session.get(Job, jobs["own"]))
    assert stats["findings"] and Decimal(stats["wasted"]) > 0
    row = rows[jobs["own"]]
    assert fmt.money(stats["price"]) in row and f'class="num wasted">{fmt.money(stats["wasted"])}<' in row
    cpu = stats["efficiency"]["cpu_efficiency"]
    assert f">{fmt.number(cpu * 100, 0)}%<" in row
    chart = json.loads(unescape(re.search(r"data-chart='([^']+)'", html).group(1)))
    assert chart["xAxis"]["data"] == [str(j) for j in sorted((jobs["own"], jobs["proj"]))]  # oldest left
    assert [s["type"] for s in chart["series"]] == ["bar", "bar", "bar", "line"]
    assert "/portal/efficiency" in html  # in the navigation


def test_filters_by_project_and_end_date(platform, ran):
    _, jobs = ran
    client = _signed_in(platform)
    assert set(_rows(client.get("/portal/efficiency?project=proj").text)) == {jobs["proj"]}
    assert _rows(client.get("/portal/efficiency?from=2000-01-01&to=2000-01-31").text) == {}
    assert set(_rows(client.get("/portal/efficiency?from=2000-01-01").text)) == {jobs["own"], jobs["proj"]}


@pytest.mark.parametrize("query, status, says", [
    ("?from=yesterday", 400, "A date is written as YYYY-MM-DD."),
    ("?from=2026-02-01&to=2026-01-01", 400, "must be before --to"),
    ("?project=bo-lab", 400, "no project &#39;bo-lab&#39; of yours"),
])
def test_bad_filters_say_what_is_wrong(platform, ran, query, status, says):
    answer = _signed_in(platform).get("/portal/efficiency" + query)
    assert answer.status_code == status and says in answer.text, answer.text[-1500:]
    assert _rows(answer.text) == {}


def test_the_page_and_a_finding_in_chinese_in_a_browser(platform, ran, chromium):
    _, jobs = ran
    with EmbeddedServer(platform, run_services=False) as server:
        for locale, language in (("en-US", "en"), ("zh-CN", "zh-CN")):
            page = new_page(chromium, server.url, locale=locale)
            sign_in(page, "li", GOOD)
            page.goto("/portal/efficiency")
            page.wait_for_selector(".chart svg")  # ECharts drew it
            assert axe(page) == []
            shot(page, f"efficiency-{language}")
            if language == "zh-CN":
                assert "您的作业效率" in page.inner_text("h1")
                page.goto(f"/portal/jobs/{jobs['own']}")
                findings = page.locator("ul.findings").inner_text()
                assert re.search(r"[\u4e00-\u9fff]", findings) and "¥" in findings, findings
                assert not re.search(r"\b(cores|request|The job)\b", findings), findings
                assert axe(page) == []
                shot(page, "job-findings-zh-CN")
            page.context.close()

"""Journey 1 of the portal (issue 15), in a real browser, in English and in Chinese (journey 5): a new
user signs in, uploads an input, runs LAMMPS from the application centre, watches the job end without
reloading, reads its output, sees its efficiency and the charge on the month's statement, and
downloads the statement as a PDF; then the job list and job page at phone size.

Everything is done through the portal's pages in Chromium, against a server with its background
services running (pollers, sampling, settlement) on the local executor.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources

import pytest

from computenet.cli.embedded import EmbeddedServer
from computenet.config import MonitoringConfig, Price
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.signin import passwords

from browser import axe, new_page, shot, sign_in
from conftest import local_cluster, poll_until

PASSWORD = "Correct-Horse-7"
WORDS = {"en": {"COMPLETED": "COMPLETED", "Efficiency": "Efficiency"},
         "zh-CN": {"COMPLETED": "已完成", "Efficiency": "效率"}}


@pytest.fixture
def site(make_platform):
    platform = make_platform([local_cluster(tags=["stand-in"])],
                             monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=1.0))
    with EmbeddedServer(platform, run_services=True) as server:
        yield platform, server


def _newcomer(platform, name: str, language: str) -> None:
    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        user.language = language
        account = accounts.create_account(session, f"{name}-lab", owner=user)
        accounts.top_up(session, account, "100.00", key=f"journey:{name}")
        passwords.set_password(session, audit.SYSTEM, user, PASSWORD, platform.settings.auth)


def _no_serious_problems(page, where: str) -> None:
    problems = axe(page)
    assert problems == [], f"{where}: {problems}"


@pytest.fixture
def slurm_site(testbed, make_platform):
    """The same on the two-cluster Slurm test bed (both run the apps' stand-ins)."""
    from conftest import slurm_clusters

    clusters = slurm_clusters(testbed)
    for cluster in clusters:  # at the local test price: a few seconds' run costs cents, not a fraction
        cluster.tags = ["stand-in"]
        cluster.prices = {"*": Price(core_hour=Decimal("36.00"))}
    platform = make_platform(clusters, monitoring=MonitoringConfig(interval_s=0.5, collect_every_s=1.0))
    with EmbeddedServer(platform, run_services=True) as server:
        yield platform, server


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_new_user_runs_lammps_from_the_portal_and_finds_the_charge_on_the_statement(site, chromium, tmp_path,
                                                                                      language):
    platform, server = site
    _journey(platform, server, chromium, tmp_path, language, "newbie" if language == "en" else "xinren")


@pytest.mark.slurm
def test_the_same_journey_on_the_slurm_test_bed(slurm_site, chromium, tmp_path):
    platform, server = slurm_site
    _journey(platform, server, chromium, tmp_path, "en", "slurmer", suffix="-slurm")


def _journey(platform, server, chromium, tmp_path, language: str, name: str, suffix: str = "") -> None:
    _newcomer(platform, name, language)
    words = WORDS[language]
    page = new_page(chromium, server.url, locale=language)
    sign_in(page, name, PASSWORD)
    shot(page, f"journey1{suffix}-dashboard-{language}")

    # 1. upload the input into the own workspace
    local_input = tmp_path / "in.lj"
    local_input.write_text(resources.files("computenet.samples").joinpath("in.lj").read_text())
    page.goto("/portal/files?path=~")
    page.set_input_files("#upload-files", str(local_input))
    page.locator("table").get_by_text("in.lj", exact=True).wait_for(timeout=30_000)
    shot(page, f"journey1{suffix}-files-{language}")

    # 2. run LAMMPS from the application centre's form
    page.goto("/portal/apps/lammps")
    _no_serious_problems(page, "app page")
    page.fill("#p_input", "in.lj")
    page.fill("#p_steps", "5000")  # a few seconds: long enough to be sampled
    page.select_option("#p_size", "small")
    shot(page, f"journey1{suffix}-app-{language}")
    page.click("#run-button")
    page.wait_for_url(re.compile(r"/portal/jobs/\d+"))
    job_id = int(re.search(r"/portal/jobs/(\d+)", page.url).group(1))

    # 3. watch it end without reloading the page, and read its output
    page.evaluate("() => { window.__stillTheSamePage = true; }")
    page.locator("#state-h .state").get_by_text(words["COMPLETED"], exact=True).wait_for(timeout=90_000)
    page.locator("pre.log").first.wait_for()
    assert page.evaluate("() => window.__stillTheSamePage === true"), "the page was reloaded"
    assert page.locator("pre.log").first.inner_text().strip(), "no output shown"
    shot(page, f"journey1{suffix}-job-{language}")

    # 4. its efficiency (samples come in as the job runs) and the files it produced (fetched back into
    # the workspace after it ends), on the job page once they are in
    def efficiency_and_files_shown() -> bool:
        page.reload()
        efficiency = page.locator("section[aria-labelledby=eff-h]").inner_text()
        files = page.locator("section[aria-labelledby=files-h] a", has_text="log.lammps").count()
        return re.search(r"\d+(\.\d+)?\s?%", efficiency) is not None and files == 1

    poll_until(efficiency_and_files_shown, timeout=60, interval=1.0, what="the job's efficiency and files")
    assert page.locator("#eff-h").inner_text() == words["Efficiency"]
    _no_serious_problems(page, "job page")
    shot(page, f"journey1{suffix}-efficiency-{language}")

    # 5. the charge on this month's statement, and the statement as a PDF
    poll_until(lambda: _settled(platform, job_id), timeout=60, what="the job's settlement")
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    page.goto(f"/portal/billing/statements/{name}-lab/{month}")
    charge = _charge(platform, job_id)
    assert charge > 0
    line = page.locator("tr", has=page.locator(f"a[href='/portal/jobs/{job_id}']"))
    assert line.count() == 1, "the job is not on the statement"
    assert f"-{charge}" in line.inner_text().replace("CN¥", "").replace("¥", ""), line.inner_text()
    _no_serious_problems(page, "statement")
    shot(page, f"journey1{suffix}-statement-{language}")
    with page.expect_download() as download:
        page.locator(f"a[href*='/statements/{month}?format=pdf']").first.click()
    pdf = download.value.path()
    assert open(pdf, "rb").read(5) == b"%PDF-"

    # journey 5: the job list and the job page on a phone
    phone = new_page(chromium, server.url, locale=language, phone=True)
    sign_in(phone, name, PASSWORD)
    for url, what in (("/portal/jobs", "jobs"), (f"/portal/jobs/{job_id}", "job")):
        phone.goto(url)
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390 + 1, f"{what} page scrolls sideways on a phone ({width} px)"
        shot(phone, f"journey1{suffix}-phone-{what}-{language}")


def _settled(platform, job_id: int) -> bool:
    from computenet.store.models import Job

    with platform.db.session() as session:
        return session.get(Job, job_id).settled_at is not None


def _charge(platform, job_id: int) -> Decimal:
    from sqlalchemy import func, select

    from computenet.store.models import Charge

    with platform.db.session() as session:
        return Decimal(session.scalar(select(func.sum(Charge.amount)).where(Charge.job_id == job_id)) or 0)

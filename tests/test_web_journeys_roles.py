"""Journeys 2, 3 and 4 of the portal (issue 15 "Tests"), each a person doing their work only through
the portal's pages in Chromium:

2. a PI adds a member to their project with a monthly spending limit; the member submits past the
   limit from the job composer and is refused with the figures; no job is created;
3. an account blocked for lack of funds is topped up by finance from the finance page; the block
   lifts and its owner finds the notice on their dashboard and billing page;
4. (Slurm test bed) an operator sees a cluster go offline on the clusters page when its slurmctld
   stops, and a new job from the composer goes to the other cluster, its page saying why.

What the background services would do on their intervals (the exhaustion watch, the cluster sync)
is run once by the test at the moment it matters, so nothing waits for a 30 s or 60 s loop.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select

from computenet.billing import funds
from computenet.cli.embedded import EmbeddedServer
from computenet.config import RoutingConfig
from computenet.services.tenancy import accounts, grants, tenants
from computenet.services import audit
from computenet.services.billing import exhaustion
from computenet.services.errors import ServiceError
from computenet.services.billing.exhaustion import ExhaustionWatch
from computenet.services.jobs.jobs import cancel_job, submit_job
from computenet.services.signin import passwords
from computenet.store.models import AccountMember, Job

from browser import axe, new_page, shot, sign_in
from conftest import poll_until, slurm_clusters

PASSWORD = "Correct-Horse-7"
TESTBED_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-testbed"


def _person(session, platform, name: str, language: str = "en", role: str | None = None):
    user = accounts.create_user(session, name)
    user.language = language
    session.flush()
    if role:
        grants.grant(session, None, audit.SYSTEM, user, role, "journey")
    passwords.set_password(session, audit.SYSTEM, user, PASSWORD, platform.settings.auth)
    return user


def _no_serious_problems(page, where: str) -> None:
    problems = axe(page)
    assert problems == [], f"{where}: {problems}"


def _jobs(platform) -> int:
    with platform.db.session() as session:
        return session.scalar(select(func.count(Job.id)))


def _signed_in(chromium, server, login: str, language: str = "en"):
    page = new_page(chromium, server.url, locale="zh-CN" if language == "zh-CN" else "en-US")
    sign_in(page, login, PASSWORD)
    return page


def _fill_option(page, option: str, value: str) -> None:
    """Fill one of the composer's assistance fields (its id is opt_ and the sbatch option); the change
    rewrites the script's #SBATCH lines (htmx): wait until the script has it."""
    page.fill(f"#opt_{option}", value)
    page.locator(f"#opt_{option}").dispatch_event("change")
    page.wait_for_function("line => document.querySelector('#script').value.includes(line)",
                           arg=f"#SBATCH --{option}={value}")


# -- journey 2: a PI's spending limit stops a member's job ----------------------------------------

@pytest.fixture
def lab(platform):
    """Project md of tenant uni with 200.00 on it and PI pia; wen (zh-CN) has no account of their own."""
    with platform.db.session() as session:
        uni = tenants.create_tenant(session, "uni", "university")
        pi = _person(session, platform, "pia")
        pi.tenant_id = uni.id
        md = tenants.create_project(session, uni, "md", pi=pi)
        accounts.top_up(session, md, "200.00", key="journey:md")
        wen = _person(session, platform, "wen", language="zh-CN")
        wen.tenant_id = uni.id
    with EmbeddedServer(platform, run_services=False) as server:
        yield platform, server


def test_a_member_past_the_limit_their_pi_set_is_refused_with_the_figures(lab, chromium):
    platform, server = lab
    pi = _signed_in(chromium, server, "pia")
    pi.goto("/portal/projects/md")
    pi.fill("#member-name", "wen")
    pi.select_option("#member-role", "member")
    pi.fill("#member-limit", "5.00")
    pi.get_by_role("button", name="Add or change member").click()
    member_row = pi.locator("#members-h + table tbody tr", has_text="wen")
    member_row.wait_for()
    assert "5.00" in member_row.locator("td").nth(1).inner_text()
    _no_serious_problems(pi, "project page")
    shot(pi, "journey2-pi-project-en")
    with platform.db.session() as session:
        md, wen = accounts.get_account(session, "md"), accounts.get_user(session, "wen")
        assert str(session.get(AccountMember, (md.id, wen.id)).spend_limit) == "5.00"
    pi.context.close()

    # the member, in Chinese: one core for 10 minutes at 36.00 an hour may cost 6.00, past the 5.00
    member = _signed_in(chromium, server, "wen", "zh-CN")
    member.goto("/portal/submit")
    _fill_option(member, "account", "md")
    member.click("#estimate-button")
    member.locator("#estimate table.estimate").wait_for()
    assert "6.00" in member.locator("#estimate tr.feasible").first.inner_text()  # the price, before submitting
    _no_serious_problems(member, "composer with an estimate")
    shot(member, "journey2-member-estimate-zh-CN")
    member.click("#submit-button")
    refusal = member.locator("#estimate .notice-error")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "每月消费限额是 ¥5.00" in text and "最多可能花费 ¥6.00" in text, text  # in zh-CN, figures as money
    assert member.locator("#estimate h3").inner_text() == "作业未提交"  # the heading in their language
    assert "/portal/submit" in member.url
    _no_serious_problems(member, "composer with the refusal")
    shot(member, "journey2-member-refused-zh-CN")
    assert _jobs(platform) == 0
    with platform.db.session() as session:
        assert funds.funds(session, accounts.get_account(session, "md")).held == 0
    member.context.close()


# -- journey 3: finance lifts a block ---------------------------------------------------------------

HELD = "#!/bin/bash\n#SBATCH -c 1 -t 10 -H\ntrue\n"  # waits, held by its owner, holding 6.00


@pytest.fixture
def arrears(platform):
    """gus's account gus-lab, postpaid (credit line 20.00, policy block), went 6.00 into arrears when
    its credit line was cut under a waiting job; the exhaustion watch has blocked it and told gus."""
    with platform.db.session() as session:
        gus = _person(session, platform, "gus")
        account = accounts.create_account(session, "gus-lab", owner=gus)
        funds.set_credit_limit(session, account, "20.00")
        exhaustion.set_policy(session, account, "block", 0)
        _person(session, platform, "fina", role="finance")
        gus_id = gus.id
    waiting = submit_job(platform, gus_id, HELD)
    with platform.db.session() as session:
        funds.set_credit_limit(session, accounts.get_account(session, "gus-lab"), "0")
    assert ExhaustionWatch(platform).run_once().exhausted == ["gus-lab"]
    with EmbeddedServer(platform, run_services=False) as server:
        yield platform, server
    platform.adapter("local").cancel(waiting.native_id)


def test_finance_tops_up_a_blocked_account_and_its_owner_is_told(arrears, chromium):
    platform, server = arrears
    gus = _signed_in(chromium, server, "gus")
    notices = gus.locator("#notices-h + ul.notices")
    # the notice as English pages write money (the API keeps "6.00 CNY")
    assert "CN¥6.00 in arrears" in notices.inner_text() and "New jobs are refused" in notices.inner_text()
    _no_serious_problems(gus, "dashboard, blocked")
    shot(gus, "journey3-blocked-dashboard-en")
    gus.goto("/portal/submit")
    gus.click("#submit-button")
    refusal = gus.locator("#estimate .notice-error")
    refusal.wait_for()
    assert "gus-lab cannot cover this job" in refusal.inner_text()
    shot(gus, "journey3-blocked-refused-en")
    jobs_before = _jobs(platform)
    assert jobs_before == 1  # only the waiting one

    fin = _signed_in(chromium, server, "fina")
    fin.goto("/portal/finance")
    fin.fill("#topup-account", "gus-lab")
    fin.fill("#topup-amount", "50.00")
    fin.fill("#topup-reference", "bank-2026-1207")
    fin.fill("#topup-memo", "settles the arrears")
    fin.get_by_role("button", name="Credit", exact=True).click()
    fin.wait_for_url("**/portal/finance?done=credited")
    _no_serious_problems(fin, "finance page")
    shot(fin, "journey3-finance-credited-en")
    with platform.db.session() as session:
        assert funds.funds(session, accounts.get_account(session, "gus-lab")).available == 44  # 50.00 - 6.00 held
    fin.context.close()

    # the exhaustion watch's next pass (every 30 s in service) lifts the block and tells the members
    assert ExhaustionWatch(platform).run_once().restored == ["gus-lab"]
    gus.goto("/")
    assert "has funds again (CN¥44.00 available)" in notices.inner_text()
    _no_serious_problems(gus, "dashboard")
    shot(gus, "journey3-restored-dashboard-en")
    gus.goto("/portal/billing")
    assert "has funds again" in gus.locator("main").inner_text()
    _no_serious_problems(gus, "billing page")
    shot(gus, "journey3-restored-billing-en")
    # and a job is accepted again
    gus.goto("/portal/submit")
    gus.click("#submit-button")
    gus.wait_for_url("**/portal/jobs/*")
    assert _jobs(platform) == jobs_before + 1
    gus.context.close()


# -- journey 4: a cluster goes offline; a new job goes elsewhere -----------------------------------

def _testbed(*args: str) -> None:
    subprocess.run([str(TESTBED_SCRIPT), *args, os.environ["COMPUTENET_TESTBED"]], check=True,
                   capture_output=True, timeout=180)


def _health(page, cluster: str) -> str:
    return page.locator("tbody tr", has_text=cluster).locator(".health").inner_text()


@pytest.mark.slurm
def test_an_operator_sees_a_cluster_go_offline_and_a_new_job_goes_to_the_other(testbed, make_platform, chromium):
    platform = make_platform(slurm_clusters(testbed), routing=RoutingConfig(queue_cache_seconds=0))
    with platform.db.session() as session:
        _person(session, platform, "opal", role="operator")
        rita = _person(session, platform, "rita")
        accounts.top_up(session, accounts.create_account(session, "rita-lab", owner=rita), "500.00", key="journey:rita")
        rita_id = rita.id
    with EmbeddedServer(platform, run_services=False) as server:
        op = _signed_in(chromium, server, "opal")
        op.goto("/portal/operations")
        assert (_health(op, "alpha"), _health(op, "beta")) == ("online", "online")
        job_id = None
        try:
            _testbed("stop-controller", "alpha")
            platform.sync_clusters()  # the cluster sync's pass (every minute in service)
            op.reload()
            assert (_health(op, "alpha"), _health(op, "beta")) == ("offline", "online")
            _no_serious_problems(op, "clusters page")
            shot(op, "journey4-clusters-offline-en")

            user = _signed_in(chromium, server, "rita")
            user.goto("/portal/submit")  # the default script: one task for 10 minutes
            user.click("#estimate-button")
            user.locator("#estimate table.estimate").wait_for()
            assert "cluster alpha is offline" in user.locator("#estimate tr.ruled-out", has_text="alpha").first.inner_text()
            assert user.locator("#estimate tr.feasible").first.locator("td").first.inner_text().startswith("beta")
            _no_serious_problems(user, "composer with an estimate")
            shot(user, "journey4-estimate-en")
            user.click("#submit-button")
            user.wait_for_url("**/portal/jobs/*")
            job_id = int(user.url.rstrip("/").rsplit("/", 1)[1])
            chosen = user.locator("tr.chosen").inner_text()
            assert chosen.startswith("beta/"), chosen
            alpha_cpu = user.locator("tr", has_text="alpha/cpu").inner_text()
            assert "cluster alpha is offline" in alpha_cpu, alpha_cpu
            _no_serious_problems(user, "job page")
            shot(user, "journey4-job-routed-en")
        finally:
            _testbed("start-controller", "alpha")
            if job_id is not None:
                with contextlib.suppress(ServiceError):  # it may have ended already: nothing to leave behind
                    cancel_job(platform, rita_id, job_id)
        poll_until(lambda: platform.adapter("alpha").health().state.value == "online", interval=1.0, timeout=60,
                   what="alpha's controller back")

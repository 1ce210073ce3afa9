"""JupyterLab from the portal on the Slurm test bed, in a real browser: started from the sessions
page, routed to alpha (the cluster tagged jupyterlab), opened through the platform's proxy once it
answers, a cell run on the node's kernel (it prints the node Slurm gave the job and a value computed
there), stopped from the page, and its charge (from sacct) on the page and the bill."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from computenet.cli.embedded import EmbeddedServer
from computenet.config import Price, RoutingConfig, SessionsConfig
from computenet.store.models import Charge, InteractiveSession, Job

from browser import new_page, shot, sign_in, start_session, users_who_sign_in
from conftest import poll_until, slurm_clusters
from test_web_sessions import GOOD, RUN_CELL, VENV_BIN, pytestmark as needs_jupyter

pytestmark = [pytest.mark.slurm, *([needs_jupyter] if not isinstance(needs_jupyter, list) else needs_jupyter)]


def test_jupyterlab_on_the_test_bed_from_the_portal_in_a_browser(testbed, make_platform, chromium, monkeypatch):
    # sbatch passes the submitting environment on: the venv's jupyter is on the job's PATH
    monkeypatch.setenv("PATH", f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    clusters = slurm_clusters(testbed)
    clusters[0].tags = ["jupyterlab"]  # alpha has it; beta does not
    clusters[0].prices = {"cpu": Price(core_hour=Decimal("36.00"))}  # a few seconds cost a few cents
    platform = make_platform(clusters, routing=RoutingConfig(queue_cache_seconds=0),
                             sessions=SessionsConfig(start_timeout_s=180))
    users_who_sign_in(platform, ("h18b-lena",), GOOD)
    with EmbeddedServer(platform, run_services=True) as server:
        page = new_page(chromium, server.url)
        sign_in(page, "h18b-lena", GOOD)
        connect = start_session(page, "jupyterlab", wait_ms=180_000)
        with platform.db.session() as session:
            row = session.scalars(select(InteractiveSession)).one()
            sid, job_id, host, native = row.id, row.job_id, row.host, row.job.native_id
            assert row.job.cluster.name == "alpha"
        assert host.startswith("alpha-n")
        assert page.locator("tbody tr td").nth(3).inner_text().strip() == "alpha"

        with page.context.expect_page() as opened:
            connect.click()
        lab = opened.value
        lab.wait_for_selector(".jp-LauncherCard", timeout=90_000)  # JupyterLab's own UI, through the proxy
        where = server.origins.session_origin(sid)  # the sessions' own origin, not the portal's
        assert lab.url.startswith(f"{where}/sessions/{sid}/lab")
        shot(lab, "session-jupyterlab-testbed")
        code = ("import os\nprint(os.environ['SLURMD_NODENAME'], os.environ['SLURM_JOB_ID'], "
                "sum(i * i for i in range(1000)))")
        printed = lab.evaluate(RUN_CELL, [f"{where}/sessions/{sid}/", code])
        assert printed.split() == [host, native, "332833500"], printed
        lab.close()

        page.goto("/portal/sessions")
        page.click("form[action$='/stop'] button")
        page.wait_for_url("**/portal/sessions?done=stopped")

        def settled():  # the job's final charge (a running job is charged as it goes: wait for the last)
            with platform.db.session() as session:
                if session.get(Job, job_id).settled_at is None:
                    return None
                return session.scalar(select(func.sum(Charge.amount)).where(Charge.job_id == job_id))
        total = poll_until(settled, timeout=180, what="the session's job settled from sacct")
        assert Decimal(total) > 0
        page.goto("/portal/sessions")
        cell = page.locator("tbody tr td.num").nth(1).inner_text()
        assert cell.replace(",", "").strip().endswith(f"{Decimal(total):.2f}"), cell
        shot(page, "sessions-ended-testbed")
        page.goto(f"/portal/jobs/{job_id}")
        assert f"{Decimal(total):.2f}" in page.content()
        page.context.close()

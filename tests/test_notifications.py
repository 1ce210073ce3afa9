"""Low-balance notices: once per crossing, to every member, re-armed after a top-up."""

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from computenet.cli.main import app
from computenet.client import ApiError
from computenet.services.tenancy import accounts
from computenet.services.integration import notifications
from computenet.services.errors import InvalidRequest
from computenet.services.jobs.jobs import submit_job
from computenet.services.integration.notifications import BalanceWatch

from conftest import add_user


def test_low_balance_notice_once_per_crossing(platform, server, alice, bob):
    with platform.db.session() as session:
        lab = accounts.get_account(session, "alice-lab")
        accounts.add_member(session, lab, accounts.get_user(session, "bob"))
        notifications.set_threshold(session, lab, "90.00")
        for bad in ("-1", "abc", "0.001"):
            with pytest.raises(InvalidRequest):
                notifications.set_threshold(session, lab, bad)
    watch = BalanceWatch(platform)
    assert watch.run_once().notices == 0  # 100.00 available
    job = submit_job(platform, _user_id(platform, "alice"),
                     "#!/bin/bash\n#SBATCH -c 1 -t 20\nsleep 30\n")  # holds 12.00: 88.00 available
    report = watch.run_once()
    assert (report.notified_accounts, report.notices) == (1, 2)  # alice and bob
    assert watch.run_once().notices == 0  # said once
    (notice,) = alice.notifications(unread=True)
    assert notice.kind == "low_balance" and "88.00" in notice.message
    assert [n.kind for n in bob.notifications()] == ["low_balance"]
    alice.mark_read(notice.id)
    assert alice.notifications(unread=True) == []
    with pytest.raises(ApiError):
        bob.mark_read(notice.id)  # not his notice
    with platform.db.session() as session:
        accounts.top_up(session, accounts.get_account(session, "alice-lab"), "50.00", key="refill")
    assert watch.run_once().rearmed == 1
    env = {"COMPUTENET_URL": server.url, "COMPUTENET_TOKEN": bob.http.headers["Authorization"].split()[1],
           "COLUMNS": "200"}
    shown = CliRunner().invoke(app, ["notifications"], env=env)
    assert shown.exit_code == 0 and "low_balance" in shown.output
    assert "nothing new" in CliRunner().invoke(app, ["notifications"], env=env).output  # marked read
    alice.cancel(job.id)


def _user_id(platform, name):
    with platform.db.session() as session:
        return accounts.get_user(session, name).id

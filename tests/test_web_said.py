"""Issue 15's last gaps: what the services and the router say reaches zh-CN pages in Chinese (refusals,
routing reasons stored with a job's decision), English pages write money as they do elsewhere, and the
API's English stays the services' own words."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from computenet import messages
from computenet.api.app import create_app
from computenet.billing import funds, ledger
from computenet.routing import feasibility
from computenet.routing.model import Constraints, Target
from computenet.domain.resources import ResourceRequest
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.jobs import jobs as job_service
from computenet.services.errors import InvalidRequest
from computenet.services.jobs.job_update import update_job
from computenet.services.signin import passwords
from computenet.store.models import Job, User
from computenet.cli.embedded import EmbeddedServer

from browser import axe, new_page, shot, sign_in
from computenet.web import i18n

from conftest import local_cluster

GOOD = "Correct-Horse-7"
ZH, EN = i18n.Formats("zh-CN", "CNY"), i18n.Formats("en", "CNY")


def test_a_routing_reason_is_english_for_the_api_and_chinese_on_a_page_even_after_storing():
    target = Target(cluster="beta", partition="cpu", nodes=1, cores_per_node=4, mem_per_node_mb=1000,
                    health="offline", priced=True, max_time_minutes=60)
    res = ResourceRequest(nodes=2, time_limit_minutes=30)
    reasons = feasibility.check(res, target, Constraints()).reasons
    assert "cluster beta is offline" in reasons and "asks for 2 nodes; partition cpu has 1" in reasons
    said = [i18n.localise(r, "zh-CN", ZH) for r in reasons]
    assert "集群 beta 已离线" in said and "需要 2 个节点；分区 cpu 只有 1 个" in said
    # stored as JSON with the decision (a job's page reads it back), it is still a translatable text
    made = messages.msg("may cost up to %(cost)s, above your maximum of %(most)s",
                        cost=messages.Money(Decimal("7.5")), most=messages.Money(Decimal("5")))
    stored = messages.load(messages.dump(made), str(made))
    assert stored == "may cost up to 7.5, above your maximum of 5" and messages.load(messages.dump(made), "?") == "?"
    assert i18n.localise(stored, "zh-CN", ZH) == "费用最多可达 ¥7.50，超过您的上限 ¥5.00"
    assert messages.load(None, "plain stored text") == "plain stored text"
    assert messages.load({"template": "%(gone)s"}, "old text") == "old text"  # does not fit: the English


def test_money_on_english_pages_is_written_as_english_pages_write_it(platform):
    with platform.db.session() as session:
        user = accounts.create_user(session, "li")
        account = accounts.create_account(session, "li-lab", owner=user)
        other = accounts.create_account(session, "li-other", owner=user)
        try:
            ledger.transfer(session, "said:over", funds.customer(session, account), funds.customer(session, other),
                            600, "transfer", check_funds=True)
        except ledger.InsufficientFunds as exc:
            refusal = exc
    assert str(refusal) == "available funds do not cover 6.00 CNY"  # the API's words, unchanged
    assert i18n.localise(refusal, "en", EN) == "available funds do not cover CN¥6.00"
    assert i18n.localise(refusal, "zh-CN", ZH) == "可用资金不足以支付 ¥6.00"


def _person(platform, name: str) -> int:
    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        acc = accounts.create_account(session, f"{name}-lab", owner=user)
        accounts.top_up(session, acc, "100.00", key=f"said:{name}")
        passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        return user.id


def _signed_in(platform, name: str) -> TestClient:
    client = TestClient(create_app(platform), follow_redirects=False)
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


@pytest.fixture
def two(make_platform):
    return make_platform([local_cluster("local"), local_cluster("edge")])


def test_a_jobs_page_gives_the_routing_reasons_in_the_readers_language(two):
    li = _person(two, "li")
    job = job_service.submit_job(two, li, "#!/bin/bash\n#SBATCH -M edge\nsleep 30\n", [], "pinned.sh")
    client = _signed_in(two, "li")
    en = client.get(f"/portal/jobs/{job.id}").text
    zh = client.get(f"/portal/jobs/{job.id}", headers={"Accept-Language": "zh-CN"}).text
    assert "pinned to cluster edge" in en
    assert "已指定集群 edge" in zh and "pinned to cluster" not in zh
    # a service refusal on a zh-CN page is Chinese too, and the same refusal is English for the API
    with pytest.raises(InvalidRequest) as refused:
        update_job(two, li, job.id)
    assert str(refused.value) == "nothing to update: give TimeLimit, Partition or JobName"
    assert i18n.localise(refused.value, "zh-CN", ZH) == "没有要修改的内容：请给出时间上限、分区或作业名"
    job_service.cancel_job(two, li, job.id)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_the_owner_changes_a_job_by_form_and_sees_the_services_refusals(two):
    li = _person(two, "li")
    _person(two, "wang")
    job = job_service.submit_job(two, li, "#!/bin/bash\n#SBATCH -t 20\n#SBATCH --begin=now+1hour\nsleep 60\n", [], "later.sh")
    client = _signed_in(two, "li")
    page = client.get(f"/portal/jobs/{job.id}").text
    assert f'action="/portal/jobs/{job.id}/update"' in page and 'id="upd-time"' in page
    token = _csrf(page)
    assert client.post(f"/portal/jobs/{job.id}/update", data={"time_limit": "10"}).status_code == 403  # no token
    done = client.post(f"/portal/jobs/{job.id}/update",
                       data={"csrf_token": token, "time_limit": "10", "name": "shorter", "partition": "local"})
    assert done.status_code == 303, done.text[-1500:]
    assert done.headers["location"] == f"/portal/jobs/{job.id}?done=update"
    with two.db.session() as session:
        row = session.get(Job, job.id)
        assert (row.time_limit_minutes, row.name) == (10, "shorter")
    assert "The job was changed on its cluster." in client.get(done.headers["location"]).text
    # longer is an operator's decision: refused, in the reader's language, and nothing changes
    zh = client.post(f"/portal/jobs/{job.id}/update", data={"csrf_token": token, "time_limit": "30"},
                     headers={"Accept-Language": "zh-CN"})
    assert zh.status_code == 400 and f"作业 {job.id} 的时间上限只能调低（当前为 10 分钟）" in zh.text
    assert client.post(f"/portal/jobs/{job.id}/update", data={"csrf_token": token, "time_limit": "soon"}
                       ).status_code == 400
    # nothing given: the service's own refusal; another user's job is not found, and shows no form
    nothing = client.post(f"/portal/jobs/{job.id}/update", data={"csrf_token": token, "name": "shorter"})
    assert nothing.status_code == 400 and "nothing to update" in nothing.text
    other = _signed_in(two, "wang")
    assert "/update" not in other.get(f"/portal/jobs/{job.id}").text
    assert other.post(f"/portal/jobs/{job.id}/update",
                      data={"csrf_token": _csrf(other.get("/portal/jobs").text), "time_limit": "5"}).status_code == 404
    with two.db.session() as session:
        assert session.get(Job, job.id).time_limit_minutes == 10
    job_service.cancel_job(two, li, job.id)


def test_in_a_browser_the_job_page_speaks_chinese_for_its_routing_and_its_change_form(two, chromium):
    li = _person(two, "li")
    with two.db.session() as session:
        session.get(User, li).language = "zh-CN"
    job = job_service.submit_job(two, li, "#!/bin/bash\n#SBATCH -M edge -t 20\n#SBATCH --begin=now+1hour\nsleep 9\n",
                                 [], "later.sh")
    with EmbeddedServer(two, run_services=False) as server:
        page = new_page(chromium, server.url, locale="zh-CN")
        sign_in(page, "li", GOOD)
        page.goto(f"/portal/jobs/{job.id}")
        assert "已指定集群 edge" in page.locator("#where-h + dl + .table-wrap").inner_text()
        page.fill("#upd-time", "60")
        page.click("#update-h ~ form button[type=submit]")
        page.wait_for_load_state()
        assert f"作业 {job.id} 的时间上限只能调低（当前为 20 分钟）" in page.content()
        page.goto(f"/portal/jobs/{job.id}")
        page.fill("#upd-time", "15")
        page.click("#update-h ~ form button[type=submit]")
        page.wait_for_url(f"**/portal/jobs/{job.id}?done=update")
        assert "作业已在其集群上修改。" in page.content()
        assert "被所有者修改：TimeLimit=15" in page.locator("ol.timeline").inner_text()
        assert axe(page) == []
        shot(page, "job-update-zh-CN")
        page.context.close()
        english = new_page(chromium, server.url, locale="en-US")
        with two.db.session() as session:
            session.get(User, li).language = "en"
        sign_in(english, "li", GOOD)
        english.goto(f"/portal/jobs/{job.id}")
        assert axe(english) == []
        shot(english, "job-update-en")
        english.context.close()
    job_service.cancel_job(two, li, job.id)


def test_a_jobs_timeline_is_said_in_the_readers_language_and_unknown_events_as_stored():
    from computenet.services.jobs import timeline

    made = timeline.said("submitted to edge as 17 for li")
    assert made == "submitted to edge as 17 for li" and i18n.localise(made, "zh-CN", ZH) == \
        "已提交到 edge，作业号 17，用户 li"
    assert i18n.localise(timeline.said("cancel requested"), "zh-CN", ZH) == "已请求取消"
    assert i18n.localise(timeline.said("cancel requested: its account has no funds"), "zh-CN", ZH) == \
        "已请求取消：账户没有余额"
    assert timeline.said("JobHeldAdmin by slurm") == "JobHeldAdmin by slurm"  # the scheduler's own words
    assert timeline.said(None) is None


def test_the_composer_stages_workspace_files_into_the_jobs_directory(platform):
    from computenet.services.files import workspaces
    from conftest import poll_until

    li = _person(platform, "li")
    with platform.db.session() as session:
        user = session.get(User, li)
        workspaces.write_small(session, platform, user, "in/data.txt", b"forty-two\n", overwrite=True)
        workspaces.write_small(session, platform, user, "other/data.txt", b"clash\n", overwrite=True)
        workspaces.write_small(session, platform, user, "notes.txt", b"typed\n", overwrite=True)
    client = _signed_in(platform, "li")
    page = client.get("/portal/submit").text
    assert '<option value="in/data.txt">' in page and 'name="inputs_typed"' in page
    token = _csrf(page)
    script = "#!/bin/bash\n#SBATCH -t 5\ncat data.txt notes.txt\n"
    done = client.post("/portal/submit", data={"script": script, "csrf_token": token, "inputs": ["in/data.txt"],
                                               "inputs_typed": "notes.txt\n\n"})
    assert done.status_code == 303, done.text[-800:]
    job_id = int(done.headers["location"].rsplit("/", 1)[1])
    with platform.db.session() as session:
        assert [i["path"] for i in session.get(Job, job_id).inputs] == ["~/in/data.txt", "~/notes.txt"]
    poll_until(lambda: "typed" in client.get(f"/portal/jobs/{job_id}/log?stream=stdout&offset=0").text, 30)
    assert "forty-two" in client.get(f"/portal/jobs/{job_id}/log?stream=stdout&offset=0").text
    # refused as the API refuses, in the reader's language; the picks are kept and nothing is submitted
    with platform.db.session() as session:
        session.get(User, li).language = "zh-CN"
        jobs_before = session.query(Job).count()
    clash = client.post("/portal/submit", data={"script": script, "csrf_token": token,
                                                "inputs": ["in/data.txt", "other/data.txt"]})
    assert clash.status_code == 400 and "data.txt" in clash.text
    assert '<option value="other/data.txt" selected>' in clash.text
    missing = client.post("/portal/submit", data={"script": script, "csrf_token": token, "inputs_typed": "nope.txt"})
    assert missing.status_code == 404 and "nope.txt" in missing.text
    many = client.post("/portal/submit", data={"script": script, "csrf_token": token,
                                               "inputs_typed": "\n".join(f"f{i}" for i in range(65))})
    assert many.status_code == 400 and "每个作业最多 64 个输入文件" in many.text
    escape = client.post("/portal/submit", data={"script": script, "csrf_token": token, "inputs_typed": "../../etc/passwd"})
    assert escape.status_code in (400, 403, 404)
    with platform.db.session() as session:
        assert session.query(Job).count() == jobs_before


def test_in_a_browser_the_composer_picks_workspace_files_in_chinese(platform, chromium):
    from computenet.services.files import workspaces

    li = _person(platform, "li")
    with platform.db.session() as session:
        user = session.get(User, li)
        user.language = "zh-CN"
        workspaces.write_small(session, platform, user, "in/data.txt", b"forty-two\n", overwrite=True)
    with EmbeddedServer(platform, run_services=True) as server:
        page = new_page(chromium, server.url, locale="zh-CN")
        sign_in(page, "li", GOOD)
        page.goto("/portal/submit")
        assert "复制到作业目录的文件" in page.content()
        page.fill("#script", "#!/bin/bash\n#SBATCH --time=5\ncat data.txt\n")
        page.select_option("#inputs", ["in/data.txt"])
        assert axe(page) == []
        shot(page, "submit-inputs-zh-CN")
        page.click("#submit-button")
        page.wait_for_url(re.compile(r".*/portal/jobs/\d+$"))
        page.wait_for_function("() => document.querySelector('#stdout-log').textContent.includes('forty-two')",
                               timeout=30_000)
        page.context.close()

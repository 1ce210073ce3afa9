"""Sign-in refusals, the job search's bad filters and the reconcile queue's refusals are made with msg:
the API keeps its English, the portal says them in zh-CN (services.po)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from computenet.api.app import create_app
from computenet.services.tenancy import accounts

from test_web_admin import GOOD, browser, csrf, flagged_job, org  # noqa: F401 (the fixture)

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def _chinese(platform, name: str) -> TestClient:
    with platform.db.session() as session:
        accounts.get_user(session, name).language = "zh-CN"
    return browser(platform, name)


def test_sign_in_refusals_are_english_in_the_api_and_chinese_in_the_portal(org):  # noqa: F811
    client = TestClient(create_app(org), follow_redirects=False)
    api = client.post("/auth/login", json={"login": "pi", "password": ""})
    assert api.status_code in (400, 401, 403, 422) and "give a password" in api.text
    page = client.post("/login", data={"login": "pi", "password": "", "next": "/"}, headers=ZH)
    assert page.status_code == 403 and "请填写密码" in page.text and "give a password" not in page.text
    page = client.post("/login", data={"login": "p\ti", "password": "x", "next": "/"}, headers=ZH)
    assert "请填写登录名（可打印字符，最多 255 个）" in page.text
    english = client.post("/login", data={"login": "pi", "password": "", "next": "/"},
                          headers={"Accept-Language": "en"})
    assert "give a password" in english.text


def test_bad_job_filters_are_named_in_chinese(org):  # noqa: F811
    client = _chinese(org, "pi")
    answer = client.get("/portal/jobs?sort=bogus")
    assert answer.status_code == 400 and "未知的排序 &#39;bogus&#39;" in answer.text, answer.text[-2000:]
    answer = client.get("/portal/jobs?submitted_from=2026-13-40")
    assert answer.status_code == 400 and "不是日期（YYYY-MM-DD）" in answer.text
    english = browser(org, "mem").get("/portal/jobs?sort=bogus")
    assert english.status_code == 400 and "unknown sort &#39;bogus&#39;" in english.text


def test_the_reconcile_queue_refuses_in_chinese(org):  # noqa: F811
    job_id = flagged_job(org)
    op = _chinese(org, "op")
    token = csrf(op, "/portal/operations/reconcile")
    answer = op.post(f"/portal/operations/reconcile/{job_id}", data={"action": "explode", "csrf_token": token})
    assert answer.status_code == 400 and "未知的操作 &#39;explode&#39;" in answer.text
    answer = op.post(f"/portal/operations/reconcile/{job_id}", data={"action": "adopt", "native_id": "12ab",
                                                                     "csrf_token": token})
    assert answer.status_code == 400 and "adopt 需要作业在集群上的编号（数字）" in answer.text

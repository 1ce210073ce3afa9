"""Why a feasible candidate was ranked where it was (routing/policies.py) is made with msg: the API and
CLI keep the English they always printed, the portal's estimate panel and a job's page say it in the
reader's language, also from a decision stored as JSON (explanation_said)."""

from __future__ import annotations

import re

from computenet import messages
from computenet.routing import policies
from computenet.web import i18n

from test_web_submit import SCRIPT, _client, _csrf, _person, site  # noqa: F401 (the fixture)


def _zh(text) -> str:
    return i18n.localise(text, "zh-CN", i18n.Formats("zh-CN", "CNY"))


def test_the_why_is_english_text_with_a_template_that_survives_json():
    assert policies.human_wait(0.2) == "starts now" and policies.human_wait(125) == "starts in ~2 min"
    assert policies.human_wait(None) == "no start predicted" and _zh(policies.human_wait(7200)) == "约 2.0 小时后开始"
    said = messages.msg("%(described)s: %(why)s", described=messages.msg(
        "%(wait)s, %(price)s, %(ownership)s", wait=policies.human_wait(0), price=messages.msg("unpriced"),
        ownership=messages.msg("owned")), why=messages.msg("the lowest price"))
    assert said == "starts now, unpriced, owned: the lowest price"
    again = messages.load(messages.dump(said), str(said))
    assert _zh(again) == "立即开始，未定价，自有：价格最低"
    # a decision stored by another version (no template, or one that says something else) stays English
    assert messages.load(None, "starts now, at most 1.00, owned") == "starts now, at most 1.00, owned"
    assert messages.load(messages.dump(said), "starts soon") == "starts soon"


def test_the_estimate_and_the_job_page_say_why_in_chinese(site):  # noqa: F811
    english = _client(site)
    token = _csrf(english.get("/portal/submit").text)
    answer = english.post("/portal/submit/estimate", data={"script": SCRIPT},
                          headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200
    assert re.search(r"starts (now|in ~\d+ \w+), at most CN¥[\d.]+, owned: ", answer.text), answer.text

    client = _client(site, language="zh-CN")
    token = _csrf(client.get("/portal/submit").text)
    answer = client.post("/portal/submit/estimate", data={"script": SCRIPT},
                         headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert answer.status_code == 200
    assert re.search(r"(立即开始|约 [\d.]+ (秒|分钟|小时)后开始)，至多 ¥[\d.]+，自有：", answer.text)
    assert "starts" not in answer.text and "at most" not in answer.text

    submitted = client.post("/portal/submit", data={"script": SCRIPT, "csrf_token": token})
    assert submitted.status_code == 303
    job_page = client.get(submitted.headers["location"])
    assert job_page.status_code == 200
    assert re.search(r"(立即开始|约 [\d.]+ (秒|分钟|小时)后开始)，至多 ¥[\d.]+，自有：", job_page.text)
    assert "at most" not in job_page.text

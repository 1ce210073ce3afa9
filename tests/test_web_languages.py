"""Service messages in the reader's language (issue 15): refusals, findings and notices are English str
for the API and CLI, and the portal says them again in zh-CN with the figures in the locale's format; a
person who never chose a language gets their browser's until they choose one."""

from __future__ import annotations

import copy
import pickle
import re
from decimal import Decimal

from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import select

from computenet.api.app import create_app
from computenet.cli.embedded import EmbeddedServer
from computenet.messages import Money, Text, msg
from computenet.monitoring.findings import _saves
from computenet.services.tenancy import accounts
from computenet.services import audit
from computenet.services.integration import notifications
from computenet.services.errors import InsufficientFunds
from computenet.services.signin import passwords
from computenet.store.models import Account, Notification, User
from computenet.web import i18n, messages

from browser import axe, new_page, shot, sign_in

GOOD = "Correct-Horse-7"
SCRIPT = "#!/bin/bash\n#SBATCH -c 2 -t 60\necho hello\n"
ZH = i18n.Formats("zh-CN", "CNY")


def test_a_message_is_its_english_text_and_keeps_its_template():
    made = msg("account %(account)s cannot cover %(cost)s, %(name)r", account="lab",
               cost=Money(Decimal("12.50"), "CNY"), name="it's")
    assert made == "account lab cannot cover 12.50 CNY, \"it's\"" and isinstance(made, str)
    error = InsufficientFunds(made)
    assert str(error) == made  # what the API's detail and the CLI print
    for again in (copy.deepcopy(made), pickle.loads(pickle.dumps(made))):  # dataclasses.asdict copies findings
        assert again == made and again.template == made.template and again.params.keys() == made.params.keys()


def test_the_portal_says_it_in_chinese_with_money_in_the_locale():
    made = msg("account %(account)s: %(available)s available, below the %(threshold)s you asked to hear about. "
               "Top up to keep jobs running.", account="lab", available=Money(Decimal("3.5"), "CNY"),
               threshold=Money(Decimal("1234")))
    assert i18n.localise(made, "zh-CN", ZH) == "账户 lab：可用余额 ¥3.50，低于您设置的提醒阈值 ¥1,234.00。请充值以保证作业继续运行。"
    # English: the service's own words, money as English pages write it (the API keeps "3.5 CNY")
    assert i18n.localise(made, "en", i18n.Formats("en", "CNY")) == (
        "account lab: CN¥3.50 available, below the CN¥1,234.00 you asked to hear about. Top up to keep jobs running.")
    assert str(made).startswith("account lab: 3.5 CNY available, below the 1234 you asked")
    assert i18n.localise(InsufficientFunds(made), "zh-CN", ZH).startswith("账户 lab")  # from the exception
    nested = msg("request -c 1 (or -n 1)%(wasted)s, unless the program can be told to use %(cores)s threads or "
                 "ranks (OMP_NUM_THREADS, a --threads option, srun -n); then keep -c %(cores)s and pass it on.",
                 wasted=_saves(Decimal("2.5")), cores=8)
    assert "¥2.50" in nested and "（每次运行约节省 ¥2.50）" in i18n.localise(nested, "zh-CN", ZH)
    assert i18n.localise("plain text nobody wrapped", "zh-CN", ZH) == "plain text nobody wrapped"


def test_a_translation_that_does_not_fit_falls_back_to_english(monkeypatch):
    class Broken:
        def gettext(self, message):
            return "%(missing)s"
    monkeypatch.setattr(i18n, "translations", lambda language: Broken())
    made = msg("no job %(job_id)s", job_id=7)
    assert i18n.localise(made, "zh-CN", ZH) == "no job 7"


def test_services_messages_are_extracted_and_their_translations_keep_the_parameters():
    found = messages.extracted()
    for msgid in ("account %(account)s cannot cover this job: it may cost up to %(cost)s (%(total_cores)s cores, "
                  "%(total_gpus)s GPUs, %(limit)s min on %(target)s), and %(available)s is available",
                  "Most allocated cores sat idle", notifications.LOW_BALANCE):
        assert msgid in found, msgid
    assert any(w.startswith("services/") for w in found["no cluster is online to take the job"])
    placeholder = re.compile(r"%\(\w+\)[sr]")
    with (i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "services.po").open("rb") as handle:
        catalog = read_po(handle)
    wrong = [m.id for m in catalog if m.id and not set(placeholder.findall(m.string)) <= set(placeholder.findall(m.id))]
    assert wrong == []
    for template in notifications.TEMPLATES:  # every notice template can be said back from its English
        values = {name: f"v{i}" for i, name in enumerate(re.findall(r"%\((\w+)\)s", template))}
        english = template % values
        assert isinstance(notifications.said(english), Text) and notifications.said(english) == english


def test_an_unmarked_service_message_fails_the_catalogue_check(tmp_path, monkeypatch):
    """A msg() in services/ that no catalogue translates is reported, as a template's text is."""
    web = tmp_path / "web"
    (web / "templates").mkdir(parents=True)
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "probe.py").write_text('raise NotFound(msg("no widget %(name)r", name=name))\n')
    monkeypatch.setattr(messages, "HERE", web)
    assert messages.missing("zh-CN") == {"no widget %(name)r": ["services/probe.py:1"]}


def _person(platform, name: str, balance: str = "100.00", language: str = "") -> int:
    with platform.db.session() as session:
        user = accounts.create_user(session, name)
        user.language = language
        account = accounts.create_account(session, f"{name}-lab", owner=user)
        if Decimal(balance) > 0:
            accounts.top_up(session, account, balance, key=f"lang:{name}")
        passwords.set_password(session, audit.SYSTEM, user, GOOD, platform.settings.auth)
        return user.id


def _signed_in(platform, name: str, **headers) -> TestClient:
    client = TestClient(create_app(platform), follow_redirects=False, headers=headers)
    assert client.post("/login", data={"login": name, "password": GOOD, "next": "/"}).status_code == 303
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_the_funds_refusal_is_english_in_the_api_and_chinese_in_the_portal(platform):
    _person(platform, "poor", balance="0.01")
    with platform.db.session() as session:
        token = accounts.issue_token(session, accounts.get_user(session, "poor"), "t")
    api = TestClient(create_app(platform)).post("/jobs", json={"script": SCRIPT},
                                                   headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 402
    assert re.fullmatch(r"account poor-lab cannot cover this job: it may cost up to \d+\.\d\d CNY \(2 cores, 0 GPUs, "
                        r"60 min on local/\w+\), and 0\.01 is available", api.json()["detail"]), api.json()
    portal = _signed_in(platform, "poor", **{"Accept-Language": "zh-CN,zh;q=0.9"})
    answer = portal.post("/portal/submit", data={"script": SCRIPT, "csrf_token": _csrf(portal.get("/portal/submit").text)})
    assert answer.status_code == 402
    assert re.search(r"账户 poor-lab 不足以支付此作业：作业最多可能花费 ¥[\d,]+\.\d\d（2 核、0 块 GPU、在 local/\w+ 上 60 "
                     r"分钟），而可用余额为 ¥0\.01", answer.text), answer.text[-3000:]


def test_notices_are_said_in_the_readers_language(platform):
    user_id = _person(platform, "nia", language="zh-CN")
    with platform.db.session() as session:
        user, account = session.get(User, user_id), session.scalar(select(Account).where(Account.name == "nia-lab"))
        notifications.notify_user(session, user, account, "low_balance", msg(
            notifications.LOW_BALANCE, account="nia-lab", available=Money(Decimal("3.50"), "CNY"),
            threshold=Money(Decimal("1000.00"))), "low:1")
        notifications.notify_user(session, user, account, "low_balance", "hand-written <b>notice</b>", "low:2")
        stored = [n.message for n in session.scalars(select(Notification).order_by(Notification.id))]
    assert stored[0] == ("account nia-lab: 3.50 CNY available, below the 1000.00 you asked to hear about. "
                         "Top up to keep jobs running.")  # the API and `cnet notifications` show this
    portal = _signed_in(platform, "nia")
    for path in ("/", "/portal/billing"):
        html = portal.get(path).text
        assert "账户 nia-lab：可用余额 ¥3.50，低于您设置的提醒阈值 ¥1,000.00。" in html, path
        assert "hand-written &lt;b&gt;notice&lt;/b&gt;" in html  # not a notice of ours: as stored, escaped


def test_a_new_person_gets_the_browsers_language_until_they_choose(platform):
    user_id = _person(platform, "xin")
    with platform.db.session() as session:
        assert session.get(User, user_id).language == ""  # nobody chose
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    before = TestClient(create_app(platform), headers=zh).get("/login")
    assert '<html lang="zh-CN">' in before.text  # the sign-in page too
    assert '<html lang="en">' in TestClient(create_app(platform), headers={"Accept-Language": "fr,en"}).get("/login").text
    portal = _signed_in(platform, "xin", **zh)
    home = portal.get("/")
    assert '<html lang="zh-CN">' in home.text
    chose = portal.post("/lang", data={"language": "en", "next": "/", "csrf_token": _csrf(home.text)})
    assert chose.status_code == 303
    with platform.db.session() as session:
        assert session.get(User, user_id).language == "en"  # kept on the profile
    portal.cookies.clear()  # another browser, still asking for Chinese: the choice wins
    again = _signed_in(platform, "xin", **zh)
    assert '<html lang="en">' in again.get("/").text


def test_a_chinese_browser_sees_the_refusal_in_chinese(platform, chromium):
    _person(platform, "mei", balance="0.01")
    with EmbeddedServer(platform, run_services=False) as server:
        page = new_page(chromium, server.url, locale="zh-CN")
        sign_in(page, "mei", GOOD)
        assert page.locator("html").get_attribute("lang") == "zh-CN"  # never chose: the browser's language
        page.goto("/portal/submit")
        page.fill("#script", SCRIPT)
        page.click("#submit-button")
        refusal = page.locator("#estimate .notice-error")
        refusal.wait_for()
        assert "账户 mei-lab 不足以支付此作业" in refusal.inner_text() and "¥0.01" in refusal.inner_text()
        assert axe(page) == []
        shot(page, "refusal-zh-CN")
        page.context.close()

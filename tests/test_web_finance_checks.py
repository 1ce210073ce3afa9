"""`cnet finance peers` and `cnet finance scenario --check/--peers` on the finance analysis page: the
uploaded files read as the CLI reads them, the same checks in tables, zh-CN, bad files a 400."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from computenet.analytics import peers as peer_table
from computenet.services.tenancy import accounts

from test_web_admin import GOOD, browser, csrf, org  # noqa: F401 (the fixture)

FIXTURES = Path(__file__).parent / "fixtures" / "finance"
PEERS = FIXTURES / "star-market-2019-computer-firms.csv"
CLAIMS = FIXTURES / "star-2019-printed-claims.json"
PAGE = "/portal/finance/analysis"


def _post(client, path: str, files: dict, data: dict | None = None):
    return client.post(f"{PAGE}/{path}", data={"csrf_token": csrf(client, PAGE)} | (data or {}), files=files)


def test_a_peer_table_shows_every_firm_and_where_printed_and_recomputed_differ(org):
    fin = browser(org, "fin")
    answer = _post(fin, "peers", {"file": (PEERS.name, PEERS.read_bytes())})
    assert answer.status_code == 200, answer.text[-2000:]
    rows = peer_table.read_peers(PEERS)
    differ = [c for p in rows for c in p.checks if c.verdict != "agrees"]
    assert all(p.company in answer.text for p in rows) and len(rows) == 17
    body = answer.text.split('id="peers-h"')[1].split('id="claims-h"')[0]
    # one row per firm, then one per differing check (as the CLI's table without --all)
    assert body.count('<th scope="row"') == len(rows) + len(differ)
    assert ">rounding<" in body and "R&D 3-year ratio: the printed figure is the mean" in body
    everything = _post(fin, "peers", {"file": (PEERS.name, PEERS.read_bytes())}, {"everything": "yes"}).text
    assert everything.count('<th scope="row"') > body.count('<th scope="row"')


def test_printed_claims_with_the_peer_table_check_the_table_text_and_totals(org):
    fin = browser(org, "fin")
    answer = _post(fin, "claims", {"file": (CLAIMS.name, CLAIMS.read_bytes()),
                                   "peers": (PEERS.name, PEERS.read_bytes())})
    assert answer.status_code == 200, answer.text[-2000:]
    body = answer.text.split('id="claims-h"')[1]
    assert "The printed table" in body and "The text's figures" in body
    assert "sum of revenue 2018 over 17 firms" in body and "the base 12.1 equals the sum without 视联动力" in body
    assert re.search(r"imply a profit base of 12\.079 to 12\.086 at P/E 61\.1", body)
    alone = _post(fin, "claims", {"file": (CLAIMS.name, CLAIMS.read_bytes())}).text.split('id="claims-h"')[1]
    assert "The printed table" in alone and "sum of revenue" not in alone


@pytest.mark.parametrize("path, files, problem", [
    ("peers", {"file": ("t.txt", b"company\n")}, "t.txt: expected a .csv file"),
    ("peers", {"file": ("t.csv", b"# only a comment\n")}, "the table does not say its unit"),
    ("peers", {"file": ("t.csv", b"\xff\xfe\x00")}, "t.csv: cannot be read"),
    ("claims", {"file": ("c.json", b"{not json")}, "c.json: cannot read the claims"),
    ("claims", {"file": ("c.json", json.dumps({"sector_pe": "61"}).encode())}, "c.json: missing profit_base, unit"),
])
def test_bad_files_are_a_400_naming_the_file_not_the_server_folder(org, path, files, problem):
    fin = browser(org, "fin")
    answer = _post(fin, path, files)
    assert answer.status_code == 400 and problem in answer.text, answer.text[-1500:]
    assert "cnet-finance-" not in answer.text and "/tmp" not in answer.text


def test_only_the_reports_role_and_only_with_the_csrf_token(org):
    files = {"file": (PEERS.name, PEERS.read_bytes())}
    assert browser(org, "fin").post(f"{PAGE}/peers", files=files).status_code == 403
    pi = browser(org, "pi")
    assert pi.post(f"{PAGE}/peers", data={"csrf_token": csrf(pi)}, files=files).status_code == 403


def test_the_checks_in_chinese(org):
    with org.db.session() as session:
        accounts.get_user(session, "fin").language = "zh-CN"
    fin = browser(org, "fin")
    answer = _post(fin, "peers", {"file": (PEERS.name, PEERS.read_bytes())})
    assert answer.status_code == 200
    assert "同业对比表中列出的数字" in answer.text and "列出值与重新计算值不同之处" in answer.text
    assert "三年研发投入占比" in answer.text and ">舍入差异<" in answer.text


def test_the_checks_in_a_browser_in_chinese(org, chromium):
    from browser import axe, new_page, shot, sign_in

    from computenet.cli.embedded import EmbeddedServer

    with org.db.session() as session:
        accounts.get_user(session, "fin").language = "zh-CN"
    with EmbeddedServer(org, run_services=False) as server:
        page = new_page(chromium, server.url, locale="zh-CN")
        sign_in(page, "fin", GOOD)
        page.goto(PAGE)
        page.set_input_files("#p-file", str(PEERS))
        page.click("form[action$='/peers'] button[type=submit]")
        page.wait_for_selector("#peers-h ~ h3")
        assert page.locator("html").get_attribute("lang") == "zh-CN"
        assert axe(page) == []
        shot(page, "finance-peers-zh-CN")
        page.set_input_files("#c-file", str(CLAIMS))
        page.set_input_files("#c-peers", str(PEERS))
        page.click("form[action$='/claims'] button[type=submit]")
        page.wait_for_selector("#claims-h ~ table")
        assert "同业对比表上列出的合计数" in page.inner_text("main")
        assert axe(page) == []
        shot(page, "finance-claims-zh-CN")
        page.context.close()

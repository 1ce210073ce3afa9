"""Monthly statements and usage reports, from the ledger and the rated records."""

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import update

from computenet.billing.statements import STATEMENT_CSV_COLUMNS, month_bounds
from computenet.client import ApiError
from computenet.services.jobs.poller import ClusterPoller
from computenet.store.models import Transfer

from conftest import poll_until


def run_jobs(client, platform, scripts):
    poller = ClusterPoller(platform, "local")
    jobs = [client.submit(s) for s in scripts]
    for job in jobs:
        poll_until(lambda: client.job(job.id).settled, step=poller.run_once, what=f"job {job.id} to settle")
    return [client.job(j.id) for j in jobs]


def test_month_bounds():
    assert month_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=timezone.utc),
                                       datetime(2027, 1, 1, tzinfo=timezone.utc))
    for bad in ("2026-13", "26-1x", "november"):
        with pytest.raises(ValueError):
            month_bounds(bad)


def test_statement_balances_and_lines(alice, platform):
    jobs = run_jobs(alice, platform, ["#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n",
                                      "#!/bin/bash\n#SBATCH -t 5\nexit 0\n"])
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    data = alice.statement("alice-lab", month)
    assert Decimal(data["opening_balance"]) == 0 and Decimal(data["top_ups"]) == Decimal("100.00")
    spent = sum(j.cost for j in jobs)
    assert Decimal(data["charges"]) == spent and Decimal(data["closing_balance"]) == Decimal("100.00") - spent
    assert sum(Decimal(x["amount"]) for x in data["lines"]) == Decimal(data["closing_balance"])
    assert Decimal(data["by_product_line"]["hpc"]) == spent and Decimal(data["held_at_close"]) == 0
    charged = [x for x in data["lines"] if x["job_id"] == jobs[0].id and x["kind"] == "post"]
    assert len(charged) == 1 and Decimal(charged[0]["core_hours"]) > 0
    # CSV says the same, as one rectangular table of lines in a customer's words, and a summary
    rows = list(csv.DictReader(io.StringIO(alice.statement_csv("alice-lab", month))))
    assert len(rows) == len(data["lines"]) and {len(r) for r in rows} == {len(STATEMENT_CSV_COLUMNS)}
    assert all(r["account"] == "alice-lab" and r["month"] == month and r["currency"] == "CNY" for r in rows)
    assert "post" not in {r["kind"] for r in rows}
    charged_rows = [r for r in rows if r["job_id"] == str(jobs[0].id) and r["kind"] == "charge"]
    assert len(charged_rows) == 1 and Decimal(charged_rows[0]["core_hours"]) > 0
    assert Decimal(charged_rows[0]["price_core_hour"]) == Decimal("36.00")
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(data["closing_balance"])
    summary = list(csv.DictReader(io.StringIO(
        alice.statement_file("alice-lab", month, "summary-csv").decode())))
    assert {len(r) for r in summary} == {6}
    items = {(r["item"], r["product_line"]): Decimal(r["amount"]) for r in summary}
    assert items[("opening_balance", "")] == 0 and items[("closing_balance", "")] == Decimal(data["closing_balance"])
    assert items[("charges", "hpc")] == spent and items[("top_ups", "")] == Decimal("100.00")


def test_opening_balance_carries_last_month(alice, platform):
    with platform.db.session() as session:  # the top-up happened last month
        session.execute(update(Transfer).where(Transfer.kind == "topup")
                        .values(created_at=datetime.now(timezone.utc) - timedelta(days=40)))
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    data = alice.statement("alice-lab", month)
    assert Decimal(data["opening_balance"]) == Decimal("100.00") and Decimal(data["top_ups"]) == 0
    assert Decimal(data["closing_balance"]) == Decimal("100.00")


def test_statements_are_private(alice, bob):
    with pytest.raises(ApiError) as err:
        bob.statement("alice-lab", "2026-11")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        alice.statement("alice-lab", "2026-13")
    assert err.value.status == 422 and "month" in err.value.detail  # refused by the route's YYYY-MM pattern


def test_usage_grouped(alice, platform):
    jobs = run_jobs(alice, platform, ["#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n"] * 2)
    (row,) = alice.usage("cluster")
    assert (row.key, row.jobs) == ("local", 2) and row.cost == sum(j.cost for j in jobs)
    assert row.core_hours > 0 and row.gpu_hours == 0
    assert [r.key for r in alice.usage("user")] == ["alice"]
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert [r.key for r in alice.usage("day")] == [today]
    assert alice.usage("cluster", start="2000-01-01T00:00:00Z", end="2000-02-01T00:00:00Z") == []
    with pytest.raises(ApiError) as err:
        alice.usage("planet")
    assert err.value.status == 400 and "cannot group by" in err.value.detail


def test_statement_as_pdf(alice, platform, tmp_path):
    import io

    from pypdf import PdfReader

    from computenet.billing.pdf import statement_pdf
    from computenet.billing.statements import Line, Statement

    run_jobs(alice, platform, ["#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n"])
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    data = alice.statement_file("alice-lab", month, "pdf")
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    expected = alice.statement("alice-lab", month)
    assert data.startswith(b"%PDF-") and "alice-lab" in text and "Statement no." in text
    assert f"ST-{month.replace('-', '')}-" in text and "UTC" in text  # the number, the period with its zone
    assert "Closing balance" in text and expected["closing_balance"] in text and "charge" in text
    # long statements flow onto more pages; Chinese text is set in the CJK font, not lost
    long = Statement(account="big", currency="CNY", month=month, opening_balance=Decimal("0.00"),
                     closing_balance=Decimal("0.00"), top_ups=Decimal("0.00"), charges=Decimal("0.00"),
                     lines=[Line("2026-11-01 00:00:00", "post", Decimal("-1.00"), i, "j", "hpc", Decimal("1"),
                                 Decimal("0"), "memo (with) \\ 分子动力学") for i in range(150)])
    reader = PdfReader(io.BytesIO(statement_pdf(long)))
    assert len(reader.pages) >= 3 and "memo (with) \\ 分子动力学" in reader.pages[1].extract_text()
    fonts = reader.pages[1]["/Resources"]["/Font"].values()  # embedded subsets (tests/test_statement_pdf.py)
    assert fonts and all("+" in str(font.get_object()["/BaseFont"]) for font in fonts)


def test_statement_pdf_in_chinese_with_the_issuer(alice, platform, monkeypatch):
    import io

    from pypdf import PdfReader

    month = datetime.now(timezone.utc).strftime("%Y-%m")
    monkeypatch.setattr(platform.settings.billing.issuer, "name", "北京算力网络科技有限公司")
    monkeypatch.setattr(platform.settings.billing.issuer, "tax_id", "91110108MA01ABCDEF")
    zh = alice.http.get(f"/accounts/alice-lab/statements/{month}", params={"format": "pdf", "lang": "zh-CN"})
    assert zh.status_code == 200, zh.text
    text = PdfReader(io.BytesIO(zh.content)).pages[0].extract_text()
    for said in ("北京算力网络科技有限公司", "对账单编号", "纳税人识别号", "91110108MA01ABCDEF", "账期", "期末余额", "UTC"):
        assert said in text, said
    # the language follows Accept-Language when not asked for; a language it has not is refused
    by_header = alice.http.get(f"/accounts/alice-lab/statements/{month}", params={"format": "pdf"},
                               headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "对账单编号" in PdfReader(io.BytesIO(by_header.content)).pages[0].extract_text()
    assert alice.http.get(f"/accounts/alice-lab/statements/{month}",
                          params={"format": "pdf", "lang": "fr"}).status_code == 422


def test_zero_cost_jobs_are_listed_with_unit_prices(alice, platform):
    # a job that used nothing (cancelled before it started: a job that only exits may still take a
    # second on a busy machine) rates at 0.00 and moves no money; the statement still lists it
    waiting = alice.submit("#!/bin/bash\n#SBATCH -t 5 --begin=now+1hour\nexit 0\n")
    alice.cancel(waiting.id)
    paid, = run_jobs(alice, platform, ["#!/bin/bash\n#SBATCH -c 2 -t 5\nsleep 1.2\n"])
    poll_until(lambda: alice.job(waiting.id).settled, step=ClusterPoller(platform, "local").run_once,
               what="the cancelled job to settle")
    free = alice.job(waiting.id)
    assert free.cost == 0 and paid.cost > 0, (free.cost, paid.cost)
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    data = alice.statement("alice-lab", month)
    listed = [x for x in data["lines"] if x["job_id"] == free.id]
    assert len(listed) == 1 and listed[0]["amount"] == "0.00" and listed[0]["kind"] == "charge", data["lines"]
    assert listed[0]["price_core_hour"] is not None
    charged = [x for x in data["lines"] if x["job_id"] == paid.id and x["kind"] == "post"]
    assert Decimal(charged[0]["price_core_hour"]) > 0
    assert sum(Decimal(x["amount"]) for x in data["lines"]) == Decimal(data["closing_balance"])
    assert [x["date"] for x in data["lines"]] == sorted(x["date"] for x in data["lines"])

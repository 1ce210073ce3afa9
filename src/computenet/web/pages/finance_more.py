"""Finance: what `cnet finance operator | show | star | scenario` show, in the portal, with charts.

The operator's own statement is analytics/finance_operator.py's (from the ledger, as `cnet finance
operator`); an uploaded statement (.csv or .json, as `cnet finance show FILE`) is read with
statements_io, analysed with finance.analyse and judged against the STAR standards with
star.evaluate; a valuation scenario is valuation.scenario from the form's figures. Nothing here
writes; the ``reports`` role (roles.py) may read it. The analyses' reasons and notes are the
analytics' own words, shown as they come.
"""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile

from ...analytics import finance, star, statements_io, valuation
from ...analytics.finance_operator import operator_statement
from ...analytics.reports import operational_warehouse
from ...services.tenancy import roles
from ...services.errors import Forbidden
from ..i18n import N_
from ..render import Viewer, page
from ..viewer import check_csrf, viewer
from .projects import platform_of, refused, signed_in_user

router = APIRouter(include_in_schema=False)
PAGE = "/portal/finance/analysis"
MAX_UPLOAD = 1_000_000  # a statement is a few rows a year
LABELS = {"revenue": N_("Revenue"), "cost_of_revenue": N_("Cost of revenue"), "gross_profit": N_("Gross profit"),
          "net_profit": N_("Net profit"), "rd_expense": N_("R&D"), "operating_cash_flow": N_("Operating cash flow")}
RATIOS = {"gross_margin": N_("Gross margin"), "net_margin": N_("Net margin"), "rd_ratio": N_("R&D ratio")}
VALUATION = {"pe": N_("P/E"), "ps": N_("P/S"), "cap_to_profit_plus_rd": N_("Market cap / (net profit + R&D)")}
VERDICTS = {star.MET: N_("met"), star.NOT_MET: N_("not met"), star.CANNOT_JUDGE: N_("cannot judge")}
UNITS = {"yuan": N_("yuan"), "10k-yuan": N_("10k yuan"), "100m-yuan": N_("100m yuan")}
DEFAULT_PREMIUMS = "1.2, 1.3, 1.5, 1.8"  # as `cnet finance scenario`


def _percent(figure, notes: list[str], what: str) -> dict:
    """A ratio as a percentage, or a dash whose reason is a numbered note (as the CLI's tables)."""
    if figure.value is not None:
        return {"value": figure.value * 100}
    notes.append(f"{what}: {figure.reason}")
    return {"value": None, "note": len(notes)}


def statement_view(report: finance.FinanceReport, who: Viewer) -> dict:
    """The report as tables and a chart, figures in the statement's unit."""
    s, notes = report.statement, []
    items = [i for i in LABELS if any(y.amounts.get(i) is not None for y in report.years)]
    years = [{"year": y.year, "amounts": [s.shown(y.amounts[i]) for i in items],
              "yoy": [_percent(y.growth[i], notes, f"{i} yoy {y.year}") if i in y.growth else {"value": None}
                      for i in ("revenue", "net_profit")],
              "ratios": [_percent(y.margins[m], notes, f"{m} {y.year}") for m in RATIOS]} for y in report.years]
    cagr = [{"item": LABELS[i], "first": a, "last": b, "figure": _percent(f, notes, f"{i} CAGR")}
            for i, (a, b, f) in report.cagr.items()]
    rd = {"span": f"{report.rd_years[0]}-{report.rd_years[-1]}" if report.rd_years else "",
          "cumulative": _percent(report.rd_cumulative, notes, "cumulative R&D"),
          "mean": _percent(report.rd_mean, notes, "mean R&D ratio")}
    valuation_rows = []
    for key, figure in report.valuation.items():
        if figure.value is None:
            notes.append(f"{key}: {figure.reason}")
        valuation_rows.append({"label": VALUATION[key], "value": figure.value,
                               "note": None if figure.value is not None else len(notes)})
    unit = who.gettext(UNITS.get(s.unit, s.unit))
    series = [{"type": "bar", "name": who.gettext(LABELS[i]),
               "data": [None if y.amounts[i] is None else float(s.shown(y.amounts[i])) for y in report.years]}
              for i in ("revenue", "gross_profit", "net_profit") if i in items]
    series += [{"type": "line", "yAxisIndex": 1, "name": who.gettext(RATIOS[m]),
                "data": [None if y.margins[m].value is None else round(float(y.margins[m].value) * 100, 2)
                         for y in report.years]} for m in ("gross_margin", "net_margin")]
    chart = {"aria": {"enabled": True}, "tooltip": {"trigger": "axis"}, "legend": {"type": "scroll", "top": 0},
             "grid": {"left": 70, "right": 60, "bottom": 40, "top": 60},
             "xAxis": {"type": "category", "data": [str(y.year) for y in report.years]},
             "yAxis": [{"type": "value", "name": unit}, {"type": "value", "name": "%"}], "series": series}
    return {"company": s.company, "unit": unit, "items": [LABELS[i] for i in items], "years": years, "cagr": cagr,
            "rd": rd, "valuation": valuation_rows, "last_year": s.years[-1], "notes": notes + report.notes,
            "chart": chart}


def _scenario_view(table: valuation.Scenario, who: Viewer) -> dict:
    rows = [{"premium": r.premium, "pe": r.pe, "cap": table.shown(r.market_cap),
             "cap_range": [table.shown(v) for v in r.cap_range], "share": r.share} for r in table.rows]
    chart = {"aria": {"enabled": True}, "tooltip": {"trigger": "axis"}, "grid": {"left": 80, "right": 20,
                                                                                   "bottom": 40, "top": 40},
             "xAxis": {"type": "category", "data": [f"{r.premium}×" for r in table.rows]},
             "yAxis": {"type": "value", "name": who.gettext(UNITS[table.unit])},
             "series": [{"type": "bar", "name": who.gettext("Market cap"),
                         "data": [round(float(table.shown(r.market_cap)), 3) for r in table.rows]}]}
    return {"rows": rows, "chart": chart, "unit": who.gettext(UNITS[table.unit]), "has_share": table.sector_cap
            is not None}


def _page(request: Request, who: Viewer, status: int = 200, **context):
    with platform_of(request).db.session() as session:
        me = signed_in_user(session, who)
        if not roles.allowed(session, me, "reports"):
            return refused(request, who, Forbidden(roles.refusal("reports")))
        context.setdefault("form", {"pe": "", "base": "", "premium": DEFAULT_PREMIUMS, "sector_cap": "",
                                    "unit": "100m-yuan"})
        return page(request, who, "ledger/analysis.html", status=status, units=UNITS, verdicts=VERDICTS, **context)


@router.get(PAGE)
def analysis(request: Request, view: str = ""):
    """The page; ?view=operator adds the operator's own statement from the ledger."""
    who = viewer(request)
    if view != "operator":
        return _page(request, who)
    platform = platform_of(request)
    try:
        with platform.db.session() as session:  # the role first: the ledger is read only for those who may
            roles.require(session, signed_in_user(session, who), "reports")
        report = finance.analyse(operator_statement(operational_warehouse(platform.db, platform.settings),
                                                    platform.settings.currency))
    except Forbidden as exc:
        return refused(request, who, exc)
    except statements_io.StatementError as exc:
        return _page(request, who, operator_error=str(exc))
    return _page(request, who, operator=statement_view(report, who))


@router.get(f"{PAGE}/scenario")
def scenario(request: Request, pe: str = "", base: str = "", premium: str = DEFAULT_PREMIUMS, sector_cap: str = "",
             unit: str = "100m-yuan"):
    """Premium multiples of a sector P/E on a profit base (as `cnet finance scenario`); a bad figure is a 400."""
    who = viewer(request)
    form = {"pe": pe[:40], "base": base[:40], "premium": premium[:200], "sector_cap": sector_cap[:40],
            "unit": unit[:16]}
    premiums = [p.strip() for p in premium[:200].split(",") if p.strip()]
    try:
        if unit not in UNITS:
            raise valuation.ScenarioError(f"unit: {unit!r} is not one of {', '.join(UNITS)}")
        if not pe.strip() or not base.strip():
            raise valuation.ScenarioError("give the sector P/E and the profit base")
        table = valuation.scenario(pe[:40].strip(), premiums, base[:40].strip(), sector_cap[:40].strip() or None,
                                   unit)
    except valuation.ScenarioError as exc:
        return _page(request, who, status=400, form=form, scenario_error=str(exc))
    return _page(request, who, form=form, scenario=_scenario_view(table, who))


@router.post(f"{PAGE}/statement")
async def statement(request: Request, file: UploadFile = File(...), csrf_token: str = Form("", max_length=100)):
    """An uploaded statement: growth, margins, valuation (`cnet finance show`) and STAR (`cnet finance star`)."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    data = await file.read(MAX_UPLOAD + 1)
    name = (file.filename or "statement").rsplit("/", 1)[-1][:100]
    try:
        if len(data) > MAX_UPLOAD:
            raise statements_io.StatementError(f"file: {name} is larger than {MAX_UPLOAD:,} bytes")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise statements_io.StatementError(f"file: {name} is not UTF-8 text") from None
        stem, _, suffix = name.rpartition(".")
        if suffix.lower() == "json":
            parsed = statements_io.read_json(text, stem)
        elif suffix.lower() == "csv":
            parsed = statements_io.read_csv(text, stem)
        else:
            raise statements_io.StatementError(f"file: {name}: expected a .csv or .json statement")
        report, standards = finance.analyse(parsed), star.evaluate(parsed)
    except (statements_io.StatementError, ArithmeticError) as exc:
        return _page(request, who, status=400, statement_error=str(exc))
    return _page(request, who, uploaded=statement_view(report, who), standards=standards, file_name=name)


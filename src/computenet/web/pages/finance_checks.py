"""Finance: `cnet finance peers FILE` and `cnet finance scenario --check CLAIMS [--peers FILE]` on the
analysis page: the printed figures of a peer table or of a report's claims against recomputation.

The uploads are read exactly as the CLI reads its files (peers.read_peers, printed_claims.read_claims on
a file of the upload's name in a private temporary folder); the checks are the analytics' own, their
reasons shown in their words (as the statement's notes on this page). Nothing is written.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, File, Form, Request, UploadFile

from ...analytics import peers as peer_table
from ...analytics import printed_claims, statements_io, valuation
from ...analytics.reconcile import AGREES, CONTRADICTION, NOT_PRINTED, ROUNDING, UNDEFINED
from ..i18n import N_
from ..viewer import check_csrf, viewer
from .finance_more import MAX_UPLOAD, PAGE, UNITS, _page, _scenario_view

router = APIRouter(include_in_schema=False)
CHECK_VERDICTS = {AGREES: N_("agrees"), ROUNDING: N_("rounding"), CONTRADICTION: N_("contradiction"),
                  UNDEFINED: N_("undefined"), NOT_PRINTED: N_("not printed")}


class _Upload:
    """Uploaded files as files of their own names in a private folder, for the readers the CLI uses;
    a problem names the upload, not the folder."""

    def __init__(self) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="cnet-finance-")

    async def save(self, upload: UploadFile, default: str, suffix: str) -> Path:
        data = await upload.read(MAX_UPLOAD + 1)
        name = Path((upload.filename or default).replace("\\", "/")).name[:100] or default
        if len(data) > MAX_UPLOAD:
            raise statements_io.StatementError(f"file: {name} is larger than {MAX_UPLOAD:,} bytes")
        if not name.lower().endswith(suffix):
            raise statements_io.StatementError(f"file: {name}: expected a {suffix} file")
        path = Path(self.folder.name) / name
        path.write_bytes(data)
        return path

    def said(self, exc: Exception) -> str:
        return str(exc).replace(self.folder.name + "/", "")

    def close(self) -> None:
        self.folder.cleanup()


def _checks(items, company: str = "") -> list[dict]:
    return [{"what": f"{company} {c.what}".strip(), "printed": c.printed, "computed": c.computed,
             "verdict": c.verdict, "reason": c.reason} for c in items]


def peers_view(rows: list, everything: bool) -> dict:
    """What `cnet finance peers` prints: each firm's listing verdict, the checks (differences only unless
    ``everything``), how many periods the printed CAGRs reproduce, and how the R&D ratio was averaged."""
    fits = {column: peer_table.period_fit(rows, column) for column in ("reported_revenue_cagr",
                                                                        "reported_profit_cagr")}
    method = peer_table.rd_method(rows)
    checks = [c for p in rows for c in _checks(p.checks, p.company) if everything or c["verdict"] != AGREES]
    firms = [{"company": p.company, "standard": p.standard, "checks": len(p.checks),
              "differ": sum(c.verdict != AGREES for c in p.checks),
              "listing": None if p.listing is None else p.listing.verdict} for p in rows]
    company, printed, cumulative = method.largest_gap
    return {"firms": firms, "checks": checks, "everything": everything,
            "fits": [{"column": column, "periods": [{"n": n, "hit": hit, "tried": tried}
                                                    for n, (hit, tried) in fit.items()]}
                     for column, fit in fits.items()],
            "rd": {"firms": method.firms, "mean": method.mean_matches, "cumulative": method.cumulative_matches,
                   "gap_company": company, "gap_printed": printed, "gap_cumulative": cumulative},
            "not_recomputable": peer_table.NOT_RECOMPUTABLE}


@router.post(f"{PAGE}/peers")
async def peers(request: Request, file: UploadFile = File(...), unit: str = Form("", max_length=16),
                everything: str = Form("", max_length=3), csrf_token: str = Form("", max_length=100)):
    """A peer table (CSV, as `cnet finance peers FILE [--unit] [--all]`)."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    upload = _Upload()
    try:
        if unit and unit not in UNITS:
            raise statements_io.StatementError(f"unit: {unit!r} is not one of {', '.join(UNITS)}")
        path = await upload.save(file, "peers.csv", ".csv")
        view = peers_view(peer_table.read_peers(path, unit or None), everything == "yes")
    except (statements_io.StatementError, ValueError, ArithmeticError) as exc:
        return _page(request, who, status=400, peers_error=upload.said(exc))
    finally:
        upload.close()
    return _page(request, who, peers=view, peers_name=path.name, check_verdicts=CHECK_VERDICTS)


@router.post(f"{PAGE}/claims")
async def claims(request: Request, file: UploadFile = File(...), peers: UploadFile | None = File(None),
                 csrf_token: str = Form("", max_length=100)):
    """A report's printed claims (JSON), with the peer table it sums, as `cnet finance scenario --check
    CLAIMS [--peers FILE]`: the scenario on the claims' inputs and the printed figures checked."""
    who = viewer(request)
    check_csrf(who, csrf_token)
    upload = _Upload()
    try:
        claimed = printed_claims.read_claims(await upload.save(file, "claims.json", ".json"))
        table = valuation.scenario(claimed.sector_pe, claimed.premiums, claimed.profit_base, claimed.sector_cap,
                                   claimed.unit)
        _, table_checks, text_checks = printed_claims.check_scenario(claimed, table)
        sums, base_notes = [], []
        if peers is not None and peers.filename:
            sums, base_notes = printed_claims.check_peer_totals(
                claimed, peer_table.read_peers(await upload.save(peers, "peers.csv", ".csv")))
        implied = printed_claims.implied_base(table, claimed)
    except (statements_io.StatementError, valuation.ScenarioError, ValueError, ArithmeticError) as exc:
        return _page(request, who, status=400, claims_error=upload.said(exc))
    except (KeyError, TypeError, AttributeError) as exc:  # a claims file of another shape: name what it lacks
        return _page(request, who, status=400, claims_error=f"{file.filename}: not printed claims as `cnet finance "
                                                            f"scenario --check` reads them ({type(exc).__name__}: "
                                                            f"{str(exc)[:100]})")
    finally:
        upload.close()
    return _page(request, who, claims={
        "scenario": _scenario_view(table, who), "table_checks": _checks(table_checks),
        "text_checks": _checks(text_checks), "sums": _checks(sums), "base_notes": base_notes,
        "implied": implied, "pe": table.sector_pe.yuan, "base": table.shown(table.base.yuan)},
        check_verdicts=CHECK_VERDICTS)

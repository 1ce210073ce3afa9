"""Routing policies: each ranks the feasible candidates and says why.

Lower score is better. Ties are broken by wait, then price, then name, so a
decision is the same every time for the same inputs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

from ..messages import N_, Money, msg
from .model import Candidate

NEVER = float("inf")
POLICIES = ("earliest_start", "cheapest", "owned_first", "data_locality", "weighted")


def _wait(c: Candidate) -> float:
    return NEVER if c.wait_s is None else c.wait_s


def _price(c: Candidate) -> Decimal:
    return c.price if c.price is not None else Decimal("Infinity")


def _tie(c: Candidate) -> tuple:
    return (_wait(c), _price(c), c.target.name)


# the why of a feasible candidate is made with msg (English as always, a template the portal translates)
OWNERSHIP = {"owned": N_("owned"), "leased": N_("leased")}


def human_wait(seconds: float | None) -> str:
    if seconds is None or seconds == NEVER:
        return msg("no start predicted")
    if seconds < 60:
        return msg("starts now") if seconds < 1 else msg("starts in ~%(n)s s", n=format(seconds, ".0f"))
    if seconds < 3600:
        return msg("starts in ~%(n)s min", n=format(seconds / 60, ".0f"))
    return msg("starts in ~%(n)s h", n=format(seconds / 3600, ".1f"))


def _describe(c: Candidate) -> str:
    price = msg("at most %(held)s", held=Money(c.held)) if c.price is not None else msg("unpriced")
    owner = c.target.ownership
    owner = msg(OWNERSHIP[owner]) if owner in OWNERSHIP else owner
    return msg("%(wait)s, %(price)s, %(ownership)s", wait=human_wait(c.wait_s), price=price, ownership=owner)


def _won(c: Candidate, why: str) -> None:
    """The best candidate's explanation, with why it won."""
    c.explanation = msg("%(described)s: %(why)s", described=c.explanation, why=why)


def earliest_start(cands: list[Candidate], **_) -> list[Candidate]:
    for c in cands:
        c.score = _wait(c)
        c.explanation = _describe(c)
    ranked = sorted(cands, key=_tie)
    if ranked:
        _won(ranked[0], msg("the earliest predicted start"))
    return ranked


def cheapest(cands: list[Candidate], **_) -> list[Candidate]:
    for c in cands:
        c.score = float(_price(c))
        c.explanation = _describe(c)
    ranked = sorted(cands, key=lambda c: (_price(c), _wait(c), c.target.name))
    if ranked:
        _won(ranked[0], msg("the lowest price"))
    return ranked


def owned_first(cands: list[Candidate], max_wait_s: float = 1800.0, **_) -> list[Candidate]:
    """Owned capacity first while its wait stays within the bound; then the rest by start."""
    def key(c: Candidate) -> tuple:
        in_bound = c.target.ownership == "owned" and _wait(c) <= max_wait_s
        return (0 if in_bound else 1, _wait(c), _price(c), c.target.name)

    for c in cands:
        c.score = key(c)[0] * 1e12 + min(_wait(c), 1e11)
        c.explanation = _describe(c)
    ranked = sorted(cands, key=key)
    if ranked:
        best = ranked[0]
        if best.target.ownership == "owned" and _wait(best) <= max_wait_s:
            _won(best, msg("owned capacity, wait within %(n)s min", n=format(max_wait_s / 60, ".0f")))
        else:
            _won(best, msg("no owned capacity starts within %(n)s min; earliest start",
                           n=format(max_wait_s / 60, ".0f")))
    return ranked


def data_locality(cands: list[Candidate], **_) -> list[Candidate]:
    for c in cands:
        c.score = (0 if c.has_data else 1) * 1e12 + min(_wait(c), 1e11)
        c.explanation = msg("%(described)s, input already there", described=_describe(c)) if c.has_data \
            else msg("%(described)s, input must be staged", described=_describe(c))
    ranked = sorted(cands, key=lambda c: (not c.has_data,) + _tie(c))
    if ranked:
        _won(ranked[0], msg("where the input lives") if ranked[0].has_data else msg("earliest start"))
    return ranked


def weighted(cands: list[Candidate], weights: dict[str, float] | None = None, **_) -> list[Candidate]:
    """Sum of weighted terms, each normalised to [0, 1] over the candidates."""
    w = {"wait": 1.0, "price": 1.0, "leased": 0.3, "data": 0.5, **(weights or {})}
    waits = [_wait(c) for c in cands if c.wait_s is not None]
    prices = [c.price for c in cands if c.price is not None]
    max_wait = max(waits, default=0.0) or 1.0
    max_price = float(max(prices, default=Decimal(0))) or 1.0
    for c in cands:
        terms = {
            "wait": (min(_wait(c), max_wait * 2) / max_wait),
            "price": (float(c.price) / max_price) if c.price is not None else 2.0,
            "leased": 0.0 if c.target.ownership == "owned" else 1.0,
            "data": 0.0 if c.has_data else 1.0,
        }
        c.score = sum(w.get(k, 0.0) * v for k, v in terms.items())
        parts = ", ".join(f"{k} {w.get(k, 0.0):g}x{v:.2f}" for k, v in terms.items() if w.get(k, 0.0))
        c.explanation = msg("%(described)s; score %(score)s = %(parts)s", described=_describe(c),
                            score=format(c.score, ".3f"), parts=parts)
    ranked = sorted(cands, key=lambda c: (c.score,) + _tie(c))
    if ranked:
        _won(ranked[0], msg("the lowest weighted score"))
    return ranked


RANKERS: dict[str, Callable[..., list[Candidate]]] = {
    "earliest_start": earliest_start, "cheapest": cheapest, "owned_first": owned_first,
    "data_locality": data_locality, "weighted": weighted,
}

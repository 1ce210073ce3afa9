"""What every operator report returns: rows under named columns, notes, and why it may be empty."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from .periods import Period

RATIO = Decimal("0.000001")
HOURS = Decimal("0.001")


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """part / whole to six places; None when the whole is not positive (no division by zero)."""
    if whole is None or part is None or whole <= 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATIO)


def hours(value: Decimal) -> Decimal:
    return value.quantize(HOURS)


@dataclass
class Report:
    name: str
    period: Period
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    empty: str | None = None  # set: the period has no data for this report, and why
    currency: str | None = None  # the money columns' currency (charts label their axes with it)

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def said(self, say) -> "Report":
        """A copy whose notes and empty reason went through ``say`` (msg texts into a reader's language)."""
        return replace(self, notes=[say(n) for n in self.notes], empty=say(self.empty) if self.empty else None)

    def as_json(self) -> dict:
        """Decimals as strings (money keeps its cents), undefined figures as null."""
        return {"report": self.name, "from": self.period.first.isoformat(), "to": self.period.last.isoformat(),
                "by": self.period.by, "columns": self.columns, "rows": [_plain(r) for r in self.rows],
                "summary": [_plain(r) for r in self.summary], "notes": self.notes, "empty": self.empty}

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            self.write_rows(handle)
        return path

    def write_rows(self, handle) -> None:
        """The rows as CSV; an undefined figure is an empty cell."""
        writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: "" if v is None else v for k, v in _plain(row).items()})


def _plain(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()}

"""Report periods: from a first day to a last day (both included), cut into days, months, quarters or years.

Times are UTC and naive here because the warehouse keeps them so (see
warehouse.py). A bucket at either edge of the period may be partial: it is
clipped to the period, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

GRAINS = ("day", "month", "quarter", "year")
# rows a report may have: ten years by day, or centuries by month. Beyond it a request is refused
# before any work (0001-01-01..9999-12-31 by day once ran for minutes and took gigabytes).
MAX_BUCKETS = 4000


class ReportError(ValueError):
    """Input a report cannot answer (named in the message); never answered with a made-up figure."""


@dataclass(frozen=True)
class Bucket:
    label: str  # 2022-03-05, 2022-03, 2022-Q1, 2022
    start: datetime
    end: datetime  # exclusive
    partial: bool  # clipped by the period's edges

    @property
    def hours(self) -> Decimal:
        return Decimal(int((self.end - self.start).total_seconds())) / 3600


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # included
    by: str

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, datetime.min.time())

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), datetime.min.time())

    def describe(self) -> str:
        return f"{self.first.isoformat()} to {self.last.isoformat()} by {self.by}"

    def buckets(self) -> list[Bucket]:
        out, cursor = [], _floor(self.start, self.by)
        while cursor < self.end:
            following = _next(cursor, self.by)
            start, end = max(cursor, self.start), min(following, self.end)
            out.append(Bucket(_label(cursor, self.by), start, end, (start, end) != (cursor, following)))
            cursor = following
        return out

    def aligned(self) -> bool:
        """Whether the period is whole buckets (growth compares like with like)."""
        return not any(b.partial for b in self.buckets())


def _day(value: date | str | None, option: str) -> date:
    if value is None or value == "":
        raise ReportError(f"{option} is required (a day, YYYY-MM-DD)")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ReportError(f"{option}: {value!r} is not a day (YYYY-MM-DD)") from None


def make_period(first: date | str | None, last: date | str | None, by: str = "month") -> Period:
    start, end = _day(first, "--from"), _day(last, "--to")
    if by not in GRAINS:
        raise ReportError(f"unknown grouping {by!r}: use one of {', '.join(GRAINS)}")
    if start > end:
        raise ReportError(f"--from ({start}) is after --to ({end})")
    count = bucket_count(start, end, by)
    if count > MAX_BUCKETS:
        raise ReportError(f"{start} to {end} by {by} is {count:,} periods; a report has at most {MAX_BUCKETS:,}: "
                          "narrow the range or group by a longer period")
    if end >= date.max:  # the period ends the day after --to, which must exist
        raise ReportError(f"--to ({end}) is the last day a date can hold: end the period a day earlier")
    return Period(start, end, by)


def bucket_count(first: date, last: date, by: str) -> int:
    """How many buckets first..last has, counted without making them."""
    if by == "day":
        return (last - first).days + 1
    if by == "month":
        return (last.year - first.year) * 12 + last.month - first.month + 1
    if by == "quarter":
        return (last.year * 4 + (last.month - 1) // 3) - (first.year * 4 + (first.month - 1) // 3) + 1
    return last.year - first.year + 1


def _floor(moment: datetime, by: str) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "day":
        return day
    if by == "month":
        return day.replace(day=1)
    if by == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _next(start: datetime, by: str) -> datetime:
    if by == "day":
        return start + timedelta(days=1)
    months = {"month": 1, "quarter": 3, "year": 12}[by]
    index = start.year * 12 + start.month - 1 + months
    return start.replace(year=index // 12, month=index % 12 + 1)


def _label(start: datetime, by: str) -> str:
    if by == "day":
        return start.date().isoformat()
    if by == "month":
        return f"{start.year}-{start.month:02d}"
    if by == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def months_between(earlier: Bucket, later: Bucket) -> int:
    return (later.start.year - earlier.start.year) * 12 + later.start.month - earlier.start.month

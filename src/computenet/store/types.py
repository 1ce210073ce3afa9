"""Column types that keep money exact and times in UTC on every backend.

SQLite has no exact decimal type (SQLAlchemy stores Numeric there as a
float), so money is kept as integer minor units and rates as integer
millionths; Python code only ever sees Decimal.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.types import TypeDecorator


class _ScaledDecimal(TypeDecorator):
    impl = BigInteger
    cache_ok = True
    scale = Decimal(1)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must not be a float")
        scaled = (Decimal(value) * self.scale).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        if scaled != Decimal(value) * self.scale:
            raise ValueError(f"{value} has more places than this column keeps (1/{self.scale})")
        return int(scaled)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(int(value)) / self.scale).quantize(1 / self.scale)


class Money(_ScaledDecimal):
    """An amount in cents (fen)."""

    scale = Decimal(100)
    cache_ok = True


class Rate(_ScaledDecimal):
    """A price per unit-hour in millionths of the currency."""

    scale = Decimal(1_000_000)
    cache_ok = True


class FineMoney(_ScaledDecimal):
    """An exact rated amount in billionths of the currency: usage below a cent is kept, not rounded away."""

    scale = Decimal(1_000_000_000)
    cache_ok = True


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite drops zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

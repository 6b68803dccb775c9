"""Follow-up intervals: date arithmetic and labels, pure Python (no Django).

The default schedule is 1 week, 1, 3, 6 and 12 months after the session (a clinic changes it
in admin). The clinical summary reports outcomes at 6 months (ref 3) and at 12-24 months
(refs 1, 6), so a clinic following scars longer may add 24 months.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass

DAY, WEEK, MONTH = "day", "week", "month"
UNITS = (DAY, WEEK, MONTH)
MAX_DAYS_AHEAD = 5 * 366  # an interval further out than five years is a typing error


@dataclass(frozen=True, order=True)
class Interval:
    amount: int
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}; got {self.unit!r}")
        if not isinstance(self.amount, int) or self.amount < 1:
            raise ValueError("an interval is at least 1 day, week or month")

    @property
    def label(self) -> str:
        plural = "" if self.amount == 1 else "s"
        return f"{self.amount} {self.unit}{plural}"

    def after(self, start: datetime.date) -> datetime.date:
        return add_interval(start, self.amount, self.unit)

    @property
    def approx_days(self) -> int:
        return {DAY: 1, WEEK: 7, MONTH: 31}[self.unit] * self.amount


DEFAULT_INTERVALS = (
    Interval(1, WEEK),
    Interval(1, MONTH),
    Interval(3, MONTH),
    Interval(6, MONTH),
    Interval(12, MONTH),
)


def add_months(start: datetime.date, months: int) -> datetime.date:
    """Calendar months; the 31st of January plus one month is the last day of February."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return datetime.date(year, month, day)


def add_interval(start: datetime.date, amount: int, unit: str) -> datetime.date:
    if unit == DAY:
        return start + datetime.timedelta(days=amount)
    if unit == WEEK:
        return start + datetime.timedelta(weeks=amount)
    if unit == MONTH:
        return add_months(start, amount)
    raise ValueError(f"unknown interval unit {unit!r}")


def schedule(
    start: datetime.date, intervals: tuple[Interval, ...] | list[Interval]
) -> list[tuple[Interval, datetime.date]]:
    """The due dates, earliest first, each interval once."""
    unique = sorted(set(intervals), key=lambda i: (i.after(start), i.unit, i.amount))
    return [(interval, interval.after(start)) for interval in unique]

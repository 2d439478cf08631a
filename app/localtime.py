"""Asia/Shanghai calendar periods: days, weeks and months as people count them, stored as UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar day an aware moment falls on."""
    return moment.astimezone(SHANGHAI).date()


def midnight_utc(day: date) -> datetime:
    """00:00 Asia/Shanghai of `day`, as an aware UTC datetime."""
    return datetime.combine(day, time.min, SHANGHAI).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day where it has fewer (31 Jan + 1 → 28 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (following - date.resolution).day
    return date(year, month, min(day.day, last_day))

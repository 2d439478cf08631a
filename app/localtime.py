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

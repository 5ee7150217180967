"""schedule.py: due when a fire time falls in (last run, now]."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from klaviyo_tui.run.schedule import is_due, next_run, validate_schedule

MONDAY_6 = "0 6 * * 1"
MON = datetime(2026, 6, 1, 6, 0)  # a Monday, naive local time


@pytest.mark.parametrize(
    ("last", "now", "due"),
    [
        (None, MON - timedelta(minutes=1), True),  # never ran, the previous Monday fired
        (None, MON, True),
        (MON - timedelta(days=7, minutes=-1), MON - timedelta(seconds=1), False),
        (MON - timedelta(days=7, minutes=-1), MON, True),  # fire time == now counts
        (MON - timedelta(days=7, minutes=-1), MON + timedelta(hours=3), True),
        (MON, MON + timedelta(hours=3), False),  # this fire already ran
        (MON + timedelta(minutes=1), MON + timedelta(days=6), False),
        (MON + timedelta(minutes=1), MON + timedelta(days=7), True),
    ],
)
def test_is_due(last: datetime | None, now: datetime, due: bool) -> None:
    assert is_due(MONDAY_6, last, now) is due


def test_aware_times_are_compared_as_local() -> None:
    now = datetime(2026, 6, 1, 12, 20, tzinfo=UTC)  # hourly fires at :00, :30 or :15 UTC
    last = now - timedelta(hours=2)
    assert is_due("@hourly", last, now)
    assert not is_due("@hourly", now - timedelta(minutes=1), now)
    assert is_due("* * * * *", last.replace(tzinfo=None).astimezone(), now)


def test_next_run() -> None:
    assert next_run(MONDAY_6, MON) == MON + timedelta(days=7)
    assert next_run(MONDAY_6, MON - timedelta(hours=1)) == MON
    aware = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    nxt = next_run("*/15 * * * *", aware)
    assert nxt.tzinfo is not None
    assert nxt - aware == timedelta(minutes=15)


@pytest.mark.parametrize("text", ["0 6 * * 1", "@daily", "*/5 9-17 * * mon-fri"])
def test_valid(text: str) -> None:
    assert validate_schedule(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("every monday", "five fields"),
        ("0 6 * *", "five fields"),
        ("61 * * * *", "not a valid cron"),
        ("@sometimes", "not a valid cron"),
        ("0 0 31 2 *", "not a valid cron"),
    ],
)
def test_invalid(text: str, fragment: str) -> None:
    problem = validate_schedule(text)
    assert problem is not None
    assert fragment in problem
    assert "e.g." in problem

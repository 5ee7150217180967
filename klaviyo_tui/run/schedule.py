"""Cron schedules for `klaviyo-tui run --due`, evaluated in local time like cron itself.

`run --due` is meant to be called often (say every few minutes from cron or a systemd timer); an
export is due when one of its fire times passed since its last run started. An export that never
ran is due as soon as its schedule has fired once, so a missed first run is caught up rather than
silently skipped (like anacron). Times are compared as naive local wall-clock times, so around a
DST change a fire time can shift by the change, as with cron.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from croniter import croniter
from croniter.croniter import CroniterError

_EXAMPLE = "e.g. '0 6 * * 1' for Mondays at 06:00, or '@daily'"


def validate_schedule(text: str) -> str | None:
    """None for a usable five-field cron expression (or @daily and friends); else the problem."""
    text = text.strip()
    if not text:
        return f"the schedule is empty; write a cron expression, {_EXAMPLE}"
    if not text.startswith("@") and len(text.split()) != 5:
        return (
            f"schedule {text!r} needs five fields (minute hour day-of-month month weekday), "
            f"{_EXAMPLE}"
        )
    try:
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        return f"schedule {text!r} is not a valid cron expression ({exc}); {_EXAMPLE}"
    return None


def _local_naive(moment: datetime) -> datetime:
    """Aware times become local wall-clock time; naive ones are taken as local already."""
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.replace(tzinfo=None)


def last_fire(schedule: str, now: datetime) -> datetime:
    """The latest fire time at or before `now`, as naive local time."""
    # croniter's get_prev is strictly before its start; start just after `now` to include it.
    start = _local_naive(now) + timedelta(seconds=1)
    fire = croniter(schedule.strip(), start.replace(microsecond=0)).get_prev(datetime)
    return cast(datetime, fire)  # croniter ships no types: get_prev(datetime) is Any to mypy


def is_due(schedule: str, last_run_started: datetime | None, now: datetime) -> bool:
    """True when a fire time falls in (last_run_started, now] (or it fired and never ran)."""
    fired = last_fire(schedule, now)
    if fired > _local_naive(now):
        return False
    if last_run_started is None:
        return True
    return fired > _local_naive(last_run_started)


def next_run(schedule: str, now: datetime) -> datetime:
    """The first fire time after `now`, aware in `now`'s zone if `now` is aware."""
    start = _local_naive(now)
    nxt: datetime = croniter(schedule.strip(), start).get_next(datetime)
    if now.tzinfo is not None:
        return nxt.astimezone(now.tzinfo)  # naive local -> aware
    return nxt

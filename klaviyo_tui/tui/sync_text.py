"""What the screens say about sync and verification: pure functions over plain figures.

Shared by the builder (settings, costs), the run view and the run detail, so the three use the
same words for the same numbers. Plain strings: callers wrap them in `Content` (never markup);
anything from data (a refusal message, a column name) goes through `safe_text` first.
"""

from __future__ import annotations

import math

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RunSummary
from klaviyo_tui.klaviyo.pacing import OPERATIONS, least_seconds_for
from klaviyo_tui.redaction import safe_text
from klaviyo_tui.run.progress import format_duration, plural
from klaviyo_tui.store.config import Export

#: Klaviyo's page of list members, and its batch of emails a profile lookup takes.
MEMBERS_PER_PAGE = 100
EMAILS_PER_LOOKUP = 100
#: The run's sync figures in the order people read them.
FIGURES = ("added", "updated", "unchanged", "removed", "subscribed")
#: What to do when a mirror run was refused for too many removals (the run view offers `a`).
WHAT_TO_DO_REFUSED = (
    "check the source and filter first (a broken one must never empty a list). If the "
    "removals are meant, press a to run once allowing them, or raise the limits (Sync tab)."
)


def _int(figures: dict[str, object], key: str) -> int:
    value = figures.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def verify_cost(mode: str, rows: int | None) -> str:
    """The cost of `verify` ("off", "full", "sample:N") in words, for a list of about `rows`."""
    if mode == "off":
        return "Off: Klaviyo's confirmation of each import job is the only check."
    if mode.startswith("sample:"):
        size = int(mode.split(":", 1)[1] or 0)
        calls = max(1, math.ceil(size / EMAILS_PER_LOOKUP))
        seconds = least_seconds_for(OPERATIONS["get_profiles"], calls)
        return (
            f"After each run, looks up {plural(size, 'random confirmed row')} by email "
            f"({plural(calls, 'call')}, about {format_duration(max(seconds, 1.0))}); "
            "a row not in the list ends not_in_list."
        )
    if rows is None:
        return (
            "After each run, reads every member of the list back: about 14 minutes a million "
            "members at Klaviyo's limits; a row not in the list ends not_in_list."
        )
    pages = max(1, math.ceil(rows / MEMBERS_PER_PAGE))
    seconds = least_seconds_for(OPERATIONS["get_profiles_for_list"], pages)
    return (
        f"After each run, reads every member of the list back: for {plural(rows, 'member')} "
        f"(this export's rows) about {format_duration(max(seconds, 1.0))} at Klaviyo's limits, "
        "more if the list holds others; a row not in the list ends not_in_list."
    )


def removal_limit(ratio: float, most: int | None, rows: int | None) -> str:
    """What the mirror limits allow, with the numbers when the export's size is known."""
    text = f"A run that would remove more than {_percent(ratio)} of the list"
    if most is not None:
        text += f" or more than {plural(most, 'profile')}"
    if rows:
        text += f" (about {math.floor(ratio * rows):,} of this export's {rows:,} rows)"
    return text + " stops before sending anything and says the numbers."


def _percent(ratio: float) -> str:
    return f"{ratio:.0%}" if ratio * 100 == round(ratio * 100) else f"{ratio:.1%}"


def settings_line(export: Export) -> str | None:
    """ "mirror · incremental · removes at most 10% · subscribes email · verify full", or None
    for an export that runs as a plain upsert."""
    s = export.sync
    parts = ["incremental"] if s.incremental else []
    if s.mirror:
        most = f" or {s.max_removals:,}" if s.max_removals is not None else ""
        parts.append(f"removes at most {_percent(s.max_removal_ratio)}{most}")
    if s.subscribe is not None:
        channel = s.subscribe.channel
        parts.append(f"subscribes {'email and SMS' if channel == 'both' else channel}")
    if export.verify != "off":
        parts.append(f"verify {export.verify}")
    return " · ".join([s.mode, *parts]) if parts or s.mirror else None


def has_sync(figures: dict[str, object]) -> bool:
    """Whether a run's figures say anything: a plain upsert that is not incremental does not."""
    if not figures:
        return False
    return figures.get("mode") != "upsert" or bool(figures.get("incremental"))


def sync_line(figures: dict[str, object], *, dry_run: bool = False) -> str:
    """ "mirror · added 120 · updated 30 · unchanged 24,000 · removed 12 · subscribed 150"; a dry
    run's removals are in `planned_removals`, with their cost."""
    if dry_run:
        parts = [
            f"to add {_int(figures, 'added'):,}",
            f"to update {_int(figures, 'updated'):,}",
            f"unchanged {_int(figures, 'unchanged'):,}",
        ]
        if "subscriptions" in figures:
            parts.append(f"to subscribe {_int(figures, 'subscriptions'):,}")
    else:
        parts = [f"{key} {_int(figures, key):,}" for key in FIGURES[:3]]
        if figures.get("mode") == "mirror":
            parts.append(f"removed {_int(figures, 'removed'):,}")
        if "subscribed" in figures:
            parts.append(f"subscribed {_int(figures, 'subscribed'):,}")
    retry = figures.get("retry_of")
    mode = f"{figures.get('mode', 'upsert')}" + (f" (a retry of run {retry})" if retry else "")
    return f"{mode} · " + " · ".join(parts)


def planned_removals(figures: dict[str, object], *, dry_run: bool) -> str | None:
    """A mirror run's removals in a sentence: planned (dry run) or found leaving (a run)."""
    if figures.get("mode") != "mirror":
        return None
    if dry_run:
        removals = _int(figures, "removals")
        if not removals:
            return "No profile left the segment: nothing to remove."
        seconds = figures.get("removal_seconds", 0)
        took = format_duration(float(seconds) if isinstance(seconds, int | float) else 0.0)
        return (
            f"{plural(removals, 'profile')} left the segment and would be removed from the list "
            f"({plural(_int(figures, 'removal_calls'), 'call')}, about {took})."
        )
    leavers, removed = _int(figures, "leavers"), _int(figures, "removed")
    if leavers <= removed:
        return None  # the figures say it all
    return f"{plural(leavers, 'profile')} left the segment; {removed:,} removed from the list."


def refusal(summary: RunSummary) -> str | None:
    """The mirror's refusal of a run (too many removals), as text; None when not refused."""
    figures = summary.sync
    refused = figures.get("refused")
    if isinstance(refused, str) and refused:
        return safe_text(refused)
    if (
        summary.exit_code == ExitCode.USAGE
        and figures.get("mode") == "mirror"
        and _int(figures, "leavers") > _int(figures, "removed")
        and summary.error
        and "nothing was sent" in summary.error
    ):
        return safe_text(summary.error)
    return None


def verification_line(result: dict[str, object]) -> str:
    """ "verified: 24,180 in the list, 0 missing" (a sample says so)."""
    mode = str(result.get("mode", ""))
    in_list, missing = _int(result, "in_list"), _int(result, "missing")
    head = "verified" if mode == "full" else f"verified a sample of {_int(result, 'checked'):,}"
    return f"{head}: {in_list:,} in the list, {missing:,} missing"


def full_reason(figures: dict[str, object]) -> str | None:
    """Why an incremental run sent every row (the mapping changed, ...), or None."""
    reason = figures.get("full_reason")
    if not isinstance(reason, str) or reason.startswith("no earlier run"):
        return None  # a first run sends everything: nothing worth a line
    return f"every row sent once: {safe_text(reason)}"

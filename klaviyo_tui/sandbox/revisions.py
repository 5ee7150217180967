"""The `revision` header, resolved the way the live API does (klaviyo-live-behaviour.md).

Malformed -> 400; before the first release -> 400 ("use a date after ..."); a future date ->
404 "Unable to specify a future revision date"; a date before the endpoint existed -> 404 "No
valid revisions found for method"; a retired revision -> 410. Any other past date resolves to
the nearest earlier release, as the live API accepts non-release dates. Releases are the spec
repo's revision branches (settings.KNOWN_REVISIONS); a revision retires two years after its
release (Klaviyo's versioning policy), measured against today's date (UTC).
"""

from __future__ import annotations

import bisect
import re
from datetime import UTC, date, datetime

from .error_responses import ApiError, invalid
from .settings import KNOWN_REVISIONS

RELEASES: tuple[str, ...] = tuple(sorted(KNOWN_REVISIONS))
_SHAPE = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.pre)?$")
RETIRE_AFTER_YEARS = 2

#: The first revision that has each operation (others: the first GA revision, 2022-10-17).
#: Bulk import went GA in 2023-12-15 (klaviyo-api.md §2.7); accounts arrived in 2023-02-22.
INTRODUCED: dict[str, str] = {
    "get_accounts": "2023-02-22",
    "bulk_import_profiles": "2023-12-15",
    "get_bulk_import_profiles_job": "2023-12-15",
    "get_bulk_import_profiles_jobs": "2023-12-15",
    "get_errors_for_bulk_import_profiles_job": "2023-12-15",
}


def _revision_error(status: int, code: str, title: str, detail: str) -> ApiError:
    return ApiError(status, code, title, detail, parameter="revision")


def retired_before(today: date) -> str:
    """Releases strictly before this date (same day, two years earlier) are retired."""
    try:
        cutoff = today.replace(year=today.year - RETIRE_AFTER_YEARS)
    except ValueError:  # 29 February
        cutoff = today.replace(year=today.year - RETIRE_AFTER_YEARS, day=28)
    return cutoff.isoformat()


def resolve(value: str | None, operation_id: str, today: date | None = None) -> str:
    """The release a request's `revision` header selects, or the live API's refusal."""
    if value is None:
        raise invalid(
            "The revision header is required (for example 2026-07-15).", parameter="revision"
        )
    m = _SHAPE.match(value.strip())
    try:
        asked = date.fromisoformat(m.group(1)) if m else None
    except ValueError:
        asked = None
    if m is None or asked is None:
        raise invalid(
            f"'{value}' is not a valid revision; use a date like 2026-07-15.",
            parameter="revision",
        )
    day = asked.isoformat()
    if m.group(2) and day not in KNOWN_REVISIONS:
        raise invalid(f"There is no beta revision '{value}'.", parameter="revision")
    today = today or datetime.now(UTC).date()
    if asked > today:
        raise _revision_error(
            404, "not_found", "Not found.", "Unable to specify a future revision date."
        )
    if day < RELEASES[0]:
        raise invalid(
            f"'{value}' is earlier than every revision; use a date after {RELEASES[0]}.",
            parameter="revision",
        )
    release = RELEASES[bisect.bisect_right(RELEASES, day) - 1]
    if release < INTRODUCED.get(operation_id, RELEASES[0]):
        raise _revision_error(
            404, "not_found", "Not found.", f"No valid revisions found for method ({value})."
        )
    if release < retired_before(today):
        raise _revision_error(
            410,
            "gone",
            "Gone.",
            f"Revision {release} has been retired; use a revision from the last two years.",
        )
    return release

"""Plain result types and lenient parsers for Klaviyo's JSON:API documents.

Real responses drift from the spec (null vs absent links, null counts, status as int or string,
empty address fields), so every parser here takes what it finds and defaults the rest.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from klaviyo_tui.klaviyo.exceptions import EXPORT_SCOPES, ApiErrorDetail, scopes_hint


class JobState(enum.StrEnum):
    """What a job's status means to us. The spec knows four; anything else is UNKNOWN."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # e.g. `failed` (seen live, not in the spec) or no status at all


RUNNING_STATES = frozenset({JobState.QUEUED, JobState.PROCESSING})


@dataclass(frozen=True, slots=True)
class KlaviyoList:
    id: str
    name: str
    created: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportJob:
    """A profile bulk import job.

    `status` is Klaviyo's word as sent (lower-cased; "" when missing), so an undocumented status
    such as `failed` can be shown; `state` is what it means. Only queued and processing are
    running: polling ends on every other status, so an unknown one cannot keep a run waiting
    forever. Counts are never negative; on a complete job a null count is derived from the
    other (see parse_job), and `counts_known` is False when neither was given.
    """

    id: str
    status: str
    total_count: int = 0
    completed_count: int = 0
    failed_count: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    list_ids: tuple[str, ...] = ()
    counts_known: bool = True

    @property
    def state(self) -> JobState:
        try:
            return JobState(self.status)
        except ValueError:
            return JobState.UNKNOWN

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def finished(self) -> bool:
        """True for every status that is not queued or processing (unknown ones included)."""
        return not self.running

    @property
    def unknown(self) -> bool:
        """Klaviyo sent a status the spec does not list (or none): its rows are not confirmed."""
        return self.state is JobState.UNKNOWN

    @property
    def progress_key(self) -> tuple[str, int, int, int]:
        """Changes whenever the job visibly moves; a poller compares it to spot a stuck job."""
        return (self.status, self.total_count, self.completed_count, self.failed_count)


class ListMember(NamedTuple):
    """One member of a list: its Klaviyo profile id, email (None when it has none) and when it
    joined the list (`joined_group_at` as Klaviyo wrote it; None when missing)."""

    profile_id: str
    email: str | None
    joined: str | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionProfile:
    """One profile to subscribe (KlaviyoClient.subscribe_profiles): identifiers and channels.

    Only what the subscribe endpoint accepts: email, phone number (E.164) and consent per
    channel. `consented_at` (aware, in the past) is sent only with a historical import, where
    Klaviyo requires it.
    """

    email: str | None = None
    phone_number: str | None = None
    email_marketing: bool = True
    sms_marketing: bool = False
    consented_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportErrorItem:
    """One profile that failed inside a job (from /import-errors)."""

    code: str
    title: str
    detail: str
    pointer: str | None
    original_payload: dict[str, Any] | None
    id: str = ""


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """What a key can do, learned without writing anything (see KlaviyoClient.verify_key)."""

    account_name: str | None
    account_id: str | None
    granted: dict[str, bool]
    test_account: bool | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the key has every scope an export needs (accounts:read is optional)."""
        return not self.missing

    @property
    def fix_hint(self) -> str:
        if self.ok:
            if not self.granted.get("accounts:read", False):
                return "The key can export. (Without accounts:read the account name is not shown.)"
            return "The key can export."
        return f"This key lacks {', '.join(self.missing)}; {scopes_hint()}."


# ---- lenient readers ---------------------------------------------------------------------------


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: object, default: str = "") -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def as_count(value: object) -> int | None:
    """A count that may be null, a string or a float; None when absent or unreadable, never < 0."""
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value == value and abs(value) != float("inf"):
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(float(value.strip()))
        except (ValueError, OverflowError):
            number = None
    return None if number is None else max(0, number)


def as_int(value: object) -> int:
    """Counts may be null, strings or floats; anything unreadable is 0, and nothing is < 0."""
    count = as_count(value)
    return 0 if count is None else count


def as_status(value: object) -> int | None:
    """Error `status` arrives as 400 or "400"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def as_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def next_link(doc: dict[str, Any]) -> str | None:
    """`links.next`: null, absent and empty all mean "last page"."""
    nxt = as_dict(doc.get("links")).get("next")
    return nxt if isinstance(nxt, str) and nxt else None


def data_items(doc: dict[str, Any]) -> list[dict[str, Any]]:
    data = doc.get("data")
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    if isinstance(data, dict):
        return [data]
    return []


def parse_list(obj: dict[str, Any]) -> KlaviyoList:
    attrs = as_dict(obj.get("attributes"))
    return KlaviyoList(
        id=as_str(obj.get("id")),
        name=as_str(attrs.get("name")),
        created=as_datetime(attrs.get("created")),
        updated=as_datetime(attrs.get("updated")),
    )


def parse_job(obj: dict[str, Any]) -> ImportJob:
    attrs = as_dict(obj.get("attributes"))
    lists = as_dict(as_dict(obj.get("relationships")).get("lists")).get("data")
    list_ids = tuple(
        as_str(item.get("id"))
        for item in (lists or [])
        if isinstance(item, dict) and item.get("id")
    )
    status = as_str(attrs.get("status")).strip().lower()
    total = as_int(attrs.get("total_count"))
    completed = as_count(attrs.get("completed_count"))
    failed = as_count(attrs.get("failed_count"))
    known = True
    if status == JobState.COMPLETE:
        # Both counts are nullable: a finished job's missing count is what the other leaves.
        if failed is None and completed is not None:
            failed = max(0, total - completed)
        elif completed is None and failed is not None:
            completed = max(0, total - failed)
        known = completed is not None and failed is not None
    return ImportJob(
        id=as_str(obj.get("id")),
        status=status,
        total_count=total,
        completed_count=completed or 0,
        failed_count=failed or 0,
        counts_known=known,
        created_at=as_datetime(attrs.get("created_at")),
        started_at=as_datetime(attrs.get("started_at")),
        completed_at=as_datetime(attrs.get("completed_at")),
        expires_at=as_datetime(attrs.get("expires_at")),
        list_ids=list_ids,
    )


def parse_import_error(obj: dict[str, Any]) -> ImportErrorItem:
    attrs = as_dict(obj.get("attributes"))
    pointer = as_dict(attrs.get("source")).get("pointer")
    payload = attrs.get("original_payload")
    return ImportErrorItem(
        code=as_str(attrs.get("code")),
        title=as_str(attrs.get("title")),
        detail=as_str(attrs.get("detail")),
        pointer=pointer if isinstance(pointer, str) else None,
        original_payload=payload if isinstance(payload, dict) else None,
        id=as_str(obj.get("id")),
    )


def parse_errors(doc: object) -> tuple[ApiErrorDetail, ...]:
    """The `errors` envelope; anything else becomes an empty tuple."""
    items = as_dict(doc).get("errors")
    out: list[ApiErrorDetail] = []
    for e in items if isinstance(items, list) else []:
        if not isinstance(e, dict):
            continue
        source = as_dict(e.get("source"))
        pointer, parameter = source.get("pointer"), source.get("parameter")
        out.append(
            ApiErrorDetail(
                status=as_status(e.get("status")),
                code=as_str(e.get("code")),
                title=as_str(e.get("title")),
                detail=as_str(e.get("detail")),
                pointer=pointer if isinstance(pointer, str) else None,
                parameter=parameter if isinstance(parameter, str) else None,
            )
        )
    return tuple(out)


def account_name(obj: dict[str, Any]) -> str | None:
    attrs = as_dict(obj.get("attributes"))
    contact = as_dict(attrs.get("contact_information"))
    for key in ("organization_name", "default_sender_name"):
        value = contact.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def missing_scopes(granted: dict[str, bool]) -> list[str]:
    return [s for s in EXPORT_SCOPES if not granted.get(s, False)]

"""Plain result types and lenient parsers for Klaviyo's JSON:API documents.

Real responses drift from the spec (null vs absent links, null counts, status as int or string,
empty address fields), so every parser here takes what it finds and defaults the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from klaviyo_tui.klaviyo.exceptions import EXPORT_SCOPES, ApiErrorDetail, scopes_hint

FINISHED_STATUSES = frozenset({"complete", "cancelled"})
RUNNING_STATUSES = frozenset({"queued", "processing"})


@dataclass(frozen=True, slots=True)
class KlaviyoList:
    id: str
    name: str
    created: datetime | None = None
    updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportJob:
    """A profile bulk import job. Counts that Klaviyo sends as null read as 0."""

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

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def running(self) -> bool:
        return not self.finished


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


def as_int(value: object) -> int:
    """Counts may be null, strings or floats; anything unreadable is 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value.strip()))
        except ValueError:
            return 0
    return 0


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
    return ImportJob(
        id=as_str(obj.get("id")),
        status=as_str(attrs.get("status"), "queued").strip().lower(),
        total_count=as_int(attrs.get("total_count")),
        completed_count=as_int(attrs.get("completed_count")),
        failed_count=as_int(attrs.get("failed_count")),
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

"""Typed errors from the Klaviyo client: what happened, what to do, and an exit code.

Messages never contain the API key; the client masks it (`pk_…abcd`) and scrubs server text before
building an error, so front ends can print `str(error)` as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from klaviyo_tui.errors import AppError, ExitCode

KEY_HELP_URL = "https://www.klaviyo.com/settings/account/api-keys"
EXPORT_SCOPES: tuple[str, ...] = ("lists:read", "lists:write", "profiles:read", "profiles:write")

_ROW_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(?:/attributes/?(.*))?$")


class KlaviyoError(AppError):
    """Base class: a problem talking to Klaviyo that a person can understand and act on."""

    title = "Klaviyo request failed"
    default_hint = "Check the connection and retry."
    exit_code = ExitCode.UNAVAILABLE


class InvalidConfiguration(KlaviyoError):
    """The connection settings (base URL, revision, ids) cannot work; fix the configuration."""

    title = "Connection settings problem"
    default_hint = "Edit the connection (base URL, revision) or the export (list id)."
    exit_code = ExitCode.USAGE


class InvalidBaseURL(InvalidConfiguration):
    """The base URL is not https:// (and not loopback) or is malformed."""


class AuthError(KlaviyoError):
    """401: Klaviyo does not know this key."""

    title = "Klaviyo refused the API key"
    default_hint = "Check the key (a private key, pk_…) or create a new one, then retry."
    exit_code = ExitCode.AUTH


class ScopeError(KlaviyoError):
    """403 (JSON): the key is valid but lacks a scope the operation needs."""

    title = "The API key lacks a permission"
    default_hint = "Edit the key's scopes in Klaviyo (Settings › API keys), then retry."
    exit_code = ExitCode.AUTH

    def __init__(self, message: str, missing: tuple[str, ...]) -> None:
        super().__init__(message)
        self.missing = missing


class NotFoundError(KlaviyoError):
    """404: the list or job does not exist in this account."""

    title = "Not found in Klaviyo"
    default_hint = "Check the list ID, or pick the list from the account."

    exit_code = ExitCode.USAGE


class AmbiguousListName(KlaviyoError):
    """More than one list of the account has exactly the name asked for: no guess is made."""

    title = "More than one list has that name"
    default_hint = (
        "Give the list by its id instead (e.g. `--list ID`; `klaviyo-tui lists` shows the ids, "
        "and so does the app's list picker), or rename one of the lists in Klaviyo."
    )
    exit_code = ExitCode.USAGE

    def __init__(self, name: str, ids: tuple[str, ...]) -> None:
        super().__init__(
            f"{len(ids)} lists in this account are named {name!r}: {', '.join(ids)}; "
            "none was picked and nothing was created"
        )
        self.name = name
        self.ids = ids


@dataclass(frozen=True, slots=True)
class ApiErrorDetail:
    """One entry of Klaviyo's JSON:API `errors` array, parsed leniently."""

    status: int | None
    code: str
    title: str
    detail: str
    pointer: str | None = None
    parameter: str | None = None

    @property
    def row(self) -> tuple[int, str, str] | None:
        """(row index in the batch, field, detail) when the pointer names a bulk-import profile."""
        if not self.pointer:
            return None
        m = _ROW_POINTER.match(self.pointer)
        if m is None:
            return None
        return int(m.group(1)), (m.group(2) or ""), self.detail or self.title


class RequestRejected(KlaviyoError):
    """400 (or another non-retryable 4xx): Klaviyo refused the request; `errors` says why."""

    title = "Klaviyo refused the request"
    default_hint = "Fix what Klaviyo names above, then retry."

    exit_code = ExitCode.INPUT

    def __init__(self, message: str, errors: tuple[ApiErrorDetail, ...], status: int = 400) -> None:
        super().__init__(message)
        self.errors = errors
        self.status = status

    @property
    def row_errors(self) -> list[tuple[int, str, str]]:
        """Bulk import: the rows Klaviyo named, as (index, field, detail)."""
        return [r for e in self.errors if (r := e.row) is not None]

    @property
    def unattributed(self) -> list[ApiErrorDetail]:
        """Errors that name no row (e.g. a bad list id): dropping rows cannot fix the batch."""
        return [e for e in self.errors if e.row is None]


class UnavailableError(KlaviyoError):
    """Retries exhausted (429, 5xx, timeouts, resets, edge challenges): says what happened last."""

    title = "Klaviyo is unavailable"
    default_hint = "Wait a few minutes and retry; an interrupted run resumes with --resume."

    exit_code = ExitCode.UNAVAILABLE


class RateLimitedUntil(UnavailableError):
    """Klaviyo's shared rate limit asks for a longer wait than the request may spend (e.g. a
    daily cap is used up): the run stops, resumable, and says when to try again."""

    title = "Klaviyo's rate limit is used up for now"
    default_hint = (
        "Klaviyo's limits are per account and shared with every app on it; resume the run "
        "(--resume) after the time given, or raise the rate-limit wait in the connection."
    )
    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str, *, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class InvalidSubscription(KlaviyoError):
    """A subscription request we refuse to build (no identifier, consent time missing or in the
    future): sending it would fail, or would assert consent nobody gave."""

    title = "Subscription details are incomplete"
    default_hint = (
        "Give each profile an email or phone number; with a historical import, give each a past "
        "consent time (with a time zone)."
    )
    exit_code = ExitCode.INPUT


class UnsearchableValue(KlaviyoError):
    """A value that cannot be put in a Klaviyo filter literal (it holds a backslash, both quote
    kinds or a control character): refused rather than sent as a broken or different filter."""

    title = "A value cannot be looked up in Klaviyo"
    default_hint = "Remove or correct the values named above, then retry."
    exit_code = ExitCode.INPUT

    def __init__(self, message: str, values: tuple[str, ...]) -> None:
        super().__init__(message)
        self.values = values


class UnexpectedResponse(KlaviyoError):
    """A 2xx answer we cannot use (not JSON, or no `data.id` on a new job)."""

    exit_code = ExitCode.UNAVAILABLE


def scopes_hint() -> str:
    return f"create a key with {', '.join(EXPORT_SCOPES)} at {KEY_HELP_URL}"

"""Typed errors from the Klaviyo client: what happened, what to do, and an exit code.

Messages never contain the API key; the client masks it (`pk_…abcd`) and scrubs server text before
building an error, so front ends can print `str(error)` as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from klaviyo_tui.model import ExitCode

KEY_HELP_URL = "https://www.klaviyo.com/settings/account/api-keys"
EXPORT_SCOPES: tuple[str, ...] = ("lists:read", "lists:write", "profiles:read", "profiles:write")

_ROW_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(?:/attributes/?(.*))?$")


class KlaviyoError(Exception):
    """Base class: a problem talking to Klaviyo that a person can understand and act on."""

    exit_code: ExitCode = ExitCode.UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidConfiguration(KlaviyoError):
    """The connection settings (base URL, revision, ids) cannot work; fix the configuration."""

    exit_code = ExitCode.USAGE


class InvalidBaseURL(InvalidConfiguration):
    """The base URL is not https:// (and not loopback) or is malformed."""


class AuthError(KlaviyoError):
    """401: Klaviyo does not know this key."""

    exit_code = ExitCode.AUTH


class ScopeError(KlaviyoError):
    """403 (JSON): the key is valid but lacks a scope the operation needs."""

    exit_code = ExitCode.AUTH

    def __init__(self, message: str, missing: tuple[str, ...]) -> None:
        super().__init__(message)
        self.missing = missing


class NotFoundError(KlaviyoError):
    """404: the list or job does not exist in this account."""

    exit_code = ExitCode.USAGE


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

    exit_code = ExitCode.UNAVAILABLE


class UnexpectedResponse(KlaviyoError):
    """A 2xx answer we cannot use (not JSON, or no `data.id` on a new job)."""

    exit_code = ExitCode.UNAVAILABLE


def scopes_hint() -> str:
    return f"create a key with {', '.join(EXPORT_SCOPES)} at {KEY_HELP_URL}"

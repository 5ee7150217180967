"""The data-privacy and compliance acknowledgement, shared by the CLI and the TUI word for word."""

from __future__ import annotations

import dataclasses
import getpass
from datetime import UTC, datetime

from klaviyo_tui.store.config import Connection

CONSENT_TITLE = "Data privacy and compliance"
CONSENT_TEXT = (
    "Exports through this connection send customer data, including personal data such as email "
    "addresses, phone numbers and names, from this machine to Klaviyo, a third-party service "
    "outside your control.\n\n"
    "You are responsible for having a lawful basis to share this data and for meeting Klaviyo's "
    "privacy and security obligations (and those of the laws that apply to you, such as GDPR or "
    "CCPA).\n\n"
    "You can remove this connection at any time; removing it also deletes its API key from this "
    "machine's keyring. It does not delete data already sent to Klaviyo."
)


def accept(connection: Connection, *, now: datetime | None = None) -> Connection:
    """The connection with consent recorded: when (UTC, ISO 8601) and by which OS user."""
    when = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return dataclasses.replace(connection, consent_accepted_at=when, consent_accepted_by=user)

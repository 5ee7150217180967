"""The data-privacy and compliance acknowledgement, shared by the CLI and the TUI word for word."""

from __future__ import annotations

import dataclasses
import getpass
from datetime import UTC, datetime

from klaviyo_tui.store.config import Connection
from klaviyo_tui.store.sync_config import Subscribe

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


SUBSCRIBE_CONSENT_TITLE = "Marketing consent"


def subscribe_consent_text(channel: str, historical: bool, column: str | None) -> str:
    """Exactly what a person asserts when an export subscribes its rows (CLI and builder)."""
    what = {
        "email": "email marketing",
        "sms": "SMS marketing",
        "both": "email and SMS marketing",
    }.get(channel, channel)
    when = (
        f"at the time given in column {column!r} of each row"
        if column
        else "before this export runs"
    )
    how = (
        "Klaviyo records that consent as given at that time and sends no confirmation message "
        "(a historical import), so a row without a past consent time is refused."
        if historical
        else "Klaviyo records the consent now; on a double opt-in list it first sends each "
        "customer a confirmation message."
    )
    return (
        f"This export subscribes every row it sends to {what} on its Klaviyo list.\n\n"
        f"You assert that each of these customers gave you their consent to receive {what}, "
        f"{when}, in a way the laws that apply to you accept (for example GDPR, CAN-SPAM, TCPA), "
        "and that you can show that consent if asked.\n\n"
        f"{how} Subscribing also lifts an earlier unsubscribe or suppression of these customers "
        "in Klaviyo. Removing a customer from the list later does not withdraw the consent."
    )


SUBSCRIBE_CONSENT_TEXT = subscribe_consent_text("email", True, "consented_at")


def assert_subscribe(subscribe: Subscribe, *, now: datetime | None = None) -> Subscribe:
    """The subscribe settings with the assertion recorded: when (UTC) and by which OS user."""
    when = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return dataclasses.replace(subscribe, asserted_at=when, asserted_by=user)

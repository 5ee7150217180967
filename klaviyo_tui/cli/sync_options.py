"""The sync flags of `exports create` and the consent question of `exports create/edit`.

Subscribing asserts consent on the user's behalf, so the exact text
(`store.consent.subscribe_consent_text`) is shown before the question; without a terminal,
`--assert-consent` answers it (after reading the text, e.g. in `exports create --help`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from klaviyo_tui.cli.output import say
from klaviyo_tui.cli.prompts import confirm, has_terminal
from klaviyo_tui.services.export_sync import new_sync
from klaviyo_tui.store.consent import SUBSCRIBE_CONSENT_TITLE, subscribe_consent_text
from klaviyo_tui.store.sync_config import DEFAULT_MAX_REMOVAL_RATIO, Subscribe, SyncSettings

ASSERT_FLAG = "--assert-consent"


def sync_create_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The sync flags, added to `exports create`."""
    options = [
        click.option(
            "--mode",
            type=click.Choice(["upsert", "mirror"]),
            default="upsert",
            help="upsert: send rows, never remove (default); mirror: also remove from the list "
            "the customers this tool added who left the segment (with limits).",
        ),
        click.option(
            "--incremental/--no-incremental",
            default=True,
            help="Send only new or changed rows after the first run (default: on).",
        ),
        click.option(
            "--max-removal-ratio",
            type=click.FloatRange(0, 1),
            default=DEFAULT_MAX_REMOVAL_RATIO,
            help="Mirror: refuse a run that would remove more of the list (default 0.10).",
        ),
        click.option("--max-removals", type=click.IntRange(0), help="Mirror: and more than N."),
        click.option(
            "--subscribe",
            type=click.Choice(["email", "sms", "both"]),
            help="Subscribe every row sent to marketing on this channel (asserts consent).",
        ),
        click.option("--consent-column", metavar="COLUMN", help="When each row consented."),
        click.option(
            "--historical",
            is_flag=True,
            help="Consent was given earlier (at --consent-column): no confirmation message.",
        ),
        click.option(
            ASSERT_FLAG,
            "assert_consent",
            is_flag=True,
            help="Accept the subscribe consent text without being asked (scripts).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def consent_given(sub: Subscribe, *, flag: bool, as_json: bool) -> bool:
    """Show exactly what is asserted, then ask (or take --assert-consent)."""
    text = subscribe_consent_text(sub.channel, sub.historical, sub.consented_at_column)
    if not as_json or not flag:
        say(f"{SUBSCRIBE_CONSENT_TITLE}\n\n{text}\n", err=True)
    if flag:
        return True
    if not has_terminal():
        return False  # the service says what is missing and names the flag
    return confirm("Do you assert this consent?", flag=ASSERT_FLAG, default=False)


def sync_from_flags(kw: dict[str, Any], *, as_json: bool) -> SyncSettings:
    """Pop the sync flags from a command's keyword arguments into a new export's settings."""
    channel = kw.pop("subscribe")
    column, historical = kw.pop("consent_column"), kw.pop("historical")
    flag = kw.pop("assert_consent")
    sub = None
    asserted = False
    if channel:
        sub = Subscribe(channel=channel, consented_at_column=column, historical=historical)
        asserted = consent_given(sub, flag=flag, as_json=as_json)
    elif column or historical:
        raise click.UsageError("--consent-column and --historical go with --subscribe CHANNEL")
    return new_sync(
        mode=kw.pop("mode"),
        incremental=kw.pop("incremental"),
        subscribe=sub,
        max_removal_ratio=kw.pop("max_removal_ratio"),
        max_removals=kw.pop("max_removals"),
        consent_asserted=asserted,
    )

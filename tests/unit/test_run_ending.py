"""How a run ended (run/summary.py's `ending`): the exit code and the one message a person reads."""

from __future__ import annotations

from datetime import datetime

import pytest

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import RowState
from klaviyo_tui.klaviyo import RateLimitedUntil
from klaviyo_tui.run.confirm import Tally
from klaviyo_tui.run.summary import ending
from klaviyo_tui.store.config import ConfigError


def tally(read: int = 10, valid: int = 10, **states: int) -> Tally:
    counts = {state: states.get(state.value, 0) for state in RowState}
    return Tally(read=read, valid=valid, counts=counts)


def test_a_finished_run_with_every_row_confirmed_is_ok() -> None:
    assert ending(None, tally(imported=10), "vip", dry_run=False) == (ExitCode.OK, None, None)


@pytest.mark.parametrize("dry_run", [False, True])
def test_no_valid_row_is_an_input_error_that_says_so(dry_run: bool) -> None:
    """A dry run ends as the real run would: it is the check before a real one."""
    code, message, _ = ending(None, tally(valid=0, invalid=10), "vip", dry_run=dry_run)
    assert code == ExitCode.INPUT
    assert message is not None and "all 10 rows read are invalid" in message
    assert ("would be sent" in message) == dry_run


def test_a_sync_refusal_is_a_usage_error_with_its_own_words() -> None:
    refused = "would remove 3,120 of the list's members"
    code, message, hint = ending(None, tally(), "vip", dry_run=True, refused=refused)
    assert (code, message) == (ExitCode.USAGE, refused)
    assert hint is not None and "--allow-mass-removal" in hint


def test_a_used_up_rate_limit_says_when_to_resume() -> None:
    error = RateLimitedUntil("Klaviyo's daily limit is used up.", retry_at=datetime(2026, 7, 1, 6))
    code, message, _ = ending(error, tally(), "vip", dry_run=False)
    assert code == ExitCode.INTERRUPTED
    assert message is not None
    assert "klaviyo-tui run vip --resume" in message and "06:00" in message


def test_a_users_error_keeps_its_code_and_names_unconfirmed_rows() -> None:
    error = RunError("the list was deleted", exit_code=ExitCode.USAGE)
    code, message, _ = ending(error, tally(unconfirmed=3), "vip", dry_run=False)
    assert code == ExitCode.USAGE
    assert message is not None
    assert message.startswith("the list was deleted; 3 row(s) are unconfirmed")
    assert ending(ConfigError("bad mapping"), tally(), "vip", dry_run=False)[:2] == (
        ExitCode.INPUT,
        "bad mapping",
    )


def test_a_bug_is_raised_again_not_turned_into_a_message() -> None:
    with pytest.raises(KeyError):
        ending(KeyError("oops"), tally(), "vip", dry_run=False)

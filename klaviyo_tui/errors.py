"""The one family of errors a user can cause: what happened, what to do, and the exit code.

Every exception a person can trigger (a bad config, a missing key, an unreadable file, a refusal
from Klaviyo) derives from `AppError`. The CLI prints `message` and `hint` and exits with
`exit_code`; the TUI shows `title`, `message` and `hint` in its error panel. Anything that is not
an `AppError` is a bug: both front ends show one short line and keep the traceback in the log
file, never on screen.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ExitCode(enum.IntEnum):
    """Process exit codes (decisions.md). README documents them."""

    OK = 0
    PARTIAL = 1
    USAGE = 2
    INPUT = 3
    AUTH = 4
    UNAVAILABLE = 5
    INTERNAL = 70  # a bug (sysexits' EX_SOFTWARE): the traceback is in the log file
    INTERRUPTED = 130
    OUTPUT_CLOSED = 141  # stdout's reader went away (`| head`): 128 + SIGPIPE, as a shell reports


class AppError(Exception):
    """A problem a person can act on. `str(error)` is the one-line message."""

    title: ClassVar[str] = "Something went wrong"
    default_hint: ClassVar[str] = ""
    exit_code: ExitCode = ExitCode.USAGE

    def __init__(
        self, message: str, *, hint: str | None = None, exit_code: ExitCode | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class RunError(AppError):
    """A run could not start or had to stop; the message says why."""

    title = "The export cannot run"
    default_hint = "Do what the message says, then run the export again."
